#pragma once

#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "io/yaml_options.h"

namespace profdit::policies {

// Which denoising steps recompute everything (refresh steps). Warm-up steps [0, warmup) and the last
// `final_full` steps always refresh; in between:
//   fixed:  warmup + k * interval                                  (ProfilingDiT's released Wan code)
//   linear: from warmup, next = s + round(T_s), T_s = t_max - (t_max - t_min) (s - warmup) / (S - warmup)
//           (the paper's Eq. 15, decreasing intervals)
//   list:   the given steps
struct RefreshSchedule {
    std::string      type     = "fixed";
    int              warmup   = 0;
    int              final_full = 0;
    int              interval = 1;
    double           t_max = 0, t_min = 0;
    std::vector<int> refresh;

    std::vector<bool> refresh_steps(int steps) const;  // [steps]
    std::string       tag() const;
    YAML::Node        to_yaml() const;
    // Reads `warmup`, `final_full` and `schedule` (a map {type, ...} or an integer interval) from opts.
    static RefreshSchedule from_options(io::Options& opts, int default_warmup, int default_interval, int default_final);
};

}  // namespace profdit::policies
