#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "policies/policy.h"

namespace profdit::run {

// A policy setting that names a compute budget instead of its knob: {name: magcache, target_speedup: 2.0}
// (ideal speedup, full FLOPs / computed FLOPs) or target_computed: 0.5 (computed FLOPs / full FLOPs), both
// reached on the experiment's calibration pairs within `tolerance` (relative to the target).
struct BudgetTarget {
    std::string kind;  // "speedup" | "computed"
    double      value = 0;
    double      tolerance = 0.02;

    double      in_units(double computed) const { return kind == "speedup" ? 1.0 / computed : computed; }
    bool        reached(double computed) const;
    bool        too_much_reuse(double computed) const;  // past the target: less compute than asked
    std::string label() const;                          // "x2", "c0.5": the setting's tag suffix and group name
    std::string text(double computed) const;            // "2.04x ideal", "computed 0.49"
};

// Reads and removes target_speedup / target_computed from a policy node; nullopt when it has neither.
// InputError (naming `source`, the key and the value) for both at once, a value out of range, a policy
// without a continuous knob, or a node that also sets the knob.
std::optional<BudgetTarget> take_budget_target(YAML::Node& node, double tolerance, const std::string& source);

struct BudgetEval {
    double knob = 0, computed = 0;
};

// What the search found: the knob's value and its computed fraction on the calibration pairs, and every
// evaluation in the order tried.
struct BudgetMatch {
    std::string             knob;
    double                  value = 0, computed = 0;
    std::vector<BudgetEval> evals;
};

// Bisection over log(knob) in the policy's range [lo, hi], bracketed first by `known` (evaluations of the
// same setting for other targets, reused). computed_at(v) samples the calibration pairs with the knob at v
// and returns their computed fraction (sum of computed FLOPs / sum of full FLOPs). InputError when the
// range's end cannot reach the target, or when the computed fraction jumps over the tolerance window.
BudgetMatch match_budget(const std::string& policy, const policies::Knob& knob, const BudgetTarget& target,
                         const std::function<double(double)>& computed_at, std::vector<BudgetEval>& known,
                         const std::string& source);

}  // namespace profdit::run
