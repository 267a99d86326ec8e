#include "sampling/cached_denoiser.h"

#include <stdexcept>

namespace profdit::sampling {

namespace {

// Embeds the call on first use, so policies that need no indicator (or reuse the whole output) pay nothing.
class LazyCall : public policies::Indicators {
  public:
    LazyCall(wan::WanModel& m, const torch::Tensor& latent, int64_t t, const torch::Tensor& ctx)
        : model_(m), latent_(latent), t_(t), ctx_(ctx) {}
    wan::Embedded& embedded() {
        if (!em_) em_ = model_->embed(latent_, t_, ctx_);
        return *em_;
    }
    torch::Tensor e() override { return embedded().cond.e; }
    torch::Tensor e0() override { return embedded().cond.e0; }
    torch::Tensor modulated_input() override { return model_->modulated_input(0, embedded().x, embedded().cond); }

  private:
    wan::WanModel&               model_;
    const torch::Tensor&         latent_;
    int64_t                      t_;
    const torch::Tensor&         ctx_;
    std::optional<wan::Embedded> em_;
};

}  // namespace

double CacheStats::computed_fraction() const {
    if (!compute_mask.defined() || compute_mask.numel() == 0) return 0;
    return compute_mask.to(torch::kFloat64).mean().item<double>();
}

CachedDenoiser::CachedDenoiser(wan::WanModel model, policies::CachePolicy& policy, int steps)
    : model_(std::move(model)), policy_(policy), segments_(policy.segments()), steps_(steps) {
    const int L = int(model_->num_blocks());
    int covered = 0;
    for (const auto& s : segments_) {
        if (s.first != covered || s.last < s.first || s.last >= L)
            throw std::logic_error("policy " + policy.name() + " returned segments that do not tile blocks 0.." + std::to_string(L - 1));
        covered = s.last + 1;
    }
    if (covered != L) throw std::logic_error("policy " + policy.name() + " segments do not cover every block");
    for (auto& c : cache_) c.residual.resize(segments_.size());
    stats_.compute_mask = torch::zeros({steps, kNumBranches, L}, torch::kUInt8);
    policy_.reset();
}

int64_t CachedDenoiser::cache_bytes() const {
    int64_t n = 0;
    for (const auto& c : cache_) {
        for (const auto& r : c.residual)
            if (r.defined()) n += r.numel() * r.element_size();
        if (c.output.defined()) n += c.output.numel() * c.output.element_size();
    }
    return n;
}

torch::Tensor CachedDenoiser::predict(int step, Branch branch, const torch::Tensor& latent, int64_t t,
                                      const torch::Tensor& context) {
    const auto& cfg = model_->config();
    if (!flops_) {
        const int64_t tokens = (latent.size(1) / cfg.patch_size[0]) * (latent.size(2) / cfg.patch_size[1]) *
                               (latent.size(3) / cfg.patch_size[2]);
        flops_ = metrics::dit_flops(cfg, tokens);
    }
    stats_.flops_full += flops_->call();

    LazyCall            call(model_, latent, t, context);
    policies::CallInfo  info{step, steps_, int(branch), t, &call};
    const auto          plan  = policy_.plan(info);
    auto&               cache = cache_[branch];
    if (plan.reuse.size() != segments_.size())
        throw std::logic_error("policy " + policy_.name() + " planned " + std::to_string(plan.reuse.size()) + " segments, has " +
                               std::to_string(segments_.size()));
    const bool notify = call_observer_ && call_observer_->wants_call(step, branch);
    if (plan.reuse_output && cache.output.defined()) {
        if (notify) call_observer_->on_call(step, branch, call, cache.output);
        return cache.output;
    }

    auto& em = call.embedded();
    stats_.flops_computed += flops_->embed + flops_->head;
    auto  mask = stats_.compute_mask[step][branch];
    auto  x    = em.x;                                                     // [1, L, dim]
    for (size_t i = 0; i < segments_.size(); ++i) {
        const auto& seg = segments_[i];
        if (plan.reuse[i] && seg.cacheable && cache.residual[i].defined()) {
            x = x + cache.residual[i];                                     // [1, L, dim]
            continue;
        }
        auto       x_in  = x;
        const bool probe = observer_ && observer_->wants(step, branch);
        for (int b = seg.first; b <= seg.last; ++b) {
            if (!probe) {
                x = model_->block(b, x, em.cond);
                continue;
            }
            wan::BlockProbe p;
            auto            y = model_->block(b, x, em.cond, &p);  // [1, L, dim]
            observer_->on_block(step, branch, b, p, x, y);
            x = y;
        }
        mask.narrow(0, seg.first, seg.size()).fill_(1);
        stats_.flops_computed += seg.size() * flops_->block.total();
        if (seg.cacheable) cache.residual[i] = x - x_in;                   // [1, L, dim]
    }
    auto out = model_->unpatchify(model_->head_tokens(x, em.cond), em.cond.grid);  // [C, F, H, W]
    if (policy_.caches_output()) cache.output = out;
    stats_.peak_cache_bytes = std::max(stats_.peak_cache_bytes, cache_bytes());
    if (notify) call_observer_->on_call(step, branch, call, out);
    return out;
}

}  // namespace profdit::sampling
