#pragma once

#include <array>

#include <torch/torch.h>

namespace profdit::wan {

// 3D RoPE for a (F', H', W') token grid: angles, cos and sin in float64 as the reference computes them,
// stored once per grid in float32 (the rotation itself runs in float32).
// The hd/2 complex channels split c - 2*floor(c/3) / floor(c/3) / floor(c/3) over frame / height / width,
// each axis with its own theta normalisation; angle order [frame | h | w].
struct Rope {
    torch::Tensor cos;  // [L, hd/2] f32
    torch::Tensor sin;  // [L, hd/2] f32
};

std::array<int64_t, 3> rope_axis_pairs(int64_t head_dim);
Rope                   rope_for_grid(int64_t head_dim, const std::array<int64_t, 3>& grid, const torch::Device& device);
// The reference's per-axis table: [max_pos, hd/2, 2] f64 of (cos, sin), columns frame | h | w.
torch::Tensor          rope_table(int64_t head_dim, int64_t max_pos = 1024);

// Rotates interleaved pairs (x[2i], x[2i+1]) in float32 (the reference rotates in complex128: the
// difference is measured in DiTParity, about 1e-6 on the golden cases).
torch::Tensor rope_apply(const torch::Tensor& x, const Rope& rope);  // x: [B, L, H, hd] -> [B, L, H, hd] f32

}  // namespace profdit::wan
