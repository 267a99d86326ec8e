#include "sampling/cfg_loop.h"

#include <ATen/CPUGeneratorImpl.h>

namespace profdit::sampling {

torch::Tensor PlainDenoiser::predict(int, Branch, const torch::Tensor& latent, int64_t t, const wan::Conditioning& cond) {
    return model_->forward(latent, t, cond);
}

torch::Tensor seeded_noise(const std::vector<int64_t>& shape, uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    return at::normal(0.0, 1.0, shape, gen);
}

double guidance_at(const SampleOptions& opt, double sigma) {
    return opt.early_guide > 0 && sigma >= opt.early_sigma ? opt.early_guide : opt.guide;
}

SampleResult sample_cfg_on_device(Denoiser& denoiser, const torch::Tensor& noise, const wan::Conditioning& prompt_cond,
                                  const wan::Conditioning& unprompt_cond, const SampleOptions& opt, const StepCallback& on_step) {
    torch::NoGradGuard no_grad;
    auto scheduler = make_scheduler(opt.solver, opt.steps, opt.shift);
    SampleResult res;
    res.schedule = scheduler->schedule();
    denoiser.begin(res.schedule);
    auto latent  = noise.to(torch::kFloat32);                                  // [C, F, H, W]
    std::vector<torch::Tensor> steps;
    for (int i = 0; i < scheduler->steps(); ++i) {
        const int64_t t      = scheduler->timestep();
        auto          cond   = denoiser.predict(i, kCond, latent, t, prompt_cond).to(torch::kFloat32);     // [C, F, H, W]
        auto          uncond = denoiser.predict(i, kUncond, latent, t, unprompt_cond).to(torch::kFloat32); // [C, F, H, W]
        const double  g      = guidance_at(opt, res.schedule.sigmas[i]);
        auto          guided = uncond + g * (cond - uncond);                                                // [C, F, H, W]
        latent               = scheduler->step(guided, latent);
        if (opt.keep_steps) steps.push_back(latent);  // on the device: no copy inside the loop
        if (on_step) on_step(i + 1, scheduler->steps());
    }
    res.final_latent = latent;
    if (opt.keep_steps) res.step_latent = torch::stack(steps);  // [N, C, F, H, W]
    return res;
}

SampleResult sample_cfg(Denoiser& denoiser, const torch::Tensor& noise, const wan::Conditioning& prompt_cond,
                        const wan::Conditioning& unprompt_cond, const SampleOptions& opt, const StepCallback& on_step) {
    auto res         = sample_cfg_on_device(denoiser, noise, prompt_cond, unprompt_cond, opt, on_step);
    res.final_latent = res.final_latent.to(torch::kCPU);
    if (res.step_latent.defined()) res.step_latent = res.step_latent.to(torch::kCPU);
    return res;
}

}  // namespace profdit::sampling
