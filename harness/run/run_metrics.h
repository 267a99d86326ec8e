#pragma once

#include <optional>
#include <vector>

#include <torch/torch.h>

#include "metrics/lpips.h"
#include "run/experiment.h"
#include "store/store.h"

namespace profdit::run {

// The experiment's `metrics:` list, ready to compare a run's frames with its reference's: the LPIPS
// weights are loaded once (InputError naming the file when they are bad).
class RunMetrics {
  public:
    explicit RunMetrics(const std::vector<MetricSpec>& specs);

    bool wants(const std::string& name) const;

    // Adds `metrics/<name>` (per frame, with its `mean` attribute) to `r` for every metric of the list,
    // computed on the frames' device (the run's). frames, ref [F, 3, H, W] in [-1, 1]; mask uint8 [F, H, W]
    // (only read by `region`). MS-SSIM is computed once when both ms_ssim and lpips_proxy are asked for.
    void add(store::Record& r, const torch::Tensor& frames, const torch::Tensor& ref, const torch::Tensor& mask) const;

    int64_t ms_ssim_evaluations() const { return ms_ssim_evaluations_; }  // MS-SSIM computations so far

  private:
    std::vector<MetricSpec>       specs_;
    std::optional<metrics::Lpips> lpips_;
    mutable int64_t               ms_ssim_evaluations_ = 0;
};

}  // namespace profdit::run
