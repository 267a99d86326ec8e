#pragma once

#include <torch/torch.h>

#include "metrics/series.h"

namespace profdit::metrics {

// VBench-style weight-free temporal flicker relative to the reference. Frames are [F, 3, H, W] in [-1, 1],
// quantised to uint8 levels first (as the papers compare uint8 frames before video encoding). For each
// frame pair t = 0..F-2: mean |f[t+1] - f[t]| over pixels and channels on the 0-255 scale, of `test` minus
// the same of `ref`; positive means more flicker than the reference. `mean` is the mean over the F-1 pairs
// (NaN with a `note` when F = 1).
Series flicker(const torch::Tensor& test, const torch::Tensor& ref);

}  // namespace profdit::metrics
