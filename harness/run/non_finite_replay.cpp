#include "run/non_finite_replay.h"

#include "run/non_finite.h"

namespace profdit::run {

namespace {

std::string call_text(int step, int branch, int steps) {
    return "step " + std::to_string(step) + " of " + std::to_string(steps) + ", " + (branch == sampling::kCond ? "cond" : "uncond") + " branch";
}

// Checks each output as it comes (a host synchronisation per call: only for the replay) and throws
// NonFiniteError at the first that is not finite, located by an uncached forward of the same call.
class CheckedDenoiser : public sampling::Denoiser {
  public:
    CheckedDenoiser(sampling::Denoiser& inner, wan::WanModelImpl& dit, int steps) : inner_(inner), dit_(dit), steps_(steps) {}
    torch::Tensor predict(int step, sampling::Branch branch, const torch::Tensor& latent, int64_t t, const wan::Conditioning& cond) override {
        auto out = inner_.predict(step, branch, latent, t, cond);     // [C, F, H, W]
        if (!all_finite(out))
            throw NonFiniteError("NaN/Inf in the model output at " + call_text(step, branch, steps_) + "; an uncached replay finds it first in " +
                                 first_non_finite_stage(dit_, latent, t, cond));
        return out;
    }
    void begin(const sampling::Schedule& schedule) override { inner_.begin(schedule); }

  private:
    sampling::Denoiser& inner_;
    wan::WanModelImpl&  dit_;
    int                 steps_;
};

}  // namespace

std::string replay_non_finite(sampling::Denoiser& fresh, wan::WanModelImpl& dit, const torch::Tensor& noise, const wan::Conditioning& cond,
                              const wan::Conditioning& uncond, const sampling::SampleOptions& opt, int flagged_call) {
    CheckedDenoiser checked(fresh, dit, opt.steps);
    try {
        sampling::sample_cfg_on_device(checked, noise, cond, uncond, opt);
    } catch (const NonFiniteError& e) {
        return e.what();
    }
    return "NaN/Inf in the model output at " + call_text(flagged_call / 2, flagged_call % 2, opt.steps) +
           "; an uncached replay of the run did not reproduce it (non-deterministic kernels?)";
}

}  // namespace profdit::run
