#include <chrono>
#include <iostream>
#include <memory>
#include <numeric>

#include "cli/commands.h"
#include "cli/table.h"
#include "common/build_info.h"
#include "common/device.h"
#include "common/error.h"
#include "io/safetensors.h"
#include "sampling/cfg_loop.h"

namespace profdit::cli {

namespace {

struct SampleCmdOptions {
    std::string              weights, config, inputs, out;
    sampling::SampleOptions  sample;
    std::string              format = "md";
    bool                     quiet  = false;
    RuntimeOptions           rt;
};

void check_context(const std::string& file, const std::string& key, const torch::Tensor& ctx, const wan::WanConfig& cfg) {
    if (ctx.size(1) != cfg.text_dim)
        input_error(file + ": input '" + key + "' has width " + std::to_string(ctx.size(1)) + ", the model takes text_dim = " +
                    std::to_string(cfg.text_dim));
    if (ctx.size(0) < 1 || ctx.size(0) > cfg.text_len)
        input_error(file + ": input '" + key + "' has " + std::to_string(ctx.size(0)) + " rows, expected 1.." +
                    std::to_string(cfg.text_len) + " (text_len)");
}

int run_sample(const SampleCmdOptions& o) {
    o.rt.apply();
    (void)sampling::make_scheduler(o.sample.solver, o.sample.steps, o.sample.shift);  // validate before loading
    auto        model = load_model(o.weights, o.config, o.rt);
    const auto& cfg   = model->config();
    const auto  dev   = model->device();

    io::SafetensorsReader in(o.inputs);
    auto noise = read_float_input(in, "noise", 4);  // [C, F, H, W]
    auto cc    = read_float_input(in, "context_cond", 2);
    auto cu    = read_float_input(in, "context_uncond", 2);
    if (noise.size(0) != cfg.in_dim)
        input_error(o.inputs + ": input 'noise' has " + std::to_string(noise.size(0)) + " channels, the model takes in_dim = " +
                    std::to_string(cfg.in_dim));
    if (cfg.in_dim != cfg.out_dim)
        input_error(o.weights + ": sampling needs in_dim == out_dim, the model has " + std::to_string(cfg.in_dim) + " and " +
                    std::to_string(cfg.out_dim));
    for (int d = 0; d < 3; ++d)
        if (noise.size(d + 1) % cfg.patch_size[d] != 0)
            input_error(o.inputs + ": input 'noise' dimension " + std::to_string(d + 1) + " (" + std::to_string(noise.size(d + 1)) +
                        ") is not a multiple of the patch size " + std::to_string(cfg.patch_size[d]));
    check_context(o.inputs, "context_cond", cc, cfg);
    check_context(o.inputs, "context_uncond", cu, cfg);

    sampling::PlainDenoiser denoiser(model);
    const auto t0  = std::chrono::steady_clock::now();
    auto       res = sampling::sample_cfg(denoiser, noise.to(dev), cc.to(dev), cu.to(dev), o.sample, [&](int i, int n) {
        if (!o.quiet) std::cerr << "\rsample: step " << i << "/" << n << (i == n ? "\n" : "") << std::flush;
    });
    synchronize(dev);
    const double total_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

    const auto& s  = res.schedule;
    auto       ts = torch::from_blob(const_cast<int64_t*>(s.timesteps.data()), {int64_t(s.timesteps.size())}, torch::kInt64).clone();
    auto       sg = torch::from_blob(const_cast<float*>(s.sigmas.data()), {int64_t(s.sigmas.size())}, torch::kFloat32).clone();
    io::write_safetensors(o.out, {{"final_latent", res.final_latent.contiguous()},
                                  {"step_latent", res.step_latent.contiguous()},
                                  {"timesteps", ts},
                                  {"sigmas", sg}});

    const double per_step = std::accumulate(res.step_ms.begin(), res.step_ms.end(), 0.0) / res.step_ms.size();
    const int64_t tokens  = (noise.size(1) / cfg.patch_size[0]) * (noise.size(2) / cfg.patch_size[1]) * (noise.size(3) / cfg.patch_size[2]);
    char shift[32], guide[32];
    std::snprintf(shift, sizeof shift, "%g", o.sample.shift);
    std::snprintf(guide, sizeof guide, "%g", o.sample.guide);
    Table t;
    t.columns = {"model", "layers", "dim", "tokens", "solver", "steps", "shift", "guide", "policy",
                 "ms/step", "total ms", "device", "dtype", "commit"};
    t.rows.push_back({cfg.variant(), std::to_string(cfg.num_layers), std::to_string(cfg.dim), std::to_string(tokens),
                      o.sample.solver, std::to_string(o.sample.steps), shift, guide, "none", format_ms(per_step),
                      format_ms(total_ms), device_label(dev), dtype_label(model->compute_dtype()), build_commit()});
    print_table(t, o.format, std::cout);
    return 0;
}

}  // namespace

Command add_sample(CLI::App& app) {
    auto  o   = std::make_shared<SampleCmdOptions>();
    auto* cmd = app.add_subcommand("sample", "CFG sampling loop from noise, context_cond, context_uncond");
    cmd->add_option("--weights", o->weights, "DiT safetensors (file or *.safetensors.index.json)")->required();
    cmd->add_option("--config", o->config, "JSON config; detected from the weights if omitted");
    cmd->add_option("--inputs", o->inputs, "safetensors with noise [C,F,H,W], context_cond, context_uncond")->required();
    cmd->add_option("--out", o->out, "safetensors to write: final_latent, step_latent, timesteps, sigmas")->required();
    cmd->add_option("--solver", o->sample.solver, "unipc | dpm++ | euler")->capture_default_str();
    cmd->add_option("--steps", o->sample.steps, "sampling steps")->capture_default_str();
    cmd->add_option("--shift", o->sample.shift, "flow shift")->capture_default_str();
    cmd->add_option("--guide", o->sample.guide, "classifier-free guidance scale")->capture_default_str();
    cmd->add_option("--format", o->format, "result table: md | csv | json")->capture_default_str();
    cmd->add_flag("--quiet", o->quiet, "no progress on stderr");
    o->rt.add_to(cmd);
    return {cmd, [o] {
                if (std::find(table_formats().begin(), table_formats().end(), o->format) == table_formats().end())
                    input_error("unknown --format '" + o->format + "' (accepted: md, csv, json)");
                return run_sample(*o);
            }};
}

}  // namespace profdit::cli
