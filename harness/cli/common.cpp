#include <cstdio>

#include "cli/commands.h"
#include "common/threads.h"
#include "common/device.h"
#include "common/error.h"
#include "common/format.h"
#include "wan/checkpoint.h"

namespace profdit::cli {

void RuntimeOptions::add_to(CLI::App* cmd) {
    cmd->add_option("--device", device, "cpu | cuda | cuda:N")->capture_default_str();
    cmd->add_option("--dtype", dtype, "fp32 | bf16 (bf16 keeps norms, modulation, residual stream and head in fp32)")
        ->capture_default_str();
    cmd->add_option("--threads", threads, "CPU threads (0: LibTorch default)")->check(CLI::NonNegativeNumber);
}

void RuntimeOptions::apply() const {
    set_cpu_threads(threads);
}

torch::Tensor read_float_input(const io::SafetensorsReader& r, const std::string& key, int64_t rank) {
    if (!r.contains(key)) input_error(r.path() + ": missing input tensor '" + key + "'");
    const auto& e = r.entry(key);
    if (!c10::isFloatingType(e.dtype))
        input_error(r.path() + ": input '" + key + "' must be floating point, got " + io::dtype_name(e.dtype));
    if (int64_t(e.shape.size()) != rank)
        input_error(r.path() + ": input '" + key + "' must have " + std::to_string(rank) + " dimensions, got " +
                    std::to_string(e.shape.size()));
    return r.load(key).to(torch::kFloat32);
}

torch::Tensor read_int_input(const io::SafetensorsReader& r, const std::string& key, int64_t numel) {
    if (!r.contains(key)) input_error(r.path() + ": missing input tensor '" + key + "'");
    const auto& e = r.entry(key);
    if (!c10::isIntegralType(e.dtype, false))
        input_error(r.path() + ": input '" + key + "' must be an integer tensor, got " + io::dtype_name(e.dtype));
    auto t = r.load(key).to(torch::kInt64);
    if (t.numel() != numel)
        input_error(r.path() + ": input '" + key + "' must have " + std::to_string(numel) + " element(s), got " +
                    std::to_string(t.numel()));
    return t;
}

wan::WanModel load_model(const std::string& weights, const std::string& config, const RuntimeOptions& rt) {
    const auto device = parse_device(rt.device);
    const auto dtype  = parse_dtype(rt.dtype);
    std::optional<wan::WanConfig> cfg;
    if (!config.empty()) cfg = wan::WanConfig::from_json_file(config);
    auto model = wan::load_dit(weights, cfg, device, dtype);
    model->eval();
    return model;
}

std::string format_ms(double ms) { return format_number("%.2f", ms); }

}  // namespace profdit::cli
