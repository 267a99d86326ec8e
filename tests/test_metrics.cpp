// Quality metrics against golden values (docs/metrics.md; LPIPS: tests/data/lpips, from the lpips package's own code), analytic cases and plain-loop
// re-implementations written here without convolutions.
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.h"
#include "io/safetensors.h"
#include "metrics/flicker.h"
#include "metrics/lpips.h"
#include "metrics/psnr.h"
#include "metrics/ssim.h"
#include "test_util.h"

using namespace profdit;

namespace {

// uint8 levels [F, 3, H, W] -> the API's [-1, 1] frames, float32; quantisation gives the levels back exactly.
torch::Tensor frames(const torch::Tensor& levels) { return levels.to(torch::kFloat32) / 255.0 * 2.0 - 1.0; }

// The golden pair of metrics.md, C,H,W = 3,32,48: A = (3x+5y+40c) & 255, B = clip(A + ((17x+31y+7c) mod 9) - 4).
std::pair<torch::Tensor, torch::Tensor> golden_levels() {
    auto a = torch::zeros({1, 3, 32, 48}, torch::kFloat64), b = torch::zeros({1, 3, 32, 48}, torch::kFloat64);
    auto A = a.accessor<double, 4>(), B = b.accessor<double, 4>();
    for (int c = 0; c < 3; ++c)
        for (int y = 0; y < 32; ++y)
            for (int x = 0; x < 48; ++x) {
                const int v = (3 * x + 5 * y + 40 * c) & 255;
                A[0][c][y][x] = v;
                B[0][c][y][x] = std::min(255, std::max(0, v + (17 * x + 31 * y + 7 * c) % 9 - 4));
            }
    return {a, b};
}

// A smooth random reference and a noisy copy, as uint8 levels [F, 3, H, W].
std::pair<torch::Tensor, torch::Tensor> noisy_pair(int64_t F, int64_t H, int64_t W, double noise) {
    const auto yy = torch::arange(H, torch::kFloat64).view({1, 1, H, 1}), xx = torch::arange(W, torch::kFloat64).view({1, 1, 1, W});
    const auto phase = torch::rand({F, 3, 1, 1}, torch::kFloat64) * 6.0;
    auto ref = (128.0 + 70.0 * torch::sin(0.21 * xx + 0.13 * yy + phase) + 12.0 * torch::randn({F, 3, H, W}, torch::kFloat64));
    ref      = ref.round().clamp(0, 255);
    auto test = (ref + noise * torch::randn({F, 3, H, W}, torch::kFloat64)).round().clamp(0, 255);
    return {test, ref};
}

template <typename Fn>
std::string input_error_of(Fn fn) {
    try {
        fn();
    } catch (const InputError& e) {
        return e.what();
    }
    return "";
}

// ---- plain-loop SSIM / MS-SSIM: direct sums over every window position, no convolution ----

struct Image {
    int                 H = 0, W = 0;
    std::vector<double> v;  // [3][H][W], values in [0, 1]
    double at(int c, int y, int x) const { return v[(size_t(c) * H + y) * W + x]; }
};

Image image_of(const torch::Tensor& levels) {  // levels [3, H, W]
    Image im{int(levels.size(1)), int(levels.size(2)), {}};
    auto  a = levels.to(torch::kFloat64).contiguous();
    for (int64_t i = 0; i < a.numel(); ++i) im.v.push_back(a.data_ptr<double>()[i] / 255.0);
    return im;
}

Image pool2(const Image& a) {  // 2x2 mean, odd last row/column dropped
    Image o{a.H / 2, a.W / 2, {}};
    for (int c = 0; c < 3; ++c)
        for (int y = 0; y < o.H; ++y)
            for (int x = 0; x < o.W; ++x)
                o.v.push_back((a.at(c, 2 * y, 2 * x) + a.at(c, 2 * y + 1, 2 * x) + a.at(c, 2 * y, 2 * x + 1) +
                               a.at(c, 2 * y + 1, 2 * x + 1)) / 4.0);
    return o;
}

struct LoopSsim {
    std::array<double, 3> ssim{}, cs{};
};

// Wang 2004 with a win x win Gaussian (sigma 1.5, sum 1), population moments, valid positions only.
LoopSsim loop_ssim(const Image& a, const Image& b, int win) {
    std::vector<double> g(win);
    double              gs = 0;
    for (int i = 0; i < win; ++i) gs += g[i] = std::exp(-double((i - win / 2) * (i - win / 2)) / (2 * 1.5 * 1.5));
    for (auto& v : g) v /= gs;
    LoopSsim out;
    for (int c = 0; c < 3; ++c) {
        double ssum = 0, csum = 0;
        int    n    = 0;
        for (int y = 0; y + win <= a.H; ++y)
            for (int x = 0; x + win <= a.W; ++x) {
                double mx = 0, my = 0, xx = 0, yy = 0, xy = 0;
                for (int u = 0; u < win; ++u)
                    for (int v = 0; v < win; ++v) {
                        const double k = g[u] * g[v], p = a.at(c, y + u, x + v), q = b.at(c, y + u, x + v);
                        mx += k * p, my += k * q, xx += k * p * p, yy += k * q * q, xy += k * p * q;
                    }
                const double cs = (2 * (xy - mx * my) + 9e-4) / ((xx - mx * mx) + (yy - my * my) + 9e-4);
                const double l  = (2 * mx * my + 1e-4) / (mx * mx + my * my + 1e-4);
                ssum += l * cs, csum += cs, ++n;
            }
        out.ssim[c] = ssum / n, out.cs[c] = csum / n;
    }
    return out;
}

// Wang 2003: prod_{j<M} cs_j^w_j * ssim_M^w_M per channel (weights renormalised), mean of channels.
double loop_ms_ssim(Image a, Image b, int scales, int win) {
    const double w[5] = {0.0448, 0.2856, 0.3001, 0.2363, 0.1333};
    double       wsum = 0;
    for (int j = 0; j < scales; ++j) wsum += w[j];
    std::array<double, 3> val = {1, 1, 1};
    for (int j = 0; j < scales; ++j) {
        const auto s = loop_ssim(a, b, win);
        for (int c = 0; c < 3; ++c) val[c] *= std::pow(std::max(0.0, j + 1 < scales ? s.cs[c] : s.ssim[c]), w[j] / wsum);
        a = pool2(a), b = pool2(b);
    }
    return (val[0] + val[1] + val[2]) / 3.0;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
TEST(MetricsPsnr, GoldenImages) {
    const auto [a, b] = golden_levels();
    const auto s      = metrics::psnr(frames(b), frames(a));
    // metrics.md: MSE = 0.0001013699, PSNR = 10 log10(1 / MSE) = 39.940908 dB (re-derived in pure Python: 39.94090843).
    ASSERT_EQ(s.per_frame.size(), 1u);
    EXPECT_NEAR(s.per_frame[0], 39.940908, 1e-6);
    EXPECT_NEAR(s.mean, 39.940908, 1e-6);
    EXPECT_EQ(s.name, "psnr");
    EXPECT_EQ(s.note, "");
}

TEST(MetricsPsnr, IdenticalFramesCappedAndFlagged) {
    const auto ref  = torch::full({3, 3, 8, 8}, 100.0);
    auto       test = ref.clone();
    test[1].add_(3.0);
    const auto s = metrics::psnr(frames(test), frames(ref));
    // Frames 0 and 2: MSE 0 -> capped at 100. Frame 1: every value off by 3 levels, MSE (3/255)^2.
    const double off = 20.0 * std::log10(255.0 / 3.0);  // 38.588 dB
    EXPECT_EQ(s.per_frame[0], 100.0);
    EXPECT_NEAR(s.per_frame[1], off, 1e-9);
    EXPECT_EQ(s.per_frame[2], 100.0);
    EXPECT_NEAR(s.mean, (200.0 + off) / 3.0, 1e-9);
    EXPECT_EQ(s.note, "identical frames capped at 100 dB: 2 of 3");
}

TEST(MetricsPsnr, MeanOfPerFramePsnrNotPooled) {
    const auto ref  = torch::full({2, 3, 4, 6}, 50.0);
    auto       test = ref.clone();
    test[0].add_(2.0);
    test[1].sub_(10.0);
    const auto s = metrics::psnr(frames(test), frames(ref));
    // Constant offsets d: PSNR = 20 log10(255 / d); the mean averages the two dB values.
    const double p0 = 20.0 * std::log10(255.0 / 2.0), p1 = 20.0 * std::log10(255.0 / 10.0);
    EXPECT_NEAR(s.per_frame[0], p0, 1e-9);
    EXPECT_NEAR(s.per_frame[1], p1, 1e-9);
    EXPECT_NEAR(s.mean, (p0 + p1) / 2.0, 1e-9);
}

TEST(MetricsPsnr, QuantisesToUint8Levels) {
    const auto ref = frames(torch::full({1, 3, 4, 4}, 77.0));
    // 0.003 in [-1, 1] is 0.38 of a level: both round to level 77, so the frames are identical.
    const auto s = metrics::psnr(ref + 0.003f, ref);
    EXPECT_EQ(s.per_frame[0], 100.0);
    // Values beyond [-1, 1] clamp to levels 0 and 255: 1.5 vs 1.0 is identical, -3 vs 1 is the full range (0 dB).
    EXPECT_EQ(metrics::psnr(torch::full({1, 3, 2, 2}, 1.5), torch::ones({1, 3, 2, 2})).per_frame[0], 100.0);
    EXPECT_NEAR(metrics::psnr(torch::full({1, 3, 2, 2}, -3.0), torch::ones({1, 3, 2, 2})).per_frame[0], 0.0, 1e-12);
}

TEST(MetricsRegionPsnr, ErrorOnlyInsideMask) {
    const auto ref  = torch::arange(2 * 3 * 16 * 16, torch::kFloat64).remainder(200).view({2, 3, 16, 16});
    auto       test = ref.clone();
    auto       mask = torch::zeros({2, 16, 16}, torch::kUInt8);
    mask[0].slice(0, 4, 10).slice(1, 2, 8).fill_(1);                    // frame 0: a 6x6 box
    test[0].slice(1, 4, 10).slice(2, 2, 8).add_(6.0);                    // error of 6 levels only inside it
    const auto [fg, bg] = metrics::region_psnr(frames(test), frames(ref), mask);
    // Inside: every value off by 6 levels -> 20 log10(255/6) = 32.568 dB. Outside: identical -> capped at 100.
    // Frame 1 has an empty mask: fg NaN, left out of the mean; its bg is the whole (identical) frame.
    const double in = 20.0 * std::log10(255.0 / 6.0);
    EXPECT_EQ(fg.name, "psnr_fg");
    EXPECT_EQ(bg.name, "psnr_bg");
    EXPECT_NEAR(fg.per_frame[0], in, 1e-9);
    EXPECT_TRUE(std::isnan(fg.per_frame[1]));
    EXPECT_NEAR(fg.mean, in, 1e-9);
    EXPECT_EQ(fg.note, "empty region, NaN and left out of the mean: 1 of 2");
    EXPECT_EQ(bg.per_frame, (std::vector<double>{100.0, 100.0}));
    EXPECT_EQ(bg.mean, 100.0);
    EXPECT_EQ(bg.note, "identical frames capped at 100 dB: 2 of 2");

    // The whole-frame PSNR of frame 0 dilutes the same error over 256 instead of 36 pixels: +10 log10(256/36) dB.
    EXPECT_NEAR(metrics::psnr(frames(test), frames(ref)).per_frame[0], in + 10.0 * std::log10(256.0 / 36.0), 1e-9);

    const auto bad = input_error_of([&] { metrics::region_psnr(frames(test), frames(ref), mask.slice(1, 0, 8)); });
    EXPECT_NE(bad.find("region_psnr: mask must be [F, H, W] = [2, 16, 16]"), std::string::npos) << bad;
    const auto dtype = input_error_of([&] { metrics::region_psnr(frames(test), frames(ref), mask.to(torch::kFloat32)); });
    EXPECT_NE(dtype.find("uint8 or bool"), std::string::npos) << dtype;
    EXPECT_NO_THROW(metrics::region_psnr(frames(test), frames(ref), mask.to(torch::kBool)));
}

// ---------------------------------------------------------------------------------------------------
TEST(MetricsSsim, GoldenImages) {
    const auto [a, b] = golden_levels();
    const auto s      = metrics::ssim(frames(b), frames(a));
    // metrics.md: TeaCache-style SSIM (Gaussian 11/1.5, valid, RGB mean) = 0.97485582; pure Python gives 0.9748558199.
    ASSERT_EQ(s.per_frame.size(), 1u);
    EXPECT_NEAR(s.per_frame[0], 0.97485582, 1e-8);
    EXPECT_EQ(s.name, "ssim");
    EXPECT_EQ(s.note, "");
    // The plain-loop SSIM here agrees.
    const auto loop = loop_ssim(image_of(b[0]), image_of(a[0]), 11);
    EXPECT_NEAR(s.per_frame[0], (loop.ssim[0] + loop.ssim[1] + loop.ssim[2]) / 3.0, 1e-12);
}

TEST(MetricsSsim, IdenticalFramesGiveOne) {
    torch::manual_seed(1);
    const auto [test, ref] = noisy_pair(2, 40, 36, 0.0);
    const auto x = frames(ref);
    for (double v : metrics::ssim(x, x).per_frame) EXPECT_NEAR(v, 1.0, 1e-12);
    for (double v : metrics::ms_ssim(x, x).per_frame) EXPECT_NEAR(v, 1.0, 1e-12);
    const auto proxy = metrics::lpips_proxy(x, x);
    for (double v : proxy.per_frame) EXPECT_NEAR(v, 0.0, 1e-12);
}

TEST(MetricsSsim, TinyFramesUseTheLargestOddWindow) {
    torch::manual_seed(2);
    const auto [test, ref] = noisy_pair(1, 7, 9, 6.0);
    const auto s           = metrics::ssim(frames(test), frames(ref));
    const auto loop        = loop_ssim(image_of(test[0]), image_of(ref[0]), 7);
    EXPECT_NEAR(s.per_frame[0], (loop.ssim[0] + loop.ssim[1] + loop.ssim[2]) / 3.0, 1e-12);
    EXPECT_EQ(s.note, "frames smaller than 11 px: 7x7 window");
}

// ---------------------------------------------------------------------------------------------------
TEST(MetricsMsSsim, GoldenImagesTwoScales) {
    const auto [a, b] = golden_levels();
    const auto s      = metrics::ms_ssim(frames(b), frames(a));
    // 32x48: 32 >> 1 = 16 holds an 11x11 window, 32 >> 2 = 8 does not -> M = 2, exponents 0.0448 and 0.2856 over
    // their sum 0.3304. Pure Python (direct window sums): cs_1 = [0.97044739, 0.97469122, 0.97943010],
    // ssim_2 (after 2x2 mean pooling, 16x24) = [0.99882573, 0.99904393, 0.99953345],
    // mean_c cs_1^(0.0448/0.3304) ssim_2^(0.2856/0.3304) = 0.995806610999.
    EXPECT_NEAR(s.per_frame[0], 0.995806610999, 1e-10);
    EXPECT_EQ(s.name, "ms_ssim");
    EXPECT_EQ(s.note, "2 scales (frames too small for 5)");
    EXPECT_NEAR(s.per_frame[0], loop_ms_ssim(image_of(b[0]), image_of(a[0]), 2, 11), 1e-12);
}

TEST(MetricsMsSsim, SquareFramesOf32GiveTwoScales) {
    torch::manual_seed(3);
    const auto [test, ref] = noisy_pair(1, 32, 32, 8.0);
    const auto s           = metrics::ms_ssim(frames(test), frames(ref));
    EXPECT_EQ(s.note, "2 scales (frames too small for 5)");
    EXPECT_NEAR(s.per_frame[0], loop_ms_ssim(image_of(test[0]), image_of(ref[0]), 2, 11), 1e-12);
}

TEST(MetricsMsSsim, FiveScalesMatchLoopReference) {
    torch::manual_seed(4);
    // 176 = 11 * 16 is the smallest side with a valid 11x11 window at scale 5; 185 exercises odd pooling.
    const auto [test, ref] = noisy_pair(1, 176, 185, 10.0);
    const auto s           = metrics::ms_ssim(frames(test), frames(ref));
    EXPECT_EQ(s.note, "");
    const double expect = loop_ms_ssim(image_of(test[0]), image_of(ref[0]), 5, 11);
    EXPECT_NEAR(s.per_frame[0], expect, 1e-12);
    EXPECT_GT(expect, 0.5);
    EXPECT_LT(expect, 0.999);
    const auto proxy = metrics::lpips_proxy(frames(test), frames(ref));
    EXPECT_EQ(proxy.name, "lpips_proxy");
    EXPECT_EQ(proxy.note, "proxy: 1 - MS-SSIM, not LPIPS");
    EXPECT_NEAR(proxy.per_frame[0], 1.0 - expect, 1e-12);
}

TEST(MetricsMsSsim, OddSidesGiveThreeScales) {
    torch::manual_seed(5);
    // min side 45: 45 >> 2 = 11 fits, 45 >> 3 = 5 does not -> 3 scales; 45 -> 22 -> 11 rows, 99 -> 49 -> 24 columns.
    const auto [test, ref] = noisy_pair(2, 45, 99, 9.0);
    const auto s           = metrics::ms_ssim(frames(test), frames(ref));
    EXPECT_EQ(s.note, "3 scales (frames too small for 5)");
    for (int f = 0; f < 2; ++f)
        EXPECT_NEAR(s.per_frame[f], loop_ms_ssim(image_of(test[f]), image_of(ref[f]), 3, 11), 1e-12) << f;
    EXPECT_NEAR(s.mean, (s.per_frame[0] + s.per_frame[1]) / 2.0, 1e-15);
}

TEST(MetricsMsSsim, FramesBelowOneWindowUseOneScaleAndASmallerWindow) {
    torch::manual_seed(6);
    const auto [test, ref] = noisy_pair(1, 10, 14, 6.0);
    const auto s           = metrics::ms_ssim(frames(test), frames(ref));
    EXPECT_EQ(s.note, "1 scale (frames too small for 5); frames smaller than 11 px: 9x9 window");
    // One scale: MS-SSIM is the SSIM with the 9x9 window (exponent renormalised to 1).
    const auto loop = loop_ssim(image_of(test[0]), image_of(ref[0]), 9);
    const double expect = (std::max(0.0, loop.ssim[0]) + std::max(0.0, loop.ssim[1]) + std::max(0.0, loop.ssim[2])) / 3.0;
    EXPECT_NEAR(s.per_frame[0], expect, 1e-12);
}

// ---------------------------------------------------------------------------------------------------
TEST(MetricsFlicker, ConstantFramesAnalytic) {
    // Constant frames: the mean |f[t+1] - f[t]| is the level step. test 100, 110, 105, 105; ref 50, 52, 54, 56.
    // Pairs: |10| - 2 = 8, |-5| - 2 = 3, 0 - 2 = -2; mean 3.
    const std::vector<double> tl = {100, 110, 105, 105}, rl = {50, 52, 54, 56};
    auto test = torch::zeros({4, 3, 6, 5}, torch::kFloat64), ref = torch::zeros({4, 3, 6, 5}, torch::kFloat64);
    for (int t = 0; t < 4; ++t) test[t].fill_(tl[t]), ref[t].fill_(rl[t]);
    const auto s = metrics::flicker(frames(test), frames(ref));
    EXPECT_EQ(s.name, "flicker");
    ASSERT_EQ(s.per_frame.size(), 3u);
    EXPECT_NEAR(s.per_frame[0], 8.0, 1e-12);
    EXPECT_NEAR(s.per_frame[1], 3.0, 1e-12);
    EXPECT_NEAR(s.per_frame[2], -2.0, 1e-12);
    EXPECT_NEAR(s.mean, 3.0, 1e-12);
}

TEST(MetricsFlicker, PartialChangeAnalytic) {
    // Ref static. In test frame 1, a quarter of the pixels (3x5 of 6x10) in channel 0 only rise by 12 levels:
    // mean |diff| over 3*6*10 values = 15 * 12 / 180 = 1 for pair 0 and again 1 for pair 1 (they drop back).
    auto ref  = torch::full({3, 3, 6, 10}, 30.0, torch::kFloat64);
    auto test = ref.clone();
    test[1][0].slice(0, 0, 3).slice(1, 0, 5).add_(12.0);
    const auto s = metrics::flicker(frames(test), frames(ref));
    EXPECT_NEAR(s.per_frame[0], 1.0, 1e-12);
    EXPECT_NEAR(s.per_frame[1], 1.0, 1e-12);
    // Swapping roles flips the sign.
    EXPECT_NEAR(metrics::flicker(frames(ref), frames(test)).mean, -1.0, 1e-12);
    const auto one = metrics::flicker(frames(ref[0].unsqueeze(0)), frames(ref[0].unsqueeze(0)));
    EXPECT_TRUE(one.per_frame.empty());
    EXPECT_TRUE(std::isnan(one.mean));
}

// ---------------------------------------------------------------------------------------------------
namespace {

struct AlexConv {
    std::string key;
    int64_t     out, in, k, stride, pad;
    bool        pool;
};
const std::vector<AlexConv>& alex() {
    static const std::vector<AlexConv> convs = {{"net.slice1.0", 64, 3, 11, 4, 2, false},
                                                {"net.slice2.3", 192, 64, 5, 1, 2, true},
                                                {"net.slice3.6", 384, 192, 3, 1, 1, true},
                                                {"net.slice4.8", 256, 384, 3, 1, 1, false},
                                                {"net.slice5.10", 256, 256, 3, 1, 1, false}};
    return convs;
}

std::map<std::string, torch::Tensor> random_lpips_weights() {
    std::map<std::string, torch::Tensor> w;
    for (size_t k = 0; k < alex().size(); ++k) {
        const auto& c = alex()[k];
        w[c.key + ".weight"] = torch::randn({c.out, c.in, c.k, c.k}) * std::sqrt(2.0 / double(c.in * c.k * c.k));
        w[c.key + ".bias"]   = torch::randn({c.out}) * 0.1;
        w["lin" + std::to_string(k) + ".model.1.weight"] = torch::rand({1, c.out, 1, 1}) * 0.2;  // non-negative
    }
    return w;
}

// The AlexNet trunk of tests/data/lpips/make_goldens.py (trunk_weight): u_i = ((i + salt) * 2654435761 mod 2^32)
// / 2^32 - 0.5 (exact in int64), scaled by sqrt(12) and sqrt(2 / fan_in) (biases: sqrt(2) * 0.1), salt 1000 * tap
// (+ 500 for biases).
torch::Tensor golden_trunk(size_t tap, const std::vector<int64_t>& shape, bool bias) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    const auto   i      = torch::arange(n, torch::kInt64) + int64_t(1000 * tap + (bias ? 500 : 0));
    const auto   u      = (i * int64_t(2654435761)).remainder(int64_t(4294967296)).to(torch::kFloat64) / 4294967296.0 - 0.5;
    const double fan_in = bias ? 1.0 : double(shape[1] * shape[2] * shape[3]);
    return (u * std::sqrt(12.0) * (std::sqrt(2.0 / fan_in) * (bias ? 0.1 : 1.0))).reshape(shape);
}

}  // namespace

// Goldens from richzhang/PerceptualSimilarity's own lpips.LPIPS (tests/data/lpips/README.md), both conventions.
TEST(MetricsLpips, MatchesOfficialCodeInBothConventions) {
    io::SafetensorsReader g(test::data_path("lpips/lpips_alex_goldens.safetensors"));
    std::map<std::string, torch::Tensor> wts;
    for (size_t k = 0; k < alex().size(); ++k) {
        const auto& c = alex()[k];
        wts[c.key + ".weight"] = golden_trunk(k, {c.out, c.in, c.k, c.k}, false);
        wts[c.key + ".bias"]   = golden_trunk(k, {c.out, 1, 1, 1}, true).reshape({c.out});
        const auto lin         = "lin" + std::to_string(k) + ".model.1.weight";
        wts[lin]               = g.load(lin);
    }
    const auto path = test::temp_dir() + "/lpips_alex.safetensors";
    io::write_safetensors(path, wts);
    const auto test = frames(g.load("test_levels")), ref = frames(g.load("ref_levels"));  // [2, 3, 64, 72]
    const auto spatial = g.load("lpips_spatial"), mean = g.load("lpips_mean");           // [2] each
    // The official code runs its scaling layer with float32 constants: ~6e-9 off profdit's float64 ones.
    constexpr double kTol = 3e-8;
    for (int f = 0; f < 2; ++f)  // the conventions differ here by far more than the bound, so the test tells them apart
        EXPECT_GT(std::abs(spatial[f].item<double>() - mean[f].item<double>()), 20 * kTol) << f;
    for (bool sp : {true, false}) {
        const auto s      = metrics::Lpips::load(path, sp)(test, ref);
        const auto expect = sp ? spatial : mean;
        ASSERT_EQ(s.per_frame.size(), 2u);
        for (int f = 0; f < 2; ++f) EXPECT_NEAR(s.per_frame[f], expect[f].item<double>(), kTol) << "spatial " << sp << " frame " << f;
        EXPECT_NE(s.note.find(sp ? "spatial=True (TeaCache/VideoSys" : "spatial=False (the lpips package's default)"), std::string::npos)
            << s.note;
        EXPECT_NEAR(s.mean, (s.per_frame[0] + s.per_frame[1]) / 2.0, 1e-15);
        for (double v : metrics::Lpips::load(path, sp)(ref, ref).per_frame) EXPECT_EQ(v, 0.0);
    }
    const auto small = input_error_of([&] { metrics::Lpips::load(path)(test.slice(2, 0, 30), ref.slice(2, 0, 30)); });
    EXPECT_NE(small.find("at least 31x31"), std::string::npos) << small;
}

TEST(MetricsLpips, MissingOrMisshapenWeightIsInputError) {
    torch::manual_seed(8);
    const auto dir = test::temp_dir();
    auto       wts = random_lpips_weights();
    wts.erase("lin3.model.1.weight");
    io::write_safetensors(dir + "/missing.safetensors", wts);
    const auto missing = input_error_of([&] { metrics::Lpips::load(dir + "/missing.safetensors"); });
    EXPECT_NE(missing.find(dir + "/missing.safetensors"), std::string::npos) << missing;
    EXPECT_NE(missing.find("'lin3.model.1.weight' is missing (expected shape [1, 256, 1, 1])"), std::string::npos) << missing;

    wts                        = random_lpips_weights();
    wts["net.slice2.3.weight"] = torch::zeros({192, 64, 3, 3});
    io::write_safetensors(dir + "/shape.safetensors", wts);
    const auto shape = input_error_of([&] { metrics::Lpips::load(dir + "/shape.safetensors"); });
    EXPECT_NE(shape.find("'net.slice2.3.weight' has shape [192, 64, 3, 3], expected [192, 64, 5, 5]"), std::string::npos)
        << shape;
}

// ---------------------------------------------------------------------------------------------------
TEST(MetricsValidation, ShapesAreCheckedAndNamed) {
    const auto a = torch::zeros({2, 3, 8, 8}), b = torch::zeros({2, 3, 8, 9});
    const auto mismatch = input_error_of([&] { metrics::psnr(a, b); });
    EXPECT_NE(mismatch.find("psnr: test and reference frames differ in shape"), std::string::npos) << mismatch;
    EXPECT_NE(mismatch.find("[2, 3, 8, 8]"), std::string::npos) << mismatch;
    EXPECT_NE(mismatch.find("[2, 3, 8, 9]"), std::string::npos) << mismatch;
    const auto rank = input_error_of([&] { metrics::ssim(a[0], a[0]); });
    EXPECT_NE(rank.find("ssim: frames must be [F, 3, H, W]"), std::string::npos) << rank;
    const auto channels = torch::zeros({2, 4, 8, 8});
    EXPECT_NE(input_error_of([&] { metrics::ms_ssim(channels, channels); }).find("ms_ssim:"), std::string::npos);
    EXPECT_NE(input_error_of([&] { metrics::lpips_proxy(a, b); }).find("lpips_proxy:"), std::string::npos);
    EXPECT_NE(input_error_of([&] { metrics::flicker(a, b); }).find("flicker:"), std::string::npos);
    const auto ints = torch::zeros({2, 3, 8, 8}, torch::kUInt8);
    EXPECT_NE(input_error_of([&] { metrics::psnr(ints, ints); }).find("floating point"), std::string::npos);
}
