#include "wan/checkpoint.h"


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

void init_random(WanModel& model, uint64_t seed) {
    torch::NoGradGuard no_grad;
    auto gen = at::detail::createCPUGenerator(seed);
    std::map<std::string, torch::Tensor> params;
    for (auto& p : model->named_parameters()) params[p.key()] = p.value();
    const auto dim = double(model->config().dim);
    auto ends_with = [](const std::string& s, const std::string& e) {
        return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
    };
    for (auto& [key, p] : params) {
        auto r = at::normal(0.0, 1.0, p.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
        if (ends_with(key, "modulation")) r /= std::sqrt(dim);
        else if (ends_with(key, ".bias")) r *= 0.1;
        else if (p.dim() == 1) r = 1.0 + 0.1 * r;
        else r /= std::sqrt(double(p[0].numel()));
        p.copy_(r);
    }
}

void init_weights(WanModel& model, uint64_t seed) {
    torch::NoGradGuard no_grad;
    auto gen = at::detail::createCPUGenerator(seed);
    std::map<std::string, torch::Tensor> params;
    for (auto& p : model->named_parameters()) params[p.key()] = p.value();
    const auto dim = double(model->config().dim);
    auto starts_with = [](const std::string& s, const std::string& b) { return s.compare(0, b.size(), b) == 0; };
    auto ends_with   = [](const std::string& s, const std::string& e) {
        return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
    };
    auto uniform = [&](const torch::Tensor& p, double bound) {
        return at::rand(p.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32)) * (2 * bound) - bound;
    };
    for (auto& [key, p] : params) {
        torch::Tensor r;
        if (ends_with(key, "modulation")) {
            r = at::normal(0.0, 1.0, p.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32)) / std::sqrt(dim);
        } else if (key == "patch_embedding.bias") {
            r = uniform(p, 1.0 / std::sqrt(double(params.at("patch_embedding.weight")[0].numel())));
        } else if (ends_with(key, ".bias") || key == "head.head.weight") {
            r = torch::zeros_like(p);
        } else if (p.dim() == 1) {
            r = torch::ones_like(p);
        } else if (starts_with(key, "text_embedding.") || starts_with(key, "time_embedding.")) {
            r = at::normal(0.0, 0.02, p.sizes(), gen, torch::TensorOptions().dtype(torch::kFloat32));
        } else {
            const double fan_out = double(p.size(0)), fan_in = double(p[0].numel());
            r = uniform(p, std::sqrt(6.0 / (fan_in + fan_out)));
        }
        p.copy_(r);
    }
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
