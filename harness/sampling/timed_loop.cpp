#include "sampling/timed_loop.h"

namespace profdit::sampling {

torch::Tensor TimedDenoiser::predict(int step, Branch branch, const torch::Tensor& latent, int64_t t, const wan::Conditioning& cond) {
    timer_.start();
    auto out = inner_.predict(step, branch, latent, t, cond);     // [C, F, H, W]
    timer_.stop();
    return out;
}

TimedSample timed_sample(Denoiser& denoiser, const torch::Device& device, const torch::Tensor& noise, const wan::Conditioning& cond,
                         const wan::Conditioning& uncond, const SampleOptions& opt, const StepCallback& on_step) {
    DeviceTimer loop(device);
    TimedSample out;
    loop.start();
    out.result = sample_cfg_on_device(denoiser, noise, cond, uncond, opt, on_step);
    loop.stop();
    out.loop_ms             = loop.read_ms().at(0);
    out.result.final_latent = out.result.final_latent.to(torch::kCPU);
    if (out.result.step_latent.defined()) out.result.step_latent = out.result.step_latent.to(torch::kCPU);
    return out;
}

void warm_up(Denoiser& uncached, const torch::Tensor& noise, const wan::Conditioning& cond, const wan::Conditioning& uncond,
             const SampleOptions& opt, int runs) {
    for (int w = 0; w < runs; ++w) sample_cfg_on_device(uncached, noise, cond, uncond, opt);
}

std::string timer_name(const torch::Device& device) {
    DeviceTimer t(device);
    return t.uses_events() ? "cuda events" : "steady clock";
}

}  // namespace profdit::sampling
