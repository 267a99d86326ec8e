#pragma once

#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace profdit::train {

// AdamW as torch.optim.AdamW computes it (decoupled weight decay, bias-corrected moments, eps outside
// the square root), with its state as plain tensors so that a run saved on one device resumes on another.
class AdamW {
  public:
    struct Options {
        double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
    };
    AdamW(std::vector<torch::Tensor> params, Options opt);

    void step(double lr);  // uses each parameter's .grad(); a parameter without one is left as it is
    int64_t steps() const { return steps_; }

    // "exp_avg.<name>", "exp_avg_sq.<name>" for every parameter name (same order as the parameters).
    std::map<std::string, torch::Tensor> state(const std::vector<std::string>& names) const;
    void load_state(const std::map<std::string, torch::Tensor>& state, const std::vector<std::string>& names, int64_t steps);

  private:
    std::vector<torch::Tensor> params_, exp_avg_, exp_avg_sq_;
    Options                    opt_;
    int64_t                    steps_ = 0;
};

}  // namespace profdit::train
