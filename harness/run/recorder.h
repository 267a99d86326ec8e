#pragma once

#include <vector>

#include "sampling/cfg_loop.h"

namespace profdit::run {

// An observer around a denoiser: wall time of every call (device synchronised) and the change of each
// branch's prediction from the previous step: relative L1 ||v_s - v_{s-1}||_1 / ||v_{s-1}||_1 and cosine
// similarity. The similarities stay on the device until read (no extra sync inside the timed loop).
class RecordingDenoiser : public sampling::Denoiser {
  public:
    RecordingDenoiser(sampling::Denoiser& inner, int steps, bool similarity);
    torch::Tensor predict(int step, sampling::Branch branch, const torch::Tensor& latent, int64_t t,
                          const torch::Tensor& context) override;

    const std::vector<double>& call_ms() const { return call_ms_; }  // [steps * 2], step-major
    std::vector<double>        rel_l1() const { return read(rel_l1_); }  // [steps * 2], NaN at step 0
    std::vector<double>        cosine() const { return read(cosine_); }  // [steps * 2], NaN at step 0

  private:
    static std::vector<double> read(const std::vector<torch::Tensor>& v);

    sampling::Denoiser&        inner_;
    bool                       similarity_;
    std::vector<double>        call_ms_;
    std::vector<torch::Tensor> rel_l1_, cosine_;  // 0-dim f64 per call, undefined where not measured
    torch::Tensor              last_[sampling::kNumBranches];
};

}  // namespace profdit::run
