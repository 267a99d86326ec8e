#include "policies/taylorseer.h"

namespace profdit::policies {

TaylorSeerPolicy::TaylorSeerPolicy(const ModelFacts& facts, int interval, int order, int warmup)
    : blocks_(facts.num_blocks), interval_(interval), order_(order), warmup_(warmup) {}

std::string TaylorSeerPolicy::tag() const {
    return "taylorseer-n" + std::to_string(interval_) + "-o" + std::to_string(order_) + "-w" + std::to_string(warmup_);
}

void TaylorSeerPolicy::reset() {
    counter_ = 0;
    full_    = true;
}

CallPlan TaylorSeerPolicy::plan(const CallInfo& call) {
    if (call.branch == 0) {  // cal_type, called on the cond stream only
        if (call.step < warmup_ || counter_ == interval_ - 1) {
            full_    = true;
            counter_ = 0;
        } else {
            full_ = false;
            counter_ += 1;
        }
    }
    CallPlan p;
    p.reuse              = {false};
    p.forecast           = {!full_};
    p.taylor_derivatives = call.step > warmup_ - 2;  // derivative_approximation: current['step'] > first_enhance - 2
    return p;
}

YAML::Node TaylorSeerPolicy::params() const {
    YAML::Node n;
    n["interval"] = interval_;
    n["order"]    = order_;
    n["warmup"]   = warmup_;
    return n;
}

std::unique_ptr<CachePolicy> make_taylorseer(io::Options& opts, const ModelFacts& facts) {
    // cache_init.py, mode 'Taylor': fresh_threshold 5, max_order 1, first_enhance 1
    const int interval = opts.get_int("interval", 5, 1, 100000);
    const int order    = opts.get_int("order", 1, 0, 16);
    const int warmup   = opts.get_int("warmup", 1, 1, 100000);
    opts.finish();
    return std::make_unique<TaylorSeerPolicy>(facts, interval, order, warmup);
}

}  // namespace profdit::policies
