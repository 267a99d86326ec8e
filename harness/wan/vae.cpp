#include "wan/vae.h"

#include <cmath>
#include <map>
#include <regex>
#include <set>

#include "common/error.h"
#include "io/safetensors.h"
#include "wan/weight_errors.h"

namespace profdit::wan {

namespace {

using K3 = std::array<int64_t, 3>;

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
// Convolutions compute in f32 whatever dtype the weights are kept in (to() is a no-op for f32 weights).
torch::Tensor conv3d(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
    return torch::conv3d(x, w.to(torch::kFloat32), b.to(torch::kFloat32));
}
torch::Tensor conv2d(const torch::Tensor& x, const torch::nn::Conv2dImpl& c, int64_t pad) {
    return torch::conv2d(x, c.weight.to(torch::kFloat32), c.bias.to(torch::kFloat32), 1, pad);
}

torch::Tensor frames_to_images(const torch::Tensor& x) {  // [B, C, T, H, W] -> [B*T, C, H, W]
    return x.permute({0, 2, 1, 3, 4}).reshape({x.size(0) * x.size(2), x.size(1), x.size(3), x.size(4)});
}
torch::Tensor images_to_frames(const torch::Tensor& x, int64_t b) {  // [B*T, C, H, W] -> [B, C, T, H, W]
    return x.reshape({b, x.size(0) / b, x.size(1), x.size(2), x.size(3)}).permute({0, 2, 1, 3, 4});
}

torch::Tensor upsample_nearest2x(const torch::Tensor& x) {  // [N, C, H, W] -> [N, C, 2H, 2W]
    namespace F = torch::nn::functional;
    return F::interpolate(x, F::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest));
}

}  // namespace

const std::array<float, 16>& wan21_latents_mean() {
    static const std::array<float, 16> m = {-0.7571f, -0.7089f, -0.9113f, 0.1075f,  -0.1745f, 0.9653f,  -0.1517f, 1.5508f,
                                            0.4134f,  -0.0715f, 0.5517f,  -0.3632f, -0.1922f, -0.9497f, 0.2503f,  -0.2921f};
    return m;
}

const std::array<float, 16>& wan21_latents_std() {
    static const std::array<float, 16> s = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f, 2.6052f, 2.0743f,
                                            3.2687f, 2.1526f, 2.8652f, 1.5579f, 1.6382f, 1.1253f, 2.8251f, 1.9160f};
    return s;
}

// ---- config ----

std::vector<int64_t> VAEConfig::dims() const {
    std::vector<int64_t> d = {dim * dim_mult.back()};
    for (auto it = dim_mult.rbegin(); it != dim_mult.rend(); ++it) d.push_back(dim * *it);
    return d;
}

int64_t VAEConfig::temporal_factor() const {
    int64_t f = 1;
    for (bool t : temporal_upsample) f *= t ? 2 : 1;
    return f;
}

int64_t VAEConfig::spatial_factor() const { return int64_t(1) << (dim_mult.size() - 1); }

void VAEConfig::validate(const std::string& source) const {
    if (dim <= 0 || z_dim <= 0 || num_res_blocks < 0 || dim_mult.empty())
        input_error(source + ": invalid VAE config (dim, z_dim, num_res_blocks, dim_mult)");
    if (temporal_upsample.size() + 1 != dim_mult.size())
        input_error(source + ": VAE temporal_upsample needs len(dim_mult) - 1 = " + std::to_string(dim_mult.size() - 1) +
                    " flags, got " + std::to_string(temporal_upsample.size()));
    for (auto m : dim_mult)
        if (m <= 0) input_error(source + ": VAE dim_mult entries must be positive");
}

VAEConfig VAEConfig::detect_from_weights(const ShapeMap& shapes, const std::string& source) {
    auto need = [&](const std::string& key, size_t rank) -> const std::vector<int64_t>& {
        auto it = shapes.find(key);
        if (it == shapes.end()) input_error(source + ": missing VAE decoder tensor '" + key + "'");
        if (it->second.size() != rank)
            input_error(source + ": tensor '" + key + "' has shape " + shape_str(it->second) + ", expected rank " +
                        std::to_string(rank));
        return it->second;
    };
    VAEConfig c;
    c.z_dim = need("conv2.weight", 5)[0];
    c.dim   = need("decoder.head.0.gamma", 4)[0];

    static const std::regex up(R"(decoder\.upsamples\.(\d+)\.(.*))");
    std::set<int64_t> blocks, resamples, temporal;
    for (const auto& kv : shapes) {
        std::smatch m;
        if (!std::regex_match(kv.first, m, up)) continue;
        const int64_t i = std::stoll(m[1]);
        blocks.insert(i);
        if (starts_with(m[2], "resample.")) resamples.insert(i);
        if (starts_with(m[2], "time_conv.")) temporal.insert(i);
    }
    const int64_t n = int64_t(blocks.size()), stages = int64_t(resamples.size()) + 1;
    if (n == 0 || *blocks.rbegin() != n - 1 || (n - int64_t(resamples.size())) % stages != 0)
        input_error(source + ": decoder.upsamples.* is not a Wan VAE layout (" + std::to_string(n) + " blocks, " +
                    std::to_string(resamples.size()) + " resamples)");
    const int64_t per = (n - int64_t(resamples.size())) / stages;
    if (per < 1) input_error(source + ": decoder.upsamples.* has no residual blocks");
    c.num_res_blocks = per - 1;
    std::vector<int64_t> rev_mult;
    c.temporal_upsample.clear();
    for (int64_t s = 0; s < stages; ++s) {
        const int64_t last = s * (per + 1) + per - 1;  // last residual block of stage s
        const int64_t w    = need("decoder.upsamples." + std::to_string(last) + ".residual.6.weight", 5)[0];
        if (w % c.dim != 0)
            input_error(source + ": decoder width " + std::to_string(w) + " is not a multiple of " + std::to_string(c.dim));
        rev_mult.push_back(w / c.dim);
        if (s + 1 < stages) {
            const int64_t r = last + 1;
            if (!resamples.count(r))
                input_error(source + ": expected a resample at decoder.upsamples." + std::to_string(r));
            c.temporal_upsample.push_back(temporal.count(r) != 0);
        }
    }
    c.dim_mult.assign(rev_mult.rbegin(), rev_mult.rend());
    if (c.dim_mult[0] != 1)
        input_error(source + ": the last decoder stage is " + std::to_string(c.dim_mult[0]) +
                    " x the head width; Wan VAEs have dim_mult[0] = 1");
    c.validate(source);
    return c;
}

// ---- modules ----

CausalConv3dImpl::CausalConv3dImpl(int64_t in, int64_t out, std::array<int64_t, 3> k, std::array<int64_t, 3> p)
    : padding(p) {
    const double fan_in = double(in * k[0] * k[1] * k[2]);
    weight = register_parameter("weight", torch::randn({out, in, k[0], k[1], k[2]}) / std::sqrt(fan_in));
    bias   = register_parameter("bias", torch::zeros({out}));
}

torch::Tensor CausalConv3dImpl::forward(const torch::Tensor& x_in) {
    auto    x    = x_in;                                                      // [B, C, T, H, W]
    int64_t tpad = 2 * padding[0];
    if (tpad > 0) {
        if (cache.defined()) {
            x = torch::cat({cache, x}, 2);                                     // [B, C, Tc + T, H, W]
            tpad -= cache.size(2);
        }
        const int64_t keep = std::min<int64_t>(2, x.size(2));
        cache = x.narrow(2, x.size(2) - keep, keep).clone();                   // [B, C, <=2, H, W]
    }
    x = torch::constant_pad_nd(x, {padding[2], padding[2], padding[1], padding[1], tpad, 0}, 0);  // [B, C, T + 2pt, H + 2ph, W + 2pw]
    return conv3d(x, weight, bias);                                           // [B, Cout, T, H, W]
}

RMSNormImpl::RMSNormImpl(int64_t dim, bool images) : scale(std::sqrt(double(dim))) {
    gamma = register_parameter("gamma", images ? torch::ones({dim, 1, 1}) : torch::ones({dim, 1, 1, 1}));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
    namespace F = torch::nn::functional;
    return F::normalize(x, F::NormalizeFuncOptions().dim(1)) * scale * gamma.to(torch::kFloat32);  // same shape as x
}

ResidualBlockImpl::ResidualBlockImpl(int64_t in, int64_t out) {
    norm1    = RMSNorm(in, false);
    conv1    = CausalConv3d(in, out, K3{3, 3, 3}, K3{1, 1, 1});
    norm2    = RMSNorm(out, false);
    conv2    = CausalConv3d(out, out, K3{3, 3, 3}, K3{1, 1, 1});
    residual = register_module("residual", torch::nn::Sequential(norm1, torch::nn::SiLU(), conv1, norm2, torch::nn::SiLU(),
                                                                  torch::nn::Identity(), conv2));
    if (in != out) shortcut = register_module("shortcut", CausalConv3d(in, out, K3{1, 1, 1}, K3{0, 0, 0}));
}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x) {
    auto h = shortcut ? shortcut(x) : x;                                      // [B, out, T, H, W]
    auto y = conv1(torch::silu(norm1(x)));                                    // [B, out, T, H, W]
    y      = conv2(torch::silu(norm2(y)));                                    // [B, out, T, H, W]
    return y + h;                                                             // [B, out, T, H, W]
}

AttentionBlockImpl::AttentionBlockImpl(int64_t dim) {
    norm   = register_module("norm", RMSNorm(dim, true));
    to_qkv = register_module("to_qkv", torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, 3 * dim, 1)));
    proj   = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim, 1)));
}

torch::Tensor AttentionBlockImpl::forward(const torch::Tensor& x) {
    const auto B = x.size(0), C = x.size(1), H = x.size(3), W = x.size(4);
    auto y   = norm(frames_to_images(x));                                     // [BT, C, H, W]
    const auto N = y.size(0);
    auto qkv = conv2d(y, *to_qkv, 0).reshape({N, 1, 3 * C, H * W}).permute({0, 1, 3, 2}).contiguous().chunk(3, -1);  // 3 x [BT, 1, HW, C]
    auto s   = torch::matmul(qkv[0], qkv[1].transpose(-2, -1)) / std::sqrt(double(C));  // [BT, 1, HW, HW]
    auto a   = torch::matmul(s.softmax(-1), qkv[2]);                          // [BT, 1, HW, C]
    a        = a.squeeze(1).permute({0, 2, 1}).reshape({N, C, H, W});         // [BT, C, H, W]
    return images_to_frames(conv2d(a, *proj, 0), B) + x;                       // [B, C, T, H, W]
}

ResampleImpl::ResampleImpl(int64_t dim, bool temporal) {
    resample = register_module("resample", torch::nn::Sequential(torch::nn::Functional(upsample_nearest2x),
                                                                  torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, dim / 2, 3).padding(1))));
    if (temporal) time_conv = register_module("time_conv", CausalConv3d(dim, 2 * dim, K3{3, 1, 1}, K3{1, 0, 0}));
}

torch::Tensor ResampleImpl::forward(const torch::Tensor& x_in) {
    auto x = x_in;                                                            // [B, C, T, H, W]
    const auto B = x.size(0), C = x.size(1), T = x.size(2), H = x.size(3), W = x.size(4);
    if (time_conv) {
        if (first_chunk) {
            first_chunk = false;
        } else {
            auto y = time_conv(x).reshape({B, 2, C, T, H, W});                // [B, 2, C, T, H, W]
            x = torch::stack({y.select(1, 0), y.select(1, 1)}, 3).reshape({B, C, 2 * T, H, W});  // [B, C, 2T, H, W]
        }
    }
    auto* conv = resample[1]->as<torch::nn::Conv2dImpl>();
    auto  y    = upsample_nearest2x(frames_to_images(x));                     // [BT', C, 2H, 2W]
    y = conv2d(y, *conv, 1);                                                  // [BT', C/2, 2H, 2W]
    return images_to_frames(y, B);                                            // [B, C/2, T', 2H, 2W]
}

Decoder3dImpl::Decoder3dImpl(const VAEConfig& c) {
    c.validate("VAEConfig");
    const auto dims = c.dims();
    conv1  = register_module("conv1", CausalConv3d(c.z_dim, dims[0], K3{3, 3, 3}, K3{1, 1, 1}));
    middle = register_module("middle", torch::nn::Sequential(ResidualBlock(dims[0], dims[0]), AttentionBlock(dims[0]),
                                                              ResidualBlock(dims[0], dims[0])));
    upsamples = register_module("upsamples", torch::nn::Sequential());
    for (size_t i = 0; i + 1 < dims.size(); ++i) {
        int64_t in = i == 0 ? dims[i] : dims[i] / 2, out = dims[i + 1];
        for (int64_t j = 0; j <= c.num_res_blocks; ++j, in = out) upsamples->push_back(ResidualBlock(in, out));
        if (i + 2 < dims.size()) upsamples->push_back(Resample(out, c.temporal_upsample[i]));
    }
    head = register_module("head", torch::nn::Sequential(RMSNorm(dims.back(), false), torch::nn::SiLU(),
                                                          CausalConv3d(dims.back(), 3, K3{3, 3, 3}, K3{1, 1, 1})));
}

torch::Tensor Decoder3dImpl::forward(const torch::Tensor& z) {
    auto x = conv1(z);                                                        // [B, dims0, T, h, w]
    x      = middle->forward(x);                                              // [B, dims0, T, h, w]
    x      = upsamples->forward(x);                                           // [B, dimsN, T', 8h, 8w]
    return head->forward(x);                                                  // [B, 3, T', 8h, 8w]
}

WanVAEDecoderImpl::WanVAEDecoderImpl(const VAEConfig& c) : config_(c) {
    c.validate("VAEConfig");
    conv2   = register_module("conv2", CausalConv3d(c.z_dim, c.z_dim, K3{1, 1, 1}, K3{0, 0, 0}));
    decoder = register_module("decoder", Decoder3d(c));
    auto m  = torch::zeros({c.z_dim}), s = torch::ones({c.z_dim});
    if (c.z_dim == 16) {
        m = torch::tensor(std::vector<float>(wan21_latents_mean().begin(), wan21_latents_mean().end()));
        s = torch::tensor(std::vector<float>(wan21_latents_std().begin(), wan21_latents_std().end()));
    }
    mean    = register_buffer("latents_mean", m);
    inv_std = register_buffer("latents_inv_std", 1.0 / s);  // the reference's scale[1] = 1 / std, in f32
}

void WanVAEDecoderImpl::clear_cache() {
    for (auto& m : modules()) {
        if (auto* c = m->as<CausalConv3dImpl>()) c->clear_cache();
        if (auto* r = m->as<ResampleImpl>()) r->first_chunk = true;
    }
}

torch::Tensor WanVAEDecoderImpl::decode_raw(const torch::Tensor& z_in) {
    TORCH_CHECK(z_in.dim() == 4 && z_in.size(0) == config_.z_dim, "VAE decode expects [", config_.z_dim,
                ", F, h, w], got ", z_in.sizes());
    torch::NoGradGuard no_grad;
    const auto F = z_in.size(1), h = z_in.size(2), w = z_in.size(3), s = config_.spatial_factor();
    auto z = z_in.to(device(), torch::kFloat32).unsqueeze(0);                 // [1, z_dim, F, h, w]
    z      = z / inv_std.view({1, -1, 1, 1, 1}) + mean.view({1, -1, 1, 1, 1});  // [1, z_dim, F, h, w] un-normalised
    auto x = conv2(z);                                                        // [1, z_dim, F, h, w]
    auto out = torch::empty({3, config_.out_frames(F), h * s, w * s}, z.options());  // [3, F', H, W]
    clear_cache();
    int64_t t = 0;
    for (int64_t i = 0; i < F; ++i) {
        auto y = decoder(x.narrow(2, i, 1))[0];                               // [3, 1 or temporal_factor, H, W]
        out.narrow(1, t, y.size(1)).copy_(y);
        t += y.size(1);
    }
    clear_cache();
    return out;
}

torch::Tensor VAEDecoder::decode(const torch::Tensor& latent) {
    return vae_->decode(latent).permute({1, 0, 2, 3}).contiguous();          // [F', 3, H, W]
}

// ---- checkpoint names ----

namespace {

using Rename = std::pair<std::string, std::string>;  // official prefix, diffusers prefix

const std::vector<Rename>& block_renames() {  // inside a residual block
    static const std::vector<Rename> r = {{"residual.0.", "norm1."},
                                          {"residual.2.", "conv1."},
                                          {"residual.3.", "norm2."},
                                          {"residual.6.", "conv2."},
                                          {"shortcut.", "conv_shortcut."}};
    return r;
}

std::string rename_block(const std::string& rest, bool to_diffusers) {
    for (const auto& [o, d] : block_renames()) {
        const auto& from = to_diffusers ? o : d;
        const auto& to   = to_diffusers ? d : o;
        if (starts_with(rest, from)) return to + rest.substr(from.size());
    }
    return rest;
}

// Wan2.1 layout: upsamples index -> (up block, resnet j or -1 for the upsampler), 4 per stage.
constexpr int64_t kPerStage = 4;

}  // namespace

std::string vae_official_to_diffusers(const std::string& key) {
    static const std::regex up(R"(decoder\.upsamples\.(\d+)\.(.*))"), mid(R"(decoder\.middle\.(\d+)\.(.*))");
    std::smatch m;
    if (starts_with(key, "conv2.")) return "post_quant_conv." + key.substr(6);
    if (starts_with(key, "conv1.")) return "quant_conv." + key.substr(6);
    if (starts_with(key, "decoder.conv1.")) return "decoder.conv_in." + key.substr(14);
    if (starts_with(key, "decoder.head.0.")) return "decoder.norm_out." + key.substr(15);
    if (starts_with(key, "decoder.head.2.")) return "decoder.conv_out." + key.substr(15);
    if (std::regex_match(key, m, mid)) {
        const std::string i = m[1], rest = m[2];
        if (i == "1") return "decoder.mid_block.attentions.0." + rest;
        return "decoder.mid_block.resnets." + std::string(i == "0" ? "0" : "1") + "." + rename_block(rest, true);
    }
    if (std::regex_match(key, m, up)) {
        const int64_t i = std::stoll(m[1]), stage = i / kPerStage, j = i % kPerStage;
        const std::string b = "decoder.up_blocks." + std::to_string(stage) + ".";
        if (j == kPerStage - 1) return b + "upsamplers.0." + std::string(m[2]);
        return b + "resnets." + std::to_string(j) + "." + rename_block(m[2], true);
    }
    return key;
}

std::string vae_diffusers_to_official(const std::string& key) {
    static const std::regex up(R"(decoder\.up_blocks\.(\d+)\.(resnets\.(\d+)|upsamplers\.0)\.(.*))"),
        mid(R"(decoder\.mid_block\.(resnets\.(\d+)|attentions\.0)\.(.*))");
    std::smatch m;
    if (starts_with(key, "encoder.") || starts_with(key, "quant_conv.") || starts_with(key, "conv1.")) return "";
    if (starts_with(key, "post_quant_conv.")) return "conv2." + key.substr(16);
    if (starts_with(key, "decoder.conv_in.")) return "decoder.conv1." + key.substr(16);
    if (starts_with(key, "decoder.norm_out.")) return "decoder.head.0." + key.substr(17);
    if (starts_with(key, "decoder.conv_out.")) return "decoder.head.2." + key.substr(17);
    if (std::regex_match(key, m, mid)) {
        if (!m[2].matched) return "decoder.middle.1." + std::string(m[3]);
        return "decoder.middle." + std::string(m[2] == "0" ? "0" : "2") + "." + rename_block(m[3], false);
    }
    if (std::regex_match(key, m, up)) {
        const int64_t stage = std::stoll(m[1]);
        if (!m[3].matched) return "decoder.upsamples." + std::to_string(stage * kPerStage + kPerStage - 1) + "." + std::string(m[4]);
        return "decoder.upsamples." + std::to_string(stage * kPerStage + std::stoll(m[3])) + "." + rename_block(m[4], false);
    }
    return key;
}

WanVAEDecoder load_vae_decoder(const std::string& path, const torch::Device& device, torch::ScalarType dtype) {
    if (is_pickle_path(path))
        refuse_pickle(path, "this assumes a flat state dict, as the official Wan2.1_VAE.pth is; for a nested one use torch.load(...)['state_dict']");
    io::SafetensorsReader reader(path);
    const auto            names = reader.names();
    bool diffusers = false;
    for (const auto& n : names)
        if (starts_with(n, "post_quant_conv.") || starts_with(n, "decoder.conv_in.") || starts_with(n, "decoder.up_blocks."))
            diffusers = true;
    ShapeMap                           shapes;
    std::map<std::string, std::string> file_name;  // official -> name in the file
    for (const auto& n : names) {
        const std::string key = diffusers ? vae_diffusers_to_official(n) : n;
        if (key.empty() || starts_with(key, "encoder.") || starts_with(key, "conv1.")) continue;
        if (file_name.count(key)) input_error(path + ": tensors '" + file_name[key] + "' and '" + n + "' both map to '" + key + "'");
        file_name[key] = n;
        shapes[key]    = reader.entry(n).shape;
    }
    const auto cfg = VAEConfig::detect_from_weights(shapes, path);

    torch::NoGradGuard no_grad;
    WanVAEDecoder model(cfg);
    check_weights(*model, shapes, path, "VAE decoder", [&](const std::string& key) {
        const auto it = file_name.find(key);
        return it != file_name.end() ? it->second : diffusers ? vae_official_to_diffusers(key) : key;
    });

    for (auto& p : model->named_parameters()) {
        auto t = reader.load(file_name[p.key()]);
        p.value().copy_(t.to(torch::kFloat32));
        if (dtype != torch::kFloat32) p.value().set_data(p.value().data().to(dtype));
    }
    model->to(device);
    model->eval();
    return model;
}

}  // namespace profdit::wan
