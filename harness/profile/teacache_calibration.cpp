#include "profile/teacache_calibration.h"

#include <cmath>
#include <limits>

#include <Eigen/Dense>

#include "common/error.h"
#include "metrics/relative_l1.h"

namespace profdit::profile {

void TeaCacheRecorder::on_call(int step, sampling::Branch branch, policies::Indicators& ind, const torch::Tensor& output) {
    auto& prev = prev_[branch];
    if (step == 0) prev = {};
    const auto&                  names = policies::teacache_indicator_names();
    std::array<torch::Tensor, 4> cur;  // e [1, dim], e0 [1, 6, dim], modulated_input [1, L, dim], output [C, F, H, W]
    for (size_t i = 0; i < 3; ++i) cur[i] = ind.tensor(names.at(i));
    cur[3] = output;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CallChange   c;
    c.step   = step;
    c.branch = int(branch);
    for (size_t i = 0; i < 4; ++i) {
        const double v = prev[i].defined() ? metrics::relative_l1(cur[i], prev[i]) : nan;
        (i < 3 ? c.x[i] : c.y) = v;
        prev[i] = cur[i].clone();
    }
    calls_.push_back(c);
}

std::pair<std::vector<double>, std::vector<double>> TeaCacheRecorder::points(size_t indicator, int min_step) const {
    std::pair<std::vector<double>, std::vector<double>> p;
    for (const auto& c : calls_) {
        const double x = c.x.at(indicator);
        if (c.step < min_step || !std::isfinite(x) || !std::isfinite(c.y)) continue;
        p.first.push_back(x);
        p.second.push_back(c.y);
    }
    return p;
}

PolyFit fit_polynomial(const std::vector<double>& x, const std::vector<double>& y, int order) {
    const auto n = Eigen::Index(x.size()), k = Eigen::Index(order) + 1;
    if (order < 0) input_error("fit_polynomial: order must be >= 0, got " + std::to_string(order));
    if (x.size() != y.size()) input_error("fit_polynomial: " + std::to_string(x.size()) + " x values but " + std::to_string(y.size()) + " y values");
    if (n < k)
        input_error("fit_polynomial: " + std::to_string(n) + " points cannot determine a polynomial of order " + std::to_string(order) +
                    " (needs at least " + std::to_string(k) + ")");
    Eigen::MatrixXd A(n, k);
    Eigen::VectorXd b(n);
    for (Eigen::Index i = 0; i < n; ++i) {
        if (!std::isfinite(x[size_t(i)]) || !std::isfinite(y[size_t(i)])) input_error("fit_polynomial: point " + std::to_string(i) + " is not finite");
        for (Eigen::Index j = 0; j < k; ++j) A(i, j) = std::pow(x[size_t(i)], double(order - j));
        b(i) = y[size_t(i)];
    }
    Eigen::VectorXd scale = A.colwise().norm().transpose();
    for (Eigen::Index j = 0; j < k; ++j)
        if (scale(j) == 0) scale(j) = 1;
    const Eigen::VectorXd c = (A * scale.cwiseInverse().asDiagonal()).completeOrthogonalDecomposition().solve(b).cwiseQuotient(scale);

    PolyFit f;
    f.coefficients.assign(c.data(), c.data() + k);
    const double ss_res = (A * c - b).squaredNorm();
    const double ss_tot = (b.array() - b.mean()).matrix().squaredNorm();
    f.r2 = ss_tot > 0 ? 1 - ss_res / ss_tot : std::numeric_limits<double>::quiet_NaN();
    return f;
}

}  // namespace profdit::profile
