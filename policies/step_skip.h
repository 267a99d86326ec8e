#pragma once

#include "io/yaml_options.h"
#include "policies/policy.h"
#include "policies/schedule.h"

namespace profdit::policies {

// Uniform step skipping: the whole block stack is one cacheable segment, recomputed on refresh steps
// (warm-up, every `interval` steps after it, the last `final_full` steps) and otherwise replaced by its
// cached residual (`reuse: residual`) or the whole call by the branch's previous prediction
// (`reuse: output`).
class StepSkipPolicy : public CachePolicy {
  public:
    StepSkipPolicy(const ModelFacts& facts, RefreshSchedule schedule, bool reuse_output);
    std::string          name() const override { return "step_skip"; }
    std::string          tag() const override;
    // Output mode never adds a residual back (a reused call skips the model), so it stores none.
    std::vector<Segment> segments() const override { return {{0, blocks_ - 1, !reuse_output_}}; }
    CallPlan             plan(const CallInfo& call) override;
    bool                 caches_output() const override { return reuse_output_; }
    YAML::Node           params() const override;

  private:
    int               blocks_;
    RefreshSchedule   schedule_;
    bool              reuse_output_;
    int               steps_ = -1;
    std::vector<bool> refresh_;
};

std::unique_ptr<CachePolicy> make_step_skip(io::Options& opts, const ModelFacts& facts);

}  // namespace profdit::policies
