#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "run/budget.h"
#include "sampling/cfg_loop.h"

namespace profdit::run {

// `model:` — a shipped preset (data/models/<preset>), a world-model folder, a Wan2.1 checkpoint folder
// (official or diffusers layout), or a Wan2.1 configuration with seeded random weights (`config:` with
// `init: random`); where it runs and in which dtype. Wan models also take the video size.
struct ModelSpec {
    std::string preset, dir, checkpoint;
    std::string config;            // wan2.1-t2v-1.3b | wan2.1-t2v-14b | PATH.json (with init: random)
    std::string init;              // "random" with config, "" otherwise
    uint64_t    seed = 0;          // random weights
    int         frames = 81, height = 480, width = 832;  // Wan models: video size
    std::string device = "cpu", dtype = "fp32";
    int         threads = 0;
    bool is_wan() const { return !checkpoint.empty() || !config.empty(); }
};

// One entry of `metrics:`; lpips carries the user's weight file and its convention (spatial: true, as
// TeaCache/VideoSys evaluate, or false, the lpips package's default: metrics/lpips.h).
struct MetricSpec {
    std::string name;
    std::string weights;
    bool        spatial = true;
};

// One point of the policy grid: a policy node with scalar options, and where it came from. A setting with a
// budget target has it taken out of the node; the sweep finds the knob before its runs (run/budget.h).
struct PolicySetting {
    YAML::Node                  node;
    std::string                 source;  // file:line
    std::optional<BudgetTarget> target;
};

// `calibration:` — the (prompt, seed) pairs budget targets are matched on; none of its prompts is an
// evaluation prompt, so a matched knob is never tuned on the pairs it is judged on.
struct CalibrationSpec {
    std::vector<std::string> prompts;
    std::vector<uint64_t>    seeds;
    double                   tolerance = 0.02;  // relative to the target
};

// `profile:` — observers on the run. Similarity (every run): the noise prediction's change per step.
// Attention (reference runs, in an extra untimed pass): received attention per block and step, the
// foreground mask (`gt`, `auto` or `file`) and ProfilingDiT's R_attn per step and block.
struct ProfileSpec {
    bool        similarity = true;
    bool        attention  = false;
    std::string mask       = "gt";    // gt | auto | file
    std::string mask_file;            // `file`: path; {prompt} and {seed} are replaced per pair
    std::string high       = "mean";  // a token's received attention is high above: mean (value x its frame's mean) | quantile (of its frame)
    double      high_value = 1.0;
    int64_t     query_chunk = 64, query_stride = 1;
    bool        keep_received = false;  // store received attention [S, blocks, L] (large for real models)
};

struct Experiment {
    std::string                path;
    std::string                name;
    std::string                yaml;  // the effective experiment (after --set), as stored in the HDF5 file
    ModelSpec                  model;
    sampling::SampleOptions    sampling;
    std::vector<std::string>   prompts;
    std::vector<uint64_t>      seeds;
    std::vector<PolicySetting> policies;  // expanded grid, `none` first when listed
    CalibrationSpec            calibration;
    std::vector<MetricSpec>    metrics;
    int                        warmup_runs = 1, repeats = 1;
    ProfileSpec                profile;
    bool                       video      = false; // store uint8 frames of every run
    std::string                output;
};

// Every path in an experiment (model dir, checkpoint and config JSON, prompts_file, a policy's plan and
// coefficients, lpips weights, profile mask_file, output) is used as written: a relative one resolves against
// the working directory, like a path on the command line (docs/experiments.md, "Paths").
// Parses and validates EXPERIMENT.yaml with `--set a.b=v` overrides applied first (a.b names nested
// keys, list entries by index: policies.1.threshold=0.1). Every problem is an InputError naming the
// file, line, key, value and what is accepted.
Experiment load_experiment(const std::string& path, const std::vector<std::string>& overrides);

// The expansion of one policy node: every list-valued option (except options that take a list, which
// expand over a list of lists) multiplies the grid, keys in the order written.
std::vector<YAML::Node> expand_policy(const YAML::Node& node, const std::string& source);

const std::vector<std::string>& metric_names();  // psnr, ssim, ms_ssim, lpips_proxy, lpips, region, flicker

}  // namespace profdit::run
