#include "run/recorder.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

// The CUDA caching allocator's statistics: only where LibTorch was built with CUDA and the CUDA headers
// are present (the GPU build against a pip PyTorch); Debian's CPU LibTorch 1.13 has neither.
#if defined(__has_include)
#if __has_include(<c10/cuda/CUDACachingAllocator.h>) && __has_include(<cuda_runtime_api.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#define PROFDIT_HAVE_CUDA_ALLOCATOR_STATS 1
#endif
#endif

#include "common/device.h"

namespace profdit::run {

RecordingDenoiser::RecordingDenoiser(sampling::Denoiser& inner, int steps, bool similarity)
    : inner_(inner), similarity_(similarity), rel_l1_(size_t(steps) * 2), cosine_(size_t(steps) * 2) {
    finite_.reserve(size_t(steps) * 2);
}

torch::Tensor RecordingDenoiser::predict(int step, sampling::Branch branch, const torch::Tensor& latent, int64_t t,
                                         const wan::Conditioning& cond) {
    auto out = inner_.predict(step, branch, latent, t, cond);     // [C, F, H, W]
    finite_.push_back(torch::isfinite(out).all());              // 0-dim bool, stays on the device
    if (similarity_) {
        const size_t at = size_t(step) * 2 + size_t(branch);
        if (last_[branch].defined()) {
            const auto cur = out.to(torch::kFloat32).reshape({-1}), prev = last_[branch].to(torch::kFloat32).reshape({-1});  // [N]
            rel_l1_.at(at) = (cur - prev).abs().sum() / prev.abs().sum().clamp_min(1e-12);
            cosine_.at(at) = (cur * prev).sum() / (cur.norm() * prev.norm()).clamp_min(1e-30);
        }
        last_[branch] = out;
    }
    return out;
}

int RecordingDenoiser::first_non_finite() const {
    if (finite_.empty()) return -1;
    const auto ok = torch::stack(finite_).to(torch::kCPU);  // [calls] bool: the one read
    for (int64_t i = 0; i < ok.size(0); ++i)
        if (!ok[i].item<bool>()) return int(i);
    return -1;
}

std::vector<double> RecordingDenoiser::read(const std::vector<torch::Tensor>& v) {
    std::vector<double> out(v.size(), std::nan(""));
    std::vector<torch::Tensor> measured;
    for (const auto& x : v)
        if (x.defined()) measured.push_back(x.to(torch::kFloat64));
    if (measured.empty()) return out;
    const auto host = torch::stack(measured).to(torch::kCPU);  // [measured] f64: the one read
    int64_t    k    = 0;
    for (size_t i = 0; i < v.size(); ++i)
        if (v[i].defined()) out[i] = host[k++].item<double>();
    return out;
}

bool reset_peak_memory(const torch::Device& device) {
#ifdef PROFDIT_HAVE_CUDA_ALLOCATOR_STATS
    if (device.is_cuda()) {
        synchronize(device);
        c10::cuda::CUDACachingAllocator::resetPeakStats(device.index() < 0 ? 0 : device.index());
    }
#endif
    std::ofstream clear("/proc/self/clear_refs");
    return bool(clear << "5" << std::flush);
}

PeakMemory read_peak_memory(const torch::Device& device, bool rss_reset) {
    PeakMemory m;
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);)
        if (line.rfind("VmHWM:", 0) == 0) m.rss_bytes = std::stod(line.substr(6)) * 1024.0;  // "VmHWM:   123 kB"
    m.rss_reset = rss_reset && m.rss_bytes > 0;
    if (m.rss_bytes <= 0) {
        rusage ru{};
        getrusage(RUSAGE_SELF, &ru);
        m.rss_bytes = double(ru.ru_maxrss) * 1024.0;
    }
#ifdef PROFDIT_HAVE_CUDA_ALLOCATOR_STATS
    if (device.is_cuda()) {
        synchronize(device);
        const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
        m.cuda_bytes     = double(stats.allocated_bytes[0].peak);  // StatType::AGGREGATE
    }
#endif
    return m;
}

PeakMemory max_peak(const PeakMemory& a, const PeakMemory& b) {
    PeakMemory m;
    m.rss_bytes  = std::max(a.rss_bytes, b.rss_bytes);
    m.rss_reset  = a.rss_reset && b.rss_reset;
    m.cuda_bytes = std::max(a.cuda_bytes, b.cuda_bytes);
    return m;
}

}  // namespace profdit::run
