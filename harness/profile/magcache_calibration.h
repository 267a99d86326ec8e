#pragma once

#include <vector>

#include <torch/torch.h>

#include "policies/magcache.h"
#include "sampling/observer.h"

namespace profdit::profile {

// A block observer for MagCache calibration (magcache_calibration in Zehong-Ma/MagCache's
// MagCache4Wan2.1/magcache_generate.py): per call the whole stack's residual res = h after the last block
// minus h before block 0 [1, L, dim], and from a branch's second call of a run on
// mean over tokens of |res_t| / |res_{t-1}| (norms over dim). A run starts at step 0, so one recorder
// serves many runs; the ratios are averaged over them.
class MagRatioRecorder : public sampling::BlockObserver {
  public:
    MagRatioRecorder(int steps, int blocks);
    bool wants(int, sampling::Branch) const override { return true; }
    void on_block(int step, sampling::Branch branch, int block, const wan::BlockProbe& probe, const torch::Tensor& x_in,
                  const torch::Tensor& x_out) override;
    // Mean ratio per step and branch (step 0: 1), with the schedule's sigmas [steps] (the last 0 dropped).
    policies::MagRatios ratios(const std::vector<float>& sigmas, const std::string& name) const;

  private:
    int                 steps_, blocks_;
    torch::Tensor       x0_[sampling::kNumBranches], prev_[sampling::kNumBranches];  // [1, L, dim]
    std::vector<double> sum_[sampling::kNumBranches];
    std::vector<int>    count_[sampling::kNumBranches];
};

}  // namespace profdit::profile
