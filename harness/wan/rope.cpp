#include "wan/rope.h"

namespace profdit::wan {

namespace {

torch::Tensor axis_angles(int64_t max_pos, int64_t axis_dim, const torch::Device& device) {
    auto opt      = torch::TensorOptions().dtype(torch::kFloat64).device(device);
    auto inv_freq = 1.0 / torch::pow(10000.0, torch::arange(0, axis_dim, 2, opt) / double(axis_dim));  // [axis_dim/2]
    return torch::outer(torch::arange(max_pos, opt), inv_freq);                                         // [max_pos, axis_dim/2]
}

}  // namespace

std::array<int64_t, 3> rope_axis_pairs(int64_t head_dim) {
    const int64_t c = head_dim / 2;
    return {c - 2 * (c / 3), c / 3, c / 3};
}

torch::Tensor rope_table(int64_t head_dim, int64_t max_pos) {
    const auto p = rope_axis_pairs(head_dim);
    auto angles  = torch::cat({axis_angles(max_pos, 2 * p[0], torch::kCPU), axis_angles(max_pos, 2 * p[1], torch::kCPU),
                               axis_angles(max_pos, 2 * p[2], torch::kCPU)},
                              1);                                   // [max_pos, hd/2]
    return torch::stack({torch::cos(angles), torch::sin(angles)}, -1);  // [max_pos, hd/2, 2]
}

Rope rope_for_grid(int64_t head_dim, const std::array<int64_t, 3>& grid, const torch::Device& device) {
    const auto p  = rope_axis_pairs(head_dim);
    const auto F = grid[0], H = grid[1], W = grid[2];
    auto af = axis_angles(F, 2 * p[0], device).view({F, 1, 1, p[0]}).expand({F, H, W, p[0]});  // [F, H, W, pf]
    auto ah = axis_angles(H, 2 * p[1], device).view({1, H, 1, p[1]}).expand({F, H, W, p[1]});  // [F, H, W, ph]
    auto aw = axis_angles(W, 2 * p[2], device).view({1, 1, W, p[2]}).expand({F, H, W, p[2]});  // [F, H, W, pw]
    auto angles = torch::cat({af, ah, aw}, -1).reshape({F * H * W, head_dim / 2});             // [L, hd/2]
    return {torch::cos(angles).to(torch::kFloat32), torch::sin(angles).to(torch::kFloat32)};
}

torch::Tensor rope_apply(const torch::Tensor& x, const Rope& rope) {
    const auto B = x.size(0), L = x.size(1), H = x.size(2), hd = x.size(3);
    auto xd  = x.to(torch::kFloat32).view({B, L, H, hd / 2, 2});      // [B, L, H, hd/2, 2]
    auto re  = xd.select(-1, 0);                                      // [B, L, H, hd/2]
    auto im  = xd.select(-1, 1);                                      // [B, L, H, hd/2]
    auto c   = rope.cos.view({1, L, 1, hd / 2});                      // [1, L, 1, hd/2]
    auto s   = rope.sin.view({1, L, 1, hd / 2});                      // [1, L, 1, hd/2]
    auto out = torch::empty({B, L, H, hd / 2, 2}, x.options().dtype(torch::kFloat32));  // [B, L, H, hd/2, 2]
    out.select(-1, 0).copy_(torch::addcmul(re * c, im, s, -1));      // re c - im s
    out.select(-1, 1).copy_(torch::addcmul(re * s, im, c));          // re s + im c
    return out.view({B, L, H, hd});
}

}  // namespace profdit::wan
