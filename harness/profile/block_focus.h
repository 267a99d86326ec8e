#pragma once

#include <array>
#include <string>

#include <torch/torch.h>

namespace profdit::profile {

// Foreground per token: a patch token is foreground when at least `min_share` of its pixels are.
// pixel_mask uint8 [F, H, W] (nonzero = foreground) -> bool [F/pt * H/ph * W/pw] in the DiT's token order.
torch::Tensor token_mask(const torch::Tensor& pixel_mask, const std::array<int64_t, 3>& patch, double min_share = 0.5);

// When a token's received attention counts as high, within its frame: above `value` x the frame's mean
// ("mean"), or above the frame's `value` quantile ("quantile"). The paper leaves the threshold open.
struct HighRule {
    std::string kind  = "mean";
    double      value = 1.0;
    std::string text() const;  // "mean x1", "quantile 0.8"
};

// ProfilingDiT's R_attn of one block at one step: the share of foreground tokens whose received attention
// is high. NaN without foreground tokens or when the block was not computed (received all NaN).
double foreground_high_share(const torch::Tensor& received,  // [L] f32, one block and step
                             const torch::Tensor& fg,        // [L] bool
                             int64_t frames, const HighRule& rule = {});

// R_attn per step and block: received [S, blocks, L] -> [S, blocks] f64 (NaN where not computed).
torch::Tensor r_attn_per_step(const torch::Tensor& received, const torch::Tensor& fg, int64_t frames, const HighRule& rule = {});

// R_attn per block, averaged over the steps where it was computed: received [S, blocks, L] -> [blocks] f64,
// and its spread over steps (max - min) -> [blocks] f64.
std::pair<torch::Tensor, torch::Tensor> r_attn(const torch::Tensor& received, const torch::Tensor& fg, int64_t frames,
                                               const HighRule& rule = {});

}  // namespace profdit::profile
