#pragma once

#include "io/yaml_options.h"
#include "policies/policy.h"

namespace profdit::policies {

// TaylorSeer as released for Wan2.1 (Shenyi-Z/TaylorSeer, TaylorSeer-Wan2.1/wan/taylorseer: cache_init.py,
// cal_type.py, taylorseer_utils): every block's self-attention, cross-attention and FFN outputs (before their
// gates) are forecast by a Taylor series of order `order` around the last computed step. Steps before
// `warmup` compute; after them every `interval`-th step computes (counter reset), the others forecast.
// Decided once per step (on the cond call) for both branches; each branch has its own factors.
class TaylorSeerPolicy : public CachePolicy {
  public:
    TaylorSeerPolicy(const ModelFacts& facts, int interval, int order, int warmup);
    std::string          name() const override { return "taylorseer"; }
    std::string          tag() const override;
    std::vector<Segment> segments() const override { return {{0, blocks_ - 1, false}}; }
    CallPlan             plan(const CallInfo& call) override;
    void                 reset() override;
    int                  forecast_order() const override { return order_; }
    YAML::Node           params() const override;

  private:
    int  blocks_, interval_, order_, warmup_;
    int  counter_ = 0;
    bool full_    = true;  // the current step's decision
};

std::unique_ptr<CachePolicy> make_taylorseer(io::Options& opts, const ModelFacts& facts);

}  // namespace profdit::policies
