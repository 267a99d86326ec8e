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
    // Everything the weights determine (shapes and key presence); num_heads = dim / 128 and text_len
    // = 512 are the Wan defaults the weights cannot tell.
    static WanConfig detect_from_weights(const ShapeMap& shapes, const std::string& source);

    // Throws naming the first key where the weights disagree with this config.
    void check_against_weights(const ShapeMap& shapes, const std::string& source) const;
    void validate(const std::string& source) const;

    std::string    variant() const;  // "Wan2.1-T2V-1.3B", "Wan2.1-T2V-14B", "Wan2.1-I2V-14B" or "custom"
    nlohmann::json to_json() const;  // the keys of the {"dit": {...}} form
};

}  // namespace profdit::wan
