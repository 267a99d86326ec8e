// Training of the embedded world model: the caption encoder treats padding exactly, a short run lowers
// the loss and is bit-identical twice from the same seed, and resume continues where it stopped.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "common/error.h"
#include "io/csv_log.h"
#include "io/safetensors.h"
#include <set>
#include <nlohmann/json.hpp>
#include "train/trainer.h"
#include "world/embedded_model.h"
#include "world/world_json.h"
#ifdef PROFDIT_HAVE_OPENCV
#include "world/frame_strip.h"
#endif
#include "test_util.h"

using namespace profdit;

namespace {

// `train_extra` joins the train section; `more` is appended as further top-level keys.
std::string tiny_config(const std::string& dir, int steps, const std::string& train_extra = "checkpoint_every: 1000",
                        const std::string& more = "") {
    const std::string path = dir + "/train.yaml";
    std::ofstream(path) << "name: tiny\nworld: {frames: 8, height: 32, width: 32}\n"
                           "model: {dim: 32, num_heads: 2, num_layers: 2, ffn_dim: 64, freq_dim: 16, text_dim: 16, text_len: 16,\n"
                           "        text_layers: 1, text_heads: 2}\n"
                           "train: {steps: " + std::to_string(steps) + ", batch: 4, warmup: 5, lr: 0.003, seed: 3, " + train_extra + "}\n"
                           "output: " + dir + "/out\n" + more;
    return path;
}

}  // namespace

TEST(CaptionEncoder, PaddedBatchEqualsSingleCaption) {
    world::WorldConfig       w;
    world::CaptionTokenizer  tok(w);
    torch::manual_seed(0);
    world::CaptionEncoder    enc(tok.vocab_size(), 16, 16, 2, 2);
    torch::NoGradGuard       ng;
    const auto ids = tok.encode("a red circle moving left over blue stripes");
    auto single    = enc->forward(torch::tensor(ids).unsqueeze(0)).squeeze(0);   // [9, 16]
    auto padded    = torch::zeros({2, 16}, torch::kInt64);
    for (size_t j = 0; j < ids.size(); ++j) padded[0][j] = ids[j];
    padded[1][0] = 1;                                                             // the empty caption
    auto batch = enc->forward(padded);                                            // [2, 16, 16]
    EXPECT_LT((batch[0].narrow(0, 0, int64_t(ids.size())) - single).abs().max().item<double>(), 1e-5);
    EXPECT_EQ(batch[0].narrow(0, int64_t(ids.size()), 16 - int64_t(ids.size())).abs().max().item<double>(), 0.0);
    EXPECT_EQ(tok.encode(""), (std::vector<int64_t>{1}));
    EXPECT_THROW(tok.encode("a purple circle"), InputError);
}

TEST(Train, LearningRateWarmsUpHoldsAndDecaysLinearly) {
    train::TrainConfig c;
    c.lr = 1e-3, c.warmup = 10, c.steps = 100, c.decay_start = 60, c.decay_to = 0.1;
    EXPECT_DOUBLE_EQ(c.lr_at(0), 1e-4);
    EXPECT_DOUBLE_EQ(c.lr_at(9), 1e-3);
    EXPECT_DOUBLE_EQ(c.lr_at(59), 1e-3);
    EXPECT_DOUBLE_EQ(c.lr_at(60), 1e-3);
    EXPECT_NEAR(c.lr_at(80), 1e-3 * 0.55, 1e-15);
    EXPECT_NEAR(c.lr_at(100), 1e-4, 1e-15);
    c.decay_start = -1;
    EXPECT_DOUBLE_EQ(c.lr_at(99), 1e-3);
}

TEST(Train, BadConfigNamesFileKeyAndValue) {
    const auto dir = test::temp_dir();
    auto write = [&](const std::string& train) {
        std::ofstream(dir + "/bad.yaml") << "world: {frames: 8}\ntrain: {" << train << "}\n";
        return dir + "/bad.yaml";
    };
    auto message = [&](const std::string& train) {
        try {
            train::TrainConfig::from_yaml_file(write(train));
        } catch (const InputError& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_NE(message("steps: 100, decay_start: 200").find("decay_start"), std::string::npos) << message("steps: 100, decay_start: 200");
    EXPECT_NE(message("steps: 100, decay_start: 200").find("bad.yaml"), std::string::npos);
    EXPECT_NE(message("decay_to: 2").find("decay_to"), std::string::npos);
    EXPECT_NE(message("lr_schedule: cosine").find("lr_schedule"), std::string::npos);
    EXPECT_THROW(train::TrainConfig::from_yaml_file(dir + "/missing.yaml"), InputError);
    std::ofstream(dir + "/border.yaml") << "world: {border: 5}\n";  // 22 px left; a 12 px sprite moving 14 px needs 26
    try {
        train::TrainConfig::from_yaml_file(dir + "/border.yaml");
        ADD_FAILURE() << "a border the track does not fit in was accepted";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("border.yaml: world.border: 5 leaves 22 px"), std::string::npos) << e.what();
    }
    std::ofstream(dir + "/border.yaml") << "world: {border: 2}\n";
    EXPECT_EQ(train::TrainConfig::from_yaml_file(dir + "/border.yaml").to_json()["world"]["border"], 2);
    std::ofstream(dir + "/heading.yaml") << "world: {heading: true}\n";
    EXPECT_EQ(train::TrainConfig::from_yaml_file(dir + "/heading.yaml").to_json()["world"]["heading"], true);
    std::ofstream(dir + "/heading.yaml") << "world: {heading: maybe}\n";
    try {
        train::TrainConfig::from_yaml_file(dir + "/heading.yaml");
        ADD_FAILURE() << "world.heading: maybe was accepted";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("heading"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("maybe"), std::string::npos) << e.what();
    }
    std::ofstream(dir + "/wrap.yaml") << "world: {wrap: true, heading: true}\n";
    const auto wrapped = train::TrainConfig::from_yaml_file(dir + "/wrap.yaml").to_json()["world"];
    EXPECT_EQ(wrapped["wrap"], true);
    EXPECT_EQ(world::world_from_json(wrapped, "x").wrap, true);
    EXPECT_EQ(world::world_from_json(nlohmann::json{{"frames", 8}, {"height", 32}, {"width", 32}, {"sprite_min", 10}, {"sprite_max", 12},
                                                    {"speed", 2}, {"sprites", 1}}, "x").wrap,
              false);  // a model from before the option
    for (const auto& [yaml, want] : {std::pair<std::string, std::string>{"world: {wrap: true, border: 2}", "wrap.yaml: world.wrap: true with world.border: 2"},
                                     {"world: {wrap: true, sprite_max: 17}", "wrap.yaml: world.wrap: true with world.sprite_max: 17"}}) {
        std::ofstream(dir + "/wrap.yaml") << yaml << "\n";
        try {
            train::TrainConfig::from_yaml_file(dir + "/wrap.yaml");
            ADD_FAILURE() << yaml << " was accepted";
        } catch (const InputError& e) {
            EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
        }
    }
}

// Every training config the repository ships (the shipped model's, the second generation's, the pilots') still
// parses: a renamed or removed option would otherwise surface only when somebody resumes a run.
TEST(Train, EveryShippedTrainingConfigParses) {
    int n = 0;
    for (const auto& root : {"../../data/models", "../../data/train-state"})
        for (const auto& e : std::filesystem::recursive_directory_iterator(test::data_path(root)))
            if (e.path().extension() == ".yaml") {
                EXPECT_NO_THROW(train::TrainConfig::from_yaml_file(e.path().string())) << e.path();
                ++n;
            }
    EXPECT_GE(n, 9);
    EXPECT_TRUE(train::TrainConfig::from_yaml_file(test::data_path("../../data/models/sprites-tiny/train.yaml")).world.heading);
}

TEST(Train, LossGoesDownIdenticallyTwice) {
    const auto dir = test::temp_dir();
    auto cfg = train::TrainConfig::from_yaml_file(tiny_config(dir, 40));
    train::Trainer a(cfg), b(cfg);
    a.run(false);
    b.run(false);
    ASSERT_EQ(a.losses().size(), 40u);
    EXPECT_EQ(a.losses(), b.losses());
    double first = 0, last = 0;
    for (int i = 0; i < 10; ++i) first += a.losses()[i] / 10, last += a.losses()[30 + i] / 10;
    EXPECT_LT(last, 0.8 * first) << "first 10 " << first << ", last 10 " << last;
}

TEST(Train, ResumeContinuesTheSameRun) {
    const auto dir = test::temp_dir();
    auto cfg = train::TrainConfig::from_yaml_file(tiny_config(dir, 12));
    train::Trainer full(cfg);
    full.run(false);
    auto half_cfg  = cfg;
    half_cfg.steps = 6;
    half_cfg.out   = dir + "/half";
    half_cfg.state = dir + "/half-state";
    train::Trainer first(half_cfg);
    first.run(false);
    auto rest_cfg  = half_cfg;
    rest_cfg.steps = 12;
    train::Trainer second(rest_cfg);
    second.run(true);
    ASSERT_EQ(second.losses().size(), 6u);
    for (int i = 0; i < 6; ++i) EXPECT_EQ(second.losses()[i], full.losses()[6 + i]) << i;  // the state is saved exactly
    EXPECT_EQ(second.seconds() > 0, true);
}

TEST(Train, TheModelFolderHoldsTheModelAndTheStateFolderTheRest) {
    const auto dir = test::temp_dir();
    auto cfg = train::TrainConfig::from_yaml_file(tiny_config(dir, 2));
    EXPECT_EQ(cfg.state, dir + "/out.train-state");
    train::Trainer(cfg).run(false);
    std::set<std::string> model, state;
    for (const auto& e : std::filesystem::directory_iterator(dir + "/out")) model.insert(e.path().filename().string());
    for (const auto& e : std::filesystem::directory_iterator(cfg.state)) state.insert(e.path().filename().string());
    EXPECT_EQ(model, (std::set<std::string>{"config.json", "dit.safetensors", "text_encoder.safetensors"}));
    EXPECT_EQ(state, (std::set<std::string>{"train_state.safetensors"}));
    const auto j = nlohmann::json::parse(std::ifstream(dir + "/out/config.json"));
    EXPECT_EQ(j["sampling"]["shift"], 3.0);
    EXPECT_EQ(j["sampling"]["guide"], 1.5);
    EXPECT_EQ(j["train"]["workers"], 1);
}

// train.init starts from a model folder's weights (a fine-tune): with a negligible learning rate the first
// checkpoint holds the folder's weights, not the seeded random ones; a folder of another shape is named.
TEST(Train, InitStartsFromAModelFolder) {
    const auto dir = test::temp_dir();
    auto base = train::TrainConfig::from_yaml_file(tiny_config(dir, 6));
    train::Trainer(base).run(false);
    auto tune  = base;
    tune.init  = base.out;
    tune.steps = 1, tune.lr = 1e-8;
    tune.out   = dir + "/tuned", tune.state = dir + "/tuned-state";
    train::Trainer(tune).run(false);
    auto fresh  = tune;
    fresh.init  = "";
    fresh.out   = dir + "/fresh", fresh.state = dir + "/fresh-state";
    train::Trainer(fresh).run(false);
    io::SafetensorsReader a(base.out + "/dit.safetensors"), t(tune.out + "/dit.safetensors"), f(fresh.out + "/dit.safetensors");
    const std::string key = "blocks.0.self_attn.q.weight";
    EXPECT_LT(test::max_abs_diff(t.load(key), a.load(key)), 1e-6);
    EXPECT_GT(test::max_abs_diff(f.load(key), a.load(key)), 1e-3);
    EXPECT_EQ(nlohmann::json::parse(std::ifstream(tune.out + "/config.json"))["train"]["init"], base.out);

    auto missing = tune;
    missing.init = dir + "/nowhere";
    EXPECT_NE(test::input_error_of([&] { train::Trainer{missing}; }).find("train.init: '" + dir + "/nowhere' is not a model folder"), std::string::npos);
    auto wider    = tune;
    wider.dit.dim = 64, wider.dit.ffn_dim = 128;
    const auto e  = test::input_error_of([&] { train::Trainer{wider}; });
    EXPECT_NE(e.find(base.out + "/dit.safetensors: train.init: '"), std::string::npos) << e;
    EXPECT_NE(e.find("the config's model needs [64"), std::string::npos) << e;
}

// A run from scratch starts from Wan2.1's own initialisation (WanModel.init_weights and the modules'
// constructors), not from the parity data's draw: Linear weights xavier_uniform, biases 0, norm gains 1,
// embeddings N(0, 0.02), the head's output 0, modulation randn/sqrt(dim). `weight_init: synth` keeps the old draw.
TEST(Train, FromScratchWeightsFollowWan21InitWeights) {
    const auto dir = test::temp_dir();
    auto cfg = train::TrainConfig::from_yaml_file(tiny_config(dir, 1));
    train::Trainer(cfg).save();
    io::SafetensorsReader r(cfg.out + "/dit.safetensors");
    auto w = [&](const std::string& k) { return r.load(k).to(torch::kFloat32); };
    auto std_of = [](const torch::Tensor& t) { return t.std().item<double>(); };
    const double ffn_bound = std::sqrt(6.0 / (32 + 64)), attn_bound = std::sqrt(6.0 / (32 + 32));
    EXPECT_LE(w("blocks.0.ffn.0.weight").abs().max().item<double>(), ffn_bound * 1.004);  // bf16 rounding
    EXPECT_NEAR(std_of(w("blocks.0.ffn.0.weight")), ffn_bound / std::sqrt(3.0), 0.1 * ffn_bound / std::sqrt(3.0));
    EXPECT_LE(w("blocks.1.cross_attn.k.weight").abs().max().item<double>(), attn_bound * 1.004);
    EXPECT_NEAR(std_of(w("blocks.1.cross_attn.k.weight")), attn_bound / std::sqrt(3.0), 0.1 * attn_bound / std::sqrt(3.0));
    EXPECT_NEAR(std_of(w("time_embedding.0.weight")), 0.02, 0.002);
    EXPECT_NEAR(std_of(w("text_embedding.2.weight")), 0.02, 0.002);
    EXPECT_NEAR(std_of(w("blocks.0.modulation")), 1.0 / std::sqrt(32.0), 0.25 / std::sqrt(32.0));
    EXPECT_LE(w("patch_embedding.bias").abs().max().item<double>(), 1.004 / std::sqrt(48.0));
    EXPECT_GT(w("patch_embedding.bias").abs().max().item<double>(), 0.0);
    for (const auto* k : {"blocks.0.self_attn.q.bias", "blocks.1.ffn.2.bias", "time_projection.1.bias", "head.head.weight", "head.head.bias",
                          "text_embedding.0.bias", "blocks.0.norm3.bias"})
        EXPECT_EQ(w(k).abs().max().item<double>(), 0.0) << k;
    for (const auto* k : {"blocks.0.self_attn.norm_q.weight", "blocks.1.cross_attn.norm_k.weight", "blocks.0.norm3.weight"})
        EXPECT_EQ((w(k) - 1).abs().max().item<double>(), 0.0) << k;
    EXPECT_EQ(nlohmann::json::parse(std::ifstream(cfg.out + "/config.json"))["train"]["weight_init"], "wan2.1");

    std::filesystem::create_directories(dir + "/s"), std::filesystem::create_directories(dir + "/x");
    auto synth = train::TrainConfig::from_yaml_file(tiny_config(dir + "/s", 1, "weight_init: synth"));
    train::Trainer(synth).save();
    EXPECT_GT(io::SafetensorsReader(synth.out + "/dit.safetensors").load("blocks.0.self_attn.q.bias").abs().max().item<double>(), 0.01);

    const auto e = test::input_error_of([&] { train::TrainConfig::from_yaml_file(tiny_config(dir + "/x", 1, "weight_init: xavier")); });
    EXPECT_NE(e.find("train.yaml:"), std::string::npos) << e;
    EXPECT_NE(e.find("weight_init"), std::string::npos) << e;
    EXPECT_NE(e.find("'xavier'"), std::string::npos) << e;
}

// Data parallelism: two replicas on one thread each give the same run twice, bit for bit, and the same
// run as one worker up to the order of the gradient sum.
TEST(Train, TwoWorkersAreBitReproducibleAndFollowOneWorker) {
    const auto dir = test::temp_dir();
    auto one = train::TrainConfig::from_yaml_file(tiny_config(dir, 8));
    auto two = one;
    two.workers = 2;
    two.out = dir + "/two", two.state = dir + "/two-state";
    train::Trainer a(two), b(two), c(one);
    a.run(false);
    b.run(false);
    c.run(false);
    EXPECT_EQ(a.losses(), b.losses());
    EXPECT_NEAR(a.losses()[0], c.losses()[0], 1e-6);
    for (size_t i = 0; i < a.losses().size(); ++i) EXPECT_NEAR(a.losses()[i], c.losses()[i], 2e-3 * c.losses()[i]) << i;
}

TEST(Train, BadDeviceAndWorkersAreRefused) {
    const auto dir = test::temp_dir();
    auto cfg = train::TrainConfig::from_yaml_file(tiny_config(dir, 2));
    auto bad = cfg;
    bad.device = "tpu";
    EXPECT_THROW(train::Trainer{bad}, InputError);
    if (!torch::cuda::is_available()) {
        bad.device = "cuda";
        EXPECT_THROW(train::Trainer{bad}, InputError);
    }
    std::ofstream(dir + "/w.yaml") << "train: {batch: 4, workers: 3}\n";
    try {
        train::TrainConfig::from_yaml_file(dir + "/w.yaml");
        FAIL();
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("w.yaml"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("workers"), std::string::npos) << e.what();
    }
}

// Training on a GPU (issue 16 point 4): a CUDA run repeats itself bit for bit, follows the CPU run, and its state
// resumes on the CPU and back (plain safetensors). Runs where a CUDA device is present (scripts/device-check).
TEST(Train, CudaRunIsReproducibleAndItsStateMovesToTheCpuAndBack_CUDA) {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
    const auto dir = test::temp_dir();
    auto cpu = train::TrainConfig::from_yaml_file(tiny_config(dir, 6));
    auto gpu = cpu;
    gpu.device = "cuda", gpu.out = dir + "/gpu", gpu.state = dir + "/gpu-state";
    train::Trainer a(gpu), b(gpu), c(cpu);
    a.run(false);
    b.run(false);
    c.run(false);
    EXPECT_EQ(a.losses(), b.losses());
    for (size_t i = 0; i < c.losses().size(); ++i) EXPECT_NEAR(a.losses()[i], c.losses()[i], 1e-3 * c.losses()[i]) << i;

    auto there = gpu;  // 3 steps on the GPU, 3 more on the CPU, then 2 more on the GPU again
    there.steps = 3, there.out = dir + "/moved", there.state = dir + "/moved-state";
    train::Trainer(there).run(false);
    auto back   = there;
    back.device = "cpu", back.steps = 6;
    train::Trainer on_cpu(back);
    on_cpu.run(true);
    ASSERT_EQ(on_cpu.losses().size(), 3u);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(on_cpu.losses()[i], a.losses()[3 + i], 1e-3 * a.losses()[3 + i]) << i;
    auto again   = back;
    again.device = "cuda", again.steps = 8;
    train::Trainer on_gpu(again);
    on_gpu.run(true);
    EXPECT_EQ(on_gpu.losses().size(), 2u);
}

TEST(Train, AStateWithoutOptimizerMomentsIsNamed) {
    const auto dir = test::temp_dir();
    auto cfg = train::TrainConfig::from_yaml_file(tiny_config(dir, 2));
    std::filesystem::create_directories(cfg.state);
    io::write_safetensors(cfg.state + "/train_state.safetensors", {{"param.x", torch::zeros({1})}}, {{"step", "2"}, {"seconds", "1"}});
    try {
        train::Trainer(cfg).run(true);
        FAIL();
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("train_state.safetensors"), std::string::npos) << e.what();
    }
}

// profdit's AdamW against LibTorch's torch::optim::AdamW (the same algorithm as torch.optim.AdamW).
TEST(Train, AdamWMatchesTorchAdamW) {
    torch::manual_seed(1);
    auto p1 = torch::randn({5, 7}).requires_grad_(), p2 = p1.detach().clone().requires_grad_();
    train::AdamW mine({p1}, {0.9, 0.99, 1e-8, 0.01});
    torch::optim::AdamW ref({p2}, torch::optim::AdamWOptions(3e-3).betas({0.9, 0.99}).weight_decay(0.01));
    for (int k = 0; k < 20; ++k) {
        auto g = torch::randn({5, 7});
        p1.mutable_grad() = g.clone(), p2.mutable_grad() = g.clone();
        mine.step(3e-3);
        ref.step();
    }
    EXPECT_LT((p1 - p2).abs().max().item<double>(), 1e-6);
}

TEST(Train, BadConfigNamesKey) {
    const auto dir = test::temp_dir();
    std::ofstream(dir + "/bad.yaml") << "model: {dim: 32, heads: 2}\n";
    try {
        train::TrainConfig::from_yaml_file(dir + "/bad.yaml");
        FAIL();
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("bad.yaml:1: model: unknown option 'heads'"), std::string::npos) << e.what();
    }
}

TEST(EmbeddedModel, LoadsACheckpointAndGeneratesDeterministically) {
    const auto dir = test::temp_dir();
    auto cfg = train::TrainConfig::from_yaml_file(tiny_config(dir, 3));
    train::Trainer t(cfg);
    t.run(false);
    auto m = world::EmbeddedModel::load(dir + "/out");
    sampling::SampleOptions opt;
    opt.steps = 4;
    auto a = world::generate_video(m, "a red circle moving left over blue stripes", 7, opt);
    auto b = world::generate_video(m, "a red circle moving left over blue stripes", 7, opt);
    EXPECT_EQ(a.sizes(), (torch::IntArrayRef{8, 3, 32, 32}));
    EXPECT_TRUE(torch::equal(a, b));
    EXPECT_FALSE(torch::equal(a, world::generate_video(m, "a red circle moving left over blue stripes", 8, opt)));
    EXPECT_EQ(m.sampling.shift, 3.0);  // the config's sampling settings travel with the model
    EXPECT_EQ(m.sampling.guide, 1.5);
    const auto c = world::evaluate_controllability(m, 1, opt);  // 1 seed x 4 direction words
    ASSERT_EQ(c.motion.size(), 1u);
    EXPECT_EQ(c.motion[0].size(), 4u);
    EXPECT_EQ(c.rate() * 4, std::round(c.rate() * 4));
    const auto r = world::evaluate_gates(m, 2, opt);
    EXPECT_EQ(r.videos, 2);
    EXPECT_GE(r.all, 0.0);
    EXPECT_LE(r.sprite, 1.0);
#ifdef PROFDIT_HAVE_OPENCV
    world::write_frame_strip(dir + "/strip.png", {a, b});
    EXPECT_TRUE(std::filesystem::file_size(dir + "/strip.png") > 100);
#endif
    EXPECT_FALSE(m.world.heading);  // the world the model was trained on travels with it
    auto json = nlohmann::json::parse(std::ifstream(dir + "/out/config.json"));
    json["world"]["heading"] = true;
    std::ofstream(dir + "/out/config.json") << json.dump();
    EXPECT_TRUE(world::EmbeddedModel::load(dir + "/out").world.heading);
    json["world"]["wrap"] = true, json["world"]["border"] = 2;  // hand-edited: a torus with a border cannot be drawn
    std::ofstream(dir + "/out/config.json") << json.dump();
    try {
        world::EmbeddedModel::load(dir + "/out");
        ADD_FAILURE() << "a torus with a border was accepted";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("config.json: world.wrap: true with world.border: 2"), std::string::npos) << e.what();
    }
    json["world"]["wrap"] = false, json["world"]["border"] = 0;
    json["sampling"]["negative"] = "opposite";  // the caption with its direction reversed as the negative prompt
    std::ofstream(dir + "/out/config.json") << json.dump();
    auto opposite = world::EmbeddedModel::load(dir + "/out");
    EXPECT_EQ(opposite.negative, world::NegativePrompt::opposite_direction);
    EXPECT_FALSE(torch::equal(a, world::generate_video(opposite, "a red circle moving left over blue stripes", 7, opt)));
    json["sampling"]["negative"] = "reversed";
    std::ofstream(dir + "/out/config.json") << json.dump();
    EXPECT_THROW(world::EmbeddedModel::load(dir + "/out"), InputError);
    json["sampling"].erase("negative");
    json["world"].erase("speed");
    std::ofstream(dir + "/out/config.json") << json.dump();
    try {
        world::EmbeddedModel::load(dir + "/out");
        ADD_FAILURE() << "a world without its speed was accepted";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find("config.json: key 'world' is incomplete"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("speed"), std::string::npos) << e.what();
    }
    std::ofstream(dir + "/out/config.json") << "{\"dit\": {}}";
    EXPECT_THROW(world::EmbeddedModel::load(dir + "/out"), InputError);
}

// `profdit train` with sampling.eval_every appends one learning-curve row per evaluation to STATE/curve.csv
// and the caption probe's rows to STATE/probe.csv, and scripts/learning_curve.py draws the curve.
TEST(Train, CliWritesTheLearningCurveAndItsFigure) {
    const auto dir = test::temp_dir();
    const auto yaml = tiny_config(dir, 4, "checkpoint_every: 2, workers: 2",
                                  "sampling: {steps: 2, eval_every: 2, eval_pairs: 1}\nstate: " + dir + "/state\n");
    const auto r = test::run_profdit("train " + yaml + " --quiet");
    ASSERT_EQ(r.code, 0) << r.err;
    std::ifstream f(dir + "/state/curve.csv");
    std::vector<std::string> lines;
    for (std::string l; std::getline(f, l);) lines.push_back(l);
    ASSERT_EQ(lines.size(), 3u);  // header + steps 2 and 4
    EXPECT_EQ(lines[0], "step,train_seconds,pairs,sprite,background,direction,all,shape,size_error,heading,motion_follows_heading,eval_seconds,device,commit");
    EXPECT_EQ(lines[1].rfind("2,", 0), 0u) << lines[1];
    EXPECT_NE(lines[1].find(",,,"), std::string::npos) << "a world without heading leaves its two columns empty: " << lines[1];
    EXPECT_EQ(lines[2].rfind("4,", 0), 0u) << lines[2];
    std::ifstream pf(dir + "/state/probe.csv");  // the caption probe at each evaluation: sigma 0.9, 0.95, 0.98
    std::vector<std::string> probe;
    for (std::string l; std::getline(pf, l);) probe.push_back(l);
    ASSERT_EQ(probe.size(), 7u);
    EXPECT_EQ(probe[0].rfind("step,pairs,sigma,loss,gap_direction,gap_colour,gap_background,gap_empty", 0), 0u) << probe[0];
    EXPECT_EQ(probe[1].rfind("2,1,0.900,", 0), 0u) << probe[1];
    EXPECT_EQ(probe[6].rfind("4,1,0.980,", 0), 0u) << probe[6];
    const auto py = test::python_with("matplotlib");
    if (py.empty()) GTEST_SKIP() << "no python3 with matplotlib for the figure";
    const auto fig = test::run_command(py + " " + std::string(PROFDIT_TEST_DATA) + "/../../scripts/learning_curve.py " + dir + "/c.png run=" + dir +
                                       "/state/curve.csv");
    EXPECT_EQ(fig.code, 0) << fig.err;
    EXPECT_GT(std::filesystem::file_size(dir + "/c.png"), 1000u);
}

// A curve or probe log written by an older profdit (fewer columns) is rewritten once under the new header, its rows
// intact and the new columns empty, so that a resumed run goes on in one consistent CSV; a foreign file is refused.
TEST(Train, CsvLogUpgradesAnOlderHeaderAndRefusesAForeignOne) {
    const auto dir  = test::temp_dir();
    const auto path = dir + "/curve.csv";
    const auto read = [&] {
        std::ifstream            f(path);
        std::vector<std::string> lines;
        for (std::string l; std::getline(f, l);) lines.push_back(l);
        return lines;
    };
    io::append_csv_row(path, {"step", "sprite", "commit"}, {"500", "0.25", "abc"});
    io::append_csv_row(path, {"step", "sprite", "commit"}, {"1000", "0.5", "abc"});
    EXPECT_EQ(read(), (std::vector<std::string>{"step,sprite,commit", "500,0.25,abc", "1000,0.5,abc"}));
    io::append_csv_row(path, {"step", "sprite", "heading", "commit"}, {"1500", "0.75", "0.5", "def"});
    EXPECT_EQ(read(), (std::vector<std::string>{"step,sprite,heading,commit", "500,0.25,,abc", "1000,0.5,,abc", "1500,0.75,0.5,def"}));

    const auto before = read();
    try {
        io::append_csv_row(path, {"step", "commit"}, {"2000", "ghi"});
        ADD_FAILURE() << "a log with a column this writer lacks was rewritten";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find(path + ": its column 'sprite' is not one this profdit writes"), std::string::npos) << e.what();
    }
    EXPECT_EQ(read(), before);
    std::ofstream(path, std::ios::app) << "2000,1\n";
    try {
        io::append_csv_row(path, {"step", "sprite", "heading", "size", "commit"}, {"1", "2", "3", "4", "5"});
        ADD_FAILURE() << "a short row was accepted";
    } catch (const InputError& e) {
        EXPECT_NE(std::string(e.what()).find(path + ":5: 2 cells under a header of 4 columns"), std::string::npos) << e.what();
    }
    EXPECT_EQ(read().size(), 5u);  // nothing rewritten, nothing appended
}
