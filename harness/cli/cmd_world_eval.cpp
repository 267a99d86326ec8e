#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "common/threads.h"
#include "cli/table.h"
#include "common/build_info.h"
#include "common/error.h"
#include "common/format.h"
#include "world/caption_probe.h"
#include "world/embedded_model.h"
#ifdef PROFDIT_HAVE_OPENCV
#include "world/frame_strip.h"
#endif

namespace profdit::cli {

namespace {

struct WorldEvalOptions {
    std::string             model = "data/models/sprites-tiny", strip;
    int                     pairs = 16, threads = 0, controllability = 0;
    bool                    probe = false;
    std::string             solver, negative;
    int                     steps = 0;
    double                  shift = -1, guide = -1, early_guide = -1, early_sigma = -1;
};

// "1.5", "1.5 (4 at sigma >= 0.9)", "1.5 against the opposite direction"
std::string guidance_text(const sampling::SampleOptions& opt, world::NegativePrompt negative) {
    std::string s = format_number("%g", opt.guide);
    if (opt.early_guide > 0) s += " (" + format_number("%g", opt.early_guide) + " at sigma >= " + format_number("%g", opt.early_sigma) + ")";
    if (negative == world::NegativePrompt::opposite_direction) s += " against the opposite direction";
    return s;
}

int run_world_eval(const WorldEvalOptions& o) {
    set_cpu_threads(o.threads);
    auto                     m = world::EmbeddedModel::load(o.model);
    if (!o.negative.empty()) m.negative = world::negative_prompt_named(o.negative, "--negative");
    auto                     opt = m.sampling;  // the model's own settings unless given
    if (!o.solver.empty()) opt.solver = o.solver;
    if (o.steps > 0) opt.steps = o.steps;
    if (o.shift > 0) opt.shift = o.shift;
    if (o.guide >= 0) opt.guide = o.guide;
    if (o.early_guide >= 0) opt.early_guide = o.early_guide;
    if (o.early_sigma >= 0) opt.early_sigma = o.early_sigma;
    if (o.probe) {
        Table t;
        t.columns = {"model", "pairs", "sigma", "loss", "direction reversed", "other colour", "other background", "empty caption", "frames shuffled", "commit"};
        for (const auto& r : world::probe_captions(m, o.pairs, {0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.995}))
            t.rows.push_back({o.model, std::to_string(o.pairs), format_number("%.3f", r.sigma), format_number("%.4f", r.loss_true),
                              format_number("%+.4f", r.gap_direction), format_number("%+.4f", r.gap_colour),
                              format_number("%+.4f", r.gap_background), format_number("%+.4f", r.gap_empty),
                              format_number("%+.4f", r.gap_shuffled), build_commit()});
        print_table(t, "md", std::cout);
        return 0;
    }
    if (o.controllability > 0) {
        const auto c = world::evaluate_controllability(m, o.controllability, opt);
        Table      t;
        t.columns = {"model", "seeds", "videos", "solver", "steps", "shift", "guide", "captioned direction", "seeds ignoring the word", "commit"};
        t.rows.push_back({o.model, std::to_string(o.controllability), std::to_string(o.controllability * int(c.words.size())),
                          opt.solver, std::to_string(opt.steps), format_number("%g", opt.shift), guidance_text(opt, m.negative),
                          format_number("%.3f", c.rate()), std::to_string(c.seeds_ignoring_word()), build_commit()});
        print_table(t, "md", std::cout);
        Table per_seed;  // what moved where, per seed (the noise) and word: a row of one direction is the noise's choice
        per_seed.columns = {"seed", "caption"};
        for (const auto& w : c.words) per_seed.columns.push_back(w);
        for (size_t i = 0; i < c.captions.size(); ++i) {
            per_seed.rows.push_back({std::to_string(i), c.captions[i]});
            for (size_t w = 0; w < c.words.size(); ++w) {
                const std::string moved = c.motion[i][w].empty() ? "-" : c.motion[i][w];
                per_seed.rows.back().push_back(m.world.heading ? moved + " (nose " + (c.heading[i][w].empty() ? "-" : c.heading[i][w]) + ")" : moved);
            }
        }
        std::cout << "\n";
        print_table(per_seed, "md", std::cout);
        return 0;
    }
    std::vector<torch::Tensor> videos;
    std::vector<std::string>   captions;
    const auto r = world::evaluate_gates(m, o.pairs, opt, &videos, &captions);
    Table t;
    t.columns = {"model", "pairs", "solver", "steps", "shift", "guide", "sprite", "background", "direction", "all", "shape",
                 "size error px", "commit"};
    t.rows.push_back({o.model, std::to_string(r.videos), opt.solver, std::to_string(opt.steps), format_number("%g", opt.shift),
                      guidance_text(opt, m.negative), format_number("%.3f", r.sprite), format_number("%.3f", r.background),
                      format_number("%.3f", r.direction), format_number("%.3f", r.all), format_number("%.3f", r.shape),
                      format_number("%.2f", r.size_error), build_commit()});
    if (m.world.heading) {  // the nose on the captioned side; the motion following the nose (videos showing both)
        t.columns.insert(t.columns.end() - 1, {"heading", "motion follows heading"});
        t.rows[0].insert(t.rows[0].end() - 1, {format_number("%.3f", r.heading), format_number("%.3f", r.motion_follows_heading)});
    }
    std::vector<std::string> by_frame;  // the mid-video fade: blob present per frame index
    for (double b : r.blob_by_frame) by_frame.push_back(format_number("%.2f", b));
    t.columns.insert(t.columns.end() - 1, "blob per frame");
    t.rows[0].insert(t.rows[0].end() - 1, join(by_frame, " "));
    print_table(t, "md", std::cout);
    if (!o.strip.empty()) {
#ifdef PROFDIT_HAVE_OPENCV
        videos.resize(std::min<size_t>(videos.size(), 8));
        for (size_t i = 0; i < videos.size(); ++i)  // the sample, then its ground truth
            videos[i] = torch::cat({videos[i], world::render(world::held_out_scene(m.world, int(i)), m.world).frames});  // [2F, 3, H, W]
        world::write_frame_strip(o.strip, videos);
        for (size_t i = 0; i < videos.size(); ++i) std::cerr << "strip row " << i << ": " << captions[i] << "\n";
#else
        input_error("--strip needs a build with OpenCV");
#endif
    }
    return 0;
}

}  // namespace

Command add_world_eval(CLI::App& app) {
    auto  o   = std::make_shared<WorldEvalOptions>();
    auto* cmd = app.add_subcommand("world-eval", "sample held-out (caption, seed) pairs from a world model and score them with the strict detector");
    cmd->add_option("--model", o->model, "model folder (config.json, dit.safetensors, text_encoder.safetensors)")->capture_default_str();
    cmd->add_option("--pairs", o->pairs, "held-out pairs")->check(CLI::PositiveNumber)->capture_default_str();
    cmd->add_option("--solver", o->solver, "unipc | dpm++ | euler (default: the model's config.json sampling settings)");
    cmd->add_option("--steps", o->steps, "sampling steps (default: the model's)");
    cmd->add_option("--shift", o->shift, "flow shift (default: the model's)");
    cmd->add_option("--guide", o->guide, "guidance scale (default: the model's)");
    cmd->add_option("--early-guide", o->early_guide, "guidance scale of the early steps, sigma >= --early-sigma (0: --guide everywhere)");
    cmd->add_option("--early-sigma", o->early_sigma, "the noise level down to which --early-guide applies (default 0.9)");
    cmd->add_option("--negative", o->negative, "negative prompt: empty (Wan's CFG) | opposite (the caption with its direction reversed; default: "
                    "the model's)");
    cmd->add_option("--strip", o->strip, "write the first 8 videos as a PNG frame strip: per row the sample's frames, then its ground truth's (the "
                    "caption rendered at the pair's seed)");
    cmd->add_option("--threads", o->threads, "CPU threads (0: default)");
    cmd->add_option("--controllability", o->controllability,
                    "instead of the held-out pairs: N seeds x every direction word of the same caption; the share moving as captioned, and per "
                    "seed where each word's video moved (and, in heading worlds, where its nose pointed)");
    cmd->add_flag("--probe-captions", o->probe,
                  "instead of sampling: the relative loss increase per noise level when the caption's direction, colour or "
                  "background is changed (does the model use each word?)");
    return {cmd, [o] { return run_world_eval(*o); }};
}

}  // namespace profdit::cli
