#include "common/device.h"

#include <torch/cuda.h>

#include "common/error.h"

namespace profdit {

torch::Device parse_device(const std::string& s) {
    if (s == "cpu") return torch::kCPU;
    if (s == "cuda" || s.rfind("cuda:", 0) == 0) {
        if (!torch::cuda::is_available())
            input_error("device '" + s + "' requested but CUDA is not available in this build or machine (use --device cpu)");
        try {
            return torch::Device(s);
        } catch (const c10::Error&) {
            input_error("invalid device '" + s + "' (accepted: cpu, cuda, cuda:N)");
        }
    }
    input_error("unknown device '" + s + "' (accepted: cpu, cuda, cuda:N)");
}

torch::ScalarType parse_dtype(const std::string& s) {
    if (s == "fp32") return torch::kFloat32;
    if (s == "bf16") return torch::kBFloat16;
    input_error("unknown dtype '" + s + "' (accepted: fp32, bf16)");
}

std::string dtype_label(torch::ScalarType t) { return t == torch::kBFloat16 ? "bf16" : "fp32"; }

std::string device_label(const torch::Device& d) {
    if (d.is_cpu()) return "cpu (" + std::to_string(at::get_num_threads()) + " threads)";
    return d.str();
}

void synchronize(const torch::Device& d) {
    if (d.is_cuda()) torch::cuda::synchronize(d.index());
}

}  // namespace profdit
