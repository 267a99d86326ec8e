// The experiment runner: YAML validation and grid expansion, overrides, one shared reference per
// (prompt, seed), resume after SIGKILL, shards + merge equal to the unsharded run. Runs use the
// shipped sprites-tiny model with few steps.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <tuple>

#include <gtest/gtest.h>

#include "common/error.h"
#include "run/experiment.h"
#include "run/pipeline.h"
#include "run/plan.h"
#include "run/runner.h"
#include "run/summary.h"
#include "policies/policy.h"
#include "wan/wan_pipeline.h"
#include "store/store.h"
#include "test_util.h"

using namespace profdit;

namespace {

std::string write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
    return path;
}

// 2 prompts x 2 seeds, `steps` UniPC steps, none + step_skip + teacache.
std::string small_experiment(const std::string& dir, int steps, const std::string& extra = "") {
    return write(dir + "/x.yaml",
                 "name: small\n"
                 "model: {preset: sprites-tiny, threads: 1}\n"
                 "sampling: {solver: unipc, steps: " + std::to_string(steps) + ", shift: 3.0, guide: 4.0}\n"
                 "prompts: [a red circle moving left over blue stripes, a white square moving up over a gray background]\n"
                 "seeds: [0, 1]\n"
                 "policies:\n"
                 "  - none\n"
                 "  - {name: step_skip, interval: 2, warmup: 1}\n"
                 "  - {name: teacache, threshold: 0.2, coefficients: [0, 0, 0, 1, 0], indicator: modulated_input}\n"
                 "metrics: [psnr, ssim, lpips_proxy, region, flicker]\n"
                 "timing: {warmup_runs: 0, repeats: 1}\n"
                 "output: " + dir + "/x.h5\n" + extra);
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const InputError& e) {
        return e.what();
    }
    return "(no error)";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string run_preset_dir() { return run::preset_dir("sprites-tiny"); }

// Bitwise equality that counts NaN == NaN (a region metric is NaN on frames where the region is empty).
bool same(const torch::Tensor& a, const torch::Tensor& b) {
    return a.sizes() == b.sizes() && a.dtype() == b.dtype() && torch::equal(torch::isnan(a), torch::isnan(b)) &&
           torch::equal(a.masked_fill(torch::isnan(a), 0), b.masked_fill(torch::isnan(b), 0));
}

// Everything of a run group but its timings, for comparing two executions.
std::vector<torch::Tensor> run_content(const store::Store& st, const std::string& g) {
    std::vector<torch::Tensor> out;
    for (const char* d : {"cache/compute_mask", "cache/flops_computed", "metrics/psnr", "metrics/ssim", "metrics/lpips_proxy",
                          "metrics/psnr_fg", "metrics/psnr_bg", "metrics/flicker"})
        out.push_back(st.read_dataset(g + "/" + d));
    return out;
}

}  // namespace

TEST(Experiment, GridLargerThanAThousandSettingsIsRefused) {
    auto n = YAML::Load("{name: step_skip, interval: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20],"
                        " warmup: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51]}");
    const auto msg = error_of([&] { run::expand_policy(n, "x.yaml:3"); });
    EXPECT_TRUE(contains(msg, "x.yaml:3: policy step_skip: the grid reaches more than 1000 settings at option 'warmup' (20 x 52)")) << msg;
    EXPECT_EQ(run::expand_policy(YAML::Load("{name: step_skip, interval: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], warmup: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]}"), "x").size(), 100u);
}

TEST(Experiment, KeysMustBeNames) {
    const auto msg = error_of([&] { run::expand_policy(YAML::Load("{name: step_skip, [1, 4]: 2}"), "x.yaml:3"); });
    EXPECT_TRUE(contains(msg, "x.yaml:3: policy step_skip: a key must be a name, got [1, 4]")) << msg;
}

TEST(Experiment, GridExpandsListsButNotListOptions) {
    auto n = YAML::Load("{name: teacache, threshold: [0.05, 0.1, 0.2], indicator: [e, e0], coefficients: [0, 0, 0, 1, 0]}");
    auto g = run::expand_policy(n, "x.yaml:3");
    ASSERT_EQ(g.size(), 6u);
    EXPECT_EQ(g[0]["threshold"].as<double>(), 0.05);
    EXPECT_EQ(g[0]["indicator"].as<std::string>(), "e");
    EXPECT_EQ(g[1]["indicator"].as<std::string>(), "e0");
    EXPECT_EQ(g[5]["threshold"].as<double>(), 0.2);
    EXPECT_EQ(g[5]["coefficients"].size(), 5u);
    auto p = run::expand_policy(YAML::Load("{name: profiling_dit, background_blocks: [[1, 2], [3]], warmup: [2, 4]}"), "x");
    ASSERT_EQ(p.size(), 4u);
    EXPECT_EQ(p[0]["background_blocks"].size(), 2u);
    EXPECT_EQ(p[3]["background_blocks"][0].as<int>(), 3);
    EXPECT_EQ(run::expand_policy(YAML::Load("{name: profiling_dit, background_blocks: [1, 2]}"), "x").size(), 1u);
    EXPECT_EQ(run::expand_policy(YAML::Load("none"), "x").size(), 1u);
}

TEST(Experiment, LoadsDefaultsAndOverrides) {
    const auto dir = test::temp_dir();
    const auto x   = run::load_experiment(small_experiment(dir, 3), {"sampling.steps=7", "policies.1.interval=[2, 3]", "seeds=[4]"});
    EXPECT_EQ(x.name, "small");
    EXPECT_EQ(x.sampling.steps, 7);
    EXPECT_EQ(x.seeds, (std::vector<uint64_t>{4}));
    ASSERT_EQ(x.policies.size(), 4u);  // none, step_skip x2, teacache
    EXPECT_EQ(x.policies[2].node["interval"].as<int>(), 3);
    EXPECT_TRUE(contains(x.yaml, "steps: 7"));
    EXPECT_EQ(x.metrics.size(), 5u);
    EXPECT_EQ(x.repeats, 1);
    const auto y = run::load_experiment(small_experiment(dir, 3), {"policies.0.name=none"});
    EXPECT_EQ(y.policies.size(), 3u);
}

TEST(Experiment, BadInputNamesFileLineKeyAndValue) {
    const auto dir = test::temp_dir();
    auto err = [&](const std::string& extra, const std::vector<std::string>& set = {}) {
        return error_of([&] { run::load_experiment(small_experiment(dir, 3, extra), set); });
    };
    EXPECT_TRUE(contains(err("colour: red\n"), "x.yaml:13: experiment: unknown option 'colour'")) << err("colour: red\n");
    EXPECT_TRUE(contains(err("", {"sampling.solver=heun"}), "sampling: option 'solver' must be one of unipc, dpm++, euler, got 'heun'"))
        << err("", {"sampling.solver=heun"});
    EXPECT_TRUE(contains(err("", {"sampling.steps=0"}), "option 'steps' must be an integer in [1, 1000], got 0"));
    EXPECT_TRUE(contains(err("", {"metrics=[psnr, vmaf]"}), "unknown metric 'vmaf'"));
    EXPECT_TRUE(contains(err("", {"metrics=[lpips]"}), "lpips needs its weights"));
    const auto lp = run::load_experiment(small_experiment(dir, 3), {"metrics=[{lpips: {weights: w.safetensors, spatial: false}}, "
                                                                    "{lpips: {weights: w.safetensors}}]"});
    EXPECT_FALSE(lp.metrics.at(0).spatial);  // lpips.LPIPS(spatial=False), the package default
    EXPECT_TRUE(lp.metrics.at(1).spatial);   // spatial=True, the TeaCache/VideoSys convention, unless asked
    EXPECT_TRUE(contains(err("", {"nope"}), "--set 'nope' is not of the form key=value"));
    EXPECT_TRUE(contains(err("", {"policies.9.threshold=1"}), "index 9 is past the end of a list of 3"));
    EXPECT_TRUE(contains(err("", {"model={dir: a, preset: b}"}), "needs exactly one of preset, dir, checkpoint"));
    EXPECT_TRUE(contains(err("", {"timing.repeat=2"}), "timing: unknown option 'repeat' (accepted: repeats, warmup_runs)"));
    write(dir + "/broken.yaml", "name: x\nseeds: [0, 1\n");
    const auto b = error_of([&] { run::load_experiment(dir + "/broken.yaml", {}); });
    EXPECT_TRUE(contains(b, "broken.yaml:") && contains(b, "malformed YAML")) << b;
    EXPECT_TRUE(contains(error_of([&] { run::load_experiment(dir + "/missing.yaml", {}); }), "missing.yaml: cannot open experiment file"));
    EXPECT_TRUE(contains(err("", {"prompts_file=none.txt"}), "give exactly one of prompts"));
}

TEST(Runner, UnknownPolicyOptionFailsBeforeAnyCompute) {
    const auto dir = test::temp_dir();
    const auto x   = run::load_experiment(small_experiment(dir, 2), {"policies.1.intervall=3"});
    const auto e   = error_of([&] { run::run_experiment(x, {}); });
    EXPECT_TRUE(contains(e, "x.yaml:8: policy step_skip: unknown option 'intervall'")) << e;
    EXPECT_FALSE(std::filesystem::exists(dir + "/x.h5"));
}

TEST(Runner, SharesOneReferencePerPairAndResumesNothingWhenDone) {
    const auto dir = test::temp_dir();
    const auto x   = run::load_experiment(small_experiment(dir, 3), {});
    const auto r   = run::run_experiment(x, {});
    // 4 pairs: 4 references computed, the none runs share them (no sampling), 8 cached runs.
    EXPECT_EQ(r.computed, 4 + 12);
    EXPECT_EQ(r.sampling_runs, 4 + 8);  // one repeat each
    EXPECT_EQ(r.model_calls, (4 + 8) * 3 * 2);
    EXPECT_EQ(r.failed, 0);
    const auto st = store::Store::open_existing(dir + "/x.h5");
    EXPECT_EQ(st.groups("/references").size(), 4u);
    EXPECT_EQ(st.groups("/runs").size(), 12u);
    const std::string none = "/runs/none_p1_s0";
    EXPECT_EQ(st.status(none), "done");
    EXPECT_EQ(st.read_num_attr(none + "/metrics/psnr", "mean"), 100.0);
    EXPECT_EQ(st.read_dataset("/references/1_0/latency/step_ms").sizes(), (torch::IntArrayRef{3, 2}));
    EXPECT_EQ(st.read_dataset("/runs/step_skip-i2-w1-f1-residual_p0_s1/cache/compute_mask").sizes(),
              (torch::IntArrayRef{3, 2, test::shipped_model_blocks()}))
        << "groups: " << st.groups("/runs")[3];
    auto again = run::RunnerOptions{};
    again.resume = true;
    const auto r2 = run::run_experiment(x, again);
    EXPECT_EQ(r2.computed, 0);
    EXPECT_EQ(r2.skipped, 16);
    EXPECT_EQ(r2.model_calls, 0);
    EXPECT_TRUE(contains(error_of([&] { run::run_experiment(x, {}); }), "--resume"));
}

TEST(Runner, BitIdenticalResultsFromTheSameSeed) {
    const auto dir = test::temp_dir();
    const auto x   = run::load_experiment(small_experiment(dir, 3), {"seeds=[5]", "prompts=[a red circle moving left over blue stripes]"});
    auto o = run::RunnerOptions{};
    o.out  = dir + "/a.h5";
    run::run_experiment(x, o);
    o.out = dir + "/b.h5";
    run::run_experiment(x, o);
    const auto a = store::Store::open_existing(dir + "/a.h5"), b = store::Store::open_existing(dir + "/b.h5");
    EXPECT_TRUE(torch::equal(a.read_dataset("/references/0_5/latent"), b.read_dataset("/references/0_5/latent")));
    for (const auto& g : a.groups("/runs")) {
        const auto ca = run_content(a, "/runs/" + g), cb = run_content(b, "/runs/" + g);
        for (size_t i = 0; i < ca.size(); ++i) EXPECT_TRUE(same(ca[i], cb[i])) << g << " dataset " << i;
    }
}

TEST(Runner, ShardsMergeToTheUnshardedResult) {
    const auto dir = test::temp_dir();
    const auto x   = run::load_experiment(small_experiment(dir, 2), {});
    auto o = run::RunnerOptions{};
    o.out  = dir + "/all.h5";
    run::run_experiment(x, o);
    std::vector<std::string> shards;
    for (int k = 1; k <= 3; ++k) {
        o.out   = dir + "/shard" + std::to_string(k) + ".h5";
        o.shard = run::Shard::parse(std::to_string(k) + "/3");
        run::run_experiment(x, o);
        shards.push_back(o.out);
    }
    store::merge(dir + "/merged.h5", shards, false);
    const auto all = store::Store::open_existing(dir + "/all.h5"), merged = store::Store::open_existing(dir + "/merged.h5");
    EXPECT_EQ(all.groups("/runs"), merged.groups("/runs"));
    EXPECT_EQ(all.groups("/references"), merged.groups("/references"));
    for (const auto& g : all.groups("/runs")) {
        const auto ca = run_content(all, "/runs/" + g), cb = run_content(merged, "/runs/" + g);
        for (size_t i = 0; i < ca.size(); ++i) EXPECT_TRUE(same(ca[i], cb[i])) << g << " dataset " << i;
    }
    const auto other = run::load_experiment(small_experiment(dir, 2), {"sampling.guide=5"});
    o.out   = dir + "/other.h5";
    o.shard = run::Shard::parse("1/3");
    run::run_experiment(other, o);
    EXPECT_THROW(store::merge(dir + "/bad.h5", {shards[1], dir + "/other.h5"}, false), InputError);
    EXPECT_THROW(run::Shard::parse("4/3"), InputError);
    EXPECT_THROW(run::Shard::parse("1/x"), InputError);
}

TEST(Runner, SigkillMidSweepLosesNoFinishedRun) {
    const auto dir  = test::temp_dir();
    const auto yaml = small_experiment(dir, 12, "");
    const auto err  = dir + "/stderr.txt";
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        freopen(err.c_str(), "w", stderr);
        freopen("/dev/null", "w", stdout);
        execl(PROFDIT_BIN, PROFDIT_BIN, "run", yaml.c_str(), (char*)nullptr);
        _exit(127);
    }
    auto slurp = [&] {
        std::ifstream     f(err);
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
    };
    const auto t0 = std::chrono::steady_clock::now();
    while (!contains(slurp(), "run 7/16") && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120))
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(contains(slurp(), "run 7/16")) << slurp();
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));

    std::map<std::string, torch::Tensor> before;  // finished runs and their DiT-loop times
    {
        const auto st = store::Store::open_existing(dir + "/x.h5");
        for (const auto& parent : {"/runs", "/references"})
            for (const auto& g : st.groups(parent)) {
                const std::string path = std::string(parent) + "/" + g;
                if (st.status(path) == "done") before[path] = st.read_dataset(path + "/latency/dit_ms");
            }
    }
    EXPECT_GE(before.size(), 6u);
    EXPECT_LT(before.size(), 16u);
    const auto r = test::run_profdit("run " + yaml + " --resume --quiet");
    ASSERT_EQ(r.code, 0) << r.err;
    const auto st = store::Store::open_existing(dir + "/x.h5");
    EXPECT_EQ(st.groups("/runs").size() + st.groups("/references").size(), 16u);
    for (const auto& [path, dit] : before) EXPECT_TRUE(torch::equal(st.read_dataset(path + "/latency/dit_ms"), dit)) << path << " was recomputed";
    for (const auto& g : st.groups("/runs")) EXPECT_EQ(st.status("/runs/" + g), "done") << g;
    EXPECT_TRUE(contains(r.out, "| small ")) << r.out;
}

TEST(Runner, CliBadInputExitsTwoAndKeepsTheFile) {
    const auto dir  = test::temp_dir();
    const auto yaml = small_experiment(dir, 2);
    write(dir + "/broken.yaml", "name: x\npolicies: [none\n");
    auto r = test::run_profdit("run " + dir + "/broken.yaml");
    EXPECT_EQ(r.code, 2);
    EXPECT_TRUE(contains(r.err, "broken.yaml:") && contains(r.err, "malformed YAML")) << r.err;
    r = test::run_profdit("run " + yaml + " --set sampling.stepz=3");
    EXPECT_EQ(r.code, 2);
    EXPECT_TRUE(contains(r.err, "sampling: unknown option 'stepz'")) << r.err;
    r = test::run_profdit("run " + yaml + " --shard 3/2");
    EXPECT_EQ(r.code, 2);
    write(dir + "/notes.h5", "not an HDF5 file\n");
    r = test::run_profdit("run " + yaml + " --out " + dir + "/notes.h5 --resume --quiet");
    EXPECT_EQ(r.code, 2);
    EXPECT_TRUE(contains(r.err, "notes.h5")) << r.err;
    std::ifstream f(dir + "/notes.h5");
    std::string   line;
    std::getline(f, line);
    EXPECT_EQ(line, "not an HDF5 file");
    r = test::run_profdit("merge " + dir + "/m.h5 " + dir + "/notes.h5");
    EXPECT_EQ(r.code, 2);
    EXPECT_FALSE(std::filesystem::exists(dir + "/m.h5"));
}

TEST(Runner, EmitsASlurmScriptForTheShards) {
    const auto dir  = test::temp_dir();
    const auto yaml = small_experiment(dir, 2);
    const auto r    = test::run_profdit("run " + yaml + " --emit-slurm " + dir + "/submit.sh --shards 3 --set seeds=[0] --sbatch-args=--partition=gpu");
    ASSERT_EQ(r.code, 0) << r.err;
    std::ifstream     f(dir + "/submit.sh");
    std::stringstream ss;
    ss << f.rdbuf();
    const auto sh = ss.str();
    EXPECT_TRUE(contains(sh, "--array=1-3")) << sh;
    EXPECT_TRUE(contains(sh, "--shard \\$SLURM_ARRAY_TASK_ID/3")) << sh;
    EXPECT_TRUE(contains(sh, "--set 'seeds=[0]'")) << sh;
    EXPECT_TRUE(contains(sh, "--dependency=afterok:$array")) << sh;
    EXPECT_TRUE(contains(sh, "--partition=gpu")) << sh;
    EXPECT_TRUE(contains(sh, "x.h5.shard3.h5' --force")) << sh;
    EXPECT_FALSE(std::filesystem::exists(dir + "/x.h5"));  // nothing ran
}

TEST(Runner, ResumeRefusesAFileWrittenWithOtherWeights) {
    const auto dir = test::temp_dir();
    std::filesystem::copy(run_preset_dir(), dir + "/model");
    const auto x = run::load_experiment(small_experiment(dir, 2), {"model={dir: " + dir + "/model, threads: 1}", "seeds=[0]",
                                                                  "prompts=[a red circle moving left over blue stripes]"});
    run::run_experiment(x, {});
    {  // one byte of the last tensor's data changes: the same model, other weights
        std::fstream f(dir + "/model/text_encoder.safetensors", std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(-1, std::ios::end);
        f.put('\x3f');
    }
    auto o   = run::RunnerOptions{};
    o.resume = true;
    const auto e = error_of([&] { run::run_experiment(x, o); });
    EXPECT_TRUE(contains(e, "was written with other model weights")) << e;
}

// Every shipped experiment loads and builds every policy of its grid (plan and coefficient files read), as
// `profdit run experiments/NAME.yaml` does from the repository root: every relative path in an experiment
// resolves against the working directory (docs/experiments.md, "Paths").
TEST(Experiment, ShippedExperimentsParse) {
    namespace fs = std::filesystem;
    struct InDir {
        fs::path old = fs::current_path();
        explicit InDir(const fs::path& p) { fs::current_path(p); }
        ~InDir() { fs::current_path(old); }
    } in_root(fs::canonical(std::string(PROFDIT_TEST_DATA) + "/../.."));
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator("experiments"))
        if (e.path().extension() == ".yaml") names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    EXPECT_GE(names.size(), 7u);
    for (const auto& name : names) {
        SCOPED_TRACE(name);
        run::Experiment x;
        try {
            x = run::load_experiment("experiments/" + name, {});
        } catch (const std::exception& e) {
            ADD_FAILURE() << e.what();
            continue;
        }
        EXPECT_EQ(x.name, fs::path(name).stem().string());
        EXPECT_GE(x.prompts.size(), 1u);
        EXPECT_GE(x.policies.size(), 2u);
        const auto cfg = !x.model.is_wan() ? wan::WanConfig::from_json_file("data/models/" + x.model.preset + "/config.json")
                         : x.model.config.empty() ? wan::WanConfig{}  // a checkpoint: the shipped ones name Wan2.1-T2V-1.3B
                                                  : wan::named_config(x.model.config, name);
        // The embedded model's weights: a plan or calibration file measured on other weights (stale after
        // retraining) fails here.
        const auto weights = x.model.is_wan() ? std::string() : run::load_pipeline(x.model, name).fingerprint;
        for (const auto& s : x.policies) try {
                policies::make_policy(s.node, {int(cfg.num_layers), cfg.variant(), weights}, s.source);
            } catch (const std::exception& e) {
                ADD_FAILURE() << s.source << ": " << e.what();
            }
    }
    const auto q = run::load_experiment("experiments/quickstart.yaml", {});
    EXPECT_EQ(q.model.preset, "sprites-tiny");
    EXPECT_EQ(q.sampling.steps, 50);
    EXPECT_EQ(q.prompts.size() * q.seeds.size(), 6u);
    // The leaderboard's captions are held out: none profiled the plan or fitted the coefficients (the quickstart's)
    // and none is a calibration caption (load_experiment refuses those).
    const auto lb = run::load_experiment("experiments/leaderboard.yaml", {});
    EXPECT_GE(lb.prompts.size(), 12u);
    EXPECT_GE(lb.seeds.size(), 2u);
    for (const auto& p : lb.prompts) EXPECT_EQ(std::count(q.prompts.begin(), q.prompts.end(), p), 0) << p;
    EXPECT_GE(lb.calibration.prompts.size() * lb.calibration.seeds.size(), 2u);
    // Its ProfilingDiT rows run the same pairs the same way (reports/leaderboard.py --with checks the files too)
    const auto lbp = run::load_experiment("experiments/leaderboard-profiling-dit.yaml", {});
    EXPECT_EQ(lbp.prompts, lb.prompts);
    EXPECT_EQ(lbp.seeds, lb.seeds);
    EXPECT_EQ(std::tie(lbp.sampling.solver, lbp.sampling.steps, lbp.sampling.shift, lbp.sampling.guide),
              std::tie(lb.sampling.solver, lb.sampling.steps, lb.sampling.shift, lb.sampling.guide));
    EXPECT_EQ(std::tie(lbp.warmup_runs, lbp.repeats), std::tie(lb.warmup_runs, lb.repeats));
}

// A relative prompts_file resolves against the working directory, never against the experiment's folder.
TEST(Experiment, PromptsFileResolvesAgainstTheWorkingDirectory) {
    const auto dir = test::temp_dir();
    std::filesystem::create_directories(dir + "/sub");
    std::ofstream(dir + "/sub/p.txt") << "a red circle moving left over blue stripes\n";
    const auto yaml = write(dir + "/sub/x.yaml", "model: {preset: sprites-tiny}\nprompts_file: p.txt\nseeds: [0]\npolicies: [none]\n");
    ASSERT_FALSE(std::filesystem::exists("p.txt"));
    const auto msg = error_of([&] { run::load_experiment(yaml, {}); });
    EXPECT_TRUE(contains(msg, "prompts_file 'p.txt' cannot be read")) << msg;
}

TEST(Experiment, Wan14bLatencyIsThePapersSetting) {
    const auto x = run::load_experiment(std::string(PROFDIT_TEST_DATA) + "/../../experiments/wan21-14b-latency.yaml", {});
    EXPECT_EQ(x.model.config, "wan2.1-t2v-14b");
    EXPECT_EQ(x.model.init, "random");
    EXPECT_EQ(x.model.dtype, "bf16");
    EXPECT_EQ(std::vector<int>({x.model.frames, x.model.height, x.model.width}), std::vector<int>({81, 480, 832}));
    EXPECT_EQ(x.sampling.steps, 50);
    ASSERT_EQ(x.policies.size(), 2u);
    EXPECT_EQ(x.policies[1].node["preset"].as<std::string>(), "wan2.1-t2v-14b-official");
    EXPECT_EQ(x.policies[1].node["warmup"].as<int>(), 6);
    EXPECT_EQ(x.policies[1].node["schedule"]["interval"].as<int>(), 6);
}

TEST(Runner, StoresVideoFramesWhenAsked) {
    const auto dir = test::temp_dir();
    const auto x   = run::load_experiment(small_experiment(dir, 2), {"video=true", "seeds=[0]", "prompts=[a red circle moving left over blue stripes]",
                                                                     "policies=[none]"});
    run::run_experiment(x, {});
    const auto st = store::Store::open_existing(dir + "/x.h5");
    const auto v  = st.read_dataset("/runs/none_p0_s0/video");
    EXPECT_EQ(v.sizes(), (torch::IntArrayRef{8, 32, 32, 3}));
    EXPECT_EQ(v.scalar_type(), torch::kUInt8);
    const auto latent = st.read_dataset("/references/0_0/latent");  // [3, F, H, W] -> frames [F, H, W, 3] in 0..255
    const auto expect = ((latent.permute({1, 2, 3, 0}).clamp(-1, 1) + 1) * 127.5).round().to(torch::kUInt8);
    EXPECT_TRUE(torch::equal(v, expect));
}

// The table's `measured x` is the median of every execution's speedup over the setting's runs (the report's
// rule too), not the mean of the runs' speedups.
TEST(Summary, MeasuredSpeedupIsTheMedianOfEveryExecution) {
    const auto dir = test::temp_dir();
    store::FileInfo info;
    info.experiment_yaml = "x";
    auto st = store::Store::open(dir + "/s.h5", info, false);
    auto scalar = [](double v) { return store::Record::Dataset{torch::tensor(v, torch::kFloat64), {}, {}, false}; };
    std::vector<run::Pair> pairs;
    const std::vector<std::vector<double>> executions = {{1.0, 2.0, 10.0}, {3.0, 4.0, 5.0}};
    for (int p = 0; p < 2; ++p) {
        run::Pair pair;
        pair.index = size_t(p), pair.prompt = p, pair.seed = 0;
        pairs.push_back(pair);
        store::Record r;
        r.num_attrs["speedup"] = executions[size_t(p)][1];  // the run's own: 2 and 4, mean 3
        for (const char* d : {"cache/computed_fraction", "cache/flops_full", "cache/flops_computed", "latency/dit_ms", "latency/e2e_ms"})
            r.datasets[d] = scalar(1.0);
        r.datasets["latency/speedup_repeats"] = {torch::tensor(executions[size_t(p)], torch::kFloat64), {}, {}, false};
        st.write(run::run_group("p", pair), r, "done");
    }
    const auto rows = run::summarize(dir + "/s.h5", {"p"}, pairs);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_DOUBLE_EQ(rows[0].speedup, 3.5);  // median of 1, 2, 3, 4, 5, 10
    EXPECT_EQ(rows[0].speedups.size(), 6u);
}
