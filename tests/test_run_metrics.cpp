// Issue 19.5: the run's metrics on the run's device (CPU results unchanged; a CUDA device within 1e-6 of
// the CPU), MS-SSIM computed once when lpips_proxy needs it too.
#include <gtest/gtest.h>

#include "metrics/psnr.h"
#include "metrics/ssim.h"
#include "run/run_metrics.h"
#include "store/store.h"

using namespace profdit;

// 19.5: with ms_ssim and lpips_proxy both asked for, MS-SSIM is computed once, and lpips_proxy is exactly
// 1 - MS-SSIM as when computed alone.
TEST(RunMetrics, MsSsimComputedOnceForBothMetrics) {
    run::RunMetrics m({{"ms_ssim", "", true}, {"lpips_proxy", "", true}});
    const auto      a = torch::rand({3, 3, 32, 32}, torch::kFloat64) * 2 - 1, b = torch::rand({3, 3, 32, 32}, torch::kFloat64) * 2 - 1;
    store::Record   r;
    m.add(r, a, b, torch::Tensor());
    EXPECT_EQ(m.ms_ssim_evaluations(), 1);
    const auto alone = metrics::lpips_proxy(a, b);
    EXPECT_TRUE(torch::equal(r.datasets.at("metrics/lpips_proxy").data, torch::tensor(alone.per_frame, torch::kFloat64)));
    EXPECT_EQ(r.datasets.at("metrics/lpips_proxy").num_attrs.at("mean"), alone.mean);
}

// 19.5: the metrics computed on a CUDA device equal the CPU's within 1e-6.
TEST(RunMetrics, CudaMatchesCpu) {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
    const auto a = torch::rand({2, 3, 48, 64}, torch::kFloat32) * 2 - 1, b = torch::rand({2, 3, 48, 64}, torch::kFloat32) * 2 - 1;
    const auto ca = a.to(torch::kCUDA), cb = b.to(torch::kCUDA);
    const std::vector<std::pair<metrics::Series, metrics::Series>> pairs = {
        {metrics::psnr(a, b), metrics::psnr(ca, cb)}, {metrics::ssim(a, b), metrics::ssim(ca, cb)}, {metrics::ms_ssim(a, b), metrics::ms_ssim(ca, cb)}};
    for (const auto& [cpu, gpu] : pairs) {
        ASSERT_EQ(cpu.per_frame.size(), gpu.per_frame.size()) << cpu.name;
        for (size_t f = 0; f < cpu.per_frame.size(); ++f) EXPECT_NEAR(cpu.per_frame[f], gpu.per_frame[f], 1e-6) << cpu.name << " frame " << f;
    }
}
