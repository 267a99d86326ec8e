#pragma once

#include <torch/torch.h>

#include "policies/policy.h"
#include "sampling/cfg_loop.h"
#include "wan/dit.h"

namespace profdit::sampling {

// Sees what a normal run throws away: every computed block's intermediates (q/k after RoPE, attention
// outputs) and its input and output hidden state. Profilers are observers; a normal run attaches none
// and keeps the fast path. Blocks reused from the cache are not reported.
class BlockObserver {
  public:
    virtual ~BlockObserver() = default;
    virtual bool wants(int step, Branch branch) const = 0;  // probe this call's blocks
    virtual void on_block(int step, Branch branch, int block, const wan::BlockProbe& probe,
                          const torch::Tensor& x_in,    // [1, L, dim]
                          const torch::Tensor& x_out) = 0;  // [1, L, dim]
};

// Sees every model call (step, branch) of a run: the TeaCache indicators (the call is embedded once, on
// first use by the policy or the observer) and the prediction the call returned. The TeaCache calibrator
// is one. Calls it does not want cost nothing.
class CallObserver {
  public:
    virtual ~CallObserver() = default;
    virtual bool wants_call(int step, Branch branch) const = 0;
    virtual void on_call(int step, Branch branch, policies::Indicators& indicators,
                         const torch::Tensor& output) = 0;  // [C, F, H, W] velocity
};

}  // namespace profdit::sampling
