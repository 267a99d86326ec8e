#include "sampling/scheduler.h"

#include <cmath>
#include <limits>

#include "common/error.h"

namespace profdit::sampling {

namespace {

double shifted(double s, double shift) { return shift * s / (1.0 + (shift - 1.0) * s); }

Schedule make_schedule(double sigma_max, int steps, double shift) {
    Schedule out;
    const double step = (0.0 - sigma_max) / double(steps);  // numpy linspace(max, 0, N + 1): i * step + start
    for (int i = 0; i < steps; ++i) {
        const double lin = double(i) * step + sigma_max;
        const double s   = shifted(lin, shift);
        out.timesteps.push_back(int64_t(s * 1000.0));
        out.sigmas.push_back(float(s));
    }
    out.sigmas.push_back(0.0f);
    return out;
}

double lambda(double sigma) { return std::log(1.0 - sigma) - std::log(sigma); }  // ln(alpha) - ln(sigma)

}  // namespace

Schedule unipc_schedule(int steps, double shift) { return make_schedule(double(0.999f), steps, shift); }
Schedule dpmpp_schedule(int steps, double shift) { return make_schedule(1.0, steps, shift); }

FlowUniPC::FlowUniPC(int steps, double shift) : FlowScheduler(unipc_schedule(steps, shift)) {}

torch::Tensor FlowUniPC::step(const torch::Tensor& v, const torch::Tensor& x_in) {
    const int i = index_;
    const int N = steps();
    auto      x = x_in;
    auto      x0 = x - sigma(i) * v;  // converted output

    corr_order_ = 0;
    if (i >= 1) {  // UniC corrector on the incoming sample
        const double s_t = sigma(i), s_0 = sigma(i - 1), a_t = 1.0 - s_t;
        const double h  = lambda(s_t) - lambda(s_0);
        const double e  = std::expm1(-h);
        const auto&  m  = x0_[1];
        auto         base = (s_t / s_0) * x_prev_ - (a_t * e) * m;
        if (order_ == 1) {
            x = base - (a_t * e * 0.5) * (x0 - m);
        } else {
            const double r    = (lambda(sigma(i - 2)) - lambda(s_0)) / h;
            const double phi1 = e / (-h) - 1.0;
            const double b1   = phi1 / e;
            const double phi2 = phi1 / (-h) - 0.5;
            const double b2   = 2.0 * phi2 / e;
            // [[1, 1], [r, 1]] [rho1, rho2] = [b1, b2]
            const double rho1 = (b1 - b2) / (1.0 - r);
            const double rho2 = b1 - rho1;
            auto         D    = (x0_[0] - m) / r;
            x = base - (a_t * e) * (rho1 * D + rho2 * (x0 - m));
        }
        corr_order_ = order_;
    }

    x0_[0]  = x0_[1];
    x0_[1]  = x0;
    x_prev_ = x;
    order_  = std::min({2, N - i, lower_order_nums_ + 1});

    const double s_t = sigma(i + 1), s_0 = sigma(i), a_t = 1.0 - s_t;
    const double h   = lambda(s_t) - lambda(s_0);  // +inf on the final step (sigma 0)
    const double e   = std::expm1(-h);
    auto         out = (s_t / s_0) * x - (a_t * e) * x0;
    if (order_ == 2) {
        const double r = (lambda(sigma(i - 1)) - lambda(s_0)) / h;
        out = out - (a_t * e * 0.5 / r) * (x0_[0] - x0);
    }
    if (lower_order_nums_ < 2) ++lower_order_nums_;
    ++index_;
    return out;
}

FlowDPMpp::FlowDPMpp(int steps, double shift) : FlowScheduler(dpmpp_schedule(steps, shift)) {}

torch::Tensor FlowDPMpp::step(const torch::Tensor& v, const torch::Tensor& x) {
    const int    i   = index_;
    const int    N   = steps();
    const double s_t = sigma(i + 1), s_0 = sigma(i), a_t = 1.0 - s_t;
    auto         x0  = x - s_0 * v;
    const double h   = lambda(s_t) - lambda(s_0);
    const double em1 = std::exp(-h) - 1.0;
    torch::Tensor out;
    if (i == 0 || i == N - 1) {
        out = (s_t / s_0) * x - (a_t * em1) * x0;
    } else {
        const double r = (lambda(s_0) - lambda(sigma(i - 1))) / h;  // +inf at i = 1 (sigma_0 = 1)
        out = (s_t / s_0) * x - (a_t * em1) * x0 - (0.5 * a_t * em1 / r) * (x0 - x0_prev_);
    }
    x0_prev_ = x0;
    ++index_;
    return out;
}

FlowEuler::FlowEuler(int steps, double shift) : FlowScheduler(unipc_schedule(steps, shift)) {}

torch::Tensor FlowEuler::step(const torch::Tensor& v, const torch::Tensor& x) {
    const int i = index_++;
    return x + (sigma(i + 1) - sigma(i)) * v;
}

const std::vector<std::string>& solver_names() {
    static const std::vector<std::string> names = {"unipc", "dpm++", "euler"};
    return names;
}

std::unique_ptr<FlowScheduler> make_scheduler(const std::string& solver, int steps, double shift) {
    if (steps < 1) input_error("steps must be at least 1, got " + std::to_string(steps));
    if (!(shift > 0) || !std::isfinite(shift)) input_error("shift must be a positive number, got " + std::to_string(shift));
    if (solver == "unipc") return std::make_unique<FlowUniPC>(steps, shift);
    if (solver == "dpm++") return std::make_unique<FlowDPMpp>(steps, shift);
    if (solver == "euler") return std::make_unique<FlowEuler>(steps, shift);
    input_error("unknown solver '" + solver + "' (accepted: unipc, dpm++, euler)");
}

}  // namespace profdit::sampling
