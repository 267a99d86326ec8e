#include "run/recorder.h"

#include <sys/resource.h>

#include <chrono>
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
#include "run/non_finite.h"

namespace profdit::run {

RecordingDenoiser::RecordingDenoiser(sampling::Denoiser& inner, int steps, bool similarity, Locate locate)
    : inner_(inner), similarity_(similarity), locate_(std::move(locate)), call_ms_(size_t(steps) * 2, 0.0), rel_l1_(size_t(steps) * 2),
      cosine_(size_t(steps) * 2) {}

torch::Tensor RecordingDenoiser::predict(int step, sampling::Branch branch, const torch::Tensor& latent, int64_t t,
                                         const wan::Conditioning& cond) {
    const auto t0  = std::chrono::steady_clock::now();
    auto       out = inner_.predict(step, branch, latent, t, cond);  // [C, F, H, W]
    synchronize(out.device());
    const size_t at = size_t(step) * 2 + size_t(branch);
    call_ms_.at(at) = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!all_finite(out))
        throw NonFiniteError("NaN/Inf in the model output at step " + std::to_string(step) + " of " + std::to_string(call_ms_.size() / 2) + ", " +
                             (branch == sampling::kCond ? "cond" : "uncond") + " branch" +
                             (locate_ ? "; an uncached replay finds it first in " + locate_(latent, t, cond) : ""));
    if (similarity_) {
        if (last_[branch].defined()) {
            const auto cur = out.to(torch::kFloat64).reshape({-1}), prev = last_[branch].to(torch::kFloat64).reshape({-1});  // [N]
            rel_l1_[at] = (cur - prev).abs().sum() / prev.abs().sum().clamp_min(1e-12);
            cosine_[at] = (cur * prev).sum() / (cur.norm() * prev.norm()).clamp_min(1e-30);
        }
        last_[branch] = out;
    }
    return out;
}

std::vector<double> RecordingDenoiser::read(const std::vector<torch::Tensor>& v) {
    std::vector<double> out(v.size(), std::nan(""));
    for (size_t i = 0; i < v.size(); ++i)
        if (v[i].defined()) out[i] = v[i].item<double>();
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

}  // namespace profdit::run
