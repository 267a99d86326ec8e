// Wan2.1 checkpoint folders (official and diffusers layouts) built from the tiny goldens: detection, loading,
// identical videos from both layouts, the error messages, seeded random weights, `profdit info` and a
// random-weight `profdit run` (the `weights: random` flag and peak memory).
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/safetensors.h"
#include "run/experiment.h"
#include "run/pipeline.h"
#include "sampling/cfg_loop.h"
#include "store/store.h"
#include "test_util.h"
#include "wan/t5.h"
#include "wan/vae.h"
#include "wan/wan_pipeline.h"
#include "spiece_fixture.h"

using namespace profdit;
namespace fs = std::filesystem;

namespace {

std::string tiny(const std::string& f) { return test::data_path("wan21_tiny/" + f); }

void write_text(const std::string& path, const std::string& text) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << text;
}

// {"dit": {...}} of the tiny DiT.
void write_dit_config(const std::string& path) {
    std::ifstream in(tiny("config.json"));
    nlohmann::json j;
    in >> j;
    write_text(path, nlohmann::json{{"dit", j["dit"]}}.dump(1));
}

std::map<std::string, torch::Tensor> renamed(const std::string& file, const std::function<std::string(const std::string&)>& f) {
    io::SafetensorsReader r(file);
    std::map<std::string, torch::Tensor> out;
    for (const auto& n : r.names()) {
        const auto m = f(n);
        if (!m.empty()) out[m] = r.load(n);
    }
    return out;
}

// Two shards and their index.
void write_sharded(const std::string& dir, const std::string& stem, const std::map<std::string, torch::Tensor>& t) {
    std::map<std::string, torch::Tensor> a, b;
    nlohmann::json map;
    size_t i = 0;
    for (const auto& [k, v] : t) {
        const bool first = i++ < t.size() / 2;
        (first ? a : b)[k] = v;
        map[k] = stem + (first ? "-00001-of-00002.safetensors" : "-00002-of-00002.safetensors");
    }
    io::write_safetensors(dir + "/" + stem + "-00001-of-00002.safetensors", a);
    io::write_safetensors(dir + "/" + stem + "-00002-of-00002.safetensors", b);
    write_text(dir + "/" + stem + ".safetensors.index.json", nlohmann::json{{"metadata", nlohmann::json::object()}, {"weight_map", map}}.dump());
}

std::string spiece_dir() {
    static const std::string dir = (fs::temp_directory_path() / ("profdit-wanpipe-spiece-" + std::to_string(::getpid()))).string();
    test::train_test_spiece(dir, 64);
    return dir;
}

// The official layout: DiT + config.json, umT5 and VAE as safetensors conversions next to where the .pth
// would be, google/umt5-xxl/spiece.model.
std::string official_checkpoint(const std::string& dir) {
    fs::create_directories(dir + "/google/umt5-xxl");
    fs::copy_file(tiny("dit_tiny_weights.safetensors"), dir + "/diffusion_pytorch_model.safetensors");
    write_dit_config(dir + "/config.json");
    fs::copy_file(tiny("t5_tiny_weights.safetensors"), dir + "/models_t5_umt5-xxl-enc-bf16.safetensors");
    fs::copy_file(tiny("vae_tiny_decoder_weights.safetensors"), dir + "/Wan2.1_VAE.safetensors");
    fs::copy_file(spiece_dir() + "/spiece.model", dir + "/google/umt5-xxl/spiece.model");
    return dir;
}

// The diffusers layout: model_index.json, transformer/ (sharded, diffusers names), text_encoder/ (HF
// UMT5 names), vae/ (AutoencoderKLWan names), tokenizer/.
std::string diffusers_checkpoint(const std::string& dir) {
    std::ifstream  in(tiny("dit_key_map_diffusers.json"));
    nlohmann::json keymap;
    in >> keymap;
    write_text(dir + "/model_index.json", R"({"_class_name": "WanPipeline"})");
    fs::create_directories(dir + "/transformer");
    write_sharded(dir + "/transformer", "diffusion_pytorch_model",
                  renamed(tiny("dit_tiny_weights.safetensors"), [&](const std::string& k) { return keymap.at(k).get<std::string>(); }));
    write_dit_config(dir + "/transformer/config.json");
    fs::create_directories(dir + "/text_encoder");
    io::write_safetensors(dir + "/text_encoder/model.safetensors", renamed(tiny("t5_tiny_weights.safetensors"), wan::t5_to_hf));
    fs::create_directories(dir + "/vae");
    io::write_safetensors(dir + "/vae/diffusion_pytorch_model.safetensors",
                          renamed(tiny("vae_tiny_decoder_weights.safetensors"), wan::vae_official_to_diffusers));
    fs::create_directories(dir + "/tokenizer");
    fs::copy_file(spiece_dir() + "/spiece.model", dir + "/tokenizer/spiece.model");
    return dir;
}

run::ModelSpec checkpoint_spec(const std::string& dir) {
    run::ModelSpec m;
    m.checkpoint = dir;
    m.frames = 9, m.height = 64, m.width = 64;  // latent [16, 3, 8, 8]
    return m;
}

// A few CFG steps and the decode: frames [F, 3, H, W].
torch::Tensor sample_video(run::Pipeline& p, const std::string& prompt, int steps = 3) {
    torch::NoGradGuard       no_grad;
    sampling::PlainDenoiser  d(p.dit);
    sampling::SampleOptions  o;
    o.steps      = steps;
    o.keep_steps = false;
    auto res = test::sample_cfg(d, *p.dit, sampling::seeded_noise(p.latent_shape, 7), p.text->encode(prompt), p.text->encode(p.negative_prompt), o);
    return p.decoder->decode(res.final_latent);
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const InputError& e) {
        return e.what();
    }
    return "(no InputError)";
}

// {"dit": tiny} config file for init: random.
std::string tiny_config_file(const std::string& dir) {
    write_dit_config(dir + "/tiny.json");
    return dir + "/tiny.json";
}

}  // namespace

TEST(WanPipelineLayout, DetectsOfficialAndDiffusers) {
    PROFDIT_SKIP_WITHOUT_SPM_TOOLS();
    const auto dir = test::temp_dir();
    const auto off = wan::find_checkpoint(official_checkpoint(dir + "/official"));
    EXPECT_EQ(off.layout, wan::CheckpointLayout::official);
    EXPECT_EQ(fs::path(off.dit).filename(), "diffusion_pytorch_model.safetensors");
    EXPECT_EQ(fs::path(off.dit_config).filename(), "config.json");
    EXPECT_EQ(fs::path(off.text_encoder).filename(), "models_t5_umt5-xxl-enc-bf16.safetensors");
    EXPECT_EQ(fs::path(off.vae).filename(), "Wan2.1_VAE.safetensors");
    EXPECT_EQ(fs::path(off.tokenizer).filename(), "umt5-xxl");
    const auto dif = wan::find_checkpoint(diffusers_checkpoint(dir + "/diffusers"));
    EXPECT_EQ(dif.layout, wan::CheckpointLayout::diffusers);
    EXPECT_EQ(fs::path(dif.dit).filename(), "diffusion_pytorch_model.safetensors.index.json");
    EXPECT_EQ(fs::path(dif.text_encoder).filename(), "model.safetensors");
    EXPECT_EQ(fs::path(dif.tokenizer).filename(), "tokenizer");
    EXPECT_EQ(dif.weight_files().size(), 5u);  // 2 DiT shards, T5, VAE, spiece.model
    // transformer/ alone (no model_index.json) is the diffusers layout too.
    fs::remove(dir + "/diffusers/model_index.json");
    EXPECT_EQ(wan::find_checkpoint(dir + "/diffusers").layout, wan::CheckpointLayout::diffusers);
    const auto msg = error_of([&] { wan::find_checkpoint(dir); });
    EXPECT_NE(msg.find("not a Wan2.1 checkpoint folder"), std::string::npos) << msg;
}

TEST(WanPipelineLoad, BothLayoutsGiveBitIdenticalVideos) {
    PROFDIT_SKIP_WITHOUT_SPM_TOOLS();
    const auto dir  = test::temp_dir();
    auto       a    = run::load_pipeline(checkpoint_spec(official_checkpoint(dir + "/official")), "exp.yaml");
    auto       b    = run::load_pipeline(checkpoint_spec(diffusers_checkpoint(dir + "/diffusers")), "exp.yaml");
    EXPECT_EQ(a.latent_shape, (std::vector<int64_t>{16, 3, 8, 8}));
    EXPECT_EQ(a.negative_prompt, wan::wan21_negative_prompt());
    EXPECT_FALSE(a.random_weights);
    EXPECT_NE(a.fingerprint.find("official layout"), std::string::npos) << a.fingerprint;
    EXPECT_NE(b.fingerprint.find("diffusers layout"), std::string::npos) << b.fingerprint;
    const auto ctx = a.text->encode("a cat");
    EXPECT_EQ(ctx.dim(), 2);
    EXPECT_EQ(ctx.size(1), 32);
    EXPECT_LE(ctx.size(0), 8);  // trimmed to the real tokens (text_len 8 here)
    EXPECT_EQ(ctx.scalar_type(), torch::kFloat32);
    const auto va = sample_video(a, "a cat sits on the mat"), vb = sample_video(b, "a cat sits on the mat");
    EXPECT_EQ(va.sizes(), (std::vector<int64_t>{9, 3, 64, 64}));
    EXPECT_TRUE(torch::equal(va, vb)) << test::max_abs_diff(va, vb);
    EXPECT_TRUE(torch::isfinite(va).all().item<bool>());
    EXPECT_LE(va.abs().max().item<float>(), 1.0f);
}

TEST(WanPipelineErrors, MissingComponentNamesFolderAndFiles) {
    PROFDIT_SKIP_WITHOUT_SPM_TOOLS();
    const auto dir = official_checkpoint(test::temp_dir() + "/ck");
    fs::remove(dir + "/Wan2.1_VAE.safetensors");
    auto msg = error_of([&] { run::load_pipeline(checkpoint_spec(dir), "exp.yaml"); });
    EXPECT_NE(msg.find(dir), std::string::npos) << msg;
    EXPECT_NE(msg.find("VAE"), std::string::npos) << msg;
    EXPECT_NE(msg.find("Wan2.1_VAE.pth"), std::string::npos) << msg;
    const auto dif = diffusers_checkpoint(test::temp_dir() + "/dif");
    fs::remove_all(dif + "/tokenizer");
    msg = error_of([&] { wan::find_checkpoint(dif); });
    EXPECT_NE(msg.find("tokenizer/spiece.model"), std::string::npos) << msg;
}

TEST(WanPipelineErrors, MisShapedTensorNamesKeyAndShape) {
    PROFDIT_SKIP_WITHOUT_SPM_TOOLS();
    const auto dir = official_checkpoint(test::temp_dir() + "/ck");
    auto t = renamed(tiny("t5_tiny_weights.safetensors"), [](const std::string& k) { return k; });
    t["blocks.0.attn.q.weight"] = torch::zeros({31, 32});
    io::write_safetensors(dir + "/models_t5_umt5-xxl-enc-bf16.safetensors", t);
    const auto msg = error_of([&] { run::load_pipeline(checkpoint_spec(dir), "exp.yaml"); });
    EXPECT_NE(msg.find("blocks.0.attn.q.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("31"), std::string::npos) << msg;
}

TEST(WanPipelineErrors, PthComponentExplainsConversion) {
    PROFDIT_SKIP_WITHOUT_SPM_TOOLS();
    const auto dir = official_checkpoint(test::temp_dir() + "/ck");
    fs::remove(dir + "/models_t5_umt5-xxl-enc-bf16.safetensors");
    write_text(dir + "/models_t5_umt5-xxl-enc-bf16.pth", "not a real pickle");
    const auto files = wan::find_checkpoint(dir);
    EXPECT_EQ(fs::path(files.text_encoder).extension(), ".pth");
    const auto msg = error_of([&] { run::load_pipeline(checkpoint_spec(dir), "exp.yaml"); });
    EXPECT_NE(msg.find(".pth"), std::string::npos) << msg;
    EXPECT_NE(msg.find("safetensors"), std::string::npos) << msg;
}

TEST(WanPipelineInfo, CliPrintsEveryComponentOfBothLayouts) {
    PROFDIT_SKIP_WITHOUT_SPM_TOOLS();
    const auto dir = test::temp_dir();
    int64_t    tiny_params = 0;  // the DiT's parameter count, from the module itself
    for (const auto& p : test::tiny_model()->parameters()) tiny_params += p.numel();
    for (const auto& [layout, path] : {std::pair<std::string, std::string>{"official", official_checkpoint(dir + "/official")},
                                       {"diffusers", diffusers_checkpoint(dir + "/diffusers")}}) {
        const auto r = test::run_profdit("info " + path + " --format json");
        ASSERT_EQ(r.code, 0) << r.err;
        EXPECT_NE(r.err.find(layout + " layout"), std::string::npos) << r.err;
        const auto j = nlohmann::json::parse(r.out);
        ASSERT_EQ(j.size(), 4u) << r.out;
        EXPECT_EQ(j[0]["component"], "dit");
        EXPECT_EQ(j[0]["key format"], layout);
        EXPECT_EQ(j[0]["layers"], "2");
        EXPECT_EQ(j[1]["component"], "text_encoder");
        EXPECT_EQ(j[1]["key format"], layout == "official" ? "official" : "hf");
        EXPECT_EQ(j[2]["component"], "vae");
        EXPECT_EQ(j[2]["key format"], layout);
        EXPECT_EQ(j[3]["component"], "tokenizer");
        EXPECT_EQ(j[0]["params"], std::to_string(tiny_params));
        EXPECT_NE(j[0]["dtypes"].get<std::string>().find("F32:"), std::string::npos);
    }
    const auto a = nlohmann::json::parse(test::run_profdit("info " + dir + "/official --format json").out);
    const auto b = nlohmann::json::parse(test::run_profdit("info " + dir + "/diffusers --format json").out);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(a[i]["params"], b[i]["params"]) << i;
    const auto r = test::run_profdit("info " + dir);
    EXPECT_EQ(r.code, 2);
}

TEST(WanPipelineRandom, SameSeedSameWeightsAndVideo) {
    const auto dir = test::temp_dir();
    run::ModelSpec m;
    m.config = tiny_config_file(dir);
    m.init   = "random";
    m.seed   = 3;
    m.frames = 5, m.height = 32, m.width = 32;
    auto a = run::load_pipeline(m, "exp.yaml"), b = run::load_pipeline(m, "exp.yaml");
    m.seed = 4;
    auto c = run::load_pipeline(m, "exp.yaml");
    EXPECT_TRUE(a.random_weights);
    EXPECT_EQ(a.fingerprint, b.fingerprint);
    EXPECT_NE(a.fingerprint, c.fingerprint);
    EXPECT_EQ(a.latent_shape, (std::vector<int64_t>{16, 2, 4, 4}));
    auto pa = a.dit->named_parameters(), pb = b.dit->named_parameters(), pc = c.dit->named_parameters();
    bool differs = false;
    for (const auto& p : pa) {
        EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
        differs |= !torch::equal(p.value(), pc[p.key()]);
    }
    EXPECT_TRUE(differs);
    const auto ta = a.text->encode("a red ball"), tb = b.text->encode("a red ball");
    EXPECT_EQ(ta.sizes(), (std::vector<int64_t>{4, 32}));  // 3 words + EOS
    EXPECT_TRUE(torch::equal(ta, tb));
    EXPECT_FALSE(torch::equal(ta, a.text->encode("a blue ball")));
    torch::NoGradGuard      no_grad;
    sampling::SampleOptions o;
    o.steps = 2;
    auto run = [&](run::Pipeline& p) {
        sampling::PlainDenoiser d(p.dit);
        auto res = test::sample_cfg(d, *p.dit, sampling::seeded_noise(p.latent_shape, 0), p.text->encode("a red ball"),
                                        p.text->encode(p.negative_prompt), o);
        return p.decoder->decode(res.final_latent);  // [5, 3, 32, 32]
    };
    const auto va = run(a), vb = run(b);
    EXPECT_EQ(va.sizes(), (std::vector<int64_t>{5, 3, 32, 32}));
    EXPECT_TRUE(torch::equal(va, vb));
    EXPECT_TRUE(torch::isfinite(va).all().item<bool>());
}

TEST(WanPipelineExperiment, ModelKeysAreValidated) {
    const auto dir = test::temp_dir();
    const auto cfg = tiny_config_file(dir);
    auto parse = [&](const std::string& model) {
        write_text(dir + "/x.yaml", "name: x\nmodel: " + model + "\nprompts: [a]\nseeds: [0]\npolicies: [none]\n");
        return run::load_experiment(dir + "/x.yaml", {});
    };
    auto error = [&](const std::string& model) {
        try {
            parse(model);
        } catch (const InputError& e) {
            return std::string(e.what());
        }
        return std::string("(no InputError)");
    };
    const auto x = parse("{config: wan2.1-t2v-1.3b, init: random, seed: 5}");
    EXPECT_EQ(x.model.config, "wan2.1-t2v-1.3b");
    EXPECT_EQ(x.model.seed, 5u);
    EXPECT_EQ(x.model.frames, 81);
    EXPECT_EQ(x.model.height, 480);
    EXPECT_EQ(x.model.width, 832);
    auto msg = error("{config: wan2.1-t2v-1.3b, init: random, frames: 18}");
    EXPECT_NE(msg.find("x.yaml"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'frames'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("18"), std::string::npos) << msg;
    msg = error("{config: wan2.1-t2v-1.3b, init: random, width: 830}");
    EXPECT_NE(msg.find("'width'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("830"), std::string::npos) << msg;
    EXPECT_NE(error("{config: wan2.1-t2v-1.3b}").find("init: random"), std::string::npos);
    EXPECT_NE(error("{config: " + cfg + ", init: random, colour: red}").find("colour"), std::string::npos);
    EXPECT_NE(error("{preset: sprites-tiny, frames: 17}").find("'frames'"), std::string::npos);
    EXPECT_NE(error("{preset: sprites-tiny, config: wan2.1-t2v-1.3b, init: random}").find("exactly one"), std::string::npos);
    run::ModelSpec m;
    m.config = "wan2.1-t2v-7b";
    m.init   = "random";
    msg = error_of([&] { run::load_pipeline(m, "x.yaml"); });
    EXPECT_NE(msg.find("wan2.1-t2v-7b"), std::string::npos) << msg;
    EXPECT_NE(msg.find("wan2.1-t2v-14b"), std::string::npos) << msg;
}

TEST(WanPipelineExperiment, RandomWeightRunIsFlaggedAndRecordsPeakMemory) {
    const auto dir = test::temp_dir();
    const auto cfg = tiny_config_file(dir);
    write_text(dir + "/x.yaml", "name: x\nmodel: {config: " + cfg +
                                    ", init: random, frames: 5, height: 32, width: 32}\nsampling: {steps: 2}\nprompts: [a red ball]\n"
                                    "seeds: [0]\npolicies: [none, {name: step_skip, interval: 2, warmup: 1}]\nmetrics: [psnr]\n"
                                    "timing: {warmup_runs: 0}\noutput: " + dir + "/x.h5\n");
    const auto r = test::run_profdit("run " + dir + "/x.yaml");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("peak rss GiB"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("| random"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("meaningless"), std::string::npos) << r.out;
    const auto st = store::Store::open_existing(dir + "/x.h5");
    EXPECT_NE(store::Store::read_info(dir + "/x.h5").model.find("random weights seed 0"), std::string::npos);
    const auto runs = st.groups("/runs");
    ASSERT_EQ(runs.size(), 2u);
    for (const auto& g : runs) {
        EXPECT_EQ(st.read_str_attr("/runs/" + g, "weights"), "random") << g;
        EXPECT_GT(st.read_dataset("/runs/" + g + "/memory/peak_rss_bytes").item<double>(), 1e6) << g;
    }
}
