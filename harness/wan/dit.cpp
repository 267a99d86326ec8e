#include "wan/dit.h"

#include <stdexcept>
#include <tuple>


namespace profdit::wan {

namespace {

// Linear in the weight's dtype (the compute dtype of that layer).
torch::Tensor linear(const torch::nn::Linear& l, const torch::Tensor& x) {
    return torch::linear(x.to(l->weight.scalar_type()), l->weight, l->bias);
}

torch::Tensor layer_norm(const torch::Tensor& x, double eps) {
    return torch::layer_norm(x.to(torch::kFloat32), {x.size(-1)}, {}, {}, eps);
}

torch::Tensor gelu_tanh(const torch::Tensor& x) { return torch::gelu(x, "tanh"); }

torch::nn::Linear make_linear(int64_t in, int64_t out) { return torch::nn::Linear(torch::nn::LinearOptions(in, out)); }

std::pair<torch::Tensor, torch::Tensor> concatenated(const std::vector<torch::nn::Linear>& parts) {
    std::vector<torch::Tensor> w, b;
    for (const auto& l : parts) w.push_back(l->weight), b.push_back(l->bias);
    return {torch::cat(w), torch::cat(b)};  // [sum out, in], [sum out]
}

}  // namespace

torch::Tensor sinusoidal_embedding(int64_t freq_dim, const torch::Tensor& t) {
    const int64_t half = freq_dim / 2;
    auto opt   = torch::TensorOptions().dtype(torch::kFloat64).device(t.device());
    auto omega = torch::pow(10000.0, -torch::arange(half, opt).div(double(half)));  // [half]
    auto arg   = torch::outer(t.to(torch::kFloat64), omega);                        // [B, half]
    return torch::cat({torch::cos(arg), torch::sin(arg)}, 1).to(torch::kFloat32);   // [B, freq_dim]
}

torch::Tensor sinusoidal_embedding(int64_t freq_dim, int64_t t, const torch::Device& device) {
    return sinusoidal_embedding(freq_dim, torch::full({1}, t, torch::TensorOptions().dtype(torch::kInt64).device(device)));
}

bool FusedLinear::holds(const std::vector<torch::nn::Linear>& parts) const {
    if (!weight_.defined()) return false;
    int64_t row = 0;
    for (const auto& l : parts) {
        if (!l->weight.is_alias_of(weight_) || l->weight.storage_offset() != weight_.storage_offset() + row * weight_.stride(0) ||
            !l->bias.is_alias_of(bias_) || l->bias.storage_offset() != bias_.storage_offset() + row)
            return false;
        row += l->weight.size(0);
    }
    return row == weight_.size(0);
}

void FusedLinear::fuse(const std::vector<torch::nn::Linear>& parts) {
    torch::NoGradGuard no_grad;
    std::tie(weight_, bias_) = concatenated(parts);  // [sum out, in], [sum out]
    int64_t row = 0;
    for (const auto& l : parts) {
        const auto n = l->weight.size(0);
        l->weight.set_data(weight_.narrow(0, row, n));  // [out, in], a view: the parameter keeps its name
        l->bias.set_data(bias_.narrow(0, row, n));      // [out]
        row += n;
    }
}

torch::Tensor FusedLinear::forward(const torch::Tensor& x, const std::vector<torch::nn::Linear>& parts) {
    if (torch::GradMode::is_enabled() && parts[0]->weight.requires_grad()) {  // training: gradients go to each part
        auto [w, b] = concatenated(parts);
        return torch::linear(x.to(w.scalar_type()), w, b);
    }
    if (!holds(parts)) fuse(parts);
    return torch::linear(x.to(weight_.scalar_type()), weight_, bias_);
}

WanRMSNormImpl::WanRMSNormImpl(int64_t dim, double eps_) : eps(eps_) {
    weight = register_parameter("weight", torch::ones({dim}));
}

torch::Tensor WanRMSNormImpl::forward(const torch::Tensor& x) {
    auto xf = x.to(torch::kFloat32);
    return (xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps)).to(x.scalar_type()) * weight;
}

WanSelfAttentionImpl::WanSelfAttentionImpl(const WanConfig& c, std::shared_ptr<AttentionScratch> s)
    : num_heads(c.num_heads), scratch(std::move(s)) {
    q      = register_module("q", make_linear(c.dim, c.dim));
    k      = register_module("k", make_linear(c.dim, c.dim));
    v      = register_module("v", make_linear(c.dim, c.dim));
    o      = register_module("o", make_linear(c.dim, c.dim));
    norm_q = register_module("norm_q", WanRMSNorm(c.dim, c.eps));
    norm_k = register_module("norm_k", WanRMSNorm(c.dim, c.eps));
}

torch::Tensor WanSelfAttentionImpl::forward(const torch::Tensor& x, const Rope& rope, BlockProbe* probe) {
    const auto B = x.size(0), L = x.size(1), D = x.size(2), H = num_heads, hd = D / num_heads;
    const auto dt  = o->weight.scalar_type();
    auto qkv = fused.forward(x, {q, k, v}).split(D, -1);        // 3 x [B, L, dim]
    auto qn = norm_q(qkv[0]);                                   // [B, L, dim] f32
    auto kn = norm_k(qkv[1]);                                   // [B, L, dim] f32
    auto vv = qkv[2].view({B, L, H, hd});                       // [B, L, H, hd]
    auto qr = rope_apply(qn.view({B, L, H, hd}), rope);         // [B, L, H, hd] f32
    auto kr = rope_apply(kn.view({B, L, H, hd}), rope);         // [B, L, H, hd] f32
    auto a  = attention(qr.to(dt), kr.to(dt), vv, scratch.get());  // [B, L, dim]
    if (probe) {
        probe->q_normed = qn;
        probe->k_normed = kn;
        probe->q_rope   = qr;
        probe->k_rope   = kr;
    }
    return linear(o, a);                                        // [B, L, dim]
}

CrossKV WanT2VCrossAttentionImpl::project(const torch::Tensor& context) {
    const auto B = context.size(0), Lc = context.size(1), D = context.size(2), H = num_heads, hd = D / num_heads;
    const auto dt = o->weight.scalar_type();
    auto kv = fused.forward(context, {k, v}).split(D, -1);      // 2 x [B, Lc, dim]
    auto kk = norm_k(kv[0]).view({B, Lc, H, hd});               // [B, Lc, H, hd]
    return {kk.to(dt), kv[1].view({B, Lc, H, hd})};             // [B, Lc, H, hd] x 2
}

torch::Tensor WanT2VCrossAttentionImpl::forward(const torch::Tensor& x, const CrossKV& kv) {
    const auto B = x.size(0), L = x.size(1), D = x.size(2), H = num_heads, hd = D / num_heads;
    const auto dt = o->weight.scalar_type();
    auto qq = norm_q(linear(q, x)).view({B, L, H, hd});         // [B, L, H, hd]
    auto a  = attention(qq.to(dt), kv.k, kv.v, scratch.get());  // [B, L, dim]
    return linear(o, a);                                        // [B, L, dim]
}

WanAttentionBlockImpl::WanAttentionBlockImpl(const WanConfig& c, std::shared_ptr<AttentionScratch> scratch) : eps(c.eps) {
    modulation = register_parameter("modulation", torch::randn({1, 6, c.dim}) / std::sqrt(double(c.dim)));
    self_attn  = register_module("self_attn", WanSelfAttention(c, scratch));
    norm3      = register_module("norm3", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.dim}).eps(c.eps)));
    cross_attn = register_module("cross_attn", WanT2VCrossAttention(c, scratch));
    ffn        = register_module("ffn", torch::nn::Sequential(make_linear(c.dim, c.ffn_dim),
                                                               torch::nn::Functional(gelu_tanh),
                                                               make_linear(c.ffn_dim, c.dim)));
}

torch::Tensor WanAttentionBlockImpl::modulated_input(const torch::Tensor& x, const DiTCond& c) {
    auto m = (modulation + c.e0).chunk(6, 1);                    // 6 x [B, 1, dim] f32
    return layer_norm(x, eps) * (1 + m[1]) + m[0];               // [B, L, dim] f32
}

torch::Tensor WanAttentionBlockImpl::forward(const torch::Tensor& x_in, const DiTCond& c, const CrossKV& kv, BlockProbe* probe) {
    auto m  = (modulation + c.e0).chunk(6, 1);                   // 6 x [B, 1, dim] f32
    auto x  = x_in;                                              // [B, L, dim]
    auto y  = modulated_input(x, c);                             // [B, L, dim] f32
    auto sa = self_attn->forward(y, c.rope, probe);              // [B, L, dim]
    x       = x + sa * m[2];                                     // [B, L, dim] f32
    auto xn = norm3(x.to(torch::kFloat32));                      // [B, L, dim] f32
    auto ca = cross_attn->forward(xn, kv);                       // [B, L, dim]
    x       = x + ca;                                            // [B, L, dim] f32
    y       = layer_norm(x, eps) * (1 + m[4]) + m[3];            // [B, L, dim] f32
    auto* f0 = ffn[0]->as<torch::nn::Linear>();
    auto* f2 = ffn[2]->as<torch::nn::Linear>();
    auto h  = gelu_tanh(torch::linear(y.to(f0->weight.scalar_type()), f0->weight, f0->bias));  // [B, L, ffn_dim]
    auto ff = torch::linear(h, f2->weight, f2->bias);            // [B, L, dim]
    x       = x + ff * m[5];                                     // [B, L, dim] f32
    if (probe) {
        probe->self_attn_out  = sa;
        probe->cross_attn_out = ca;
        probe->ffn_out        = ff;
    }
    return x;
}

HeadImpl::HeadImpl(const WanConfig& c) : eps(c.eps) {
    modulation = register_parameter("modulation", torch::randn({1, 2, c.dim}) / std::sqrt(double(c.dim)));
    head       = register_module("head", make_linear(c.dim, c.patch_volume() * c.out_dim));
}

torch::Tensor HeadImpl::forward(const torch::Tensor& x, const torch::Tensor& e) {
    auto m = (modulation + e.unsqueeze(1)).chunk(2, 1);                         // 2 x [B, 1, dim]: shift, scale
    return torch::linear(layer_norm(x, eps) * (1 + m[1]) + m[0], head->weight, head->bias);  // [B, L, patch*out_dim]
}

WanModelImpl::WanModelImpl(const WanConfig& c) : config_(c) {
    c.validate("WanConfig");
    auto pe_opt     = torch::nn::Conv3dOptions(c.in_dim, c.dim, {c.patch_size[0], c.patch_size[1], c.patch_size[2]})
                          .stride({c.patch_size[0], c.patch_size[1], c.patch_size[2]});
    patch_embedding = register_module("patch_embedding", torch::nn::Conv3d(pe_opt));
    text_embedding  = register_module("text_embedding", torch::nn::Sequential(make_linear(c.text_dim, c.dim),
                                                                               torch::nn::Functional(gelu_tanh),
                                                                               make_linear(c.dim, c.dim)));
    time_embedding  = register_module("time_embedding", torch::nn::Sequential(make_linear(c.freq_dim, c.dim),
                                                                               torch::nn::SiLU(),
                                                                               make_linear(c.dim, c.dim)));
    time_projection = register_module("time_projection", torch::nn::Sequential(torch::nn::SiLU(),
                                                                                 make_linear(c.dim, 6 * c.dim)));
    blocks          = register_module("blocks", torch::nn::ModuleList());
    for (int64_t i = 0; i < c.num_layers; ++i) blocks->push_back(WanAttentionBlock(c, scratch_));
    head = register_module("head", Head(c));
    fuse_projections();
}

void WanModelImpl::fuse_projections() {
    for (auto& b : *blocks) {
        auto* blk = b->as<WanAttentionBlockImpl>();
        blk->self_attn->fused.fuse({blk->self_attn->q, blk->self_attn->k, blk->self_attn->v});
        blk->cross_attn->fused.fuse({blk->cross_attn->k, blk->cross_attn->v});
    }
}

void WanModelImpl::set_compute_dtype(torch::ScalarType dtype) {
    compute_dtype_ = dtype;
    auto cast = [&](torch::nn::Module& m) {
        for (auto& p : m.parameters(false)) p.set_data(p.data().to(dtype));
    };
    torch::NoGradGuard no_grad;
    cast(*patch_embedding);
    cast(*text_embedding[0]);
    cast(*text_embedding[2]);
    for (auto& b : *blocks) {
        auto blk = b->as<WanAttentionBlockImpl>();
        for (auto* l : {&blk->self_attn->q, &blk->self_attn->k, &blk->self_attn->v, &blk->self_attn->o,
                        &blk->cross_attn->q, &blk->cross_attn->k, &blk->cross_attn->v, &blk->cross_attn->o})
            cast(**l);
        cast(*blk->ffn[0]);
        cast(*blk->ffn[2]);
    }
    fuse_projections();
}

torch::Tensor WanModelImpl::pad_context(const torch::Tensor& context) const {
    auto ctx = torch::zeros({config_.text_len, config_.text_dim}, context.options().dtype(torch::kFloat32));  // [text_len, text_dim]
    ctx.narrow(0, 0, context.size(0)).copy_(context);
    return ctx;
}

std::array<int64_t, 3> WanModelImpl::token_grid(c10::IntArrayRef latent_shape) const {
    const auto& p = config_.patch_size;
    return {latent_shape[1] / p[0], latent_shape[2] / p[1], latent_shape[3] / p[2]};
}

Conditioning WanModelImpl::condition_batch(const torch::Tensor& contexts, const std::array<int64_t, 3>& grid) {
    const auto dev = device();
    auto*      t0  = text_embedding[0]->as<torch::nn::Linear>();
    auto*      t2  = text_embedding[2]->as<torch::nn::Linear>();
    Conditioning c;
    c.grid    = grid;
    c.rope    = rope_for_grid(config_.head_dim(), grid, dev);
    auto th   = gelu_tanh(torch::linear(contexts.to(dev, t0->weight.scalar_type()), t0->weight, t0->bias));  // [B, text_len, dim]
    c.context = torch::linear(th, t2->weight, t2->bias);                                                    // [B, text_len, dim]
    for (auto& b : *blocks) c.cross_kv.push_back(b->as<WanAttentionBlockImpl>()->cross_attn->project(c.context));
    return c;
}

Conditioning WanModelImpl::condition(const torch::Tensor& context, c10::IntArrayRef latent_shape) {
    torch::NoGradGuard no_grad;
    return condition_batch(pad_context(context.to(device())).unsqueeze(0), token_grid(latent_shape));
}

Embedded WanModelImpl::embed_batch(const torch::Tensor& latents, const torch::Tensor& t, const Conditioning& c) {
    const auto& cfg = config_;
    const auto  pt = cfg.patch_size[0], ph = cfg.patch_size[1], pw = cfg.patch_size[2];
    const auto  B = latents.size(0), C = latents.size(1);
    const auto  grid = token_grid(latents.sizes().slice(1));
    const auto  F = grid[0], H = grid[1], W = grid[2];
    if (grid != c.grid)
        throw std::invalid_argument("WanModel: a conditioning built for the token grid " + std::to_string(c.grid[0]) + "x" +
                                    std::to_string(c.grid[1]) + "x" + std::to_string(c.grid[2]) + " used with latents of grid " +
                                    std::to_string(F) + "x" + std::to_string(H) + "x" + std::to_string(W));

    auto w  = patch_embedding->weight;                                                   // [dim, C, pt, ph, pw]
    auto xs = latents.to(device()).narrow(2, 0, F * pt).narrow(3, 0, H * ph).narrow(4, 0, W * pw);  // [B, C, F pt, H ph, W pw]
    auto patches = xs.reshape({B, C, F, pt, H, ph, W, pw})
                       .permute({0, 2, 4, 6, 1, 3, 5, 7})
                       .reshape({B, F * H * W, C * pt * ph * pw});                        // [B, L, C pt ph pw]
    auto x = torch::linear(patches.to(w.scalar_type()), w.reshape({cfg.dim, -1}), patch_embedding->bias);  // [B, L, dim]

    auto sin = sinusoidal_embedding(cfg.freq_dim, t.to(device()));                       // [B, freq_dim] f32
    auto e   = time_embedding->forward(sin);                                            // [B, dim] f32
    auto e0  = time_projection->forward(e).view({B, 6, cfg.dim});                       // [B, 6, dim] f32
    return {x, DiTCond{c, e, e0}};
}

Embedded WanModelImpl::embed(const torch::Tensor& latent, int64_t t, const Conditioning& c) {
    return embed_batch(latent.unsqueeze(0), torch::full({1}, t, torch::TensorOptions().dtype(torch::kInt64).device(device())), c);
}

Embedded WanModelImpl::embed(const torch::Tensor& latent, int64_t t, const torch::Tensor& context) {
    return embed(latent, t, condition(context, latent.sizes()));
}

torch::Tensor WanModelImpl::block(int64_t i, const torch::Tensor& x, const DiTCond& c, BlockProbe* probe) {
    return blocks[i]->as<WanAttentionBlockImpl>()->forward(x, c, c.cross_kv.at(size_t(i)), probe);
}

torch::Tensor WanModelImpl::run_blocks(torch::Tensor x, const DiTCond& c, int64_t first, int64_t last, const BlockVisit& visit,
                                       bool probe) {
    for (int64_t i = first; i <= last; ++i) {
        BlockProbe p;
        auto       y = block(i, x, c, probe ? &p : nullptr);  // [B, L, dim]
        if (visit && !visit(i, x, y, probe ? &p : nullptr)) return y;
        x = y;
    }
    return x;
}

torch::Tensor WanModelImpl::modulated_input(int64_t i, const torch::Tensor& x, const DiTCond& c) {
    return blocks[i]->as<WanAttentionBlockImpl>()->modulated_input(x, c);
}

torch::Tensor WanModelImpl::head_tokens(const torch::Tensor& x, const DiTCond& c) { return head->forward(x, c.e); }

torch::Tensor WanModelImpl::unpatchify_batch(const torch::Tensor& tokens, const std::array<int64_t, 3>& grid) const {
    const auto& c = config_;
    const auto  pt = c.patch_size[0], ph = c.patch_size[1], pw = c.patch_size[2], C = c.out_dim;
    const auto  B = tokens.size(0), F = grid[0], H = grid[1], W = grid[2];
    return tokens.reshape({B, F, H, W, pt, ph, pw, C})
        .permute({0, 7, 1, 4, 2, 5, 3, 6})
        .reshape({B, C, F * pt, H * ph, W * pw});  // [B, C_out, F, H, W]
}

torch::Tensor WanModelImpl::unpatchify(const torch::Tensor& tokens, const std::array<int64_t, 3>& grid) const {
    return unpatchify_batch(tokens, grid).squeeze(0);  // [C_out, F, H, W]
}

torch::Tensor WanModelImpl::forward_batch(const torch::Tensor& latents, const torch::Tensor& t, const torch::Tensor& contexts) {
    auto em = embed_batch(latents, t, condition_batch(contexts, token_grid(latents.sizes().slice(1))));
    auto x  = run_blocks(em.x, em.cond, 0, num_blocks() - 1);          // [B, L, dim]
    return unpatchify_batch(head_tokens(x, em.cond), em.cond.grid);   // [B, C_out, F, H, W]
}

torch::Tensor WanModelImpl::forward(const torch::Tensor& latent, int64_t t, const Conditioning& c) {
    auto em = embed(latent, t, c);
    auto x  = run_blocks(em.x, em.cond, 0, num_blocks() - 1);  // [1, L, dim]
    return unpatchify(head_tokens(x, em.cond), em.cond.grid);  // [C_out, F, H, W]
}

torch::Tensor WanModelImpl::forward(const torch::Tensor& latent, int64_t t, const torch::Tensor& context) {
    return forward(latent, t, condition(context, latent.sizes()));
}

}  // namespace profdit::wan
