#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "metrics/series.h"

namespace profdit::metrics {

// LPIPS v0.1 with the AlexNet trunk, as VideoSys/TeaCache call it (lpips.LPIPS(net="alex", spatial=True)):
// scaling layer, the 5 ReLU taps, unit-normalisation over channels (+1e-10), squared difference, a 1x1 lin
// conv per tap (no bias), each map bilinearly upsampled to H x W (align_corners=false), summed over taps,
// mean over pixels. Frames are [F, 3, H, W] in [-1, 1], H, W >= 31; both are quantised to uint8 levels first
// (as the papers compare uint8 frames before video encoding) and fed to the net in [-1, 1], float64.
class Lpips {
  public:
    // Keys as the lpips package's state dict with the trunk: net.slice1.0, net.slice2.3, net.slice3.6,
    // net.slice4.8, net.slice5.10 (.weight, .bias) and lin0..lin4.model.1.weight; any float dtype.
    // A missing key or a wrong shape is an InputError naming the file, the key and the expected shape.
    static Lpips load(const std::string& safetensors_path);

    Series             operator()(const torch::Tensor& test, const torch::Tensor& ref) const;
    const std::string& source() const { return source_; }

  private:
    Lpips() = default;

    std::vector<torch::Tensor> weight_, bias_;  // trunk convs, float64 CPU
    std::vector<torch::Tensor> lin_;            // [1, C, 1, 1] per tap, float64 CPU
    std::string                source_;
};

}  // namespace profdit::metrics
