#include "metrics/relative_l1.h"

namespace profdit::metrics {

double relative_l1(const torch::Tensor& cur, const torch::Tensor& prev) {
    const auto change = (cur - prev).abs().mean();  // [] (0-dim)
    return (change / prev.abs().mean().clamp_min(kRelativeL1Floor)).item<double>();
}

}  // namespace profdit::metrics
