#include <iostream>
#include <memory>

#include <ATen/CPUGeneratorImpl.h>

#include "cli/commands.h"
#include "common/error.h"
#include "io/safetensors.h"
#include "wan/checkpoint.h"

namespace profdit::cli {

namespace {

struct SynthOptions {
    std::string          config, weights_out, inputs_out;
    std::vector<int64_t> latent      = {16, 8, 32, 32};
    int64_t              context_len = 0;  // 0: text_len
    uint64_t             seed        = 0;
    int64_t              t           = 500;
};

int run_synth(const SynthOptions& o) {
    const auto cfg = wan::WanConfig::from_json_file(o.config);
    if (o.latent.size() != 4 || o.latent[0] != cfg.in_dim)
        input_error("--latent must be C,F,H,W with C = in_dim (" + std::to_string(cfg.in_dim) + ")");
    const int64_t lc = o.context_len ? o.context_len : cfg.text_len;
    if (lc < 1 || lc > cfg.text_len) input_error("--context-len must be in 1.." + std::to_string(cfg.text_len));
    if (!o.weights_out.empty()) {
        wan::WanModel model(cfg);
        wan::init_random(model, o.seed);
        wan::save_dit(model, o.weights_out, wan::KeyFormat::official);
        std::cerr << "synth: wrote " << o.weights_out << "\n";
    }
    if (!o.inputs_out.empty()) {
        auto gen = at::detail::createCPUGenerator(o.seed + 1);
        auto opt = torch::TensorOptions().dtype(torch::kFloat32);
        auto x   = at::normal(0.0, 1.0, o.latent, gen, opt);                  // [C, F, H, W]
        auto cc  = at::normal(0.0, 1.0, {lc, cfg.text_dim}, gen, opt);        // [Lc, text_dim]
        auto cu  = at::normal(0.0, 1.0, {cfg.text_len, cfg.text_dim}, gen, opt);
        io::write_safetensors(o.inputs_out, {{"x", x}, {"noise", x}, {"t", torch::full({1}, o.t, torch::kInt64)},
                                             {"context", cc}, {"context_cond", cc}, {"context_uncond", cu}});
        std::cerr << "synth: wrote " << o.inputs_out << "\n";
    }
    return 0;
}

}  // namespace

Command add_synth(CLI::App& app) {
    auto  o   = std::make_shared<SynthOptions>();
    auto* cmd = app.add_subcommand("synth", "seeded random DiT weights and inputs for a config (benchmarks without a checkpoint)");
    cmd->add_option("--config", o->config, "JSON config")->required();
    cmd->add_option("--weights-out", o->weights_out, "safetensors to write the random weights to");
    cmd->add_option("--inputs-out", o->inputs_out, "safetensors for dit-forward and sample: x/noise, t, context/context_cond, context_uncond");
    cmd->add_option("--latent", o->latent, "latent shape C,F,H,W")->delimiter(',')->capture_default_str();
    cmd->add_option("--context-len", o->context_len, "rows of the cond context (0: text_len)");
    cmd->add_option("--t", o->t, "timestep stored as t")->capture_default_str();
    cmd->add_option("--seed", o->seed, "seed")->capture_default_str();
    return {cmd, [o] { return run_synth(*o); }};
}

}  // namespace profdit::cli
