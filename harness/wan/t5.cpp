#include "wan/t5.h"

#include <cctype>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "io/safetensors.h"
#include "wan/weight_errors.h"

namespace profdit::wan {

namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

// Splits "<prefix>N.<rest>" into N and rest; false when `key` does not have that form.
bool split_index(const std::string& key, const std::string& prefix, std::string& index, std::string& rest) {
    if (!starts_with(key, prefix)) return false;
    size_t i = prefix.size();
    while (i < key.size() && std::isdigit(static_cast<unsigned char>(key[i]))) ++i;
    if (i == prefix.size() || i >= key.size() || key[i] != '.') return false;
    index = key.substr(prefix.size(), i - prefix.size());
    rest  = key.substr(i + 1);
    return true;
}

using Rename = std::pair<const char*, const char*>;  // official suffix after "blocks.N.", HF suffix after "encoder.block.N."

const std::vector<Rename> kBlock = {
    {"norm1.weight", "layer.0.layer_norm.weight"},
    {"attn.q.weight", "layer.0.SelfAttention.q.weight"},
    {"attn.k.weight", "layer.0.SelfAttention.k.weight"},
    {"attn.v.weight", "layer.0.SelfAttention.v.weight"},
    {"attn.o.weight", "layer.0.SelfAttention.o.weight"},
    {"pos_embedding.embedding.weight", "layer.0.SelfAttention.relative_attention_bias.weight"},
    {"norm2.weight", "layer.1.layer_norm.weight"},
    {"ffn.gate.0.weight", "layer.1.DenseReluDense.wi_0.weight"},
    {"ffn.fc1.weight", "layer.1.DenseReluDense.wi_1.weight"},
    {"ffn.fc2.weight", "layer.1.DenseReluDense.wo.weight"},
};

const std::vector<int64_t>& shape_of(const ShapeMap& shapes, const std::string& key, const std::string& source) {
    auto it = shapes.find(key);
    if (it == shapes.end()) input_error(source + ": not a umT5 encoder checkpoint, missing tensor '" + key + "'");
    if (it->second.size() != 2) input_error(source + ": tensor '" + key + "' has shape " + shape_str(it->second) + ", expected 2-D");
    return it->second;
}

torch::Tensor gelu_tanh(const torch::Tensor& x) { return torch::gelu(x, "tanh"); }

}  // namespace

std::string t5_to_official(const std::string& key) {
    if (key == "shared.weight" || key == "encoder.embed_tokens.weight") return "token_embedding.weight";
    if (key == "encoder.final_layer_norm.weight") return "norm.weight";
    std::string n, rest;
    if (split_index(key, "encoder.block.", n, rest))
        for (const auto& r : kBlock)
            if (rest == r.second) return "blocks." + n + "." + r.first;
    return "";
}

std::string t5_to_hf(const std::string& key) {
    if (key == "token_embedding.weight") return "shared.weight";
    if (key == "norm.weight") return "encoder.final_layer_norm.weight";
    std::string n, rest;
    if (split_index(key, "blocks.", n, rest))
        for (const auto& r : kBlock)
            if (rest == r.first) return "encoder.block." + n + "." + r.second;
    return key;
}

bool is_hf_t5_key(const std::string& key) { return key == "shared.weight" || starts_with(key, "encoder."); }

T5Config T5Config::detect_from_weights(const ShapeMap& shapes, const std::string& source) {
    T5Config c;
    const auto& emb = shape_of(shapes, "token_embedding.weight", source);
    const auto& q   = shape_of(shapes, "blocks.0.attn.q.weight", source);
    const auto& fc1 = shape_of(shapes, "blocks.0.ffn.fc1.weight", source);
    const auto& pos = shape_of(shapes, "blocks.0.pos_embedding.embedding.weight", source);
    c.vocab       = emb[0];
    c.dim         = emb[1];
    c.dim_attn    = q[0];
    c.dim_ffn     = fc1[0];
    c.num_buckets = pos[0];
    c.num_heads   = pos[1];
    int64_t layers = 0;
    for (const auto& kv : shapes) {
        std::string n, rest;
        if (split_index(kv.first, "blocks.", n, rest) && n.size() < 9) layers = std::max<int64_t>(layers, std::stoll(n) + 1);
    }
    c.num_layers = layers;
    if (c.dim_attn % std::max<int64_t>(c.num_heads, 1) != 0)
        input_error(source + ": blocks.0.attn.q.weight has shape [" + std::to_string(q[0]) + ", " + std::to_string(q.size() > 1 ? q[1] : 0) +
                    "]: its rows (dim_attn " + std::to_string(c.dim_attn) + ") must split into num_heads " + std::to_string(c.num_heads) +
                    " (from blocks.0.pos_embedding.embedding.weight)");
    c.validate(source);
    return c;
}

void T5Config::validate(const std::string& source) const {
    if (vocab <= 0 || dim <= 0 || dim_attn <= 0 || dim_ffn <= 0 || num_heads <= 0 || num_layers <= 0 || num_buckets < 4)
        input_error(source + ": invalid T5 configuration (every size must be positive, num_buckets >= 4)");
    if (dim_attn % num_heads != 0)
        input_error(source + ": T5 dim_attn " + std::to_string(dim_attn) + " is not a multiple of num_heads " + std::to_string(num_heads));
}

T5LinearImpl::T5LinearImpl(int64_t in, int64_t out, const torch::TensorOptions& opt) {
    weight = register_parameter("weight", torch::zeros({out, in}, opt), false);
}

torch::Tensor T5LinearImpl::forward(const torch::Tensor& x) { return torch::linear(x.to(weight.scalar_type()), weight); }

T5EmbeddingImpl::T5EmbeddingImpl(int64_t num, int64_t dim, const torch::TensorOptions& opt) {
    weight = register_parameter("weight", torch::zeros({num, dim}, opt), false);
}

torch::Tensor T5EmbeddingImpl::forward(const torch::Tensor& ids) { return torch::embedding(weight, ids); }

T5LayerNormImpl::T5LayerNormImpl(int64_t dim, double eps_, const torch::Device& device) : eps(eps_) {
    weight = register_parameter("weight", torch::ones({dim}, torch::TensorOptions().device(device)), false);
}

torch::Tensor T5LayerNormImpl::forward(const torch::Tensor& x) {
    auto xf = x.to(torch::kFloat32);                                    // [.., dim]
    return xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps) * weight;  // [.., dim] f32
}

T5RelativeEmbeddingImpl::T5RelativeEmbeddingImpl(int64_t num_buckets, int64_t num_heads, const torch::Device& device) {
    embedding = register_module("embedding", T5Embedding(num_buckets, num_heads, torch::TensorOptions().device(device)));
}

torch::Tensor T5RelativeEmbeddingImpl::buckets(int64_t lq, int64_t lk, int64_t num_buckets, const torch::Device& device,
                                               int64_t max_distance) {
    auto opt             = torch::TensorOptions().dtype(torch::kInt64).device(device);
    auto rel             = torch::arange(lk, opt).unsqueeze(0) - torch::arange(lq, opt).unsqueeze(1);  // [lq, lk]
    const int64_t half   = num_buckets / 2;
    const int64_t exact  = half / 2;
    auto          out    = (rel > 0).to(torch::kInt64) * half;                                         // [lq, lk]
    auto          n      = rel.abs();                                                                  // [lq, lk]
    auto          large  = exact + (torch::log(n.to(torch::kFloat32) / double(exact)) /
                                   std::log(double(max_distance) / double(exact)) * double(half - exact))
                                   .to(torch::kInt64);                                                 // [lq, lk]
    large                = torch::clamp_max(large, half - 1);                                          // [lq, lk]
    return out + torch::where(n < exact, n, large);                                                    // [lq, lk]
}

torch::Tensor T5RelativeEmbeddingImpl::forward(const torch::Tensor& buckets) {
    return embedding(buckets).permute({2, 0, 1}).unsqueeze(0).contiguous();  // [1, H, Lq, Lk]
}

T5AttentionImpl::T5AttentionImpl(const T5Config& c, const torch::TensorOptions& opt) : num_heads(c.num_heads) {
    q = register_module("q", T5Linear(c.dim, c.dim_attn, opt));
    k = register_module("k", T5Linear(c.dim, c.dim_attn, opt));
    v = register_module("v", T5Linear(c.dim, c.dim_attn, opt));
    o = register_module("o", T5Linear(c.dim_attn, c.dim, opt));
}

torch::Tensor T5AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& pos_bias, const torch::Tensor& key_masked) {
    const auto B = x.size(0), L = x.size(1), H = num_heads, hd = q->weight.size(0) / num_heads;
    auto qh = q(x).view({B, L, H, hd}).transpose(1, 2);                                 // [B, H, L, hd]
    auto kh = k(x).view({B, L, H, hd}).transpose(1, 2);                                 // [B, H, L, hd]
    auto vh = v(x).view({B, L, H, hd}).transpose(1, 2);                                 // [B, H, L, hd]
    auto logits = torch::matmul(qh, kh.transpose(-1, -2)).to(torch::kFloat32) + pos_bias;  // [B, H, L, L] f32
    if (key_masked.defined()) logits.masked_fill_(key_masked, std::numeric_limits<float>::lowest());
    auto p = torch::softmax(logits, -1).to(vh.scalar_type());                           // [B, H, L, L]
    auto a = torch::matmul(p, vh).transpose(1, 2).reshape({B, L, H * hd});              // [B, L, dim_attn]
    return o(a);                                                                        // [B, L, dim]
}

T5FeedForwardImpl::T5FeedForwardImpl(const T5Config& c, const torch::TensorOptions& opt) {
    gate = register_module("gate", torch::nn::Sequential(T5Linear(c.dim, c.dim_ffn, opt), torch::nn::Functional(gelu_tanh)));
    fc1  = register_module("fc1", T5Linear(c.dim, c.dim_ffn, opt));
    fc2  = register_module("fc2", T5Linear(c.dim_ffn, c.dim, opt));
}

torch::Tensor T5FeedForwardImpl::forward(const torch::Tensor& x) {
    return fc2(fc1(x) * gate->forward(x));  // [B, L, dim]
}

T5SelfAttentionBlockImpl::T5SelfAttentionBlockImpl(const T5Config& c, const torch::TensorOptions& opt) {
    norm1         = register_module("norm1", T5LayerNorm(c.dim, c.eps, opt.device()));
    attn          = register_module("attn", T5Attention(c, opt));
    norm2         = register_module("norm2", T5LayerNorm(c.dim, c.eps, opt.device()));
    ffn           = register_module("ffn", T5FeedForward(c, opt));
    pos_embedding = register_module("pos_embedding", T5RelativeEmbedding(c.num_buckets, c.num_heads, opt.device()));
}

torch::Tensor T5SelfAttentionBlockImpl::forward(const torch::Tensor& x_in, const torch::Tensor& buckets,
                                                const torch::Tensor& key_masked) {
    auto e = pos_embedding(buckets);                          // [1, H, L, L] f32
    auto x = x_in + attn(norm1(x_in), e, key_masked);         // [B, L, dim] f32
    return x + ffn(norm2(x));                                 // [B, L, dim] f32
}

T5EncoderImpl::T5EncoderImpl(const T5Config& c, torch::ScalarType dtype, const torch::Device& device) : config_(c) {
    c.validate("T5Config");
    auto opt        = torch::TensorOptions().dtype(dtype).device(device);
    token_embedding = register_module("token_embedding", T5Embedding(c.vocab, c.dim, opt));
    blocks          = register_module("blocks", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_layers; ++i) blocks->push_back(T5SelfAttentionBlock(c, opt));
    norm = register_module("norm", T5LayerNorm(c.dim, c.eps, device));
}

torch::Tensor T5EncoderImpl::forward(const torch::Tensor& ids_in, const torch::Tensor& mask) {
    const auto dev = device();
    auto ids = ids_in.to(dev, torch::kInt64);                                              // [B, L]
    const auto B = ids.size(0), L = ids.size(1);
    auto x       = token_embedding(ids).to(torch::kFloat32);                               // [B, L, dim] f32
    auto buckets = T5RelativeEmbeddingImpl::buckets(L, L, config_.num_buckets, dev);       // [L, L]
    torch::Tensor key_masked;
    if (mask.defined()) key_masked = mask.to(dev).eq(0).view({B, 1, 1, L});               // [B, 1, 1, L]
    for (auto& b : *blocks) x = b->as<T5SelfAttentionBlockImpl>()->forward(x, buckets, key_masked);  // [B, L, dim]
    return norm(x);                                                                        // [B, L, dim] f32
}

std::vector<torch::Tensor> t5_trim(const torch::Tensor& hidden, const torch::Tensor& mask) {
    auto lens = mask.gt(0).sum(1).to(torch::kCPU);  // [B]
    std::vector<torch::Tensor> out;
    for (int64_t b = 0; b < hidden.size(0); ++b) out.push_back(hidden[b].narrow(0, 0, lens[b].item<int64_t>()));  // [len_b, dim]
    return out;
}

int64_t t5_num_params(const ShapeMap& shapes) {
    int64_t total = 0;
    for (const auto& kv : shapes) {
        int64_t n = 1;
        for (auto d : kv.second) n *= d;
        total += n;
    }
    return total;
}

T5CheckpointInfo inspect_t5(const std::string& path) {
    if (is_pickle_path(path)) refuse_pickle(path);
    io::SafetensorsReader reader(path);
    T5CheckpointInfo info;
    info.path        = path;
    const auto names = reader.names();
    for (const auto& n : names)
        if (is_hf_t5_key(n)) info.format = T5KeyFormat::hf;
    for (const auto& n : names) {
        std::string key = n;
        if (info.format == T5KeyFormat::hf) {
            key = t5_to_official(n);
            if (key.empty()) key = n;
        }
        const auto& shape = reader.entry(n).shape;
        auto it = info.shapes.find(key);
        if (it != info.shapes.end()) {
            if (key == "token_embedding.weight" && it->second == shape) continue;  // HF ties shared and embed_tokens
            input_error(path + ": tensor '" + n + "' maps to '" + key + "', which another tensor already has");
        }
        info.shapes[key]      = shape;
        info.stored_name[key] = n;
    }
    info.num_params = t5_num_params(info.shapes);
    info.config     = T5Config::detect_from_weights(info.shapes, path);
    return info;
}

T5Encoder load_t5(const std::string& path, const torch::Device& device, torch::ScalarType dtype) {
    const auto info = inspect_t5(path);
    torch::NoGradGuard no_grad;
    T5Encoder model(info.config, dtype, device);
    check_weights(*model, info.shapes, path, "umT5 encoder", [&](const std::string& key) {
        const auto it = info.stored_name.find(key);
        return it == info.stored_name.end() ? key : it->second;
    });

    io::SafetensorsReader reader(path);
    for (auto& p : model->named_parameters()) p.value().copy_(reader.load(info.stored_name.at(p.key())));
    model->eval();
    return model;
}

}  // namespace profdit::wan
