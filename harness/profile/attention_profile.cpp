#include "profile/attention_profile.h"

#include <cmath>

namespace profdit::profile {

AttentionProfile::AttentionProfile(int steps, int blocks, int64_t query_chunk, int64_t query_stride, sampling::Branch branch)
    : steps_(steps), blocks_(blocks), query_chunk_(query_chunk), query_stride_(query_stride), branch_(branch),
      residual_(torch::full({steps, blocks}, std::nan(""), torch::kFloat64)),
      change_(torch::full({steps, blocks}, std::nan(""), torch::kFloat64)), last_delta_(size_t(blocks)) {}

void AttentionProfile::on_block(int step, sampling::Branch, int block, const wan::BlockProbe& probe, const torch::Tensor& x_in,
                                const torch::Tensor& x_out) {
    auto r = wan::received_attention(probe.q_rope, probe.k_rope, query_chunk_, query_stride_)[0].to(torch::kCPU);  // [L]
    if (!received_.defined()) received_ = torch::full({steps_, blocks_, r.size(0)}, std::nan(""), torch::kFloat32);
    received_[step][block].copy_(r);
    auto delta = x_out - x_in;                                                                                    // [1, L, dim]
    residual_[step][block] = (delta.to(torch::kFloat64).norm() / x_in.to(torch::kFloat64).norm().clamp_min(1e-30)).item<double>();
    auto& last = last_delta_[size_t(block)];
    if (last.defined())
        change_[step][block] =
            ((delta - last).to(torch::kFloat64).norm() / last.to(torch::kFloat64).norm().clamp_min(1e-30)).item<double>();
    last = delta;
}

}  // namespace profdit::profile
