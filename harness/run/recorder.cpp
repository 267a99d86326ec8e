#include "run/recorder.h"

#include <chrono>
#include <cmath>

#include "common/device.h"

namespace profdit::run {

RecordingDenoiser::RecordingDenoiser(sampling::Denoiser& inner, int steps, bool similarity)
    : inner_(inner), similarity_(similarity), call_ms_(size_t(steps) * 2, 0.0), rel_l1_(size_t(steps) * 2),
      cosine_(size_t(steps) * 2) {}

torch::Tensor RecordingDenoiser::predict(int step, sampling::Branch branch, const torch::Tensor& latent, int64_t t,
                                         const torch::Tensor& context) {
    const auto t0  = std::chrono::steady_clock::now();
    auto       out = inner_.predict(step, branch, latent, t, context);  // [C, F, H, W]
    synchronize(out.device());
    const size_t at = size_t(step) * 2 + size_t(branch);
    call_ms_.at(at) = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (similarity_) {
        if (last_[branch].defined()) {
            const auto cur = out.to(torch::kFloat64).reshape({-1}), prev = last_[branch].to(torch::kFloat64).reshape({-1});  // [N]
            rel_l1_[at] = (cur - prev).abs().sum() / prev.abs().sum().clamp_min(1e-12);
            cosine_[at] = (cur * prev).sum() / (cur.norm() * prev.norm()).clamp_min(1e-30);
        }
        last_[branch] = out;
    }
    return out;
}

std::vector<double> RecordingDenoiser::read(const std::vector<torch::Tensor>& v) {
    std::vector<double> out(v.size(), std::nan(""));
    for (size_t i = 0; i < v.size(); ++i)
        if (v[i].defined()) out[i] = v[i].item<double>();
    return out;
}

}  // namespace profdit::run
