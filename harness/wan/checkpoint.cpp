#include "wan/checkpoint.h"

#include <functional>

#include <ATen/CPUGeneratorImpl.h>

#include "common/error.h"
#include "wan/weight_errors.h"

namespace profdit::wan {

DiTCheckpointInfo inspect_dit(const io::SafetensorsReader& reader) {
    DiTCheckpointInfo info;
    info.path         = reader.path();
    info.metadata     = reader.metadata();
    const auto names  = reader.names();
    for (const auto& n : names)
        if (is_diffusers_key(n)) info.format = KeyFormat::diffusers;
    for (const auto& n : names) {
        const auto& e   = reader.entry(n);
        const auto  key = info.format == KeyFormat::diffusers ? diffusers_to_official(n) : n;
        if (info.shapes.count(key))
            input_error(reader.path() + ": tensor '" + n + "' maps to '" + key + "', which another tensor already has");
        info.shapes[key] = e.shape;
        int64_t numel = 1;
        for (auto d : e.shape) numel *= d;
        info.dtype_params[io::dtype_name(e.dtype)] += numel;
        info.num_params += numel;
    }
    return info;
}

WanModel load_dit(const std::string& weights_path, const std::optional<WanConfig>& config, const torch::Device& device,
                  torch::ScalarType compute_dtype) {
    io::SafetensorsReader reader(weights_path);
    const auto            info = inspect_dit(reader);
    WanConfig             cfg;
    if (config) {
        cfg = *config;
        cfg.check_against_weights(info.shapes, weights_path);
    } else {
        cfg = WanConfig::from_weights(info.shapes, info.metadata, weights_path);
        cfg.validate(weights_path);
    }

    torch::NoGradGuard no_grad;
    WanModel model(cfg);
    check_weights(*model, info.shapes, weights_path, "DiT", [&](const std::string& key) {
        return info.format == KeyFormat::diffusers ? official_to_diffusers(key) : key;
    });

    for (auto& p : model->named_parameters()) {
        const std::string name = info.format == KeyFormat::diffusers ? official_to_diffusers(p.key()) : p.key();
        p.value().copy_(reader.load(name));
    }
    model->to(device);
    if (compute_dtype != torch::kFloat32) model->set_compute_dtype(compute_dtype);
    return model;
}

namespace {

bool starts_with(const std::string& s, const std::string& b) { return s.compare(0, b.size(), b) == 0; }
bool ends_with(const std::string& s, const std::string& e) { return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0; }

// Every parameter, in sorted key order, set to draw(key, parameter, generator): the result depends only on the
// config, the rule and the seed.
void fill_parameters(WanModel& model, uint64_t seed,
                     const std::function<torch::Tensor(const std::string&, const torch::Tensor&, at::Generator&)>& draw) {
    torch::NoGradGuard no_grad;
    auto gen = at::detail::createCPUGenerator(seed);
    std::map<std::string, torch::Tensor> params;
    for (auto& p : model->named_parameters()) params[p.key()] = p.value();
    for (auto& [key, p] : params) p.copy_(draw(key, p, gen));
}

torch::Tensor normal(const torch::Tensor& p, double std, at::Generator& gen) {
    return at::normal(0.0, std, p.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
}

torch::Tensor uniform(const torch::Tensor& p, double bound, at::Generator& gen) {
    return at::rand(p.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32)) * (2 * bound) - bound;
}

}  // namespace

void init_random(WanModel& model, uint64_t seed) {
    const auto dim = double(model->config().dim);
    fill_parameters(model, seed, [&](const std::string& key, const torch::Tensor& p, at::Generator& gen) {
        auto r = normal(p, 1.0, gen);
        if (ends_with(key, "modulation")) return r / std::sqrt(dim);
        if (ends_with(key, ".bias")) return r * 0.1;
        if (p.dim() == 1) return 1.0 + 0.1 * r;
        return r / std::sqrt(double(p[0].numel()));
    });
}

void init_weights(WanModel& model, uint64_t seed) {
    const auto& cfg          = model->config();
    const auto  patch_fan_in = double(cfg.in_dim * cfg.patch_volume());
    fill_parameters(model, seed, [&](const std::string& key, const torch::Tensor& p, at::Generator& gen) {
        if (ends_with(key, "modulation")) return normal(p, 1.0, gen) / std::sqrt(double(cfg.dim));
        if (key == "patch_embedding.bias") return uniform(p, 1.0 / std::sqrt(patch_fan_in), gen);
        if (ends_with(key, ".bias") || key == "head.head.weight") return torch::zeros_like(p);
        if (p.dim() == 1) return torch::ones_like(p);
        if (starts_with(key, "text_embedding.") || starts_with(key, "time_embedding.")) return normal(p, 0.02, gen);
        const double fan_out = double(p.size(0)), fan_in = double(p[0].numel());
        return uniform(p, std::sqrt(6.0 / (fan_in + fan_out)), gen);
    });
}

void save_dit(WanModel& model, const std::string& path, KeyFormat format) {
    std::map<std::string, torch::Tensor> out;
    for (auto& p : model->named_parameters()) {
        const std::string name = format == KeyFormat::diffusers ? official_to_diffusers(p.key()) : p.key();
        out[name]              = p.value().detach().to(torch::kFloat32);
    }
    io::write_safetensors(path, out, model->config().metadata());
}

}  // namespace profdit::wan
