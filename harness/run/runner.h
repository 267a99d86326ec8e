#pragma once

#include <string>
#include <vector>

#include "run/experiment.h"
#include "run/plan.h"

namespace profdit::run {

struct RunnerOptions {
    std::string out;        // HDF5 file; the experiment's `output` when empty
    bool        resume = false;
    Shard       shard;
    bool        quiet  = false;  // no progress on stderr
};

// Where the sweep's wall time went: model compute (text, sampling loops incl. warm-up, decode) and the
// harness's own work (metrics, HDF5 writes, the rest).
struct TimeBreakdown {
    double model_s = 0, metrics_s = 0, store_s = 0, total_s = 0;
    double other_s() const { return total_s - model_s - metrics_s - store_s; }
    double overhead() const { return total_s > 0 ? (total_s - model_s) / total_s : 0; }
};

struct RunnerResult {
    std::string              file;
    std::vector<std::string> policy_tags;  // the grid's settings, in order
    std::vector<std::string> budgets;      // per setting: what a budget target found ("threshold 0.07 for x2: 2.01x
                                           // ideal on the calibration pairs"), "" for a setting without one
    std::vector<Pair>        pairs;        // this shard's (prompt, seed) pairs
    int           computed = 0, skipped = 0, failed = 0;  // runs (references included)
    int           sampling_runs = 0;                      // sampling loops executed (references + cached runs), per repeat
    int64_t       model_calls   = 0;                      // denoiser calls in those loops
    TimeBreakdown time;
};

// Runs this shard's part of the grid: per (prompt, seed) the uncached reference once, then every
// policy setting against it; each run is written to the store as it finishes (status done), runs
// marked done are skipped on --resume. InputError for bad input before any compute.
RunnerResult run_experiment(const Experiment& x, const RunnerOptions& opt);

}  // namespace profdit::run
