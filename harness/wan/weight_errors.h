#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

// Text for the loaders' errors (DiT, umT5, VAE), so every component reports bad weights the same way.
namespace profdit::wan {

std::string shape_str(const std::vector<int64_t>& shape);         // "[16, 3, 8]"
std::string list_some(const std::vector<std::string>& keys);      // "'a', 'b', ... and 3 more" (first 5)
bool        is_pickle_path(const std::string& path);              // .pth, .pt, .ckpt, .bin
// InputError: pickles cannot be read; the one-line conversion to <stem>.safetensors next to it, then `note`.
[[noreturn]] void refuse_pickle(const std::string& path, const std::string& note = "");

// Checks a checkpoint's tensors (`shapes`, keyed by the module's parameter names) against `model`'s
// parameters and throws one InputError naming the file and every problem: "PATH: missing <what> tensors
// 'a', ...; mis-shaped tensors 'b' [17] (expected [16]); unexpected tensors 'c'". Names are given as the file
// spells them: `file_name` maps a module key to it (identity when empty).
void check_weights(const torch::nn::Module& model, const std::map<std::string, std::vector<int64_t>>& shapes,
                   const std::string& path, const std::string& what,
                   const std::function<std::string(const std::string&)>& file_name = {});

}  // namespace profdit::wan
