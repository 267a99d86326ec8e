#pragma once

#include <vector>

#include "sampling/cfg_loop.h"

namespace profdit::run {

// An observer around a denoiser: wall time of every call (device synchronised) and the relative L1
// change of each branch's prediction from the previous step, ||v_s - v_{s-1}||_1 / ||v_{s-1}||_1.
class RecordingDenoiser : public sampling::Denoiser {
  public:
    RecordingDenoiser(sampling::Denoiser& inner, int steps, bool similarity);
    torch::Tensor predict(int step, sampling::Branch branch, const torch::Tensor& latent, int64_t t,
                          const torch::Tensor& context) override;

    const std::vector<double>& call_ms() const { return call_ms_; }  // [steps * 2], step-major
    const std::vector<double>& rel_l1() const { return rel_l1_; }    // [steps * 2], NaN at step 0

  private:
    sampling::Denoiser& inner_;
    bool                similarity_;
    std::vector<double> call_ms_, rel_l1_;
    torch::Tensor       last_[sampling::kNumBranches];
};

}  // namespace profdit::run
