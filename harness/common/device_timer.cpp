#include "common/device_timer.h"

#include <stdexcept>

// CUDA events only where LibTorch was built with CUDA and the CUDA runtime headers are present (the GPU build
// against a pip PyTorch); Debian's CPU LibTorch 1.13 ships ATen/cuda headers but not the runtime's.
#if defined(__has_include)
#if __has_include(<ATen/cuda/CUDAEvent.h>) && __has_include(<cuda_runtime_api.h>)
#include <ATen/cuda/CUDAEvent.h>
#define PROFDIT_HAVE_CUDA_EVENTS 1
#endif
#endif

#include "common/device.h"

namespace profdit {

using Clock = std::chrono::steady_clock;

struct DeviceTimer::Marks {
    std::vector<Clock::time_point> start, stop;  // steady clock (CPU, or CUDA without event support)
#ifdef PROFDIT_HAVE_CUDA_EVENTS
    std::vector<std::unique_ptr<at::cuda::CUDAEvent>> ev_start, ev_stop;
#endif
    // One mark (opening or closing an interval): an event recorded on the current stream, or a clock reading.
    void add(bool opening, bool events, const torch::Device& device) {
#ifdef PROFDIT_HAVE_CUDA_EVENTS
        if (events) {
            auto& list = opening ? ev_start : ev_stop;
            list.push_back(std::make_unique<at::cuda::CUDAEvent>(cudaEventDefault));
            list.back()->record();
            return;
        }
#endif
        (void)events;
        if (device.is_cuda()) synchronize(device);
        (opening ? start : stop).push_back(Clock::now());
    }
};

DeviceTimer::DeviceTimer(const torch::Device& device) : device_(device), marks_(std::make_unique<Marks>()) {}
DeviceTimer::~DeviceTimer()                                = default;
DeviceTimer::DeviceTimer(DeviceTimer&&) noexcept            = default;
DeviceTimer& DeviceTimer::operator=(DeviceTimer&&) noexcept = default;

bool DeviceTimer::events_compiled() {
#ifdef PROFDIT_HAVE_CUDA_EVENTS
    return true;
#else
    return false;
#endif
}

bool DeviceTimer::uses_events() const { return device_.is_cuda() && events_compiled(); }

void DeviceTimer::start() { marks_->add(true, uses_events(), device_); }
void DeviceTimer::stop() { marks_->add(false, uses_events(), device_); }

size_t DeviceTimer::intervals() const {
#ifdef PROFDIT_HAVE_CUDA_EVENTS
    if (uses_events()) return marks_->ev_stop.size();
#endif
    return marks_->stop.size();
}

std::vector<double> DeviceTimer::read_ms() const {
    std::vector<double> ms;
#ifdef PROFDIT_HAVE_CUDA_EVENTS
    if (uses_events()) {
        synchronize(device_);
        for (size_t i = 0; i < marks_->ev_stop.size(); ++i) ms.push_back(double(marks_->ev_start[i]->elapsed_time(*marks_->ev_stop[i])));
        return ms;
    }
#endif
    for (size_t i = 0; i < marks_->stop.size(); ++i)
        ms.push_back(std::chrono::duration<double, std::milli>(marks_->stop[i] - marks_->start[i]).count());
    return ms;
}

}  // namespace profdit
