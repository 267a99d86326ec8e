#pragma once

#include <map>
#include <string>
#include <vector>

#include "run/experiment.h"
#include "run/plan.h"

namespace profdit::run {

// One row of the results table: a policy setting, averaged over the (prompt, seed) pairs it ran on.
struct SummaryRow {
    std::string                   policy_tag;
    int                           runs = 0;
    double                        computed = 0, ideal_speedup = 0, dit_ms = 0, e2e_ms = 0;  // means over the runs
    double                        speedup = 0;  // measured: the median of `speedups`
    std::vector<double>           speedups;  // every execution's measured speedup over the pairs (latency/speedup_repeats;
                                             // a file written before it has the run's `speedup` only)
    double                        peak_rss_bytes = 0, peak_cuda_bytes = -1;  // max over the runs; -1: not measured
    std::map<std::string, double> metrics;  // mean of each run's mean; NaN-free runs only
};

// Reads the finished runs of the given pairs back from the HDF5 file, one row per policy setting in the
// experiment's order (settings without a finished run are left out).
std::vector<SummaryRow> summarize(const std::string& file, const std::vector<std::string>& policy_tags, const std::vector<Pair>& pairs);

}  // namespace profdit::run
