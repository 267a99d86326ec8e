#pragma once

#include <cstdint>
#include <string>
#include <vector>

// Text for the loaders' errors (DiT, umT5, VAE), so every component reports bad weights the same way.
namespace profdit::wan {

std::string shape_str(const std::vector<int64_t>& shape);         // "[16, 3, 8]"
std::string list_some(const std::vector<std::string>& keys);      // "'a', 'b', ... and 3 more" (first 5)
bool        is_pickle_path(const std::string& path);              // .pth, .pt, .ckpt, .bin
// InputError: pickles cannot be read; the one-line conversion to <stem>.safetensors next to it, then `note`.
[[noreturn]] void refuse_pickle(const std::string& path, const std::string& note = "");

}  // namespace profdit::wan
