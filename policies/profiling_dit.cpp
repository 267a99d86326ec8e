#include "policies/profiling_dit.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>

#include "common/draw.h"
#include "common/error.h"

namespace profdit::policies {

const std::vector<BlockPlan>& block_plan_presets() {
    static const std::vector<BlockPlan> p = [] {
        BlockPlan official;
        official.name       = "wan2.1-t2v-14b-official";
        official.background = {0, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                               25, 26, 27, 28, 29, 30, 31, 32, 37, 38};
        return std::vector<BlockPlan>{official};
    }();
    return p;
}

BlockPlan load_block_plan(const std::string& path) {
    io::Options o(io::load_yaml_file(path, "plan file", "with background_blocks"), "plan", path);
    BlockPlan plan;
    plan.name = std::filesystem::path(path).stem().string();
    if (!o.has("background_blocks")) o.fail("background_blocks", "is required");
    plan.background = o.get_int_list("background_blocks", 0, 100000);
    o.get_int_list("foreground_blocks", 0, 100000);
    plan.r_attn = o.get_double_list("r_attn");
    o.get_double_list("r_attn_spread_steps");
    o.get_double_list("r_attn_spread_pairs");
    o.get_double("tau", 0, -1e9, 1e9);
    plan.schedule = o.get_node("schedule");
    if (plan.schedule && !plan.schedule.IsMap()) o.fail("schedule", "must be a map");
    plan.measured_on = measured_on(o.get_node("source"));
    o.get_node("budget");
    o.get_node("method");
    o.finish();
    return plan;
}

std::vector<int> ablation_blocks(const BlockPlan& plan, const std::string& cache, uint64_t seed, int num_blocks, int count) {
    const size_t n = count > 0 ? size_t(count) : plan.background.size();
    std::vector<int> order(static_cast<size_t>(num_blocks));
    std::iota(order.begin(), order.end(), 0);
    if (cache == "foreground") {
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return plan.r_attn[size_t(a)] > plan.r_attn[size_t(b)]; });
    } else if (cache == "random") {
        std::mt19937_64 rng(seed);  // Fisher-Yates with draws that are the same with every standard library
        for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[size_t(uniform_below(rng, i))]);
    } else if (count > 0) {
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return plan.r_attn[size_t(a)] < plan.r_attn[size_t(b)]; });
    } else {
        return plan.background;
    }
    std::vector<int> out(order.begin(), order.begin() + std::ptrdiff_t(std::min(n, order.size())));
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<Segment> segments_from_background(const std::vector<int>& background, int num_blocks) {
    std::vector<bool> bg(num_blocks, false);
    for (int b : background) bg.at(b) = true;
    std::vector<Segment> out;
    for (int i = 0; i < num_blocks;) {
        int j = i;
        while (j + 1 < num_blocks && bg[j + 1] == bg[i]) ++j;
        out.push_back({i, j, bool(bg[i])});
        i = j + 1;
    }
    return out;
}

ProfilingDiTPolicy::ProfilingDiTPolicy(const ModelFacts& facts, BlockPlan plan, RefreshSchedule schedule)
    : plan_(std::move(plan)), schedule_(std::move(schedule)),
      segments_(segments_from_background(plan_.background, facts.num_blocks)) {}

std::string ProfilingDiTPolicy::tag() const { return "profiling_dit-" + plan_.name + "-" + schedule_.tag(); }

CallPlan ProfilingDiTPolicy::plan(const CallInfo& call) {
    if (call.steps != steps_) {
        steps_   = call.steps;
        refresh_ = schedule_.refresh_steps(call.steps);
    }
    CallPlan p;
    for (const auto& s : segments_) p.reuse.push_back(s.cacheable && !refresh_[call.step]);
    return p;
}

YAML::Node ProfilingDiTPolicy::params() const {
    YAML::Node n;
    n["plan"]              = plan_.name;
    n["background_blocks"] = plan_.background;
    n["warmup"]            = schedule_.warmup;
    n["final_full"]        = schedule_.final_full;
    n["schedule"]          = schedule_.to_yaml();
    return n;
}

std::unique_ptr<CachePolicy> make_profiling_dit(io::Options& opts, const ModelFacts& facts) {
    const int sources = int(opts.has("plan")) + int(opts.has("background_blocks")) + int(opts.has("preset"));
    if (sources != 1)
        opts.fail(opts.has("plan") ? "plan" : "background_blocks", "needs exactly one of plan (file), preset or background_blocks");
    BlockPlan plan;
    if (opts.has("plan")) {
        const auto path = opts.get_string("plan", "");
        plan = load_block_plan(path);
        check_measured_on(opts, "plan", path, plan.measured_on, facts);
    } else if (opts.has("preset")) {
        std::string names, want = opts.get_string("preset", "");
        bool found = false;
        for (const auto& p : block_plan_presets()) {
            names += (names.empty() ? "" : ", ") + p.name;
            if (p.name == want) plan = p, found = true;
        }
        if (!found) opts.fail("preset", "must be one of " + names + ", got '" + want + "'");
    } else {
        plan.background = opts.get_int_list("background_blocks", 0, 100000);
        plan.name       = "inline";
        for (size_t i = 0; i < plan.background.size(); ++i) plan.name += (i ? "." : "-") + std::to_string(plan.background[i]);
    }
    std::sort(plan.background.begin(), plan.background.end());
    plan.background.erase(std::unique(plan.background.begin(), plan.background.end()), plan.background.end());
    const std::string cache = opts.get_choice("cache", "background", {"background", "foreground", "random"});
    const int         seed  = opts.get_int("seed", 0, 0, 1 << 30);
    const int         count = opts.get_int("cached_blocks", 0, 1, facts.num_blocks);
    if (opts.has("seed") && cache != "random") opts.fail("seed", "applies to cache: random only");
    if ((cache == "foreground" || (cache == "background" && count > 0)) && int(plan.r_attn.size()) != facts.num_blocks)
        opts.fail(cache == "foreground" ? "cache" : "cached_blocks", "ranks blocks by R_attn: needs a profiled plan with r_attn for all " +
                                                                     std::to_string(facts.num_blocks) + " blocks");
    if (cache != "background" || count > 0) {
        plan.background = ablation_blocks(plan, cache, uint64_t(seed), facts.num_blocks, count);
        plan.name += "-" + cache + (cache == "random" ? std::to_string(seed) : "") + (count > 0 ? "-n" + std::to_string(count) : "");
    }
    for (int b : plan.background)
        if (b >= facts.num_blocks)
            opts.fail(opts.has("plan") ? "plan" : opts.has("preset") ? "preset" : "background_blocks",
                      "names block " + std::to_string(b) + " but the model has " + std::to_string(facts.num_blocks) + " blocks (0.." +
                          std::to_string(facts.num_blocks - 1) + ")");

    // Defaults: ProfilingDiT's released Wan2.1 code (step_start 6, step_interval 6), overridden by the
    // plan file's schedule, overridden by the policy's own options.
    RefreshSchedule from_plan;
    from_plan.warmup   = 6;
    from_plan.interval = 6;
    if (plan.schedule) {
        YAML::Node node, sched = YAML::Clone(plan.schedule);
        for (const char* k : {"warmup", "final_full"})
            if (sched[k]) node[k] = sched[k], sched.remove(k);
        if (sched.size()) node["schedule"] = sched;
        io::Options po(node, "policy profiling_dit (plan " + plan.name + ")", plan.name);
        from_plan = RefreshSchedule::from_options(po, 6, 6, 0);
        po.finish();
    }
    const bool own_schedule = opts.has("schedule");
    RefreshSchedule s = RefreshSchedule::from_options(opts, from_plan.warmup, from_plan.interval, from_plan.final_full);
    if (!own_schedule) {
        from_plan.warmup     = s.warmup;
        from_plan.final_full = s.final_full;
        s                    = from_plan;
    }
    opts.finish();
    return std::make_unique<ProfilingDiTPolicy>(facts, std::move(plan), s);
}

}  // namespace profdit::policies
