// Schedulers against the reference's step-by-step goldens (toy velocity model), tolerance 1e-5.
#include <gtest/gtest.h>

#include "common/error.h"
#include "io/safetensors.h"
#include "sampling/scheduler.h"
#include "test_util.h"

using namespace profdit;

namespace {

constexpr double kTol = 1e-5;

// v(x, t) = 0.8 x - 0.6 toy_c + 0.25 (t / 1000) toy_d, elementwise (the reference's toy model).
torch::Tensor toy_velocity(const io::SafetensorsReader& r, const torch::Tensor& x, int64_t t) {
    return 0.8 * x - 0.6 * r.load("toy_c") + 0.25 * (double(t) / 1000.0) * r.load("toy_d");
}

}  // namespace

TEST(Schedule, UniPCTimestepsTruncatedAsReference) {
    const auto s = sampling::unipc_schedule(10, 5.0);
    EXPECT_EQ(s.timesteps, (std::vector<int64_t>{999, 978, 952, 920, 882, 833, 768, 681, 555, 356}));
    EXPECT_EQ(s.sigmas.size(), 11u);
    EXPECT_EQ(s.sigmas.back(), 0.0f);
    const double max = double(0.999f);  // the training table's sigma_max, fp32(0.999)
    EXPECT_EQ(s.sigmas.front(), float(5.0 * max / (1.0 + 4.0 * max)));
}

TEST(Schedule, DpmppStartsAtOne) {
    const auto s = sampling::dpmpp_schedule(10, 5.0);
    EXPECT_EQ(s.timesteps, (std::vector<int64_t>{1000, 978, 952, 921, 882, 833, 769, 681, 555, 357}));
    EXPECT_EQ(s.sigmas.front(), 1.0f);
}

class UniPCGolden : public ::testing::TestWithParam<int> {};

TEST_P(UniPCGolden, EveryStep) {
    const int             N = GetParam();
    const std::string     p = "unipc" + std::to_string(N) + ".";
    io::SafetensorsReader r(test::data_path("wan21_tiny/unipc_toy.safetensors"));
    sampling::FlowUniPC   s(N, 5.0);
    const auto            ts = r.load(p + "timesteps");
    const auto            sg = r.load(p + "sigmas");
    const auto            order = r.load(p + "order"), corr = r.load(p + "corr_order");
    const auto            x0g = r.load(p + "x0_pred"), xcg = r.load(p + "x_corrected"), xg = r.load(p + "x"), vg = r.load(p + "model_out");
    for (int i = 0; i <= N; ++i) EXPECT_EQ(s.schedule().sigmas[i], sg[i].item<float>()) << i;
    auto x = r.load("x_init");
    for (int i = 0; i < N; ++i) {
        ASSERT_EQ(s.timestep(), ts[i].item<int64_t>()) << "step " << i;
        auto v = toy_velocity(r, x, s.timestep());
        EXPECT_LT(test::max_abs_diff(v, vg[i]), kTol) << "model_out step " << i;
        x = s.step(v, x);
        EXPECT_LT(test::max_abs_diff(s.last_x0(), x0g[i]), kTol) << "x0 step " << i;
        EXPECT_LT(test::max_abs_diff(s.last_corrected(), xcg[i]), kTol) << "corrected step " << i;
        EXPECT_LT(test::max_abs_diff(x, xg[i]), kTol) << "x step " << i;
        EXPECT_EQ(s.last_order(), order[i].item<int64_t>()) << i;
        EXPECT_EQ(s.last_corrector_order(), corr[i].item<int64_t>()) << i;
    }
    EXPECT_LT(test::max_abs_diff(x, r.load(p + "x_final")), kTol);
}

INSTANTIATE_TEST_SUITE_P(Steps, UniPCGolden, ::testing::Values(10, 50));

class DpmppGolden : public ::testing::TestWithParam<int> {};

TEST_P(DpmppGolden, EveryStep) {
    const int             N = GetParam();
    const std::string     p = "dpmpp" + std::to_string(N) + ".";
    io::SafetensorsReader r(test::data_path("wan21_tiny/dpmpp_toy.safetensors"));
    sampling::FlowDPMpp   s(N, 5.0);
    const auto            ts = r.load(p + "timesteps"), sg = r.load(p + "sigmas"), xg = r.load(p + "x");
    for (int i = 0; i <= N; ++i) EXPECT_EQ(s.schedule().sigmas[i], sg[i].item<float>()) << i;
    auto x = r.load("x_init");
    for (int i = 0; i < N; ++i) {
        ASSERT_EQ(s.timestep(), ts[i].item<int64_t>()) << "step " << i;
        x = s.step(toy_velocity(r, x, s.timestep()), x);
        EXPECT_LT(test::max_abs_diff(x, xg[i]), kTol) << "x step " << i;
    }
    EXPECT_LT(test::max_abs_diff(x, r.load(p + "x_final")), kTol);
}

INSTANTIATE_TEST_SUITE_P(Steps, DpmppGolden, ::testing::Values(10, 50));

// On a straight flow x_s = (1 - s) x0 + s n with the exact velocity n - x0, every solver lands on x0.
class StraightFlow : public ::testing::TestWithParam<std::string> {};

TEST_P(StraightFlow, LandsOnData) {
    torch::manual_seed(7);
    auto x0 = torch::randn({4, 3, 5}), n = torch::randn({4, 3, 5});
    auto s  = sampling::make_scheduler(GetParam(), 12, 3.0);
    const double s0 = s->schedule().sigmas[0];
    auto x = (1 - s0) * x0 + s0 * n;
    for (int i = 0; i < s->steps(); ++i) x = s->step(n - x0, x);
    EXPECT_LT(test::max_abs_diff(x, x0), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Solvers, StraightFlow, ::testing::Values("unipc", "dpm++", "euler"),
                         [](const auto& i) { return i.param == "dpm++" ? std::string("dpmpp") : i.param; });

TEST(Schedule, BadOptionsAreInputErrors) {
    EXPECT_THROW(sampling::make_scheduler("ddim", 10, 5.0), InputError);
    EXPECT_THROW(sampling::make_scheduler("unipc", 0, 5.0), InputError);
    EXPECT_THROW(sampling::make_scheduler("unipc", 10, -1.0), InputError);
    try {
        sampling::make_scheduler("ddim", 10, 5.0);
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("'ddim'"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("unipc"), std::string::npos);
    }
}
