#pragma once

#include <array>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "sampling/decoder.h"
#include "wan/config.h"

namespace profdit::wan {

// WanVAE_ decoder hyper-parameters (the encoder is not built). Defaults: Wan2.1's VAE.
struct VAEConfig {
    int64_t              dim               = 96;
    int64_t              z_dim             = 16;
    std::vector<int64_t> dim_mult          = {1, 2, 4, 4};
    int64_t              num_res_blocks    = 2;
    std::vector<bool>    temporal_upsample = {true, true, false};  // reversed temperal_downsample

    // Everything from the decoder's key names and shapes (official names), assuming dim_mult[0] = 1 as
    // in Wan. InputError naming `source` when the layout is not a Wan decoder.
    static VAEConfig detect_from_weights(const ShapeMap& shapes, const std::string& source);
    void             validate(const std::string& source) const;

    int64_t temporal_factor() const;  // 2^(number of temporal upsamples): 4 for Wan2.1
    int64_t spatial_factor() const;   // 2^(len(dim_mult) - 1): 8 for Wan2.1
    int64_t out_frames(int64_t latent_frames) const { return 1 + temporal_factor() * (latent_frames - 1); }
    std::vector<int64_t> dims() const;  // decoder widths: dim * [mult.back(), mult reversed...] (384,384,384,192,96)
};

// The Wan2.1 per-channel latent statistics; the DiT works in (mu - mean) / std.
const std::array<float, 16>& wan21_latents_mean();
const std::array<float, 16>& wan21_latents_std();

// 3D conv padding time causally (2 p_t frames before, none after) and space symmetrically with zeros.
// forward() streams: it prepends the cached last frames of its previous inputs instead of zeros (zeros
// while the cache is empty) and keeps the last 2 frames of cache ++ x for the next call.
class CausalConv3dImpl : public torch::nn::Module {
  public:
    CausalConv3dImpl(int64_t in, int64_t out, std::array<int64_t, 3> kernel, std::array<int64_t, 3> padding);
    torch::Tensor forward(const torch::Tensor& x);  // [B, Cin, T, H, W] -> [B, Cout, T, H, W]
    void          clear_cache() { cache = torch::Tensor(); }
    torch::Tensor weight, bias;
    torch::Tensor cache;  // [B, Cin, <=2, H, W] or undefined
    std::array<int64_t, 3> padding;
};
TORCH_MODULE(CausalConv3d);

// F.normalize over channels * sqrt(C) * gamma, no bias. gamma [C, 1, 1, 1] (video) or [C, 1, 1] (images).
class RMSNormImpl : public torch::nn::Module {
  public:
    RMSNormImpl(int64_t dim, bool images);
    torch::Tensor forward(const torch::Tensor& x);  // channel dim 1
    torch::Tensor gamma;
    double        scale;
};
TORCH_MODULE(RMSNorm);

// residual = RMSNorm, SiLU, conv 3^3, RMSNorm, SiLU, (dropout), conv 3^3; shortcut 1^3 if in != out.
class ResidualBlockImpl : public torch::nn::Module {
  public:
    ResidualBlockImpl(int64_t in, int64_t out);
    torch::Tensor forward(const torch::Tensor& x);  // [B, in, T, H, W] -> [B, out, T, H, W]
    torch::nn::Sequential residual{nullptr};       // .0 RMSNorm .1 SiLU .2 conv .3 RMSNorm .4 SiLU .5 dropout (identity) .6 conv
    RMSNorm               norm1{nullptr}, norm2{nullptr};  // = residual.0, residual.3
    CausalConv3d          conv1{nullptr}, conv2{nullptr};  // = residual.2, residual.6
    CausalConv3d          shortcut{nullptr};               // null when in == out
};
TORCH_MODULE(ResidualBlock);

// Per-frame single-head self-attention over h*w with a residual.
class AttentionBlockImpl : public torch::nn::Module {
  public:
    explicit AttentionBlockImpl(int64_t dim);
    torch::Tensor      forward(const torch::Tensor& x);  // [B, C, T, H, W]
    RMSNorm            norm{nullptr};
    torch::nn::Conv2d  to_qkv{nullptr}, proj{nullptr};
};
TORCH_MODULE(AttentionBlock);

// 'upsample2d': per frame nearest 2x and a 3x3 conv C -> C/2. 'upsample3d': first a causal (3,1,1)
// time_conv C -> 2C interleaved into twice the frames, except on the first chunk after clear_cache(),
// whose single frame passes through (the reference's frame-0 rule).
class ResampleImpl : public torch::nn::Module {
  public:
    ResampleImpl(int64_t dim, bool temporal);
    torch::Tensor      forward(const torch::Tensor& x);  // [B, C, T, H, W] -> [B, C/2, T', 2H, 2W]
    torch::nn::Sequential resample{nullptr};  // .0 upsample (no parameters), .1 Conv2d(C, C/2, 3, pad 1)
    CausalConv3d       time_conv{nullptr};    // null for upsample2d
    bool               first_chunk = true;
};
TORCH_MODULE(Resample);

class Decoder3dImpl : public torch::nn::Module {
  public:
    explicit Decoder3dImpl(const VAEConfig& c);
    torch::Tensor         forward(const torch::Tensor& x);  // one chunk: [B, z_dim, T, h, w] -> [B, 3, T', 8h, 8w]
    CausalConv3d          conv1{nullptr};
    torch::nn::Sequential middle{nullptr};     // Res, Attn, Res
    torch::nn::Sequential upsamples{nullptr};  // ResidualBlock / Resample
    torch::nn::Sequential head{nullptr};       // .0 RMSNorm, .1 SiLU, .2 CausalConv3d(C, 3)
};
TORCH_MODULE(Decoder3d);

// conv2 (1x1x1 post-quant conv) + decoder. Parameter names equal the official WanVAE_ keys.
// Computation is always f32, as the reference's decoder. Weights may be kept in f16/bf16 to save memory;
// each convolution then casts its weight to f32 on use (running the convolutions in bf16 instead was
// measured at 0.39 max abs error on the tiny parity case, against 0.044 for bf16 weights with f32 compute).
class WanVAEDecoderImpl : public torch::nn::Module {
  public:
    explicit WanVAEDecoderImpl(const VAEConfig& c);
    // z [z_dim, F, h, w] normalised (as the DiT produces) -> [3, 1 + 4(F-1), 8h, 8w], not clamped.
    // Decodes one latent frame at a time with each causal conv caching its last 2 input frames.
    torch::Tensor decode_raw(const torch::Tensor& z);
    torch::Tensor decode(const torch::Tensor& z) { return decode_raw(z).clamp_(-1, 1); }  // [3, F', H, W]
    void          clear_cache();  // every causal conv's cache and every Resample's frame-0 state
    const VAEConfig& config() const { return config_; }
    torch::Device    device() const { return conv2->weight.device(); }

    CausalConv3d conv2{nullptr};
    Decoder3d    decoder{nullptr};
    torch::Tensor mean, inv_std;  // buffers [z_dim] f32: Wan2.1's latents_mean and 1 / latents_std (not in checkpoints)

  private:
    VAEConfig config_;
};
TORCH_MODULE(WanVAEDecoder);

// diffusers AutoencoderKLWan name -> official WanVAE_ name; "" for tensors the decoder does not use
// (encoder.*, quant_conv.*). Official names pass through (conv1.* -> "" too).
std::string vae_diffusers_to_official(const std::string& key);
std::string vae_official_to_diffusers(const std::string& key);

// Loads from safetensors (one file or a sharded index; official or diffusers names; F32/F16/BF16),
// detecting the config from the weights. Weights are kept in `dtype` (compute is f32). A .pth path, missing or
// mis-shaped keys are one InputError naming the file.
WanVAEDecoder load_vae_decoder(const std::string& path, const torch::Device& device,
                               torch::ScalarType dtype = torch::kFloat32);

// sampling::Decoder over the Wan VAE: latent [C, F, h, w] -> frames [F', 3, 8h, 8w] in [-1, 1].
class VAEDecoder : public sampling::Decoder {
  public:
    explicit VAEDecoder(WanVAEDecoder vae) : vae_(std::move(vae)) {}
    torch::Tensor  decode(const torch::Tensor& latent) override;
    WanVAEDecoder& vae() { return vae_; }

  private:
    WanVAEDecoder vae_;
};

}  // namespace profdit::wan
