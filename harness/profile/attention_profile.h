#pragma once

#include "sampling/observer.h"

namespace profdit::profile {

// Records, for one CFG branch, every computed block's received attention per token (wan::received_attention)
// and its relative residual ||x_out - x_in|| / ||x_in||, per step. Entries of blocks that were not
// computed (reused from a cache) stay NaN.
class AttentionProfile : public sampling::BlockObserver {
  public:
    AttentionProfile(int steps, int blocks, int64_t query_chunk = 64, int64_t query_stride = 1,
                     sampling::Branch branch = sampling::kCond);
    bool wants(int step, sampling::Branch branch) const override { return branch == branch_; }
    void on_block(int step, sampling::Branch branch, int block, const wan::BlockProbe& probe, const torch::Tensor& x_in,
                  const torch::Tensor& x_out) override;

    const torch::Tensor& received() const { return received_; }  // [S, blocks, L] f32
    const torch::Tensor& residual() const { return residual_; }  // [S, blocks] f64

  private:
    int              steps_, blocks_;
    int64_t          query_chunk_, query_stride_;
    sampling::Branch branch_;
    torch::Tensor    received_, residual_;
};

}  // namespace profdit::profile
