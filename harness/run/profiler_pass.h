#pragma once

#include <cmath>

#include <torch/torch.h>

#include "run/experiment.h"
#include "run/pipeline.h"
#include "run/plan.h"
#include "store/store.h"

namespace profdit::run {

// What the profiling pass of one reference measured (experiment `profile: {attention: true}`).
struct ReferenceProfile {
    torch::Tensor r_attn;           // [S, blocks] f64, R_attn per step (cond branch), NaN where undefined
    torch::Tensor received_mean;    // [blocks, L] f32, received attention averaged over steps
    torch::Tensor received;         // [S, blocks, L] f32, only with keep_received
    torch::Tensor residual, residual_change;  // [S, blocks] f64
    torch::Tensor mask;             // uint8 [F, H, W] on the latent grid, from the experiment's source
    torch::Tensor mask_auto;        // the auto source's mask, always computed for comparison
    double        auto_iou = NAN;   // IoU of mask_auto vs the gt mask (NaN without gt)
    torch::Tensor token_fg;         // bool [L]
};

// One more, untimed sampling run of the uncached model with an AttentionProfile on the cond branch, the
// foreground mask on the latent grid from the experiment's mask source (gt: the world's detector on the
// reference video; file: mask_file with {prompt} and {seed} replaced; auto: profile::auto_mask of the cond
// prediction averaged over the second half of the steps), and R_attn per step and block.
ReferenceProfile profile_reference(const Pipeline& pipe, const Experiment& x, const Pair& pair, const torch::Tensor& noise,
                                   const wan::Conditioning& cond, const wan::Conditioning& uncond, const torch::Tensor& ref_frames);

// The profile's datasets under `profile/` in a reference's record.
void add_profile(store::Record& r, const ReferenceProfile& p, const ProfileSpec& spec);

// The mask source is usable with this pipeline (InputError naming the experiment file otherwise).
void check_mask_source(const Pipeline& pipe, const Experiment& x);

}  // namespace profdit::run
