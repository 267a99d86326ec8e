#include "policies/policy.h"

#include <algorithm>
#include <stdexcept>

#include "common/error.h"
#include "common/format.h"
#include "policies/dbcache.h"
#include "policies/easycache.h"
#include "policies/magcache.h"
#include "policies/none.h"
#include "io/yaml_options.h"
#include "policies/profiling_dit.h"
#include "policies/step_skip.h"
#include "policies/taylorseer.h"
#include "policies/teacache.h"

namespace profdit::policies {

namespace {

using Factory = std::unique_ptr<CachePolicy> (*)(io::Options&, const ModelFacts&);

struct Entry {
    Factory                  make;
    std::vector<std::string> list_options;  // options whose value is itself a list
    Knob                     knob;          // option "" when the policy has no continuous knob
};

// The rel-L1 / error thresholds: 0 never reuses; 10 is far above any accumulated change measured on the
// embedded model or in the methods' own code (their defaults are 0.05-0.3), so it reuses all it may.
const Knob kThreshold{"threshold", 1e-4, 10.0};

const std::vector<std::pair<std::string, Entry>>& registry() {
    static const std::vector<std::pair<std::string, Entry>> r = {
        {"none", {make_none, {}, {}}},
        {"step_skip", {make_step_skip, {}, {}}},
        {"teacache", {make_teacache, {"coefficients"}, kThreshold}},
        {"profiling_dit", {make_profiling_dit, {"background_blocks"}, {}}},
        {"fbcache", {make_fbcache, {}, kThreshold}},
        {"dbcache", {make_dbcache, {}, kThreshold}},
        {"magcache", {make_magcache, {}, kThreshold}},
        {"easycache", {make_easycache, {}, kThreshold}},
        {"taylorseer", {make_taylorseer, {}, {}}}};
    return r;
}

}  // namespace

const std::vector<std::string>& policy_names() {
    static const std::vector<std::string> names = [] {
        std::vector<std::string> n;
        for (const auto& kv : registry()) n.push_back(kv.first);
        return n;
    }();
    return names;
}

namespace {

std::string weights_hash(const std::string& fingerprint) {
    const std::string key = "fnv1a64:";
    const auto        at  = fingerprint.find(key);
    if (at == std::string::npos) return "";
    const auto end = fingerprint.find_first_not_of("0123456789abcdef", at + key.size());
    return fingerprint.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

}  // namespace

std::string measured_on(const YAML::Node& source) {
    return source && source.IsMap() && source["model"] && source["model"].IsScalar() ? source["model"].Scalar() : "";
}

void check_measured_on(const io::Options& opts, const std::string& key, const std::string& file, const std::string& measured_on,
                       const ModelFacts& facts) {
    const auto made = weights_hash(measured_on), now = weights_hash(facts.weights);
    if (made.empty() || now.empty() || made == now) return;
    opts.fail(key, "names '" + file + "', measured on other weights (its source.model: '" + measured_on + "') than this run's model ('" +
                       facts.weights + "'); measure it again on this model (the command is in the file's header), or delete its "
                       "source.model to use it anyway");
}

std::unique_ptr<CachePolicy> make_policy(const YAML::Node& node, const ModelFacts& facts, const std::string& source) {
    std::string name;
    YAML::Node  opts(YAML::NodeType::Map);
    if (node.IsScalar()) {
        name = node.Scalar();
    } else if (node.IsMap() && node["name"] && node["name"].IsScalar()) {
        name = node["name"].Scalar();
        opts = node;
    } else {
        input_error(source + ": a policy must be a name or a map with 'name'");
    }
    std::string accepted;
    for (const auto& [n, entry] : registry()) {
        accepted += (accepted.empty() ? "" : ", ") + n;
        if (n == name) {
            io::Options o(opts, "policy " + name, source);
            return entry.make(o, facts);
        }
    }
    input_error(source + ": unknown policy '" + name + "' (accepted: " + accepted + ")");
}

bool option_is_list(const std::string& policy, const std::string& option) {
    for (const auto& [n, entry] : registry())
        if (n == policy) return std::find(entry.list_options.begin(), entry.list_options.end(), option) != entry.list_options.end();
    return false;
}

const Knob* continuous_knob(const std::string& policy) {
    for (const auto& [n, entry] : registry())
        if (n == policy) return entry.knob.option.empty() ? nullptr : &entry.knob;
    return nullptr;
}

YAML::Node policy_node_from_cli(const std::string& name, const std::vector<std::string>& kv) {
    YAML::Node n;
    if (!name.empty() && name[0] == '{') {
        try {
            n = YAML::Load(name);
        } catch (const YAML::Exception& e) {
            input_error("--policy '" + name + "' is not valid YAML (" + e.msg + ")");
        }
    } else {
        n["name"] = name;
    }
    for (const auto& s : kv) {
        const auto eq = s.find('=');
        if (eq == std::string::npos || eq == 0) input_error("--policy-opt '" + s + "' is not of the form key=value");
        const std::string key = s.substr(0, eq);
        try {
            n[key] = YAML::Load(s.substr(eq + 1));
        } catch (const YAML::Exception& e) {
            input_error("--policy-opt '" + s + "': value is not valid YAML (" + e.msg + ")");
        }
    }
    return n;
}

const std::vector<std::string>& teacache_indicator_names() {
    static const std::vector<std::string> n = {"e", "e0", "modulated_input"};
    return n;
}

torch::Tensor Indicators::tensor(const std::string& indicator) {
    if (indicator == "e") return e();
    if (indicator == "e0") return e0();
    if (indicator == "modulated_input") return modulated_input();
    throw std::logic_error("unknown TeaCache indicator '" + indicator + "'");
}

double Indicators::indicator_change(const std::string& indicator) {
    throw std::logic_error("this indicator source keeps no previous indicator (indicator_change " + indicator + ")");
}
double Indicators::input_change() { throw std::logic_error("this indicator source keeps no latents (input_change)"); }
double Indicators::computed_output_abs_mean() { throw std::logic_error("this indicator source keeps no outputs (computed_output_abs_mean)"); }
double Indicators::computed_output_change() { throw std::logic_error("this indicator source keeps no outputs (computed_output_change)"); }
double Indicators::computed_input_change() { throw std::logic_error("this indicator source keeps no latents (computed_input_change)"); }

void CachePolicy::refine(const CallInfo&, double, CallPlan&) {
    throw std::logic_error("policy " + name() + " planned a probe segment but does not refine plans");
}

std::string tag_number(double v) { return format_number("%g", v); }

}  // namespace profdit::policies
