#pragma once

#include <functional>
#include <string>
#include <vector>

#include "sampling/cfg_loop.h"

namespace profdit::run {

// An observer around a denoiser: wall time of every call (device synchronised) and the change of each
// branch's prediction from the previous step: relative L1 ||v_s - v_{s-1}||_1 / ||v_{s-1}||_1 and cosine
// similarity. The similarities stay on the device until read (no extra sync inside the timed loop).
// An output with NaN or Inf throws run::NonFiniteError naming the step, the branch and, through `locate`
// (latent, t, conditioning -> the first non-finite stage), where in the model it started.
class RecordingDenoiser : public sampling::Denoiser {
  public:
    using Locate = std::function<std::string(const torch::Tensor& latent, int64_t t, const wan::Conditioning& cond)>;
    RecordingDenoiser(sampling::Denoiser& inner, int steps, bool similarity, Locate locate = {});
    torch::Tensor predict(int step, sampling::Branch branch, const torch::Tensor& latent, int64_t t,
                          const wan::Conditioning& cond) override;
    void          begin(const sampling::Schedule& schedule) override { inner_.begin(schedule); }

    const std::vector<double>& call_ms() const { return call_ms_; }  // [steps * 2], step-major
    std::vector<double>        rel_l1() const { return read(rel_l1_); }  // [steps * 2], NaN at step 0
    std::vector<double>        cosine() const { return read(cosine_); }  // [steps * 2], NaN at step 0

  private:
    static std::vector<double> read(const std::vector<torch::Tensor>& v);

    sampling::Denoiser&        inner_;
    bool                       similarity_;
    Locate                     locate_;
    std::vector<double>        call_ms_;
    std::vector<torch::Tensor> rel_l1_, cosine_;  // 0-dim f64 per call, undefined where not measured
    torch::Tensor              last_[sampling::kNumBranches];
};

// Peak memory of the work since reset_peak_memory(): the process's resident-set high-water mark (Linux
// VmHWM, reset by writing 5 to /proc/self/clear_refs; where that fails, the process's peak so far) and, on
// CUDA with a PyTorch that has the caching allocator's statistics, the peak bytes allocated on the device
// (-1 otherwise).
struct PeakMemory {
    double rss_bytes  = 0;
    bool   rss_reset  = false;  // false: process-wide peak since start (monotone over a sweep)
    double cuda_bytes = -1;
};
bool       reset_peak_memory(const torch::Device& device);  // returns whether the RSS peak could be reset
PeakMemory read_peak_memory(const torch::Device& device, bool rss_reset);

}  // namespace profdit::run
