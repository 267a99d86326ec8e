#pragma once

#include <torch/torch.h>

namespace profdit::metrics {

// mean|cur - prev| / max(mean|prev|, kRelativeL1Floor): the change TeaCache rescales, DBCache's probe distance
// and the calibration's x and y. The floor (upstream divides without one) keeps an all-zero previous value from
// giving NaN (0/0) or inf: 0 when it stays zero, a large change otherwise. Above the floor the value is
// upstream's, bit for bit.
constexpr double kRelativeL1Floor = 1e-12;
double           relative_l1(const torch::Tensor& cur, const torch::Tensor& prev);

}  // namespace profdit::metrics
