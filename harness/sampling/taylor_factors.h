#pragma once

#include <vector>

#include <torch/torch.h>

namespace profdit::sampling {

// TaylorSeer's factors of one feature (Shenyi-Z/TaylorSeer, TaylorSeer-Wan2.1/wan/taylorseer/taylorseer_utils):
// f_0 = the feature at the last computed step, f_{i+1} = (f_i - f_i_prev) / d with d the steps between the
// last two computed steps (finite differences, up to `order`), and the forecast at distance k steps after
// the last computed one sum_i f_i k^i / i!.
class TaylorFactors {
  public:
    // Records `feature` [1, L, dim] computed d steps after the previous record; derivatives only when
    // `derivatives` and the previous record had the lower order.
    void          update(const torch::Tensor& feature, int d, int order, bool derivatives);
    torch::Tensor forecast(int k) const;  // [1, L, dim]
    bool          empty() const { return f_.empty(); }
    size_t        terms() const { return f_.size(); }
    int64_t       bytes() const;
    void          clear() { f_.clear(); }

  private:
    std::vector<torch::Tensor> f_;  // f_0 .. f_m, each [1, L, dim]
};

}  // namespace profdit::sampling
