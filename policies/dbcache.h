#pragma once

#include "io/yaml_options.h"
#include "policies/policy.h"

namespace profdit::policies {

// cache-dit's DBCache (vipshop/cache-dit, caching/cache_blocks/pattern_base.py and
// caching/cache_contexts/cache_manager.py): the first `fn` blocks always run; the rel-L1 change
// mean|r - r_ref| / mean|r_ref| of their output residual r (h after block fn-1 minus h before block 0)
// against the branch's last fully computed call decides whether the middle blocks reuse their cached
// residual; the last `bn` blocks always run. Per CFG branch: warm-up steps compute; at most
// `max_cached_steps` reused calls in all (-1: no cap); `max_continuous_cached_steps` caps runs of reused
// steps with cache-dit's own counter (see docs/policies.md). `fbcache` is ParaAttention's / diffusers'
// first-block cache: the same rule with fn 1, bn 0 and no caps.
class DBCachePolicy : public CachePolicy {
  public:
    struct Options {
        int    fn = 8, bn = 0;
        double threshold = 0.08;
        int    warmup = 8, max_cached_steps = -1, max_continuous_cached_steps = -1;
    };
    DBCachePolicy(const ModelFacts& facts, std::string name, Options o);
    std::string          name() const override { return name_; }
    std::string          tag() const override;
    std::vector<Segment> segments() const override;
    CallPlan             plan(const CallInfo& call) override;
    void                 refine(const CallInfo& call, double rel_l1, CallPlan& plan) override;
    void                 reset() override;
    YAML::Node           params() const override;

  private:
    struct BranchState {
        int cached = 0;           // reused calls so far
        int last_cached = -2;     // step of the last reused call
        int continuous = 0;       // cache-dit's continuous_cached_steps
    };
    bool can_cache(const CallInfo& call, double rel_l1);

    int         blocks_;
    std::string name_;
    Options     o_;
    BranchState state_[2];
};

std::unique_ptr<CachePolicy> make_dbcache(io::Options& opts, const ModelFacts& facts);
std::unique_ptr<CachePolicy> make_fbcache(io::Options& opts, const ModelFacts& facts);

}  // namespace profdit::policies
