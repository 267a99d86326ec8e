#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "store/store.h"

namespace profdit::cli {

namespace {

struct MergeOptions {
    std::string              out;
    std::vector<std::string> inputs;
    bool                     force = false;
};

}  // namespace

Command add_merge(CLI::App& app) {
    auto  o   = std::make_shared<MergeOptions>();
    auto* cmd = app.add_subcommand("merge", "join the HDF5 files of a sharded sweep (same experiment) into one");
    cmd->add_option("out", o->out, "merged HDF5 file to write")->required();
    cmd->add_option("inputs", o->inputs, "shard files")->required();
    cmd->add_flag("--force", o->force, "overwrite an existing output file");
    return {cmd, [o] {
                const auto m = store::merge(o->out, o->inputs, o->force);
                for (const auto& s : m.skipped) std::cerr << "profdit merge: left out (not done): " << s << "\n";
                std::cerr << "profdit merge: " << o->inputs.size() << " file(s) -> " << o->out << ": " << m.copied.size() << " group(s) copied, "
                          << m.skipped.size() << " left out (not done; rerun their shard with --resume, then merge again)\n";
                return 0;
            }};
}

}  // namespace profdit::cli
