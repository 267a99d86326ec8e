#pragma once

#include <array>
#include <optional>

#include "metrics/flops.h"
#include "policies/policy.h"
#include "sampling/cfg_loop.h"
#include "sampling/observer.h"
#include "sampling/taylor_factors.h"

namespace profdit::sampling {

// compute_mask values: what ran for a block in a call.
enum MaskValue : uint8_t { kReused = 0, kComputed = 1, kForecast = 2 };

// What a cached run did, measured the same way for every policy.
struct CacheStats {
    torch::Tensor compute_mask;              // uint8 [steps, branches, blocks], MaskValue per block and call
    double        flops_computed = 0;        // analytic: embed + computed blocks + head + indicator and forecast work
    double        flops_full     = 0;        // the same calls without caching
    double        flops_indicator = 0;       // the part of flops_computed spent on indicators and forecasts
    int64_t       peak_cache_bytes = 0;      // largest total of cached tensors (and kept indicators) held at once
    double        computed_fraction() const; // computed block calls / all block calls (forecast ones are not computed)
    double        ideal_speedup() const { return flops_computed > 0 ? flops_full / flops_computed : 0; }
};

// The executor: runs each call's plan from the policy over the model's stages, keeps one cache store
// per CFG branch (one residual per cacheable segment; the previous prediction only for policies that
// reuse whole outputs; the probe reference, latents and Taylor factors only for policies that use them)
// and records the compute mask and FLOPs. Indicators are measured here and handed to the policy as numbers.
class CachedDenoiser : public Denoiser {
  public:
    CachedDenoiser(wan::WanModel model, policies::CachePolicy& policy, int steps);
    torch::Tensor     predict(int step, Branch branch, const torch::Tensor& latent, int64_t t,
                              const wan::Conditioning& cond) override;
    void              begin(const Schedule& schedule) override;
    const CacheStats& stats() const { return stats_; }
    const torch::Tensor& cached(Branch b, size_t segment) const { return cache_[b].residual.at(segment); }
    void                 observe(BlockObserver* observer) { observer_ = observer; }  // nullptr: none
    void                 observe_calls(CallObserver* observer) { call_observer_ = observer; }  // nullptr: none

  private:
    // The three module outputs TaylorSeer forecasts per block (before their gates).
    struct BlockFactors {
        TaylorFactors self_attn, cross_attn, ffn;
    };
    struct BranchCache {
        std::vector<torch::Tensor> residual;        // per segment, [1, L, dim]
        torch::Tensor              output;          // [C, F, H, W] last computed prediction
        torch::Tensor              probe_ref;       // [1, L, dim] probe segment residual the rel-L1 compares with
        torch::Tensor              prev_input;      // [C, F, H, W] latent of the branch's previous call (tracks_io)
        torch::Tensor              computed_input;  // [C, F, H, W] latent of the last computed call (tracks_io)
        std::string                prev_indicator_name;  // the TeaCache indicator the policy asks about, and its
        torch::Tensor              prev_indicator;       // value at the branch's previous call (indicator_change)
        double                     output_change = 0, input_change = 0;  // between the last two computed calls
        bool                       has_changes   = false;
        std::vector<BlockFactors>  taylor;          // per block (forecast_order() >= 0)
        int                        taylor_step = -1;  // step of the last record
    };
    int64_t       cache_bytes() const;
    torch::Tensor forecast_blocks(const policies::Segment& seg, BranchCache& cache, int step, torch::Tensor x,
                                  const wan::DiTCond& cond);
    void          record_taylor(BranchCache& cache, int block, int step, const wan::BlockProbe& p, bool derivatives);
    void          count_indicator(double flops);

    wan::WanModel                  model_;
    policies::CachePolicy&         policy_;
    std::vector<policies::Segment> segments_;
    int                            steps_;
    bool                           tracks_io_;
    int                            forecast_order_;
    std::vector<float>             sigmas_;
    BranchCache                    cache_[kNumBranches];
    std::optional<metrics::DiTFlops> flops_;
    CacheStats                     stats_;
    BlockObserver*                 observer_ = nullptr;
    CallObserver*                  call_observer_ = nullptr;
};

}  // namespace profdit::sampling
