#include "policies/easycache.h"

#include <cmath>

namespace profdit::policies {

EasyCachePolicy::EasyCachePolicy(const ModelFacts& facts, double threshold, int warmup, int final_full)
    : blocks_(facts.num_blocks), threshold_(threshold), warmup_(warmup), final_full_(final_full) {}

std::string EasyCachePolicy::tag() const {
    return "easycache-thr" + tag_number(threshold_) + "-w" + std::to_string(warmup_) + "-f" + std::to_string(final_full_);
}

void EasyCachePolicy::reset() {
    acc_     = 0;
    compute_ = true;
}

CallPlan EasyCachePolicy::plan(const CallInfo& call) {
    if (call.branch == 0) {
        auto& ind = *call.indicators;
        if (call.step < warmup_ || call.step >= call.steps - final_full_) {
            compute_ = true;
            acc_     = 0;
        } else {
            const double dx = ind.input_change();  // mean|x_t - x_{t-1}| since the previous cond call
            const double k  = ind.computed_output_change() / ind.computed_input_change();
            if (std::isnan(dx) || std::isnan(k)) {
                compute_ = true;  // no previous call or no k yet
            } else {
                acc_ += k * (dx / ind.computed_output_abs_mean());
                compute_ = !(acc_ < threshold_);
                if (compute_) acc_ = 0;
            }
        }
    }
    CallPlan p;
    p.reuse_output      = !compute_;
    p.output_from_input = true;
    p.reuse             = {false};
    return p;
}

YAML::Node EasyCachePolicy::params() const {
    YAML::Node n;
    n["threshold"]  = threshold_;
    n["warmup"]     = warmup_;
    n["final_full"] = final_full_;
    return n;
}

std::unique_ptr<CachePolicy> make_easycache(io::Options& opts, const ModelFacts& facts) {
    // easycache_generate.py: --thresh 0.05, ret_steps = 10 steps (10 * 2 calls), cutoff_steps = 2 steps - 2 calls
    const double threshold  = opts.get_double("threshold", 0.05, 0.0, 1e9);
    const int    warmup     = opts.get_int("warmup", 10, 0, 100000);
    const int    final_full = opts.get_int("final_full", 1, 0, 100000);
    opts.finish();
    return std::make_unique<EasyCachePolicy>(facts, threshold, warmup, final_full);
}

}  // namespace profdit::policies
