#pragma once

#include <torch/torch.h>

#include "metrics/series.h"

namespace profdit::metrics {

// Frames are [F, 3, H, W] in [-1, 1] on any device (computed there; the per-frame values come back in one
// copy); both are quantised to uint8 levels first (as the papers compare uint8
// frames before video encoding), then mapped to [0, 1] and compared in float64.

// SSIM (Wang 2004) as VideoSys/TeaCache compute it: Gaussian 11x11 window, sigma 1.5 (sum 1), C1 = 1e-4,
// C2 = 9e-4, population variance, mean over the valid region, per RGB channel, mean of the 3 channels.
// Frames smaller than 11 px use the largest odd window that fits (said in `note`).
Series ssim(const torch::Tensor& test, const torch::Tensor& ref);

// MS-SSIM (Wang 2003) per RGB channel, mean of channels: cs at scales 1..M-1, l*cs at scale M, exponents
// {0.0448, 0.2856, 0.3001, 0.2363, 0.1333}, 2x2 average pooling between scales (an odd last row/column is
// dropped), negative terms clamped to 0 (as pytorch-msssim). M = 5 when min(H, W) >= 176; otherwise the
// largest M whose smallest scale still holds an 11x11 window, with the exponents renormalised to sum 1;
// below 11 px one scale with the largest odd window that fits. `note` says when M < 5.
Series ms_ssim(const torch::Tensor& test, const torch::Tensor& ref);

// 1 - MS-SSIM per frame: a weight-free proxy, not LPIPS.
Series lpips_proxy(const torch::Tensor& test, const torch::Tensor& ref);
// The same from an MS-SSIM series already computed (a run that asks for both computes MS-SSIM once).
Series lpips_proxy_from(const Series& ms_ssim);

}  // namespace profdit::metrics
