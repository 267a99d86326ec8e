#include <algorithm>
#include <chrono>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "common/build_info.h"
#include "common/device.h"
#include "common/error.h"
#include "io/safetensors.h"

namespace profdit::cli {

namespace {

struct DitForwardOptions {
    std::string    weights, config, inputs, out;
    int            repeat = 0;
    RuntimeOptions rt;
};

int run_dit_forward(const DitForwardOptions& o) {
    o.rt.apply();
    auto        model = load_model(o.weights, o.config, o.rt);
    const auto& cfg   = model->config();

    io::SafetensorsReader in(o.inputs);
    auto x   = read_float_input(in, "x", 4);        // [C, F, H, W]
    auto t   = read_int_input(in, "t", 1);          // [1]
    auto ctx = read_float_input(in, "context", 2);  // [Lc, text_dim]
    if (x.size(0) != cfg.in_dim)
        input_error(o.inputs + ": input 'x' has " + std::to_string(x.size(0)) + " channels, the model takes in_dim = " +
                    std::to_string(cfg.in_dim));
    for (int d = 0; d < 3; ++d)
        if (x.size(d + 1) < cfg.patch_size[d])
            input_error(o.inputs + ": input 'x' dimension " + std::to_string(d + 1) + " (" + std::to_string(x.size(d + 1)) +
                        ") is smaller than the patch size " + std::to_string(cfg.patch_size[d]));
    if (ctx.size(1) != cfg.text_dim)
        input_error(o.inputs + ": input 'context' has width " + std::to_string(ctx.size(1)) + ", the model takes text_dim = " +
                    std::to_string(cfg.text_dim));
    if (ctx.size(0) < 1 || ctx.size(0) > cfg.text_len)
        input_error(o.inputs + ": input 'context' has " + std::to_string(ctx.size(0)) + " rows, expected 1.." +
                    std::to_string(cfg.text_len) + " (text_len)");
    const int64_t tv     = t.item<int64_t>();
    const auto    device = model->device();
    x                    = x.to(device);
    ctx                  = ctx.to(device);

    torch::NoGradGuard no_grad;
    auto out = model->forward(x, tv, ctx).to(torch::kCPU, torch::kFloat32).contiguous();  // [C_out, F, H, W]
    io::write_safetensors(o.out, {{"out", out}});

    if (o.repeat > 0) {
        std::vector<double> ms;
        for (int r = 0; r < o.repeat; ++r) {
            synchronize(device);
            const auto t0 = std::chrono::steady_clock::now();
            model->forward(x, tv, ctx);
            synchronize(device);
            ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        }
        std::vector<double> sorted = ms;
        std::sort(sorted.begin(), sorted.end());
        const double median = sorted.size() % 2 ? sorted[sorted.size() / 2]
                                                : 0.5 * (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]);
        const int64_t tokens = (x.size(1) / cfg.patch_size[0]) * (x.size(2) / cfg.patch_size[1]) * (x.size(3) / cfg.patch_size[2]);
        nlohmann::json j = {{"event", "dit_forward_timing"}, {"repeat", o.repeat}, {"median_ms", median},
                            {"min_ms", sorted.front()}, {"max_ms", sorted.back()}, {"tokens", tokens},
                            {"device", device_label(device)}, {"dtype", dtype_label(model->compute_dtype())},
                            {"commit", build_commit()}};
        std::cerr << j.dump() << std::endl;
    }
    return 0;
}

}  // namespace

Command add_dit_forward(CLI::App& app) {
    auto  o   = std::make_shared<DitForwardOptions>();
    auto* cmd = app.add_subcommand("dit-forward", "one DiT forward: inputs x [C,F,H,W], t int64 [1], context [L,text_dim] -> out");
    cmd->add_option("--weights", o->weights, "DiT safetensors (file or *.safetensors.index.json)")->required();
    cmd->add_option("--config", o->config, "JSON config ({\"dit\": {...}}, official or diffusers); detected from the weights if omitted");
    cmd->add_option("--inputs", o->inputs, "safetensors with x, t, context")->required();
    cmd->add_option("--out", o->out, "safetensors to write (tensor 'out')")->required();
    cmd->add_option("--repeat", o->repeat, "time N forwards after the first (JSON line on stderr)")->check(CLI::NonNegativeNumber);
    o->rt.add_to(cmd);
    return {cmd, [o] { return run_dit_forward(*o); }};
}

}  // namespace profdit::cli
