// The same experiment twice gives bit-identical HDF5 files on CPU: every dataset and attribute of every
// run and reference (metrics, cache decisions, similarity curves, attention profiles, videos, latents),
// except timings (latency/, measured speedup), memory peaks and the creation time.
#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

#include "test_util.h"

namespace profdit {
namespace {

struct Compared {
    int         code;
    std::string report;
};

// scripts/h5_compare.py ARGS: its exit code (-1 without a python3 with h5py) and its output.
Compared h5_compare(const std::string& args, const std::string& dir) {
    const std::string py = test::python_with("h5py, numpy");
    if (py.empty()) return {-1, "no python3 with h5py and numpy (scripts/setup installs python3-h5py)"};
    const std::string cmd    = py + " " + std::string(PROFDIT_TEST_DATA) + "/../../scripts/h5_compare.py " + args + " > " + dir + "/cmp.txt 2>&1";
    const int         status = std::system(cmd.c_str());
    std::ifstream     in(dir + "/cmp.txt");
    return {WEXITSTATUS(status), std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>())};
}

TEST(Determinism, SameExperimentTwiceGivesBitIdenticalFiles) {
    const auto dir = test::temp_dir();
    std::ofstream(dir + "/x.yaml") << "name: determinism\n"
                                      "model: {preset: sprites-tiny, threads: 2}\n"
                                      "sampling: {solver: unipc, steps: 4, shift: 3.0, guide: 1.5}\n"
                                      "prompts: [a red circle moving left over blue stripes]\n"
                                      "seeds: [3]\n"
                                      "policies:\n"
                                      "  - none\n"
                                      "  - {name: step_skip, interval: 2, warmup: 1}\n"
                                      "  - {name: teacache, threshold: 0.1, coefficients: [0, 0, 0, 1, 0], indicator: modulated_input}\n"
                                      "  - {name: profiling_dit, background_blocks: [0, 4, 5], warmup: 1, schedule: {type: fixed, interval: 2}}\n"
                                      "metrics: [psnr, ssim, ms_ssim, lpips_proxy, region, flicker]\n"
                                      "profile: {attention: true, mask: gt}\n"
                                      "timing: {warmup_runs: 0, repeats: 1}\n"
                                      "video: true\n";
    for (const char* name : {"a", "b"}) {
        const auto r = test::run_profdit("run " + dir + "/x.yaml --out " + dir + "/" + name + ".h5");
        ASSERT_EQ(r.code, 0) << r.err;
        // stderr is a file here: whole progress lines, no carriage-return redraws (one per step before)
        EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
        EXPECT_NE(r.err.find(" [####################] 4/4\n"), std::string::npos) << r.err;
    }
    const auto c = h5_compare(dir + "/a.h5 " + dir + "/b.h5 --ignore latency --ignore speedup --ignore memory", dir);
    EXPECT_EQ(c.code, 0) << c.report;
    EXPECT_NE(c.report.find("identical: 4 runs, 1 references"), std::string::npos) << c.report;
}

// Issue 18's reproduction check: one shard run alone equals its part of the full sweep, budget searches included
// (scripts/h5_compare.py --subset); without --subset, or with the whole as A, the files differ.
TEST(Determinism, AShardRunAloneEqualsItsPartOfTheFullSweep) {
    const auto dir = test::temp_dir();
    std::ofstream(dir + "/x.yaml") << "name: shard-subset\n"
                                      "model: {preset: sprites-tiny, threads: 1}\n"
                                      "sampling: {solver: unipc, steps: 6, shift: 3.0, guide: 1.5}\n"
                                      "prompts: [a red circle moving left over blue stripes]\n"
                                      "seeds: [3, 4]\n"
                                      "calibration: {prompts: [a white square moving up over a gray background], seeds: [9], tolerance: 0.2}\n"
                                      "policies:\n"
                                      "  - none\n"
                                      "  - {name: step_skip, interval: 2, warmup: 1}\n"
                                      "  - {name: fbcache, target_computed: 0.6}\n"
                                      "metrics: [psnr, region]\n"
                                      "timing: {warmup_runs: 0, repeats: 1}\n"
                                      "video: false\n";
    auto r = test::run_profdit("run " + dir + "/x.yaml --out " + dir + "/full.h5");
    ASSERT_EQ(r.code, 0) << r.err;
    r = test::run_profdit("run " + dir + "/x.yaml --shard 2/2 --out " + dir + "/shard.h5");
    ASSERT_EQ(r.code, 0) << r.err;
    const std::string shard = dir + "/shard.h5 ", full = dir + "/full.h5 ", timings = " --ignore latency --ignore speedup --ignore memory";

    auto c = h5_compare(shard + full + "--subset" + timings, dir);
    EXPECT_EQ(c.code, 0) << c.report;
    EXPECT_NE(c.report.find("identical: 3 runs, 1 references"), std::string::npos) << c.report;
    EXPECT_NE(c.report.find("B has 6 runs, 2 references"), std::string::npos) << c.report;

    c = h5_compare(shard + full + timings, dir);
    EXPECT_EQ(c.code, 1) << c.report;
    EXPECT_NE(c.report.find("/references/0_3: only in B"), std::string::npos) << c.report;

    c = h5_compare(full + shard + "--subset" + timings, dir);
    EXPECT_EQ(c.code, 1) << c.report;
    EXPECT_NE(c.report.find("/references/0_3: only in A"), std::string::npos) << c.report;
}

}  // namespace
}  // namespace profdit
