#pragma once

#include <torch/torch.h>

namespace profdit::wan {

// Softmax attention with scale 1/sqrt(hd), no mask. Runs in the dtype of q (k and v are cast to it).
// LibTorch >= 2 uses scaled_dot_product_attention (flash/memory-efficient kernels); otherwise an explicit
// path chunked over queries so the score buffer stays under `max_score_bytes`.
torch::Tensor attention(const torch::Tensor& q,  // [B, Lq, H, hd]
                        const torch::Tensor& k,  // [B, Lk, H, hd]
                        const torch::Tensor& v,  // [B, Lk, H, hd]
                        int64_t max_score_bytes = int64_t(256) << 20);  // -> [B, Lq, H * hd]

// The explicit path alone (also what profiling observers build on).
torch::Tensor attention_explicit(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 int64_t max_score_bytes = int64_t(256) << 20);

}  // namespace profdit::wan
