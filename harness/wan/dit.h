#pragma once

#include <array>
#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "wan/attention.h"
#include "wan/config.h"
#include "wan/rope.h"

namespace profdit::wan {

// The keys and values one block's cross-attention takes from the text context.
struct CrossKV {
    torch::Tensor k;  // [B, Lc, H, hd] after norm_k, compute dtype
    torch::Tensor v;  // [B, Lc, H, hd]
};

// What the blocks take from the prompt and the token grid, fixed for one (prompt, CFG branch, grid): built
// once by WanModel::condition, outside the step loop, and shared by every call with that prompt.
struct Conditioning {
    torch::Tensor          context;   // [B, text_len, dim], text_embedding output (compute dtype)
    std::vector<CrossKV>   cross_kv;  // per block
    Rope                   rope;      // angles for the token grid
    std::array<int64_t, 3> grid{};    // (F', H', W') after patching
};

// What a block needs besides the hidden state: the prompt's conditioning and this call's time embedding.
struct DiTCond : Conditioning {
    torch::Tensor e;   // [B, dim] f32, time_embedding output
    torch::Tensor e0;  // [B, 6, dim] f32, time_projection output
};

struct Embedded {
    torch::Tensor x;  // [B, L, dim] patch tokens
    DiTCond       cond;
};

// Optional capture of a block's intermediates (parity tests, profiling observers).
struct BlockProbe {
    torch::Tensor q_normed, k_normed;  // [B, L, dim] after q/k Linear + RMSNorm
    torch::Tensor q_rope, k_rope;      // [B, L, H, hd] after RoPE
    torch::Tensor self_attn_out;       // [B, L, dim] before the gate
    torch::Tensor cross_attn_out;      // [B, L, dim]
    torch::Tensor ffn_out;             // [B, L, dim] before the gate
};

// x * rsqrt(mean(x^2) + eps) * weight over the last dim, computed in f32 (WanRMSNorm).
class WanRMSNormImpl : public torch::nn::Module {
  public:
    WanRMSNormImpl(int64_t dim, double eps);
    torch::Tensor forward(const torch::Tensor& x);
    torch::Tensor weight;
    double        eps;
};
TORCH_MODULE(WanRMSNorm);

// Linear layers (q|k|v, k|v) that run as one GEMM. Their weights and biases live in one tensor each, and the
// layers' own parameters are views into it, so checkpoint names load and save as before and every weight
// is held once. Parameters replaced since (moved to another device or dtype) are fused again on first use.
class FusedLinear {
  public:
    void          fuse(const std::vector<torch::nn::Linear>& parts);
    torch::Tensor forward(const torch::Tensor& x, const std::vector<torch::nn::Linear>& parts);  // [.., sum out]

  private:
    bool          holds(const std::vector<torch::nn::Linear>& parts) const;
    torch::Tensor weight_, bias_;  // [sum out, in], [sum out]
};

class WanSelfAttentionImpl : public torch::nn::Module {
  public:
    WanSelfAttentionImpl(const WanConfig& c, std::shared_ptr<AttentionScratch> scratch);
    torch::Tensor forward(const torch::Tensor& x, const Rope& rope, BlockProbe* probe);  // [B, L, dim] -> [B, L, dim]
    torch::nn::Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
    WanRMSNorm        norm_q{nullptr}, norm_k{nullptr};
    int64_t           num_heads;
    std::shared_ptr<AttentionScratch> scratch;
    FusedLinear                       fused;
};
TORCH_MODULE(WanSelfAttention);

// Same parameters as self-attention (as in the reference, which subclasses it); no RoPE, keys and
// values from the text context (projected once per prompt by `project`).
class WanT2VCrossAttentionImpl : public WanSelfAttentionImpl {
  public:
    using WanSelfAttentionImpl::WanSelfAttentionImpl;
    CrossKV       project(const torch::Tensor& context);                 // [B, Lc, dim] -> k, v [B, Lc, H, hd]
    torch::Tensor forward(const torch::Tensor& x, const CrossKV& kv);    // [B, L, dim] -> [B, L, dim]
};
TORCH_MODULE(WanT2VCrossAttention);

class WanAttentionBlockImpl : public torch::nn::Module {
  public:
    WanAttentionBlockImpl(const WanConfig& c, std::shared_ptr<AttentionScratch> scratch);
    torch::Tensor forward(const torch::Tensor& x, const DiTCond& c, const CrossKV& kv, BlockProbe* probe = nullptr);  // [B, L, dim]
    torch::Tensor modulated_input(const torch::Tensor& x, const DiTCond& c);  // LN(x)(1 + scale_sa) + shift_sa, [B, L, dim]
    torch::Tensor            modulation;  // [1, 6, dim]
    WanSelfAttention         self_attn{nullptr};
    torch::nn::LayerNorm     norm3{nullptr};  // affine, before cross-attention
    WanT2VCrossAttention     cross_attn{nullptr};
    torch::nn::Sequential    ffn{nullptr};  // ffn.0 Linear, ffn.1 GELU(tanh), ffn.2 Linear
    double                   eps;
};
TORCH_MODULE(WanAttentionBlock);

class HeadImpl : public torch::nn::Module {
  public:
    HeadImpl(const WanConfig& c);
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& e);  // [B, L, dim], [B, dim] -> [B, L, prod(patch)*out_dim]
    torch::Tensor     modulation;  // [1, 2, dim]
    torch::nn::Linear head{nullptr};
    double            eps;
};
TORCH_MODULE(Head);

// Wan2.1 DiT (t2v). Submodule names equal the official checkpoint keys, so named_parameters() is the
// state-dict key list. The forward is exposed in stages (embed / block i / head) for the pipeline.
class WanModelImpl : public torch::nn::Module {
  public:
    explicit WanModelImpl(const WanConfig& c);

    // The prompt's part of every call: context [Lc, text_dim] with Lc <= text_len (zero-padded to text_len
    // here) for latents of `latent_shape` [C, F, H, W], without autograd. Build it once per prompt and CFG branch.
    Conditioning  condition(const torch::Tensor& context, c10::IntArrayRef latent_shape);
    // Batched: contexts [B, text_len, text_dim] (already padded).
    Conditioning  condition_batch(const torch::Tensor& contexts, const std::array<int64_t, 3>& grid);
    std::array<int64_t, 3> token_grid(c10::IntArrayRef latent_shape) const;  // [C, F, H, W] -> (F', H', W')

    // latent [C, F, H, W] (unbatched, as the reference's list entries), t an integer timestep.
    Embedded      embed(const torch::Tensor& latent, int64_t t, const Conditioning& c);
    Embedded      embed(const torch::Tensor& latent, int64_t t, const torch::Tensor& context);  // conditions `context` first
    // Batched: latents [B, C, F, H, W], t int64 [B].
    Embedded      embed_batch(const torch::Tensor& latents, const torch::Tensor& t, const Conditioning& c);
    torch::Tensor pad_context(const torch::Tensor& context) const;  // [Lc, text_dim] -> [text_len, text_dim], zeros after Lc
    torch::Tensor block(int64_t i, const torch::Tensor& x, const DiTCond& c, BlockProbe* probe = nullptr);
    // Blocks first..last on x, the one loop over blocks (forward, the cache executor, the NaN locator). After
    // each block `visit` (when given) sees its index, input, output and, with `probe`, its intermediates;
    // returning false stops there. Returns the hidden state after the last block run.
    using BlockVisit = std::function<bool(int64_t block, const torch::Tensor& in, const torch::Tensor& out, const BlockProbe* probe)>;
    torch::Tensor run_blocks(torch::Tensor x, const DiTCond& c, int64_t first, int64_t last, const BlockVisit& visit = nullptr,
                             bool probe = false);
    torch::Tensor modulated_input(int64_t i, const torch::Tensor& x, const DiTCond& c);  // block i's normed, modulated input
    torch::Tensor head_tokens(const torch::Tensor& x, const DiTCond& c);                // -> [B, L, prod(patch)*out_dim]
    torch::Tensor unpatchify(const torch::Tensor& tokens, const std::array<int64_t, 3>& grid) const;  // -> [C_out, F, H, W]
    torch::Tensor unpatchify_batch(const torch::Tensor& tokens, const std::array<int64_t, 3>& grid) const;  // -> [B, C_out, F, H, W]
    torch::Tensor forward(const torch::Tensor& latent, int64_t t, const Conditioning& c);             // all stages
    torch::Tensor forward(const torch::Tensor& latent, int64_t t, const torch::Tensor& context);      // conditions `context` first
    torch::Tensor forward_batch(const torch::Tensor& latents, const torch::Tensor& t, const torch::Tensor& contexts);  // -> [B, C_out, F, H, W]

    // Matmul layers (patch, text MLP, attention projections, FFN) to `dtype`; norms, modulation, the
    // time embedding and the head stay f32, as the reference's bf16 autocast run does.
    void          set_compute_dtype(torch::ScalarType dtype);
    // Stores each attention's q|k|v (self) and k|v (cross) weights in one tensor (FusedLinear). The
    // constructor and set_compute_dtype do it; after a move to another device the first forward does.
    void          fuse_projections();
    torch::ScalarType compute_dtype() const { return compute_dtype_; }
    const WanConfig&  config() const { return config_; }
    int64_t           num_blocks() const { return config_.num_layers; }
    torch::Device     device() const { return patch_embedding->weight.device(); }

    torch::nn::Conv3d     patch_embedding{nullptr};
    torch::nn::Sequential text_embedding{nullptr};   // .0 Linear, .1 GELU(tanh), .2 Linear
    torch::nn::Sequential time_embedding{nullptr};   // .0 Linear, .1 SiLU, .2 Linear
    torch::nn::Sequential time_projection{nullptr};  // .0 SiLU, .1 Linear(dim, 6 dim)
    torch::nn::ModuleList blocks{nullptr};
    Head                  head{nullptr};

  private:
    WanConfig                         config_;
    torch::ScalarType                 compute_dtype_ = torch::kFloat32;
    std::shared_ptr<AttentionScratch> scratch_       = std::make_shared<AttentionScratch>();
};
TORCH_MODULE(WanModel);

// Sinusoidal timestep embedding: float64 [cos(t w_i) | sin(t w_i)], w_i = 10000^(-i/half), cast to f32.
torch::Tensor sinusoidal_embedding(int64_t freq_dim, int64_t t, const torch::Device& device);  // -> [1, freq_dim]
torch::Tensor sinusoidal_embedding(int64_t freq_dim, const torch::Tensor& t);                   // t [B] -> [B, freq_dim]

}  // namespace profdit::wan
