#include "world/detector.h"

#include <array>
#include <cmath>
#include <map>

namespace profdit::world {

namespace {

struct Blob {
    int    area = 0;
    int    x0 = 1 << 30, y0 = 1 << 30, x1 = -1, y1 = -1;  // bounding box, in unwrapped coordinates on a torus
    double cx = 0, cy = 0;
    std::vector<int>                pixels;  // indices y * W + x
    std::vector<std::array<int, 2>> at;      // per pixel (x, y), unwrapped from the component's first pixel on a torus
};

// Largest 4-connected component of `on` [H*W] (across the edges when `wrap`); also returns how many pixels were on.
Blob largest_blob(const std::vector<uint8_t>& on, int H, int W, bool wrap, int* total) {
    std::vector<int> label(on.size(), -1);
    Blob             best;
    *total = 0;
    std::vector<std::array<int, 3>> stack;  // index, unwrapped x, unwrapped y
    for (int start = 0; start < H * W; ++start) {
        if (!on[start]) continue;
        ++*total;
        if (label[start] >= 0) continue;
        Blob b;
        stack.assign(1, {start, start % W, start / W});
        label[start] = start;
        while (!stack.empty()) {
            const auto [p, x, y] = stack.back();
            stack.pop_back();
            b.pixels.push_back(p);
            b.at.push_back({x, y});
            b.area++;
            b.cx += x + 0.5, b.cy += y + 0.5;
            b.x0 = std::min(b.x0, x), b.x1 = std::max(b.x1, x), b.y0 = std::min(b.y0, y), b.y1 = std::max(b.y1, y);
            const int nb[4][2] = {{x - 1, y}, {x + 1, y}, {x, y - 1}, {x, y + 1}};
            for (const auto& n : nb) {
                const int qx = wrap ? (n[0] % W + W) % W : n[0], qy = wrap ? (n[1] % H + H) % H : n[1];
                if (qx < 0 || qx >= W || qy < 0 || qy >= H) continue;
                const int q = qy * W + qx;
                if (on[q] && label[q] < 0) label[q] = start, stack.push_back({q, n[0], n[1]});
            }
        }
        if (b.area > best.area) best = std::move(b);
    }
    if (best.area) best.cx /= best.area, best.cy /= best.area;
    return best;
}

// The shortest signed step from a to b on a circle of size n.
double shortest_step(double a, double b, int n) { return b - a - n * std::round((b - a) / n); }

double sprite_area(const std::string& shape, int size) { return shape == "square" ? double(size) * size : M_PI * size * size / 4.0; }

}  // namespace

Detection detect(const torch::Tensor& frames_in, const std::string& text, const WorldConfig& cfg, const DetectorOptions& opt) {
    const Scene scene  = parse_caption(text, cfg);
    auto        frames = frames_in.to(torch::kCPU, torch::kFloat32).contiguous();
    const int   F = int(frames.size(0)), H = int(frames.size(2)), W = int(frames.size(3));
    auto        fa = frames.accessor<float, 4>();
    Detection   d;
    d.mask = torch::zeros({F, H, W}, torch::kUInt8);
    auto ma = d.mask.accessor<uint8_t, 3>();
    d.blob_in_frame.assign(size_t(F), true);

    bool all_present = true, all_direction = true;
    for (const auto& sp : scene.sprites) {
        const Rgb    rgb = colour_rgb(sp.colour), nose = nose_rgb();
        const double amin = 0.5 * sprite_area(sp.shape, cfg.sprite_min), amax = 1.5 * sprite_area(sp.shape, cfg.sprite_max);
        const int    span = cfg.sprite_max + 3;
        std::vector<std::array<double, 2>> track;
        std::vector<int>                   track_frame;
        double                             fill = 0, side = 0, nose_dx = 0, nose_dy = 0;
        for (int f = 0; f < F; ++f) {
            std::vector<uint8_t> on(size_t(H) * W, 0), is_nose(size_t(H) * W, 0);
            for (int y = 0; y < H; ++y)
                for (int x = 0; x < W; ++x) {
                    float dist = 0, nose_dist = 0;
                    for (int c = 0; c < 3; ++c) {
                        dist      = std::max(dist, std::abs(fa[f][c][y][x] - rgb[c]));
                        nose_dist = std::max(nose_dist, std::abs(fa[f][c][y][x] - nose[c]));
                    }
                    is_nose[size_t(y) * W + x] = cfg.heading && nose_dist < opt.colour_tol;
                    on[size_t(y) * W + x]      = dist < opt.colour_tol || is_nose[size_t(y) * W + x];
                }
            int        total = 0;
            const Blob b     = largest_blob(on, H, W, cfg.wrap, &total);
            const bool ok    = b.area >= amin && b.area <= amax && b.area >= 0.8 * total && b.x1 - b.x0 + 1 <= span &&
                            b.y1 - b.y0 + 1 <= span;
            if (!ok) {
                d.blob_in_frame[size_t(f)] = false;
                continue;
            }
            track.push_back({b.cx, b.cy});
            track_frame.push_back(f);
            const int bw = b.x1 - b.x0 + 1, bh = b.y1 - b.y0 + 1;
            fill += double(b.area) / (bw * bh);
            side += 0.5 * (bw + bh);
            for (int p : b.pixels) ma[f][p / W][p % W] = 1;
            if (cfg.heading) {
                double nx = 0, ny = 0;
                int    n  = 0;
                for (size_t k = 0; k < b.pixels.size(); ++k)
                    if (is_nose[size_t(b.pixels[k])]) nx += b.at[k][0] + 0.5, ny += b.at[k][1] + 0.5, ++n;
                if (n) nose_dx += nx / n - b.cx, nose_dy += ny / n - b.cy;
            }
        }
        const bool present = track.size() >= std::ceil(opt.present_share * F);
        d.frames_present   = d.frames_present ? std::min(d.frames_present, int(track.size())) : int(track.size());
        all_present        = all_present && present;
        if (!track.empty()) {
            fill /= double(track.size()), side /= double(track.size());
            d.shape_seen = fill > 0.89 ? "square" : "circle";
            d.shape_ok   = present && d.shape_seen == sp.shape;
            d.size_seen  = side;
            d.size_error = std::max({0.0, cfg.sprite_min - side, side - cfg.sprite_max});
        }
        if (cfg.heading && (nose_dx != 0 || nose_dy != 0)) {
            d.heading_seen = std::abs(nose_dx) >= std::abs(nose_dy) ? (nose_dx < 0 ? "left" : "right") : (nose_dy < 0 ? "up" : "down");
            d.heading_ok   = present && d.heading_seen == sp.direction;
        }
        bool dir_ok        = false;
        if (present && track.size() >= 2) {
            const double span_f = track_frame.back() - track_frame.front();
            double       dx = track.back()[0] - track.front()[0], dy = track.back()[1] - track.front()[1];
            if (cfg.wrap) {  // summed frame to frame, so that a track across the torus's edge counts its steps
                dx = dy = 0;
                for (size_t k = 1; k < track.size(); ++k) {
                    dx += shortest_step(track[k - 1][0], track[k][0], W);
                    dy += shortest_step(track[k - 1][1], track[k][1], H);
                }
            }
            dx = dx / span_f * (F - 1), dy = dy / span_f * (F - 1);
            const double expected = double(cfg.speed) * (F - 1);
            std::string  seen;
            if (std::abs(dx) >= std::abs(dy)) seen = dx < 0 ? "left" : "right";
            else seen = dy < 0 ? "up" : "down";
            const double major = std::max(std::abs(dx), std::abs(dy)), minor = std::min(std::abs(dx), std::abs(dy));
            if (major >= 0.5 * expected && minor <= 0.5 * major) {
                d.direction_seen = d.direction_seen.empty() ? seen : d.direction_seen + "," + seen;
                dir_ok           = seen == sp.direction;
            }
        }
        all_direction = all_direction && dir_ok;
    }
    d.sprite_present = all_present;
    d.direction_ok   = all_present && all_direction;

    // Background: every pixel outside the detected blobs and the border votes for the nearest (colour, shade).
    std::map<std::string, int> votes_colour;
    int                        bright = 0, dark = 0, total = 0;
    for (int f = 0; f < F; ++f)
        for (int y = 0; y < H; ++y)
            for (int x = 0; x < W; ++x) {
                if (ma[f][y][x] || in_border(cfg, x, y)) continue;
                float       best = 1e9f;
                std::string best_name;
                bool        best_dark = false;
                for (const auto& name : cfg.backgrounds) {
                    const Rgb b = colour_rgb(name);
                    for (bool is_dark : {false, true}) {
                        float dist = 0;
                        for (int c = 0; c < 3; ++c) {
                            const float ref = is_dark ? (b[c] + 1.0f) * 0.45f - 1.0f : b[c];
                            dist            = std::max(dist, std::abs(fa[f][c][y][x] - ref));
                        }
                        if (dist < best) best = dist, best_name = name, best_dark = is_dark;
                    }
                }
                ++total;
                if (best > opt.colour_tol) continue;
                votes_colour[best_name]++;
                (best_dark ? dark : bright)++;
            }
    int top = 0;
    for (const auto& [name, n] : votes_colour)
        if (n > top) top = n, d.background_seen = name;
    const double stripe_share = double(dark) / std::max(1, dark + bright);
    d.pattern_seen = stripe_share >= 0.25 && stripe_share <= 0.75 ? "stripes" : stripe_share < 0.1 ? "solid" : "unclear";
    d.background_ok = total > 0 && top >= 0.6 * total && d.background_seen == scene.background && d.pattern_seen == scene.pattern;
    return d;
}

double mask_iou(const torch::Tensor& a, const torch::Tensor& b) {
    auto ab = a.to(torch::kBool), bb = b.to(torch::kBool);
    const double inter = (ab & bb).sum().item<double>(), uni = (ab | bb).sum().item<double>();
    return uni > 0 ? inter / uni : 1.0;
}

}  // namespace profdit::world
