#pragma once

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "common/error.h"

namespace profdit::metrics {

// One metric of one video: a value per frame (or per frame pair) and their mean.
struct Series {
    std::string         name;  // "psnr", "ssim", "ms_ssim", "lpips_proxy", "lpips", "psnr_fg", "psnr_bg", "flicker"
    std::vector<double> per_frame;
    double              mean = 0;
    std::string         note;  // e.g. "identical frames capped at 100 dB: 3 of 8"
};

// Helpers shared by the metric implementations.
namespace detail {

inline std::string shape_of(const torch::Tensor& t) {
    std::ostringstream s;
    s << t.sizes();
    return s.str();
}

// Throws InputError unless test and ref are floating-point frames [F, 3, H, W] of one shape, F, H, W >= 1.
inline void check_frames(const std::string& metric, const torch::Tensor& test, const torch::Tensor& ref) {
    const auto got = " (got test " + shape_of(test) + ", reference " + shape_of(ref) + ")";
    if (test.dim() != 4 || ref.dim() != 4 || test.size(1) != 3 || ref.size(1) != 3)
        input_error(metric + ": frames must be [F, 3, H, W]" + got);
    if (test.sizes() != ref.sizes()) input_error(metric + ": test and reference frames differ in shape" + got);
    if (test.numel() == 0) input_error(metric + ": no frames or empty frames" + got);
    if (!test.is_floating_point() || !ref.is_floating_point())
        input_error(metric + ": frames must be floating point in [-1, 1]" + got);
}

// [-1, 1] frames -> uint8 levels round(clamp((x + 1) / 2, 0, 1) * 255), as float64 integers 0..255.
inline torch::Tensor to_levels(const torch::Tensor& x) {
    return ((x.to(torch::kFloat64) + 1.0) / 2.0).clamp(0.0, 1.0).mul(255.0).round();
}

// [-1, 1] frames -> uint8-quantised frames in [0, 1], float64.
inline torch::Tensor to_unit(const torch::Tensor& x) { return to_levels(x) / 255.0; }

// Mean of the non-NaN values; NaN when there are none.
inline double mean_skipping_nan(const std::vector<double>& v) {
    double sum = 0;
    size_t n   = 0;
    for (double x : v)
        if (!std::isnan(x)) sum += x, ++n;
    return n ? sum / double(n) : std::numeric_limits<double>::quiet_NaN();
}

inline void add_note(Series& s, const std::string& note) {
    if (note.empty()) return;
    s.note += (s.note.empty() ? "" : "; ") + note;
}

}  // namespace detail
}  // namespace profdit::metrics
