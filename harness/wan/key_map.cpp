#include "wan/key_map.h"

#include <cctype>
#include <utility>
#include <vector>

namespace profdit::wan {

namespace {

using Rename = std::pair<const char*, const char*>;  // official prefix, diffusers prefix

// Prefixes of whole keys.
const std::vector<Rename> kTop = {
    {"time_embedding.0.", "condition_embedder.time_embedder.linear_1."},
    {"time_embedding.2.", "condition_embedder.time_embedder.linear_2."},
    {"text_embedding.0.", "condition_embedder.text_embedder.linear_1."},
    {"text_embedding.2.", "condition_embedder.text_embedder.linear_2."},
    {"time_projection.1.", "condition_embedder.time_proj."},
    {"head.modulation", "scale_shift_table"},
    {"head.head.", "proj_out."},
    {"img_emb.proj.0.", "condition_embedder.image_embedder.norm1."},
    {"img_emb.proj.1.", "condition_embedder.image_embedder.ff.net.0.proj."},
    {"img_emb.proj.3.", "condition_embedder.image_embedder.ff.net.2."},
    {"img_emb.proj.4.", "condition_embedder.image_embedder.norm2."},
};

// Prefixes of the part after "blocks.N.".
const std::vector<Rename> kBlock = {
    {"modulation", "scale_shift_table"},
    {"self_attn.q.", "attn1.to_q."},
    {"self_attn.k.", "attn1.to_k."},
    {"self_attn.v.", "attn1.to_v."},
    {"self_attn.o.", "attn1.to_out.0."},
    {"self_attn.norm_q.", "attn1.norm_q."},
    {"self_attn.norm_k.", "attn1.norm_k."},
    {"cross_attn.q.", "attn2.to_q."},
    {"cross_attn.k.", "attn2.to_k."},
    {"cross_attn.v.", "attn2.to_v."},
    {"cross_attn.o.", "attn2.to_out.0."},
    {"cross_attn.norm_q.", "attn2.norm_q."},
    {"cross_attn.norm_k.", "attn2.norm_k."},
    {"cross_attn.k_img.", "attn2.add_k_proj."},
    {"cross_attn.v_img.", "attn2.add_v_proj."},
    {"cross_attn.norm_k_img.", "attn2.norm_added_k."},
    {"norm3.", "norm2."},
    {"ffn.0.", "ffn.net.0.proj."},
    {"ffn.2.", "ffn.net.2."},
};

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

// Length of "blocks.N." at the start of `key`, or 0.
size_t block_prefix(const std::string& key) {
    if (!starts_with(key, "blocks.")) return 0;
    size_t i = 7;
    while (i < key.size() && std::isdigit(static_cast<unsigned char>(key[i]))) ++i;
    return (i > 7 && i < key.size() && key[i] == '.') ? i + 1 : 0;
}

std::string rename(const std::string& key, bool to_diffusers) {
    const size_t b    = block_prefix(key);
    const auto&  rule = b ? kBlock : kTop;
    const std::string rest = key.substr(b);
    for (const auto& r : rule) {
        const std::string from = to_diffusers ? r.first : r.second;
        const std::string to   = to_diffusers ? r.second : r.first;
        if (starts_with(rest, from)) return key.substr(0, b) + to + rest.substr(from.size());
    }
    return key;
}

}  // namespace

std::string official_to_diffusers(const std::string& key) { return rename(key, true); }
std::string diffusers_to_official(const std::string& key) { return rename(key, false); }

// Official checkpoints have no parameters under any diffusers-only name (norm2 included), so a key is
// diffusers exactly when the rename changes it.
bool is_diffusers_key(const std::string& key) { return diffusers_to_official(key) != key; }

const char* key_format_name(KeyFormat f) { return f == KeyFormat::diffusers ? "diffusers" : "official"; }

}  // namespace profdit::wan
