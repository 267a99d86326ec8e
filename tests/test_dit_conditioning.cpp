// The DiT's conditioning (text MLP over the padded context, every block's cross-attention K/V, the RoPE tables of
// the token grid), built once per (prompt, CFG branch, grid) and reused by every call; and the one block loop.
#include <gtest/gtest.h>

#include <stdexcept>

#include "io/safetensors.h"
#include "sampling/cfg_loop.h"
#include "wan/dit.h"
#include "test_util.h"

using namespace profdit;

namespace {

const io::SafetensorsReader& golden() {
    static io::SafetensorsReader r(test::data_path("wan21_tiny/dit_tiny_io.safetensors"));
    return r;
}

}  // namespace

// A forward from a prebuilt conditioning is the forward from the raw context, bit for bit.
TEST(DiTConditioning, ForwardFromConditioningEqualsForwardFromContext) {
    auto               model = test::tiny_model();
    torch::NoGradGuard no_grad;
    for (const std::string c : {"case0", "case1"}) {
        const auto x = golden().load(c + ".x"), ctx = golden().load(c + ".context");
        const auto t = golden().load(c + ".t").item<int64_t>();
        const auto cond = model->condition(ctx, x.sizes());
        EXPECT_EQ(cond.cross_kv.size(), size_t(model->num_blocks()));
        EXPECT_EQ(cond.context.sizes(), (std::vector<int64_t>{1, model->config().text_len, model->config().dim}));
        EXPECT_TRUE(torch::equal(model->forward(x, t, cond), model->forward(x, t, ctx))) << c;
        EXPECT_FALSE(cond.context.requires_grad());
    }
}

// Every step of a sampling run uses the conditioning built before the loop: weights that only the conditioning
// reads (text MLP, cross-attention k and v) changed after it was built change nothing; a conditioning built
// afterwards sees them.
TEST(DiTConditioning, SamplingReusesTheConditioningBuiltBeforeTheLoop) {
    io::SafetensorsReader g(test::data_path("wan21_tiny/dit_tiny_pipeline.safetensors"));
    auto                  model = test::tiny_model();
    const auto            noise = g.load("noise");
    torch::NoGradGuard    no_grad;
    const auto            cond = model->condition(g.load("context_cond"), noise.sizes());
    const auto            uncond = model->condition(g.load("context_uncond"), noise.sizes());
    sampling::PlainDenoiser d(model);
    sampling::SampleOptions opt;
    opt.steps = 3;
    const auto before = sampling::sample_cfg(d, noise, cond, uncond, opt).final_latent;

    for (auto& p : model->text_embedding->parameters()) p.mul_(0.5);
    for (auto& b : *model->blocks) {
        auto* blk = b->as<wan::WanAttentionBlockImpl>();
        blk->cross_attn->k->weight.mul_(0.5);
        blk->cross_attn->v->weight.mul_(0.5);
    }
    EXPECT_TRUE(torch::equal(sampling::sample_cfg(d, noise, cond, uncond, opt).final_latent, before));
    const auto rebuilt = sampling::sample_cfg(d, noise, model->condition(g.load("context_cond"), noise.sizes()),
                                              model->condition(g.load("context_uncond"), noise.sizes()), opt);
    EXPECT_FALSE(torch::equal(rebuilt.final_latent, before));
}

TEST(DiTConditioning, AnotherGridIsRefused) {
    auto               model = test::tiny_model();
    torch::NoGradGuard no_grad;
    const auto         x0 = golden().load("case0.x"), x1 = golden().load("case1.x");
    const auto         cond = model->condition(golden().load("case0.context"), x0.sizes());
    try {
        model->forward(x1, 356, cond);
        ADD_FAILURE() << "a conditioning for grid 3x4x4 ran latents of grid 5x3x5";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("3x4x4"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("5x3x5"), std::string::npos) << e.what();
    }
}

// run_blocks is the model's one block loop: blocks first..last in order, each seeing the previous output; the
// visitor may stop after any block; intermediates only when asked for.
TEST(DiTBlockLoop, RunsTheRangeInOrderAndStopsWhenTold) {
    auto               model = test::tiny_model();
    torch::NoGradGuard no_grad;
    const auto         x = golden().load("case1.x"), ctx = golden().load("case1.context");
    const auto         em = model->embed(x, 356, ctx);

    std::vector<int64_t> seen;
    torch::Tensor        prev = em.x;
    auto all = model->run_blocks(em.x, em.cond, 0, 1, [&](int64_t b, const torch::Tensor& in, const torch::Tensor& out, const wan::BlockProbe* p) {
        seen.push_back(b);
        EXPECT_TRUE(torch::equal(in, prev)) << b;
        EXPECT_EQ(p, nullptr);
        prev = out;
        return true;
    });
    EXPECT_EQ(seen, (std::vector<int64_t>{0, 1}));
    EXPECT_TRUE(torch::equal(all, prev));
    EXPECT_TRUE(torch::equal(all, model->block(1, model->block(0, em.x, em.cond), em.cond)));
    EXPECT_TRUE(torch::equal(model->unpatchify(model->head_tokens(all, em.cond), em.cond.grid), model->forward(x, 356, ctx)));

    seen.clear();
    auto first = model->run_blocks(em.x, em.cond, 0, 1, [&](int64_t b, const torch::Tensor&, const torch::Tensor&, const wan::BlockProbe* p) {
        seen.push_back(b);
        EXPECT_NE(p, nullptr);
        if (p) {
            EXPECT_TRUE(p->self_attn_out.defined());
        }
        return false;
    }, true);
    EXPECT_EQ(seen, (std::vector<int64_t>{0}));
    EXPECT_TRUE(torch::equal(first, model->block(0, em.x, em.cond)));
    EXPECT_TRUE(torch::equal(model->run_blocks(first, em.cond, 1, 1), all));
}
