#pragma once

#include <memory>

#include <torch/torch.h>

namespace profdit::wan {

// A score buffer reused across attention calls. On CPU a fresh [H, Lq, Lk] allocation per call costs
// more in page faults than the matmul itself, so the model keeps one and every block borrows it.
class AttentionScratch {
  public:
    torch::Tensor get(int64_t numel, const torch::TensorOptions& opt);  // [numel], contents undefined

  private:
    torch::Tensor buffer_;
};

// Softmax attention with scale 1/sqrt(hd), no mask. Runs in the dtype of q (k and v are cast to it).
// LibTorch >= 2 uses scaled_dot_product_attention (flash/memory-efficient kernels); otherwise the explicit
// path below.
torch::Tensor attention(const torch::Tensor& q,  // [B, Lq, H, hd]
                        const torch::Tensor& k,  // [B, Lk, H, hd]
                        const torch::Tensor& v,  // [B, Lk, H, hd]
                        AttentionScratch* scratch = nullptr);  // -> [B, Lq, H * hd]

// Explicit attention, chunked over queries so the score buffer stays under `max_score_bytes`
// (memory O(H * Lk * chunk)); the softmax runs in place in `scratch` when given. Scores, exp, row sums and
// P·V are fp32 for bf16/f16 input (fp64 for fp64); the output is q's dtype.
torch::Tensor attention_explicit(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 AttentionScratch* scratch = nullptr, int64_t max_score_bytes = int64_t(256) << 20);

// Received attention (a profiling observer, never on the normal path): for every key, the softmax
// attention it receives, averaged over heads and queries (every `query_stride`-th query). Each query's
// row sums to 1, so the result sums to 1 over the keys. Computed in f32 in query chunks: memory stays
// at B * H * query_chunk * Lk floats for the scores (4 MB at 4 heads, 64-query chunks, 4096 keys).
torch::Tensor received_attention(const torch::Tensor& q,  // [B, Lq, H, hd], after RoPE
                                 const torch::Tensor& k,  // [B, Lk, H, hd], after RoPE
                                 int64_t query_chunk = 64, int64_t query_stride = 1);  // -> [B, Lk] f32

}  // namespace profdit::wan
