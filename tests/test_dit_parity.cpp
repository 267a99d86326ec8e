// The DiT against the official reference's tensors (tests/data/wan21_tiny, see README there):
// every intermediate of both cases, fp32, max abs error < 1e-4.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include "common/error.h"
#include "io/safetensors.h"
#include "wan/attention.h"
#include "wan/checkpoint.h"
#include "wan/dit.h"
#include "wan/rope.h"
#include "test_util.h"

using namespace profdit;

namespace {

constexpr double kTol = 1e-4;

wan::WanConfig tiny_config() { return wan::WanConfig::from_json_file(test::data_path("wan21_tiny/config.json")); }

wan::WanModel tiny_model() {
    auto m = wan::load_dit(test::data_path("wan21_tiny/dit_tiny_weights.safetensors"), tiny_config(), torch::kCPU);
    m->eval();
    return m;
}

const io::SafetensorsReader& golden() {
    static io::SafetensorsReader r(test::data_path("wan21_tiny/dit_tiny_io.safetensors"));
    return r;
}

torch::Tensor g(const std::string& key) { return golden().load(key); }

}  // namespace

TEST(DiTParity, ConfigFromJsonMatchesWeights) {
    const auto cfg = tiny_config();
    EXPECT_EQ(cfg.dim, 64);
    EXPECT_EQ(cfg.num_heads, 4);
    EXPECT_EQ(cfg.text_len, 8);
    io::SafetensorsReader r(test::data_path("wan21_tiny/dit_tiny_weights.safetensors"));
    const auto det = wan::WanConfig::detect_from_weights(wan::inspect_dit(r).shapes, r.path());
    EXPECT_EQ(det.num_layers, 2);
    EXPECT_EQ(det.ffn_dim, 128);
    EXPECT_EQ(det.freq_dim, 32);
    EXPECT_EQ(det.text_dim, 32);
    EXPECT_EQ(det.out_dim, 16);
    EXPECT_EQ(det.in_dim, 16);
    EXPECT_EQ(det.patch_size, (std::array<int64_t, 3>{1, 2, 2}));
    EXPECT_TRUE(det.qk_norm);
    EXPECT_TRUE(det.cross_attn_norm);
    EXPECT_EQ(det.variant(), "custom");
    EXPECT_NO_THROW(cfg.check_against_weights(wan::inspect_dit(r).shapes, r.path()));
}

// The official Wan2.1 sizes are recognised by every shape (heads and text_len are then known); a size off by
// one shape is refused, naming the file; profdit's metadata, when present, wins and is checked against the shapes.
TEST(DiTParity, ConfigFromWeightsOfficialSizesOrMetadata) {
    auto shapes = [](int64_t dim, int64_t ffn, int64_t layers) {
        wan::ShapeMap s = {{"patch_embedding.weight", {dim, 16, 1, 2, 2}}, {"text_embedding.0.weight", {dim, 4096}},
                           {"time_embedding.0.weight", {dim, 256}},        {"blocks.0.ffn.0.weight", {ffn, dim}},
                           {"head.head.weight", {64, dim}},                 {"blocks.0.self_attn.norm_q.weight", {dim}},
                           {"blocks.0.norm3.weight", {dim}}};
        for (int64_t b = 0; b < layers; ++b) s["blocks." + std::to_string(b) + ".modulation"] = {1, 6, dim};
        return s;
    };
    std::string how;
    const auto  small = wan::WanConfig::from_weights(shapes(1536, 8960, 30), {}, "w.safetensors", &how);
    EXPECT_EQ(small.num_heads, 12);
    EXPECT_EQ(small.text_len, 512);
    EXPECT_EQ(small.variant(), "Wan2.1-T2V-1.3B");
    EXPECT_EQ(how, "official Wan2.1-T2V-1.3B size");
    const auto big = wan::WanConfig::from_weights(shapes(5120, 13824, 40), {}, "w.safetensors");
    EXPECT_EQ(big.num_heads, 40);
    EXPECT_EQ(big.variant(), "Wan2.1-T2V-14B");
    try {
        wan::WanConfig::from_weights(shapes(1536, 8960, 29), {}, "w.safetensors");
        ADD_FAILURE() << "29 layers of 1536 taken for an official size";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("w.safetensors: cannot tell the DiT configuration"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("29 layers"), std::string::npos) << e.what();
    }

    io::SafetensorsReader r(test::data_path("wan21_tiny/dit_tiny_weights.safetensors"));
    const auto            tiny = wan::inspect_dit(r).shapes;
    const auto            cfg  = wan::WanConfig::from_weights(tiny, tiny_config().metadata(), r.path(), &how);
    EXPECT_EQ(cfg.num_heads, 4);
    EXPECT_EQ(cfg.text_len, 8);
    EXPECT_EQ(how, "config in the file's metadata");
    auto wrong = tiny_config();
    wrong.num_layers = 3;
    const auto key = std::string(wan::WanConfig::kMetadataKey);
    for (const auto& [md, part] : std::vector<std::pair<std::map<std::string, std::string>, std::string>>{
             {wrong.metadata(), "the weights have num_layers = 2 but the config says 3"},
             {{{key, "{not json"}}, "metadata 'profdit.dit_config' is not JSON"}}) {
        try {
            wan::WanConfig::from_weights(tiny, md, r.path());
            ADD_FAILURE() << "no error for " << part;
        } catch (const InputError& e) {
            EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find(r.path()), std::string::npos) << e.what();
        }
    }
}

TEST(DiTParity, RopeTable) {
    EXPECT_EQ(wan::rope_axis_pairs(16), (std::array<int64_t, 3>{4, 2, 2}));
    EXPECT_EQ(wan::rope_axis_pairs(128), (std::array<int64_t, 3>{22, 21, 21}));
    EXPECT_LT(test::max_abs_diff(wan::rope_table(16), g("rope_freqs")), 1e-12);
}

class DiTCase : public ::testing::TestWithParam<std::string> {};

TEST_P(DiTCase, EveryIntermediate) {
    const std::string c = GetParam() + ".";
    auto model = tiny_model();
    torch::NoGradGuard no_grad;
    auto x   = g(c + "x");
    auto t   = g(c + "t").item<int64_t>();
    auto ctx = g(c + "context");

    EXPECT_LT(test::max_abs_diff(wan::sinusoidal_embedding(32, t, torch::kCPU), g(c + "time_sinusoid")), kTol);
    auto em = model->embed(x, t, ctx);
    EXPECT_LT(test::max_abs_diff(em.cond.e, g(c + "time_emb")), kTol);
    EXPECT_LT(test::max_abs_diff(em.cond.e0, g(c + "time_proj")), kTol);
    EXPECT_LT(test::max_abs_diff(em.cond.context, g(c + "context_emb")), kTol);
    EXPECT_LT(test::max_abs_diff(em.x, g(c + "patch_tokens")), kTol);
    auto grid = g(c + "grid_sizes").view({3});
    EXPECT_EQ(em.cond.grid[0], grid[0].item<int64_t>());
    EXPECT_EQ(em.cond.grid[1], grid[1].item<int64_t>());
    EXPECT_EQ(em.cond.grid[2], grid[2].item<int64_t>());

    auto   h        = em.x;
    double rope_err = 0;
    for (int i = 0; i < 2; ++i) {
        const std::string b = c + "block" + std::to_string(i) + ".";
        wan::BlockProbe   probe;
        h = model->block(i, h, em.cond, &probe);
        EXPECT_LT(test::max_abs_diff(probe.q_normed, g(b + "q_normed")), kTol) << b;
        EXPECT_LT(test::max_abs_diff(probe.k_normed, g(b + "k_normed")), kTol) << b;
        if (golden().contains(b + "q_rope")) {
            EXPECT_LT(test::max_abs_diff(probe.q_rope, g(b + "q_rope")), kTol) << b;
            EXPECT_LT(test::max_abs_diff(probe.k_rope, g(b + "k_rope")), kTol) << b;
            rope_err = std::max({rope_err, test::max_abs_diff(probe.q_rope, g(b + "q_rope")), test::max_abs_diff(probe.k_rope, g(b + "k_rope"))});
        }
        EXPECT_LT(test::max_abs_diff(probe.self_attn_out, g(b + "self_attn_out")), kTol) << b;
        EXPECT_LT(test::max_abs_diff(probe.cross_attn_out, g(b + "cross_attn_out")), kTol) << b;
        EXPECT_LT(test::max_abs_diff(probe.ffn_out, g(b + "ffn_out")), kTol) << b;
        EXPECT_LT(test::max_abs_diff(h, g(b + "out")), kTol) << b;
    }
    auto tokens = model->head_tokens(h, em.cond);
    EXPECT_LT(test::max_abs_diff(tokens, g(c + "head_out")), kTol);
    EXPECT_LT(test::max_abs_diff(model->unpatchify(tokens, em.cond.grid), g(c + "out")), kTol);
    const double out_err = test::max_abs_diff(model->forward(x, t, ctx), g(c + "out"));
    EXPECT_LT(out_err, kTol);
    std::cout << GetParam() << ": max abs error vs the official code: RoPE'd q/k " << rope_err << ", output " << out_err << "\n";
}

INSTANTIATE_TEST_SUITE_P(Golden, DiTCase, ::testing::Values("case0", "case1"));

TEST(DiTParity, ForwardIsDeterministic) {
    auto model = tiny_model();
    torch::NoGradGuard no_grad;
    auto a = model->forward(g("case1.x"), 356, g("case1.context"));
    auto b = model->forward(g("case1.x"), 356, g("case1.context"));
    EXPECT_TRUE(torch::equal(a, b));
}

TEST(DiTParity, ExplicitAttentionMatchesFastPathAndChunks) {
    torch::manual_seed(3);
    auto q = torch::randn({1, 37, 4, 16}), k = torch::randn({1, 37, 4, 16}), v = torch::randn({1, 37, 4, 16});
    wan::AttentionScratch scratch;
    auto full    = wan::attention_explicit(q, k, v);
    auto chunked = wan::attention_explicit(q, k, v, &scratch, 4 * 37 * 4 * 5);  // 5 query rows per chunk (37 = 7 x 5 + 2)
    auto again   = wan::attention_explicit(q, k, v, &scratch, 4 * 37 * 4 * 5);
    auto fast    = wan::attention(q, k, v);
    auto ref     = torch::matmul(torch::softmax(torch::matmul(q.permute({0, 2, 1, 3}), k.permute({0, 2, 3, 1})) / 4.0, -1),
                                 v.permute({0, 2, 1, 3}))
                   .permute({0, 2, 1, 3})
                   .reshape({1, 37, 64});
    EXPECT_LT(test::max_abs_diff(full, ref), 1e-5);
    EXPECT_LT(test::max_abs_diff(chunked, ref), 1e-5);
    EXPECT_TRUE(torch::equal(chunked, again));
    EXPECT_LT(test::max_abs_diff(fast, ref), 1e-5);
}

// bf16 inputs: only the output may be rounded to bf16 (max error half a bf16 ulp of |out| <= 4: 0.0078).
// Scores, exp and row sums kept in bf16 were off by 0.05 on these inputs.
TEST(DiTParity, ExplicitAttentionAccumulatesBf16InFp32) {
    torch::manual_seed(5);
    const auto q = (torch::randn({1, 256, 2, 64}) * 2).to(torch::kBFloat16), k = (torch::randn({1, 1024, 2, 64}) * 2).to(torch::kBFloat16);
    const auto v = torch::randn({1, 1024, 2, 64}).to(torch::kBFloat16);
    auto       qd = q.to(torch::kFloat64), kd = k.to(torch::kFloat64), vd = v.to(torch::kFloat64);  // the same values, exact
    auto       ref = torch::matmul(torch::softmax(torch::matmul(qd.permute({0, 2, 1, 3}), kd.permute({0, 2, 3, 1})) / 8.0, -1),
                                   vd.permute({0, 2, 1, 3}))
                   .permute({0, 2, 1, 3})
                   .reshape({1, 256, 128});  // [1, Lq, H * hd]
    ASSERT_LT(ref.abs().max().item<double>(), 4.0);
    wan::AttentionScratch scratch;
    const auto out = wan::attention_explicit(q, k, v, &scratch);
    EXPECT_EQ(out.scalar_type(), torch::kBFloat16);
    EXPECT_LT(test::max_abs_diff(out.to(torch::kFloat64), ref), 0.0079);
}

TEST(DiTParity, Bf16KeepsNormsModulationAndHeadInFp32) {
    auto model = wan::load_dit(test::data_path("wan21_tiny/dit_tiny_weights.safetensors"), tiny_config(), torch::kCPU,
                               torch::kBFloat16);
    for (auto& p : model->named_parameters()) {
        const auto& k          = p.key();
        const bool  matmul     = k.find(".q.") != std::string::npos || k.find(".k.") != std::string::npos ||
                            k.find(".v.") != std::string::npos || k.find(".o.") != std::string::npos ||
                            k.find("ffn.") != std::string::npos || k.find("patch_embedding") == 0 ||
                            k.find("text_embedding") == 0;
        EXPECT_EQ(p.value().scalar_type(), matmul ? torch::kBFloat16 : torch::kFloat32) << k;
    }
    torch::NoGradGuard no_grad;
    auto out = model->forward(g("case0.x"), 999, g("case0.context"));
    EXPECT_EQ(out.scalar_type(), torch::kFloat32);
    const double rel = (out - g("case0.out")).norm().item<double>() / g("case0.out").norm().item<double>();
    EXPECT_LT(rel, 0.05);  // bf16 matmuls: about 1e-2 relative
    EXPECT_GT(rel, 0.0);
}

TEST(DiTParity, CudaMatchesGolden_CUDA) {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
    auto model = wan::load_dit(test::data_path("wan21_tiny/dit_tiny_weights.safetensors"), tiny_config(), torch::kCUDA);
    torch::NoGradGuard no_grad;
    for (const std::string c : {"case0", "case1"}) {
        auto out = model->forward(g(c + ".x").cuda(), g(c + ".t").item<int64_t>(), g(c + ".context").cuda());
        EXPECT_LT(test::max_abs_diff(out.cpu(), g(c + ".out")), 1e-4) << c;
    }
    auto bf16 = wan::load_dit(test::data_path("wan21_tiny/dit_tiny_weights.safetensors"), tiny_config(), torch::kCUDA, torch::kBFloat16);
    auto out  = bf16->forward(g("case0.x").cuda(), 999, g("case0.context").cuda()).cpu();
    EXPECT_LT((out - g("case0.out")).norm().item<double>() / g("case0.out").norm().item<double>(), 0.05);
}
