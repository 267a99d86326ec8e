#pragma once

#include <map>
#include <optional>
#include <string>

#include <torch/torch.h>

#include "io/safetensors.h"
#include "wan/config.h"
#include "wan/dit.h"
#include "wan/key_map.h"

namespace profdit::wan {

// What a DiT weight file holds, read from its header alone.
struct DiTCheckpointInfo {
    std::string                    path;
    KeyFormat                      format = KeyFormat::official;
    ShapeMap                       shapes;        // official key names
    std::map<std::string, int64_t> dtype_params;  // "F32" -> parameter count
    std::map<std::string, std::string> metadata;  // safetensors __metadata__ (WanConfig::kMetadataKey: profdit's config)
    int64_t                        num_params = 0;
};

DiTCheckpointInfo inspect_dit(const io::SafetensorsReader& reader);

// Loads a DiT from safetensors (single file or sharded index, official or diffusers names, F32/F16/BF16).
// With `config` the weights are checked against it; otherwise the configuration is detected from the
// weights. Missing, unexpected or mis-shaped keys are one InputError naming them.
WanModel load_dit(const std::string& weights_path, const std::optional<WanConfig>& config, const torch::Device& device,
                  torch::ScalarType compute_dtype = torch::kFloat32);

// Seeded random weights for latency work without a checkpoint (the parity data's recipe): modulation
// randn/sqrt(dim), norm weights 1 + 0.1 randn, biases 0.1 randn, other weights randn/sqrt(fan_in).
// Parameters are visited in sorted key order, so the result depends only on the config and the seed.
void init_random(WanModel& model, uint64_t seed);

// Wan2.1's training initialisation (WanModel.init_weights and the modules' constructors): Linear weights
// xavier_uniform and biases 0, the patch embedding xavier_uniform over weight.flatten(1) with Conv3d's
// default bias U(+-1/sqrt(fan_in)), text and time embedding weights N(0, 0.02), the head's output weight 0,
// modulation randn/sqrt(dim), norm weights 1 and biases 0. Visited in sorted key order, seeded.
void init_weights(WanModel& model, uint64_t seed);

// Writes the model's weights (f32) with official or diffusers key names, and its config in the metadata.
void save_dit(WanModel& model, const std::string& path, KeyFormat format);

}  // namespace profdit::wan
