#pragma once

#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "wan/config.h"

namespace profdit::wan {

// umT5 encoder (Wan2.1's text encoder, wan/modules/t5.py T5Encoder with shared_pos=False). Defaults are
// umT5-XXL.
struct T5Config {
    int64_t vocab       = 256384;
    int64_t dim         = 4096;
    int64_t dim_attn    = 4096;
    int64_t dim_ffn     = 10240;
    int64_t num_heads   = 64;
    int64_t num_layers  = 24;
    int64_t num_buckets = 32;
    double  eps         = 1e-6;

    // From official key names (t5_to_official): num_heads and num_buckets from the relative-bias
    // embedding [num_buckets, num_heads]. A missing key is an InputError naming `source`.
    static T5Config detect_from_weights(const ShapeMap& shapes, const std::string& source);
    void            validate(const std::string& source) const;
};

// Key names: profdit's canonical names are the official Wan ones; HF UMT5EncoderModel names map onto them.
enum class T5KeyFormat { official, hf };

std::string t5_to_official(const std::string& hf_key);  // "" when the HF key has no official counterpart
std::string t5_to_hf(const std::string& official_key);
bool        is_hf_t5_key(const std::string& key);

// Bias-free Linear whose weight is created in the compute dtype (no random init: checkpoints fill it).
class T5LinearImpl : public torch::nn::Module {
  public:
    T5LinearImpl(int64_t in, int64_t out, const torch::TensorOptions& opt);
    torch::Tensor forward(const torch::Tensor& x);  // [.., in] -> [.., out] in the weight's dtype
    torch::Tensor weight;                           // [out, in]
};
TORCH_MODULE(T5Linear);

// Embedding table created in the given dtype (zeros until a checkpoint fills it).
class T5EmbeddingImpl : public torch::nn::Module {
  public:
    T5EmbeddingImpl(int64_t num, int64_t dim, const torch::TensorOptions& opt);
    torch::Tensor forward(const torch::Tensor& ids);  // int64 [..] -> [.., dim]
    torch::Tensor weight;                             // [num, dim]
};
TORCH_MODULE(T5Embedding);

// RMS norm without mean subtraction or bias, computed in f32: x * rsqrt(mean(x^2) + eps) * weight.
class T5LayerNormImpl : public torch::nn::Module {
  public:
    T5LayerNormImpl(int64_t dim, double eps, const torch::Device& device);
    torch::Tensor forward(const torch::Tensor& x);  // [.., dim] -> [.., dim] f32
    torch::Tensor weight;                           // [dim] f32
    double        eps;
};
TORCH_MODULE(T5LayerNorm);

// Bidirectional relative-position buckets (max distance 128) and their per-head bias table.
class T5RelativeEmbeddingImpl : public torch::nn::Module {
  public:
    T5RelativeEmbeddingImpl(int64_t num_buckets, int64_t num_heads, const torch::Device& device);
    torch::Tensor forward(const torch::Tensor& buckets);  // int64 [Lq, Lk] -> [1, H, Lq, Lk] f32
    // Bucket of key_pos - query_pos: int64 [lq, lk].
    static torch::Tensor buckets(int64_t lq, int64_t lk, int64_t num_buckets, const torch::Device& device,
                                 int64_t max_distance = 128);
    T5Embedding embedding{nullptr};  // weight [num_buckets, num_heads] f32
};
TORCH_MODULE(T5RelativeEmbedding);

// Self-attention without 1/sqrt(d) scaling; logits + relative bias, masked keys get f32's lowest value,
// softmax in f32.
class T5AttentionImpl : public torch::nn::Module {
  public:
    T5AttentionImpl(const T5Config& c, const torch::TensorOptions& opt);
    // x [B, L, dim], pos_bias [1, H, L, L] f32, key_masked bool [B, 1, 1, L] (true = padding) or undefined.
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& pos_bias, const torch::Tensor& key_masked);
    T5Linear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
    int64_t  num_heads;
};
TORCH_MODULE(T5Attention);

// fc2(fc1(x) * gelu_tanh(gate(x))).
class T5FeedForwardImpl : public torch::nn::Module {
  public:
    T5FeedForwardImpl(const T5Config& c, const torch::TensorOptions& opt);
    torch::Tensor         forward(const torch::Tensor& x);  // [B, L, dim] -> [B, L, dim]
    torch::nn::Sequential gate{nullptr};                    // .0 T5Linear, .1 GELU(tanh)
    T5Linear              fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(T5FeedForward);

class T5SelfAttentionBlockImpl : public torch::nn::Module {
  public:
    T5SelfAttentionBlockImpl(const T5Config& c, const torch::TensorOptions& opt);
    // x [B, L, dim] f32, buckets int64 [L, L], key_masked as in T5Attention -> [B, L, dim] f32.
    torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& buckets, const torch::Tensor& key_masked);
    T5LayerNorm         norm1{nullptr};
    T5Attention         attn{nullptr};
    T5LayerNorm         norm2{nullptr};
    T5FeedForward       ffn{nullptr};
    T5RelativeEmbedding pos_embedding{nullptr};
};
TORCH_MODULE(T5SelfAttentionBlock);

// Submodule names equal the official checkpoint keys. The token embedding and the Linear weights are
// created in `dtype` (uninitialised parameters are zeros; norms start at one); norms, the relative bias,
// softmax and the residual stream are f32.
class T5EncoderImpl : public torch::nn::Module {
  public:
    explicit T5EncoderImpl(const T5Config& c, torch::ScalarType dtype = torch::kFloat32,
                           const torch::Device& device = torch::kCPU);
    // ids int64 [B, L], mask [B, L] (nonzero = real token; undefined = all real) -> [B, L, dim] f32.
    torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& mask = {});

    const T5Config&   config() const { return config_; }
    torch::ScalarType dtype() const { return token_embedding->weight.scalar_type(); }
    torch::Device     device() const { return token_embedding->weight.device(); }

    T5Embedding           token_embedding{nullptr};  // [vocab, dim]
    torch::nn::ModuleList blocks{nullptr};
    T5LayerNorm           norm{nullptr};

  private:
    T5Config config_;
};
TORCH_MODULE(T5Encoder);

// What T5EncoderModel returns: row b of `hidden` [B, L, dim] cut to its real length sum(mask[b]).
std::vector<torch::Tensor> t5_trim(const torch::Tensor& hidden, const torch::Tensor& mask);  // B x [len_b, dim]

// Header-only look at a T5 weight file (safetensors or sharded index; official or HF names).
struct T5CheckpointInfo {
    std::string path;
    T5KeyFormat format = T5KeyFormat::official;
    ShapeMap    shapes;  // official key names (a name with no official counterpart is kept as stored)
    std::map<std::string, std::string> stored_name;  // official key -> name in the file
    T5Config    config;
    int64_t     num_params = 0;
};
T5CheckpointInfo inspect_t5(const std::string& path);
int64_t          t5_num_params(const ShapeMap& shapes);

// Loads a umT5 encoder (F32/F16/BF16 stored; config detected from the weights) in eval mode. A .pth
// path, missing, unexpected or mis-shaped keys are one InputError naming the file and keys.
T5Encoder load_t5(const std::string& path, const torch::Device& device, torch::ScalarType dtype = torch::kFloat32);

}  // namespace profdit::wan
