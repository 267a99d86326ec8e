#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "metrics/series.h"

namespace profdit::metrics {

// LPIPS v0.1 with the AlexNet trunk (richzhang/PerceptualSimilarity, lpips.LPIPS(net="alex")): scaling layer,
// the 5 ReLU taps, unit-normalisation over channels (+1e-10), squared difference, a 1x1 lin conv per tap (no
// bias), then one of the package's two conventions:
//   spatial (default; spatial=True, as TeaCache and VideoSys/PAB evaluate): each tap's map bilinearly
//     upsampled to H x W (align_corners=false), summed over taps, mean over pixels;
//   mean (spatial=False, the package's default): each tap's map averaged at its own resolution, summed.
// Frames are [F, 3, H, W] in [-1, 1], H, W >= 31; both are quantised to uint8 levels first (as the papers
// compare uint8 frames before video encoding) and fed to the net in [-1, 1], float64.
class Lpips {
  public:
    // Keys as the lpips package's state dict with the trunk: net.slice1.0, net.slice2.3, net.slice3.6,
    // net.slice4.8, net.slice5.10 (.weight, .bias) and lin0..lin4.model.1.weight; any float dtype.
    // A missing key or a wrong shape is an InputError naming the file, the key and the expected shape.
    static Lpips load(const std::string& safetensors_path, bool spatial = true);

    Series             operator()(const torch::Tensor& test, const torch::Tensor& ref) const;
    const std::string& source() const { return source_; }
    bool               spatial() const { return spatial_; }
    // "spatial=True (TeaCache/VideoSys convention)" or "spatial=False (the lpips package's default)"
    static std::string convention(bool spatial);

  private:
    Lpips() = default;

    std::vector<torch::Tensor> weight_, bias_;  // trunk convs, float64 CPU
    std::vector<torch::Tensor> lin_;            // [1, C, 1, 1] per tap, float64 CPU
    std::string                source_;
    bool                       spatial_ = true;
};

}  // namespace profdit::metrics
