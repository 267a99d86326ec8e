#include "sampling/taylor_factors.h"

namespace profdit::sampling {

void TaylorFactors::update(const torch::Tensor& feature, int d, int order, bool derivatives) {
    std::vector<torch::Tensor> g{feature};
    for (int i = 0; derivatives && i < order && i < int(f_.size()) && d > 0; ++i)
        g.push_back((g[size_t(i)] - f_[size_t(i)]) / double(d));  // [1, L, dim]
    f_ = std::move(g);
}

torch::Tensor TaylorFactors::forecast(int k) const {
    auto   out  = f_.at(0);  // [1, L, dim]
    double coef = 1;
    for (size_t i = 1; i < f_.size(); ++i) {
        coef *= double(k) / double(i);    // k^i / i!
        out = out + f_[i] * coef;         // [1, L, dim]
    }
    return out;
}

int64_t TaylorFactors::bytes() const {
    int64_t n = 0;
    for (const auto& t : f_) n += t.numel() * t.element_size();
    return n;
}

}  // namespace profdit::sampling
