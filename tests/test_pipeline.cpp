// The 5-step CFG loop against the reference's mini WanT2V.generate run (UniPC, shift 5, guide 5).
#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "sampling/cfg_loop.h"
#include "wan/checkpoint.h"
#include "test_util.h"

using namespace profdit;

namespace {

// Records every model call's output (per step and branch) while running the full model.
class RecordingDenoiser : public sampling::Denoiser {
  public:
    explicit RecordingDenoiser(wan::WanModel m) : plain_(std::move(m)) {}
    torch::Tensor predict(int step, sampling::Branch b, const torch::Tensor& latent, int64_t t,
                          const wan::Conditioning& cond) override {
        auto out = plain_.predict(step, b, latent, t, cond);
        calls.push_back({step, b, t, out});
        return out;
    }
    struct Call {
        int              step;
        sampling::Branch branch;
        int64_t          t;
        torch::Tensor    out;
    };
    std::vector<Call> calls;

  private:
    sampling::PlainDenoiser plain_;
};

}  // namespace

TEST(Pipeline, CfgLoopMatchesReference) {
    io::SafetensorsReader g(test::data_path("wan21_tiny/dit_tiny_pipeline.safetensors"));
    auto                  model = test::tiny_model();
    RecordingDenoiser     d(model);
    sampling::SampleOptions opt;
    opt.solver = "unipc";
    opt.steps  = 5;
    opt.shift  = 5.0;
    opt.guide  = 5.0;
    auto res = test::sample_cfg(d, *model, g.load("noise"), g.load("context_cond"), g.load("context_uncond"), opt);

    const auto ts = g.load("timesteps");
    ASSERT_EQ(d.calls.size(), 10u);
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(res.schedule.timesteps[i], ts[i].item<int64_t>());
        const auto& c = d.calls[2 * i];
        const auto& u = d.calls[2 * i + 1];
        EXPECT_EQ(c.branch, sampling::kCond);
        EXPECT_EQ(u.branch, sampling::kUncond);
        EXPECT_EQ(c.t, ts[i].item<int64_t>());
        EXPECT_LT(test::max_abs_diff(c.out, g.load("step_cond")[i]), 1e-4) << "cond step " << i;
        EXPECT_LT(test::max_abs_diff(u.out, g.load("step_uncond")[i]), 1e-4) << "uncond step " << i;
        EXPECT_LT(test::max_abs_diff(res.step_latent[i], g.load("step_latent")[i]), 1e-4) << "latent step " << i;
    }
    const auto sg = g.load("sigmas");
    for (int i = 0; i <= 5; ++i) EXPECT_EQ(res.schedule.sigmas[i], sg[i].item<float>());
    EXPECT_LT(test::max_abs_diff(res.final_latent, g.load("final_latent")), 1e-4);
}

TEST(Pipeline, SameSeedSameBits) {
    io::SafetensorsReader g(test::data_path("wan21_tiny/dit_tiny_pipeline.safetensors"));
    auto                    model = test::tiny_model();
    sampling::PlainDenoiser d(model);
    sampling::SampleOptions opt;
    opt.steps = 4;
    auto a = test::sample_cfg(d, *model, g.load("noise"), g.load("context_cond"), g.load("context_uncond"), opt);
    auto b = test::sample_cfg(d, *model, g.load("noise"), g.load("context_cond"), g.load("context_uncond"), opt);
    EXPECT_TRUE(torch::equal(a.final_latent, b.final_latent));
    EXPECT_TRUE(torch::equal(a.step_latent, b.step_latent));
}

namespace {

// Velocity 1 for the prompt, 0 without it: the guided velocity is the step's guidance scale.
class ConstantDenoiser : public sampling::Denoiser {
  public:
    torch::Tensor predict(int, sampling::Branch b, const torch::Tensor& latent, int64_t, const wan::Conditioning&) override {
        return b == sampling::kCond ? torch::ones_like(latent) : torch::zeros_like(latent);
    }
};

}  // namespace

TEST(Pipeline, EarlyGuidanceAppliesDownToItsSigma) {
    ConstantDenoiser        d;
    sampling::SampleOptions opt;
    opt.solver = "euler", opt.steps = 10, opt.shift = 3.0, opt.guide = 1.5, opt.early_guide = 4.0, opt.early_sigma = 0.9;
    const auto   res   = sampling::sample_cfg(d, torch::zeros({1, 1, 1, 1}), {}, {}, opt);
    const auto&  sigma = res.schedule.sigmas;
    double       expected = 0;  // Euler: x += (sigma[i+1] - sigma[i]) * guide(sigma[i])
    int          early    = 0;
    for (int i = 0; i < opt.steps; ++i) {
        const double g = sigma[i] >= 0.9f ? 4.0 : 1.5;
        early += sigma[i] >= 0.9f;
        expected += (double(sigma[i + 1]) - sigma[i]) * g;
    }
    ASSERT_GT(early, 0);
    ASSERT_LT(early, opt.steps);
    EXPECT_NEAR(res.final_latent.item<float>(), expected, 1e-5);
    EXPECT_EQ(sampling::guidance_at(opt, 0.95), 4.0);
    EXPECT_EQ(sampling::guidance_at(opt, 0.5), 1.5);
    opt.early_guide = 0;  // off: one scale everywhere
    EXPECT_EQ(sampling::guidance_at(opt, 0.95), 1.5);
}
