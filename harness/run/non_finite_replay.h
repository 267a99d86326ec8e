#pragma once

#include <string>

#include <torch/torch.h>

#include "sampling/cfg_loop.h"
#include "wan/dit.h"

namespace profdit::run {

// The timed loop only flags a NaN/Inf model output (RecordingDenoiser, no synchronisation); this finds out
// where it came from. It samples the run again with `fresh` (the same denoiser, reset), untimed, checking
// every output as it comes, and returns the message for the first non-finite one: "NaN/Inf in the model
// output at step S of N, cond branch; an uncached replay finds it first in block K" (the stage from
// first_non_finite_stage). `flagged_call` (step * 2 + branch) is what the timed loop saw, named as such when
// the replay does not reproduce it (non-deterministic kernels).
std::string replay_non_finite(sampling::Denoiser& fresh, wan::WanModelImpl& dit, const torch::Tensor& noise, const wan::Conditioning& cond,
                              const wan::Conditioning& uncond, const sampling::SampleOptions& opt, int flagged_call);

}  // namespace profdit::run
