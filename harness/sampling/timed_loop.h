#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "common/device_timer.h"
#include "sampling/cfg_loop.h"

namespace profdit::sampling {

// The one way profdit times sampling (`profdit run` and `profdit sample` both use it). A DeviceTimer (CUDA
// events on a CUDA device, the steady clock on the CPU) marks the whole CFG loop and, through TimedDenoiser,
// every model call; nothing inside the loop waits for the device, and the marks are read after it.

// Marks each call of `inner` (the denoiser proper: a policy's cached denoiser or the plain model). Wrap it
// innermost, so observers around it (NaN/Inf flags, similarity) stay out of the call times.
class TimedDenoiser : public Denoiser {
  public:
    TimedDenoiser(Denoiser& inner, const torch::Device& device) : inner_(inner), timer_(device) {}
    torch::Tensor predict(int step, Branch branch, const torch::Tensor& latent, int64_t t, const wan::Conditioning& cond) override;
    void          begin(const Schedule& schedule) override { inner_.begin(schedule); }

    std::vector<double> call_ms() const { return timer_.read_ms(); }  // [calls], step-major (cond, uncond)

  private:
    Denoiser&   inner_;
    DeviceTimer timer_;
};

struct TimedSample {
    SampleResult result;       // latents on the CPU, copied after the timed region
    double       loop_ms = 0;  // the CFG loop: model calls, guidance and solver updates
};

// sample_cfg between two marks of a DeviceTimer on `device`; the latents are copied to the host afterwards.
TimedSample timed_sample(Denoiser& denoiser, const torch::Device& device, const torch::Tensor& noise, const wan::Conditioning& cond,
                         const wan::Conditioning& uncond, const SampleOptions& opt, const StepCallback& on_step = nullptr);

// `runs` untimed sampling runs with `uncached` before the first timed one, so kernel selection and the
// allocator's growth stay out of the timings (`timing.warmup_runs` of profdit run, `--warmup` of sample).
void warm_up(Denoiser& uncached, const torch::Tensor& noise, const wan::Conditioning& cond, const wan::Conditioning& uncond,
             const SampleOptions& opt, int runs);

// What times the loops on `device`: "cuda events" or "steady clock" (stored with the timings and shown by sample).
std::string timer_name(const torch::Device& device);

}  // namespace profdit::sampling
