#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "wan/config.h"
#include "world/world.h"

namespace profdit::train {

// `profdit train CONFIG.yaml`: the world, the DiT and caption-encoder shapes, and the recipe
// (rectified flow in Wan's parameterisation, AdamW with warm-up, clipping, EMA with a ramp).
struct TrainConfig {
    std::string        name = "sprites-tiny";
    world::WorldConfig world;
    wan::WanConfig     dit;
    int64_t            text_layers = 2, text_heads = 4;
    int                steps = 2000, batch = 16, warmup = 100, log_every = 10, checkpoint_every = 200, threads = 0;
    int                workers = 1;  // data-parallel model replicas, one thread each; gradients summed in replica order
    double             lr = 5e-4, weight_decay = 0.01, grad_clip = 1.0, ema = 0.999, caption_dropout = 0.1;
    double             beta1 = 0.9, beta2 = 0.999;
    double             logit_mean = 0.0, logit_std = 1.0, shift = 1.0;  // s = shift(sigmoid(N(mean, std)))
    int                decay_start = -1;    // step where the learning rate starts its linear decay (-1: never)
    double             decay_to    = 0.0;   // fraction of lr reached at the last step
    uint64_t           seed = 0;
    std::string        device = "cpu";
    std::string        out = "data/models/sprites-tiny";
    std::string        init;     // a model folder (dit.safetensors, text_encoder.safetensors of the same shapes) whose weights
                                 // start the run instead of random ones: a fine-tune; "" for random weights
    std::string        weight_init = "wan2.1";  // random start: wan2.1 (Wan's init_weights) or synth (wan::init_random, the
                                                // parity data's draw, with the head's output zeroed; profdit train's only rule until 2026-12-06)
    std::string        state;    // resumable state (weights, EMA, optimizer moments, learning curve); default: out + ".train-state"
    // The settings the model is meant to be sampled with (recorded in config.json) and the learning curve's
    // evaluation: every `eval_every` steps (0: never) `eval_pairs` held-out pairs are sampled and scored.
    std::string        solver = "unipc";
    int                sample_steps = 50, eval_every = 0, eval_pairs = 16;
    double             sample_shift = 3.0, sample_guide = 1.5;
    double             max_seconds = 0;  // stop (with a checkpoint) after this much training time in this process (0: no limit)
    std::string        command;  // the command line that ran it, recorded in the checkpoint's config.json

    static TrainConfig from_yaml_file(const std::string& path);  // InputError naming file:line, key and value
    nlohmann::json     to_json() const;
    double             lr_at(int step) const;  // linear warm-up over `warmup` steps, constant, linear decay to the end

};

}  // namespace profdit::train
