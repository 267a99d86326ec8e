#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sampling/cfg_loop.h"
#include "sampling/decoder.h"
#include "wan/dit.h"
#include "world/caption_encoder.h"
#include "world/detector.h"

namespace profdit::world {

// The negative prompt of a captioned video: the empty caption (Wan's CFG), or the caption with every sprite's
// direction reversed, so that guidance pushes along the direction alone.
enum class NegativePrompt { empty, opposite_direction };
NegativePrompt negative_prompt_named(const std::string& name, const std::string& where);  // "empty" | "opposite"; InputError naming `where`
std::string    negative_caption(const std::string& caption, NegativePrompt negative, const WorldConfig& cfg);

// A trained world model folder (data/models/sprites-tiny): config.json (dit, world, text_encoder,
// vocabulary), dit.safetensors, text_encoder.safetensors. Pixel space: identity decoder.
struct EmbeddedModel {
    WorldConfig                       world;
    wan::WanModel                     dit{nullptr};
    std::shared_ptr<WorldTextEncoder> text;
    sampling::IdentityDecoder         decoder;
    sampling::SampleOptions           sampling;  // what it is meant to be sampled with: config.json's "sampling" (50 UniPC steps, shift 3, guidance 1.5 if absent)
    NegativePrompt                    negative = NegativePrompt::empty;  // config.json's "sampling": {"negative": "empty" | "opposite"}

    // InputError naming the file and key. The DiT runs on `device` in `dtype`; the caption encoder on the CPU.
    static EmbeddedModel load(const std::string& dir, const torch::Device& device = torch::kCPU,
                              torch::ScalarType dtype = torch::kFloat32);
};

// One captioned video: noise from `seed` [3, F, H, W], the CFG loop with the caption and the model's
// negative prompt, identity decode -> frames [F, 3, H, W] in [-1, 1].
torch::Tensor generate_video(EmbeddedModel& m, const std::string& caption, uint64_t seed, const sampling::SampleOptions& opt);

// The quality gates on `pairs` held-out (caption, seed) pairs: rates of sprite present, background
// right, direction right and all three.
struct GateRates {
    int    videos = 0;
    double sprite = 0, background = 0, direction = 0, all = 0;
    double shape = 0;       // share of videos whose sprite is present with the captioned shape
    double size_error = 0;  // mean size error (pixels outside [sprite_min, sprite_max]) over videos with the sprite
    // worlds with heading only (else 0): the share of videos whose sprite shows the captioned heading, and of the
    // videos where both a heading and a motion are seen, the share whose motion follows the heading (one sprite)
    double heading = 0, motion_follows_heading = 0;
    std::vector<double> blob_by_frame;  // [F]: the share of videos whose blob passes in each frame (a mid-video fade shows here)
};
GateRates evaluate_gates(EmbeddedModel& m, int pairs, const sampling::SampleOptions& opt, std::vector<torch::Tensor>* videos = nullptr,
                         std::vector<std::string>* captions = nullptr);
std::string held_out_caption(const WorldConfig& cfg, int i);  // the i-th held-out pair's caption (its seed is i)
Scene       held_out_scene(const WorldConfig& cfg, int i);    // its ground truth: the caption placed with seed i

// Controllability: for seeds 0..seeds-1, the held-out caption of that seed with each of the world's
// direction words in turn, and what the detector saw in each video: does the word or the noise set the motion?
struct Controllability {
    std::vector<std::string>              words;     // the world's direction words, the columns
    std::vector<std::string>              captions;  // [seed]: its held-out caption, the direction word as '*'
    std::vector<std::vector<std::string>> motion;    // [seed][word]: where the sprite moved ("" when no motion passed)
    std::vector<std::vector<std::string>> heading;   // [seed][word]: where its nose pointed ("" when none was seen)
    double rate() const;                 // the share of videos moving in the captioned direction
    int    seeds_ignoring_word() const;  // seeds whose videos all moved one way whatever the word
};
Controllability evaluate_controllability(EmbeddedModel& m, int seeds, const sampling::SampleOptions& opt);

}  // namespace profdit::world
