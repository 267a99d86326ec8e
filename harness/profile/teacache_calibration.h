#pragma once

#include <array>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "sampling/observer.h"

namespace profdit::profile {

// One model call's change since the same branch's previous call: metrics::relative_l1 of each
// indicator (x, in the order of policies::teacache_indicator_names()) and of the prediction (y). NaN at a branch's first call of a run.
struct CallChange {
    int                   step   = 0;
    int                   branch = 0;
    std::array<double, 3> x{};
    double                y = 0;
};

// A call observer for TeaCache calibration: records every call of the cond branch (or of both). A run
// starts at step 0, where the branch's previous call is forgotten, so one recorder serves many runs.
class TeaCacheRecorder : public sampling::CallObserver {
  public:
    explicit TeaCacheRecorder(bool both_branches = false) : both_(both_branches) {}
    bool wants_call(int step, sampling::Branch branch) const override { return both_ || branch == sampling::kCond; }
    void on_call(int step, sampling::Branch branch, policies::Indicators& ind, const torch::Tensor& output) override;

    const std::vector<CallChange>& calls() const { return calls_; }
    // (x, y) of indicator i over the recorded calls at step >= min_step with finite values.
    std::pair<std::vector<double>, std::vector<double>> points(size_t indicator, int min_step = 1) const;

  private:
    bool                         both_;
    std::vector<CallChange>      calls_;
    std::array<torch::Tensor, 4> prev_[sampling::kNumBranches];  // e, e0, modulated_input, output
};

// Least-squares polynomial fit y ~ p(x), as numpy.polyfit (Vandermonde columns scaled to unit norm).
struct PolyFit {
    std::vector<double> coefficients;  // highest order first
    double              r2 = 0;        // 1 - SS_res / SS_tot; NaN when y is constant
};
PolyFit fit_polynomial(const std::vector<double>& x, const std::vector<double>& y, int order = 4);

}  // namespace profdit::profile
