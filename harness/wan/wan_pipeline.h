#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "sampling/decoder.h"
#include "sampling/text_encoder.h"
#include "wan/config.h"
#include "wan/dit.h"

namespace profdit::wan {

// The two ways a Wan2.1 text-to-video checkpoint folder is laid out on the hub.
//  diffusers: model_index.json and/or transformer/ text_encoder/ vae/ tokenizer/ (all safetensors,
//             possibly sharded with *.index.json).
//  official:  diffusion_pytorch_model*.safetensors[.index.json] (+ config.json), models_t5_umt5-xxl-enc-bf16.pth
//             (or a .safetensors conversion next to it), Wan2.1_VAE.pth (or .safetensors), google/umt5-xxl/.
enum class CheckpointLayout { official, diffusers };
const char* layout_name(CheckpointLayout l);

// Where each component of a checkpoint folder lives. Weight paths are a .safetensors file, a
// *.safetensors.index.json, or (official text encoder / VAE only) a .pth that the loaders refuse with
// their conversion message.
struct CheckpointFiles {
    std::string      dir;
    CheckpointLayout layout = CheckpointLayout::official;
    std::string      dit, dit_config;  // dit_config: config.json next to the weights, "" when absent
    std::string      text_encoder, vae;
    std::string      tokenizer;        // the tokenizer folder (spiece.model inside)

    // Every weight file (shards resolved through their index), for fingerprinting.
    std::vector<std::string> weight_files() const;
};

// Sniffs `dir` in a fixed order: diffusers layout (model_index.json or transformer/), then the official
// one. A missing component is one InputError naming the folder and every name looked for.
CheckpointFiles find_checkpoint(const std::string& dir);

// The files of one weight path: itself, or the shards its index lists (absolute, sorted, unique).
std::vector<std::string> weight_shards(const std::string& path);

// Named configurations: "wan2.1-t2v-1.3b", "wan2.1-t2v-14b"; anything else is read as a JSON file
// (profdit, official or diffusers form). InputError naming `source` otherwise.
WanConfig   named_config(const std::string& name_or_path, const std::string& source);
const std::vector<std::string>& config_names();

// Wan2.1's default negative prompt (wan/configs/shared_config.py sample_neg_prompt), used when none is given.
const std::string& wan21_negative_prompt();

// Latent [16, 1 + (frames-1)/4, height/8, width/8] of a video size; InputError naming `where` (file, key,
// value) unless frames = 4n+1 >= 1 and height, width are positive multiples of 16.
std::vector<int64_t> wan21_latent_shape(int64_t frames, int64_t height, int64_t width, const std::string& where);

// What a run needs from a Wan2.1 model.
struct WanParts {
    WanModel                               dit{nullptr};
    std::shared_ptr<sampling::TextEncoder> text;
    std::shared_ptr<sampling::Decoder>     decoder;
};

// Loads every component of a checkpoint folder: the DiT in `dtype` (bf16: the reference's precision
// split), umT5 in `dtype` (bf16 is how it ships; fp32 output), the VAE decoder in fp32.
WanParts load_wan_checkpoint(const CheckpointFiles& files, const torch::Device& device, torch::ScalarType dtype);

// Seeded random weights at a real configuration, for latency work without downloading a checkpoint:
// the DiT from init_random(seed), a RandomTextEncoder(seed + 1) instead of umT5 (the 5.7B encoder is
// not built) and the Wan2.1 VAE decoder at its real configuration with seeded random weights (seed + 2).
WanParts init_random_wan(const WanConfig& config, uint64_t seed, const torch::Device& device, torch::ScalarType dtype);

// Seeded random weights for the VAE decoder (the DiT's init_random recipe: norm gains 1 + 0.1 randn,
// biases 0.1 randn, weights randn / sqrt(fan_in)); parameters visited in sorted key order.
void init_random_vae(torch::nn::Module& vae, uint64_t seed);

// umT5 as a sampling::TextEncoder: tokenize (padded/truncated to text_len), encode on all text_len
// positions with the mask, return the rows of the real tokens (tokens + EOS) in f32: [L, text_dim].
class UMT5TextEncoder : public sampling::TextEncoder {
  public:
    struct Impl;
    UMT5TextEncoder(std::shared_ptr<Impl> impl);
    ~UMT5TextEncoder() override;
    torch::Tensor encode(const std::string& prompt) override;

  private:
    std::shared_ptr<Impl> impl_;
};

// Stand-in text encoder for random-weight runs: per prompt, rows [L, text_dim] of N(0, 1) from a
// generator seeded by (seed, FNV-1a of the prompt); L = words + 1 (an EOS row), at most text_len.
class RandomTextEncoder : public sampling::TextEncoder {
  public:
    RandomTextEncoder(int64_t text_dim, int64_t text_len, uint64_t seed) : text_dim_(text_dim), text_len_(text_len), seed_(seed) {}
    torch::Tensor encode(const std::string& prompt) override;

  private:
    int64_t  text_dim_, text_len_;
    uint64_t seed_;
};

// One row of `profdit info` per component, read from file headers only.
struct ComponentInfo {
    std::string component;  // dit | text_encoder | vae | tokenizer
    std::string files;      // path (or "N shards: first ...")
    std::string variant;    // detected config in words
    std::string key_format; // official | diffusers | hf | sentencepiece | pth (unconverted)
    std::string layers;     // "" where it does not apply
    int64_t     params = 0;
    std::string dtypes;     // "BF16:123 F32:4"
};
std::vector<ComponentInfo> inspect_checkpoint(const CheckpointFiles& files);
// The DiT row alone (a weight file or index; config_json "" = detect from the weights).
ComponentInfo inspect_dit_component(const std::string& weights, const std::string& config_json);

}  // namespace profdit::wan
