#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

namespace profdit::policies {

// A contiguous run of blocks [first, last]. A cacheable segment stores its residual
// (h after `last` minus h before `first`) when computed and may be reused later.
struct Segment {
    int  first     = 0;
    int  last      = 0;
    bool cacheable = false;
    int  size() const { return last - first + 1; }
};

// What one model call (step, CFG branch) does: per segment compute or reuse, or reuse the branch's
// whole previous prediction without touching the model.
struct CallPlan {
    bool              reuse_output = false;
    std::vector<bool> reuse;  // one per segment (of CachePolicy::segments())
};

// TeaCache-style indicators of the current call, computed only when a policy asks.
class Indicators {
  public:
    virtual ~Indicators() = default;
    virtual torch::Tensor e()               = 0;  // [1, dim] time embedding
    virtual torch::Tensor e0()              = 0;  // [1, 6, dim] time projection
    virtual torch::Tensor modulated_input() = 0;  // [1, L, dim] first block's LN(x)(1 + scale) + shift
};

struct CallInfo {
    int         step   = 0;
    int         steps  = 0;
    int         branch = 0;  // 0 cond, 1 uncond
    int64_t     timestep = 0;
    Indicators* indicators = nullptr;
};

// What a policy may know about the model it runs on, given at construction.
struct ModelFacts {
    int         num_blocks = 0;
    std::string variant;  // WanConfig::variant(): "Wan2.1-T2V-1.3B", ..., or "custom"
};

// The policy decides, the pipeline executes: a policy sees step, branch and indicators and returns a
// plan over its fixed segments; it never touches model tensors. Per-branch state lives in the policy
// (decisions) and in the executor (cached tensors).
class CachePolicy {
  public:
    virtual ~CachePolicy() = default;
    virtual std::string          name() const = 0;
    virtual std::string          tag() const  = 0;  // deterministic, used in run ids
    virtual std::vector<Segment> segments() const = 0;
    virtual CallPlan             plan(const CallInfo& call) = 0;
    virtual void                 reset() {}  // before a new sampling run
    virtual bool                 caches_output() const { return false; }  // may plan reuse_output
    virtual YAML::Node           params() const = 0;  // resolved options, for logs
};

// Builds a policy from a name or a map {name: ..., options...}. `source` names where the node came
// from (file:line or the CLI) in errors.
std::unique_ptr<CachePolicy>    make_policy(const YAML::Node& node, const ModelFacts& facts, const std::string& source);
const std::vector<std::string>& policy_names();

// Whether a policy's option takes a list as its value (teacache coefficients, profiling_dit
// background_blocks). Grid expansion expands a list of such lists, and any other list.
bool option_is_list(const std::string& policy, const std::string& option);

// A policy name (or a YAML map "{name: ..., ...}") plus "k=v" pairs (values parsed as YAML: numbers,
// lists like [0,2,3], maps like {type: fixed}) into a policy node {name: NAME, k: v, ...}.
YAML::Node policy_node_from_cli(const std::string& name, const std::vector<std::string>& kv);

// Compact number text for tags: 0.08 -> "0.08", 2.0 -> "2".
std::string tag_number(double v);

}  // namespace profdit::policies
