#include "world/caption_probe.h"

#include <cmath>
#include <limits>
#include <numeric>

namespace profdit::world {

namespace {

template <typename T>
const T& next_after(const std::vector<T>& v, const T& x) {
    const auto it = std::find(v.begin(), v.end(), x);
    return v[(size_t(it - v.begin()) + 1) % v.size()];
}

// Frame order (k j) mod F for the smallest stride k >= 2 coprime to F with k < F - 1; empty when there is none.
std::vector<int64_t> scrambled_frames(int64_t F) {
    for (int64_t k = 2; k < F - 1; ++k)
        if (std::gcd(k, F) == 1) {
            std::vector<int64_t> order(static_cast<size_t>(F));
            for (int64_t j = 0; j < F; ++j) order[size_t(j)] = (k * j) % F;
            return order;
        }
    return {};
}

}  // namespace

std::vector<CaptionProbeRow> probe_captions(EmbeddedModel& m, int pairs, const std::vector<double>& sigmas) {
    torch::NoGradGuard ng;
    const auto& w   = m.world;
    const auto  dev = m.dit->device();
    std::vector<CaptionProbeRow> rows(sigmas.size());
    const auto order = scrambled_frames(w.frames);
    const auto scramble = order.empty() ? torch::Tensor() : torch::tensor(order, torch::kInt64).to(dev);  // [F]
    for (int i = 0; i < pairs; ++i) {
        const auto scene = held_out_scene(w, i);
        auto dir = scene, col = scene, bg = scene;
        dir.sprites[0].direction = opposite_direction(scene.sprites[0].direction);
        col.sprites[0].colour    = next_after(w.colours, scene.sprites[0].colour);
        bg.background            = next_after(w.backgrounds, scene.background);
        std::vector<torch::Tensor> ctx;
        for (const auto& c : {caption(scene), caption(dir), caption(col), caption(bg), std::string()})
            ctx.push_back(m.text->encode(c).to(dev));                                   // [L, text_dim]
        auto x0 = render(scene, w).frames.permute({1, 0, 2, 3}).to(dev);                // [3, F, H, W]
        for (size_t k = 0; k < sigmas.size(); ++k) {
            const auto t     = int64_t(sigmas[k] * 1000);
            const double s   = double(t) / 1000.0;
            auto noise       = sampling::seeded_noise(x0.sizes().vec(), uint64_t(i) * 1000 + k).to(dev);  // [3, F, H, W]
            auto xt          = (1 - s) * x0 + s * noise;                                 // [3, F, H, W]
            auto target      = noise - x0;                                               // [3, F, H, W]
            std::vector<double> loss;
            for (const auto& c : ctx) loss.push_back(torch::mse_loss(m.dit->forward(xt, t, c), target).item<double>());
            const double shuffled = scramble.defined() ? torch::mse_loss(m.dit->forward(xt.index_select(1, scramble), t, ctx[0]),
                                                                         target.index_select(1, scramble)).item<double>()
                                                       : std::numeric_limits<double>::quiet_NaN();
            auto& r = rows[k];
            r.sigma = s;
            r.loss_true += loss[0] / pairs;
            r.gap_direction += (loss[1] - loss[0]) / loss[0] / pairs;
            r.gap_colour += (loss[2] - loss[0]) / loss[0] / pairs;
            r.gap_background += (loss[3] - loss[0]) / loss[0] / pairs;
            r.gap_empty += (loss[4] - loss[0]) / loss[0] / pairs;
            r.gap_shuffled += (shuffled - loss[0]) / loss[0] / pairs;
        }
    }
    return rows;
}

}  // namespace profdit::world
