#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "world/world.h"

namespace profdit::world {

// The STRICT detector, built from the caption alone. A sprite is present in a frame only as one compact
// blob of the caption colour: the largest connected region of pixels within `colour_tol` of the colour
// holds at least 80% of them, its area is within [0.5 x smallest, 1.5 x largest] sprite area and its
// bounding box at most sprite_max + 3 pixels on each side. The video has the sprite when the blob is
// present in at least 7 of 8 frames (87.5%). Direction comes from the blob centroid track (dominant
// axis, at least half the expected travel, off-axis motion at most half of it). The background is the
// dominant colour (and pattern: solid, or both stripe shades) of the pixels outside the blobs. The shape is
// the blob's mean fill of its bounding box (a square fills it, a disc about pi/4 of it: square above 0.89),
// the size its mean bounding-box side. In a world with heading, the heading is the dominant axis of the mean
// offset of the blob's nose-coloured pixels from its centroid. With several sprites, shape, size and heading
// describe the last one.
struct Detection {
    bool          sprite_present = false, direction_ok = false, background_ok = false, shape_ok = false;
    int           frames_present = 0;
    std::vector<bool> blob_in_frame;    // [F]: every sprite's blob passes in that frame (where a video fades)
    std::string   direction_seen, background_seen, pattern_seen, shape_seen;
    std::string   heading_seen;         // where the nose points (WorldConfig::heading), empty when none is seen
    bool          heading_ok = false;   // present, with the nose on the captioned side
    double        size_seen = 0;   // mean bounding-box side of the blob over the frames it is present in (pixels)
    double        size_error = 0;  // how far size_seen lies outside [sprite_min, sprite_max] (0 inside)
    torch::Tensor mask;  // [F, H, W] uint8, the detected blobs (the `gt` mask source for generated videos)
    bool          all() const { return sprite_present && direction_ok && background_ok; }
};

struct DetectorOptions {
    float  colour_tol      = 0.35f;  // L-infinity distance in [-1, 1] units
    double present_share   = 0.875;
};

Detection detect(const torch::Tensor& frames, const std::string& caption, const WorldConfig& cfg,
                 const DetectorOptions& opt = {});  // frames [F, 3, H, W] in [-1, 1]

double mask_iou(const torch::Tensor& a, const torch::Tensor& b);  // uint8 masks of equal shape

}  // namespace profdit::world
