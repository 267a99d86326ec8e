#include "world/embedded_model.h"

#include <algorithm>

#include "common/error.h"
#include "io/json_file.h"
#include "io/safetensors.h"
#include "wan/checkpoint.h"
#include "world/world_json.h"

namespace profdit::world {

NegativePrompt negative_prompt_named(const std::string& name, const std::string& where) {
    if (name == "empty") return NegativePrompt::empty;
    if (name == "opposite") return NegativePrompt::opposite_direction;
    input_error(where + ": unknown negative prompt '" + name + "' (accepted: empty, opposite)");
}

std::string negative_caption(const std::string& text, NegativePrompt negative, const WorldConfig& cfg) {
    if (negative == NegativePrompt::empty) return "";
    auto scene = parse_caption(text, cfg);
    for (auto& s : scene.sprites) s.direction = opposite_direction(s.direction);
    return caption(scene);
}

EmbeddedModel EmbeddedModel::load(const std::string& dir, const torch::Device& device, torch::ScalarType dtype) {
    const std::string cfg_path = dir + "/config.json";
    const auto        j        = io::read_json_file(cfg_path);
    for (const char* k : {"dit", "world", "text_encoder", "vocabulary"})
        if (!j.contains(k)) input_error(cfg_path + ": missing key '" + std::string(k) + "'");
    EmbeddedModel m;
    m.world = world_from_json(j["world"], cfg_path);
    m.sampling.steps = 50, m.sampling.shift = 3.0, m.sampling.guide = 1.5;
    if (j.contains("sampling")) {
        const auto& s = j["sampling"];
        m.sampling.solver = s.value("solver", m.sampling.solver);
        m.sampling.steps  = s.value("steps", m.sampling.steps);
        m.sampling.shift  = s.value("shift", m.sampling.shift);
        m.sampling.guide  = s.value("guide", m.sampling.guide);
        m.negative        = negative_prompt_named(s.value("negative", std::string("empty")), cfg_path + ": key 'sampling.negative'");
    }
    const auto dit_cfg = wan::WanConfig::from_json(j, cfg_path);
    m.dit              = wan::load_dit(dir + "/dit.safetensors", dit_cfg, device, dtype);
    m.dit->eval();
    CaptionTokenizer tok(m.world);
    if (j["vocabulary"] != nlohmann::json(tok.words()))
        input_error(cfg_path + ": key 'vocabulary' does not match the world's caption grammar");
    CaptionEncoder enc(tok.vocab_size(), dit_cfg.text_dim, dit_cfg.text_len, j["text_encoder"].value("layers", 2),
                       j["text_encoder"].value("heads", 4));
    io::SafetensorsReader r(dir + "/text_encoder.safetensors");
    torch::NoGradGuard    ng;
    for (auto& p : enc->named_parameters()) {
        auto t = r.load(p.key());
        if (t.sizes() != p.value().sizes()) input_error(r.path() + ": tensor '" + p.key() + "' has the wrong shape");
        p.value().copy_(t);
    }
    enc->eval();
    m.text = std::make_shared<WorldTextEncoder>(tok, enc);
    return m;
}

torch::Tensor generate_video(EmbeddedModel& m, const std::string& caption, uint64_t seed, const sampling::SampleOptions& opt) {
    torch::NoGradGuard ng;
    const auto dev   = m.dit->device();
    auto       noise = sampling::seeded_noise({3, m.world.frames, m.world.height, m.world.width}, seed).to(dev);  // [3, F, H, W]
    auto       cond   = m.dit->condition(m.text->encode(caption), noise.sizes());
    auto       uncond = m.dit->condition(m.text->encode(negative_caption(caption, m.negative, m.world)), noise.sizes());
    sampling::PlainDenoiser d(m.dit);
    auto o      = opt;
    o.keep_steps = false;
    auto res = sampling::sample_cfg(d, noise, cond, uncond, o);
    return m.decoder.decode(res.final_latent);  // [F, 3, H, W]
}

std::string held_out_caption(const WorldConfig& cfg, int i) { return caption(sample_scene(cfg, 4000000000ull + uint64_t(i))); }

Scene held_out_scene(const WorldConfig& cfg, int i) { return place_scene(parse_caption(held_out_caption(cfg, i), cfg), cfg, uint64_t(i)); }

Controllability evaluate_controllability(EmbeddedModel& m, int seeds, const sampling::SampleOptions& opt) {
    Controllability c;
    c.words = m.world.directions;
    for (int i = 0; i < seeds; ++i) {
        auto scene = parse_caption(held_out_caption(m.world, i), m.world);
        scene.sprites[0].direction = "*";
        c.captions.push_back(caption(scene));
        c.motion.emplace_back();
        c.heading.emplace_back();
        for (const auto& w : c.words) {
            scene.sprites[0].direction = w;
            const auto text = caption(scene);
            const auto d    = detect(generate_video(m, text, uint64_t(i), opt), text, m.world);
            c.motion.back().push_back(d.direction_seen);
            c.heading.back().push_back(d.heading_seen);
        }
    }
    return c;
}

double Controllability::rate() const {
    int right = 0, videos = 0;
    for (const auto& row : motion)
        for (size_t w = 0; w < row.size(); ++w) right += row[w] == words[w], ++videos;
    return videos ? double(right) / videos : 0.0;
}

int Controllability::seeds_ignoring_word() const {
    int n = 0;
    for (const auto& row : motion)
        n += !row.empty() && !row[0].empty() && std::all_of(row.begin(), row.end(), [&](const std::string& s) { return s == row[0]; });
    return n;
}

GateRates evaluate_gates(EmbeddedModel& m, int pairs, const sampling::SampleOptions& opt, std::vector<torch::Tensor>* videos,
                         std::vector<std::string>* captions) {
    GateRates r;
    int       both_seen = 0;
    r.blob_by_frame.assign(size_t(m.world.frames), 0.0);
    for (int i = 0; i < pairs; ++i) {
        const auto c = held_out_caption(m.world, i);
        auto       v = generate_video(m, c, uint64_t(i), opt);
        const auto d = detect(v, c, m.world);
        r.sprite += d.sprite_present, r.background += d.background_ok, r.direction += d.direction_ok, r.all += d.all();
        r.shape += d.shape_ok;
        r.heading += d.heading_ok;
        if (!d.heading_seen.empty() && !d.direction_seen.empty()) {
            ++both_seen;
            r.motion_follows_heading += d.direction_seen == d.heading_seen;
        }
        if (d.sprite_present) r.size_error += d.size_error;
        for (size_t f = 0; f < d.blob_in_frame.size(); ++f) r.blob_by_frame[f] += d.blob_in_frame[f];
        if (videos) videos->push_back(v);
        if (captions) captions->push_back(c);
    }
    r.videos = pairs;
    if (r.sprite > 0) r.size_error /= r.sprite;
    if (both_seen) r.motion_follows_heading /= both_seen;
    if (pairs) r.heading /= pairs;
    for (auto& b : r.blob_by_frame) b /= std::max(1, pairs);
    if (pairs) r.sprite /= pairs, r.background /= pairs, r.direction /= pairs, r.all /= pairs, r.shape /= pairs;
    return r;
}

}  // namespace profdit::world
