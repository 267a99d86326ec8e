// The cache-policy engine: every policy at its cache-nothing setting equals `none` bit for bit, segment
// construction, refresh schedules, the official ProfilingDiT preset's compute fraction, TeaCache's
// decision rule on a synthetic indicator, per-branch caches, FLOPs, and bad configurations.
#include <fstream>

#include <gtest/gtest.h>

#include "common/error.h"
#include "io/safetensors.h"
#include "metrics/flops.h"
#include "metrics/relative_l1.h"
#include "policies/profiling_dit.h"
#include "policies/schedule.h"
#include "policies/teacache.h"
#include "sampling/cached_denoiser.h"
#include "wan/checkpoint.h"
#include "test_util.h"

using namespace profdit;
using policies::Segment;

namespace {

policies::ModelFacts facts(int blocks) { return {blocks, "custom", ""}; }

std::unique_ptr<policies::CachePolicy> policy(const std::string& yaml, int blocks = 2) {
    return policies::make_policy(YAML::Load(yaml), facts(blocks), "test");
}

struct RunOut {
    sampling::SampleResult res;
    sampling::CacheStats   stats;
};

RunOut run(wan::WanModel model, policies::CachePolicy& p, int steps) {
    io::SafetensorsReader   g(test::data_path("wan21_tiny/dit_tiny_pipeline.safetensors"));
    sampling::CachedDenoiser d(model, p, steps);
    sampling::SampleOptions opt;
    opt.steps = steps;
    auto res  = test::sample_cfg(d, *model, g.load("noise"), g.load("context_cond"), g.load("context_uncond"), opt);
    return {res, d.stats()};
}

std::vector<int> refresh_list(const std::vector<bool>& r) {
    std::vector<int> out;
    for (size_t i = 0; i < r.size(); ++i)
        if (r[i]) out.push_back(int(i));
    return out;
}

}  // namespace

TEST(Policies, NoneEqualsPlainLoop) {
    auto model = test::tiny_model();
    auto none  = policy("none");
    auto a     = run(model, *none, 6);
    io::SafetensorsReader   g(test::data_path("wan21_tiny/dit_tiny_pipeline.safetensors"));
    sampling::PlainDenoiser plain(model);
    sampling::SampleOptions opt;
    opt.steps = 6;
    auto b = test::sample_cfg(plain, *model, g.load("noise"), g.load("context_cond"), g.load("context_uncond"), opt);
    EXPECT_TRUE(torch::equal(a.res.step_latent, b.step_latent));
    EXPECT_EQ(a.stats.computed_fraction(), 1.0);
    EXPECT_DOUBLE_EQ(a.stats.ideal_speedup(), 1.0);
    EXPECT_EQ(a.stats.peak_cache_bytes, 0);
}

class CacheNothing : public ::testing::TestWithParam<std::string> {};

TEST_P(CacheNothing, EqualsNoneBitForBit) {
    auto model = test::tiny_model();
    auto none  = policy("none");
    auto p     = policy(GetParam());
    auto a     = run(model, *none, 6);
    auto b     = run(model, *p, 6);
    EXPECT_TRUE(torch::equal(a.res.step_latent, b.res.step_latent)) << GetParam();
    EXPECT_TRUE(torch::equal(a.res.final_latent, b.res.final_latent)) << GetParam();
    EXPECT_EQ(b.stats.computed_fraction(), 1.0) << GetParam();
}

INSTANTIATE_TEST_SUITE_P(Settings, CacheNothing,
                         ::testing::Values("{name: step_skip, interval: 1}", "{name: step_skip, interval: 1, reuse: output}",
                                           "{name: teacache, threshold: 0, coefficients: wan2.1-t2v-1.3b}",
                                           "{name: teacache, threshold: 0, coefficients: [0, 0, 0, 1, 0], indicator: modulated_input}",
                                           "{name: profiling_dit, background_blocks: []}",
                                           "{name: profiling_dit, background_blocks: [0, 1], warmup: 6}",
                                           "{name: profiling_dit, background_blocks: [1], warmup: 0, schedule: {type: fixed, interval: 1}}"));

TEST(Policies, CachingChangesResultAndSavesCompute) {
    auto model = test::tiny_model();
    auto none  = policy("none");
    auto p     = policy("{name: step_skip, interval: 2, warmup: 1, final_full: 1}");
    auto a     = run(model, *none, 6);
    auto b     = run(model, *p, 6);
    // refresh steps 0, 1, 3, 5 -> steps 2 and 4 reuse: 4/6 computed
    EXPECT_NEAR(b.stats.computed_fraction(), 4.0 / 6.0, 1e-12);
    EXPECT_FALSE(torch::equal(a.res.final_latent, b.res.final_latent));
    EXPECT_EQ(b.stats.compute_mask[2].sum().item<int64_t>(), 0);
    EXPECT_EQ(b.stats.compute_mask[3].sum().item<int64_t>(), 4);
    EXPECT_GT(b.stats.ideal_speedup(), 1.0);
    // one [1, 48, 64] f32 residual per branch
    EXPECT_EQ(b.stats.peak_cache_bytes, 2 * 48 * 64 * 4);
}

TEST(Policies, StepSkipOutputModeCachesOnlyTheOutput) {
    auto model = test::tiny_model();
    auto p     = policy("{name: step_skip, interval: 2, warmup: 1, final_full: 1, reuse: output}");
    auto b     = run(model, *p, 6);
    EXPECT_NEAR(b.stats.computed_fraction(), 4.0 / 6.0, 1e-12);
    // one [16, 3, 8, 8] f32 prediction per branch and no residual (it would never be added back)
    EXPECT_EQ(b.stats.peak_cache_bytes, 2 * 16 * 3 * 8 * 8 * 4);
    EXPECT_FALSE(p->segments().at(0).cacheable);
}

TEST(Segments, FromBackgroundBlocks) {
    auto s = policies::segments_from_background({0, 2, 3, 4, 7}, 8);
    ASSERT_EQ(s.size(), 5u);
    auto expect = [](const Segment& a, int f, int l, bool c) {
        EXPECT_EQ(a.first, f);
        EXPECT_EQ(a.last, l);
        EXPECT_EQ(a.cacheable, c);
    };
    expect(s[0], 0, 0, true);
    expect(s[1], 1, 1, false);
    expect(s[2], 2, 4, true);
    expect(s[3], 5, 6, false);
    expect(s[4], 7, 7, true);
    auto none = policies::segments_from_background({}, 5);
    ASSERT_EQ(none.size(), 1u);
    expect(none[0], 0, 4, false);
    auto all = policies::segments_from_background({0, 1, 2}, 3);
    ASSERT_EQ(all.size(), 1u);
    expect(all[0], 0, 2, true);
    auto official = policies::segments_from_background(policies::block_plan_presets()[0].background, 40);
    int cached = 0;
    for (const auto& seg : official) cached += seg.cacheable;
    EXPECT_EQ(cached, 5);  // {0}, {2-7}, {10-20}, {25-32}, {37-38}
}

TEST(Schedules, FixedLinearListFinal) {
    policies::RefreshSchedule f;
    f.type = "fixed", f.warmup = 6, f.interval = 6;
    EXPECT_EQ(refresh_list(f.refresh_steps(50)), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 12, 18, 24, 30, 36, 42, 48}));

    policies::RefreshSchedule l;
    l.type = "linear", l.warmup = 6, l.t_max = 12, l.t_min = 2;
    // T_s = 12 - 10 (s - 6) / 44 rounded: 12, 9.27, 7.23, 5.64, 4.27, 3.36, 2.68
    EXPECT_EQ(refresh_list(l.refresh_steps(50)), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 18, 27, 34, 40, 44, 47}));

    policies::RefreshSchedule li;
    li.type = "list", li.warmup = 2, li.refresh = {5, 9, 30}, li.final_full = 2;
    EXPECT_EQ(refresh_list(li.refresh_steps(12)), (std::vector<int>{0, 1, 5, 9, 10, 11}));
}

TEST(Schedules, FromYamlOptions) {
    auto p = policy("{name: profiling_dit, background_blocks: [1], warmup: 3, schedule: {type: linear, t_max: 4, t_min: 1}}");
    EXPECT_EQ(p->tag(), "profiling_dit-inline-1-w3-linear4to1");
    auto q = policy("{name: profiling_dit, background_blocks: [0], schedule: 3}");
    EXPECT_EQ(q->tag(), "profiling_dit-inline-0-w6-fixed3");
}

TEST(ProfilingDiT, OfficialPresetComputesExactly0496On40Blocks50Steps) {
    wan::WanConfig c = wan::WanConfig::from_json_file(test::data_path("wan21_tiny/config.json"));
    c.num_layers = 40;
    wan::WanModel model(c);
    wan::init_random(model, 3);
    auto p = policies::make_policy(YAML::Load("{name: profiling_dit, preset: wan2.1-t2v-14b-official}"), {40, "custom", ""}, "test");
    EXPECT_EQ(p->tag(), "profiling_dit-wan2.1-t2v-14b-official-w6-fixed6");
    torch::manual_seed(1);
    auto noise = torch::randn({16, 1, 4, 4}), ctx = torch::randn({3, 32});
    sampling::CachedDenoiser d(model, *p, 50);
    sampling::SampleOptions  opt;
    opt.steps = 50;
    test::sample_cfg(d, *model, noise, ctx, ctx, opt);
    EXPECT_DOUBLE_EQ(d.stats().computed_fraction(), 0.496);
    EXPECT_NEAR(1.0 / d.stats().computed_fraction(), 2.016, 1e-3);
    // block FLOPs dominate; embed and head keep the FLOPs speedup a little under the block one
    EXPECT_LT(d.stats().ideal_speedup(), 2.0162);
    EXPECT_GT(d.stats().ideal_speedup(), 1.5);
    // 5 cached segments per branch at [1, 4, 64] f32
    EXPECT_EQ(d.stats().peak_cache_bytes, 2 * 5 * 4 * 64 * 4);
}

// A fake indicator source: the indicator's change since the branch's previous call is prescribed per call.
class SyntheticIndicator : public policies::Indicators {
  public:
    explicit SyntheticIndicator(double change) : change_(change) {}
    torch::Tensor e() override { throw std::logic_error("a policy asked for a tensor"); }
    torch::Tensor e0() override { return e(); }
    torch::Tensor modulated_input() override { return e(); }
    double        indicator_change(const std::string&) override { return change_; }

  private:
    double change_;
};

TEST(TeaCache, DecisionRuleOnSyntheticIndicator) {
    // v_s = prod (1 + r_s) with r = 0.12, 0.10, 0.08, 0.05, 0.03, 0.02, 0.02, 0.03, 0.06, 0.09, 0.15 (f32).
    // The t2v-1.3b polynomial maps these relative L1 changes to 0.27264, 0.24992, 0.18941, 0.07738, 0.03667,
    // 0.04234, 0.04234, 0.03667, 0.11263, 0.22326. Steps 0 and 11 are forced (ret_steps 1, final_full 1).
    // thr 0.05: accumulate, compute when the sum reaches 0.05 and reset: skip 5 (0.0367), 7 (0.0423).
    // thr 0.08: skip 4 (0.0774), 6 (0.0423), 8 (0.0367); 5 computes at 0.0774 + 0.0367 = 0.114.
    const std::vector<float> v = {1.0f, 1.12f, 1.232f, 1.33056f, 1.397088f, 1.4390006f, 1.4677807f,
                                  1.4971362f, 1.5420504f, 1.6345733f, 1.781685f, 2.0489378f};
    const std::map<double, std::vector<int>> expected = {{0.05, {1, 1, 1, 1, 1, 0, 1, 0, 1, 1, 1, 1}},
                                                         {0.08, {1, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1}}};
    for (const auto& [thr, pattern] : expected) {
        auto p = policies::make_policy(YAML::Load("{name: teacache, coefficients: wan2.1-t2v-1.3b, threshold: " + std::to_string(thr) + "}"),
                                       facts(2), "test");
        auto* tc = dynamic_cast<policies::TeaCachePolicy*>(p.get());
        ASSERT_NE(tc, nullptr);
        EXPECT_NEAR(tc->rescale(0.05), 0.07738, 1e-5);
        for (int s = 0; s < int(v.size()); ++s)
            for (int b = 0; b < 2; ++b) {
                SyntheticIndicator ind(s == 0 ? std::nan("") : metrics::relative_l1(torch::full({1, 1}, v[s]), torch::full({1, 1}, v[s - 1])));
                auto plan = p->plan({s, int(v.size()), b, 0, &ind});
                EXPECT_EQ(plan.reuse[0] ? 0 : 1, pattern[s]) << "thr " << thr << " step " << s << " branch " << b;
            }
    }
}

TEST(TeaCache, RelativeL1IsFiniteOnAZeroIndicator) {
    const auto z = torch::zeros({1, 4}), x = torch::full({1, 4}, 0.5f);
    EXPECT_EQ(metrics::relative_l1(z, z), 0.0);                                // was 0/0 = NaN
    EXPECT_NEAR(metrics::relative_l1(x, z) * metrics::kRelativeL1Floor, 0.5, 1e-6);  // was inf
    EXPECT_DOUBLE_EQ(metrics::relative_l1(z, x), 1.0);                         // above the floor: upstream's ratio
}

// The executor measures TeaCache's indicator change (a policy sees the number, never the tensor): per branch,
// NaN at the first call, then relative_l1 of this call's indicator against the branch's previous one; one
// indicator per run.
class RecordsIndicatorChange : public policies::CachePolicy {
  public:
    explicit RecordsIndicatorChange(int blocks, std::string ask) : blocks_(blocks), ask_(std::move(ask)) {}
    std::string          name() const override { return "record"; }
    std::string          tag() const override { return "record"; }
    std::vector<policies::Segment> segments() const override { return {{0, blocks_ - 1, false}}; }
    YAML::Node           params() const override { return {}; }
    policies::CallPlan   plan(const policies::CallInfo& call) override {
        changes[call.branch].push_back(call.indicators->indicator_change(ask_));
        e[call.branch].push_back(call.indicators->e().clone());
        if (call.step == 2 && !second.empty()) call.indicators->indicator_change(second);
        return {false, {false}};
    }
    std::vector<double>        changes[2];
    std::vector<torch::Tensor> e[2];
    std::string                second;

  private:
    int         blocks_;
    std::string ask_;
};

TEST(TeaCache, TheExecutorMeasuresTheIndicatorChangePerBranch) {
    auto model = test::tiny_model();
    RecordsIndicatorChange p(int(model->num_blocks()), "e");
    run(model, p, 5);
    for (int b = 0; b < 2; ++b) {
        ASSERT_EQ(p.changes[b].size(), 5u);
        EXPECT_TRUE(std::isnan(p.changes[b][0])) << b;
        for (size_t s = 1; s < 5; ++s) {
            EXPECT_EQ(p.changes[b][s], metrics::relative_l1(p.e[b][s], p.e[b][s - 1])) << b << " " << s;
            EXPECT_GT(p.changes[b][s], 0.0) << b << " " << s;
        }
    }
    RecordsIndicatorChange mixed(int(model->num_blocks()), "e");
    mixed.second = "e0";
    EXPECT_THROW(run(model, mixed, 5), std::logic_error);
}

TEST(Policies, BranchesNeverShareCachedTensors) {
    auto model = test::tiny_model();
    auto p     = policy("{name: profiling_dit, background_blocks: [1], warmup: 1, schedule: {type: fixed, interval: 3}}");
    io::SafetensorsReader    g(test::data_path("wan21_tiny/dit_tiny_pipeline.safetensors"));
    sampling::CachedDenoiser d(model, *p, 5);
    sampling::SampleOptions  opt;
    opt.steps = 5;
    test::sample_cfg(d, *model, g.load("noise"), g.load("context_cond"), g.load("context_uncond"), opt);
    const auto& c = d.cached(sampling::kCond, 1);
    const auto& u = d.cached(sampling::kUncond, 1);
    ASSERT_TRUE(c.defined() && u.defined());
    EXPECT_NE(c.data_ptr(), u.data_ptr());
    EXPECT_FALSE(torch::equal(c, u));
    EXPECT_FALSE(d.cached(sampling::kCond, 0).defined());  // block 0 is foreground: never cached
}

TEST(Flops, MidSizeBlockByHand) {
    wan::WanConfig c;
    c.dim = 512, c.num_heads = 8, c.num_layers = 8, c.ffn_dim = 2048, c.text_len = 512, c.text_dim = 4096;
    const auto f = metrics::dit_flops(c, 2048);
    // 2 L d^2 4 + 2 L^2 d 2 + (2 L d^2 2 + 2 Lc d^2 2) + 2 L Lc d 2 + 2 L d f 2 with L 2048, Lc 512, d 512, f 2048
    EXPECT_DOUBLE_EQ(f.block.self_attn_proj, 4294967296.0);
    EXPECT_DOUBLE_EQ(f.block.self_attn_scores, 8589934592.0);
    EXPECT_DOUBLE_EQ(f.block.cross_attn_proj, 2684354560.0);
    EXPECT_DOUBLE_EQ(f.block.cross_attn_scores, 2147483648.0);
    EXPECT_DOUBLE_EQ(f.block.ffn, 8589934592.0);
    EXPECT_DOUBLE_EQ(f.block.total(), 26306674688.0);
    // patch 2 L 64 d + time 2 (256 d + d^2 + 6 d^2) + text 2 Lc (4096 d + d^2); head 2 L d 64
    EXPECT_DOUBLE_EQ(f.embed, 134217728.0 + 3932160.0 + 2415919104.0);
    EXPECT_DOUBLE_EQ(f.head, 134217728.0);
}

struct BadPolicy {
    const char* name;
    const char* yaml;
    const char* expect;
};

class PolicyBadConfig : public ::testing::TestWithParam<BadPolicy> {};

TEST_P(PolicyBadConfig, ClearError) {
    try {
        policy(GetParam().yaml, 4);
        FAIL() << "no error for " << GetParam().yaml;
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find(GetParam().expect), std::string::npos) << e.what();
    }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, PolicyBadConfig,
    ::testing::Values(
        BadPolicy{"unknown_policy", "fastcache", "unknown policy 'fastcache' (accepted: none, step_skip, teacache, profiling_dit, fbcache, dbcache, magcache, easycache, taylorseer)"},
        BadPolicy{"unknown_option", "{name: step_skip, intervall: 2}", "unknown option 'intervall' (accepted: final_full, interval, reuse, warmup)"},
        BadPolicy{"wrong_type", "{name: step_skip, interval: two}", "option 'interval' must be an integer in [1, 100000], got 'two'"},
        BadPolicy{"out_of_range", "{name: step_skip, interval: 0}", "option 'interval' must be an integer in [1, 100000], got 0"},
        BadPolicy{"bad_choice", "{name: step_skip, reuse: everything}", "option 'reuse' must be one of residual, output, got 'everything'"},
        BadPolicy{"none_option", "{name: none, x: 1}", "unknown option 'x'"},
        BadPolicy{"tc_negative", "{name: teacache, threshold: -1, coefficients: wan2.1-t2v-14b}", "option 'threshold'"},
        BadPolicy{"tc_coeff_len", "{name: teacache, coefficients: [1, 2, 3]}", "must list 5 numbers"},
        BadPolicy{"tc_preset", "{name: teacache, coefficients: wan9}", "got 'wan9'"},
        BadPolicy{"tc_auto_custom", "{name: teacache}", "variant 'custom' has no published set"},
        BadPolicy{"tc_indicator", "{name: teacache, coefficients: wan2.1-t2v-1.3b, indicator: x}", "must be one of e, e0, modulated_input"},
        BadPolicy{"pd_none", "{name: profiling_dit}", "needs exactly one of plan (file), preset or background_blocks"},
        BadPolicy{"pd_two", "{name: profiling_dit, preset: wan2.1-t2v-14b-official, background_blocks: [1]}", "exactly one"},
        BadPolicy{"pd_block_range", "{name: profiling_dit, background_blocks: [1, 9]}", "names block 9 but the model has 4 blocks"},
        BadPolicy{"pd_preset_blocks", "{name: profiling_dit, preset: wan2.1-t2v-14b-official}", "the model has 4 blocks"},
        BadPolicy{"pd_sched_type", "{name: profiling_dit, background_blocks: [1], schedule: {type: cosine}}", "must be one of fixed, linear, list, got 'cosine'"},
        BadPolicy{"pd_sched_key", "{name: profiling_dit, background_blocks: [1], schedule: {type: fixed, every: 2}}", "unknown option 'every'"},
        BadPolicy{"pd_linear", "{name: profiling_dit, background_blocks: [1], schedule: {type: linear, t_max: 2, t_min: 5}}", "must not exceed t_max"},
        BadPolicy{"pd_list", "{name: profiling_dit, background_blocks: [1], schedule: {type: list}}", "'refresh' is required"},
        BadPolicy{"pd_sched_scalar", "{name: profiling_dit, background_blocks: [1], schedule: '3}, x: ['}", "option 'interval' must be an integer"},
        BadPolicy{"pd_missing_plan", "{name: profiling_dit, plan: /nonexistent/plan.yaml}", "/nonexistent/plan.yaml: cannot open plan file"},
        BadPolicy{"not_a_map", "[1, 2]", "a policy must be a name or a map with 'name'"}),
    [](const auto& i) { return std::string(i.param.name); });

TEST(ProfilingDiT, PlanFiles) {
    const auto dir = test::temp_dir();
    std::ofstream(dir + "/p.yaml") << "background_blocks: [2, 3]\nr_attn: [0.9, 0.8, 0.1, 0.2]\ntau: 0.5\n"
                                      "schedule: {warmup: 2, type: fixed, interval: 3}\nsource: {model: tiny}\n";
    auto p = policy("{name: profiling_dit, plan: " + dir + "/p.yaml}", 4);
    EXPECT_EQ(p->tag(), "profiling_dit-p-w2-fixed3");
    auto q = policy("{name: profiling_dit, plan: " + dir + "/p.yaml, warmup: 1, schedule: {type: fixed, interval: 5}}", 4);
    EXPECT_EQ(q->tag(), "profiling_dit-p-w1-fixed5");

    std::ofstream(dir + "/bad.yaml") << "background_blocks: [2, 3\n";
    try {
        policy("{name: profiling_dit, plan: " + dir + "/bad.yaml}", 4);
        FAIL();
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("bad.yaml"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("malformed YAML"), std::string::npos) << e.what();
    }
    std::ofstream(dir + "/key.yaml") << "background_blocks: [1]\nforeground: [0]\n";
    try {
        policy("{name: profiling_dit, plan: " + dir + "/key.yaml}", 4);
        FAIL();
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("key.yaml:2"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("unknown option 'foreground'"), std::string::npos) << e.what();
    }
}

TEST(Policies, TagsAreDeterministic) {
    EXPECT_EQ(policy("{name: teacache, threshold: 0.08, coefficients: wan2.1-t2v-1.3b}")->tag(),
              "teacache-thr0.08-e-wan2.1-t2v-1.3b-r1-f1");
    EXPECT_EQ(policy("{name: teacache, threshold: 0.1, coefficients: wan2.1-t2v-1.3b-ret}")->tag(),
              "teacache-thr0.1-e0-wan2.1-t2v-1.3b-ret-r5-f0");
    EXPECT_EQ(policies::make_policy(YAML::Load("{name: teacache}"), {30, "Wan2.1-T2V-1.3B", ""}, "t")->tag(),
              "teacache-thr0.08-e-wan2.1-t2v-1.3b-r1-f1");
    EXPECT_EQ(policy("{name: step_skip, interval: 3, warmup: 2}")->tag(), "step_skip-i3-w2-f1-residual");
    EXPECT_EQ(policy("none")->tag(), "none");
}

TEST(TeaCache, LoadsCalibratedCoefficientFile) {
    const auto dir = test::temp_dir();
    std::ofstream(dir + "/sprites-cal.yaml") << "# written by profdit calibrate teacache\ncoefficients: [1, -2, 3, 0.5, 0.01]\n"
                                                "indicator: e0\nr2: 0.97\nret_steps: 2\nfinal_full: 0\nsource: {model: \"x\", points: 9}\n";
    auto p = policy("{name: teacache, threshold: 0.1, coefficients: " + dir + "/sprites-cal.yaml}");
    EXPECT_EQ(p->tag(), "teacache-thr0.1-e0-sprites-cal-r2-f0");
    EXPECT_EQ(p->params()["coefficients"].as<std::vector<double>>(), (std::vector<double>{1, -2, 3, 0.5, 0.01}));
    EXPECT_NEAR(dynamic_cast<policies::TeaCachePolicy&>(*p).rescale(0.5), 0.0625 - 0.25 + 0.75 + 0.25 + 0.01, 1e-12);
    // The policy's own options override the file's.
    auto q = policy("{name: teacache, threshold: 0.1, coefficients: " + dir + "/sprites-cal.yaml, indicator: modulated_input, ret_steps: 1, final_full: 1}");
    EXPECT_EQ(q->tag(), "teacache-thr0.1-modulated_input-sprites-cal-r1-f1");
    // Only coefficients are required; a file without the extension is recognised by existing.
    std::ofstream(dir + "/plain") << "coefficients: [0, 0, 0, 1, 0]\n";
    EXPECT_EQ(policy("{name: teacache, coefficients: " + dir + "/plain}")->tag(), "teacache-thr0.08-modulated_input-plain-r1-f1");
}

TEST(TeaCache, BadCoefficientFiles) {
    const auto dir = test::temp_dir();
    struct Case {
        std::string file, text, expect;
    };
    for (const Case& c : {Case{"missing.yaml", "", "option 'coefficients' names the file '" + dir + "/missing.yaml', which does not exist"},
                          Case{"malformed.yaml", "coefficients: [1, 2\n", "malformed.yaml:"},
                          Case{"list.yaml", "[1, 2, 3]\n", "list.yaml: a TeaCache coefficient file must be a YAML map"},
                          Case{"none.yaml", "indicator: e\n", "none.yaml: teacache coefficients: option 'coefficients' is required"},
                          Case{"short.yaml", "coefficients: [1, 2]\n", "short.yaml:1: teacache coefficients: option 'coefficients' must list 5 numbers"},
                          Case{"key.yaml", "coefficients: [0, 0, 0, 1, 0]\nthreshold: 0.1\n", "key.yaml:2: teacache coefficients: unknown option 'threshold'"},
                          Case{"ind.yaml", "coefficients: [0, 0, 0, 1, 0]\nindicator: x\n", "ind.yaml:2: teacache coefficients: option 'indicator' must be one of"}}) {
        if (!c.text.empty()) std::ofstream(dir + "/" + c.file) << c.text;
        try {
            policy("{name: teacache, coefficients: " + dir + "/" + c.file + "}");
            ADD_FAILURE() << "no error for " << c.file;
        } catch (const InputError& e) {
            EXPECT_NE(std::string(e.what()).find(c.expect), std::string::npos) << e.what();
        }
    }
}

// A file measured on other weights (source.model's hash differs from the run's) fails naming the option, the file
// and both fingerprints; the same hash under another label, a file without source.model, or a run that does not
// know its weights is used as it is.
TEST(Policies, FilesMeasuredOnOtherWeightsAreRefused) {
    const auto dir     = test::temp_dir();
    const auto made_on = std::string("sprites-tiny fnv1a64:00000000000000aa");
    std::ofstream(dir + "/plan.yaml") << "background_blocks: [1, 2]\nsource:\n  model: " << made_on << "\n  seeds: [0, 1]\n";
    std::ofstream(dir + "/tc.yaml") << "coefficients: [0, 0, 0, 1, 0]\nsource: {model: \"" << made_on << "\", points: 9}\n";
    std::ofstream(dir + "/mag.yaml") << "blocks: 4\nsigmas: [1, 0.5]\ncond: [1, 0.9]\nuncond: [1, 0.9]\nsource: {model: " << made_on << "}\n";
    std::ofstream(dir + "/hand.yaml") << "background_blocks: [1, 2]\n";
    const struct {
        std::string key, yaml;
    } files[] = {{"plan", "{name: profiling_dit, plan: " + dir + "/plan.yaml}"},
                 {"coefficients", "{name: teacache, coefficients: " + dir + "/tc.yaml}"},
                 {"ratios", "{name: magcache, ratios: " + dir + "/mag.yaml}"}};
    const policies::ModelFacts other{4, "custom", "sprites-tiny fnv1a64:00000000000000bb"};
    for (const auto& f : files) {
        try {
            policies::make_policy(YAML::Load(f.yaml), other, "x.yaml: policies[1]");
            ADD_FAILURE() << "no error for " << f.yaml;
        } catch (const InputError& e) {
            const std::string what = e.what();
            EXPECT_NE(what.find("x.yaml: policies[1]"), std::string::npos) << what;
            EXPECT_NE(what.find("option '" + f.key + "' names '" + dir), std::string::npos) << what;
            EXPECT_NE(what.find(made_on), std::string::npos) << what;
            EXPECT_NE(what.find(other.weights), std::string::npos) << what;
        }
        EXPECT_NO_THROW(policies::make_policy(YAML::Load(f.yaml), {4, "custom", "my-copy fnv1a64:00000000000000aa"}, "t")) << f.yaml;
        EXPECT_NO_THROW(policies::make_policy(YAML::Load(f.yaml), {4, "custom", ""}, "t")) << f.yaml;
        EXPECT_NO_THROW(policies::make_policy(YAML::Load(f.yaml), {4, "custom", "tiny random weights seed 0 (custom)"}, "t")) << f.yaml;
    }
    EXPECT_NO_THROW(policies::make_policy(YAML::Load("{name: profiling_dit, plan: " + dir + "/hand.yaml}"), other, "t"));
}
