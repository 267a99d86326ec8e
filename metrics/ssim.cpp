#include "metrics/ssim.h"

#include <algorithm>
#include <array>
#include <string>

#include "metrics/per_frame.h"

namespace profdit::metrics {

namespace {

constexpr double  kC1 = 1e-4, kC2 = 9e-4, kSigma = 1.5;
constexpr int64_t kWindow = 11;
constexpr std::array<double, 5> kMsWeights = {0.0448, 0.2856, 0.3001, 0.2363, 0.1333};

// The window: 11, or the largest odd size that fits in the frame.
int64_t window_for(int64_t min_side) { return std::min(kWindow, min_side % 2 ? min_side : min_side - 1); }

std::string small_window_note(int64_t win) {
    const auto k = std::to_string(win);
    return "frames smaller than 11 px: " + k + "x" + k + " window";
}

// Gaussian taps exp(-(i - c)^2 / (2 sigma^2)), normalised to sum 1 (cv2.getGaussianKernel).
torch::Tensor gaussian_taps(int64_t win, const torch::TensorOptions& opts) {
    const auto d = torch::arange(win, opts) - double(win / 2);  // [win]
    const auto g = (-d.square() / (2 * kSigma * kSigma)).exp();
    return g / g.sum();
}

struct SsimMeans {
    torch::Tensor ssim, cs;  // [3] per-channel means over the valid region
};

// Per-channel means of the SSIM and contrast-structure maps of x, y [3, H, W] in [0, 1], float64.
SsimMeans ssim_means(const torch::Tensor& x, const torch::Tensor& y, int64_t win) {
    const auto H = x.size(1), W = x.size(2);
    const auto g = gaussian_taps(win, x.options());
    auto s = torch::stack({x, y, x * x, y * y, x * y}).reshape({15, 1, H, W});  // [15, 1, H, W]
    s      = torch::conv2d(s, g.view({1, 1, 1, win}));                           // [15, 1, H, W']
    s      = torch::conv2d(s, g.view({1, 1, win, 1})).view({5, 3, H - win + 1, W - win + 1});  // [5, 3, H', W']
    const auto mx = s[0], my = s[1];
    const auto vx = s[2] - mx * mx, vy = s[3] - my * my, cxy = s[4] - mx * my;  // [3, H', W']
    const auto cs = (2 * cxy + kC2) / (vx + vy + kC2);
    const auto l  = (2 * mx * my + kC1) / (mx * mx + my * my + kC1);
    return {(l * cs).mean({1, 2}), cs.mean({1, 2})};
}

// The MS-SSIM of one frame pair x, y [3, H, W] over `scales` scales with window `win`: a 0-dim tensor on their device.
torch::Tensor ms_ssim_frame(torch::Tensor x, torch::Tensor y, int64_t scales, int64_t win) {
    double wsum = 0;
    for (int64_t j = 0; j < scales; ++j) wsum += kMsWeights[j];
    auto value = torch::ones({3}, x.options());  // [3]
    for (int64_t j = 0; j < scales; ++j) {
        const auto m    = ssim_means(x, y, win);
        const auto term = j + 1 < scales ? m.cs : m.ssim;
        value           = value * term.clamp_min(0.0).pow(kMsWeights[j] / wsum);
        if (j + 1 < scales) {
            x = torch::avg_pool2d(x.unsqueeze(0), {2, 2}).squeeze(0);  // [3, H/2, W/2]
            y = torch::avg_pool2d(y.unsqueeze(0), {2, 2}).squeeze(0);
        }
    }
    return value.mean();
}

}  // namespace

Series ssim(const torch::Tensor& test, const torch::Tensor& ref) {
    detail::check_frames("ssim", test, ref);
    const auto x = detail::to_unit(test), y = detail::to_unit(ref).to(test.device());  // [F, 3, H, W]
    const auto win = window_for(std::min(x.size(2), x.size(3)));
    Series     s;
    s.name = "ssim";
    std::vector<torch::Tensor> per_frame;  // 0-dim, on the frames' device
    for (int64_t f = 0; f < x.size(0); ++f) per_frame.push_back(ssim_means(x[f], y[f], win).ssim.mean());
    s.per_frame = detail::read_per_frame(per_frame);
    s.mean = detail::mean_skipping_nan(s.per_frame);
    if (win < kWindow) detail::add_note(s, small_window_note(win));
    return s;
}

Series ms_ssim(const torch::Tensor& test, const torch::Tensor& ref) {
    detail::check_frames("ms_ssim", test, ref);
    const auto    x = detail::to_unit(test), y = detail::to_unit(ref).to(test.device());  // [F, 3, H, W]
    const int64_t side = std::min(x.size(2), x.size(3));
    const int64_t win  = window_for(side);
    int64_t       scales = 1;
    while (scales < int64_t(kMsWeights.size()) && (side >> scales) >= kWindow) ++scales;
    Series s;
    s.name = "ms_ssim";
    std::vector<torch::Tensor> per_frame;  // 0-dim, on the frames' device
    for (int64_t f = 0; f < x.size(0); ++f) per_frame.push_back(ms_ssim_frame(x[f], y[f], scales, win));
    s.per_frame = detail::read_per_frame(per_frame);
    s.mean = detail::mean_skipping_nan(s.per_frame);
    if (scales < int64_t(kMsWeights.size()))
        detail::add_note(s, std::to_string(scales) + (scales == 1 ? " scale" : " scales") + " (frames too small for 5)");
    if (win < kWindow) detail::add_note(s, small_window_note(win));
    return s;
}

Series lpips_proxy(const torch::Tensor& test, const torch::Tensor& ref) {
    detail::check_frames("lpips_proxy", test, ref);
    return lpips_proxy_from(ms_ssim(test, ref));
}

Series lpips_proxy_from(const Series& ms_ssim) {
    Series s = ms_ssim;
    s.name   = "lpips_proxy";
    for (double& v : s.per_frame) v = 1.0 - v;
    s.mean   = detail::mean_skipping_nan(s.per_frame);
    s.note   = "proxy: 1 - MS-SSIM, not LPIPS" + (s.note.empty() ? "" : "; " + s.note);
    return s;
}

}  // namespace profdit::metrics
