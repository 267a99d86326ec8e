#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

namespace profdit::world {

// Writes videos (each [F, 3, H, W] in [-1, 1]) as a PNG grid: one row per video, one column per frame,
// each pixel scaled up `zoom` times (nearest). Needs OpenCV; InputError when the file cannot be written.
void write_frame_strip(const std::string& path, const std::vector<torch::Tensor>& videos, int zoom = 4);

}  // namespace profdit::world
