#include "sampling/cached_denoiser.h"

#include <cmath>
#include <limits>
#include <stdexcept>

#include "metrics/relative_l1.h"

namespace profdit::sampling {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

double mean_abs(const torch::Tensor& a) { return a.abs().mean().item<double>(); }

// What the executor keeps per branch for the numeric indicators (CachePolicy::tracks_io()).
struct IoState {
    const torch::Tensor* prev_input = nullptr;  // [C, F, H, W] or undefined
    const torch::Tensor* output     = nullptr;  // [C, F, H, W] or undefined
    double               output_change = kNaN, input_change = kNaN;
};

// Embeds the call on first use, so policies that need no indicator (or reuse the whole output) pay nothing;
// measures the numeric indicators on first use and counts their FLOPs.
class LazyCall : public policies::Indicators {
  public:
    LazyCall(wan::WanModel& m, const torch::Tensor& latent, int64_t t, const wan::Conditioning& cond,
             const IoState* io, std::string& prev_name, torch::Tensor& prev, double& flops)
        : model_(m), latent_(latent), t_(t), cond_(cond), io_(io), prev_name_(prev_name), prev_(prev), flops_(flops) {}
    wan::Embedded& embedded() {
        if (!em_) em_ = model_->embed(latent_, t_, cond_);
        return *em_;
    }
    torch::Tensor e() override { return embedded().cond.e; }
    torch::Tensor e0() override { return embedded().cond.e0; }
    torch::Tensor modulated_input() override { return model_->modulated_input(0, embedded().x, embedded().cond); }

    double indicator_change(const std::string& name) override {
        if (!prev_name_.empty() && prev_name_ != name)
            throw std::logic_error("indicator_change(" + name + ") after indicator_change(" + prev_name_ + ") in one run");
        if (!change_) {
            auto cur   = tensor(name);
            change_    = prev_.defined() ? metrics::relative_l1(cur, prev_) : kNaN;
            prev_name_ = name;
            prev_      = cur.clone();
        }
        return *change_;
    }

    double input_change() override {
        if (!io().prev_input->defined()) return kNaN;
        if (!input_change_) {
            input_change_ = mean_abs(latent_ - *io().prev_input);  // sub, abs, sum over the latent
            flops_ += metrics::mean_abs_diff_flops(double(latent_.numel()));
        }
        return *input_change_;
    }
    double computed_output_abs_mean() override {
        if (!io().output->defined()) return kNaN;
        if (!output_abs_) {
            output_abs_ = mean_abs(*io().output);
            flops_ += metrics::mean_abs_flops(double(io().output->numel()));
        }
        return *output_abs_;
    }
    double computed_output_change() override { return io().output_change; }
    double computed_input_change() override { return io().input_change; }

  private:
    const IoState& io() const {
        if (!io_) throw std::logic_error("a policy asked for a numeric indicator without tracks_io()");
        return *io_;
    }
    wan::WanModel&               model_;
    const torch::Tensor&         latent_;
    int64_t                      t_;
    const wan::Conditioning&     cond_;
    const IoState*               io_;
    std::string&                 prev_name_;
    torch::Tensor&               prev_;
    double&                      flops_;
    std::optional<wan::Embedded> em_;
    std::optional<double>        input_change_, output_abs_, change_;
};

}  // namespace

double CacheStats::computed_fraction() const {
    if (!compute_mask.defined() || compute_mask.numel() == 0) return 0;
    return compute_mask.eq(kComputed).to(torch::kFloat64).mean().item<double>();
}

CachedDenoiser::CachedDenoiser(wan::WanModel model, policies::CachePolicy& policy, int steps)
    : model_(std::move(model)), policy_(policy), segments_(policy.segments()), steps_(steps),
      tracks_io_(policy.tracks_io()), forecast_order_(policy.forecast_order()) {
    const int L = int(model_->num_blocks());
    int covered = 0;
    for (const auto& s : segments_) {
        if (s.first != covered || s.last < s.first || s.last >= L)
            throw std::logic_error("policy " + policy.name() + " returned segments that do not tile blocks 0.." + std::to_string(L - 1));
        covered = s.last + 1;
    }
    if (covered != L) throw std::logic_error("policy " + policy.name() + " segments do not cover every block");
    for (auto& c : cache_) {
        c.residual.resize(segments_.size());
        if (forecast_order_ >= 0) c.taylor.resize(size_t(L));
    }
    stats_.compute_mask = torch::zeros({steps, kNumBranches, L}, torch::kUInt8);
    policy_.reset();
}

void CachedDenoiser::begin(const Schedule& schedule) { sigmas_ = schedule.sigmas; }

int64_t CachedDenoiser::cache_bytes() const {
    auto bytes = [](const torch::Tensor& t) { return t.defined() ? t.numel() * t.element_size() : int64_t(0); };
    int64_t n = 0;
    for (const auto& c : cache_) {
        n += bytes(c.prev_indicator);
        for (const auto& r : c.residual) n += bytes(r);
        n += bytes(c.output) + bytes(c.probe_ref) + bytes(c.prev_input) + bytes(c.computed_input);
        for (const auto& f : c.taylor) n += f.self_attn.bytes() + f.cross_attn.bytes() + f.ffn.bytes();
    }
    return n;
}

void CachedDenoiser::count_indicator(double flops) {
    stats_.flops_indicator += flops;
    stats_.flops_computed += flops;
}

torch::Tensor CachedDenoiser::forecast_blocks(const policies::Segment& seg, BranchCache& cache, int step, torch::Tensor x,
                                              const wan::DiTCond& cond) {
    // TaylorSeer's cache step (wan_attention_cache_forward): x += sa m2; x += ca; x += ffn m5 with the
    // current step's gates and the forecast module outputs.
    const int    k = step - cache.taylor_step;
    const double n = double(x.numel());
    for (int b = seg.first; b <= seg.last; ++b) {
        auto&      f   = cache.taylor[size_t(b)];
        const auto blk = model_->blocks[size_t(b)]->as<wan::WanAttentionBlockImpl>();
        auto       m   = (blk->modulation + cond.e0).chunk(6, 1);  // 6 x [1, 1, dim] f32
        x = x + f.self_attn.forecast(k) * m[2];                    // [1, L, dim]
        x = x + f.cross_attn.forecast(k);                          // [1, L, dim]
        x = x + f.ffn.forecast(k) * m[5];                          // [1, L, dim]
        count_indicator(metrics::taylor_forecast_flops(n, f.self_attn.terms()) + metrics::taylor_forecast_flops(n, f.cross_attn.terms()) +
                        metrics::taylor_forecast_flops(n, f.ffn.terms()) + 5 * n);
    }
    return x;
}

void CachedDenoiser::record_taylor(BranchCache& cache, int block, int step, const wan::BlockProbe& p, bool derivatives) {
    auto&        f = cache.taylor[size_t(block)];
    const int    d = cache.taylor_step >= 0 ? step - cache.taylor_step : 0;
    const double n = double(p.self_attn_out.numel());
    f.self_attn.update(p.self_attn_out, d, forecast_order_, derivatives);
    f.cross_attn.update(p.cross_attn_out, d, forecast_order_, derivatives);
    f.ffn.update(p.ffn_out, d, forecast_order_, derivatives);
    count_indicator(metrics::taylor_update_flops(n, f.self_attn.terms()) + metrics::taylor_update_flops(n, f.cross_attn.terms()) +
                    metrics::taylor_update_flops(n, f.ffn.terms()));
}

torch::Tensor CachedDenoiser::predict(int step, Branch branch, const torch::Tensor& latent, int64_t t,
                                      const wan::Conditioning& cond) {
    const auto& cfg = model_->config();
    if (!flops_) {
        const int64_t tokens = (latent.size(1) / cfg.patch_size[0]) * (latent.size(2) / cfg.patch_size[1]) *
                               (latent.size(3) / cfg.patch_size[2]);
        flops_ = metrics::dit_flops(cfg, tokens);
    }
    stats_.flops_full += flops_->call();

    auto&   cache = cache_[branch];
    IoState io{&cache.prev_input, &cache.output, cache.has_changes ? cache.output_change : kNaN,
               cache.has_changes ? cache.input_change : kNaN};
    double  indicator_flops = 0;
    LazyCall            call(model_, latent, t, cond, tracks_io_ ? &io : nullptr, cache.prev_indicator_name, cache.prev_indicator,
                             indicator_flops);
    const double        sigma = size_t(step) < sigmas_.size() ? double(sigmas_[size_t(step)]) : kNaN;
    policies::CallInfo  info{step, steps_, int(branch), t, &call, sigma};
    auto                plan  = policy_.plan(info);
    auto check_plan = [&] {
        if (plan.reuse.size() != segments_.size() || (!plan.forecast.empty() && plan.forecast.size() != segments_.size()))
            throw std::logic_error("policy " + policy_.name() + " planned " + std::to_string(plan.reuse.size()) + " segments, has " +
                                   std::to_string(segments_.size()));
    };
    check_plan();
    if (!plan.forecast.empty() && forecast_order_ < 0)
        throw std::logic_error("policy " + policy_.name() + " planned a forecast without forecast_order()");
    if (plan.output_from_input && !tracks_io_)
        throw std::logic_error("policy " + policy_.name() + " planned output_from_input without tracks_io()");
    count_indicator(indicator_flops);
    indicator_flops = 0;
    const bool notify = call_observer_ && call_observer_->wants_call(step, branch);
    auto       keep_input = [&] {
        if (tracks_io_) cache.prev_input = latent.clone();  // [C, F, H, W]
    };
    if (plan.reuse_output && cache.output.defined()) {
        torch::Tensor out = cache.output;
        if (plan.output_from_input) {
            out = latent + (cache.output - cache.computed_input);  // [C, F, H, W]
            count_indicator(2 * double(latent.numel()));
        }
        keep_input();
        stats_.peak_cache_bytes = std::max(stats_.peak_cache_bytes, cache_bytes());
        if (notify) call_observer_->on_call(step, branch, call, out);
        return out;
    }

    auto& em = call.embedded();
    stats_.flops_computed += flops_->embed + flops_->head;
    auto  mask = stats_.compute_mask[step][branch];
    auto  x    = em.x;                                                     // [1, L, dim]
    const bool record = forecast_order_ >= 0;
    torch::Tensor probe_residual;                                          // [1, L, dim]
    bool          later_cached = false;
    for (size_t i = 0; i < segments_.size(); ++i) {
        const auto& seg   = segments_[i];
        const bool  after = plan.probe_segment >= 0 && int(i) > plan.probe_segment;
        if (plan.reuse[i] && seg.cacheable && cache.residual[i].defined()) {
            x = x + cache.residual[i];                                     // [1, L, dim]
            later_cached |= after;
            continue;
        }
        if (!plan.forecast.empty() && plan.forecast[i] && cache.taylor_step >= 0 &&
            !cache.taylor[size_t(seg.first)].self_attn.empty()) {
            x = forecast_blocks(seg, cache, step, x, em.cond);
            mask.narrow(0, seg.first, seg.size()).fill_(kForecast);
            later_cached |= after;
            continue;
        }
        auto       x_in  = x;
        const bool probe = observer_ && observer_->wants(step, branch);
        wan::WanModelImpl::BlockVisit visit;
        if (probe || record)
            visit = [&](int64_t b, const torch::Tensor& in, const torch::Tensor& out, const wan::BlockProbe* p) {
                if (probe) observer_->on_block(step, branch, int(b), *p, in, out);
                if (record) record_taylor(cache, int(b), step, *p, plan.taylor_derivatives);
                return true;
            };
        x = model_->run_blocks(x, em.cond, seg.first, seg.last, visit, probe || record);  // [1, L, dim]
        mask.narrow(0, seg.first, seg.size()).fill_(kComputed);
        stats_.flops_computed += seg.size() * flops_->block.total();
        if (seg.cacheable) cache.residual[i] = x - x_in;                   // [1, L, dim]
        if (int(i) == plan.probe_segment) {
            probe_residual = seg.cacheable ? cache.residual[i] : x - x_in;  // [1, L, dim]
            double rel = kNaN;
            if (cache.probe_ref.defined()) {
                rel = metrics::relative_l1(probe_residual, cache.probe_ref);
                count_indicator(metrics::rel_l1_flops(double(x.numel())));
            }
            if (!seg.cacheable) count_indicator(double(x.numel()));       // the residual itself
            policy_.refine(info, rel, plan);
            check_plan();
        }
    }
    if (record) {
        bool any = false;
        for (const auto& s : segments_) any |= mask[s.first].item<uint8_t>() == kComputed;
        if (any) cache.taylor_step = step;
    }
    if (probe_residual.defined() && !later_cached) cache.probe_ref = probe_residual;
    auto out = model_->unpatchify(model_->head_tokens(x, em.cond), em.cond.grid);  // [C, F, H, W]
    if (tracks_io_) {
        if (cache.output.defined() && cache.computed_input.defined()) {
            cache.output_change = mean_abs(out - cache.output);             // sub, abs, sum
            cache.input_change  = mean_abs(latent - cache.computed_input);
            cache.has_changes   = true;
            count_indicator(metrics::mean_abs_diff_flops(double(out.numel())) + metrics::mean_abs_diff_flops(double(latent.numel())));
        }
        cache.computed_input = latent.clone();                             // [C, F, H, W]
    }
    if (policy_.caches_output() || tracks_io_) cache.output = out;
    keep_input();
    stats_.peak_cache_bytes = std::max(stats_.peak_cache_bytes, cache_bytes());
    if (notify) call_observer_->on_call(step, branch, call, out);
    return out;
}

}  // namespace profdit::sampling
