// Official <-> diffusers key names, and loading the same weights in both layouts (and sharded).
#include <fstream>

#include <gtest/gtest.h>

#include "common/error.h"
#include "io/json_file.h"
#include "wan/checkpoint.h"
#include "wan/key_map.h"
#include "test_util.h"

using namespace profdit;

TEST(KeyMap, TinyMapBothWays) {
    const auto map = io::read_json_file(test::data_path("wan21_tiny/dit_key_map_diffusers.json"));
    ASSERT_EQ(map.size(), 69u);
    for (auto it = map.begin(); it != map.end(); ++it) {
        const std::string official = it.key(), diffusers = it.value().get<std::string>();
        EXPECT_EQ(wan::official_to_diffusers(official), diffusers);
        EXPECT_EQ(wan::diffusers_to_official(diffusers), official);
        if (official != diffusers) {
            EXPECT_TRUE(wan::is_diffusers_key(diffusers)) << diffusers;
        }
        EXPECT_FALSE(wan::is_diffusers_key(official)) << official;
    }
}

TEST(KeyMap, I2VAndDeepBlocks) {
    EXPECT_EQ(wan::official_to_diffusers("blocks.39.cross_attn.k_img.weight"), "blocks.39.attn2.add_k_proj.weight");
    EXPECT_EQ(wan::official_to_diffusers("blocks.12.cross_attn.norm_k_img.weight"), "blocks.12.attn2.norm_added_k.weight");
    EXPECT_EQ(wan::official_to_diffusers("img_emb.proj.3.bias"), "condition_embedder.image_embedder.ff.net.2.bias");
    EXPECT_EQ(wan::diffusers_to_official("blocks.29.ffn.net.0.proj.weight"), "blocks.29.ffn.0.weight");
    EXPECT_EQ(wan::diffusers_to_official("blocks.7.norm2.bias"), "blocks.7.norm3.bias");
    EXPECT_EQ(wan::diffusers_to_official("scale_shift_table"), "head.modulation");
}

TEST(Checkpoint, DiffusersAndShardedLayoutsGiveIdenticalOutputs) {
    const auto dir = test::temp_dir();
    const auto cfg = wan::WanConfig::from_json_file(test::data_path("wan21_tiny/config.json"));
    auto official  = wan::load_dit(test::data_path("wan21_tiny/dit_tiny_weights.safetensors"), cfg, torch::kCPU);
    wan::save_dit(official, dir + "/diffusers.safetensors", wan::KeyFormat::diffusers);

    // Sharded official layout: blocks in one shard, the rest in another.
    io::SafetensorsReader src(test::data_path("wan21_tiny/dit_tiny_weights.safetensors"));
    std::map<std::string, torch::Tensor> s1, s2;
    nlohmann::json index = {{"metadata", nlohmann::json::object()}, {"weight_map", nlohmann::json::object()}};
    for (const auto& n : src.names()) {
        const bool blk = n.rfind("blocks.", 0) == 0;
        (blk ? s1 : s2)[n] = src.load(n).to(blk ? torch::kBFloat16 : torch::kFloat32).to(torch::kFloat32);
        index["weight_map"][n] = blk ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
    }
    io::write_safetensors(dir + "/model-00001-of-00002.safetensors", s1);
    io::write_safetensors(dir + "/model-00002-of-00002.safetensors", s2);
    std::ofstream(dir + "/model.safetensors.index.json") << index.dump();

    auto diffusers = wan::load_dit(dir + "/diffusers.safetensors", cfg, torch::kCPU);
    auto sharded   = wan::load_dit(dir + "/model.safetensors.index.json", cfg, torch::kCPU);
    io::SafetensorsReader g(test::data_path("wan21_tiny/dit_tiny_io.safetensors"));
    torch::NoGradGuard    no_grad;
    auto x = g.load("case0.x"), ctx = g.load("case0.context");
    auto a = official->forward(x, 999, ctx);
    EXPECT_TRUE(torch::equal(a, diffusers->forward(x, 999, ctx)));
    EXPECT_LT(test::max_abs_diff(a, g.load("case0.out")), 1e-4);
    auto s = sharded->forward(x, 999, ctx);  // block weights rounded through bf16
    EXPECT_LT(test::max_abs_diff(s, a), 0.1);
    EXPECT_GT(test::max_abs_diff(s, a), 0.0);
}

TEST(Checkpoint, MissingMisshapedAndUnexpectedKeys) {
    const auto dir = test::temp_dir();
    const auto cfg = wan::WanConfig::from_json_file(test::data_path("wan21_tiny/config.json"));
    io::SafetensorsReader src(test::data_path("wan21_tiny/dit_tiny_weights.safetensors"));
    auto all = src.load_all();

    auto missing = all;
    missing.erase("blocks.1.ffn.2.bias");
    io::write_safetensors(dir + "/missing.safetensors", missing);
    try {
        wan::load_dit(dir + "/missing.safetensors", cfg, torch::kCPU);
        FAIL() << "no error";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("'blocks.1.ffn.2.bias'"), std::string::npos) << e.what();
    }

    auto shaped = all;
    shaped["blocks.0.self_attn.norm_q.weight"] = torch::ones({32});
    io::write_safetensors(dir + "/shaped.safetensors", shaped);
    try {
        wan::load_dit(dir + "/shaped.safetensors", cfg, torch::kCPU);
        FAIL() << "no error";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("blocks.0.self_attn.norm_q.weight"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("[32]"), std::string::npos) << e.what();
    }

    auto extra = all;
    extra["blocks.0.extra.weight"] = torch::ones({2});
    io::write_safetensors(dir + "/extra.safetensors", extra);
    try {
        wan::load_dit(dir + "/extra.safetensors", cfg, torch::kCPU);
        FAIL() << "no error";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("blocks.0.extra.weight"), std::string::npos) << e.what();
    }

    auto wrong = cfg;
    wrong.ffn_dim = 256;
    try {
        wan::load_dit(test::data_path("wan21_tiny/dit_tiny_weights.safetensors"), wrong, torch::kCPU);
        FAIL() << "no error";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("ffn_dim = 128"), std::string::npos) << e.what();
    }
}

TEST(Config, JsonForms) {
    const auto dir = test::temp_dir();
    auto write = [&](const std::string& name, const std::string& text) {
        std::ofstream(dir + "/" + name) << text;
        return dir + "/" + name;
    };
    const auto official = wan::WanConfig::from_json_file(write("official.json", R"({"_class_name": "WanModel", "dim": 1536, "eps": 1e-06,
        "ffn_dim": 8960, "freq_dim": 256, "in_dim": 16, "model_type": "t2v", "num_heads": 12, "num_layers": 30,
        "out_dim": 16, "text_len": 512})"));
    EXPECT_EQ(official.variant(), "Wan2.1-T2V-1.3B");
    const auto diffusers = wan::WanConfig::from_json_file(write("diffusers.json", R"({"_class_name": "WanTransformer3DModel",
        "attention_head_dim": 128, "cross_attn_norm": true, "eps": 1e-06, "ffn_dim": 13824, "freq_dim": 256,
        "image_dim": null, "in_channels": 16, "num_attention_heads": 40, "num_layers": 40, "out_channels": 16,
        "patch_size": [1, 2, 2], "qk_norm": "rms_norm_across_heads", "rope_max_seq_len": 1024, "text_dim": 4096})"));
    EXPECT_EQ(diffusers.variant(), "Wan2.1-T2V-14B");
    EXPECT_EQ(diffusers.dim, 5120);

    auto expect_error = [&](const std::string& text, const std::string& part) {
        const auto path = write("bad.json", text);
        try {
            wan::WanConfig::from_json_file(path);
            ADD_FAILURE() << "no error for " << text;
        } catch (const InputError& e) {
            EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
        }
    };
    expect_error(R"({"dit": {"dim": 64, "ffn_dim": 128, "num_heads": 4, "num_layers": 2, "colour": 1}})", "unknown key 'colour'");
    expect_error(R"({"dit": {"dim": 64, "ffn_dim": 128, "num_heads": 5, "num_layers": 2}})", "not divisible");
    expect_error(R"({"dit": {"dim": 64, "ffn_dim": -3, "num_heads": 4, "num_layers": 2}})", "'ffn_dim' must be a positive integer");
    expect_error(R"({"dit": {"dim": 64, "ffn_dim": 128, "num_heads": 4}})", "missing key 'num_layers'");
    expect_error(R"({"dit": {"dim": 64, "ffn_dim": 128, "num_heads": 4, "num_layers": 2, "patch_size": [1, 2]}})", "patch_size");
    expect_error(R"({"dit": {"dim": 64, "ffn_dim": 128, "num_heads": 4, "num_layers": 2, "qk_norm": "yes"}})", "'qk_norm'");
    expect_error(R"({"dit": {"dim": 64,)", "malformed JSON");
    // accepted and silently ignored before: the blocks always apply both norms
    expect_error(R"({"dit": {"dim": 64, "ffn_dim": 128, "num_heads": 4, "num_layers": 2, "qk_norm": false}})",
                 "key 'qk_norm' is false, which profdit does not implement");
    expect_error(R"({"dit": {"dim": 64, "ffn_dim": 128, "num_heads": 4, "num_layers": 2, "cross_attn_norm": false}})",
                 "key 'cross_attn_norm' is false, which profdit does not implement");
    expect_error(R"({"_class_name": "WanTransformer3DModel", "attention_head_dim": 16, "num_attention_heads": 4, "in_channels": 16,
        "out_channels": 16, "text_dim": 32, "freq_dim": 32, "ffn_dim": 128, "num_layers": 2, "qk_norm": null})",
                 "key 'qk_norm' is false");
}
