#pragma once

#include "io/yaml_options.h"
#include "policies/policy.h"
#include "policies/schedule.h"

namespace profdit::policies {

// A ProfilingDiT block plan: which blocks are background-focused (cached) and, optionally, the step
// schedule it was profiled with. Written by `profdit profile`, or by hand with background_blocks alone.
struct BlockPlan {
    std::string         name;  // preset name, plan file stem, or "inline"
    std::vector<int>    background;
    std::vector<double> r_attn;  // per block, from a profiled plan file (may be empty)
    YAML::Node       schedule;  // the plan file's schedule map (may hold warmup, final_full), or undefined
    std::string         measured_on;  // the file's source.model, or ""
};

// Built-in plans; "wan2.1-t2v-14b-official" is the list hard-coded in ProfilingDiT's released
// Wan2.1/generate.py (40 blocks; 28 cached).
const std::vector<BlockPlan>& block_plan_presets();
BlockPlan load_block_plan(const std::string& path);  // InputError naming the file, key and value

// The blocks to cache, `count` of them (0: the plan's |background|): "background" (the plan's list, or with a
// count the `count` blocks of lowest R_attn), "foreground" (the `count` blocks of highest R_attn), "random"
// (drawn with `seed`). Ranking needs the plan's r_attn.
std::vector<int> ablation_blocks(const BlockPlan& plan, const std::string& cache, uint64_t seed, int num_blocks, int count = 0);

// Background runs -> cacheable segments (an isolated block caches its own residual, a maximal run of
// consecutive blocks one residual across it); foreground runs -> computed segments.
std::vector<Segment> segments_from_background(const std::vector<int>& background, int num_blocks);

// ProfilingDiT: foreground-focused blocks are always computed; background segments reuse their cached
// residual except on refresh steps (warm-up, then fixed / linear / list schedule, final_full).
class ProfilingDiTPolicy : public CachePolicy {
  public:
    ProfilingDiTPolicy(const ModelFacts& facts, BlockPlan plan, RefreshSchedule schedule);
    std::string          name() const override { return "profiling_dit"; }
    std::string          tag() const override;
    std::vector<Segment> segments() const override { return segments_; }
    CallPlan             plan(const CallInfo& call) override;
    YAML::Node           params() const override;

  private:
    BlockPlan            plan_;
    RefreshSchedule      schedule_;
    std::vector<Segment> segments_;
    int                  steps_ = -1;
    std::vector<bool>    refresh_;
};

std::unique_ptr<CachePolicy> make_profiling_dit(io::Options& opts, const ModelFacts& facts);

}  // namespace profdit::policies
