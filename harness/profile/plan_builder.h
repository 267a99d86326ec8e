#pragma once

#include <string>
#include <vector>

#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include "policies/schedule.h"

namespace profdit::profile {

// R_attn per block over steps and (prompt, seed) pairs: per_pair [S, blocks] (NaN where undefined).
struct BlockFocus {
    torch::Tensor mean;            // [blocks] mean over pairs of each pair's mean over steps
    torch::Tensor spread_steps;    // [blocks] mean over pairs of (max - min over steps)
    torch::Tensor std_steps;       // [blocks] mean over pairs of the standard deviation over steps
    torch::Tensor spread_pairs;    // [blocks] max - min over pairs of the per-pair means
    torch::Tensor per_step;        // [S, blocks] mean over pairs
};
BlockFocus summarize_focus(const std::vector<torch::Tensor>& per_pair);

// Background-focused blocks are those with R_attn < tau (ProfilingDiT Eq. 7).
struct BlockSplit {
    std::vector<int> background, foreground;
    double           tau = 0;
};
BlockSplit split_by_tau(const torch::Tensor& r_attn, double tau);
// Keeps about `budget` of the block compute: the round(budget x blocks) blocks with the highest score are
// foreground (always computed), the rest background; tau is set midway between the two groups.
BlockSplit split_by_budget(const torch::Tensor& score, double budget);

// The curve's late-step level: the median of its second half (the final rise, a few steps, barely moves it).
double late_level(const std::vector<double>& rel_l1);

// The step schedule suggested by the noise prediction's relative L1 change per step (cond branch, averaged
// over pairs; NaN at step 0). The warm-up rule is relative: warm-up s0 = first step after which the curve
// stays below warmup_ratio x late_level (up to its final rise: the trailing steps above it become final_full).
// A step's tolerable interval is T_s = min(t_cap, max(1, floor(rho / rel_l1_s))) (rho: the accumulated change
// a cached block may miss) and the linear schedule runs from the median T of the first third after s0 (t_max)
// to the median T of the last third (t_min); fixed (median T) when that does not decrease.
policies::RefreshSchedule suggest_schedule(const std::vector<double>& rel_l1, double rho, double warmup_ratio = 2.0, int t_cap = 12);

}  // namespace profdit::profile
