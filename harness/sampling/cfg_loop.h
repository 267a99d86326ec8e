#pragma once

#include <functional>
#include <string>

#include <torch/torch.h>

#include "sampling/scheduler.h"
#include "wan/dit.h"

namespace profdit::sampling {

enum Branch : int { kCond = 0, kUncond = 1, kNumBranches = 2 };

// One model call of the CFG loop. The plain implementation runs the whole DiT; cache policies provide
// their own (they see the step, the branch and the branch's conditioning, and keep per-branch state).
class Denoiser {
  public:
    virtual ~Denoiser() = default;
    virtual torch::Tensor predict(int step, Branch branch, const torch::Tensor& latent, int64_t t,
                                  const wan::Conditioning& cond) = 0;  // -> [C, F, H, W] velocity
    virtual void          begin(const Schedule&) {}  // the run's schedule, before its first call
};

class PlainDenoiser : public Denoiser {
  public:
    explicit PlainDenoiser(wan::WanModel model) : model_(std::move(model)) {}
    torch::Tensor predict(int step, Branch branch, const torch::Tensor& latent, int64_t t,
                          const wan::Conditioning& cond) override;

  private:
    wan::WanModel model_;
};

struct SampleOptions {
    std::string solver = "unipc";
    int         steps  = 50;
    double      shift  = 5.0;
    double      guide  = 5.0;
    double      early_guide = 0;    // > 0: the guidance scale of the steps whose sigma is >= early_sigma (where layout and motion
    double      early_sigma = 0.9;  // are decided); `guide` for the rest
    bool        keep_steps = true;  // keep step_latent
};

// The guidance scale of a step at noise level `sigma`.
double guidance_at(const SampleOptions& opt, double sigma);

struct SampleResult {
    torch::Tensor final_latent;  // [C, F, H, W]
    torch::Tensor step_latent;   // [N, C, F, H, W] (latent after each step), when kept
    Schedule      schedule;
};

using StepCallback = std::function<void(int step, int steps)>;

// The initial latent noise of `seed` [C, F, H, W] from a CPU generator, so every device starts alike.
torch::Tensor seeded_noise(const std::vector<int64_t>& shape, uint64_t seed);

// WanT2V.generate's loop: per step cond and uncond calls, guided = uncond + g (cond - uncond), solver step.
// The branches' conditionings come from WanModel::condition (text contexts and the noise's shape), built
// once per prompt outside this loop. The latents come back on the CPU.
SampleResult sample_cfg(Denoiser& denoiser, const torch::Tensor& noise, const wan::Conditioning& cond,
                        const wan::Conditioning& uncond, const SampleOptions& opt, const StepCallback& on_step = nullptr);

// The same loop with nothing copied to the host and no synchronisation: final_latent and step_latent stay
// on the denoiser's device (what the timed loop runs; sample_cfg copies them afterwards).
SampleResult sample_cfg_on_device(Denoiser& denoiser, const torch::Tensor& noise, const wan::Conditioning& cond,
                                  const wan::Conditioning& uncond, const SampleOptions& opt,
                                  const StepCallback& on_step = nullptr);

}  // namespace profdit::sampling
