#pragma once

#include <optional>

#include "metrics/flops.h"
#include "policies/policy.h"
#include "sampling/cfg_loop.h"
#include "sampling/observer.h"

namespace profdit::sampling {

// What a cached run did, measured the same way for every policy.
struct CacheStats {
    torch::Tensor compute_mask;              // uint8 [steps, branches, blocks], 1 = block computed
    double        flops_computed = 0;        // analytic, embed + computed blocks + head
    double        flops_full     = 0;        // the same calls without caching
    int64_t       peak_cache_bytes = 0;      // largest total of cached tensors held at once
    double        computed_fraction() const; // computed block calls / all block calls
    double        ideal_speedup() const { return flops_computed > 0 ? flops_full / flops_computed : 0; }
};

// The executor: runs each call's plan from the policy over the model's stages, keeps one cache store
// per CFG branch (one residual per cacheable segment; the previous prediction only for policies that
// reuse whole outputs) and records the compute mask and FLOPs.
class CachedDenoiser : public Denoiser {
  public:
    CachedDenoiser(wan::WanModel model, policies::CachePolicy& policy, int steps);
    torch::Tensor     predict(int step, Branch branch, const torch::Tensor& latent, int64_t t,
                              const torch::Tensor& context) override;
    const CacheStats& stats() const { return stats_; }
    const torch::Tensor& cached(Branch b, size_t segment) const { return cache_[b].residual.at(segment); }
    void                 observe(BlockObserver* observer) { observer_ = observer; }  // nullptr: none
    void                 observe_calls(CallObserver* observer) { call_observer_ = observer; }  // nullptr: none

  private:
    struct BranchCache {
        std::vector<torch::Tensor> residual;  // per segment
        torch::Tensor              output;
    };
    int64_t cache_bytes() const;

    wan::WanModel                  model_;
    policies::CachePolicy&         policy_;
    std::vector<policies::Segment> segments_;
    int                            steps_;
    BranchCache                    cache_[kNumBranches];
    std::optional<metrics::DiTFlops> flops_;
    CacheStats                     stats_;
    BlockObserver*                 observer_ = nullptr;
    CallObserver*                  call_observer_ = nullptr;
};

}  // namespace profdit::sampling
