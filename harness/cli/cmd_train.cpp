#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/table.h"
#include "common/build_info.h"
#include "common/format.h"
#include "common/progress.h"
#include "train/trainer.h"

namespace profdit::cli {

namespace {

struct TrainOptions {
    std::string config, out;
    int         steps = 0, threads = -1;
    bool        resume = false, quiet = false;
    std::string command;
};

int run_train(const TrainOptions& o) {
    auto cfg = train::TrainConfig::from_yaml_file(o.config);
    if (o.steps > 0) cfg.steps = o.steps;
    if (!o.out.empty()) cfg.out = o.out;
    if (o.threads >= 0) cfg.threads = o.threads;
    cfg.command = o.command;
    train::Trainer trainer(cfg);
    ProgressLine bar(std::cerr, ProgressLine::stderr_is_terminal());
    trainer.run(o.resume, [&](const train::StepLog& l) {
        if (!o.quiet)
            bar.update("train: step " + std::to_string(l.step) + "/" + std::to_string(cfg.steps) + " loss " + format_number("%.4f", l.loss) +
                           " lr " + format_number("%.2e", l.lr) + " " + format_number("%.1f", l.samples_per_s) + " samples/s   ",
                       l.step == cfg.steps);
    });
    const auto& losses = trainer.losses();
    double tail = 0;
    const size_t n = std::min<size_t>(losses.size(), 50);
    for (size_t i = losses.size() - n; i < losses.size(); ++i) tail += losses[i] / std::max<size_t>(n, 1);
    Table t;
    t.columns = {"model", "steps", "batch", "loss (last 50)", "output", "commit"};
    t.rows.push_back({cfg.name, std::to_string(trainer.step()), std::to_string(cfg.batch), format_number("%.4f", tail), cfg.out, build_commit()});
    print_table(t, "md", std::cout);
    return 0;
}

}  // namespace

Command add_train(CLI::App& app) {
    auto  o   = std::make_shared<TrainOptions>();
    auto* cmd = app.add_subcommand("train", "train the embedded world model (rectified flow, Wan parameterisation)");
    cmd->add_option("config", o->config, "training YAML (world, model, train, output)")->required();
    cmd->add_option("--steps", o->steps, "override train.steps");
    cmd->add_option("--out", o->out, "override output folder");
    cmd->add_option("--threads", o->threads, "override train.threads");
    cmd->add_flag("--resume", o->resume, "continue from the output folder's train state");
    cmd->add_flag("--quiet", o->quiet, "no progress on stderr");
    return {cmd, [o, cmd] {
                o->command = "profdit train " + o->config + (o->steps ? " --steps " + std::to_string(o->steps) : "") +
                             (o->out.empty() ? "" : " --out " + o->out) + (o->resume ? " --resume" : "");
                return run_train(*o);
            }};
}

}  // namespace profdit::cli
