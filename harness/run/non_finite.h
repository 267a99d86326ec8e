#pragma once

#include <stdexcept>
#include <string>

#include <torch/torch.h>

#include "wan/dit.h"

namespace profdit::run {

// A model call returned NaN or Inf. The message names the step, the CFG branch and the first stage of the
// model where the values stopped being finite; the runner marks that run failed and goes on with the sweep.
class NonFiniteError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

bool all_finite(const torch::Tensor& t);

// Replays one call, uncached, stage by stage, and names the first whose hidden state is not finite:
// "its input latent", "block k" (with "; its text context is not finite" when the prompt's embedding is
// the source), "the head", or "no stage of an uncached forward" (then the cache produced it).
std::string first_non_finite_stage(wan::WanModelImpl& dit, const torch::Tensor& latent, int64_t t,
                                   const wan::Conditioning& cond);

}  // namespace profdit::run
