// Profiling observers: received attention against the full softmax, and the block observer hook of the
// executor (sees every computed block, never a reused one, and changes nothing).
#include <cmath>

#include <gtest/gtest.h>

#include "common/error.h"
#include "io/safetensors.h"
#include "policies/policy.h"
#include "profile/attention_profile.h"
#include "profile/block_focus.h"
#include "sampling/cached_denoiser.h"
#include "wan/attention.h"
#include "wan/checkpoint.h"
#include "test_util.h"

using namespace profdit;

namespace {

// The definition, in full: softmax over keys of q k^T / sqrt(hd), mean over heads and queries.
torch::Tensor naive_received(const torch::Tensor& q, const torch::Tensor& k) {
    const auto hd = q.size(3);
    auto s = torch::einsum("bqhd,bkhd->bhqk", {q.to(torch::kFloat64), k.to(torch::kFloat64)}) / std::sqrt(double(hd));
    return torch::softmax(s, -1).mean({1, 2});  // [B, Lk]
}

}  // namespace

TEST(ReceivedAttention, MatchesTheFullSoftmaxInAnyChunking) {
    torch::manual_seed(3);
    auto q = torch::randn({2, 37, 3, 8}) * 2, k = torch::randn({2, 41, 3, 8}) * 2;  // [B, L, H, hd]
    const auto full = naive_received(q, k);                                        // [2, 41]
    for (int64_t chunk : {1, 5, 37, 64}) {
        const auto r = wan::received_attention(q, k, chunk, 1);
        EXPECT_LT(test::max_abs_diff(r, full), 1e-6) << "chunk " << chunk;
        EXPECT_LT((r.sum(1) - 1).abs().max().item<double>(), 1e-5);
    }
    const auto strided = wan::received_attention(q, k, 4, 3);  // queries 0, 3, ..., 36
    EXPECT_LT(test::max_abs_diff(strided, naive_received(q.slice(1, 0, 37, 3), k)), 1e-6);
}

TEST(BlockObserver, SeesEveryComputedBlockAndChangesNothing) {
    auto model = test::tiny_model();
    io::SafetensorsReader in(test::data_path("wan21_tiny/dit_tiny_pipeline.safetensors"));
    const auto noise = in.load("noise").to(torch::kFloat32), cc = in.load("context_cond").to(torch::kFloat32),
               cu = in.load("context_uncond").to(torch::kFloat32);
    sampling::SampleOptions opt;
    opt.steps = 6;
    const policies::ModelFacts facts{int(model->num_blocks()), model->config().variant(), ""};
    torch::Tensor mask;  // the last run's compute mask [S, 2, blocks]
    auto run = [&](const std::string& policy, profile::AttentionProfile* prof) {
        auto p = policies::make_policy(YAML::Load(policy), facts, "test");
        sampling::CachedDenoiser d(model, *p, opt.steps);
        d.observe(prof);
        auto latent = test::sample_cfg(d, *model, noise, cc, cu, opt).final_latent;
        mask        = d.stats().compute_mask;
        return latent;
    };
    const int blocks = int(model->num_blocks());
    profile::AttentionProfile all(opt.steps, blocks, 16, 1);
    EXPECT_TRUE(torch::equal(run("none", nullptr), run("none", &all)));
    ASSERT_TRUE(all.received().defined());
    EXPECT_EQ(all.received().size(0), opt.steps);
    EXPECT_EQ(all.received().size(1), blocks);
    EXPECT_FALSE(torch::isnan(all.received()).any().item<bool>());
    EXPECT_LT((all.received().sum(-1) - 1).abs().max().item<double>(), 1e-4);
    EXPECT_FALSE(torch::isnan(all.residual()).any().item<bool>());
    EXPECT_GT(all.residual().min().item<double>(), 0.0);

    profile::AttentionProfile skip(opt.steps, blocks);
    run("{name: step_skip, interval: 2, warmup: 2, final_full: 1}", &skip);
    int reused_steps = 0;
    for (int s = 0; s < opt.steps; ++s)
        for (int b = 0; b < blocks; ++b) {
            const bool computed = mask[s][sampling::kCond][b].item<int>() == 1;
            reused_steps += !computed && b == 0;
            EXPECT_EQ(torch::isnan(skip.received()[s][b]).all().item<bool>(), !computed) << "step " << s << " block " << b;
            EXPECT_EQ(std::isnan(skip.residual()[s][b].item<double>()), !computed) << "step " << s << " block " << b;
        }
    EXPECT_GE(reused_steps, 1);  // the policy really skipped something
}

TEST(BlockFocus, TokenMaskFollowsThePatchGrid) {
    auto m = torch::zeros({2, 8, 8}, torch::kUInt8);  // F=2, 8x8 pixels, patch (1, 4, 4) -> 2 x 2 x 2 tokens
    m[0].narrow(0, 0, 4).narrow(1, 0, 4).fill_(1);   // frame 0: the whole top-left patch
    m[1].narrow(0, 4, 2).narrow(1, 4, 4).fill_(1);   // frame 1: half of the bottom-right patch (8 of 16 pixels)
    m[1][0][7] = 1;                                  // frame 1: 1 pixel of the top-right patch
    const auto t = profile::token_mask(m, {1, 4, 4});
    EXPECT_TRUE(torch::equal(t, torch::tensor({1, 0, 0, 0, 0, 0, 0, 1}, torch::kBool)));
    EXPECT_TRUE(torch::equal(profile::token_mask(m, {1, 4, 4}, 0.6), torch::tensor({1, 0, 0, 0, 0, 0, 0, 0}, torch::kBool)));
    EXPECT_THROW(profile::token_mask(m, {1, 3, 4}), InputError);
}

TEST(BlockFocus, RAttnIsTheShareOfForegroundTokensWithHighAttention) {
    // 2 frames x 4 tokens. Frame means: 0.25 and 0.25 (each frame's 4 values sum to 1).
    const auto received = torch::tensor({0.7f, 0.1f, 0.1f, 0.1f, 0.05f, 0.05f, 0.3f, 0.6f});
    const auto fg       = torch::tensor({1, 1, 0, 0, 0, 0, 1, 0}, torch::kBool);
    // fg tokens 0 (0.7 > 0.25: high), 1 (0.1: low), 6 (0.3 > 0.25: high) -> 2 of 3
    EXPECT_DOUBLE_EQ(profile::foreground_high_share(received, fg, 2, {"mean", 1.0}), 2.0 / 3.0);
    // at 2 x the frame mean (0.5) only token 0 -> 1 of 3
    EXPECT_DOUBLE_EQ(profile::foreground_high_share(received, fg, 2, {"mean", 2.0}), 1.0 / 3.0);
    EXPECT_TRUE(std::isnan(profile::foreground_high_share(received, torch::zeros({8}, torch::kBool), 2)));
    // quantile 0.5 of each frame (sorted index round(0.5 * 3) = 2): frame 0 {0.1, 0.1, 0.1, 0.7} -> 0.1, frame 1
    // {0.05, 0.05, 0.3, 0.6} -> 0.3; high: token 0 (0.7), token 7 (0.6) -> fg high only token 0 -> 1 of 3
    EXPECT_DOUBLE_EQ(profile::foreground_high_share(received, fg, 2, {"quantile", 0.5}), 1.0 / 3.0);
    // quantile 0.25 (index round(0.75) = 1): thresholds 0.1 and 0.05 -> tokens 0 and 6 -> 2 of 3
    EXPECT_DOUBLE_EQ(profile::foreground_high_share(received, fg, 2, {"quantile", 0.25}), 2.0 / 3.0);

    auto per_step = torch::stack({torch::stack({received, received.flip(0)}),                                   // step 0
                                  torch::stack({received, torch::full({8}, std::nan(""), torch::kFloat32)})});  // step 1: block 1 reused
    const auto [mean, spread] = profile::r_attn(per_step, fg, 2);
    // block 0: 2/3 at both steps. block 1, step 0 only: flipped = {0.6, 0.3, 0.05, 0.05, 0.1, 0.1, 0.1, 0.7}:
    // fg tokens 0 (0.6 high), 1 (0.3 high), 6 (0.1 low) -> 2/3; step 1 not computed.
    EXPECT_DOUBLE_EQ(mean[0].item<double>(), 2.0 / 3.0);
    EXPECT_DOUBLE_EQ(spread[0].item<double>(), 0.0);
    EXPECT_DOUBLE_EQ(mean[1].item<double>(), 2.0 / 3.0);
}
