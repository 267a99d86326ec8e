#include "run/summary.h"

#include <algorithm>
#include <cmath>

#include "common/stats.h"
#include "store/store.h"

namespace profdit::run {

std::vector<SummaryRow> summarize(const std::string& file, const std::vector<std::string>& policy_tags, const std::vector<Pair>& pairs) {
    const auto st = store::Store::open_existing(file);
    std::vector<SummaryRow> rows;
    for (const auto& tag : policy_tags) {
        SummaryRow                    row;
        std::map<std::string, int>    counts;
        row.policy_tag = tag;
        for (const auto& p : pairs) {
            const auto g = run_group(tag, p);
            if (st.status(g) != "done") continue;
            ++row.runs;
            auto num = [&](const std::string& d) { return st.read_dataset(g + "/" + d).to(torch::kFloat64).item<double>(); };
            row.computed += num("cache/computed_fraction");
            row.ideal_speedup += num("cache/flops_full") / num("cache/flops_computed");
            const double speedup = st.read_num_attr(g, "speedup");
            if (st.exists(g + "/latency/speedup_repeats")) {
                const auto v = st.read_dataset(g + "/latency/speedup_repeats").to(torch::kFloat64).contiguous();  // [repeats]
                row.speedups.insert(row.speedups.end(), v.data_ptr<double>(), v.data_ptr<double>() + v.numel());
            } else {
                row.speedups.push_back(speedup);
            }
            row.dit_ms += num("latency/dit_ms");
            row.e2e_ms += num("latency/e2e_ms");
            if (st.exists(g + "/memory/peak_rss_bytes")) row.peak_rss_bytes = std::max(row.peak_rss_bytes, num("memory/peak_rss_bytes"));
            if (st.exists(g + "/memory/cuda_peak_allocated_bytes"))
                row.peak_cuda_bytes = std::max(row.peak_cuda_bytes, num("memory/cuda_peak_allocated_bytes"));
            for (const auto& m : st.datasets(g + "/metrics")) {
                const double v = st.read_num_attr(g + "/metrics/" + m, "mean");
                if (std::isnan(v)) continue;
                row.metrics[m] += v;
                ++counts[m];
            }
        }
        if (!row.runs) continue;
        for (double* v : {&row.computed, &row.ideal_speedup, &row.dit_ms, &row.e2e_ms}) *v /= row.runs;
        row.speedup = median(row.speedups);
        for (auto& [m, v] : row.metrics) v /= counts[m];
        rows.push_back(row);
    }
    return rows;
}

}  // namespace profdit::run
