#pragma once

#include "io/yaml_options.h"
#include "policies/policy.h"

namespace profdit::policies {

// EasyCache (H-EmbodVis/EasyCache, EasyCache4Wan2.1/easycache_generate.py, easycache_forward): decided on
// the conditional branch and applied to both. After the warm-up and before the last `final_full` steps:
// k = mean|o_c1 - o_c0| / mean|x_c1 - x_c0| over the last two computed steps, predicted change
// k mean|x_t - x_{t-1}| / mean|o_c1| accumulated; while the sum stays below `threshold` both calls return
// x_t + (o_c1 - x_c1) (the transformation vector of their branch), otherwise they compute and the sum resets.
class EasyCachePolicy : public CachePolicy {
  public:
    EasyCachePolicy(const ModelFacts& facts, double threshold, int warmup, int final_full);
    std::string          name() const override { return "easycache"; }
    std::string          tag() const override;
    std::vector<Segment> segments() const override { return {{0, blocks_ - 1, false}}; }
    CallPlan             plan(const CallInfo& call) override;
    void                 reset() override;
    bool                 tracks_io() const override { return true; }
    YAML::Node           params() const override;

  private:
    int    blocks_;
    double threshold_;
    int    warmup_, final_full_;
    double acc_     = 0;
    bool   compute_ = true;  // the cond branch's decision for the current step
};

std::unique_ptr<CachePolicy> make_easycache(io::Options& opts, const ModelFacts& facts);

}  // namespace profdit::policies
