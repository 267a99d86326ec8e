#pragma once

#include "io/yaml_options.h"
#include "policies/policy.h"

namespace profdit::policies {

// The plain pipeline: one non-cacheable segment, always computed.
class NonePolicy : public CachePolicy {
  public:
    explicit NonePolicy(const ModelFacts& facts) : blocks_(facts.num_blocks) {}
    std::string          name() const override { return "none"; }
    std::string          tag() const override { return "none"; }
    std::vector<Segment> segments() const override { return {{0, blocks_ - 1, false}}; }
    CallPlan             plan(const CallInfo&) override { return {false, {false}}; }
    YAML::Node           params() const override { return YAML::Node(YAML::NodeType::Map); }

  private:
    int blocks_;
};

std::unique_ptr<CachePolicy> make_none(io::Options& opts, const ModelFacts& facts);

}  // namespace profdit::policies
