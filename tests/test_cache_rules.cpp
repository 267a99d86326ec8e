// The field's cache rules in the one engine (issue 17): fbcache/dbcache, magcache, easycache, taylorseer.
// Each at its cache-nothing setting equals `none` bit for bit on the parity model and on the embedded
// model; each rule on a hand-derived decision sequence; the engine's probe, forecast, memory and FLOPs
// accounting; MagCache's sigma interpolation; bad configurations.
#include <cmath>
#include <fstream>
#include <limits>
#include <map>

#include <gtest/gtest.h>

#include "common/error.h"
#include "io/safetensors.h"
#include "policies/magcache.h"
#include "sampling/cached_denoiser.h"
#include "sampling/scheduler.h"
#include "sampling/taylor_factors.h"
#include "wan/checkpoint.h"
#include "test_util.h"
#ifdef PROFDIT_HAVE_HDF5
#include "run/experiment.h"
#include "run/pipeline.h"
#include "run/runner.h"
#include "store/store.h"
#endif

using namespace profdit;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::unique_ptr<policies::CachePolicy> policy(const std::string& yaml, int blocks = 2) {
    return policies::make_policy(YAML::Load(yaml), {blocks, "custom", ""}, "test");
}

struct RunOut {
    sampling::SampleResult res;
    sampling::CacheStats   stats;
};

RunOut run_tiny(policies::CachePolicy& p, int steps) {
    io::SafetensorsReader    g(test::data_path("wan21_tiny/dit_tiny_pipeline.safetensors"));
    auto                     model = test::tiny_model();
    sampling::CachedDenoiser d(model, p, steps);
    sampling::SampleOptions  opt;
    opt.steps = steps;
    auto res  = test::sample_cfg(d, *model, g.load("noise"), g.load("context_cond"), g.load("context_uncond"), opt);
    return {res, d.stats()};
}

#ifdef PROFDIT_HAVE_HDF5
// The embedded sprites-tiny model on the quickstart's first prompt, seed 0.
RunOut run_embedded(const std::string& yaml, int steps) {
    static const run::Pipeline pipe = [] {
        run::ModelSpec spec;
        spec.preset  = "sprites-tiny";
        spec.threads = 1;
        return run::load_pipeline(spec, "test");
    }();
    torch::NoGradGuard no_grad;
    const auto& cfg = pipe.dit->config();
    auto p = policies::make_policy(YAML::Load(yaml), {int(cfg.num_layers), cfg.variant(), ""}, "test");
    sampling::CachedDenoiser d(pipe.dit, *p, steps);
    sampling::SampleOptions  opt;
    opt.steps = steps;
    opt.shift = 3.0;
    opt.guide = 4.0;
    const auto cond  = pipe.text->encode("a red circle moving left over blue stripes");  // [L, text_dim]
    const auto neg   = pipe.text->encode(pipe.negative_prompt);                           // [L, text_dim]
    const auto noise = sampling::seeded_noise(pipe.latent_shape, 0);                        // [C, F, H, W]
    auto dit = pipe.dit;  // a non-const handle on the shared model
    auto res = test::sample_cfg(d, *dit, noise, cond, neg, opt);
    return {res, d.stats()};
}
#endif

// The calls of one run as (step, branch) -> plan, with the numbers a test prescribes.
class Numbers : public policies::Indicators {
  public:
    double dx = kNaN, out_change = kNaN, in_change = kNaN, out_abs = kNaN;
    torch::Tensor e() override { throw std::logic_error("not used"); }
    torch::Tensor e0() override { throw std::logic_error("not used"); }
    torch::Tensor modulated_input() override { throw std::logic_error("not used"); }
    double input_change() override { return dx; }
    double computed_output_abs_mean() override { return out_abs; }
    double computed_output_change() override { return out_change; }
    double computed_input_change() override { return in_change; }
};

std::string write_ratio_file(const std::string& dir, const policies::MagRatios& r) {
    const auto path = dir + "/" + r.name + ".yaml";
    std::ofstream(path) << policies::magcache_file_text(r, YAML::Node());
    return path;
}

}  // namespace

// ---- cache nothing == none, bit for bit ----

class CacheNothingRules : public ::testing::TestWithParam<std::string> {};

TEST_P(CacheNothingRules, EqualsNoneOnParityModel) {
    auto none = policy("none");
    auto p    = policy(GetParam());
    auto a    = run_tiny(*none, 6);
    auto b    = run_tiny(*p, 6);
    EXPECT_TRUE(torch::equal(a.res.step_latent, b.res.step_latent)) << GetParam();
    EXPECT_EQ(b.stats.computed_fraction(), 1.0) << GetParam();
}

#ifdef PROFDIT_HAVE_HDF5
TEST_P(CacheNothingRules, EqualsNoneOnEmbeddedModel) {
    auto a = run_embedded("none", 14);
    auto b = run_embedded(GetParam(), 14);
    EXPECT_TRUE(torch::equal(a.res.step_latent, b.res.step_latent)) << GetParam();
    EXPECT_EQ(b.stats.computed_fraction(), 1.0) << GetParam();
}
#endif

INSTANTIATE_TEST_SUITE_P(Settings, CacheNothingRules,
                         ::testing::Values("{name: fbcache, threshold: 0}", "{name: dbcache, threshold: 0}", "{name: magcache, threshold: 0}",
                                           "{name: easycache, threshold: 0}", "{name: taylorseer, interval: 1}",
                                           // the same with every warm-up off, so the rule itself runs from step 1
                                           "{name: dbcache, threshold: 0, warmup: 0, fn: 1}",
                                           "{name: magcache, threshold: 0, retention_ratio: 0}",
                                           "{name: easycache, threshold: 0, warmup: 1, final_full: 0}",
                                           "{name: taylorseer, interval: 1, order: 2}"));

// ---- hand-derived decision sequences ----

TEST(DBCache, DecisionSequenceFromCacheDitRules) {
    // cache-dit can_cache / add_cached_step with fn 2, bn 1 (6 blocks), threshold 0.1, warmup 2, max_cached 3,
    // max_continuous 2, on the cond branch:
    //  step 0 warm-up: compute.  1 warm-up: compute.
    //  2 rel 0.05 < 0.1: reuse; first cached step -> continuous 1, cached 1.
    //  3 rel 0.05: continuous 1 < 2: reuse; consecutive -> continuous 2, cached 2.
    //  4 rel 0.05: continuous 2 >= 2: compute and continuous := 0.
    //  5 rel 0.2 >= 0.1: compute.
    //  6 rel 0.05: reuse; 6 - 3 != 1 so continuous stays 0; cached 3.
    //  7 rel 0.05: cached 3 >= max 3: compute.  8 rel 0.01: compute (cap).
    // The uncond branch sees rel 0.5 throughout and always computes: its state is its own.
    auto p = policy("{name: dbcache, fn: 2, bn: 1, threshold: 0.1, warmup: 2, max_cached_steps: 3, max_continuous_cached_steps: 2}", 6);
    ASSERT_EQ(p->segments().size(), 3u);
    EXPECT_EQ(p->segments()[1].first, 2);
    EXPECT_EQ(p->segments()[1].last, 4);
    const std::vector<double> rel    = {kNaN, 0.01, 0.05, 0.05, 0.05, 0.2, 0.05, 0.05, 0.01};
    const std::vector<int>    expect = {1, 1, 0, 0, 1, 1, 0, 1, 1};
    for (int s = 0; s < int(rel.size()); ++s)
        for (int b = 0; b < 2; ++b) {
            policies::CallInfo call{s, int(rel.size()), b, 0, nullptr, kNaN};
            auto plan = p->plan(call);
            EXPECT_EQ(plan.probe_segment, 0);
            p->refine(call, b == 0 ? rel[size_t(s)] : 0.5, plan);
            EXPECT_EQ(plan.reuse[1] ? 0 : 1, b == 0 ? expect[size_t(s)] : 1) << "step " << s << " branch " << b;
            EXPECT_FALSE(plan.reuse[0] || plan.reuse[2]);
        }
}

TEST(FBCache, DecisionSequenceFromParaAttention) {
    // get_can_use_cache: no reference (step 0) -> compute; rel 0.04 < 0.05 -> reuse; 0.06 -> compute; 0.0 -> reuse;
    // threshold 0 never reuses (ParaAttention: threshold <= 0 disables).
    auto p = policy("{name: fbcache}", 3);
    EXPECT_EQ(p->segments()[0].last, 0);
    const std::vector<double> rel = {kNaN, 0.04, 0.06, 0.0};
    const std::vector<int>    expect = {1, 0, 1, 0};
    for (int s = 0; s < 4; ++s) {
        policies::CallInfo call{s, 4, 0, 0, nullptr, kNaN};
        auto plan = p->plan(call);
        p->refine(call, rel[size_t(s)], plan);
        EXPECT_EQ(plan.reuse[1] ? 0 : 1, expect[size_t(s)]) << s;
    }
    auto off = policy("{name: fbcache, threshold: 0}", 3);
    policies::CallInfo call{3, 4, 0, 0, nullptr, kNaN};
    auto plan = off->plan(call);
    off->refine(call, 0.0, plan);
    EXPECT_FALSE(plan.reuse[1]);
}

TEST(DBCache, EngineComputesFnAlwaysAndCountsProbeFlops) {
    // On the 2-block parity model: fn 1, bn 0 -> block 0 always computed, block 1 reused when rel-L1 < 0.5.
    auto q = policy("{name: fbcache, threshold: 0.5}", 2);
    auto r = run_tiny(*q, 6);
    const auto& m = r.stats.compute_mask;  // [6, 2, 2]
    EXPECT_TRUE(torch::equal(m.select(2, 0), torch::ones({6, 2}, torch::kUInt8)));
    const int64_t reused = (m.select(2, 1) == 0).sum().item<int64_t>();
    EXPECT_GT(reused, 0);
    // FLOPs: every call embeds, runs block 0 and the head; block 1 when computed; the probe's residual (n) and,
    // from the second call of each branch on, its rel-L1 (5n), n = 48 tokens x 64 dims.
    auto        cfg = test::tiny_model()->config();
    const auto  f   = metrics::dit_flops(cfg, 48);
    const double n  = 48.0 * 64.0;
    const double expect = 12 * (f.embed + f.head) + double(m.sum().item<int64_t>()) * f.block.total() + 12 * n + 10 * 5 * n;
    EXPECT_DOUBLE_EQ(r.stats.flops_computed, expect);
    EXPECT_DOUBLE_EQ(r.stats.flops_indicator, 12 * n + 10 * 5 * n);
    // memory: per branch the probe reference and the middle residual, [1, 48, 64] f32 each
    EXPECT_EQ(r.stats.peak_cache_bytes, 2 * 2 * 48 * 64 * 4);
}

TEST(MagCache, DecisionSequenceFromTheReference) {
    // magcache_forward with ratios r = 1, 0.98, 0.97, 0.95, 0.88, 0.8 (cond = uncond), threshold 0.1,
    // retention 0.2 of 12 calls = 2 calls (step 0). Per branch:
    //  K 2: step 1: ratio 0.98, err 0.02, skipped 1 -> reuse. 2: ratio 0.9506, err 0.0694, skipped 2 <= 2 -> reuse.
    //       3: ratio 0.90307, err 0.16633 -> compute, reset. 4: ratio 0.88, err 0.12 -> compute. 5: 0.8, err 0.2 -> compute.
    //  K 1: step 2: skipped 2 > 1 -> compute, reset. 3: ratio 0.95, err 0.05 -> reuse. 4: ratio 0.836, err 0.214 -> compute.
    //       5: err 0.2 -> compute.
    policies::MagRatios r;
    r.name      = "hand";
    r.blocks    = 2;
    r.sigmas    = {1.0, 0.8, 0.6, 0.4, 0.2, 0.1};
    r.ratios[0] = r.ratios[1] = {1, 0.98, 0.97, 0.95, 0.88, 0.8};
    const auto path = write_ratio_file(test::temp_dir(), r);
    const std::map<int, std::vector<int>> expect = {{2, {1, 0, 0, 1, 1, 1}}, {1, {1, 0, 1, 0, 1, 1}}};
    for (const auto& [k, pattern] : expect) {
        auto p = policy("{name: magcache, threshold: 0.1, retention_ratio: 0.2, max_skip_steps: " + std::to_string(k) + ", ratios: " + path + "}");
        p->reset();
        for (int s = 0; s < 6; ++s)
            for (int b = 0; b < 2; ++b) {
                auto plan = p->plan({s, 6, b, 0, nullptr, r.sigmas[size_t(s)]});
                EXPECT_EQ(plan.reuse[0] ? 0 : 1, pattern[size_t(s)]) << "K " << k << " step " << s << " branch " << b;
            }
    }
}

TEST(MagCache, RatiosTransferToAnotherStepCountThroughSigma) {
    // A smooth log magnitude M(sigma) = 0.3 sigma^2 - 0.5 sigma measured on the 50-step schedule (UniPC, shift 5):
    // r_s = exp(M(sigma_s) - M(sigma_{s-1})). Used at 20 steps, the ratio between two 20-step sigmas must be
    // exp(M(b) - M(a)) (to the interpolation error), while the reference's nearest-index reuse of a 50-step
    // ratio is the change over a much shorter stretch of the schedule.
    auto M = [](double s) { return 0.3 * s * s - 0.5 * s; };
    const auto s50 = sampling::unipc_schedule(50, 5.0).sigmas;
    policies::MagRatios r;
    r.name = "smooth", r.blocks = 2;
    for (int i = 0; i < 50; ++i) {
        r.sigmas.push_back(s50[size_t(i)]);
        r.ratios[0].push_back(i == 0 ? 1.0 : std::exp(M(s50[size_t(i)]) - M(s50[size_t(i - 1)])));
    }
    r.ratios[1] = r.ratios[0];
    for (int i = 1; i < 50; ++i)  // the calibration schedule gives back its own ratios
        EXPECT_NEAR(policies::magcache_ratio(r, 0, r.sigmas[size_t(i - 1)], r.sigmas[size_t(i)]), r.ratios[0][size_t(i)], 1e-12) << i;
    const auto s20 = sampling::unipc_schedule(20, 5.0).sigmas;
    double worst_sigma = 0, worst_index = 0;
    for (int i = 1; i < 20; ++i) {
        const double truth = std::exp(M(s20[size_t(i)]) - M(s20[size_t(i - 1)]));
        const double got   = policies::magcache_ratio(r, 0, s20[size_t(i - 1)], s20[size_t(i)]);
        const double index = r.ratios[0][size_t(std::lround(i * 49.0 / 19.0))];  // nearest_interp
        worst_sigma = std::max(worst_sigma, std::abs(got - truth));
        worst_index = std::max(worst_index, std::abs(index - truth));
    }
    EXPECT_LT(worst_sigma, 2e-3);
    EXPECT_GT(worst_index, 5 * worst_sigma);
}

TEST(EasyCache, DecisionSequenceFromTheReference) {
    // easycache_forward with warm-up 2, final_full 1, threshold 0.1, k = 0.2 / 0.1 = 2, mean|o| = 1, input
    // changes dx = -, 0.1, 0.02, 0.02, 0.03, 0.01, 0.01, 0.05 (cond):
    //  0, 1: warm-up -> compute, acc 0.  2: acc 2*0.02 = 0.04 < 0.1 -> reuse.  3: acc 0.08 -> reuse.
    //  4: acc 0.14 -> compute, acc 0.  5: 0.02 -> reuse.  6: 0.04 -> reuse.  7: last step -> compute.
    // The uncond call of a step follows the cond decision whatever its own numbers.
    auto p = policy("{name: easycache, threshold: 0.1, warmup: 2, final_full: 1}");
    EXPECT_TRUE(p->tracks_io());
    const std::vector<double> dx     = {kNaN, 0.1, 0.02, 0.02, 0.03, 0.01, 0.01, 0.05};
    const std::vector<int>    expect = {1, 1, 0, 0, 1, 0, 0, 1};
    for (int s = 0; s < 8; ++s)
        for (int b = 0; b < 2; ++b) {
            Numbers n;
            n.dx = b == 0 ? dx[size_t(s)] : 100.0;
            n.out_change = 0.2, n.in_change = 0.1, n.out_abs = 1.0;
            auto plan = p->plan({s, 8, b, 0, &n, kNaN});
            EXPECT_EQ(plan.reuse_output ? 0 : 1, expect[size_t(s)]) << "step " << s << " branch " << b;
            EXPECT_TRUE(plan.output_from_input);
        }
    // no k yet (a single computed call): compute
    auto q = policy("{name: easycache, threshold: 10, warmup: 0}");
    Numbers n;
    n.dx = 0.01, n.out_abs = 1;
    EXPECT_FALSE(q->plan({1, 8, 0, 0, &n, kNaN}).reuse_output);
}

TEST(EasyCache, ReusedCallsReturnLatentPlusTransformationVector) {
    auto p = policy("{name: easycache, threshold: 1e9, warmup: 2, final_full: 0}");
    auto r = run_tiny(*p, 5);
    const auto& m = r.stats.compute_mask;  // [5, 2, 2]
    // steps 0, 1 compute (warm-up), 2 has k from 0 and 1 and reuses, and so on: 3 of 5 steps reused
    EXPECT_EQ(m.sum().item<int64_t>(), 2 * 2 * 2);
    EXPECT_EQ(m[2].sum().item<int64_t>(), 0);
    EXPECT_EQ(r.stats.computed_fraction(), 0.4);
    // memory per branch: the last output, its latent and the previous latent, three latent-sized f32 tensors
    const int64_t lat = r.res.final_latent.numel() * 4;
    EXPECT_EQ(r.stats.peak_cache_bytes, 2 * 3 * lat);
}

TEST(TaylorSeer, ScheduleFromCalType) {
    // cal_type: full while step < first_enhance or cache_counter == N - 1 (counter := 0), else Taylor (counter++).
    //  N 3, warm-up 1: full 0, 3, 6 -> 1 0 0 1 0 0 1 0.   N 3, warm-up 3: full 0, 1, 2, 5 -> 1 1 1 0 0 1 0 0.
    const std::map<int, std::vector<int>> expect = {{1, {1, 0, 0, 1, 0, 0, 1, 0}}, {3, {1, 1, 1, 0, 0, 1, 0, 0}}};
    for (const auto& [w, pattern] : expect) {
        auto p = policy("{name: taylorseer, interval: 3, warmup: " + std::to_string(w) + "}");
        EXPECT_EQ(p->forecast_order(), 1);
        p->reset();
        for (int s = 0; s < 8; ++s)
            for (int b = 0; b < 2; ++b) {
                auto plan = p->plan({s, 8, b, 0, nullptr, kNaN});
                ASSERT_EQ(plan.forecast.size(), 1u);
                EXPECT_EQ(plan.forecast[0] ? 0 : 1, pattern[size_t(s)]) << "warmup " << w << " step " << s;
                EXPECT_EQ(plan.taylor_derivatives, s > w - 2);
            }
    }
}

TEST(TaylorSeer, FactorsAndForecastByHand) {
    // records 1 (step 0), 4 (step 3), 13 (step 6), order 2:
    //  step 3: f0 4, f1 (4 - 1) / 3 = 1.  step 6: f0 13, f1 (13 - 4) / 3 = 3, f2 (3 - 1) / 3 = 2/3.
    //  forecast 3 steps on: 13 + 3 * 3 + (2/3) * 9 / 2 = 25.  Order 1 after step 3: 4 + 1 * 2 = 6 two steps on.
    auto v = [](double x) { return torch::full({1, 1, 1}, x, torch::kFloat64); };
    sampling::TaylorFactors f;
    f.update(v(1), 0, 2, true);
    EXPECT_EQ(f.terms(), 1u);
    f.update(v(4), 3, 2, true);
    EXPECT_NEAR(f.forecast(2).item<double>(), 6.0, 1e-12);
    f.update(v(13), 3, 2, true);
    EXPECT_EQ(f.terms(), 3u);
    EXPECT_NEAR(f.forecast(3).item<double>(), 25.0, 1e-12);
    f.update(v(2), 1, 2, false);  // no derivatives: the feature alone
    EXPECT_EQ(f.terms(), 1u);
    EXPECT_EQ(f.bytes(), 8);
}

TEST(TaylorSeer, EngineForecastsMarksAndCountsMemory) {
    auto none = policy("none");
    auto p    = policy("{name: taylorseer, interval: 3, order: 1}");
    auto a    = run_tiny(*none, 6);
    auto r    = run_tiny(*p, 6);
    const auto& m = r.stats.compute_mask;  // [6, 2, 2]: full 0, 3; forecast 1, 2, 4, 5
    for (int s = 0; s < 6; ++s)
        EXPECT_EQ(m[s][0][0].item<uint8_t>(), s % 3 == 0 ? sampling::kComputed : sampling::kForecast) << s;
    EXPECT_NEAR(r.stats.computed_fraction(), 2.0 / 6.0, 1e-12);
    EXPECT_FALSE(torch::equal(a.res.final_latent, r.res.final_latent));
    // per branch and block: self-attn, cross-attn and FFN outputs, f0 and f1 each, [1, 48, 64] f32
    EXPECT_EQ(r.stats.peak_cache_bytes, 2 * 2 * 3 * 2 * 48 * 64 * 4);
    EXPECT_GT(r.stats.flops_indicator, 0);
    EXPECT_GT(r.stats.ideal_speedup(), 1.0);
}

// ---- bad input ----

struct BadRule {
    const char* name;
    const char* yaml;    // FILE stands for the path of a ratio file holding `file`
    const char* expect;
    const char* file = "";
};

class RuleBadConfig : public ::testing::TestWithParam<BadRule> {};

TEST_P(RuleBadConfig, ClearError) {
    std::string yaml = GetParam().yaml;
    if (*GetParam().file) {
        const auto path = test::temp_dir() + "/r.yaml";
        std::ofstream(path) << GetParam().file;
        yaml.replace(yaml.find("FILE"), 4, path);
    }
    try {
        policy(yaml, 4);
        FAIL() << "no error for " << yaml;
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find(GetParam().expect), std::string::npos) << e.what();
    }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RuleBadConfig,
    ::testing::Values(
        BadRule{"fb_key", "{name: fbcache, fn: 2}", "unknown option 'fn' (accepted: threshold, warmup)"},
        BadRule{"fb_thr", "{name: fbcache, threshold: -0.1}", "option 'threshold'"},
        BadRule{"db_key", "{name: dbcache, Fn: 2}", "unknown option 'Fn'"},
        BadRule{"db_fn0", "{name: dbcache, fn: 0}", "option 'fn' must be an integer in [1, 100000], got 0"},
        BadRule{"db_nomiddle", "{name: dbcache, fn: 3, bn: 1}", "leaves no middle block to cache"},
        BadRule{"db_caps", "{name: dbcache, max_cached_steps: -2}", "option 'max_cached_steps' must be an integer in [-1, 100000], got -2"},
        BadRule{"mag_auto", "{name: magcache}", "variant 'custom' has no published ratios"},
        BadRule{"mag_missing", "{name: magcache, ratios: /nonexistent/r.yaml}", "names the file '/nonexistent/r.yaml', which does not exist"},
        BadRule{"mag_preset_blocks", "{name: magcache, ratios: wan2.1-t2v-1.3b}", "holds ratios of a 30-block model, but the model has 4 blocks"},
        BadRule{"mag_file_blocks", "{name: magcache, ratios: FILE}", "holds ratios of a 6-block model, but the model has 4 blocks",
                "blocks: 6\nsigmas: [1, 0.5]\ncond: [1, 0.9]\nuncond: [1, 0.9]\n"},
        BadRule{"mag_file_len", "{name: magcache, ratios: FILE}", "r.yaml:3: magcache ratios: option 'cond' must list one ratio per sigma (2), got 1",
                "blocks: 4\nsigmas: [1, 0.5]\ncond: [1]\nuncond: [1, 0.9]\n"},
        BadRule{"mag_file_key", "{name: magcache, ratios: FILE}", "option 'sigmas' is required", "blocks: 4\nsigma: [1, 0.5]\ncond: [1, 1]\nuncond: [1, 0.9]\n"},
        BadRule{"mag_file_order", "{name: magcache, ratios: FILE}", "option 'sigmas' must decrease step by step",
                "blocks: 4\nsigmas: [0.5, 1]\ncond: [1, 1]\nuncond: [1, 0.9]\n"},
        BadRule{"mag_file_ratio", "{name: magcache, ratios: FILE}", "option 'uncond' ratios must be finite and > 0, got -0.9",
                "blocks: 4\nsigmas: [1, 0.5]\ncond: [1, 1]\nuncond: [1, -0.9]\n"},
        BadRule{"mag_retention", "{name: magcache, threshold: 0, retention_ratio: 1.5}", "option 'retention_ratio' must be a number in [0.000000, 1.000000], got '1.5'"},
        BadRule{"mag_name", "{name: magcache, ratios: wan9}", "must be auto, a preset (wan2.1-t2v-1.3b, wan2.1-t2v-14b) or a ratio file (.yaml), got 'wan9'"},
        BadRule{"easy_key", "{name: easycache, ret_steps: 3}", "unknown option 'ret_steps' (accepted: final_full, threshold, warmup)"},
        BadRule{"easy_thr", "{name: easycache, threshold: x}", "option 'threshold'"},
        BadRule{"ts_interval", "{name: taylorseer, interval: 0}", "option 'interval' must be an integer in [1, 100000], got 0"},
        BadRule{"ts_order", "{name: taylorseer, order: 17}", "option 'order' must be an integer in [0, 16], got 17"},
        BadRule{"ts_warmup", "{name: taylorseer, warmup: 0}", "option 'warmup' must be an integer in [1, 100000], got 0"}),
    [](const auto& i) { return std::string(i.param.name); });

TEST(MagCache, PublishedPresetsMatchTheReference) {
    const auto r = policies::magcache_preset("wan2.1-t2v-1.3b");
    ASSERT_EQ(r.sigmas.size(), 50u);
    EXPECT_EQ(r.blocks, 30);
    EXPECT_EQ(r.ratios[0][0], 1.0);
    EXPECT_EQ(r.ratios[0][1], 1.0124);   // mag_ratios[2]
    EXPECT_EQ(r.ratios[1][1], 1.02213);  // mag_ratios[3]
    EXPECT_EQ(r.ratios[1][49], 0.81939); // the last entry
    auto p = policies::make_policy(YAML::Load("{name: magcache}"), {30, "Wan2.1-T2V-1.3B", ""}, "t");
    EXPECT_EQ(p->tag(), "magcache-thr0.12-K2-r0.2-wan2.1-t2v-1.3b");
}

#ifdef PROFDIT_HAVE_HDF5
TEST(CacheRules, EveryRuleRunsInAnExperiment) {
    // profdit run's path (the runner wraps the executor in its recorder): every rule caches something on the
    // embedded model; MagCache uses the shipped 50-step ratios at 8 steps through their sigmas.
    const auto dir = test::temp_dir();
    const std::string ratios = std::string(PROFDIT_TEST_DATA) + "/../../plans/sprites-tiny-magcache.yaml";
    std::ofstream(dir + "/x.yaml") << "name: rules\nmodel: {preset: sprites-tiny, threads: 1}\n"
                                      "sampling: {solver: unipc, steps: 8, shift: 3.0, guide: 4.0}\n"
                                      "prompts: [a red circle moving left over blue stripes]\nseeds: [0]\npolicies:\n  - none\n"
                                      "  - {name: fbcache, threshold: 0.5}\n  - {name: dbcache, fn: 2, bn: 1, threshold: 0.5, warmup: 1}\n"
                                      "  - {name: magcache, threshold: 0.5, max_skip_steps: 3, retention_ratio: 0.2, ratios: " + ratios + "}\n"
                                      "  - {name: easycache, threshold: 1, warmup: 2}\n  - {name: taylorseer, interval: 2}\n"
                                      "metrics: [psnr]\noutput: " + dir + "/x.h5\n";
    run::RunnerOptions o;
    o.quiet = true;
    const auto r = run::run_experiment(run::load_experiment(dir + "/x.yaml", {}), o);
    EXPECT_EQ(r.failed, 0);
    ASSERT_EQ(r.policy_tags.size(), 6u);
    const auto st = store::Store::open_existing(dir + "/x.h5");
    for (size_t i = 1; i < r.policy_tags.size(); ++i) {
        const double f = st.read_dataset("/runs/" + r.policy_tags[i] + "_p0_s0/cache/computed_fraction").item<double>();
        EXPECT_LT(f, 1.0) << r.policy_tags[i];
        EXPECT_GT(f, 0.0) << r.policy_tags[i];
    }
}
#endif

TEST(CacheRules, EveryRuleOnCuda_CUDA) {
    // On a GPU: each rule's cache-nothing setting equals none bit for bit, and a caching setting follows the
    // CPU run's decisions and latents (to float tolerance) on the parity model.
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
    auto model = wan::load_dit(test::data_path("wan21_tiny/dit_tiny_weights.safetensors"),
                               wan::WanConfig::from_json_file(test::data_path("wan21_tiny/config.json")), torch::kCUDA);
    io::SafetensorsReader g(test::data_path("wan21_tiny/dit_tiny_pipeline.safetensors"));
    auto run = [&](policies::CachePolicy& p, wan::WanModel m, const torch::Device& dev) {
        sampling::CachedDenoiser d(m, p, 6);
        sampling::SampleOptions  opt;
        opt.steps = 6;
        auto res  = test::sample_cfg(d, *m, g.load("noise").to(dev), g.load("context_cond"), g.load("context_uncond"), opt);
        return RunOut{res, d.stats()};
    };
    auto none = policy("none");
    auto ref  = run(*none, model, torch::kCUDA);
    for (const char* off : {"{name: fbcache, threshold: 0}", "{name: dbcache, threshold: 0}", "{name: magcache, threshold: 0}",
                            "{name: easycache, threshold: 0, warmup: 1}", "{name: taylorseer, interval: 1}"}) {
        auto p = policy(off);
        EXPECT_TRUE(torch::equal(run(*p, model, torch::kCUDA).res.step_latent, ref.res.step_latent)) << off;
    }
    for (const char* on : {"{name: fbcache, threshold: 0.5}", "{name: easycache, threshold: 1e9, warmup: 2}", "{name: taylorseer, interval: 3, order: 2}"}) {
        auto p = policy(on), q = policy(on);
        auto gpu = run(*p, model, torch::kCUDA);
        auto cpu = run(*q, test::tiny_model(), torch::kCPU);
        EXPECT_TRUE(torch::equal(gpu.stats.compute_mask, cpu.stats.compute_mask)) << on;
        EXPECT_LT(test::max_abs_diff(gpu.res.final_latent, cpu.res.final_latent), 1e-3) << on;
    }
}
