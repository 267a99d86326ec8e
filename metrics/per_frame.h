#pragma once

#include <vector>

#include <torch/torch.h>

namespace profdit::metrics::detail {

// Per-frame values computed on any device as 0-dim tensors, read back in one copy (one synchronisation
// on a GPU instead of one per frame) as float64.
inline std::vector<double> read_per_frame(const std::vector<torch::Tensor>& values) {
    if (values.empty()) return {};
    const auto host = torch::stack(values).to(torch::kCPU, torch::kFloat64).contiguous();  // [F]
    return {host.data_ptr<double>(), host.data_ptr<double>() + host.numel()};
}

}  // namespace profdit::metrics::detail
