#include "run/budget.h"

#include <cmath>
#include <optional>

#include "common/error.h"
#include "common/format.h"

namespace profdit::run {

namespace {

constexpr int    kMaxEvaluations = 40;
constexpr double kMinBracket     = 1e-6;  // relative width at which the bracket cannot shrink further

}  // namespace

bool BudgetTarget::reached(double computed) const {
    return std::abs(in_units(computed) - value) <= tolerance * value;
}

bool BudgetTarget::too_much_reuse(double computed) const {
    return !reached(computed) && (kind == "speedup" ? in_units(computed) > value : computed < value);
}

std::string BudgetTarget::label() const { return (kind == "speedup" ? "x" : "c") + policies::tag_number(value); }

std::string BudgetTarget::text(double computed) const {
    return kind == "speedup" ? format_number("%.3f", in_units(computed)) + "x ideal" : "computed " + format_number("%.3f", computed);
}

std::optional<BudgetTarget> take_budget_target(YAML::Node& node, double tolerance, const std::string& source) {
    if (!node.IsMap()) return std::nullopt;
    const bool speedup = bool(node["target_speedup"]), computed = bool(node["target_computed"]);
    if (!speedup && !computed) return std::nullopt;
    const std::string name = node["name"] && node["name"].IsScalar() ? node["name"].Scalar() : "";
    const std::string where = source + ": policy " + name + ": ";
    if (speedup && computed) input_error(where + "give one of target_speedup and target_computed, not both");
    const std::string key = speedup ? "target_speedup" : "target_computed";
    const YAML::Node  v   = node[key];
    BudgetTarget t;
    t.kind      = speedup ? "speedup" : "computed";
    t.tolerance = tolerance;
    const std::string text = v.IsScalar() ? v.Scalar() : "(a list or map)";
    try {
        if (!v.IsScalar()) throw YAML::Exception(YAML::Mark(), "");
        t.value = v.as<double>();
    } catch (const YAML::Exception&) {
        input_error(where + key + ": expected a number, got '" + text + "'");
    }
    if (speedup && !(t.value > 1.0 && t.value <= 1000.0))
        input_error(where + "target_speedup: expected an ideal speedup in (1, 1000], got " + text);
    if (computed && !(t.value > 0.0 && t.value < 1.0))
        input_error(where + "target_computed: expected a fraction of the full compute in (0, 1), got " + text);
    const policies::Knob* knob = policies::continuous_knob(name);
    if (!knob) {
        std::string with;
        for (const auto& p : policies::policy_names())
            if (policies::continuous_knob(p)) with += (with.empty() ? "" : ", ") + p;
        input_error(where + key + ": '" + name + "' has no continuous knob to search (policies with one: " + with +
                    "); give its own options instead");
    }
    if (node[knob->option])
        input_error(where + key + " finds " + knob->option + " itself: remove " + knob->option + ": " +
                    (node[knob->option].IsScalar() ? node[knob->option].Scalar() : "...") + " from this setting");
    node.remove(key);
    return t;
}

BudgetMatch match_budget(const std::string& policy, const policies::Knob& knob, const BudgetTarget& target,
                         const std::function<double(double)>& computed_at, std::vector<BudgetEval>& known,
                         const std::string& source) {
    BudgetMatch m;
    m.knob = knob.option;
    const std::string where = source + ": policy " + policy + " target_" + target.kind + " " + policies::tag_number(target.value) + ": ";
    auto done = [&](const BudgetEval& e) {
        m.value    = e.knob;
        m.computed = e.computed;
        return m;
    };
    auto eval = [&](double v) {
        const BudgetEval e{v, computed_at(v)};
        known.push_back(e);
        m.evals.push_back(e);
        return e;
    };

    // the bracket: lo reuses too little, hi too much; points of earlier targets narrow it
    std::optional<BudgetEval> lo, hi;
    for (const auto& e : known) {
        if (target.reached(e.computed)) return done(e);
        if (target.too_much_reuse(e.computed)) {
            if (!hi || e.knob < hi->knob) hi = e;
        } else if (!lo || e.knob > lo->knob) {
            lo = e;
        }
    }
    if (!lo) {
        lo = eval(knob.lo);
        if (target.reached(lo->computed)) return done(*lo);
        if (target.too_much_reuse(lo->computed))
            input_error(where + "out of reach: its least reuse in the search range (" + knob.option + " " + policies::tag_number(knob.lo) + ") already gives " +
                        target.text(lo->computed) + " on the calibration pairs");
    }
    if (!hi) {
        hi = eval(knob.hi);
        if (target.reached(hi->computed)) return done(*hi);
        if (!target.too_much_reuse(hi->computed))
            input_error(where + "out of reach: its most reuse in the search range (" + knob.option + " " + policies::tag_number(knob.hi) + ") gives " +
                        target.text(hi->computed) + " on the calibration pairs");
    }
    while (int(m.evals.size()) < kMaxEvaluations && hi->knob / lo->knob > 1.0 + kMinBracket) {
        const auto e = eval(std::sqrt(lo->knob * hi->knob));
        if (target.reached(e.computed)) return done(e);
        (target.too_much_reuse(e.computed) ? hi : lo) = e;
    }
    input_error(where + "no " + knob.option + " lands within the tolerance (" + policies::tag_number(100 * target.tolerance) + "%): " + knob.option + " " +
                policies::tag_number(lo->knob) + " gives " + target.text(lo->computed) + ", " + policies::tag_number(hi->knob) + " gives " + target.text(hi->computed) +
                " on the calibration pairs; widen calibration.tolerance or add calibration pairs");
}

}  // namespace profdit::run
