#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace profdit::wan {

using ShapeMap = std::map<std::string, std::vector<int64_t>>;  // official key name -> shape

struct WanConfig {
    std::string             model_type      = "t2v";  // t2v | i2v
    std::array<int64_t, 3>  patch_size      = {1, 2, 2};
    int64_t                 text_len        = 512;
    int64_t                 in_dim          = 16;
    int64_t                 dim             = 1536;
    int64_t                 ffn_dim         = 8960;
    int64_t                 freq_dim        = 256;
    int64_t                 text_dim        = 4096;
    int64_t                 out_dim         = 16;
    int64_t                 num_heads       = 12;
    int64_t                 num_layers      = 30;
    std::array<int64_t, 2>  window_size     = {-1, -1};
    bool                    qk_norm         = true;
    bool                    cross_attn_norm = true;
    double                  eps             = 1e-6;

    int64_t head_dim() const { return dim / num_heads; }
    int64_t patch_volume() const { return patch_size[0] * patch_size[1] * patch_size[2]; }

    // Accepts a profdit config ({"dit": {...}}), an official Wan config.json (flat) or a diffusers
    // WanTransformer3DModel config.json. Unknown keys and bad values are InputErrors naming `source`.
    static WanConfig from_json(const nlohmann::json& j, const std::string& source);
    static WanConfig from_json_file(const std::string& path);
    // The shapes and key presence of the weights, for checks; num_heads and text_len are NOT in the
    // weights (they stay at the 1.3B defaults here): from_weights is the way to get a whole config.
    static WanConfig detect_from_weights(const ShapeMap& shapes, const std::string& source);

    // The configuration of a DiT weight file given no config file: the one profdit wrote into the file's
    // safetensors metadata (kMetadataKey, checked against the shapes), else an official Wan2.1 size
    // recognised by all its shapes (T2V-1.3B: 12 heads, T2V-14B: 40 heads; text_len 512). Anything else is
    // an InputError naming the file and what is missing. `how` (optional) says which of the two it was.
    static WanConfig from_weights(const ShapeMap& shapes, const std::map<std::string, std::string>& metadata,
                                  const std::string& source, std::string* how = nullptr);
    static constexpr const char* kMetadataKey = "profdit.dit_config";
    // {kMetadataKey: {"dit": to_json()}}, for io::write_safetensors next to the weights.
    std::map<std::string, std::string> metadata() const;

    // Throws naming the first key where the weights disagree with this config.
    void check_against_weights(const ShapeMap& shapes, const std::string& source) const;
    void validate(const std::string& source) const;

    std::string    variant() const;  // "Wan2.1-T2V-1.3B", "Wan2.1-T2V-14B", "Wan2.1-I2V-14B" or "custom"
    nlohmann::json to_json() const;  // the keys of the {"dit": {...}} form
};

}  // namespace profdit::wan
