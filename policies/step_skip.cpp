#include "policies/step_skip.h"

namespace profdit::policies {

StepSkipPolicy::StepSkipPolicy(const ModelFacts& facts, RefreshSchedule schedule, bool reuse_output)
    : blocks_(facts.num_blocks), schedule_(std::move(schedule)), reuse_output_(reuse_output) {}

std::string StepSkipPolicy::tag() const {
    return "step_skip-i" + std::to_string(schedule_.interval) + "-w" + std::to_string(schedule_.warmup) + "-f" +
           std::to_string(schedule_.final_full) + (reuse_output_ ? "-output" : "-residual");
}

CallPlan StepSkipPolicy::plan(const CallInfo& call) {
    if (call.steps != steps_) {
        steps_   = call.steps;
        refresh_ = schedule_.refresh_steps(call.steps);
    }
    const bool reuse = !refresh_[call.step];
    return {reuse && reuse_output_, {reuse && !reuse_output_}};
}

YAML::Node StepSkipPolicy::params() const {
    YAML::Node n;
    n["interval"]   = schedule_.interval;
    n["warmup"]     = schedule_.warmup;
    n["final_full"] = schedule_.final_full;
    n["reuse"]      = reuse_output_ ? "output" : "residual";
    return n;
}

std::unique_ptr<CachePolicy> make_step_skip(io::Options& opts, const ModelFacts& facts) {
    RefreshSchedule s;
    s.type           = "fixed";
    s.interval       = opts.get_int("interval", 2, 1, 100000);
    s.warmup         = opts.get_int("warmup", 1, 0, 100000);
    s.final_full     = opts.get_int("final_full", 1, 0, 100000);
    const bool output = opts.get_choice("reuse", "residual", {"residual", "output"}) == "output";
    opts.finish();
    return std::make_unique<StepSkipPolicy>(facts, s, output);
}

}  // namespace profdit::policies
