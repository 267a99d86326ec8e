#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/table.h"
#include "common/error.h"
#include "io/safetensors.h"
#include "wan/checkpoint.h"

namespace profdit::cli {

namespace {

namespace fs = std::filesystem;

struct InfoOptions {
    std::string checkpoint;
    std::string format = "md";
};

// A DiT weight file, or the folder that holds one (official checkpoint folder, or a diffusers
// pipeline folder with transformer/).
std::string find_dit_weights(const std::string& path) {
    if (!fs::exists(path)) input_error(path + ": no such file or directory");
    if (!fs::is_directory(path)) return path;
    for (const std::string sub : {"", "transformer/"})
        for (const std::string name : {"diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.safetensors"}) {
            const auto p = fs::path(path) / (sub + name);
            if (fs::exists(p)) return p.string();
        }
    input_error(path + ": no DiT weights found (looked for diffusion_pytorch_model.safetensors[.index.json] in it and in transformer/)");
}

int run_info(const InfoOptions& o) {
    const std::string     weights = find_dit_weights(o.checkpoint);
    io::SafetensorsReader reader(weights);
    const auto            info = wan::inspect_dit(reader);
    auto cfg = wan::WanConfig::detect_from_weights(info.shapes, weights);
    cfg.validate(weights);
    std::string dtypes;
    for (const auto& kv : info.dtype_params) dtypes += (dtypes.empty() ? "" : " ") + kv.first + ":" + std::to_string(kv.second);
    Table t;
    t.columns = {"component", "file", "variant", "key format", "layers", "dim", "ffn", "heads", "params", "dtypes"};
    t.rows.push_back({"dit", weights, cfg.variant(), wan::key_format_name(info.format), std::to_string(cfg.num_layers),
                      std::to_string(cfg.dim), std::to_string(cfg.ffn_dim), std::to_string(cfg.num_heads) + " (detected)",
                      std::to_string(info.num_params), dtypes});
    print_table(t, o.format, std::cout);
    return 0;
}

}  // namespace

Command add_info(CLI::App& app) {
    auto  o   = std::make_shared<InfoOptions>();
    auto* cmd = app.add_subcommand("info", "detected model variant, key format, dtypes and parameter counts of a checkpoint");
    cmd->add_option("checkpoint", o->checkpoint, "DiT safetensors, index json, or checkpoint folder")->required();
    cmd->add_option("--format", o->format, "md | csv | json")->capture_default_str();
    return {cmd, [o] { return run_info(*o); }};
}

}  // namespace profdit::cli
