#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include "io/safetensors.h"
#include "wan/dit.h"

namespace profdit::cli {

// A subcommand and what runs it once parsed (returns the exit code).
struct Command {
    CLI::App*            app;
    std::function<int()> run;
};

Command add_dit_forward(CLI::App& app);
Command add_sample(CLI::App& app);
Command add_info(CLI::App& app);
Command add_synth(CLI::App& app);
Command add_train(CLI::App& app);
Command add_world_eval(CLI::App& app);
#ifdef PROFDIT_HAVE_HDF5
Command add_run(CLI::App& app);
Command add_merge(CLI::App& app);
Command add_profile(CLI::App& app);
Command add_report(CLI::App& app);
#endif
#if defined(PROFDIT_HAVE_HDF5) && defined(PROFDIT_HAVE_EIGEN)
Command add_calibrate(CLI::App& app);
#endif

// --device, --dtype, --threads, shared by the commands that run the model.
struct RuntimeOptions {
    std::string device  = "cpu";
    std::string dtype   = "fp32";
    int         threads = 0;  // 0: LibTorch's default
    void        add_to(CLI::App* cmd);
    void        apply() const;  // sets the thread count
};

// An input tensor with a required rank, converted to f32 (floating) or i64 (integer). InputError naming
// the file, the key and what is wrong.
torch::Tensor read_float_input(const io::SafetensorsReader& r, const std::string& key, int64_t rank);
torch::Tensor read_int_input(const io::SafetensorsReader& r, const std::string& key, int64_t numel);

// Loads the DiT (config detected from the weights when `config` is empty) on rt's device and dtype.
wan::WanModel load_model(const std::string& weights, const std::string& config, const RuntimeOptions& rt);

std::string format_ms(double ms);

}  // namespace profdit::cli
