#pragma once

#include <cstddef>
#include <cstdint>

#include "wan/config.h"

namespace profdit::metrics {

// Analytic FLOPs (2 x multiply-accumulates) of one DiT call at `tokens` patch tokens. Cross-attention
// always attends to text_len context rows (the reference pads the text to text_len and masks nothing).
struct BlockFlops {
    double self_attn_proj   = 0;  // q, k, v, o projections
    double self_attn_scores = 0;  // q k^T and p v
    double cross_attn_proj  = 0;  // q and o over tokens, k and v over the context
    double cross_attn_scores = 0;
    double ffn = 0;
    double total() const { return self_attn_proj + self_attn_scores + cross_attn_proj + cross_attn_scores + ffn; }
};

struct DiTFlops {
    double     embed = 0;  // patch embedding, time embedding and projection, text MLP
    BlockFlops block;      // one block
    double     head  = 0;
    int64_t    num_blocks = 0;
    double     call() const { return embed + double(num_blocks) * block.total() + head; }  // one full call
};

DiTFlops dit_flops(const wan::WanConfig& c, int64_t tokens);

// Elementwise work of the executor's indicators and forecasts over n elements (1 FLOP per add, subtract,
// multiply, divide or abs; a mean is a sum plus one divide).
inline double mean_abs_flops(double n) { return 2 * n; }       // mean|a|: abs, sum
inline double mean_abs_diff_flops(double n) { return 3 * n; }  // mean|a - b|: sub, abs, sum
inline double rel_l1_flops(double n) { return 5 * n; }         // mean|a - b| / mean|b|
// Taylor factors with `terms` = m + 1 entries: a forecast scales and adds m of them, an update
// subtracts and divides once per derivative.
inline double taylor_forecast_flops(double n, size_t terms) { return 2 * n * double(terms > 0 ? terms - 1 : 0); }
inline double taylor_update_flops(double n, size_t terms) { return 2 * n * double(terms > 0 ? terms - 1 : 0); }

}  // namespace profdit::metrics
