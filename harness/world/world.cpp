#include "world/world.h"

#include <cmath>
#include <random>
#include <sstream>

#include "common/draw.h"
#include "common/error.h"

namespace profdit::world {

namespace {

template <typename T>
const T& pick(const std::vector<T>& v, std::mt19937_64& rng) {
    return v[uniform_below(rng, v.size())];
}

bool contains(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

std::array<double, 2> velocity(const std::string& direction, int speed) {
    if (direction == "left") return {-double(speed), 0};
    if (direction == "right") return {double(speed), 0};
    if (direction == "up") return {0, -double(speed)};
    return {0, double(speed)};
}

bool inside(const Sprite& s, double cx, double cy, int x, int y) {
    const double px = x + 0.5, py = y + 0.5, r = s.size / 2.0;
    if (s.shape == "square") return std::abs(px - cx) <= r && std::abs(py - cy) <= r;
    return (px - cx) * (px - cx) + (py - cy) * (py - cy) <= r * r;
}

// The front third of the sprite along its motion: centre offset projected on the direction above r / 3.
bool in_nose(const Sprite& s, const std::array<double, 2>& v, double cx, double cy, int x, int y) {
    const double px = x + 0.5 - cx, py = y + 0.5 - cy, speed = std::hypot(v[0], v[1]);
    return speed > 0 && (px * v[0] + py * v[1]) / speed > s.size / 6.0;
}

// A coordinate on a torus of size n (into [0, n)), or unchanged when the world does not wrap.
double torus(double v, int n, bool wrap) { return wrap ? v - n * std::floor(v / n) : v; }

}  // namespace

Rgb nose_rgb() { return {0.95f, -0.85f, 0.95f}; }

Rgb colour_rgb(const std::string& name) {
    if (name == "red") return {0.95f, -0.85f, -0.85f};
    if (name == "yellow") return {0.95f, 0.85f, -0.9f};
    if (name == "white") return {0.95f, 0.95f, 0.95f};
    if (name == "blue") return {-0.8f, -0.55f, 0.6f};
    if (name == "green") return {-0.7f, 0.35f, -0.65f};
    if (name == "gray") return {-0.15f, -0.15f, -0.15f};
    input_error("unknown colour '" + name + "' (accepted: red, yellow, white, blue, green, gray)");
}

std::string opposite_direction(const std::string& d) {
    if (d == "left") return "right";
    if (d == "right") return "left";
    if (d == "up") return "down";
    if (d == "down") return "up";
    input_error("direction '" + d + "' has no opposite (accepted: left, right, up, down)");
}

std::string caption(const Scene& s) {
    std::ostringstream os;
    for (size_t i = 0; i < s.sprites.size(); ++i)
        os << (i ? " and " : "") << "a " << s.sprites[i].colour << " " << s.sprites[i].shape << " moving " << s.sprites[i].direction;
    os << (s.pattern == "stripes" ? " over " + s.background + " stripes" : " over a " + s.background + " background");
    return os.str();
}

Scene parse_caption(const std::string& text, const WorldConfig& cfg) {
    std::istringstream       is(text);
    std::vector<std::string> w;
    for (std::string t; is >> t;) w.push_back(t);
    auto fail = [&](size_t i, const std::string& why) -> void {
        input_error("caption '" + text + "': " + (i < w.size() ? "word " + std::to_string(i + 1) + " '" + w[i] + "' " : "") + why);
    };
    Scene  s;
    size_t i = 0;
    while (true) {
        if (i + 4 > w.size() || w[i] != "a") fail(i, "expected 'a COLOUR SHAPE moving DIRECTION'");
        Sprite sp;
        sp.colour = w[i + 1];
        sp.shape  = w[i + 2];
        if (!contains(cfg.colours, sp.colour)) fail(i + 1, "is not a sprite colour");
        if (!contains(cfg.shapes, sp.shape)) fail(i + 2, "is not a shape");
        if (w[i + 3] != "moving" || i + 4 >= w.size()) fail(i + 3, "expected 'moving DIRECTION'");
        sp.direction = w[i + 4];
        if (!contains(cfg.directions, sp.direction)) fail(i + 4, "is not a direction");
        s.sprites.push_back(sp);
        i += 5;
        if (i < w.size() && w[i] == "and") {
            ++i;
            continue;
        }
        break;
    }
    if (i >= w.size() || w[i] != "over") fail(i, "expected 'over'");
    ++i;
    const size_t rest = w.size() - i;
    if (rest == 3 && w[i] == "a" && w[i + 2] == "background") {
        s.background = w[i + 1];
        s.pattern    = "solid";
    } else if (rest == 2 && w[i + 1] == "stripes") {
        s.background = w[i];
        s.pattern    = "stripes";
    } else {
        fail(i, "expected 'a COLOUR background' or 'COLOUR stripes' to end the caption");
    }
    if (!contains(cfg.backgrounds, s.background)) fail(i, "background colour '" + s.background + "' is not in the world");
    return s;
}

Scene place_scene(Scene s, const WorldConfig& cfg, uint64_t seed) {
    std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + 1);
    const double    travel = double(cfg.speed) * (cfg.frames - 1);
    for (auto& sp : s.sprites) {
        sp.size = int(uniform_int(rng, cfg.sprite_min, cfg.sprite_max));
        if (cfg.wrap) {
            sp.x0 = std::fmod(std::round(uniform_real(rng, 0, cfg.width)), cfg.width);
            sp.y0 = std::fmod(std::round(uniform_real(rng, 0, cfg.height)), cfg.height);
            continue;
        }
        const auto   v  = velocity(sp.direction, cfg.speed);
        const double r  = sp.size / 2.0;
        // centre range so that the whole track stays in view, inside the border
        const double b   = cfg.border;
        const double xlo = b + r - std::min(0.0, v[0] * (cfg.frames - 1)), xhi = cfg.width - b - r - std::max(0.0, v[0] * (cfg.frames - 1));
        const double ylo = b + r - std::min(0.0, v[1] * (cfg.frames - 1)), yhi = cfg.height - b - r - std::max(0.0, v[1] * (cfg.frames - 1));
        if (xhi < xlo || yhi < ylo)
            input_error("world: a " + std::to_string(sp.size) + " px sprite moving " + std::to_string(travel) +
                        " px does not fit a " + std::to_string(cfg.width) + "x" + std::to_string(cfg.height) + " frame" +
                        (cfg.border ? " inside a " + std::to_string(cfg.border) + " px border" : ""));
        sp.x0 = std::round(uniform_real(rng, xlo, xhi));
        sp.y0 = std::round(uniform_real(rng, ylo, yhi));
        sp.x0 = std::min(std::max(sp.x0, xlo), xhi);
        sp.y0 = std::min(std::max(sp.y0, ylo), yhi);
    }
    return s;
}

Scene sample_scene(const WorldConfig& cfg, uint64_t seed) {
    std::mt19937_64 rng(seed);
    Scene           s;
    s.background = pick(cfg.backgrounds, rng);
    s.pattern    = pick(cfg.patterns, rng);
    for (int i = 0; i < cfg.sprites; ++i) {
        Sprite sp;
        sp.shape     = pick(cfg.shapes, rng);
        sp.colour    = pick(cfg.colours, rng);
        sp.direction = pick(cfg.directions, rng);
        s.sprites.push_back(sp);
    }
    return place_scene(s, cfg, seed);
}

Video render(const Scene& s, const WorldConfig& cfg) {
    const int F = cfg.frames, H = cfg.height, W = cfg.width;
    auto frames = torch::empty({F, 3, H, W});                     // [F, 3, H, W]
    auto masks  = torch::zeros({F, H, W}, torch::kUInt8);          // [F, H, W]
    auto fa     = frames.accessor<float, 4>();
    auto ma     = masks.accessor<uint8_t, 3>();
    const Rgb bg = colour_rgb(s.background);
    for (int f = 0; f < F; ++f)
        for (int y = 0; y < H; ++y) {
            const float shade = (s.pattern == "stripes" && (y / cfg.stripe) % 2) ? 0.45f : 1.0f;  // darker stripes
            for (int x = 0; x < W; ++x)
                for (int c = 0; c < 3; ++c) fa[f][c][y][x] = (bg[c] + 1.0f) * shade - 1.0f;
        }
    const Rgb frame_rgb = {-0.95f, -0.95f, -0.95f};
    for (int f = 0; f < F; ++f)
        for (int y = 0; y < H; ++y)
            for (int x = 0; x < W; ++x)
                if (in_border(cfg, x, y))
                    for (int c = 0; c < 3; ++c) fa[f][c][y][x] = frame_rgb[c];
    for (const auto& sp : s.sprites) {
        const Rgb  body = colour_rgb(sp.colour), nose = nose_rgb();
        const auto v    = velocity(sp.direction, cfg.speed);
        const int wrap = cfg.wrap ? 1 : 0;  // on a torus, also the sprite's images one canvas over
        for (int f = 0; f < F; ++f)
            for (int ky = -wrap; ky <= wrap; ++ky)
                for (int kx = -wrap; kx <= wrap; ++kx) {
                    const double cx = torus(sp.x0 + v[0] * f, W, cfg.wrap) + kx * W, cy = torus(sp.y0 + v[1] * f, H, cfg.wrap) + ky * H;
                    for (int y = 0; y < H; ++y)
                        for (int x = 0; x < W; ++x)
                            if (inside(sp, cx, cy, x, y)) {
                                const Rgb& rgb = cfg.heading && in_nose(sp, v, cx, cy, x, y) ? nose : body;
                                for (int c = 0; c < 3; ++c) fa[f][c][y][x] = rgb[c];
                                ma[f][y][x] = 1;
                            }
                }
    }
    return {frames, masks};
}

bool in_border(const WorldConfig& cfg, int x, int y) {
    return x < cfg.border || y < cfg.border || x >= cfg.width - cfg.border || y >= cfg.height - cfg.border;
}

}  // namespace profdit::world
