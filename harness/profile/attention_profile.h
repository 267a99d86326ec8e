#pragma once

#include <vector>

#include "sampling/observer.h"

namespace profdit::profile {

// Records, for one CFG branch, every computed block's received attention per token (wan::received_attention,
// computed in query chunks: at most B x heads x query_chunk x L extra floats at a time), its relative residual
// ||x_out - x_in|| / ||x_in|| and the residual's relative change since the block's previous computed step
// ||d_s - d_prev|| / ||d_prev|| (holds one residual per block: blocks x L x dim elements). Entries of blocks that
// were not computed (reused from a cache) stay NaN.
class AttentionProfile : public sampling::BlockObserver {
  public:
    AttentionProfile(int steps, int blocks, int64_t query_chunk = 64, int64_t query_stride = 1,
                     sampling::Branch branch = sampling::kCond);
    bool wants(int step, sampling::Branch branch) const override { return branch == branch_; }
    void on_block(int step, sampling::Branch branch, int block, const wan::BlockProbe& probe, const torch::Tensor& x_in,
                  const torch::Tensor& x_out) override;

    const torch::Tensor& received() const { return received_; }          // [S, blocks, L] f32
    const torch::Tensor& residual() const { return residual_; }          // [S, blocks] f64
    const torch::Tensor& residual_change() const { return change_; }     // [S, blocks] f64

  private:
    int                        steps_, blocks_;
    int64_t                    query_chunk_, query_stride_;
    sampling::Branch           branch_;
    torch::Tensor              received_, residual_, change_;
    std::vector<torch::Tensor> last_delta_;  // per block [1, L, dim]
};

}  // namespace profdit::profile
