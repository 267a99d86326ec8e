// The same experiment twice gives bit-identical HDF5 files on CPU: every dataset and attribute of every
// run and reference (metrics, cache decisions, similarity curves, attention profiles, videos, latents),
// except timings (latency/, measured speedup), memory peaks and the creation time.
#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

#include "test_util.h"

namespace profdit {
namespace {

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
    const std::string py = test::python_with("h5py, numpy");
    ASSERT_FALSE(py.empty()) << "no python3 with h5py and numpy (scripts/setup installs python3-h5py)";
    const std::string cmd = py + " " + std::string(PROFDIT_TEST_DATA) + "/../../scripts/h5_compare.py " + dir + "/a.h5 " + dir +
                            "/b.h5 --ignore latency --ignore speedup --ignore memory > " + dir + "/cmp.txt 2>&1";
    const int status = std::system(cmd.c_str());
    std::ifstream in(dir + "/cmp.txt");
    const std::string report((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(WEXITSTATUS(status), 0) << report;
    EXPECT_NE(report.find("identical: 4 runs, 1 references"), std::string::npos) << report;
}

}  // namespace
}  // namespace profdit
