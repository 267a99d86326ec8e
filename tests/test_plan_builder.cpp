// From profiles to a ProfilingDiT plan: R_attn summaries over steps and pairs, the block split by tau and by
// budget, the step schedule suggested by the similarity curve, and the profiling memory bound.
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>

#include <gtest/gtest.h>

#include "common/error.h"
#include "policies/profiling_dit.h"
#include "profile/plan_builder.h"
#include "test_util.h"
#include "wan/attention.h"

using namespace profdit;

TEST(PlanBuilder, SummarizesOverStepsAndPairsIgnoringNaN) {
    const double nan = std::nan("");
    // 2 pairs x 3 steps x 2 blocks
    auto a = torch::tensor({0.2, 0.8, 0.4, 0.6, 0.3, nan}, torch::kFloat64).view({3, 2});
    auto b = torch::tensor({0.4, 0.9, 0.4, 0.9, 0.4, 0.9}, torch::kFloat64).view({3, 2});
    const auto f = profile::summarize_focus({a, b});
    EXPECT_NEAR(f.mean[0].item<double>(), (0.3 + 0.4) / 2, 1e-12);           // pair means 0.3 and 0.4
    EXPECT_NEAR(f.mean[1].item<double>(), (0.7 + 0.9) / 2, 1e-12);           // pair a: (0.8 + 0.6) / 2 (step 2 not computed)
    EXPECT_NEAR(f.spread_steps[0].item<double>(), (0.2 + 0.0) / 2, 1e-12);
    EXPECT_NEAR(f.spread_pairs[1].item<double>(), 0.2, 1e-12);
    EXPECT_NEAR(f.std_steps[1].item<double>(), (0.1 + 0.0) / 2, 1e-12);
    EXPECT_NEAR(f.per_step[2][1].item<double>(), 0.9, 1e-12);                // only pair b at step 2
}

TEST(PlanBuilder, SplitsByTauAndByBudget) {
    auto r = torch::tensor({0.5, 0.1, 0.9, 0.3, 0.7, 0.2}, torch::kFloat64);
    const auto t = profile::split_by_tau(r, 0.4);
    EXPECT_EQ(t.background, (std::vector<int>{1, 3, 5}));
    EXPECT_EQ(t.foreground, (std::vector<int>{0, 2, 4}));
    const auto b = profile::split_by_budget(r, 1.0 / 3.0);                     // keep 2 of 6 blocks
    EXPECT_EQ(b.foreground, (std::vector<int>{2, 4}));
    EXPECT_EQ(b.background, (std::vector<int>{0, 1, 3, 5}));
    EXPECT_NEAR(b.tau, 0.6, 1e-12);                                            // midway between 0.7 and 0.5
    EXPECT_EQ(profile::split_by_tau(r, b.tau).background, b.background);       // the same split by value
    EXPECT_TRUE(profile::split_by_budget(r, 0.0).foreground.empty());
    EXPECT_TRUE(profile::split_by_budget(r, 1.0).background.empty());
}

TEST(PlanBuilder, SuggestsWarmupAndDecreasingIntervalsFromTheSimilarityCurve) {
    // High change early (steps 1-4), low in the middle, rising at the end.
    std::vector<double> rel = {std::nan(""), 0.9, 0.5, 0.3, 0.12};
    for (int s = 5; s < 17; ++s) rel.push_back(0.01);
    for (int s = 17; s < 27; ++s) rel.push_back(0.04);
    for (int s = 27; s < 37; ++s) rel.push_back(0.08);
    rel.push_back(0.2);                                                      // the last step rises above 2 x the late level
    EXPECT_DOUBLE_EQ(profile::late_level(rel), 0.08);                        // median of steps 18..37
    const auto s = profile::suggest_schedule(rel, 0.1);
    EXPECT_EQ(s.warmup, 4);                                                  // stays below 2 x 0.08 from step 4
    EXPECT_EQ(s.final_full, 1);
    EXPECT_EQ(s.type, "linear");
    EXPECT_DOUBLE_EQ(s.t_max, 10.0);                                         // floor(0.1 / 0.01)
    EXPECT_DOUBLE_EQ(s.t_min, 1.0);                                          // floor(0.1 / 0.08)
    // The warm-up rule is relative to the curve's own late level: the same shape at a tenth of the size (the
    // old embedded model's curve sat far below an absolute rho = 0.1 and got a warm-up of 1) keeps its warm-up.
    std::vector<double> small;
    for (double v : rel) small.push_back(v / 10);
    EXPECT_EQ(profile::suggest_schedule(small, 0.1).warmup, 4);
    EXPECT_EQ(profile::suggest_schedule(small, 0.1).final_full, 1);
    EXPECT_EQ(profile::suggest_schedule(rel, 0.1, 4.0).warmup, 3);           // below 4 x 0.08 from step 3
    const auto flat = profile::suggest_schedule(std::vector<double>(20, 0.02), 0.1);
    EXPECT_EQ(flat.warmup, 1);
    EXPECT_EQ(flat.type, "fixed");
    EXPECT_EQ(flat.interval, 5);
}

// The attention profiler's extra memory at 4096 tokens (Wan2.1-1.3B head layout: 12 heads of 128) stays
// within its stated bound (docs/profiling.md): f32 copies of q and k (2 x B x L x dim floats) plus 4 x the
// chunk's B x heads x query_chunk x L floats (scores, probabilities, temporaries), far below the
// B x heads x L x L floats (805 MB) of materialised attention.
TEST(PlanBuilder, ReceivedAttentionMemoryIsBoundedAt4096Tokens) {
    const int64_t L = 4096, H = 12, hd = 128, chunk = 64;
    torch::manual_seed(0);
    auto q = torch::randn({1, L, H, hd}), k = torch::randn({1, L, H, hd});  // [1, L, H, hd]
    const double chunk_bytes = double(H * chunk * L) * 4;                   // 12.6 MB
    const double qk_bytes    = 2.0 * double(L * H * hd) * 4;                // 50.3 MB
    const double bound       = qk_bytes + 4 * chunk_bytes;                  // 100.7 MB
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    if (pid == 0) {
        // Every buffer over 1 MB is its own mapping, returned when freed: the peak RSS is the peak of live memory,
        // not of what the allocator keeps cached.
        mallopt(M_MMAP_THRESHOLD, 1 << 20);
        mallopt(M_TRIM_THRESHOLD, 1 << 20);
        torch::set_num_threads(1);
        rusage before{}, after{};
        getrusage(RUSAGE_SELF, &before);
        auto r = wan::received_attention(q, k, chunk, 1);                   // [1, L]
        getrusage(RUSAGE_SELF, &after);
        double grown = double(after.ru_maxrss - before.ru_maxrss) * 1024.0;
        if (std::abs(r.sum().item<double>() - 1.0) > 1e-3) grown = -1;       // the received shares sum to 1
        (void)!write(fds[1], &grown, sizeof grown);
        _exit(0);
    }
    close(fds[1]);
    double grown = -2;
    ASSERT_EQ(read(fds[0], &grown, sizeof grown), ssize_t(sizeof grown));
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_GE(grown, 0) << "received attention does not sum to 1";
    std::cout << "[ measured ] peak RSS growth " << grown / 1e6 << " MB; bound " << bound / 1e6 << " MB; full attention "
              << double(H * L * L) * 4 / 1e6 << " MB\n";
    EXPECT_LT(grown, bound);
}

TEST(PlanBuilder, AblationChoosesTheSameNumberOfBlocks) {
    policies::BlockPlan plan;
    plan.background = {1, 3, 5};
    plan.r_attn     = {0.5, 0.1, 0.9, 0.3, 0.7, 0.2};
    EXPECT_EQ(policies::ablation_blocks(plan, "background", 0, 6), (std::vector<int>{1, 3, 5}));
    EXPECT_EQ(policies::ablation_blocks(plan, "foreground", 0, 6), (std::vector<int>{0, 2, 4}));
    const auto r0 = policies::ablation_blocks(plan, "random", 0, 6), r1 = policies::ablation_blocks(plan, "random", 1, 6);
    EXPECT_EQ(r0.size(), 3u);
    EXPECT_EQ(r0, policies::ablation_blocks(plan, "random", 0, 6));  // deterministic per seed
    EXPECT_TRUE(std::is_sorted(r0.begin(), r0.end()));
    EXPECT_TRUE(r0 != r1 || r0 != policies::ablation_blocks(plan, "random", 2, 6));
    // The same blocks on every standard library: Fisher-Yates over mt19937_64 (fixed by the standard), j = draw mod i
    EXPECT_EQ(r0, (std::vector<int>{3, 4, 5}));
    EXPECT_EQ(r1, (std::vector<int>{0, 1, 3}));
    EXPECT_EQ(policies::ablation_blocks(plan, "random", 0, 30, 12), (std::vector<int>{1, 2, 5, 6, 9, 10, 11, 13, 19, 25, 26, 27}));
    EXPECT_EQ(policies::ablation_blocks(plan, "background", 0, 6, 4), (std::vector<int>{0, 1, 3, 5}));  // 4 lowest R_attn
    EXPECT_EQ(policies::ablation_blocks(plan, "foreground", 0, 6, 2), (std::vector<int>{2, 4}));

    const auto dir = test::temp_dir();
    std::ofstream(dir + "/p.yaml") << "background_blocks: [1, 3, 5]\nr_attn: [0.5, 0.1, 0.9, 0.3, 0.7, 0.2]\n";
    auto policy = policies::make_policy(YAML::Load("{name: profiling_dit, plan: " + dir + "/p.yaml, cache: foreground}"), {6, "custom", ""}, "test");
    EXPECT_EQ(policy->params()["background_blocks"].as<std::vector<int>>(), (std::vector<int>{0, 2, 4}));
    EXPECT_NE(policy->tag().find("-foreground"), std::string::npos) << policy->tag();
    EXPECT_THROW(policies::make_policy(YAML::Load("{name: profiling_dit, background_blocks: [1], cache: foreground}"), {6, "custom", ""}, "test"),
                 InputError);
    EXPECT_THROW(policies::make_policy(YAML::Load("{name: profiling_dit, background_blocks: [1], seed: 3}"), {6, "custom", ""}, "test"), InputError);
    EXPECT_THROW(policies::make_policy(YAML::Load("{name: profiling_dit, background_blocks: [1], cached_blocks: 2}"), {6, "custom", ""}, "test"),
                 InputError);
    auto four = policies::make_policy(YAML::Load("{name: profiling_dit, plan: " + dir + "/p.yaml, cached_blocks: 4}"), {6, "custom", ""}, "test");
    EXPECT_EQ(four->params()["background_blocks"].as<std::vector<int>>(), (std::vector<int>{0, 1, 3, 5}));
}
