#pragma once

#include <string>

#include <torch/torch.h>

namespace profdit {

// "cpu" | "cuda" | "cuda:N"; InputError when unknown or when CUDA is asked for but not available.
torch::Device     parse_device(const std::string& s);
// "fp32" | "bf16"; InputError otherwise.
torch::ScalarType parse_dtype(const std::string& s);
std::string       dtype_label(torch::ScalarType t);  // "fp32" | "bf16"
// A readable device description for result rows: "cpu (2 threads)" or the CUDA device name.
std::string       device_label(const torch::Device& d);
// Waits for queued work on `d` (no-op on CPU); timings on CUDA call it before reading the clock.
void              synchronize(const torch::Device& d);

}  // namespace profdit
