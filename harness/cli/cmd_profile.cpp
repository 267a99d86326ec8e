#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/table.h"
#include "common/build_info.h"
#include "common/error.h"
#include "common/format.h"
#include "profile/block_focus.h"
#include "profile/plan_builder.h"
#include "run/experiment.h"
#include "run/plan.h"
#include "run/runner.h"
#include "store/store.h"

namespace profdit::cli {

namespace {

struct ProfileCmdOptions {
    std::string              experiment, out, h5, method = "attention", format = "md";
    std::vector<std::string> set;
    double                   tau = NAN, budget = NAN, rho = 0.1, warmup_ratio = 2.0;
    bool                     resume = false, quiet = false;
};

std::string emit_block(const YAML::Node& n) {
    YAML::Emitter e;
    e << n;
    return e.c_str();
}

std::vector<double> column(const torch::Tensor& t) {  // [S, 2] -> the cond branch
    auto c = t.to(torch::kFloat64).select(1, 0).contiguous();
    return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

std::vector<double> to_vec(const torch::Tensor& t) {
    auto c = t.to(torch::kFloat64).contiguous();
    return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

int run_profile(const ProfileCmdOptions& o) {
    check_format(o.format);
    if (o.method != "attention" && o.method != "sensitivity")
        input_error("unknown --method '" + o.method + "' (accepted: attention, sensitivity)");
    if (!std::isnan(o.tau) && !std::isnan(o.budget)) input_error("give --tau or --budget, not both");
    if (o.method == "sensitivity" && !std::isnan(o.tau)) input_error("--method sensitivity chooses blocks by --budget, not --tau");
    if (!std::isnan(o.budget) && (o.budget < 0 || o.budget > 1)) input_error("--budget must be in [0, 1], got " + format_number("%g", o.budget));
    if (!(o.rho > 0)) input_error("--rho must be positive, got " + format_number("%g", o.rho));
    if (!(o.warmup_ratio >= 1)) input_error("--warmup-ratio must be at least 1 (a multiple of the curve's late level), got " + format_number("%g", o.warmup_ratio));
    const auto out_dir = std::filesystem::path(o.out).parent_path();
    if (!out_dir.empty() && !std::filesystem::is_directory(out_dir)) input_error("--out: folder '" + out_dir.string() + "' does not exist");

    auto x = run::load_experiment(o.experiment, o.set);
    x.profile.attention   = true;
    x.profile.similarity  = true;
    x.warmup_runs = 0, x.repeats = 1;
    x.metrics.clear();
    x.policies = {{YAML::Node("none"), "profdit profile", std::nullopt}};
    run::RunnerOptions ro;
    ro.out    = o.h5.empty() ? std::filesystem::path(o.out).replace_extension(".h5").string() : o.h5;
    ro.resume = o.resume;
    ro.quiet  = o.quiet;
    run::run_experiment(x, ro);

    std::vector<torch::Tensor> r_attn;
    std::vector<double>        rel;
    std::string                model;
    double                     iou_sum = 0;
    int                        iou_n   = 0;
    const auto                 pairs = run::grid_pairs(x);
    {
        auto st = store::Store::open_existing(ro.out);
        model   = store::Store::read_info(ro.out).model;
        for (const auto& p : pairs) {
            r_attn.push_back(st.read_dataset(p.reference + "/profile/r_attn"));
            const double iou = st.read_num_attr(p.reference + "/profile/mask_auto", "iou_vs_gt");
            if (!std::isnan(iou)) iou_sum += iou, ++iou_n;
            const auto c = column(st.read_dataset(p.reference + "/similarity/noise_pred_rel_l1"));
            if (rel.empty()) rel.assign(c.size(), 0.0);
            for (size_t s = 0; s < c.size(); ++s) rel[s] += c[s] / double(pairs.size());
        }
    }
    const auto focus    = profile::summarize_focus(r_attn);
    const auto schedule = profile::suggest_schedule(rel, o.rho, o.warmup_ratio);
    const int  blocks   = int(focus.mean.size(0));
    const double budget = std::isnan(o.budget) ? 0.5 : o.budget;

    profile::BlockSplit split;
    torch::Tensor       sens_psnr;
    if (o.method == "attention") {
        std::string undefined;
        for (int b = 0; b < blocks; ++b)
            if (std::isnan(focus.mean[b].item<double>())) undefined += (undefined.empty() ? "" : ", ") + std::to_string(b);
        if (!undefined.empty())
            input_error(x.path + ": profile: R_attn is undefined for block(s) " + undefined + ": the mask source '" + x.profile.mask +
                        "' found no foreground token in any reference (try more sampling steps, mask: auto or mask: file)");
        split = std::isnan(o.tau) ? profile::split_by_budget(focus.mean, budget) : profile::split_by_tau(focus.mean, o.tau);
    } else {
        // Cache each block alone with the suggested schedule; the least harmful blocks become background.
        YAML::Node sched = schedule.to_yaml();
        x.policies.clear();
        for (int b = 0; b < blocks; ++b) {
            YAML::Node n;
            n["name"]              = "profiling_dit";
            n["background_blocks"] = std::vector<int>{b};
            n["warmup"]            = schedule.warmup;
            n["final_full"]        = schedule.final_full;
            n["schedule"]          = YAML::Clone(sched);
            x.policies.push_back({n, "profdit profile --method sensitivity", std::nullopt});
        }
        x.metrics    = {{"psnr", ""}};
        ro.resume    = true;
        const auto r = run::run_experiment(x, ro);
        auto       st = store::Store::open_existing(ro.out);
        sens_psnr     = torch::zeros({blocks}, torch::kFloat64);
        for (int b = 0; b < blocks; ++b)
            for (const auto& p : pairs)
                sens_psnr[b] += st.read_num_attr(run::run_group(r.policy_tags[size_t(b)], p) + "/metrics/psnr", "mean") / double(pairs.size());
        split = profile::split_by_budget(-sens_psnr, budget);
    }

    YAML::Node plan;
    plan["background_blocks"] = split.background;
    plan["foreground_blocks"] = split.foreground;
    plan["r_attn"]            = to_vec(focus.mean);
    plan["r_attn_spread_steps"] = to_vec(focus.spread_steps);
    plan["r_attn_spread_pairs"] = to_vec(focus.spread_pairs);
    plan["tau"]               = split.tau;
    plan["method"]            = o.method;
    if (std::isnan(o.tau)) plan["budget"] = budget;
    YAML::Node s = schedule.to_yaml();
    s["warmup"]     = schedule.warmup;
    s["final_full"] = schedule.final_full;
    plan["schedule"] = s;
    YAML::Node src;
    src["model"]      = model;
    src["experiment"] = x.path;
    src["prompts"]    = x.prompts;
    std::vector<int64_t> seeds(x.seeds.begin(), x.seeds.end());
    src["seeds"]      = seeds;
    src["sampling"]   = format_number("%g", x.sampling.steps) + " " + x.sampling.solver + " steps, shift " + format_number("%g", x.sampling.shift) +
                      ", guide " + format_number("%g", x.sampling.guide);
    src["mask"]       = x.profile.mask;
    if (iou_n) src["auto_mask_iou_vs_gt"] = iou_sum / iou_n;
    src["high"]       = profile::HighRule{x.profile.high, x.profile.high_value}.text();
    src["rho"]        = o.rho;
    src["warmup_ratio"] = o.warmup_ratio;
    src["late_level"]   = profile::late_level(rel);
    if (sens_psnr.defined()) src["sensitivity_psnr"] = to_vec(sens_psnr);
    src["profile_h5"] = ro.out;
    src["commit"]     = build_commit();
    plan["source"]    = src;
    const std::string tmp = o.out + ".tmp";
    {
        std::ofstream f(tmp);
        if (!(f << "# written by profdit profile (" << o.method << "); the profiling_dit policy loads it with plan: " << o.out << "\n"
                << emit_block(plan) << "\n"))
            input_error("--out: cannot write '" + o.out + "'");
    }
    std::filesystem::rename(tmp, o.out);

    {
        store::Record r;
        r.datasets["r_attn"]            = {focus.mean, {}, {}, false};
        r.datasets["r_attn_steps"]      = {focus.per_step, {}, {{"axes", "step, block"}, {"note", "mean over (prompt, seed) pairs"}}, false};
        r.datasets["r_attn_spread_steps"] = {focus.spread_steps, {}, {}, false};
        r.datasets["r_attn_spread_pairs"] = {focus.spread_pairs, {}, {}, false};
        r.datasets["background_blocks"] = {torch::tensor(std::vector<int64_t>(split.background.begin(), split.background.end()), torch::kInt64), {}, {}, false};
        r.datasets["foreground_blocks"] = {torch::tensor(std::vector<int64_t>(split.foreground.begin(), split.foreground.end()), torch::kInt64), {}, {}, false};
        r.datasets["noise_pred_rel_l1"] = {torch::tensor(rel, torch::kFloat64), {}, {{"note", "cond branch, mean over pairs"}}, false};
        if (sens_psnr.defined()) r.datasets["sensitivity_psnr"] = {sens_psnr, {}, {}, false};
        r.num_attrs["tau"] = split.tau;
        r.str_attrs["method"]    = o.method;
        r.str_attrs["plan_yaml"] = emit_block(plan);
        auto st = store::Store::open_existing(ro.out);
        st.write("/plan", r, "done");
    }

    Table t;
    t.columns = {"block", "r_attn", "spread steps", "std steps", "spread pairs"};
    if (sens_psnr.defined()) t.columns.push_back("cached alone psnr dB");
    t.columns.push_back("class");
    for (int b = 0; b < blocks; ++b) {
        std::vector<std::string> row = {std::to_string(b), format_number("%.3f", focus.mean[b].item<double>()),
                                        format_number("%.3f", focus.spread_steps[b].item<double>()),
                                        format_number("%.3f", focus.std_steps[b].item<double>()),
                                        format_number("%.3f", focus.spread_pairs[b].item<double>())};
        if (sens_psnr.defined()) row.push_back(format_number("%.2f", sens_psnr[b].item<double>()));
        row.push_back(std::find(split.background.begin(), split.background.end(), b) != split.background.end() ? "background" : "foreground");
        t.rows.push_back(row);
    }
    print_table(t, o.format, std::cout);
    if (!o.quiet) {
        std::string bg;
        for (int b : split.background) bg += (bg.empty() ? "" : ", ") + std::to_string(b);
        std::cerr << "profdit profile: wrote " << o.out << " (background [" << bg << "], tau " << format_number("%.3f", split.tau)
                  << ", schedule " << schedule.tag() << ") and " << ro.out << "\n";
        if (iou_n)
            std::cerr << "profdit profile: auto mask vs gt mask IoU " << format_number("%.3f", iou_sum / iou_n) << " (mean of " << iou_n
                      << " references)\n";
    }
    return 0;
}

}  // namespace

Command add_profile(CLI::App& app) {
    auto  o   = std::make_shared<ProfileCmdOptions>();
    auto* cmd = app.add_subcommand("profile", "profile the uncached model on an experiment's prompts and write a ProfilingDiT plan file");
    cmd->add_option("experiment", o->experiment, "experiment YAML (its model, sampling, prompts, seeds and profile: options; its policies are ignored)")->required();
    cmd->add_option("--out", o->out, "plan file to write, e.g. plans/NAME.yaml")->required();
    cmd->add_option("--h5", o->h5, "HDF5 file for the profiles (default: the plan path with .h5)");
    cmd->add_option("--set", o->set, "override an experiment key: a.b=value (repeatable)");
    cmd->add_option("--method", o->method, "attention (R_attn from received attention) | sensitivity (cache each block alone)")->capture_default_str();
    cmd->add_option("--tau", o->tau, "blocks with R_attn < tau are background-focused");
    cmd->add_option("--budget", o->budget, "instead of --tau: keep about this share of the block compute (default 0.5)");
    cmd->add_option("--rho", o->rho, "the accumulated step change a cached block may miss: a step's interval is floor(rho / change)")->capture_default_str();
    cmd->add_option("--warmup-ratio", o->warmup_ratio,
                    "warm-up ends when the noise prediction's step change stays below this multiple of its late level (median of the second half)")
        ->capture_default_str();
    cmd->add_flag("--resume", o->resume, "continue an existing profile HDF5 file");
    cmd->add_option("--format", o->format, "table: md | csv | json")->capture_default_str();
    cmd->add_flag("--quiet", o->quiet, "no progress on stderr");
    return {cmd, [o] { return run_profile(*o); }};
}

}  // namespace profdit::cli
