#pragma once

#include <utility>

#include <torch/torch.h>

#include "metrics/series.h"

namespace profdit::metrics {

// Frames are [F, 3, H, W] in [-1, 1]; both are quantised to uint8 levels first (as the papers compare uint8
// frames before video encoding), then mapped to [0, 1] and compared in float64.

// Per frame 10 log10(1 / MSE), MSE over C*H*W, peak 1; 100 dB when MSE < 1e-10 (counted in `note`).
// The mean is the mean of the per-frame values (VideoSys/TeaCache), not the PSNR of the pooled MSE.
Series psnr(const torch::Tensor& test, const torch::Tensor& ref);

// PSNR inside ("psnr_fg") and outside ("psnr_bg") a mask [F, H, W] (uint8 or bool, nonzero = inside), over
// all 3 channels of the region's pixels. A frame whose region is empty gets NaN and is left out of the mean.
std::pair<Series, Series> region_psnr(const torch::Tensor& test, const torch::Tensor& ref, const torch::Tensor& mask);

}  // namespace profdit::metrics
