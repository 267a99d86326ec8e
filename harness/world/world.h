#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace profdit::world {

// The embedded model's video world: a static background (solid or horizontal stripes) and moving
// sprites with known per-pixel masks, rendered deterministically from a seed.
struct WorldConfig {
    int                      frames = 8, height = 32, width = 32;
    int                      sprite_min = 10, sprite_max = 12;  // diameter / side in pixels
    int                      speed   = 2;                       // pixels per frame
    int                      sprites = 1;
    int                      stripe  = 4;                       // stripe height in pixels
    int                      border  = 0;                       // width of a fixed dark frame around the canvas (pixels);
                                                                // an absolute-position cue, sprites stay inside it
    bool                     heading = false;                   // the front third of every sprite (along its motion) is
                                                                // drawn in nose_rgb(): the direction is visible in each frame
    bool                     wrap    = false;                   // a torus: a sprite leaving one edge comes back at the
                                                                // opposite one and starts anywhere, so where it starts says
                                                                // nothing about where it goes (no border then)
    std::vector<std::string> shapes      = {"circle", "square"};
    std::vector<std::string> colours     = {"red", "yellow", "white"};
    std::vector<std::string> backgrounds = {"blue", "green", "gray"};
    std::vector<std::string> patterns    = {"solid", "stripes"};
    std::vector<std::string> directions  = {"left", "right", "up", "down"};
};

struct Sprite {
    std::string shape, colour, direction;
    int         size = 0;
    double      x0 = 0, y0 = 0;  // centre in the first frame (pixels)
};

struct Scene {
    std::string         background, pattern;
    std::vector<Sprite> sprites;
};

struct Video {
    torch::Tensor frames;  // [F, 3, H, W] f32 in [-1, 1]
    torch::Tensor masks;   // [F, H, W] uint8, 1 = foreground (any sprite)
};

using Rgb = std::array<float, 3>;
Rgb colour_rgb(const std::string& name);  // in [-1, 1]; InputError for an unknown name
Rgb nose_rgb();                           // magenta, no sprite or background colour (WorldConfig::heading)

// "a red circle moving left over blue stripes" / "a white square moving up over a gray background";
// two sprites join with " and ".
std::string caption(const Scene& s);
std::string opposite_direction(const std::string& direction);  // left <-> right, up <-> down
// Parses a caption of this grammar (InputError naming the caption and the word otherwise). Sprite
// sizes and positions are left for the seed to fill.
Scene       parse_caption(const std::string& text, const WorldConfig& cfg);

Scene sample_scene(const WorldConfig& cfg, uint64_t seed);
// The captioned scene with size and start position drawn from `seed` (held-out (caption, seed) pairs).
Scene place_scene(Scene s, const WorldConfig& cfg, uint64_t seed);
Video render(const Scene& s, const WorldConfig& cfg);
bool  in_border(const WorldConfig& cfg, int x, int y);  // pixel (x, y) lies in the frame of width cfg.border

}  // namespace profdit::world
