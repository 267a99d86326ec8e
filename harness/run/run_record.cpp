#include "run/run_record.h"

#include <algorithm>

#include "common/stats.h"

namespace profdit::run {

torch::Tensor series_tensor(const std::vector<double>& v, std::vector<int64_t> shape) {
    return torch::tensor(v, torch::kFloat64).reshape(shape);
}

torch::Tensor scalar_tensor(double v) { return torch::tensor(v, torch::kFloat64).reshape({}); }

std::vector<double> median_per_call(const std::vector<std::vector<double>>& runs) {
    std::vector<double> out(runs.empty() ? 0 : runs[0].size());
    for (size_t i = 0; i < out.size(); ++i) {
        std::vector<double> v;
        for (const auto& r : runs) v.push_back(r.at(i));
        out[i] = median(v);
    }
    return out;
}

std::vector<double> execution_speedups(const std::vector<double>& reference_ms, const std::vector<double>& run_ms) {
    std::vector<double> out;
    for (size_t i = 0; i < run_ms.size(); ++i)
        out.push_back((reference_ms.size() == run_ms.size() ? reference_ms[i] : median(reference_ms)) / run_ms[i]);
    return out;
}

namespace {

double spread(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()) - *std::min_element(v.begin(), v.end()); }

void add_latency(store::Record& r, const Outcome& o, const Experiment& x, double text_ms) {
    const int64_t S   = x.sampling.steps;
    const double  dit = median(o.dit_ms), dec = median(o.decode_ms);
    r.datasets["latency/step_ms"]        = {series_tensor(o.call_ms, {S, 2}), {}, {}, false};
    const auto [lo, hi]                  = std::minmax_element(o.dit_ms.begin(), o.dit_ms.end());
    r.datasets["latency/dit_ms"]         = {scalar_tensor(dit), {{"spread", spread(o.dit_ms)}, {"min", *lo}, {"max", *hi}},
                                            {{"timer", o.timer}, {"note", "median of the executions (timing.repeats), interleaved with the pair's other runs"}}, false};
    r.datasets["latency/dit_ms_repeats"] = {series_tensor(o.dit_ms, {int64_t(o.dit_ms.size())}), {}, {}, false};
    r.datasets["latency/text_ms"]        = {scalar_tensor(text_ms), {},
                                            {{"note", "prompt and negative prompt, measured at their first encoding (embeddings are cached per prompt)"}}, false};
    r.datasets["latency/decode_ms"]      = {scalar_tensor(dec), {{"spread", spread(o.decode_ms)}}, {}, false};
    r.datasets["latency/e2e_ms"]         = {scalar_tensor(text_ms + dit + dec), {}, {{"note", "text_ms + dit_ms + decode_ms"}}, false};
}

void add_cache_stats(store::Record& r, const sampling::CacheStats& s) {
    r.datasets["cache/compute_mask"]      = {s.compute_mask, {}, {}, false};
    r.datasets["cache/flops_computed"]    = {scalar_tensor(s.flops_computed), {}, {}, false};
    r.datasets["cache/flops_full"]        = {scalar_tensor(s.flops_full), {}, {}, false};
    r.datasets["cache/computed_fraction"] = {scalar_tensor(s.computed_fraction()), {}, {}, false};
    r.datasets["cache/peak_cache_bytes"]  = {scalar_tensor(double(s.peak_cache_bytes)), {}, {}, false};
}

void add_memory(store::Record& r, const PeakMemory& m) {
    r.datasets["memory/peak_rss_bytes"] = {scalar_tensor(m.rss_bytes), {},
                                           {{"note", m.rss_reset ? "peak resident set of this run's sampling loops and decodes (VmHWM, reset before the run)"
                                                                 : "the process's peak resident set so far (could not reset VmHWM)"}},
                                           false};
    if (m.cuda_bytes >= 0)
        r.datasets["memory/cuda_peak_allocated_bytes"] = {scalar_tensor(m.cuda_bytes), {},
                                                          {{"note", "peak bytes allocated by LibTorch's CUDA caching allocator during this run's loops and decodes"}}, false};
}

}  // namespace

store::Record outcome_record(const Outcome& o, const Experiment& x, const Pair& pair, double text_ms, bool random_weights) {
    store::Record r;
    const int64_t S = x.sampling.steps;
    r.str_attrs["prompt"]       = x.prompts[size_t(pair.prompt)];
    r.num_attrs["prompt_index"] = pair.prompt;
    r.num_attrs["seed"]         = double(pair.seed);
    r.num_attrs["repeats"]      = x.repeats;
    add_latency(r, o, x, text_ms);
    add_cache_stats(r, o.stats);
    add_memory(r, o.memory);
    if (random_weights) r.str_attrs["weights"] = "random";
    if (x.profile.similarity) {
        r.datasets["similarity/noise_pred_rel_l1"] = {series_tensor(o.rel_l1, {S, 2}), {}, {{"axes", "step, branch (cond, uncond)"}}, false};
        r.datasets["similarity/noise_pred_cos"]    = {series_tensor(o.cosine, {S, 2}), {}, {{"axes", "step, branch (cond, uncond)"}}, false};
    }
    if (x.video)
        r.datasets["video"] = {((o.frames.permute({0, 2, 3, 1}) + 1) * 127.5).round().clamp(0, 255).to(torch::kUInt8).to(torch::kCPU).contiguous(),
                               {}, {}, true};  // [F, H, W, 3]
    return r;
}

}  // namespace profdit::run
