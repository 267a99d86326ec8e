#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "run/experiment.h"
#include "sampling/decoder.h"
#include "sampling/text_encoder.h"
#include "wan/dit.h"

namespace profdit::run {

// Everything a run needs from a model, whatever it is: the DiT, the text encoder (prompt and negative
// prompt), the decoder, the latent shape and, where the model's world has one, a foreground mask source.
struct Pipeline {
    std::string                            label;        // "sprites-tiny", a folder name, ...
    std::string                            fingerprint;  // label + FNV-1a 64 of the weight files: which weights produced a file
    wan::WanModel                          dit{nullptr};
    std::shared_ptr<sampling::TextEncoder> text;
    std::shared_ptr<sampling::Decoder>     decoder;
    std::vector<int64_t>                   latent_shape;  // [C, F, H, W]
    std::string                            negative_prompt;
    // frames [F, 3, H, W] in [-1, 1] + prompt -> uint8 [F, H, W] foreground mask ("gt" source); empty when none.
    std::function<torch::Tensor(const torch::Tensor&, const std::string&)> foreground_mask;
    std::string                            mask_source;  // "gt" (caption detector) or ""
    bool                                   random_weights = false;  // init: random: quality numbers mean nothing

    torch::Device device() const { return dit->device(); }
};

// data/models/<preset>: PROFDIT_DATA when set, else the source tree's data/ folder.
std::string preset_dir(const std::string& preset);

// FNV-1a 64 over the bytes of the files, as 16 hex digits. Files over 64 MiB (real checkpoints) contribute
// their size and three 1 MiB samples (start, middle, end) instead of every byte.
std::string file_fingerprint(const std::vector<std::string>& files);

// Loads `model:`; InputError naming the experiment file for an unknown preset or a missing folder. Wan
// models (checkpoint:, or config: with init: random) get Wan2.1's negative prompt and the video size.
Pipeline load_pipeline(const ModelSpec& spec, const std::string& source);

}  // namespace profdit::run
