#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/table.h"
#include "common/error.h"
#include "wan/wan_pipeline.h"

namespace profdit::cli {

namespace {

namespace fs = std::filesystem;

struct InfoOptions {
    std::string checkpoint;
    std::string format = "md";
};

// A weight file (DiT only), or a Wan2.1 checkpoint folder (official or diffusers layout: every component).
int run_info(const InfoOptions& o) {
    if (!fs::exists(o.checkpoint)) input_error(o.checkpoint + ": no such file or directory");
    std::vector<wan::ComponentInfo> rows;
    if (fs::is_directory(o.checkpoint)) {
        const auto files = wan::find_checkpoint(o.checkpoint);
        std::cerr << "profdit info: " << o.checkpoint << ": " << wan::layout_name(files.layout) << " layout\n";
        rows = wan::inspect_checkpoint(files);
    } else {
        rows = {wan::inspect_dit_component(o.checkpoint, "")};
    }
    Table t;
    t.columns = {"component", "file", "variant", "key format", "layers", "params", "dtypes"};
    for (const auto& r : rows) t.rows.push_back({r.component, r.files, r.variant, r.key_format, r.layers, std::to_string(r.params), r.dtypes});
    print_table(t, o.format, std::cout);
    return 0;
}

}  // namespace

Command add_info(CLI::App& app) {
    auto  o   = std::make_shared<InfoOptions>();
    auto* cmd = app.add_subcommand("info", "per component (dit, text_encoder, vae, tokenizer): files, detected variant, key format, parameters and dtypes, from headers only");
    cmd->add_option("checkpoint", o->checkpoint, "DiT safetensors or index json, or a Wan2.1 checkpoint folder (official or diffusers layout)")->required();
    cmd->add_option("--format", o->format, "md | csv | json")->capture_default_str();
    return {cmd, [o] { return run_info(*o); }};
}

}  // namespace profdit::cli
