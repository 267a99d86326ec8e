#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include "io/yaml_options.h"

namespace profdit::policies {

// A contiguous run of blocks [first, last]. A cacheable segment stores its residual
// (h after `last` minus h before `first`) when computed and may be reused later.
struct Segment {
    int  first     = 0;
    int  last      = 0;
    bool cacheable = false;
    int  size() const { return last - first + 1; }
};

// What one model call (step, CFG branch) does: per segment compute, reuse its cached residual or forecast
// it (TaylorSeer), or reuse the branch's whole previous prediction without touching the model.
struct CallPlan {
    CallPlan() = default;
    CallPlan(bool reuse_output_, std::vector<bool> reuse_) : reuse_output(reuse_output_), reuse(std::move(reuse_)) {}
    bool              reuse_output = false;
    std::vector<bool> reuse;     // one per segment (of CachePolicy::segments())
    std::vector<bool> forecast;  // one per segment, or empty (none): run the segment's blocks from their Taylor
                                 // factors instead of computing them (needs CachePolicy::forecast_order() >= 0)
    bool output_from_input = false;  // with reuse_output: return latent + (last computed output - its latent),
                                     // EasyCache's transformation vector (needs CachePolicy::tracks_io())
    int  probe_segment = -1;         // compute this segment, measure the rel-L1 change of its residual against the
                                     // branch's reference and let CachePolicy::refine() change the later segments
    bool taylor_derivatives = true;  // when this call records Taylor factors: build derivatives from the previous
                                     // record (false: keep the feature alone, as TaylorSeer before its warm-up ends)
};

// The TeaCache indicators by name, in this order: e, e0, modulated_input (Indicators::tensor).
const std::vector<std::string>& teacache_indicator_names();

// Indicators of the current call, computed by the executor only when asked. Policies decide on the numbers;
// the tensors (the TeaCache indicators) are for observers that record them (calibration).
class Indicators {
  public:
    virtual ~Indicators() = default;
    virtual torch::Tensor e()               = 0;  // [1, dim] time embedding
    virtual torch::Tensor e0()              = 0;  // [1, 6, dim] time projection
    virtual torch::Tensor modulated_input() = 0;  // [1, L, dim] first block's LN(x)(1 + scale) + shift
    torch::Tensor         tensor(const std::string& indicator);  // one of teacache_indicator_names(); logic_error otherwise
    // metrics::relative_l1 of the named TeaCache indicator (e | e0 | modulated_input) against its value at this
    // branch's previous call; NaN at the branch's first. The executor keeps that value, so a policy that uses it
    // asks at every call, and for one indicator per run. Sources that keep none throw std::logic_error.
    virtual double indicator_change(const std::string& indicator);
    // Numbers from the latent and the outputs the executor keeps per branch when CachePolicy::tracks_io();
    // NaN while there is no earlier call to compare with. Sources that keep none throw std::logic_error.
    virtual double input_change();              // mean|x - x_prev|, x_prev: this branch's latent at its previous call
    virtual double computed_output_abs_mean();  // mean|o_c1| of the branch's last computed output
    virtual double computed_output_change();    // mean|o_c1 - o_c0| between the branch's last two computed calls
    virtual double computed_input_change();     // mean|x_c1 - x_c0| between the same two calls
};

struct CallInfo {
    int         step   = 0;
    int         steps  = 0;
    int         branch = 0;  // 0 cond, 1 uncond
    int64_t     timestep = 0;
    Indicators* indicators = nullptr;
    double      sigma = 0;  // the schedule's sigma at this step (NaN when the executor was not given the schedule)
};

// What a policy may know about the model it runs on, given at construction.
struct ModelFacts {
    int         num_blocks = 0;
    std::string variant;  // WanConfig::variant(): "Wan2.1-T2V-1.3B", ..., or "custom"
    std::string weights;  // run::Pipeline::fingerprint, e.g. "sprites-tiny fnv1a64:3f0c..."; "" when unknown
};

// A plan or calibration file written by `profdit profile` / `calibrate` names the weights it was measured on
// (source.model). When both it and facts.weights carry a weights hash (fnv1a64:...) and the hashes differ, the
// option `key` that named the file fails (an InputError naming both); a file without one (written by hand, or
// edited to drop it) is used as it is.
void        check_measured_on(const io::Options& opts, const std::string& key, const std::string& file, const std::string& measured_on,
                              const ModelFacts& facts);
std::string measured_on(const YAML::Node& source);  // a file's source.model, "" when it has none

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
    // Engine extensions (issue 17); the defaults keep the executor's original behaviour.
    virtual bool    tracks_io() const { return false; }   // keep latents and outputs for the numeric indicators
    virtual int     forecast_order() const { return -1; } // >= 0: computed cacheable segments record Taylor factors
    // After the plan's probe segment ran: rel_l1 = mean|r - r_ref| / mean|r_ref| of its residual r against the
    // branch's reference r_ref (NaN when there is none yet); may set plan.reuse of later segments. The
    // reference becomes r when the call then computes every later segment.
    virtual void    refine(const CallInfo& call, double rel_l1, CallPlan& plan);
};

// Builds a policy from a name or a map {name: ..., options...}. `source` names where the node came
// from (file:line or the CLI) in errors.
std::unique_ptr<CachePolicy>    make_policy(const YAML::Node& node, const ModelFacts& facts, const std::string& source);
const std::vector<std::string>& policy_names();

// Whether a policy's option takes a list as its value (teacache coefficients, profiling_dit
// background_blocks). Grid expansion expands a list of such lists, and any other list.
bool option_is_list(const std::string& policy, const std::string& option);

// A policy's continuous knob: the option whose value trades reuse for quality monotonically (more reuse as it
// grows), searched over [lo, hi] when a setting gives a budget target instead (run/budget.h).
struct Knob {
    std::string option;
    double      lo = 0, hi = 0;
};
const Knob* continuous_knob(const std::string& policy);  // nullptr: none (integer knobs, unknown policy)

// A policy name (or a YAML map "{name: ..., ...}") plus "k=v" pairs (values parsed as YAML: numbers,
// lists like [0,2,3], maps like {type: fixed}) into a policy node {name: NAME, k: v, ...}.
YAML::Node policy_node_from_cli(const std::string& name, const std::vector<std::string>& kv);

// Compact number text for tags: 0.08 -> "0.08", 2.0 -> "2".
std::string tag_number(double v);

}  // namespace profdit::policies
