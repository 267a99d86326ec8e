#include <chrono>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/table.h"
#include "common/build_info.h"
#include "common/device.h"
#include "common/error.h"
#include "common/format.h"
#include "common/progress.h"
#include "io/csv_log.h"
#include "train/trainer.h"
#include "world/caption_probe.h"
#include "world/embedded_model.h"

namespace profdit::cli {

namespace {

struct TrainOptions {
    std::string config, out, device;
    int         steps = 0, threads = -1, workers = 0;
    double      minutes = 0;
    bool        resume = false, quiet = false;
    std::string command;
};

// Whether the checkpoint uses each caption word where the sampler decides the motion (sigma 0.9-0.98):
// world::probe_captions on the evaluation's pairs, one row per sigma appended to STATE/probe.csv.
void append_probe_rows(const train::TrainConfig& cfg, int step, world::EmbeddedModel& m) {
    const std::vector<std::string> columns = {"step", "pairs", "sigma", "loss", "gap_direction", "gap_colour", "gap_background", "gap_empty",
                                              "gap_shuffled", "commit"};
    for (const auto& r : world::probe_captions(m, cfg.eval_pairs, {0.9, 0.95, 0.98}))
        io::append_csv_row(cfg.state + "/probe.csv", columns,
                           {std::to_string(step), std::to_string(cfg.eval_pairs), format_number("%.3f", r.sigma), format_number("%.5f", r.loss_true),
                            format_number("%.5f", r.gap_direction), format_number("%.4f", r.gap_colour), format_number("%.4f", r.gap_background),
                            format_number("%.4f", r.gap_empty), format_number("%.4f", r.gap_shuffled), build_commit()});
}

// One learning-curve row per evaluation: the checkpoint just written, sampled on held-out pairs at the
// model's own sampling settings and scored by the strict detector. Appended to STATE/curve.csv; the heading
// columns are empty for a world without heading.
void append_curve_row(const train::TrainConfig& cfg, int step, double train_seconds) {
    const auto t0 = std::chrono::steady_clock::now();
    auto m = world::EmbeddedModel::load(cfg.out, parse_device(cfg.device));
    sampling::SampleOptions opt;
    opt.solver = cfg.solver, opt.steps = cfg.sample_steps, opt.shift = cfg.sample_shift, opt.guide = cfg.sample_guide;
    const auto r = world::evaluate_gates(m, cfg.eval_pairs, opt);
    const double eval_s  = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const bool   heading = cfg.world.heading;
    const auto   rate    = [](double v) { return format_number("%.4f", v); };
    io::append_csv_row(cfg.state + "/curve.csv",
                       {"step", "train_seconds", "pairs", "sprite", "background", "direction", "all", "shape", "size_error", "heading",
                        "motion_follows_heading", "eval_seconds", "device", "commit"},
                       {std::to_string(step), format_number("%.1f", train_seconds), std::to_string(r.videos), rate(r.sprite), rate(r.background),
                        rate(r.direction), rate(r.all), rate(r.shape), format_number("%.2f", r.size_error), heading ? rate(r.heading) : "",
                        heading ? rate(r.motion_follows_heading) : "", format_number("%.1f", eval_s), cfg.device, build_commit()});
    append_probe_rows(cfg, step, m);
    std::cerr << "\ntrain: eval at step " << step << ": sprite " << format_number("%.3f", r.sprite) << " background "
              << format_number("%.3f", r.background) << " direction " << format_number("%.3f", r.direction) << " all " << format_number("%.3f", r.all);
    if (heading)
        std::cerr << " heading " << format_number("%.3f", r.heading) << " motion follows heading " << format_number("%.3f", r.motion_follows_heading);
    std::cerr << " (" << r.videos << " pairs, " << format_number("%.0f", eval_s) << " s)\n";
}

int run_train(const TrainOptions& o) {
    auto cfg = train::TrainConfig::from_yaml_file(o.config);
    if (o.steps > 0) cfg.steps = o.steps;
    if (!o.out.empty()) cfg.out = o.out, cfg.state = o.out + ".train-state";
    if (o.threads >= 0) cfg.threads = o.threads;
    if (o.workers > 0) cfg.workers = o.workers;
    if (!o.device.empty()) cfg.device = o.device;
    cfg.max_seconds = 60 * o.minutes;
    if (cfg.batch % cfg.workers) input_error("--workers " + std::to_string(cfg.workers) + " must divide the batch (" + std::to_string(cfg.batch) + ")");
    cfg.command = o.command;
    train::Trainer trainer(cfg);
    auto on_checkpoint = [&](int step, double seconds) {
        if (cfg.eval_every > 0 && (step % cfg.eval_every == 0 || step == cfg.steps)) append_curve_row(cfg, step, seconds);
    };
    ProgressLine bar(std::cerr, ProgressLine::stderr_is_terminal());
    trainer.run(
        o.resume,
        [&](const train::StepLog& l) {
            if (!o.quiet)
                bar.update("train: step " + std::to_string(l.step) + "/" + std::to_string(cfg.steps) + " loss " + format_number("%.4f", l.loss) +
                               " lr " + format_number("%.2e", l.lr) + " " + format_number("%.1f", l.samples_per_s) + " samples/s   ",
                           l.step == cfg.steps);
        },
        on_checkpoint);
    const auto& losses = trainer.losses();
    double tail = 0;
    const size_t n = std::min<size_t>(losses.size(), 50);
    for (size_t i = losses.size() - n; i < losses.size(); ++i) tail += losses[i] / std::max<size_t>(n, 1);
    Table t;
    t.columns = {"model", "steps", "batch", "workers", "device", "loss (last 50)", "train s", "output", "commit"};
    t.rows.push_back({cfg.name, std::to_string(trainer.step()), std::to_string(cfg.batch), std::to_string(cfg.workers), cfg.device,
                      format_number("%.4f", tail), format_number("%.0f", trainer.seconds()), cfg.out, build_commit()});
    print_table(t, "md", std::cout);
    return 0;
}

}  // namespace

Command add_train(CLI::App& app) {
    auto  o   = std::make_shared<TrainOptions>();
    auto* cmd = app.add_subcommand("train", "train the embedded world model (rectified flow, Wan parameterisation)");
    cmd->add_option("config", o->config, "training YAML (world, model, train, sampling, output, state)")->required();
    cmd->add_option("--steps", o->steps, "override train.steps");
    cmd->add_option("--out", o->out, "override the output folder (the state goes to OUT.train-state)");
    cmd->add_option("--threads", o->threads, "override train.threads");
    cmd->add_option("--workers", o->workers, "override train.workers (data-parallel replicas, one thread each)");
    cmd->add_option("--device", o->device, "override train.device (cpu | cuda | cuda:N)");
    cmd->add_option("--minutes", o->minutes, "stop with a checkpoint after this many minutes of training (resume later)");
    cmd->add_flag("--resume", o->resume, "continue from the state folder's train state");
    cmd->add_flag("--quiet", o->quiet, "no progress on stderr");
    return {cmd, [o, cmd] {
                o->command = "profdit train " + o->config + (o->steps ? " --steps " + std::to_string(o->steps) : "") +
                             (o->out.empty() ? "" : " --out " + o->out) + (o->workers ? " --workers " + std::to_string(o->workers) : "") +
                             (o->device.empty() ? "" : " --device " + o->device) + (o->resume ? " --resume" : "");
                return run_train(*o);
            }};
}

}  // namespace profdit::cli
