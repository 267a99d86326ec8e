// Budget matching (run/budget.h): the bisection on synthetic curves, the option checks, and every threshold
// policy matched to target_computed 0.5 on the embedded model, recorded in the file and read back on resume.
#include <cmath>
#include <fstream>

#include <gtest/gtest.h>

#include "run/budget.h"
#include "run/experiment.h"
#include "run/runner.h"
#include "store/store.h"
#include "test_util.h"

using namespace profdit;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

const policies::Knob& threshold_knob() { return *policies::continuous_knob("teacache"); }

run::BudgetTarget target(const std::string& kind, double value, double tolerance = 0.02) {
    run::BudgetTarget t;
    t.kind      = kind;
    t.value     = value;
    t.tolerance = tolerance;
    return t;
}

std::string take_error(const std::string& yaml) {
    return test::input_error_of([&] {
        YAML::Node n = YAML::Load(yaml);
        run::take_budget_target(n, 0.02, "x.yaml:9");
    });
}

}  // namespace

TEST(Budget, BisectionLandsWithinToleranceAndLaterTargetsReuseTheEvaluations) {
    int  calls = 0;
    auto curve = [&](double v) { return ++calls, 1.0 / (1.0 + 10.0 * v); };  // ideal speedup 1 + 10 v
    std::vector<run::BudgetEval> known;
    const auto two = run::match_budget("teacache", threshold_knob(), target("speedup", 2.0), curve, known, "x.yaml:9");
    EXPECT_EQ(two.knob, "threshold");
    EXPECT_NEAR(1.0 / two.computed, 2.0, 0.04);
    EXPECT_NEAR(two.value, 0.1, 0.1 * 0.04 * 2);
    EXPECT_EQ(int(two.evals.size()), calls);
    EXPECT_GE(calls, 3);  // both ends, then the bisection
    EXPECT_EQ(known.size(), two.evals.size());

    const int before = calls;
    const auto half  = run::match_budget("teacache", threshold_knob(), target("computed", 0.25), curve, known, "x.yaml:9");
    EXPECT_NEAR(half.computed, 0.25, 0.25 * 0.02);
    EXPECT_GT(calls, before);
    EXPECT_EQ(int(half.evals.size()), calls - before);  // the ends were known: no evaluation of 1e-4 or 10 again
    for (const auto& e : half.evals) EXPECT_TRUE(e.knob != threshold_knob().lo && e.knob != threshold_knob().hi);

    const int again = calls;  // a target already inside a known point's window: no evaluation at all
    const auto same = run::match_budget("teacache", threshold_knob(), target("speedup", 2.0 * 1.001), curve, known, "x.yaml:9");
    EXPECT_EQ(calls, again);
    EXPECT_EQ(same.value, two.value);
}

TEST(Budget, UnreachableTargetIsOneClearError) {
    std::vector<run::BudgetEval> known;
    auto capped = [](double v) { return std::max(0.6, 1.0 / (1.0 + v)); };  // at most 1.667x
    const auto e = test::input_error_of([&] { run::match_budget("magcache", threshold_knob(), target("speedup", 3.0), capped, known, "x.yaml:9"); });
    EXPECT_TRUE(contains(e, "x.yaml:9: policy magcache target_speedup 3: out of reach: its most reuse in the search range (threshold 10) gives 1.667x ideal")) << e;

    std::vector<run::BudgetEval> k2;
    auto eager = [](double) { return 0.1; };  // reuses everything at any threshold
    const auto e2 = test::input_error_of([&] { run::match_budget("fbcache", threshold_knob(), target("computed", 0.5), eager, k2, "x.yaml:9"); });
    EXPECT_TRUE(contains(e2, "out of reach: its least reuse in the search range (threshold 0.0001) already gives computed 0.100")) << e2;
}

TEST(Budget, AJumpOverTheToleranceWindowIsAnError) {
    std::vector<run::BudgetEval> known;
    auto step = [](double v) { return v < 0.05 ? 1.0 : 0.3; };
    const auto e = test::input_error_of([&] { run::match_budget("easycache", threshold_knob(), target("computed", 0.5), step, known, "x.yaml:9"); });
    EXPECT_TRUE(contains(e, "x.yaml:9: policy easycache target_computed 0.5: no threshold lands within the tolerance (2%)")) << e;
    EXPECT_TRUE(contains(e, "gives computed 1.000")) << e;
    EXPECT_TRUE(contains(e, "gives computed 0.300")) << e;
}

TEST(Budget, TargetOptionsAreChecked) {
    YAML::Node plain = YAML::Load("{name: teacache, threshold: 0.1}");
    EXPECT_FALSE(run::take_budget_target(plain, 0.02, "x"));
    YAML::Node n = YAML::Load("{name: magcache, target_speedup: 2.5, ratios: r.yaml}");
    const auto t = run::take_budget_target(n, 0.05, "x");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->kind, "speedup");
    EXPECT_EQ(t->value, 2.5);
    EXPECT_EQ(t->tolerance, 0.05);
    EXPECT_EQ(t->label(), "x2.5");
    EXPECT_FALSE(n["target_speedup"]);  // taken out: the policy never sees it
    EXPECT_EQ(n["ratios"].Scalar(), "r.yaml");

    EXPECT_TRUE(contains(take_error("{name: teacache, target_speedup: 2, target_computed: 0.5}"),
                         "x.yaml:9: policy teacache: give one of target_speedup and target_computed, not both"));
    EXPECT_TRUE(contains(take_error("{name: step_skip, target_speedup: 2}"),
                         "x.yaml:9: policy step_skip: target_speedup: 'step_skip' has no continuous knob to search (policies with one: teacache, fbcache, dbcache, magcache, easycache)"))
        << take_error("{name: step_skip, target_speedup: 2}");
    EXPECT_TRUE(contains(take_error("{name: teacache, target_computed: 0.5, threshold: 0.1}"),
                         "policy teacache: target_computed finds threshold itself: remove threshold: 0.1"));
    EXPECT_TRUE(contains(take_error("{name: teacache, target_speedup: 0.5}"), "target_speedup: expected an ideal speedup in (1, 1000], got 0.5"));
    EXPECT_TRUE(contains(take_error("{name: teacache, target_computed: 1.5}"), "target_computed: expected a fraction of the full compute in (0, 1), got 1.5"));
    EXPECT_TRUE(contains(take_error("{name: teacache, target_computed: half}"), "target_computed: expected a number, got 'half'"));
}

namespace {

std::string budget_experiment(const std::string& dir, const std::string& policies, const std::string& calibration) {
    const std::string path = dir + "/b.yaml";
    std::ofstream(path) << "name: budget\n"
                           "model: {preset: sprites-tiny, threads: 1}\n"
                           "sampling: {solver: unipc, steps: 12, shift: 3.0, guide: 1.5}\n"
                           "prompts: [a red circle moving left over blue stripes]\n"
                           "seeds: [0]\n"
                           "policies:\n" + policies + calibration +
                           "metrics: [psnr]\n"
                           "timing: {warmup_runs: 0, repeats: 1}\n"
                           "profile: {similarity: false}\n"
                           "output: " + dir + "/b.h5\n";
    return path;
}

const std::string kCalibration = "calibration: {prompts: [a yellow square moving down over a green background], seeds: [7], tolerance: 0.05}\n";

}  // namespace

TEST(Budget, ExperimentChecksTargetsAndCalibration) {
    const auto dir = test::temp_dir();
    auto err = [&](const std::string& policies, const std::string& calibration) {
        return test::input_error_of([&] { run::load_experiment(budget_experiment(dir, policies, calibration), {}); });
    };
    EXPECT_TRUE(contains(err("  - {name: fbcache, target_computed: 0.5}\n", ""),
                         "b.yaml:7: policy fbcache: target_computed is matched on calibration pairs: add calibration: {prompts: [...], seeds: [...]}"));
    EXPECT_TRUE(contains(err("  - {name: fbcache, target_computed: 0.5}\n", "calibration: {prompts: [a red circle moving left over blue stripes], seeds: [1]}\n"),
                         "calibration: prompts: 'a red circle moving left over blue stripes' is also evaluation prompt 0"));
    EXPECT_TRUE(contains(err("  - {name: fbcache, target_computed: 0.5}\n", "calibration: {prompts: [a b], seeds: [1], tolerence: 0.1}\n"),
                         "calibration: unknown option 'tolerence'"))
        << err("  - {name: fbcache, target_computed: 0.5}\n", "calibration: {prompts: [a b], seeds: [1], tolerence: 0.1}\n");
    EXPECT_TRUE(contains(err("  - {name: taylorseer, target_speedup: [2, 3]}\n", kCalibration), "'taylorseer' has no continuous knob"));
    const auto x = run::load_experiment(budget_experiment(dir, "  - {name: easycache, target_speedup: [1.5, 2]}\n", kCalibration), {});
    ASSERT_EQ(x.policies.size(), 2u);
    EXPECT_EQ(x.policies[1].target->value, 2.0);
    EXPECT_EQ(x.policies[1].target->tolerance, 0.05);
    EXPECT_EQ(x.calibration.seeds, std::vector<uint64_t>{7});
}

// The acceptance of issue 18.1: target_computed 0.5 of each threshold policy lands within the tolerance on
// the embedded model; the search is in the file, a resumed sweep reads it back without sampling again.
TEST(Budget, EveryThresholdPolicyLandsOnTheEmbeddedModel) {
    const auto dir    = test::temp_dir();
    const auto plans  = std::string(PROFDIT_TEST_DATA) + "/../../plans/";
    const auto policy = "  - none\n"
                        "  - {name: teacache, target_computed: 0.5, coefficients: " + plans + "sprites-tiny-teacache.yaml}\n"
                        "  - {name: fbcache, target_computed: 0.5}\n"
                        "  - {name: dbcache, fn: 1, bn: 1, warmup: 2, target_computed: 0.5}\n"
                        "  - {name: magcache, target_computed: 0.5, max_skip_steps: 4, ratios: " + plans + "sprites-tiny-magcache.yaml}\n"
                        "  - {name: easycache, warmup: 2, target_computed: 0.5}\n";
    const auto x = run::load_experiment(budget_experiment(dir, policy, kCalibration), {});
    auto       o = run::RunnerOptions{};
    o.quiet      = true;
    const auto r = run::run_experiment(x, o);
    EXPECT_EQ(r.failed, 0);
    const auto st = store::Store::open_existing(dir + "/b.h5");
    const auto groups = st.groups("/budget");
    ASSERT_EQ(groups.size(), 5u);
    for (const auto& g : groups) {
        const std::string p = "/budget/" + g;
        EXPECT_EQ(st.status(p), "done");
        EXPECT_NEAR(st.read_num_attr(p, "computed"), 0.5, 0.5 * 0.05) << g;
        EXPECT_EQ(st.read_num_attr(p, "achieved"), st.read_num_attr(p, "computed"));
        EXPECT_EQ(st.read_str_attr(p, "knob"), "threshold");
        EXPECT_GE(st.read_int_attr(p, "evaluations"), 1);
        EXPECT_EQ(st.read_dataset(p + "/knob").numel(), st.read_dataset(p + "/computed").numel());
    }
    EXPECT_EQ(r.budgets.at(0), "");  // none: no target
    for (size_t i = 1; i < r.policy_tags.size(); ++i) {
        EXPECT_TRUE(contains(r.policy_tags[i], "-c0.5")) << r.policy_tags[i];
        EXPECT_TRUE(contains(r.budgets.at(i), "threshold ")) << r.budgets.at(i);  // the table's budget column
        EXPECT_TRUE(contains(r.budgets.at(i), " for c0.5: computed 0.")) << r.budgets.at(i);
        EXPECT_EQ(st.status("/runs/" + r.policy_tags[i] + "_p0_s0"), "done") << r.policy_tags[i];
    }
    store::merge(dir + "/merged.h5", {dir + "/b.h5"}, false);  // the searches travel with the runs
    EXPECT_EQ(store::Store::open_existing(dir + "/merged.h5").groups("/budget"), groups);
    auto again   = o;
    again.resume = true;
    const auto r2 = run::run_experiment(x, again);
    EXPECT_EQ(r2.model_calls, 0);  // the budgets were read back, not searched again
    EXPECT_EQ(r2.policy_tags, r.policy_tags);

    const auto far = run::load_experiment(budget_experiment(dir, "  - {name: fbcache, target_speedup: 900}\n", kCalibration), {"output=" + dir + "/far.h5"});
    const auto e   = test::input_error_of([&] { run::run_experiment(far, o); });
    EXPECT_TRUE(contains(e, "b.yaml:7: policy fbcache target_speedup 900: out of reach: its most reuse in the search range (threshold 10) gives")) << e;
}
