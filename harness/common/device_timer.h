#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include <torch/torch.h>

namespace profdit {

// Times intervals of work queued on a device without waiting for it inside the timed code: on a CUDA
// device each mark is a CUDA event recorded on the current stream (timing enabled), on the CPU a steady
// clock reading (CPU work is done when the call returns). read_ms() waits once, at the end, and returns
// the length of every interval in milliseconds, in the order they were closed.
// Builds without the CUDA runtime headers (Debian's CPU LibTorch 1.13) time a CUDA device with the steady
// clock after a synchronisation per mark instead (`uses_events()` says which).
class DeviceTimer {
  public:
    explicit DeviceTimer(const torch::Device& device);
    ~DeviceTimer();
    DeviceTimer(DeviceTimer&&) noexcept;
    DeviceTimer& operator=(DeviceTimer&&) noexcept;

    void start();  // opens an interval
    void stop();   // closes the open one
    // Milliseconds of every closed interval; synchronises the device once.
    std::vector<double> read_ms() const;
    size_t              intervals() const;
    bool                uses_events() const;
    static bool         events_compiled();  // whether this build records CUDA events

  private:
    struct Marks;
    torch::Device          device_;
    std::unique_ptr<Marks> marks_;
};

}  // namespace profdit
