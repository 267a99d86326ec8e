#pragma once

#include <string>

#include <torch/torch.h>

#include "common/error.h"
#include "io/safetensors.h"
#include "sampling/cfg_loop.h"
#include "wan/dit.h"

namespace profdit::test {

std::string data_path(const std::string& rel);  // tests/data/<rel>
std::string temp_dir();                          // a fresh directory for this test
double      max_abs_diff(const torch::Tensor& a, const torch::Tensor& b);
int64_t     shipped_model_blocks();              // the DiT blocks of data/models/sprites-tiny (its config.json)

// The parity case's tiny Wan2.1 DiT (tests/data/wan21_tiny: official-code random weights), on the CPU.
wan::WanModel tiny_model();

// sampling::sample_cfg from raw text contexts [Lc, text_dim]: both branches are conditioned with `model` first.
sampling::SampleResult sample_cfg(sampling::Denoiser& d, wan::WanModelImpl& model, const torch::Tensor& noise,
                                  const torch::Tensor& context_cond, const torch::Tensor& context_uncond,
                                  const sampling::SampleOptions& opt);

struct CommandResult {
    int         code = -1;
    std::string out, err;
};
// The first of $PROFDIT_PYTHON, /usr/bin/python3 (Debian's, where scripts/setup installs matplotlib and h5py)
// and the PATH's python3 that imports every module of `modules` ("matplotlib, h5py"); "" when none does.
std::string python_with(const std::string& modules);

// Runs the profdit binary with `args` (shell-quoted by the caller when needed); `launcher` goes before it on
// the shell line (e.g. "prlimit --fsize=N").
CommandResult run_profdit(const std::string& args, const std::string& launcher = "");
// The message of the InputError `fn` throws, or "(no InputError)".
template <class F>
std::string input_error_of(F&& fn) {
    try {
        fn();
    } catch (const InputError& e) {
        return e.what();
    }
    return "(no InputError)";
}

// Runs a shell command line (quoted by the caller), capturing its stdout and stderr.
CommandResult run_command(const std::string& command);
// Whether `program` is found on the PATH.
bool on_path(const std::string& program);

}  // namespace profdit::test
