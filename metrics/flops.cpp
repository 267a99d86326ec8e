#include "metrics/flops.h"

namespace profdit::metrics {

DiTFlops dit_flops(const wan::WanConfig& c, int64_t tokens) {
    const double L = double(tokens), Lc = double(c.text_len), d = double(c.dim), f = double(c.ffn_dim);
    DiTFlops out;
    out.num_blocks                = c.num_layers;
    out.block.self_attn_proj      = 2 * L * d * d * 4;
    out.block.self_attn_scores    = 2 * L * L * d * 2;
    out.block.cross_attn_proj     = 2 * L * d * d * 2 + 2 * Lc * d * d * 2;
    out.block.cross_attn_scores   = 2 * L * Lc * d * 2;
    out.block.ffn                 = 2 * L * d * f * 2;
    const double patch            = 2 * L * double(c.in_dim * c.patch_volume()) * d;
    const double time             = 2 * double(c.freq_dim) * d + 2 * d * d + 2 * d * 6 * d;
    const double text             = 2 * Lc * double(c.text_dim) * d + 2 * Lc * d * d;
    out.embed                     = patch + time + text;
    out.head                      = 2 * L * d * double(c.patch_volume() * c.out_dim);
    return out;
}

}  // namespace profdit::metrics
