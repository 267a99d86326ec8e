#include "profile/plan_builder.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.h"
#include "common/stats.h"

namespace profdit::profile {

BlockFocus summarize_focus(const std::vector<torch::Tensor>& per_pair) {
    if (per_pair.empty()) input_error("profile: no profiled references");
    auto all  = torch::stack(per_pair).to(torch::kFloat64);             // [P, S, blocks]
    auto valid = ~torch::isnan(all);
    auto zeroed = torch::where(valid, all, torch::zeros_like(all));
    auto n      = valid.sum(1).to(torch::kFloat64);                      // [P, blocks]
    auto pair_mean = zeroed.sum(1) / n;                                  // [P, blocks]
    auto hi = torch::where(valid, all, torch::full_like(all, -INFINITY)).amax(1);
    auto lo = torch::where(valid, all, torch::full_like(all, INFINITY)).amin(1);
    auto var = (torch::where(valid, all - pair_mean.unsqueeze(1), torch::zeros_like(all)).pow(2)).sum(1) / n;
    const auto pv  = ~torch::isnan(pair_mean);                           // [P, blocks]: pairs with foreground
    const auto nan = torch::full_like(pair_mean, NAN);
    BlockFocus f;
    f.mean         = pair_mean.nanmean(0);                               // [blocks]
    f.spread_steps = torch::where(pv, hi - lo, nan).nanmean(0);
    f.std_steps    = torch::where(pv, var.sqrt(), nan).nanmean(0);
    f.spread_pairs = torch::where(pv, pair_mean, torch::full_like(pair_mean, -INFINITY)).amax(0) -
                     torch::where(pv, pair_mean, torch::full_like(pair_mean, INFINITY)).amin(0);
    f.per_step     = zeroed.sum(0) / valid.sum(0).to(torch::kFloat64);   // [S, blocks]
    return f;
}

BlockSplit split_by_tau(const torch::Tensor& r_attn, double tau) {
    BlockSplit s;
    s.tau = tau;
    auto a = r_attn.to(torch::kFloat64).contiguous();
    for (int64_t b = 0; b < a.size(0); ++b) (a[b].item<double>() < tau ? s.background : s.foreground).push_back(int(b));
    return s;
}

BlockSplit split_by_budget(const torch::Tensor& score, double budget) {
    const int64_t blocks = score.size(0);
    const int64_t keep   = std::clamp<int64_t>(std::llround(budget * double(blocks)), 0, blocks);
    const auto c = score.to(torch::kFloat64).contiguous();
    const std::vector<double> v(c.data_ptr<double>(), c.data_ptr<double>() + blocks);
    std::vector<int> order(v.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return v[size_t(a)] > v[size_t(b)]; });
    BlockSplit s;
    s.foreground.assign(order.begin(), order.begin() + keep);
    s.background.assign(order.begin() + keep, order.end());
    std::sort(s.foreground.begin(), s.foreground.end());
    std::sort(s.background.begin(), s.background.end());
    const double lowest_fg  = keep ? v[size_t(order[size_t(keep - 1)])] : INFINITY;
    const double highest_bg = keep < blocks ? v[size_t(order[size_t(keep)])] : -INFINITY;
    s.tau = !keep ? highest_bg + 1e-9 : keep == blocks ? lowest_fg : 0.5 * (lowest_fg + highest_bg);
    return s;
}

double late_level(const std::vector<double>& rel) {
    std::vector<double> late;
    for (size_t s = rel.size() / 2; s < rel.size(); ++s)
        if (!std::isnan(rel[s])) late.push_back(rel[s]);
    return late.empty() ? NAN : median(late);
}

policies::RefreshSchedule suggest_schedule(const std::vector<double>& rel, double rho, double warmup_ratio, int t_cap) {
    const int S = int(rel.size());
    policies::RefreshSchedule r;
    if (S < 3) {
        r.warmup = S;
        return r;
    }
    int best = 1;
    for (int s = 1; s < S; ++s)
        if (!std::isnan(rel[s]) && (std::isnan(rel[best]) || rel[s] < rel[best])) best = s;
    const double high = warmup_ratio * late_level(rel);
    int s0 = 1;
    for (int s = 1; s <= best; ++s)
        if (std::isnan(rel[s]) || rel[s] >= high) s0 = s + 1;
    int end = S;  // first step of the final rise
    for (int s = S - 1; s > best; --s)
        if (rel[s] >= high) end = s;
    r.warmup     = std::min(s0, S);
    r.final_full = S - end;
    std::vector<double> t;
    for (int s = r.warmup; s < end; ++s) t.push_back(std::min<double>(t_cap, std::max(1.0, std::floor(rho / std::max(rel[s], 1e-12)))));
    if (t.empty()) {
        r.type     = "fixed";
        r.interval = 1;
        return r;
    }
    const size_t third = std::max<size_t>(1, t.size() / 3);
    const double t_max = median(std::vector<double>(t.begin(), t.begin() + third));
    const double t_min = median(std::vector<double>(t.end() - third, t.end()));
    if (t_max > t_min) {
        r.type  = "linear";
        r.t_max = t_max;
        r.t_min = t_min;
    } else {
        r.type     = "fixed";
        r.interval = int(median(t));
    }
    return r;
}

}  // namespace profdit::profile
