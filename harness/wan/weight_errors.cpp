#include "wan/weight_errors.h"

#include "common/error.h"

namespace profdit::wan {

std::string shape_str(const std::vector<int64_t>& shape) {
    std::string out = "[";
    for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
}

std::string list_some(const std::vector<std::string>& keys) {
    std::string out;
    for (size_t i = 0; i < keys.size() && i < 5; ++i) out += (i ? ", " : "") + ("'" + keys[i] + "'");
    if (keys.size() > 5) out += " and " + std::to_string(keys.size() - 5) + " more";
    return out;
}

bool is_pickle_path(const std::string& path) {
    for (const std::string ext : {".pth", ".pt", ".ckpt", ".bin"})
        if (path.size() >= ext.size() && path.compare(path.size() - ext.size(), ext.size(), ext) == 0) return true;
    return false;
}

void refuse_pickle(const std::string& path, const std::string& note) {
    const auto        slash = path.find_last_of('/');
    const auto        dot   = path.rfind('.');
    const std::string out   = (dot != std::string::npos && (slash == std::string::npos || dot > slash) ? path.substr(0, dot) : path) + ".safetensors";
    input_error(path + ": a PyTorch pickle cannot be read here; convert it once to safetensors with\n  python3 -c \"import torch; "
                "from safetensors.torch import save_file; save_file({k: v.contiguous() for k, v in torch.load('" + path +
                "', map_location='cpu').items()}, '" + out + "')\"" + (note.empty() ? "" : "\n(" + note + ")"));
}

}  // namespace profdit::wan
