#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>

#include "run/experiment.h"
#include "run/plan.h"
#include "run/recorder.h"
#include "sampling/cached_denoiser.h"
#include "store/store.h"

namespace profdit::run {

// What one sampling run (executed `repeats` times) produced.
struct Outcome {
    torch::Tensor        latent, frames;     // [C, F, H, W], [F, 3, H, W] of the first execution
    std::vector<double>  dit_ms, decode_ms;  // one per execution
    std::vector<double>  call_ms;            // [S * 2], median over the executions
    std::string          timer;              // what timed them: "cuda events" | "steady clock"
    std::vector<double>  rel_l1, cosine;     // [S * 2] of the first execution (with profile.similarity)
    sampling::CacheStats stats;
    PeakMemory           memory;  // over the executions and their decodes
};

// A series as a float64 tensor of the given shape, and a 0-dim float64 tensor.
torch::Tensor series_tensor(const std::vector<double>& v, std::vector<int64_t> shape);
torch::Tensor scalar_tensor(double v);

// The median of each call's time over the executions: runs [E][S * 2] -> [S * 2].
std::vector<double> median_per_call(const std::vector<std::vector<double>>& runs);
// The measured speedup of each execution: reference dit_ms / run dit_ms, pairing the i-th executions (they
// ran interleaved); a reference with one stored time (read back by --resume) divides that by each.
std::vector<double> execution_speedups(const std::vector<double>& reference_ms, const std::vector<double>& run_ms);

// The record of a run or a reference: prompt, seed, latencies (medians and spreads), cache statistics,
// peak memory, the similarity series (with profile.similarity) and the uint8 video (with video: true).
// `text_ms` is the prompt's first encoding; `random_weights` marks a model built with init: random.
store::Record outcome_record(const Outcome& o, const Experiment& x, const Pair& pair, double text_ms, bool random_weights);

}  // namespace profdit::run
