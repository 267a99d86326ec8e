#include "train/adamw.h"

#include <cmath>

namespace profdit::train {

AdamW::AdamW(std::vector<torch::Tensor> params, Options opt) : params_(std::move(params)), opt_(opt) {
    for (const auto& p : params_) {
        exp_avg_.push_back(torch::zeros_like(p));
        exp_avg_sq_.push_back(torch::zeros_like(p));
    }
}

void AdamW::step(double lr) {
    torch::NoGradGuard ng;
    ++steps_;
    const double bc1 = 1 - std::pow(opt_.beta1, double(steps_)), bc2 = 1 - std::pow(opt_.beta2, double(steps_));
    for (size_t i = 0; i < params_.size(); ++i) {
        auto& p = params_[i];
        const auto& g = p.grad();
        if (!g.defined()) continue;
        p.mul_(1 - lr * opt_.weight_decay);
        exp_avg_[i].mul_(opt_.beta1).add_(g, 1 - opt_.beta1);
        exp_avg_sq_[i].mul_(opt_.beta2).addcmul_(g, g, 1 - opt_.beta2);
        auto denom = (exp_avg_sq_[i].sqrt() / std::sqrt(bc2)).add_(opt_.eps);
        p.addcdiv_(exp_avg_[i], denom, -lr / bc1);
    }
}

std::map<std::string, torch::Tensor> AdamW::state(const std::vector<std::string>& names) const {
    std::map<std::string, torch::Tensor> s;
    for (size_t i = 0; i < params_.size(); ++i) {
        s["exp_avg." + names[i]]    = exp_avg_[i];
        s["exp_avg_sq." + names[i]] = exp_avg_sq_[i];
    }
    return s;
}

void AdamW::load_state(const std::map<std::string, torch::Tensor>& state, const std::vector<std::string>& names, int64_t steps) {
    torch::NoGradGuard ng;
    for (size_t i = 0; i < params_.size(); ++i) {
        exp_avg_[i].copy_(state.at("exp_avg." + names[i]));
        exp_avg_sq_[i].copy_(state.at("exp_avg_sq." + names[i]));
    }
    steps_ = steps;
}

}  // namespace profdit::train
