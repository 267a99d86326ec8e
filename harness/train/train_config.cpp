#include "train/train_config.h"

#include <algorithm>
#include <filesystem>

#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "io/yaml_options.h"
#include "world/world_json.h"

namespace profdit::train {

TrainConfig TrainConfig::from_yaml_file(const std::string& path) {
    TrainConfig c;
    io::Options top(io::load_yaml_file(path, "training config"), "train config", path);
    c.name = top.get_string("name", c.name);
    c.out  = top.get_string("output", c.out);
    c.state = top.get_string("state", c.out + ".train-state");

    io::Options w(top.get_node("world"), "world", path);
    c.world.frames     = w.get_int("frames", c.world.frames, 1, 256);
    c.world.height     = w.get_int("height", c.world.height, 8, 1024);
    c.world.width      = w.get_int("width", c.world.width, 8, 1024);
    c.world.sprite_min = w.get_int("sprite_min", c.world.sprite_min, 2, 512);
    c.world.sprite_max = w.get_int("sprite_max", c.world.sprite_max, c.world.sprite_min, 512);
    c.world.speed      = w.get_int("speed", c.world.speed, 0, 64);
    c.world.sprites    = w.get_int("sprites", c.world.sprites, 1, 4);
    c.world.border     = w.get_int("border", c.world.border, 0, 64);
    c.world.heading    = w.get_bool("heading", c.world.heading);
    c.world.wrap       = w.get_bool("wrap", c.world.wrap);
    w.finish();
    world::check_world(c.world, path);

    io::Options m(top.get_node("model"), "model", path);
    c.dit.model_type = "t2v";
    c.dit.in_dim = c.dit.out_dim = 3;
    c.dit.dim        = m.get_int("dim", 128, 8, 8192);
    c.dit.num_heads  = m.get_int("num_heads", 4, 1, 256);
    c.dit.num_layers = m.get_int("num_layers", 6, 1, 128);
    c.dit.ffn_dim    = m.get_int("ffn_dim", 4 * int(c.dit.dim), 8, 65536);
    c.dit.freq_dim   = m.get_int("freq_dim", 64, 2, 4096);
    c.dit.text_dim   = m.get_int("text_dim", 64, 8, 8192);
    c.dit.text_len   = m.get_int("text_len", 16, 2, 512);
    auto p = m.get_int_list("patch_size", 1, 64);
    if (p.empty()) p = {1, 4, 4};
    if (p.size() != 3) m.fail("patch_size", "must list 3 integers (t, h, w)");
    c.dit.patch_size = {p[0], p[1], p[2]};
    c.text_layers    = m.get_int("text_layers", int(c.text_layers), 0, 32);
    c.text_heads     = m.get_int("text_heads", int(c.text_heads), 1, 64);
    if (c.dit.text_dim % c.text_heads) m.fail("text_heads", "must divide text_dim (" + std::to_string(c.dit.text_dim) + ")");
    m.finish();
    c.dit.validate(path + ": model");

    io::Options t(top.get_node("train"), "train", path);
    c.steps            = t.get_int("steps", c.steps, 1, 100000000);
    c.batch            = t.get_int("batch", c.batch, 1, 4096);
    c.warmup           = t.get_int("warmup", c.warmup, 0, 100000000);
    c.lr               = t.get_double("lr", c.lr, 1e-8, 1.0);
    c.weight_decay     = t.get_double("weight_decay", c.weight_decay, 0.0, 1.0);
    c.grad_clip        = t.get_double("grad_clip", c.grad_clip, 0.0, 1e6);
    c.ema              = t.get_double("ema", c.ema, 0.0, 0.999999);
    c.caption_dropout  = t.get_double("caption_dropout", c.caption_dropout, 0.0, 1.0);
    c.logit_mean       = t.get_double("logit_mean", c.logit_mean, -10.0, 10.0);
    c.logit_std        = t.get_double("logit_std", c.logit_std, 0.01, 10.0);
    c.shift            = t.get_double("shift", c.shift, 0.01, 100.0);
    c.decay_start      = t.get_int("decay_start", c.decay_start, -1, c.steps);
    c.decay_to         = t.get_double("decay_to", c.decay_to, 0.0, 1.0);
    c.seed             = uint64_t(t.get_int("seed", 0, 0, 1 << 30));
    c.log_every        = t.get_int("log_every", c.log_every, 1, 1000000);
    c.checkpoint_every = t.get_int("checkpoint_every", c.checkpoint_every, 1, 100000000);
    c.threads          = t.get_int("threads", c.threads, 0, 256);
    c.workers          = t.get_int("workers", c.workers, 1, 64);
    c.device           = t.get_string("device", c.device);
    c.init             = t.get_string("init", c.init);
    c.weight_init      = t.get_choice("weight_init", c.weight_init, {"wan2.1", "synth"});
    if (c.batch % c.workers) t.fail("workers", "must divide batch (" + std::to_string(c.batch) + ")");
    if (t.has("betas")) {
        const auto b = t.get_double_list("betas");
        if (b.size() != 2 || b[0] < 0 || b[0] >= 1 || b[1] < 0 || b[1] >= 1) t.fail("betas", "must list two numbers in [0, 1)");
        c.beta1 = b[0], c.beta2 = b[1];
    }
    t.finish();

    io::Options s(top.get_node("sampling"), "sampling", path);
    c.solver       = s.get_choice("solver", c.solver, {"unipc", "dpm++", "euler"});
    c.sample_steps = s.get_int("steps", c.sample_steps, 1, 1000);
    c.sample_shift = s.get_double("shift", c.sample_shift, 0.01, 100.0);
    c.sample_guide = s.get_double("guide", c.sample_guide, 0.0, 100.0);
    c.eval_every   = s.get_int("eval_every", c.eval_every, 0, 100000000);
    c.eval_pairs   = s.get_int("eval_pairs", c.eval_pairs, 1, 100000);
    s.finish();
    top.finish();
    return c;
}

nlohmann::json TrainConfig::to_json() const {
    return {{"name", name},
            {"world", world::to_json(world)},
            {"text_encoder", {{"layers", text_layers}, {"heads", text_heads}}},
            {"train", {{"steps", steps}, {"batch", batch}, {"warmup", warmup}, {"lr", lr}, {"weight_decay", weight_decay},
                       {"grad_clip", grad_clip}, {"ema", ema}, {"caption_dropout", caption_dropout}, {"logit_mean", logit_mean},
                       {"logit_std", logit_std}, {"shift", shift}, {"decay_start", decay_start}, {"decay_to", decay_to},
                       {"seed", seed}, {"workers", workers}, {"betas", {beta1, beta2}}, {"device", device}, {"init", init},
                       {"weight_init", weight_init}}},
            {"sampling", {{"solver", solver}, {"steps", sample_steps}, {"shift", sample_shift}, {"guide", sample_guide}}}};
}

double TrainConfig::lr_at(int step) const {
    const double warm = std::min(1.0, double(step + 1) / std::max(1, warmup));
    if (decay_start < 0 || step < decay_start || steps <= decay_start) return lr * warm;
    const double f = double(step - decay_start) / double(steps - decay_start);
    return lr * warm * (1.0 - f * (1.0 - decay_to));
}

}  // namespace profdit::train
