#include "profile/magcache_calibration.h"

#include <stdexcept>

namespace profdit::profile {

MagRatioRecorder::MagRatioRecorder(int steps, int blocks) : steps_(steps), blocks_(blocks) {
    for (int b = 0; b < sampling::kNumBranches; ++b) {
        sum_[b].assign(size_t(steps), 0.0);
        count_[b].assign(size_t(steps), 0);
    }
}

void MagRatioRecorder::on_block(int step, sampling::Branch branch, int block, const wan::BlockProbe&, const torch::Tensor& x_in,
                                const torch::Tensor& x_out) {
    if (block == 0) {
        x0_[branch] = x_in;
        if (step == 0) prev_[branch] = torch::Tensor();
    }
    if (block != blocks_ - 1) return;
    auto res = (x_out - x0_[branch]).to(torch::kFloat32);  // [1, L, dim]
    if (prev_[branch].defined() && step < steps_) {
        sum_[branch][size_t(step)] += (res.norm(2, -1) / prev_[branch].norm(2, -1)).mean().item<double>();  // [1, L] -> mean
        count_[branch][size_t(step)] += 1;
    }
    prev_[branch] = res;
}

policies::MagRatios MagRatioRecorder::ratios(const std::vector<float>& sigmas, const std::string& name) const {
    if (int(sigmas.size()) < steps_) throw std::logic_error("MagRatioRecorder: fewer sigmas than steps");
    policies::MagRatios r;
    r.name   = name;
    r.blocks = blocks_;
    r.sigmas.assign(sigmas.begin(), sigmas.begin() + steps_);
    for (int b = 0; b < sampling::kNumBranches; ++b)
        for (int s = 0; s < steps_; ++s) {
            const int n = count_[b][size_t(s)];
            if (s > 0 && n == 0) throw std::runtime_error("MagCache calibration recorded no ratio at step " + std::to_string(s));
            r.ratios[b].push_back(s == 0 ? 1.0 : sum_[b][size_t(s)] / n);
        }
    return r;
}

}  // namespace profdit::profile
