#include "metrics/flicker.h"

namespace profdit::metrics {

namespace {

// Mean absolute difference of consecutive frames, 0-255 scale: levels [F, 3, H, W] -> [F-1]
torch::Tensor consecutive_mad(const torch::Tensor& levels) {
    return (levels.slice(0, 1) - levels.slice(0, 0, levels.size(0) - 1)).abs().mean({1, 2, 3});
}

}  // namespace

Series flicker(const torch::Tensor& test, const torch::Tensor& ref) {
    detail::check_frames("flicker", test, ref);
    Series s;
    s.name = "flicker";
    if (test.size(0) < 2) {
        s.mean = detail::mean_skipping_nan(s.per_frame);
        detail::add_note(s, "needs at least 2 frames");
        return s;
    }
    const auto d = consecutive_mad(detail::to_levels(test)) -
                   consecutive_mad(detail::to_levels(ref).to(test.device()));  // [F-1]
    const auto cpu = d.to(torch::kCPU).contiguous();
    s.per_frame.assign(cpu.data_ptr<double>(), cpu.data_ptr<double>() + cpu.numel());
    s.mean = detail::mean_skipping_nan(s.per_frame);
    detail::add_note(s, "test minus reference, 0-255 scale; positive = more flicker than the reference");
    return s;
}

}  // namespace profdit::metrics
