#pragma once

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

}  // namespace profdit::metrics
