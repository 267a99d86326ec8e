#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.h"
#include "profile/mask_source.h"

namespace profdit::profile {

namespace {

namespace F_ = torch::nn::functional;

std::string shape_text(torch::IntArrayRef s) {
    std::string t = "[";
    for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
    return t + "]";
}

// Features [F, k, H, W] -> the top-k PCA projections of the per-pixel C-vectors, all frames pooled.
torch::Tensor pca_features(const torch::Tensor& pred, int64_t k) {
    const auto C = pred.size(0), F = pred.size(1), H = pred.size(2), W = pred.size(3);
    auto x   = pred.reshape({C, -1}).t().to(torch::kFloat64);   // [N, C]
    x        = x - x.mean(0, true);                              // [N, C]
    auto cov = x.t().mm(x) / double(x.size(0));                  // [C, C]
    auto vecs = std::get<1>(torch::linalg_eigh(cov, "L"));       // [C, C], ascending eigenvalues
    auto v    = vecs.slice(1, C - k).flip({1});                  // [C, k]
    return x.mm(v).t().reshape({k, F, H, W}).permute({1, 0, 2, 3}).contiguous();  // [F, k, H, W]
}

// Per frame side (top, bottom, left, right rows/columns of width `border`, all frames): the distance of every
// pixel's feature to its k-th nearest feature on that side; the score is the `sides`-th smallest of the four,
// so a background colour must show on that many sides, and an object touching fewer sides still stands out.
torch::Tensor border_score(const torch::Tensor& feat, const AutoMaskOptions& opt) {
    using torch::indexing::Slice;
    const auto    F = feat.size(0), k = feat.size(1), H = feat.size(2), W = feat.size(3);
    const int64_t bh = std::min<int64_t>(opt.border, H), bw = std::min<int64_t>(opt.border, W);
    auto          hwc = feat.permute({0, 2, 3, 1});  // [F, H, W, k]
    auto          pts = hwc.reshape({-1, k});         // [N, k]
    const std::vector<torch::Tensor> sides = {hwc.index({Slice(), Slice(0, bh)}), hwc.index({Slice(), Slice(H - bh)}),
                                              hwc.index({Slice(), Slice(), Slice(0, bw)}),
                                              hwc.index({Slice(), Slice(), Slice(W - bw)})};  // [F, h, w, k] each
    std::vector<torch::Tensor> dist;
    for (const auto& side : sides) {
        auto          samples = side.reshape({-1, k});  // [M, k]
        const int64_t cap     = std::max<int64_t>(1, opt.max_samples / 4);
        if (samples.size(0) > cap) {  // a golden-ratio stride mod M: distinct and scattered (an even stride aliases with stripes)
            const int64_t M    = samples.size(0);
            int64_t       step = std::max<int64_t>(1, std::llround(0.6180339887 * double(M)));
            while (std::gcd(step, M) != 1) ++step;
            auto pick = (torch::arange(cap, torch::kInt64) * step) % M;  // [cap]
            samples   = samples.index_select(0, pick);                    // [cap, k]
        }
        const int64_t nn = std::clamp<int64_t>(std::llround(opt.knn_share * double(samples.size(0))), 1, samples.size(0));
        std::vector<torch::Tensor> parts;
        for (int64_t i = 0; i < pts.size(0); i += 4096) {
            auto d = torch::cdist(pts.slice(0, i, std::min<int64_t>(i + 4096, pts.size(0))), samples);  // [chunk, M']
            parts.push_back(std::get<0>(d.kthvalue(nn, 1)));                                              // [chunk]
        }
        dist.push_back(torch::cat(parts));  // [N]
    }
    auto sorted = std::get<0>(torch::stack(dist, 1).sort(1));      // [N, 4]
    return sorted.select(1, opt.sides - 1).view({F, H, W});        // [F, H, W]
}

struct Cut {
    double threshold = 0, separability = 0, contrast = 0, background = 0;  // background: the lower class mean
};

// Otsu's threshold on a 256-bin histogram, then moved to the midpoint of the two class means (Ridler-Calvard
// iterations), so a blurred edge is cut halfway between the background and foreground levels. contrast =
// foreground class mean / median score (the typical background score, since the foreground is the minority),
// the median floored at `floor` (noise-free backgrounds score 0 up to rounding).
Cut cut_scores(const torch::Tensor& score_in, double floor) {
    auto         score = score_in.flatten();                                   // [N]
    const double lo = score.min().item<double>(), hi = score.max().item<double>();
    if (!(hi > lo)) return {hi, 0, 0};
    constexpr int bins = 256;
    auto          hist = torch::histc(score, bins, lo, hi).to(torch::kFloat64);  // [bins]
    auto          h    = hist.accessor<double, 1>();
    const double  width = (hi - lo) / bins;
    double        n = 0, sum = 0, sum2 = 0;
    for (int i = 0; i < bins; ++i) {
        const double c = lo + (i + 0.5) * width;
        n += h[i], sum += h[i] * c, sum2 += h[i] * c * c;
    }
    const double mean = sum / n, total = sum2 / n - mean * mean;
    Cut          cut;
    double       w0 = 0, s0 = 0, best_between = -1;
    for (int i = 0; i < bins - 1; ++i) {
        w0 += h[i] / n, s0 += h[i] / n * (lo + (i + 0.5) * width);
        if (w0 <= 0 || w0 >= 1) continue;
        const double between = (mean * w0 - s0) * (mean * w0 - s0) / (w0 * (1 - w0));
        if (between > best_between) best_between = between, cut.threshold = lo + (i + 1) * width;
    }
    cut.separability = total > 0 ? std::min(1.0, best_between / total) : 0;
    double m1 = 0;
    for (int it = 0; it < 50; ++it) {
        auto above = score > cut.threshold;  // [N]
        if (!above.any().item<bool>() || above.all().item<bool>()) break;
        m1                 = score.masked_select(above).mean().item<double>();
        const double m0    = score.masked_select(~above).mean().item<double>();
        cut.background     = m0;
        const double next  = (m0 + m1) / 2;
        const bool   done  = std::abs(next - cut.threshold) < 1e-6 * (hi - lo);
        cut.threshold      = next;
        if (done) break;
    }
    cut.contrast = m1 / std::max(score.median().item<double>(), floor);
    return cut;
}

torch::Tensor dilate(const torch::Tensor& x) { return F_::max_pool2d(x, F_::MaxPool2dFuncOptions(3).stride(1).padding(1)); }
torch::Tensor erode(const torch::Tensor& x) { return -dilate(-x); }

// Per frame, the 4-connected components by score mass, largest first, until they hold `keep` of the mass.
void keep_main_components(torch::Tensor& fg, const torch::Tensor& score, double keep) {
    const auto F = fg.size(0), H = fg.size(1), W = fg.size(2);
    auto       m = fg.accessor<uint8_t, 3>();
    auto       s = score.accessor<double, 3>();
    for (int64_t f = 0; f < F; ++f) {
        std::vector<int>                           label(size_t(H * W), -1);
        std::vector<std::vector<int64_t>>          comps;
        std::vector<double>                        mass;
        std::vector<int64_t>                       stack;
        for (int64_t start = 0; start < H * W; ++start) {
            if (!m[f][start / W][start % W] || label[size_t(start)] >= 0) continue;
            comps.emplace_back();
            mass.push_back(0);
            stack.assign(1, start);
            label[size_t(start)] = int(comps.size() - 1);
            while (!stack.empty()) {
                const int64_t p = stack.back(), y = p / W, x = p % W;
                stack.pop_back();
                comps.back().push_back(p);
                mass.back() += s[f][y][x];
                const int64_t nb[4][2] = {{y, x - 1}, {y, x + 1}, {y - 1, x}, {y + 1, x}};
                for (const auto& q : nb)
                    if (q[0] >= 0 && q[0] < H && q[1] >= 0 && q[1] < W && m[f][q[0]][q[1]] && label[size_t(q[0] * W + q[1])] < 0) {
                        label[size_t(q[0] * W + q[1])] = int(comps.size() - 1);
                        stack.push_back(q[0] * W + q[1]);
                    }
            }
        }
        std::vector<size_t> order(comps.size());
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return mass[a] > mass[b]; });
        const double total = std::accumulate(mass.begin(), mass.end(), 0.0);
        double       kept  = 0;
        for (size_t i : order) {
            if (kept >= keep * total)
                for (int64_t p : comps[i]) m[f][p / W][p % W] = 0;
            kept += mass[i];
        }
    }
}

}  // namespace

torch::Tensor auto_mask(const torch::Tensor& pred_in, const AutoMaskOptions& opt, AutoMaskInfo* info) {
    if (pred_in.dim() != 4 || pred_in.numel() == 0)
        input_error("auto mask: predicted noise must be a non-empty [C, F, H, W] tensor, got " + shape_text(pred_in.sizes()));
    if (opt.blur < -1 || opt.max_blur < 0 || opt.border < 1 || opt.max_samples < 1 || opt.sides < 1 || opt.sides > 4 ||
        !(opt.knn_share > 0 && opt.knn_share <= 1) || !(opt.min_contrast >= 0) || !(opt.grow >= 0 && opt.grow <= 1) || !(opt.keep_mass > 0 && opt.keep_mass <= 1))
        input_error("auto mask options: blur >= -1, max_blur >= 0, border >= 1, max_samples >= 1, sides in 1..4, knn_share in (0, 1], "
                    "min_contrast >= 0, grow in [0, 1], keep_mass in (0, 1]");
    auto pred = pred_in.to(torch::kCPU, torch::kFloat32);  // [C, F, H, W]
    if (!torch::isfinite(pred).all().item<bool>()) input_error("auto mask: predicted noise holds NaN or Inf");
    const int64_t k = std::min<int64_t>(3, pred.size(0));

    auto          feat  = pca_features(pred, k).to(torch::kFloat32);  // [F, k, H, W]
    const double  floor = 1e-4 * std::sqrt(feat.pow(2).sum(1).mean().item<double>()) + 1e-30;
    torch::Tensor score;                                              // [F, H, W]
    Cut           cut;
    int           blur = 0;
    const int     r_lo = opt.blur >= 0 ? opt.blur : 0, r_hi = opt.blur >= 0 ? opt.blur : opt.max_blur;
    for (int r = r_lo; r <= r_hi; ++r) {
        auto smooth = r == 0 ? feat
                             : F_::avg_pool2d(feat, F_::AvgPool2dFuncOptions(2 * r + 1).stride(1).padding(r).count_include_pad(false));  // [F, k, H, W]
        auto      s = border_score(smooth, opt);  // [F, H, W]
        if (s.max().item<double>() <= floor) {  // every pixel matches the border: nothing stands out
            score = s, cut = Cut{}, blur = r;
            break;
        }
        const Cut  c     = cut_scores(s, floor);
        const bool sharp = c.contrast >= opt.sharp_contrast;
        if (r == r_lo || sharp || c.contrast > cut.contrast) score = s, cut = c, blur = r;
        if (sharp) break;
    }
    auto fg = (score > cut.threshold).to(torch::kFloat32);  // [F, H, W]
    if (cut.contrast < opt.min_contrast) fg.zero_();
    if (opt.grow < 1) {  // blurring pulls edge scores down: take back up to `blur` rings of clear-enough neighbours
        auto weak = (score > cut.background + opt.grow * (cut.threshold - cut.background)).to(torch::kFloat32);  // [F, H, W]
        for (int i = 0; i < std::max(blur, 1); ++i) fg = torch::max(fg, dilate(fg.unsqueeze(1)).squeeze(1) * weak);  // [F, H, W]
    }
    if (opt.morphology) {
        auto x = fg.unsqueeze(1);             // [F, 1, H, W]
        x      = erode(dilate(dilate(erode(x))));  // opening, then closing
        fg     = x.squeeze(1);                // [F, H, W]
    }
    if (opt.temporal && fg.size(0) > 1) {
        auto padded = torch::cat({fg.slice(0, 0, 1), fg, fg.slice(0, -1)});  // [F + 2, H, W]
        fg = (padded.slice(0, 0, -2) + padded.slice(0, 1, -1) + padded.slice(0, 2)) >= 2;  // [F, H, W]
    }
    auto mask = fg.to(torch::kUInt8).contiguous();  // [F, H, W]
    keep_main_components(mask, score.to(torch::kFloat64), opt.keep_mass);
    if (info) {
        info->components   = k;
        info->blur         = blur;
        info->threshold    = cut.threshold;
        info->separability = cut.separability;
        info->contrast     = cut.contrast;
        info->foreground   = mask.to(torch::kFloat64).mean().item<double>();
    }
    return mask;
}

torch::Tensor auto_mask(const std::vector<torch::Tensor>& preds, const AutoMaskOptions& opt, AutoMaskInfo* info) {
    if (preds.empty()) input_error("auto mask: no predicted noise given");
    for (const auto& p : preds)
        if (p.sizes() != preds[0].sizes())
            input_error("auto mask: predictions of different shapes (" + shape_text(p.sizes()) + " vs " +
                        shape_text(preds[0].sizes()) + ")");
    auto mean = torch::stack(preds).to(torch::kFloat32).mean(0);  // [C, F, H, W]
    return auto_mask(mean, opt, info);
}

}  // namespace profdit::profile
