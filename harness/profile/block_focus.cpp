#include "profile/block_focus.h"

#include <cmath>

#include "common/error.h"
#include "common/format.h"

namespace profdit::profile {

torch::Tensor token_mask(const torch::Tensor& pixel_mask, const std::array<int64_t, 3>& patch, double min_share) {
    if (pixel_mask.dim() != 3) input_error("foreground mask must be [F, H, W]");
    const auto F = pixel_mask.size(0), H = pixel_mask.size(1), W = pixel_mask.size(2);
    const auto pt = patch[0], ph = patch[1], pw = patch[2];
    if (F % pt || H % ph || W % pw)
        input_error("foreground mask [" + std::to_string(F) + ", " + std::to_string(H) + ", " + std::to_string(W) +
                    "] is not a multiple of the patch size");
    auto m = (pixel_mask != 0).to(torch::kFloat64).view({F / pt, pt, H / ph, ph, W / pw, pw});  // [F', pt, H', ph, W', pw]
    return (m.mean({1, 3, 5}) >= min_share).reshape({-1});                                  // [F' * H' * W']
}

std::string HighRule::text() const { return kind == "mean" ? "mean x" + format_number("%g", value) : "quantile " + format_number("%g", value); }

double foreground_high_share(const torch::Tensor& received, const torch::Tensor& fg, int64_t frames, const HighRule& rule) {
    auto r = received.to(torch::kFloat64).view({frames, -1});                          // [F', H' W']
    if (torch::isnan(r).any().item<bool>()) return std::nan("");
    auto f  = fg.view({frames, -1});                                                   // [F', H' W']
    const auto n_fg = f.sum().item<int64_t>();
    if (n_fg == 0) return std::nan("");
    auto threshold = rule.kind == "quantile" ? std::get<0>(r.sort(1)).select(1, std::min<int64_t>(r.size(1) - 1, int64_t(rule.value * double(r.size(1) - 1) + 0.5))).unsqueeze(1)
                                             : r.mean(1, true) * rule.value;          // [F', 1]
    auto high = r > threshold;                                                         // [F', H' W']
    return (high & f).sum().item<double>() / double(n_fg);
}

torch::Tensor r_attn_per_step(const torch::Tensor& received, const torch::Tensor& fg, int64_t frames, const HighRule& rule) {
    const auto S = received.size(0), B = received.size(1);
    auto out = torch::full({S, B}, std::nan(""), torch::kFloat64);                     // [S, blocks]
    auto acc = out.accessor<double, 2>();
    for (int64_t s = 0; s < S; ++s)
        for (int64_t b = 0; b < B; ++b) acc[s][b] = foreground_high_share(received[s][b], fg, frames, rule);
    return out;
}

std::pair<torch::Tensor, torch::Tensor> r_attn(const torch::Tensor& received, const torch::Tensor& fg, int64_t frames, const HighRule& rule) {
    const auto per_step = r_attn_per_step(received, fg, frames, rule);                 // [S, blocks]
    const auto B = per_step.size(1);
    auto mean = torch::full({B}, std::nan(""), torch::kFloat64), spread = torch::full({B}, std::nan(""), torch::kFloat64);
    auto acc = per_step.accessor<double, 2>();
    for (int64_t b = 0; b < B; ++b) {
        double sum = 0, lo = INFINITY, hi = -INFINITY;
        int    n   = 0;
        for (int64_t s = 0; s < per_step.size(0); ++s) {
            const double v = acc[s][b];
            if (std::isnan(v)) continue;
            sum += v, ++n, lo = std::min(lo, v), hi = std::max(hi, v);
        }
        if (n) mean[b] = sum / n, spread[b] = hi - lo;
    }
    return {mean, spread};
}

}  // namespace profdit::profile
