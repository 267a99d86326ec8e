#include <iostream>
#include <memory>
#include <numeric>

#include "cli/commands.h"
#include "cli/table.h"
#include "common/build_info.h"
#include "common/device.h"
#include "common/stats.h"
#include "common/error.h"
#include "common/format.h"
#include "common/progress.h"
#include "common/range.h"
#include "io/safetensors.h"
#include "policies/none.h"
#include "policies/policy.h"
#include "sampling/cached_denoiser.h"
#include "run/run_record.h"
#include "sampling/cfg_loop.h"
#include "sampling/timed_loop.h"

namespace profdit::cli {

namespace {

struct SampleCmdOptions {
    std::string              weights, config, inputs, out;
    sampling::SampleOptions  sample;
    std::string              format = "md";
    bool                     quiet  = false;
    std::vector<std::string> policies = {"none"};
    std::vector<std::string> policy_opts;
    int                      repeat = 3;
    int                      warmup = 1;
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

    const policies::ModelFacts facts{int(cfg.num_layers), cfg.variant(), ""};  // no fingerprint: plan files are not checked
    if (!o.policy_opts.empty() && o.policies.size() != 1)
        input_error("--policy-opt applies to a single --policy; with several, give each as YAML: --policy '{name: teacache, threshold: 0.08}'");
    std::vector<std::unique_ptr<policies::CachePolicy>> list;
    bool compare = false;
    for (const auto& p : o.policies) {
        list.push_back(policies::make_policy(policies::policy_node_from_cli(p, o.policy_opts), facts, "--policy"));
        compare = compare || list.back()->name() != "none";
    }

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

    policies::NonePolicy none(facts);

    struct Run {
        sampling::SampleResult res;
        sampling::CacheStats   stats;
        std::vector<double>    ms;  // DiT-loop time per execution
    };
    const auto   noise_d = noise.to(dev);                                    // [C, F, H, W]
    const auto   cond    = model->condition(cc.to(dev), noise.sizes());      // once, outside the timed runs
    const auto   uncond  = model->condition(cu.to(dev), noise.sizes());
    ProgressLine bar(std::cerr, ProgressLine::stderr_is_terminal());
    auto         run_policy = [&](policies::CachePolicy& p, Run& into, int r) {  // timed as `profdit run` times: sampling::timed_sample
        p.reset();
        sampling::CachedDenoiser d(model, p, o.sample.steps);
        sampling::TimedDenoiser  timed(d, dev);
        auto ts = sampling::timed_sample(timed, dev, noise_d, cond, uncond, o.sample, [&](int i, int n) {
            if (!o.quiet)
                bar.update("sample: " + p.tag() + " run " + std::to_string(r + 1) + "/" + std::to_string(o.repeat) + " step " +
                               std::to_string(i) + "/" + std::to_string(n),
                           i == n);
        });
        into.res = std::move(ts.result);
        into.ms.push_back(ts.loop_ms);
        into.stats = d.stats();
    };
    {  // untimed uncached runs, as profdit run's timing.warmup_runs
        sampling::CachedDenoiser d(model, none, o.sample.steps);
        sampling::warm_up(d, noise_d, cond, uncond, o.sample, o.warmup);
    }
    Run ref;
    std::vector<Run> runs(list.size());
    for (int r = 0; r < o.repeat; ++r) {  // interleaved, so machine drift hits every policy alike
        if (compare) run_policy(none, ref, r);
        for (size_t i = 0; i < list.size(); ++i) run_policy(*list[i], runs[i], r);
    }
    const Run& pol = runs.back();

    const auto& s  = pol.res.schedule;
    auto       ts = torch::from_blob(const_cast<int64_t*>(s.timesteps.data()), {int64_t(s.timesteps.size())}, torch::kInt64).clone();
    auto       sg = torch::from_blob(const_cast<float*>(s.sigmas.data()), {int64_t(s.sigmas.size())}, torch::kFloat32).clone();
    io::write_safetensors(o.out, {{"final_latent", pol.res.final_latent.contiguous()},
                                  {"step_latent", pol.res.step_latent.contiguous()},
                                  {"timesteps", ts},
                                  {"sigmas", sg},
                                  {"compute_mask", pol.stats.compute_mask}});

    const int64_t tokens = (noise.size(1) / cfg.patch_size[0]) * (noise.size(2) / cfg.patch_size[1]) * (noise.size(3) / cfg.patch_size[2]);
    Table t;
    t.columns = {"model", "tokens", "solver", "steps", "shift", "guide", "policy", "computed", "ideal x", "measured x", "measured range",
                 "ms/step", "loop ms", "repeats", "latent rel err", "timer", "device", "dtype", "commit"};
    auto row = [&](const policies::CachePolicy& p, const Run& r) {
        const double loop = median(r.ms);
        const double base = compare ? median(ref.ms) : loop;
        const auto   sp   = compare ? run::execution_speedups(ref.ms, r.ms) : std::vector<double>(r.ms.size(), 1.0);
        const double err  = compare ? (r.res.final_latent - ref.res.final_latent).norm().item<double>() /
                                          ref.res.final_latent.norm().item<double>()
                                    : 0.0;
        t.rows.push_back({cfg.variant(), std::to_string(tokens), o.sample.solver, std::to_string(o.sample.steps),
                          format_number("%g", o.sample.shift), format_number("%g", o.sample.guide), p.tag(), format_number("%.3f", r.stats.computed_fraction()),
                          format_number("%.3f", r.stats.ideal_speedup()), format_number("%.3f", base / loop), format_range(sp),
                          format_ms(loop / o.sample.steps), format_ms(loop), std::to_string(o.repeat), format_number("%.3g", err),
                          sampling::timer_name(dev), device_label(dev), dtype_label(model->compute_dtype()), build_commit()});
    };
    if (compare) row(none, ref);
    for (size_t i = 0; i < list.size(); ++i) row(*list[i], runs[i]);
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
    cmd->add_option("--policy", o->policies, "cache policy: none | step_skip | teacache | profiling_dit, or a YAML map {name: ..., options}; repeatable (--out holds the last)")
        ->capture_default_str();
    cmd->add_option("--policy-opt", o->policy_opts, "policy option key=value (repeatable; values are YAML: 2, 0.08, [0,2,3], {type: fixed, interval: 3})");
    cmd->add_option("--repeat", o->repeat, "timed runs of each policy (interleaved with none); times are medians, the range is shown")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    cmd->add_option("--warmup", o->warmup, "untimed uncached runs before the first timed one")->check(CLI::NonNegativeNumber)->capture_default_str();
    o->rt.add_to(cmd);
    return {cmd, [o] {
                check_format(o->format);
                return run_sample(*o);
            }};
}

}  // namespace profdit::cli
