// TeaCache calibration: the polynomial fit (exact recovery, least-squares optimality on noisy data), the
// call observer on the tiny DiT against a direct recomputation, and `profdit calibrate teacache`.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <gtest/gtest.h>

#include "common/error.h"
#include "io/safetensors.h"
#include "policies/none.h"
#include "policies/teacache.h"
#include "profile/teacache_calibration.h"
#include "sampling/cached_denoiser.h"
#include "test_util.h"

using namespace profdit;

namespace {

double poly(const std::vector<double>& c, double x) {
    double y = 0;
    for (double v : c) y = y * x + v;
    return y;
}

// Records what each cond call received and returned, for recomputing the indicators by hand.
class CallLog : public sampling::Denoiser {
  public:
    explicit CallLog(sampling::Denoiser& inner) : inner_(inner) {}
    torch::Tensor predict(int step, sampling::Branch b, const torch::Tensor& latent, int64_t t, const wan::Conditioning& cond) override {
        auto out = inner_.predict(step, b, latent, t, cond);  // [C, F, H, W]
        if (b == sampling::kCond) calls.push_back({latent.clone(), t, cond, out.clone()});
        return out;
    }
    struct Call {
        torch::Tensor     latent;
        int64_t           t;
        wan::Conditioning cond;
        torch::Tensor     out;
    };
    std::vector<Call> calls;

  private:
    sampling::Denoiser& inner_;
};

double rel_l1(const torch::Tensor& cur, const torch::Tensor& prev) {
    const auto c = cur.to(torch::kFloat64), p = prev.to(torch::kFloat64);
    return ((c - p).abs().mean() / p.abs().mean()).item<double>();
}

}  // namespace

TEST(Calibration, FitRecoversKnownPolynomial) {
    const std::vector<double> c = {2.39676752e+03, -1.31110545e+03, 2.01331979e+02, -8.29855975e+00, 1.37887774e-01};
    std::vector<double> x, y;
    for (int i = 0; i < 40; ++i) {
        x.push_back(0.01 + 0.3 * i / 39.0);
        y.push_back(poly(c, x.back()));
    }
    const auto f = profile::fit_polynomial(x, y);
    ASSERT_EQ(f.coefficients.size(), 5u);
    for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(f.coefficients[i], c[i], 1e-7 * std::abs(c[i])) << i;
    EXPECT_NEAR(f.r2, 1.0, 1e-12);

    const auto line = profile::fit_polynomial({0, 1, 2, 3}, {1, 3, 5, 7}, 1);
    EXPECT_NEAR(line.coefficients[0], 2.0, 1e-12);
    EXPECT_NEAR(line.coefficients[1], 1.0, 1e-12);
}

TEST(Calibration, FitNoisyDataIsLeastSquares) {
    std::mt19937                     gen(7);
    std::normal_distribution<double> noise(0.0, 0.02);
    std::vector<double> x, y;
    for (int i = 0; i < 200; ++i) {
        x.push_back(0.005 + 0.2 * i / 199.0);
        y.push_back(0.1 + 3 * x.back() - 8 * x.back() * x.back() + noise(gen));
    }
    const auto f = profile::fit_polynomial(x, y, 4);
    EXPECT_GT(f.r2, 0.0);
    EXPECT_LT(f.r2, 1.0);
    // Least squares: the residual is orthogonal to every Vandermonde column.
    for (int k = 0; k <= 4; ++k) {
        double dot = 0, norm = 0;
        for (size_t i = 0; i < x.size(); ++i) {
            dot += std::pow(x[i], k) * (y[i] - poly(f.coefficients, x[i]));
            norm += std::pow(x[i], 2 * k);
        }
        EXPECT_LT(std::abs(dot) / std::sqrt(norm), 1e-9) << "x^" << k;
    }
    EXPECT_LE(profile::fit_polynomial(x, y, 1).r2, f.r2);
    EXPECT_THROW(profile::fit_polynomial({0.1, 0.2, 0.3, 0.4}, {1, 2, 3, 4}, 4), InputError);
    EXPECT_TRUE(std::isnan(profile::fit_polynomial({1, 2, 3, 4, 5}, {2, 2, 2, 2, 2}, 4).r2));
}

TEST(Calibration, RecorderMatchesDirectRecomputation) {
    auto                  model = test::tiny_model();
    io::SafetensorsReader g(test::data_path("wan21_tiny/dit_tiny_pipeline.safetensors"));
    policies::NonePolicy  none({int(model->config().num_layers), "custom", ""});
    sampling::SampleOptions opt;
    opt.steps = 4;

    sampling::CachedDenoiser plain(model, none, opt.steps);
    const auto ref = test::sample_cfg(plain, *model, g.load("noise"), g.load("context_cond"), g.load("context_uncond"), opt);

    profile::TeaCacheRecorder rec;
    sampling::CachedDenoiser  d(model, none, opt.steps);
    d.observe_calls(&rec);
    CallLog    log(d);
    const auto res = test::sample_cfg(log, *model, g.load("noise"), g.load("context_cond"), g.load("context_uncond"), opt);
    EXPECT_TRUE(torch::equal(res.final_latent, ref.final_latent));  // observing changes nothing

    ASSERT_EQ(rec.calls().size(), 4u);
    ASSERT_EQ(log.calls.size(), 4u);
    torch::NoGradGuard ng;
    std::vector<std::array<torch::Tensor, 4>> direct;
    for (const auto& c : log.calls) {
        auto em = model->embed(c.latent, c.t, c.cond);
        direct.push_back({em.cond.e, em.cond.e0, model->modulated_input(0, em.x, em.cond), c.out});
    }
    for (int s = 0; s < 4; ++s) {
        const auto& r = rec.calls()[size_t(s)];
        EXPECT_EQ(r.step, s);
        EXPECT_EQ(r.branch, 0);
        for (size_t i = 0; i < 4; ++i) {
            const double got = i < 3 ? r.x[i] : r.y;
            if (s == 0) {
                EXPECT_TRUE(std::isnan(got)) << i;
                continue;
            }
            const double want = rel_l1(direct[size_t(s)][i], direct[size_t(s) - 1][i]);
            EXPECT_GT(want, 0.0) << "step " << s << " quantity " << i;
            EXPECT_NEAR(got, want, 1e-5 * want) << "step " << s << " quantity " << i;
        }
    }
    for (size_t i = 0; i < 3; ++i) EXPECT_EQ(rec.points(i).first.size(), 3u);

    profile::TeaCacheRecorder both(true);
    sampling::CachedDenoiser  d2(model, none, opt.steps);
    d2.observe_calls(&both);
    for (int run = 0; run < 2; ++run)
        test::sample_cfg(d2, *model, g.load("noise"), g.load("context_cond"), g.load("context_uncond"), opt);
    ASSERT_EQ(both.calls().size(), 16u);
    EXPECT_EQ(both.calls()[1].branch, 1);
    EXPECT_TRUE(std::isnan(both.calls()[8].y));  // a new run starts at step 0: no previous call
    EXPECT_EQ(both.points(2).first.size(), 12u);
}

namespace {

std::string slurp(const std::string& path) {
    std::ifstream     f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

}  // namespace

TEST(CalibrateCli, WritesAFileTheTeaCachePolicyLoads) {
    const auto dir = test::temp_dir();
    std::ofstream(dir + "/x.yaml") << "name: cal\nmodel: {preset: sprites-tiny, threads: 1}\n"
                                      "sampling: {solver: unipc, steps: 6, shift: 3.0, guide: 4.0}\n"
                                      "prompts: [a red circle moving left over blue stripes]\nseeds: [0, 1]\n"
                                      "policies: [{name: teacache, coefficients: missing.yaml}]\n";
    auto r = test::run_profdit("calibrate teacache " + dir + "/x.yaml --out " + dir + "/plans/tc.yaml --format csv");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("model,indicator,points,r2"), std::string::npos) << r.out;
    for (const char* ind : {",e,10,", ",e0,10,", ",modulated_input,10,"}) EXPECT_NE(r.out.find(ind), std::string::npos) << r.out;
    const auto text = slurp(dir + "/plans/tc.yaml");
    EXPECT_EQ(text.rfind("# written by profdit calibrate teacache", 0), 0u) << text;
    const auto n = YAML::LoadFile(dir + "/plans/tc.yaml");
    EXPECT_EQ(n["coefficients"].size(), 5u);
    EXPECT_EQ(n["source"]["points"].as<int>(), 10);
    EXPECT_EQ(n["source"]["steps"].as<int>(), 6);
    EXPECT_EQ(n["source"]["seeds"].size(), 2u);
    auto p = policies::make_policy(YAML::Load("{name: teacache, threshold: 0.1, coefficients: " + dir + "/plans/tc.yaml}"), {4, "custom", ""}, "t");
    EXPECT_EQ(p->tag(), "teacache-thr0.1-" + n["indicator"].as<std::string>() + "-tc-r1-f1");

    r = test::run_profdit("calibrate teacache " + dir + "/x.yaml --indicator e0 --quiet --format json");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(r.err.empty()) << r.err;
    EXPECT_NE(r.out.find("\"chosen\": \"*\""), std::string::npos) << r.out;
}

TEST(CalibrateCli, BadInputsExit2AndKeepTheOldFile) {
    const auto dir = test::temp_dir();
    std::ofstream(dir + "/x.yaml") << "model: {preset: sprites-tiny}\nsampling: {steps: 3}\nprompts: [a]\nseeds: [0]\npolicies: [none]\n";
    std::ofstream(dir + "/old.yaml") << "coefficients: [0, 0, 0, 1, 0]\n";
    std::ofstream(dir + "/file") << "x";
    struct Case {
        std::string args, expect;
    };
    for (const Case& c : {Case{dir + "/nope.yaml", "nope.yaml"},
                          Case{dir + "/x.yaml --indicator foo --out " + dir + "/old.yaml", "unknown --indicator 'foo'"},
                          Case{dir + "/x.yaml --out " + dir + "/old.yaml", "a 4th-order fit needs at least 5"},
                          Case{dir + "/x.yaml --set sampling.steps=8 --out " + dir + "/file/c.yaml", "--out: cannot write"},
                          Case{dir + "/x.yaml --format xml", "unknown --format 'xml'"}}) {
        const auto r = test::run_profdit("calibrate teacache " + c.args);
        EXPECT_EQ(r.code, 2) << c.args << "\n" << r.err;
        EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    }
    EXPECT_EQ(slurp(dir + "/old.yaml"), "coefficients: [0, 0, 0, 1, 0]\n");
}
