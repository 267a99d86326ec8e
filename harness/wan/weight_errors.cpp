#include "wan/weight_errors.h"

#include <set>

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

void check_weights(const torch::nn::Module& model, const std::map<std::string, std::vector<int64_t>>& shapes,
                   const std::string& path, const std::string& what,
                   const std::function<std::string(const std::string&)>& file_name) {
    auto name = [&](const std::string& key) { return file_name ? file_name(key) : key; };
    std::vector<std::string> missing, misshaped, unexpected;
    std::set<std::string>    expected;
    for (const auto& p : model.named_parameters()) {
        expected.insert(p.key());
        const auto it = shapes.find(p.key());
        if (it == shapes.end()) missing.push_back(name(p.key()));
        else if (it->second != p.value().sizes().vec())
            misshaped.push_back(name(p.key()) + "' " + shape_str(it->second) + " (expected " + shape_str(p.value().sizes().vec()) + ")");
    }
    for (const auto& kv : shapes)
        if (!expected.count(kv.first)) unexpected.push_back(name(kv.first));
    std::string err;
    auto add = [&](const std::string& label, const std::string& list) { err += (err.empty() ? "" : "; ") + label + list; };
    if (!missing.empty()) add("missing " + what + " tensors ", list_some(missing));
    if (!misshaped.empty()) {
        std::string s;  // list_some quotes each name; here the quote closes after the name, before the shapes
        for (size_t i = 0; i < misshaped.size() && i < 5; ++i) s += std::string(i ? ", " : "") + "'" + misshaped[i];
        if (misshaped.size() > 5) s += " and " + std::to_string(misshaped.size() - 5) + " more";
        add("mis-shaped tensors ", s);
    }
    if (!unexpected.empty()) add("unexpected tensors ", list_some(unexpected));
    if (!err.empty()) input_error(path + ": " + err);
}

}  // namespace profdit::wan
