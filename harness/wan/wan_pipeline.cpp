#include "wan/wan_pipeline.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/format.h"
#include "io/safetensors.h"
#include "wan/checkpoint.h"
#include "wan/t5.h"
#include "wan/vae.h"
#include "wan/tokenizer.h"

namespace profdit::wan {

namespace fs = std::filesystem;

namespace {

bool is_file(const fs::path& p) { return fs::is_regular_file(p); }

// The first of `names` (relative to `dir`) that exists, else "".
std::string first_existing(const fs::path& dir, const std::vector<std::string>& names) {
    for (const auto& n : names)
        if (is_file(dir / n)) return (dir / n).string();
    return "";
}

// Weights of a diffusers component folder: <stem>.safetensors.index.json, then <stem>.safetensors.
std::vector<std::string> safetensors_names(const std::string& stem) {
    return {stem + ".safetensors.index.json", stem + ".safetensors"};
}

[[noreturn]] void missing(const std::string& dir, CheckpointLayout layout, const std::string& component,
                          const std::vector<std::string>& looked_for) {
    input_error(dir + ": no " + component + " found in this " + layout_name(layout) + "-layout Wan2.1 checkpoint folder (looked for " +
                join(looked_for, ", ") + ")");
}

CheckpointFiles find_diffusers(const fs::path& d) {
    CheckpointFiles f;
    f.dir    = d.string();
    f.layout = CheckpointLayout::diffusers;
    auto need = [&](const std::string& component, const std::string& sub, const std::vector<std::string>& names) {
        const auto p = first_existing(d / sub, names);
        if (p.empty()) {
            std::vector<std::string> looked;
            for (const auto& n : names) looked.push_back(sub + "/" + n);
            missing(f.dir, f.layout, component, looked);
        }
        return p;
    };
    f.dit          = need("DiT", "transformer", safetensors_names("diffusion_pytorch_model"));
    f.dit_config   = first_existing(d / "transformer", {"config.json"});
    f.text_encoder = need("text encoder", "text_encoder", safetensors_names("model"));
    f.vae          = need("VAE", "vae", safetensors_names("diffusion_pytorch_model"));
    if (!is_file(d / "tokenizer" / "spiece.model")) missing(f.dir, f.layout, "tokenizer", {"tokenizer/spiece.model"});
    f.tokenizer = (d / "tokenizer").string();
    return f;
}

CheckpointFiles find_official(const fs::path& d) {
    CheckpointFiles f;
    f.dir    = d.string();
    f.layout = CheckpointLayout::official;
    f.dit    = first_existing(d, safetensors_names("diffusion_pytorch_model"));
    if (f.dit.empty()) missing(f.dir, f.layout, "DiT", safetensors_names("diffusion_pytorch_model"));
    f.dit_config = first_existing(d, {"config.json"});
    // A safetensors conversion next to the .pth wins; the .pth alone reaches the loader, which explains the conversion.
    const std::vector<std::string> t5 = {"models_t5_umt5-xxl-enc-bf16.safetensors.index.json", "models_t5_umt5-xxl-enc-bf16.safetensors",
                                         "models_t5_umt5-xxl-enc-bf16.pth"};
    f.text_encoder = first_existing(d, t5);
    if (f.text_encoder.empty()) missing(f.dir, f.layout, "text encoder", t5);
    const std::vector<std::string> vae = {"Wan2.1_VAE.safetensors", "Wan2.1_VAE.pth"};
    f.vae = first_existing(d, vae);
    if (f.vae.empty()) missing(f.dir, f.layout, "VAE", vae);
    if (!is_file(d / "google" / "umt5-xxl" / "spiece.model")) missing(f.dir, f.layout, "tokenizer", {"google/umt5-xxl/spiece.model"});
    f.tokenizer = (d / "google" / "umt5-xxl").string();
    return f;
}

bool ends_with(const std::string& s, const std::string& e) { return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0; }

uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

std::string dtype_counts(const io::SafetensorsReader& r) {
    std::map<std::string, int64_t> by;
    for (const auto& n : r.names()) {
        int64_t numel = 1;
        for (auto d : r.entry(n).shape) numel *= d;
        by[io::dtype_name(r.entry(n).dtype)] += numel;
    }
    std::string out;
    for (const auto& [k, v] : by) out += (out.empty() ? "" : " ") + k + ":" + std::to_string(v);
    return out;
}

std::string files_label(const std::string& path) {
    const auto shards = weight_shards(path);
    if (shards.size() <= 1) return path;
    return path + " (" + std::to_string(shards.size()) + " shards)";
}

}  // namespace

const char* layout_name(CheckpointLayout l) { return l == CheckpointLayout::diffusers ? "diffusers" : "official"; }

std::vector<std::string> weight_shards(const std::string& path) {
    if (!ends_with(path, ".index.json")) return {path};
    std::ifstream in(path);
    if (!in) input_error(path + ": cannot be read");
    nlohmann::json j;
    try {
        in >> j;
    } catch (const nlohmann::json::exception& e) {
        input_error(path + ": malformed index JSON (" + e.what() + ")");
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) input_error(path + ": index has no weight_map object");
    std::set<std::string> files;
    for (const auto& [k, v] : j["weight_map"].items())
        if (v.is_string()) files.insert((fs::path(path).parent_path() / v.get<std::string>()).string());
    return {files.begin(), files.end()};
}

std::vector<std::string> CheckpointFiles::weight_files() const {
    std::vector<std::string> out;
    for (const auto* p : {&dit, &text_encoder, &vae})
        for (const auto& f : weight_shards(*p)) out.push_back(f);
    if (!tokenizer.empty()) out.push_back((fs::path(tokenizer) / "spiece.model").string());
    return out;
}

CheckpointFiles find_checkpoint(const std::string& dir) {
    const fs::path d(dir);
    if (!fs::is_directory(d)) input_error(dir + ": not a folder (a Wan2.1 checkpoint is a folder in the official or diffusers layout)");
    if (is_file(d / "model_index.json") || fs::is_directory(d / "transformer")) return find_diffusers(d);
    if (!first_existing(d, safetensors_names("diffusion_pytorch_model")).empty()) return find_official(d);
    input_error(dir + ": not a Wan2.1 checkpoint folder (looked for the diffusers layout: model_index.json or transformer/, and for "
                      "the official one: diffusion_pytorch_model.safetensors[.index.json])");
}

const std::vector<std::string>& config_names() {
    static const std::vector<std::string> n = {"wan2.1-t2v-1.3b", "wan2.1-t2v-14b"};
    return n;
}

WanConfig named_config(const std::string& name, const std::string& source) {
    WanConfig c;  // defaults: T2V-1.3B
    if (name == "wan2.1-t2v-1.3b") return c;
    if (name == "wan2.1-t2v-14b") {
        c.dim        = 5120;
        c.ffn_dim    = 13824;
        c.num_heads  = 40;
        c.num_layers = 40;
        return c;
    }
    if (!is_file(name))
        input_error(source + ": model: config '" + name + "' is neither a known configuration (" + join(config_names(), ", ") +
                    ") nor a JSON file");
    return WanConfig::from_json_file(name);
}

const std::string& wan21_negative_prompt() {
    // Wan2.1's default negative prompt: sample_neg_prompt in wan/configs/shared_config.py of github.com/Wan-Video/Wan2.1
    // at 9737cba9c1c3c4d04b33fcad41c111989865d315.
    static const std::string p =
        "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，JPEG压缩残留，丑陋的，残缺的，"
        "多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走";
    return p;
}

std::vector<int64_t> wan21_latent_shape(int64_t frames, int64_t height, int64_t width, const std::string& where) {
    if (frames < 1 || (frames - 1) % 4 != 0)
        input_error(where + ": frames " + std::to_string(frames) + " is not 4n+1 (the VAE's temporal stride is 4: 1, 5, ..., 17, ..., 81)");
    for (auto [key, v] : {std::pair<const char*, int64_t>{"height", height}, {"width", width}})
        if (v < 16 || v % 16 != 0)
            input_error(where + ": " + key + " " + std::to_string(v) +
                        " is not a positive multiple of 16 (VAE stride 8 times the DiT's patch 2), e.g. 480 or 832");
    return {16, 1 + (frames - 1) / 4, height / 8, width / 8};
}

// ------------------------------------------------------------------------------------------------
// Text encoders

struct UMT5TextEncoder::Impl {
    Impl(Tokenizer t, T5Encoder e, int64_t len) : tokenizer(std::move(t)), encoder(std::move(e)), text_len(len) {}
    Tokenizer tokenizer;
    T5Encoder encoder;
    int64_t   text_len;
};

UMT5TextEncoder::UMT5TextEncoder(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
UMT5TextEncoder::~UMT5TextEncoder() = default;

torch::Tensor UMT5TextEncoder::encode(const std::string& prompt) {
    torch::NoGradGuard no_grad;
    const auto enc  = impl_->tokenizer.encode(prompt, impl_->text_len);
    auto       ids  = enc.ids.dim() == 1 ? enc.ids.unsqueeze(0) : enc.ids;    // [1, text_len]
    auto       mask = enc.mask.dim() == 1 ? enc.mask.unsqueeze(0) : enc.mask;  // [1, text_len]
    const auto dev  = impl_->encoder->device();
    auto out = impl_->encoder->forward(ids.to(dev, torch::kInt64), mask.to(dev));  // [1, text_len, dim]
    return t5_trim(out, mask.to(dev))[0].to(torch::kFloat32);                   // [L, dim]
}

torch::Tensor RandomTextEncoder::encode(const std::string& prompt) {
    int64_t words = 0;
    std::istringstream in(prompt);
    for (std::string w; in >> w;) ++words;
    const int64_t L   = std::min(words + 1, text_len_);
    auto          gen = at::detail::createCPUGenerator(fnv1a(prompt, fnv1a(std::to_string(seed_))));
    return at::normal(0.0, 1.0, {L, text_dim_}, gen, torch::TensorOptions().dtype(torch::kFloat32));  // [L, text_dim]
}

// ------------------------------------------------------------------------------------------------
// Loading

WanParts load_wan_checkpoint(const CheckpointFiles& f, const torch::Device& device, torch::ScalarType dtype) {
    WanParts p;
    std::optional<WanConfig> cfg;
    if (!f.dit_config.empty()) cfg = WanConfig::from_json_file(f.dit_config);
    p.dit = load_dit(f.dit, cfg, device, dtype);
    p.dit->eval();
    auto tokenizer = Tokenizer::load(f.tokenizer);
    auto t5        = load_t5(f.text_encoder, device, dtype);
    t5->eval();
    if (t5->config().dim != p.dit->config().text_dim)
        input_error(f.text_encoder + ": the text encoder's dim " + std::to_string(t5->config().dim) + " is not the DiT's text_dim " +
                    std::to_string(p.dit->config().text_dim) + " (" + f.dit + ")");
    p.text = std::make_shared<UMT5TextEncoder>(std::make_shared<UMT5TextEncoder::Impl>(std::move(tokenizer), t5, p.dit->config().text_len));
    auto vae = load_vae_decoder(f.vae, device, torch::kFloat32);
    vae->eval();
    if (vae->config().z_dim != p.dit->config().out_dim)
        input_error(f.vae + ": the VAE's z_dim " + std::to_string(vae->config().z_dim) + " is not the DiT's out_dim " +
                    std::to_string(p.dit->config().out_dim));
    p.decoder = std::make_shared<VAEDecoder>(vae);
    return p;
}

void init_random_vae(torch::nn::Module& vae, uint64_t seed) {
    torch::NoGradGuard no_grad;
    auto gen = at::detail::createCPUGenerator(seed);
    std::map<std::string, torch::Tensor> params;
    for (auto& p : vae.named_parameters()) params[p.key()] = p.value();
    for (auto& [key, p] : params) {
        auto r = at::normal(0.0, 1.0, p.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
        if (ends_with(key, ".bias")) r *= 0.1;
        else if (ends_with(key, "gamma") || p.dim() <= 1) r = 1.0 + 0.1 * r;
        else r /= std::sqrt(double(p[0].numel()));
        p.copy_(r);
    }
}

WanParts init_random_wan(const WanConfig& config, uint64_t seed, const torch::Device& device, torch::ScalarType dtype) {
    WanParts p;
    p.dit = WanModel(config);
    init_random(p.dit, seed);
    p.dit->to(device);
    if (dtype != torch::kFloat32) p.dit->set_compute_dtype(dtype);
    p.dit->eval();
    p.text = std::make_shared<RandomTextEncoder>(config.text_dim, config.text_len, seed + 1);
    VAEConfig vc;
    vc.z_dim = config.out_dim;
    WanVAEDecoder vae(vc);
    init_random_vae(*vae, seed + 2);
    vae->to(device);
    vae->eval();
    p.decoder = std::make_shared<VAEDecoder>(vae);
    return p;
}

// ------------------------------------------------------------------------------------------------
// profdit info

ComponentInfo inspect_dit_component(const std::string& weights, const std::string& config_json) {
    io::SafetensorsReader r(weights);
    const auto            info = inspect_dit(r);
    WanConfig             cfg;
    std::string           how;
    if (!config_json.empty()) {
        cfg = WanConfig::from_json_file(config_json);
        cfg.check_against_weights(info.shapes, weights);
        how = "config.json";
    } else {
        try {
            cfg = WanConfig::from_weights(info.shapes, info.metadata, weights, &how);
            cfg.validate(weights);
        } catch (const InputError&) {  // info shows what the header tells; loading it needs a config
            cfg = WanConfig::detect_from_weights(info.shapes, weights);
            how = "no config in the file: loading it needs --config";
        }
    }
    const bool heads_known = how.rfind("no config", 0) != 0;
    return {"dit", files_label(weights),
            cfg.variant() + " (dim " + std::to_string(cfg.dim) + ", ffn " + std::to_string(cfg.ffn_dim) + ", " +
                (heads_known ? std::to_string(cfg.num_heads) : std::string("?")) + " heads; " + how + ")",
            key_format_name(info.format), std::to_string(cfg.num_layers), info.num_params, dtype_counts(r)};
}

std::vector<ComponentInfo> inspect_checkpoint(const CheckpointFiles& f) {
    std::vector<ComponentInfo> rows = {inspect_dit_component(f.dit, f.dit_config)};
    auto pth_row = [](const std::string& component, const std::string& path) {
        return ComponentInfo{component, path, "not inspected: a torch pickle", "pth (convert to safetensors to load)", "", 0, ""};
    };
    if (ends_with(f.text_encoder, ".pth")) {
        rows.push_back(pth_row("text_encoder", f.text_encoder));
    } else {
        const auto info = inspect_t5(f.text_encoder);
        const auto& c   = info.config;
        rows.push_back({"text_encoder", files_label(f.text_encoder),
                        std::string(c.vocab == 256384 && c.dim == 4096 && c.num_layers == 24 ? "umT5-XXL encoder" : "umT5 encoder (custom)") +
                            " (dim " + std::to_string(c.dim) + ", " +
                            std::to_string(c.num_heads) + " heads, vocab " + std::to_string(c.vocab) + ")",
                        info.format == T5KeyFormat::hf ? "hf" : "official", std::to_string(c.num_layers), info.num_params,
                        dtype_counts(io::SafetensorsReader(f.text_encoder))});
    }
    if (ends_with(f.vae, ".pth")) {
        rows.push_back(pth_row("vae", f.vae));
    } else {
        io::SafetensorsReader r(f.vae);
        ShapeMap              shapes;
        bool                  diffusers = false;
        int64_t               params    = 0;
        for (const auto& n : r.names()) {
            const auto off = vae_diffusers_to_official(n);
            if (!off.empty() && off != n) diffusers = true;
            int64_t numel = 1;
            for (auto d : r.entry(n).shape) numel *= d;
            params += numel;
            if (!off.empty()) shapes[off] = r.entry(n).shape;
        }
        const auto c = VAEConfig::detect_from_weights(shapes, f.vae);
        std::string mult;
        for (auto m : c.dim_mult) mult += (mult.empty() ? "" : ",") + std::to_string(m);
        rows.push_back({"vae", files_label(f.vae),
                        std::string(c.dim == 96 && c.z_dim == 16 ? "Wan2.1 VAE" : "Wan VAE (custom)") + " (dim " + std::to_string(c.dim) +
                            ", z_dim " + std::to_string(c.z_dim) + ", mult " + mult + "; whole file, decoder used)",
                        diffusers ? "diffusers" : "official", "", params, dtype_counts(r)});
    }
    const auto spm = (fs::path(f.tokenizer) / "spiece.model").string();
    rows.push_back({"tokenizer", spm, "SentencePiece model (" + std::to_string(fs::file_size(spm)) + " bytes)", "sentencepiece", "", 0, ""});
    return rows;
}

}  // namespace profdit::wan
