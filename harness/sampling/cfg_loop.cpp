#include "sampling/cfg_loop.h"

#include <chrono>

#include <ATen/CPUGeneratorImpl.h>

#include "common/device.h"

namespace profdit::sampling {

torch::Tensor PlainDenoiser::predict(int, Branch, const torch::Tensor& latent, int64_t t, const wan::Conditioning& cond) {
    return model_->forward(latent, t, cond);
}

torch::Tensor seeded_noise(const std::vector<int64_t>& shape, uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    return at::normal(0.0, 1.0, shape, gen);
}

SampleResult sample_cfg(Denoiser& denoiser, const torch::Tensor& noise, const wan::Conditioning& prompt_cond,
                        const wan::Conditioning& unprompt_cond, const SampleOptions& opt, const StepCallback& on_step) {
    torch::NoGradGuard no_grad;
    auto scheduler = make_scheduler(opt.solver, opt.steps, opt.shift);
    SampleResult res;
    res.schedule = scheduler->schedule();
    denoiser.begin(res.schedule);
    auto latent  = noise.to(torch::kFloat32);                                  // [C, F, H, W]
    std::vector<torch::Tensor> steps;
    for (int i = 0; i < scheduler->steps(); ++i) {
        const auto    t0     = std::chrono::steady_clock::now();
        const int64_t t      = scheduler->timestep();
        auto          cond   = denoiser.predict(i, kCond, latent, t, prompt_cond).to(torch::kFloat32);     // [C, F, H, W]
        auto          uncond = denoiser.predict(i, kUncond, latent, t, unprompt_cond).to(torch::kFloat32); // [C, F, H, W]
        auto          guided = uncond + opt.guide * (cond - uncond);                                        // [C, F, H, W]
        latent               = scheduler->step(guided, latent);
        if (opt.keep_steps) steps.push_back(latent.to(torch::kCPU));
        synchronize(latent.device());
        res.step_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        if (on_step) on_step(i + 1, scheduler->steps());
    }
    res.final_latent = latent.to(torch::kCPU);
    if (opt.keep_steps) res.step_latent = torch::stack(steps);
    return res;
}

}  // namespace profdit::sampling
