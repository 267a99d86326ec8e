#include "metrics/lpips.h"

#include <algorithm>
#include <array>
#include <sstream>

#include "io/safetensors.h"
#include "metrics/per_frame.h"

namespace profdit::metrics {

namespace {

struct TrunkConv {
    const char* key;
    int64_t     out, in, kernel, stride, padding;
    bool        pool_before;  // MaxPool(3, 2) before the conv
};

// torchvision AlexNet `features` as the lpips package slices it; a ReLU follows every conv.
constexpr std::array<TrunkConv, 5> kTrunk = {{
    {"net.slice1.0", 64, 3, 11, 4, 2, false},
    {"net.slice2.3", 192, 64, 5, 1, 2, true},
    {"net.slice3.6", 384, 192, 3, 1, 1, true},
    {"net.slice4.8", 256, 384, 3, 1, 1, false},
    {"net.slice5.10", 256, 256, 3, 1, 1, false},
}};

constexpr int64_t kMinSide = 31;  // smallest frame side for which every AlexNet tap is non-empty

std::string shape_text(const std::vector<int64_t>& shape) {
    std::ostringstream s;
    s << c10::IntArrayRef(shape);
    return s.str();
}

torch::Tensor load_checked(const io::SafetensorsReader& r, const std::string& key, const std::vector<int64_t>& shape) {
    const auto where = r.path() + ": LPIPS weight '" + key + "'";
    if (!r.contains(key)) input_error(where + " is missing (expected shape " + shape_text(shape) + ")");
    const auto& e = r.entry(key);
    if (e.shape != shape)
        input_error(where + " has shape " + shape_text(e.shape) + ", expected " + shape_text(shape));
    if (!c10::isFloatingType(e.dtype)) input_error(where + " must be a float tensor (got " + io::dtype_name(e.dtype) + ")");
    return r.load(key).to(torch::kFloat64);
}

// Per-pixel unit normalisation over channels: [N, C, h, w] -> [N, C, h, w]
torch::Tensor unit_normalise(const torch::Tensor& f) { return f / (f.square().sum(1, true).sqrt() + 1e-10); }

}  // namespace

std::string Lpips::convention(bool spatial) {
    return spatial ? "spatial=True (TeaCache/VideoSys convention)" : "spatial=False (the lpips package's default)";
}

Lpips Lpips::load(const std::string& safetensors_path, bool spatial) {
    io::SafetensorsReader r(safetensors_path);
    Lpips                 m;
    m.source_  = safetensors_path;
    m.spatial_ = spatial;
    for (size_t k = 0; k < kTrunk.size(); ++k) {
        const auto& c   = kTrunk[k];
        const auto  key = std::string(c.key);
        m.weight_.push_back(load_checked(r, key + ".weight", {c.out, c.in, c.kernel, c.kernel}));
        m.bias_.push_back(load_checked(r, key + ".bias", {c.out}));
        m.lin_.push_back(load_checked(r, "lin" + std::to_string(k) + ".model.1.weight", {1, c.out, 1, 1}));
    }
    return m;
}

Series Lpips::operator()(const torch::Tensor& test, const torch::Tensor& ref) const {
    detail::check_frames("lpips", test, ref);
    const auto H = test.size(2), W = test.size(3);
    if (std::min(H, W) < kMinSide)
        input_error("lpips: frames must be at least 31x31 for the AlexNet trunk (got " + detail::shape_of(test) + ")");
    const auto dev = test.device();
    const auto x   = detail::to_unit(test) * 2.0 - 1.0;                    // [F, 3, H, W]
    const auto y   = (detail::to_unit(ref) * 2.0 - 1.0).to(dev);          // [F, 3, H, W]
    const auto opt = torch::TensorOptions().dtype(torch::kFloat64).device(dev);
    const auto shift = torch::tensor({-0.030, -0.088, -0.188}, opt).view({1, 3, 1, 1});
    const auto scale = torch::tensor({0.458, 0.448, 0.450}, opt).view({1, 3, 1, 1});
    std::vector<torch::Tensor> w, b, lin;
    for (size_t k = 0; k < kTrunk.size(); ++k) {
        w.push_back(weight_[k].to(dev));
        b.push_back(bias_[k].to(dev));
        lin.push_back(lin_[k].to(dev));
    }
    const auto up = torch::nn::functional::InterpolateFuncOptions()
                        .size(std::vector<int64_t>{H, W})
                        .mode(torch::kBilinear)
                        .align_corners(false);
    Series s;
    s.name = "lpips";
    std::vector<torch::Tensor> per_frame;  // 0-dim, on the frames' device
    for (int64_t f = 0; f < x.size(0); ++f) {
        auto h    = (torch::stack({x[f], y[f]}) - shift) / scale;  // [2, 3, H, W]
        auto dist = torch::zeros({1, 1, spatial_ ? H : 1, spatial_ ? W : 1}, opt);  // [1, 1, H, W] or [1, 1, 1, 1]
        for (size_t k = 0; k < kTrunk.size(); ++k) {
            const auto& c = kTrunk[k];
            if (c.pool_before) h = torch::max_pool2d(h, {3, 3}, {2, 2});
            h             = torch::relu(torch::conv2d(h, w[k], b[k], {c.stride, c.stride}, {c.padding, c.padding}));  // [2, C, h, w]
            const auto n  = unit_normalise(h);
            const auto d  = (n[0] - n[1]).square().unsqueeze(0);                              // [1, C, h, w]
            const auto m  = torch::conv2d(d, lin[k]);                                          // [1, 1, h, w]
            dist          = dist + (spatial_ ? torch::nn::functional::interpolate(m, up) : m.mean({2, 3}, true));
        }
        per_frame.push_back(dist.mean());
    }
    s.per_frame = detail::read_per_frame(per_frame);
    s.mean = detail::mean_skipping_nan(s.per_frame);
    s.note = "LPIPS v0.1 alex, " + convention(spatial_) + "; weights " + source_;
    return s;
}

}  // namespace profdit::metrics
