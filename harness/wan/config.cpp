#include "wan/config.h"

#include <regex>
#include <set>

#include "common/error.h"
#include "io/json_file.h"

namespace profdit::wan {

namespace {

template <typename T>
T get_as(const nlohmann::json& j, const std::string& key, const std::string& source) {
    try {
        return j.at(key).get<T>();
    } catch (const nlohmann::json::exception&) {
        input_error(source + ": key '" + key + "' has an invalid value " + j.at(key).dump());
    }
}

int64_t positive(const nlohmann::json& j, const std::string& key, const std::string& source) {
    const auto& v = j.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() <= 0)
        input_error(source + ": key '" + key + "' must be a positive integer, got " + v.dump());
    return v.get<int64_t>();
}

const std::vector<int64_t>* shape_of(const ShapeMap& s, const std::string& key) {
    auto it = s.find(key);
    return it == s.end() ? nullptr : &it->second;
}

const std::vector<int64_t>& need(const ShapeMap& s, const std::string& key, const std::string& source) {
    const auto* p = shape_of(s, key);
    if (!p) input_error(source + ": missing tensor '" + key + "' (cannot detect the DiT configuration)");
    return *p;
}

}  // namespace

WanConfig WanConfig::from_json(const nlohmann::json& root, const std::string& source) {
    if (!root.is_object()) input_error(source + ": the config is not a JSON object");
    WanConfig c;
    const bool diffusers = root.contains("_class_name") && root["_class_name"] == "WanTransformer3DModel";
    const nlohmann::json* jp = &root;
    std::string where = source;
    if (root.contains("dit")) {
        jp    = &root["dit"];
        where = source + ": dit";
        if (!jp->is_object()) input_error(where + " is not an object");
    }
    const auto& j = *jp;

    if (diffusers) {
        static const std::set<std::string> known = {
            "_class_name", "_diffusers_version", "_name_or_path", "patch_size", "num_attention_heads",
            "attention_head_dim", "in_channels", "out_channels", "text_dim", "freq_dim", "ffn_dim",
            "num_layers", "cross_attn_norm", "qk_norm", "eps", "image_dim", "added_kv_proj_dim",
            "rope_max_seq_len", "pos_embed_seq_len"};
        for (auto it = j.begin(); it != j.end(); ++it)
            if (!known.count(it.key())) input_error(where + ": unknown key '" + it.key() + "'");
        const int64_t heads = positive(j, "num_attention_heads", where);
        c.num_heads         = heads;
        c.dim               = heads * positive(j, "attention_head_dim", where);
        c.in_dim            = positive(j, "in_channels", where);
        c.out_dim           = positive(j, "out_channels", where);
        c.text_dim          = positive(j, "text_dim", where);
        c.freq_dim          = positive(j, "freq_dim", where);
        c.ffn_dim           = positive(j, "ffn_dim", where);
        c.num_layers        = positive(j, "num_layers", where);
        if (j.contains("patch_size")) {
            auto p = get_as<std::vector<int64_t>>(j, "patch_size", where);
            if (p.size() != 3) input_error(where + ": key 'patch_size' must have 3 entries, got " + j["patch_size"].dump());
            c.patch_size = {p[0], p[1], p[2]};
        }
        if (j.contains("eps")) c.eps = get_as<double>(j, "eps", where);
        if (j.contains("cross_attn_norm")) c.cross_attn_norm = get_as<bool>(j, "cross_attn_norm", where);
        if (j.contains("qk_norm")) c.qk_norm = !j["qk_norm"].is_null();
        if (j.contains("image_dim") && !j["image_dim"].is_null()) c.model_type = "i2v";
        c.validate(where);
        return c;
    }

    static const std::set<std::string> known = {
        "model_type", "patch_size", "text_len", "in_dim", "dim", "ffn_dim", "freq_dim", "text_dim", "out_dim",
        "num_heads", "num_layers", "window_size", "qk_norm", "cross_attn_norm", "eps", "_class_name",
        "_diffusers_version"};
    for (auto it = j.begin(); it != j.end(); ++it)
        if (!known.count(it.key())) input_error(where + ": unknown key '" + it.key() + "'");
    for (const char* k : {"dim", "ffn_dim", "num_heads", "num_layers"})
        if (!j.contains(k)) input_error(where + ": missing key '" + std::string(k) + "'");

    if (j.contains("model_type")) c.model_type = get_as<std::string>(j, "model_type", where);
    if (j.contains("patch_size")) {
        auto p = get_as<std::vector<int64_t>>(j, "patch_size", where);
        if (p.size() != 3) input_error(where + ": key 'patch_size' must have 3 entries, got " + j["patch_size"].dump());
        c.patch_size = {p[0], p[1], p[2]};
    }
    if (j.contains("window_size")) {
        auto w = get_as<std::vector<int64_t>>(j, "window_size", where);
        if (w.size() != 2) input_error(where + ": key 'window_size' must have 2 entries, got " + j["window_size"].dump());
        c.window_size = {w[0], w[1]};
    }
    for (auto [key, field] : std::vector<std::pair<const char*, int64_t*>>{
             {"text_len", &c.text_len}, {"in_dim", &c.in_dim}, {"dim", &c.dim}, {"ffn_dim", &c.ffn_dim},
             {"freq_dim", &c.freq_dim}, {"text_dim", &c.text_dim}, {"out_dim", &c.out_dim},
             {"num_heads", &c.num_heads}, {"num_layers", &c.num_layers}})
        if (j.contains(key)) *field = positive(j, key, where);
    if (j.contains("qk_norm")) c.qk_norm = get_as<bool>(j, "qk_norm", where);
    if (j.contains("cross_attn_norm")) c.cross_attn_norm = get_as<bool>(j, "cross_attn_norm", where);
    if (j.contains("eps")) c.eps = get_as<double>(j, "eps", where);
    c.validate(where);
    return c;
}

WanConfig WanConfig::from_json_file(const std::string& path) { return from_json(io::read_json_file(path), path); }

void WanConfig::validate(const std::string& source) const {
    if (model_type != "t2v" && model_type != "i2v")
        input_error(source + ": key 'model_type' must be t2v or i2v, got '" + model_type + "'");
    if (model_type == "i2v") input_error(source + ": model_type 'i2v' is not supported yet (t2v only)");
    for (auto p : patch_size)
        if (p <= 0) input_error(source + ": key 'patch_size' entries must be positive");
    if (dim % num_heads != 0)
        input_error(source + ": key 'dim' (" + std::to_string(dim) + ") is not divisible by 'num_heads' (" +
                    std::to_string(num_heads) + ")");
    if (head_dim() % 2 != 0 || head_dim() < 6)
        input_error(source + ": head dim " + std::to_string(head_dim()) + " must be even and at least 6 for 3D RoPE");
    if (freq_dim % 2 != 0) input_error(source + ": key 'freq_dim' must be even, got " + std::to_string(freq_dim));
    if (window_size[0] != -1 || window_size[1] != -1)
        input_error(source + ": key 'window_size' must be [-1, -1] (global attention, as every Wan2.1 model)");
    if (!(eps > 0)) input_error(source + ": key 'eps' must be positive");
    // Every Wan2.1 model has both norms and profdit's blocks always apply them: refused, not ignored.
    if (!qk_norm)
        input_error(source + ": key 'qk_norm' is false, which profdit does not implement (every Wan2.1 model RMS-normalises q and k)");
    if (!cross_attn_norm)
        input_error(source + ": key 'cross_attn_norm' is false, which profdit does not implement (every Wan2.1 model has norm3 "
                             "before cross-attention)");
}

WanConfig WanConfig::detect_from_weights(const ShapeMap& s, const std::string& source) {
    WanConfig   c;
    const auto& pe = need(s, "patch_embedding.weight", source);  // [dim, in_dim, pt, ph, pw]
    if (pe.size() != 5) input_error(source + ": tensor 'patch_embedding.weight' must be 5-D");
    c.dim        = pe[0];
    c.in_dim     = pe[1];
    c.patch_size = {pe[2], pe[3], pe[4]};
    c.text_dim   = need(s, "text_embedding.0.weight", source).at(1);
    c.freq_dim   = need(s, "time_embedding.0.weight", source).at(1);
    c.ffn_dim    = need(s, "blocks.0.ffn.0.weight", source).at(0);
    c.out_dim    = need(s, "head.head.weight", source).at(0) / c.patch_volume();
    c.num_heads  = c.dim % 128 == 0 ? c.dim / 128 : 1;
    const std::regex block(R"(blocks\.(\d+)\.modulation)");
    int64_t          layers = 0;
    for (const auto& kv : s) {
        std::smatch m;
        if (std::regex_match(kv.first, m, block)) layers = std::max<int64_t>(layers, std::stoll(m[1]) + 1);
    }
    c.num_layers      = layers;
    c.model_type      = shape_of(s, "img_emb.proj.1.weight") ? "i2v" : "t2v";
    c.qk_norm         = shape_of(s, "blocks.0.self_attn.norm_q.weight") != nullptr;
    c.cross_attn_norm = shape_of(s, "blocks.0.norm3.weight") != nullptr;
    return c;
}

std::map<std::string, std::string> WanConfig::metadata() const {
    return {{kMetadataKey, nlohmann::json{{"dit", to_json()}}.dump()}};
}

WanConfig WanConfig::from_weights(const ShapeMap& s, const std::map<std::string, std::string>& metadata, const std::string& source,
                                  std::string* how) {
    const auto it = metadata.find(kMetadataKey);
    if (it != metadata.end()) {
        const auto where = source + ": metadata '" + std::string(kMetadataKey) + "'";
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(it->second);
        } catch (const nlohmann::json::exception&) {
            input_error(where + " is not JSON: " + it->second.substr(0, 80));
        }
        WanConfig c = from_json(j, where);
        c.check_against_weights(s, source);
        if (how) *how = "config in the file's metadata";
        return c;
    }
    const WanConfig d = detect_from_weights(s, source);
    WanConfig       big;  // Wan2.1-T2V-14B; the defaults are T2V-1.3B
    big.dim = 5120, big.ffn_dim = 13824, big.num_heads = 40, big.num_layers = 40;
    for (const auto& official : {WanConfig{}, big}) {
        const bool same = d.model_type == official.model_type && d.patch_size == official.patch_size && d.in_dim == official.in_dim &&
                          d.dim == official.dim && d.ffn_dim == official.ffn_dim && d.freq_dim == official.freq_dim &&
                          d.text_dim == official.text_dim && d.out_dim == official.out_dim && d.num_layers == official.num_layers &&
                          d.qk_norm == official.qk_norm && d.cross_attn_norm == official.cross_attn_norm;
        if (!same) continue;
        if (how) *how = "official " + official.variant() + " size";
        return official;
    }
    input_error(source + ": cannot tell the DiT configuration: num_heads and text_len are not in the weights, the file has no " +
                "profdit config (safetensors metadata '" + kMetadataKey + "'), and its shapes (" + d.model_type + ", dim " +
                std::to_string(d.dim) + ", ffn_dim " + std::to_string(d.ffn_dim) + ", " + std::to_string(d.num_layers) +
                " layers, text_dim " + std::to_string(d.text_dim) + ", freq_dim " + std::to_string(d.freq_dim) +
                ") are no official Wan2.1 size (T2V-1.3B, T2V-14B); give the config: --config FILE.json");
}

void WanConfig::check_against_weights(const ShapeMap& s, const std::string& source) const {
    const WanConfig w = detect_from_weights(s, source);
    auto check = [&](const char* key, int64_t cfg, int64_t got) {
        if (cfg != got)
            input_error(source + ": the weights have " + key + " = " + std::to_string(got) + " but the config says " +
                        std::to_string(cfg));
    };
    check("dim", dim, w.dim);
    check("in_dim", in_dim, w.in_dim);
    check("patch_size[0]", patch_size[0], w.patch_size[0]);
    check("patch_size[1]", patch_size[1], w.patch_size[1]);
    check("patch_size[2]", patch_size[2], w.patch_size[2]);
    check("text_dim", text_dim, w.text_dim);
    check("freq_dim", freq_dim, w.freq_dim);
    check("ffn_dim", ffn_dim, w.ffn_dim);
    check("out_dim", out_dim, w.out_dim);
    check("num_layers", num_layers, w.num_layers);
    check("qk_norm", qk_norm, w.qk_norm);
    check("cross_attn_norm", cross_attn_norm, w.cross_attn_norm);
    if (model_type != w.model_type)
        input_error(source + ": the weights are model_type " + w.model_type + " but the config says " + model_type);
}

std::string WanConfig::variant() const {
    const bool wan_shape = patch_size == std::array<int64_t, 3>{1, 2, 2} && in_dim == (model_type == "i2v" ? 36 : 16) &&
                           out_dim == 16 && text_dim == 4096 && freq_dim == 256 && head_dim() == 128;
    if (wan_shape && model_type == "t2v" && dim == 1536 && num_layers == 30 && ffn_dim == 8960) return "Wan2.1-T2V-1.3B";
    if (wan_shape && model_type == "t2v" && dim == 5120 && num_layers == 40 && ffn_dim == 13824) return "Wan2.1-T2V-14B";
    if (wan_shape && model_type == "i2v" && dim == 5120 && num_layers == 40 && ffn_dim == 13824) return "Wan2.1-I2V-14B";
    return "custom";
}

nlohmann::json WanConfig::to_json() const {
    return {{"model_type", model_type}, {"patch_size", patch_size}, {"text_len", text_len}, {"in_dim", in_dim},
            {"dim", dim}, {"ffn_dim", ffn_dim}, {"freq_dim", freq_dim}, {"text_dim", text_dim},
            {"out_dim", out_dim}, {"num_heads", num_heads}, {"num_layers", num_layers},
            {"window_size", window_size}, {"qk_norm", qk_norm}, {"cross_attn_norm", cross_attn_norm}, {"eps", eps}};
}

}  // namespace profdit::wan
