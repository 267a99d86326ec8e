#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/table.h"
#include "common/build_info.h"
#include "common/error.h"
#include "common/format.h"
#include "common/progress.h"
#include "common/threads.h"
#include "policies/none.h"
#include "profile/magcache_calibration.h"
#include "profile/teacache_calibration.h"
#include "run/experiment.h"
#include "run/pipeline.h"
#include "sampling/cached_denoiser.h"

namespace profdit::cli {

namespace {

struct CalibrateOptions {
    std::string              experiment, out, indicator = "best", format = "md", branches = "cond";
    std::vector<std::string> set;
    bool                     quiet = false;
};

struct IndicatorFit {
    std::string         name;
    size_t              points = 0;
    double              x_min = 0, x_max = 0, y_min = 0, y_max = 0;
    profile::PolyFit    fit;
};

// Creates the folder and proves the file can be written before the long part starts.
void check_writable(const std::string& out) {
    const auto dir = std::filesystem::path(out).parent_path();
    std::error_code ec;
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    const std::string tmp = out + ".tmp";
    if (ec || !std::ofstream(tmp)) input_error("--out: cannot write '" + out + "'" + (ec ? " (" + ec.message() + ")" : ""));
    std::filesystem::remove(tmp, ec);
}

std::string coefficient_file(const IndicatorFit& f, const run::Experiment& x, const run::Pipeline& pipe) {
    YAML::Emitter e;
    e.SetDoublePrecision(10);
    e << YAML::BeginMap;
    e << YAML::Key << "coefficients" << YAML::Value << YAML::Flow << f.fit.coefficients;
    e << YAML::Key << "indicator" << YAML::Value << f.name;
    e << YAML::Key << "r2" << YAML::Value << f.fit.r2;
    e << YAML::Key << "ret_steps" << YAML::Value << 1;
    e << YAML::Key << "final_full" << YAML::Value << 1;
    e << YAML::Key << "source" << YAML::Value << YAML::Flow << YAML::BeginMap;
    e << YAML::Key << "model" << YAML::Value << YAML::DoubleQuoted << pipe.fingerprint;
    e << YAML::Key << "experiment" << YAML::Value << x.path;
    e << YAML::Key << "prompts" << YAML::Value << x.prompts.size();
    e << YAML::Key << "seeds" << YAML::Value << YAML::Flow << x.seeds;
    e << YAML::Key << "solver" << YAML::Value << x.sampling.solver;
    e << YAML::Key << "steps" << YAML::Value << x.sampling.steps;
    e << YAML::Key << "shift" << YAML::Value << x.sampling.shift;
    e << YAML::Key << "guide" << YAML::Value << x.sampling.guide;
    e << YAML::Key << "points" << YAML::Value << f.points;
    e << YAML::Key << "commit" << YAML::Value << YAML::DoubleQuoted << build_commit();
    e << YAML::EndMap << YAML::EndMap;
    return "# written by profdit calibrate teacache\n" + std::string(e.c_str()) + "\n";
}

// The experiment's (prompt, seed) runs, uncached, with `attach` hooking observers onto each run's executor;
// a progress bar on stderr unless quiet. Returns the schedule (the same for every run).
sampling::Schedule uncached_runs(const run::Experiment& x, const run::Pipeline& pipe, const std::string& what, bool quiet,
                                 const std::function<void(sampling::CachedDenoiser&)>& attach) {
    const auto& cfg = pipe.dit->config();
    policies::NonePolicy none({int(cfg.num_layers), cfg.variant(), pipe.fingerprint});
    auto opt       = x.sampling;
    opt.keep_steps = false;
    const int  runs     = int(x.prompts.size() * x.seeds.size());
    auto       dit      = pipe.dit;  // a handle on the same model: conditioning runs its text MLP
    const auto negative = dit->condition(pipe.text->encode(pipe.negative_prompt), pipe.latent_shape);
    sampling::Schedule schedule;
    int          run_no = 0;
    ProgressLine bar(std::cerr, ProgressLine::stderr_is_terminal());
    for (size_t p = 0; p < x.prompts.size(); ++p) {
        const auto cond = dit->condition(pipe.text->encode(x.prompts[p]), pipe.latent_shape);
        for (uint64_t seed : x.seeds) {
            ++run_no;
            const auto noise = sampling::seeded_noise(pipe.latent_shape, seed).to(pipe.device());  // [C, F, H, W]
            sampling::CachedDenoiser d(pipe.dit, none, opt.steps);
            attach(d);
            schedule = sampling::sample_cfg(d, noise, cond, negative, opt, [&](int i, int n) {
                if (quiet) return;
                bar.update("calibrate " + what + " " + std::to_string(run_no) + "/" + std::to_string(runs) + " prompt " + std::to_string(p) +
                               " seed " + std::to_string(seed) + " " + ProgressLine::bar(i, n),
                           i == n);
            }).schedule;
        }
    }
    return schedule;
}

void write_atomically(const std::string& out, const std::string& text) {
    const std::string tmp = out + ".tmp";
    {
        std::ofstream f(tmp);
        if (!(f << text) || !f.flush()) input_error("--out: cannot write '" + out + "'");
    }
    std::filesystem::rename(tmp, out);
}

int run_calibrate(const CalibrateOptions& o) {
    check_format(o.format);
    const auto& names = policies::teacache_indicator_names();
    if (o.indicator != "best" && std::find(names.begin(), names.end(), o.indicator) == names.end())
        input_error("unknown --indicator '" + o.indicator + "' (accepted: " + join(names, ", ") + ", best)");
    if (o.branches != "cond" && o.branches != "both") input_error("unknown --branches '" + o.branches + "' (accepted: cond, both)");
    const auto x = run::load_experiment(o.experiment, o.set);
    const int  runs = int(x.prompts.size() * x.seeds.size()), per_run = (x.sampling.steps - 1) * (o.branches == "both" ? 2 : 1);
    if (runs * per_run < 5)
        input_error(x.path + ": sampling: steps " + std::to_string(x.sampling.steps) + " over " + std::to_string(runs) + " run(s) give " +
                    std::to_string(runs * per_run) + " points; a 4th-order fit needs at least 5");
    if (!o.out.empty()) check_writable(o.out);

    torch::NoGradGuard no_grad;
    set_cpu_threads(x.model.threads);
    const auto pipe = run::load_pipeline(x.model, x.path);
    profile::TeaCacheRecorder rec(o.branches == "both");
    uncached_runs(x, pipe, "teacache", o.quiet, [&](sampling::CachedDenoiser& d) { d.observe_calls(&rec); });

    std::vector<IndicatorFit> fits;
    for (size_t i = 0; i < names.size(); ++i) {
        const auto [px, py] = rec.points(i);
        IndicatorFit f;
        f.name   = names[i];
        f.points = px.size();
        if (px.size() < 5) throw std::runtime_error("indicator " + f.name + ": only " + std::to_string(px.size()) + " finite points");
        f.x_min = *std::min_element(px.begin(), px.end()), f.x_max = *std::max_element(px.begin(), px.end());
        f.y_min = *std::min_element(py.begin(), py.end()), f.y_max = *std::max_element(py.begin(), py.end());
        f.fit   = profile::fit_polynomial(px, py, 4);
        fits.push_back(f);
    }
    int chosen = -1;
    for (size_t i = 0; i < fits.size(); ++i) {
        if (o.indicator == fits[i].name) chosen = int(i);
        if (o.indicator == "best" && std::isfinite(fits[i].fit.r2) && (chosen < 0 || fits[i].fit.r2 > fits[size_t(chosen)].fit.r2)) chosen = int(i);
    }
    if (chosen < 0) throw std::runtime_error("no indicator gave a finite R^2 (the model output did not change between steps)");

    Table t;
    t.columns = {"model", "indicator", "points", "r2", "x range", "y range", "coefficients (x^4 .. x^0)", "chosen", "steps", "commit"};
    for (size_t i = 0; i < fits.size(); ++i) {
        const auto& f = fits[i];
        std::string coeffs;
        for (double c : f.fit.coefficients) coeffs += (coeffs.empty() ? "" : " ") + format_number("%.6e", c);
        t.rows.push_back({pipe.label, f.name, std::to_string(f.points), format_number("%.4f", f.fit.r2),
                          format_number("%.4g", f.x_min) + " .. " + format_number("%.4g", f.x_max),
                          format_number("%.4g", f.y_min) + " .. " + format_number("%.4g", f.y_max), coeffs, int(i) == chosen ? "*" : "",
                          std::to_string(x.sampling.steps), build_commit()});
    }
    print_table(t, o.format, std::cout);
    const auto& best = fits[size_t(chosen)];
    if (!o.out.empty()) {
        write_atomically(o.out, coefficient_file(best, x, pipe));
        if (!o.quiet)
            std::cerr << "profdit calibrate teacache: wrote " << o.out << " (indicator " << best.name << ", R^2 " << format_number("%.4f", best.fit.r2)
                      << "); use it as {name: teacache, coefficients: " << o.out << ", threshold: ...}\n";
    } else if (!o.quiet) {
        std::cerr << "profdit calibrate teacache: no --out given, no coefficient file written\n";
    }
    return 0;
}

// MagCache: the magnitude ratios of the whole stack's residual per step and branch, averaged over the
// experiment's (prompt, seed) runs, with the schedule's sigmas so another step count can use them.
int run_calibrate_magcache(const CalibrateOptions& o) {
    check_format(o.format);
    const auto x = run::load_experiment(o.experiment, o.set);
    if (x.sampling.steps < 2) input_error(x.path + ": sampling: steps " + std::to_string(x.sampling.steps) + " gives no ratio; MagCache needs at least 2");
    if (!o.out.empty()) check_writable(o.out);

    torch::NoGradGuard no_grad;
    set_cpu_threads(x.model.threads);
    const auto pipe = run::load_pipeline(x.model, x.path);
    profile::MagRatioRecorder rec(x.sampling.steps, int(pipe.dit->num_blocks()));
    const auto sigmas = uncached_runs(x, pipe, "magcache", o.quiet, [&](sampling::CachedDenoiser& d) { d.observe(&rec); }).sigmas;
    const auto name = o.out.empty() ? std::string("magcache") : std::filesystem::path(o.out).stem().string();
    const auto r    = rec.ratios(sigmas, name);
    Table t;
    t.columns = {"step", "sigma", "cond", "uncond"};
    for (size_t s = 0; s < r.sigmas.size(); ++s)
        t.rows.push_back({std::to_string(s), format_number("%.6f", r.sigmas[s]), format_number("%.6f", r.ratios[0][s]),
                          format_number("%.6f", r.ratios[1][s])});
    print_table(t, o.format, std::cout);
    if (!o.out.empty()) {
        YAML::Node src;
        src["model"]      = pipe.fingerprint;
        src["experiment"] = x.path;
        src["prompts"]    = x.prompts.size();
        src["seeds"]      = x.seeds;
        src["solver"]     = x.sampling.solver;
        src["steps"]      = x.sampling.steps;
        src["shift"]      = x.sampling.shift;
        src["guide"]      = x.sampling.guide;
        src["commit"]     = build_commit();
        write_atomically(o.out, policies::magcache_file_text(r, src));
        if (!o.quiet) std::cerr << "profdit calibrate magcache: wrote " << o.out << "; use it as {name: magcache, ratios: " << o.out << ", threshold: ...}\n";
    } else if (!o.quiet) {
        std::cerr << "profdit calibrate magcache: no --out given, no ratio file written\n";
    }
    return 0;
}

}  // namespace

Command add_calibrate(CLI::App& app) {
    auto  o   = std::make_shared<CalibrateOptions>();
    auto* cmd = app.add_subcommand("calibrate", "fit cache-policy parameters on this model");
    cmd->require_subcommand(1);
    auto* tc = cmd->add_subcommand("teacache", "fit TeaCache's 4th-order polynomial (indicator change -> output change) on an experiment's "
                                               "uncached runs; its policies are ignored");
    tc->add_option("experiment", o->experiment, "experiment YAML (model, sampling, prompts, seeds)")->required();
    tc->add_option("--set", o->set, "override a key: a.b=value (repeatable)");
    tc->add_option("--out", o->out, "coefficient file (YAML) to write for the chosen indicator");
    tc->add_option("--indicator", o->indicator, "e | e0 | modulated_input | best (highest R^2)")->capture_default_str();
    tc->add_option("--branches", o->branches, "cond | both: which CFG branches give points")->capture_default_str();
    tc->add_option("--format", o->format, "result table: md | csv | json")->capture_default_str();
    tc->add_flag("--quiet", o->quiet, "no progress on stderr");
    auto  m  = std::make_shared<CalibrateOptions>();
    auto* mc = cmd->add_subcommand("magcache", "measure MagCache's magnitude ratios (per step and CFG branch, with the schedule's sigmas) on an "
                                               "experiment's uncached runs; its policies are ignored");
    mc->add_option("experiment", m->experiment, "experiment YAML (model, sampling, prompts, seeds)")->required();
    mc->add_option("--set", m->set, "override a key: a.b=value (repeatable)");
    mc->add_option("--out", m->out, "ratio file (YAML) to write");
    mc->add_option("--format", m->format, "result table: md | csv | json")->capture_default_str();
    mc->add_flag("--quiet", m->quiet, "no progress on stderr");
    return {cmd, [o, m, mc] { return mc->parsed() ? run_calibrate_magcache(*m) : run_calibrate(*o); }};
}

}  // namespace profdit::cli
