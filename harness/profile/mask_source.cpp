#include "profile/mask_source.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "common/error.h"

#ifdef PROFDIT_HAVE_HDF5
#include "store/h5.h"
#endif
#ifdef PROFDIT_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#endif

namespace profdit::profile {

namespace fs = std::filesystem;

namespace {

std::string shape_text(torch::IntArrayRef s) {
    std::string t = "[";
    for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
    return t + "]";
}

// [out, in]: the share of output cell i covered by input cell p (rows sum to 1).
torch::Tensor area_weights(int64_t in, int64_t out) {
    auto         w     = torch::zeros({out, in}, torch::kFloat64);  // [out, in]
    auto         a     = w.accessor<double, 2>();
    const double scale = double(in) / double(out);
    for (int64_t i = 0; i < out; ++i) {
        const double lo = double(i) * scale, hi = double(i + 1) * scale;
        for (int64_t p = int64_t(std::floor(lo)); p < std::min<int64_t>(in, int64_t(std::ceil(hi))); ++p)
            a[i][p] = (std::min(hi, double(p + 1)) - std::max(lo, double(p))) / scale;
    }
    return w;
}

// Foreground share per output cell: mask [F, h, w] -> f64 [F, H, W].
torch::Tensor area_share(const torch::Tensor& mask, int64_t H, int64_t W) {
    auto m = (mask != 0).to(torch::kFloat64);                                          // [F, h, w]
    return torch::matmul(torch::matmul(area_weights(m.size(1), H), m), area_weights(m.size(2), W).t());  // [F, H, W]
}

torch::Tensor at_least_half(const torch::Tensor& share) { return (share >= 0.5 - 1e-9).to(torch::kUInt8); }

// Masks [F', h, w] of a file -> [F, H, W]: one frame broadcast when `broadcast`, other sizes area-resized.
torch::Tensor fit(torch::Tensor m, const std::string& what, int64_t F, int64_t H, int64_t W, bool broadcast) {
    if (m.size(0) != F && !(broadcast && m.size(0) == 1))
        input_error(what + " has " + std::to_string(m.size(0)) + " mask frames, the video has " + std::to_string(F));
    if (m.size(1) == 0 || m.size(2) == 0) input_error(what + " has an empty mask " + shape_text(m.sizes()));
    m = (m.size(1) == H && m.size(2) == W) ? (m != 0).to(torch::kUInt8) : at_least_half(area_share(m, H, W));
    return m.expand({F, H, W}).contiguous();  // [F, H, W]
}

bool ends_with(std::string s, const std::string& suffix) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// ---- HDF5 ----

#ifdef PROFDIT_HAVE_HDF5
template <class T>
torch::Tensor ints_to_float(const std::vector<char>& raw, const std::vector<int64_t>& shape) {
    const auto n = int64_t(raw.size() / sizeof(T));
    auto       t = torch::empty({n}, torch::kFloat32);  // [n]
    float*     p = t.data_ptr<float>();
    for (int64_t i = 0; i < n; ++i) p[i] = float(reinterpret_cast<const T*>(raw.data())[i]);
    return t.view(shape);
}

// An enum dataset (h5py's bool) as its integer values.
torch::Tensor read_enum(hid_t ds, hid_t type, const std::vector<int64_t>& shape, const std::string& what) {
    namespace h5 = store::h5;
    h5::Handle   mem(H5Tget_native_type(type, H5T_DIR_ASCEND), H5Tclose);
    h5::Handle   base(mem.valid() ? H5Tget_super(mem.get()) : H5I_INVALID_HID, H5Tclose);
    if (!base.valid()) input_error(what + ": cannot read its enum type");
    const size_t size = H5Tget_size(mem.get());
    const bool   sign = H5Tget_sign(base.get()) == H5T_SGN_2;
    int64_t      n    = 1;
    for (auto d : shape) n *= d;
    std::vector<char> raw(size_t(n) * size);
    if (n > 0 && H5Dread(ds, mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()) < 0) input_error(what + ": cannot read it");
    switch (size) {
        case 1: return sign ? ints_to_float<int8_t>(raw, shape) : ints_to_float<uint8_t>(raw, shape);
        case 2: return sign ? ints_to_float<int16_t>(raw, shape) : ints_to_float<uint16_t>(raw, shape);
        case 4: return sign ? ints_to_float<int32_t>(raw, shape) : ints_to_float<uint32_t>(raw, shape);
        case 8: return sign ? ints_to_float<int64_t>(raw, shape) : ints_to_float<uint64_t>(raw, shape);
        default: input_error(what + ": enum of " + std::to_string(size) + " bytes is not supported");
    }
}

torch::Tensor read_h5(const std::string& file, std::string dataset, int64_t F, int64_t H, int64_t W) {
    namespace h5 = store::h5;
    h5::File f(file, h5::Mode::read);
    dataset                = h5::absolute(dataset);
    const std::string what = file + ": dataset '" + dataset + "'";
    if (!h5::exists(f, dataset)) {
        std::string names;
        for (const auto& n : h5::children(f, "/", H5I_DATASET)) names += (names.empty() ? "" : ", ") + n;
        input_error(what + " does not exist (datasets at the root: " + (names.empty() ? "none" : names) +
                    "; name one with FILE:DATASET)");
    }
    h5::Handle ds(H5Dopen2(f.id(), dataset.c_str(), H5P_DEFAULT), H5Dclose);
    if (!ds.valid()) input_error(what + " is not a dataset");
    h5::Handle type(H5Dget_type(ds.get()), H5Tclose);
    h5::Handle space(H5Dget_space(ds.get()), H5Sclose);
    const int  rank = H5Sget_simple_extent_ndims(space.get());
    if (rank < 0) input_error(what + ": cannot read its shape");
    std::vector<hsize_t> dims(size_t(rank), 0);
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    const std::vector<int64_t> shape(dims.begin(), dims.end());
    if (!(rank == 2 || rank == 3 || (rank == 4 && shape[1] == 1)))
        input_error(what + " has shape " + shape_text(shape) + "; expected [F, H, W], [F, 1, H, W] or [H, W]");

    torch::Tensor     values;  // f32, the file's shape
    const H5T_class_t cls = H5Tget_class(type.get());
    if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
        values = torch::empty(shape, torch::kFloat32);
        if (values.numel() > 0 && H5Dread(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data_ptr()) < 0)
            input_error(what + ": cannot read it");
    } else if (cls == H5T_ENUM) {
        values = read_enum(ds.get(), type.get(), shape, what);
    } else {
        input_error(what + " has HDF5 type class " + std::to_string(int(cls)) + "; expected integer, float or bool");
    }
    auto m = (values > 0.5).to(torch::kUInt8);                             // the file's shape
    m      = rank == 2 ? m.unsqueeze(0) : m.view({shape[0], shape[rank - 2], shape[rank - 1]});  // [F', h, w]
    return fit(m, what, F, H, W, rank == 2);
}
#endif

// ---- PNG ----

#ifdef PROFDIT_HAVE_OPENCV
// Nonzero in any colour channel (alpha ignored) -> uint8 [h, w] 0/1.
torch::Tensor read_png(const std::string& file, const std::string& what) {
    cv::Mat img = cv::imread(file, cv::IMREAD_UNCHANGED);
    if (img.empty()) input_error(what + ": cannot read " + file + " as an image");
    const int colours = img.channels() == 2 ? 1 : std::min(img.channels(), 3);
    cv::Mat   any     = cv::Mat::zeros(img.rows, img.cols, CV_8U);
    for (int c = 0; c < colours; ++c) {
        cv::Mat ch;
        cv::extractChannel(img, ch, c);
        any |= (ch != 0);
    }
    return torch::from_blob(any.data, {img.rows, img.cols}, torch::kUInt8).clone() / 255;  // [h, w]
}

torch::Tensor stack_pngs(const std::vector<std::string>& files, const std::string& what) {
    std::vector<torch::Tensor> frames;
    for (size_t i = 0; i < files.size(); ++i) {
        frames.push_back(read_png(files[i], what + " frame " + std::to_string(i)));
        if (frames[i].sizes() != frames[0].sizes())
            input_error(what + " frame " + std::to_string(i) + " (" + files[i] + ") is " + shape_text(frames[i].sizes()) +
                        ", frame 0 is " + shape_text(frames[0].sizes()));
    }
    return torch::stack(frames);  // [F', h, w]
}

std::string frame_path(const std::string& pattern, int64_t i) {
    std::vector<char> buf(pattern.size() + 32);
    std::snprintf(buf.data(), buf.size(), pattern.c_str(), int(i));
    return buf.data();
}

torch::Tensor read_png_pattern(const std::string& pattern, int64_t F, int64_t H, int64_t W) {
    const auto pct = pattern.find('%');
    const auto end = pattern.find_first_not_of("0123456789-+ ", pct + 1);
    if (end == std::string::npos || pattern[end] != 'd' || pattern.find('%', end) != std::string::npos)
        input_error("mask pattern '" + pattern + "' needs exactly one %d field (e.g. masks/frame_%03d.png)");
    const int64_t start = fs::exists(frame_path(pattern, 0)) ? 0 : 1;
    if (!fs::exists(frame_path(pattern, start)))
        input_error("mask pattern '" + pattern + "': neither " + frame_path(pattern, 0) + " nor " + frame_path(pattern, 1) +
                    " exists");
    std::vector<std::string> files;
    for (int64_t i = 0; i < F; ++i) {
        files.push_back(frame_path(pattern, start + i));
        if (!fs::exists(files.back()))
            input_error("mask pattern '" + pattern + "' has " + std::to_string(i) + " mask frames (no " + files.back() +
                        "), the video has " + std::to_string(F));
    }
    if (fs::exists(frame_path(pattern, start + F)))
        input_error("mask pattern '" + pattern + "' has more mask frames than the video's " + std::to_string(F) + " (" +
                    frame_path(pattern, start + F) + " exists)");
    return fit(stack_pngs(files, "mask pattern '" + pattern + "'"), "mask pattern '" + pattern + "'", F, H, W, false);
}

torch::Tensor read_png_dir(const std::string& dir, int64_t F, int64_t H, int64_t W) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && ends_with(e.path().filename().string(), ".png")) files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    const std::string what = "mask directory " + dir;
    if (files.empty()) input_error(what + " holds no .png files");
    if (int64_t(files.size()) != F)
        input_error(what + " has " + std::to_string(files.size()) + " mask frames (PNG files), the video has " +
                    std::to_string(F));
    return fit(stack_pngs(files, what), what, F, H, W, false);
}
#endif

}  // namespace

torch::Tensor resize_mask(const torch::Tensor& mask, int64_t F_lat, int64_t H_lat, int64_t W_lat, int64_t temporal_stride) {
    if (mask.dim() != 3) input_error("foreground mask must be [F, H, W], got " + shape_text(mask.sizes()));
    if (F_lat < 1 || H_lat < 1 || W_lat < 1 || temporal_stride < 1)
        input_error("resize_mask: latent grid [" + std::to_string(F_lat) + ", " + std::to_string(H_lat) + ", " +
                    std::to_string(W_lat) + "] and temporal stride " + std::to_string(temporal_stride) + " must be positive");
    const int64_t F = mask.size(0);
    if (F != 1 + (F_lat - 1) * temporal_stride)
        input_error("foreground mask has " + std::to_string(F) + " frames; " + std::to_string(F_lat) +
                    " latent frames at temporal stride " + std::to_string(temporal_stride) + " need " +
                    std::to_string(1 + (F_lat - 1) * temporal_stride));
    if (mask.size(1) == 0 || mask.size(2) == 0) input_error("foreground mask " + shape_text(mask.sizes()) + " is empty");
    auto share = area_share(mask.cpu(), H_lat, W_lat);  // [F, H_lat, W_lat]
    if (temporal_stride > 1) {
        auto rest = share.slice(0, 1).view({F_lat - 1, temporal_stride, H_lat, W_lat}).mean(1);  // [F_lat - 1, H_lat, W_lat]
        share     = torch::cat({share.slice(0, 0, 1), rest});                                     // [F_lat, H_lat, W_lat]
    }
    return at_least_half(share);
}

torch::Tensor load_mask_file(const std::string& spec, int64_t F, int64_t H, int64_t W) {
    if (F < 1 || H < 1 || W < 1)
        input_error("mask file " + spec + ": video size [" + std::to_string(F) + ", " + std::to_string(H) + ", " +
                    std::to_string(W) + "] must be positive");
    std::string file = spec, dataset = "masks";
    for (const std::string ext : {".h5:", ".hdf5:"}) {
        const auto at = spec.rfind(ext);
        if (at != std::string::npos) file = spec.substr(0, at + ext.size() - 1), dataset = spec.substr(at + ext.size());
    }
    const bool hdf5 = ends_with(file, ".h5") || ends_with(file, ".hdf5");
    const bool pattern = !hdf5 && spec.find('%') != std::string::npos;
    if (!pattern && !fs::exists(file)) input_error("mask file " + file + " does not exist");
    if (hdf5) {
        if (dataset.empty()) input_error("mask file " + spec + ": empty dataset name after ':'");
#ifdef PROFDIT_HAVE_HDF5
        return read_h5(file, dataset, F, H, W);
#else
        input_error("mask file " + file + ": HDF5 masks need HDF5, and this profdit was built without it");
#endif
    }
    if (!pattern && !fs::is_directory(file) && !ends_with(file, ".png"))
        input_error("mask file " + file + " is not .h5/.hdf5[:DATASET], .png, a directory of PNGs or a %d pattern");
#ifdef PROFDIT_HAVE_OPENCV
    if (pattern) return read_png_pattern(spec, F, H, W);
    if (fs::is_directory(file)) return read_png_dir(file, F, H, W);
    return fit(read_png(file, "mask file " + file).unsqueeze(0), "mask file " + file, F, H, W, true);
#else
    input_error("mask file " + spec + ": PNG masks need OpenCV, and this profdit was built without it (use an HDF5 mask file)");
#endif
}

}  // namespace profdit::profile
