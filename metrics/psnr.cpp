#include "metrics/psnr.h"

#include <cmath>
#include <limits>
#include <string>

namespace profdit::metrics {

namespace {

constexpr double kCap = 100.0;

// PSNR of each frame from its squared-error sum and element count; NaN where the count is 0.
Series psnr_series(const std::string& name, const torch::Tensor& sq_sum, const torch::Tensor& count) {
    const auto sums = sq_sum.to(torch::kCPU).contiguous(), counts = count.to(torch::kCPU).contiguous();  // [F]
    Series     s;
    s.name       = name;
    int capped   = 0, empty = 0;
    const auto F = sums.size(0);
    for (int64_t f = 0; f < F; ++f) {
        const double n = counts[f].item<double>();
        if (n == 0) {
            s.per_frame.push_back(std::numeric_limits<double>::quiet_NaN());
            ++empty;
            continue;
        }
        const double mse = sums[f].item<double>() / n;
        if (mse < 1e-10) ++capped;
        s.per_frame.push_back(mse < 1e-10 ? kCap : 10.0 * std::log10(1.0 / mse));
    }
    s.mean                = detail::mean_skipping_nan(s.per_frame);
    const std::string of  = " of " + std::to_string(F);
    if (capped) detail::add_note(s, "identical frames capped at 100 dB: " + std::to_string(capped) + of);
    if (empty) detail::add_note(s, "empty region, NaN and left out of the mean: " + std::to_string(empty) + of);
    return s;
}

}  // namespace

Series psnr(const torch::Tensor& test, const torch::Tensor& ref) {
    detail::check_frames("psnr", test, ref);
    const auto sq  = (detail::to_unit(test) - detail::to_unit(ref).to(test.device())).square();  // [F, 3, H, W]
    const auto sum = sq.sum({1, 2, 3});                                                             // [F]
    return psnr_series("psnr", sum, torch::full_like(sum, double(sq[0].numel())));
}

std::pair<Series, Series> region_psnr(const torch::Tensor& test, const torch::Tensor& ref, const torch::Tensor& mask) {
    detail::check_frames("region_psnr", test, ref);
    const auto F = test.size(0), H = test.size(2), W = test.size(3);
    if (mask.dim() != 3 || mask.size(0) != F || mask.size(1) != H || mask.size(2) != W)
        input_error("region_psnr: mask must be [F, H, W] = [" + std::to_string(F) + ", " + std::to_string(H) + ", " +
                    std::to_string(W) + "] (got " + detail::shape_of(mask) + ")");
    if (mask.scalar_type() != torch::kUInt8 && mask.scalar_type() != torch::kBool)
        input_error("region_psnr: mask must be uint8 or bool (got " + std::string(c10::toString(mask.scalar_type())) + ")");
    const auto in  = mask.to(test.device()).ne(0).to(torch::kFloat64).unsqueeze(1);                 // [F, 1, H, W]
    const auto sq  = (detail::to_unit(test) - detail::to_unit(ref).to(test.device())).square();     // [F, 3, H, W]
    const auto fg  = psnr_series("psnr_fg", (sq * in).sum({1, 2, 3}), 3.0 * in.sum({1, 2, 3}));
    const auto bg  = psnr_series("psnr_bg", (sq * (1.0 - in)).sum({1, 2, 3}), 3.0 * (1.0 - in).sum({1, 2, 3}));
    return {fg, bg};
}

}  // namespace profdit::metrics
