#pragma once

#include <string>
#include <vector>

#include "sampling/cfg_loop.h"

namespace profdit::run {

// An observer around a denoiser that never waits for the device inside the sampling loop: per call a
// device flag saying whether the output is finite, and (with `similarity`) the change of each branch's
// prediction from its previous step, relative L1 ||v_s - v_{s-1}||_1 / ||v_{s-1}||_1 and cosine
// similarity, computed in the output's float32 (no float64 copy). All of it is read after the loop, one
// copy each. Timing is not its job: sampling::TimedDenoiser marks the calls it wraps.
class RecordingDenoiser : public sampling::Denoiser {
  public:
    RecordingDenoiser(sampling::Denoiser& inner, int steps, bool similarity);
    torch::Tensor predict(int step, sampling::Branch branch, const torch::Tensor& latent, int64_t t,
                          const wan::Conditioning& cond) override;
    void          begin(const sampling::Schedule& schedule) override { inner_.begin(schedule); }

    // The first call (step * 2 + branch) whose output had NaN or Inf, or -1: one read of the flags.
    int                 first_non_finite() const;
    std::vector<double> rel_l1() const { return read(rel_l1_); }  // [steps * 2], NaN at step 0
    std::vector<double> cosine() const { return read(cosine_); }  // [steps * 2], NaN at step 0

  private:
    static std::vector<double> read(const std::vector<torch::Tensor>& v);

    sampling::Denoiser&        inner_;
    bool                       similarity_;
    std::vector<torch::Tensor> finite_;           // 0-dim bool per call made, on the device
    std::vector<torch::Tensor> rel_l1_, cosine_;  // 0-dim f32 per call, undefined where not measured
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
PeakMemory max_peak(const PeakMemory& a, const PeakMemory& b);  // the higher of each peak (over executions)

}  // namespace profdit::run
