// The profdit executable: dit-forward, sample and info on the golden data, and every bad-input path
// (one clear message, exit code 2, nothing already written lost).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <nlohmann/json.hpp>

#include "common/progress.h"
#include "io/safetensors.h"
#include "wan/config.h"
#include "test_util.h"

using namespace profdit;
using test::run_profdit;

namespace {

std::string weights() { return test::data_path("wan21_tiny/dit_tiny_weights.safetensors"); }
std::string config() { return test::data_path("wan21_tiny/config.json"); }

// Writes the dit-forward inputs of golden case `c` to `path`.
void write_case_inputs(const std::string& c, const std::string& path, bool with_context = true) {
    io::SafetensorsReader g(test::data_path("wan21_tiny/dit_tiny_io.safetensors"));
    std::map<std::string, torch::Tensor> in = {{"x", g.load(c + ".x")}, {"t", g.load(c + ".t")}};
    if (with_context) in["context"] = g.load(c + ".context");
    io::write_safetensors(path, in);
}

std::string forward_args(const std::string& in, const std::string& out) {
    return "dit-forward --weights " + weights() + " --config " + config() + " --inputs " + in + " --out " + out;
}

}  // namespace

// Progress on a non-terminal: the first update of a task, then at most one line per interval, then the last;
// on a terminal every update redraws the line.
TEST(Progress, LogGetsAFewLinesTerminalGetsRedraws) {
    using namespace std::chrono;
    const auto         t0 = ProgressLine::Clock::time_point{};
    std::ostringstream log;
    ProgressLine       file(log, false, seconds(5));
    for (int step = 1; step <= 100; ++step) file.update("a " + ProgressLine::bar(step, 100), step == 100, t0 + milliseconds(100 * step));
    // steps 1 (first), 51 (5 s later), 100 (done); a new task starts with a line again
    EXPECT_EQ(log.str(), "a [....................] 1/100\na [##########..........] 51/100\na [####################] 100/100\n");
    file.update("b " + ProgressLine::bar(1, 2), false, t0 + milliseconds(10001));
    EXPECT_NE(log.str().find("\nb [##########..........] 1/2\n"), std::string::npos) << log.str();

    std::ostringstream tty;
    ProgressLine       term(tty, true);
    term.update("x 1/2", false), term.update("x 2/2", true);
    EXPECT_EQ(tty.str(), "\rx 1/2\rx 2/2\n");
}

// The project stands alone: no source, script or doc points at a file outside the repository (the team's
// notes folder beside it); upstream code is cited by its repository and commit instead.
TEST(Repository, CitesNoFileOutsideItself) {
    namespace fs         = std::filesystem;
    const auto  root     = fs::canonical(std::string(PROFDIT_TEST_DATA) + "/../..");
    const std::vector<std::string> outside = {std::string("../") + "shared/", std::string("shared/") + "reference/",
                                              std::string("shared/") + "parity/"};
    int checked = 0;
    for (const char* dir : {"harness", "policies", "metrics", "reports", "scripts", "tests", "docs", "experiments", "plans", "cmake"})
        for (const auto& e : fs::recursive_directory_iterator(root / dir)) {
            const auto ext = e.path().extension().string();
            if (!e.is_regular_file() || !(ext == ".cpp" || ext == ".h" || ext == ".py" || ext == ".md" || ext == ".yaml" || ext == ".cmake" ||
                                          ext == "" || ext == ".txt"))
                continue;
            std::ifstream     f(e.path());
            std::stringstream ss;
            ss << f.rdbuf();
            ++checked;
            for (const auto& o : outside) EXPECT_EQ(ss.str().find(o), std::string::npos) << e.path() << " mentions " << o;
        }
    EXPECT_GT(checked, 100);
}

TEST(Cli, DitForwardMatchesGolden) {
    const auto dir = test::temp_dir();
    io::SafetensorsReader g(test::data_path("wan21_tiny/dit_tiny_io.safetensors"));
    for (const std::string c : {"case0", "case1"}) {
        write_case_inputs(c, dir + "/in.safetensors");
        auto r = run_profdit(forward_args(dir + "/in.safetensors", dir + "/out.safetensors"));
        ASSERT_EQ(r.code, 0) << r.err;
        io::SafetensorsReader out(dir + "/out.safetensors");
        EXPECT_LT(test::max_abs_diff(out.load("out"), g.load(c + ".out")), 1e-4) << c;
    }
}

TEST(Cli, DitForwardRepeatPrintsTiming) {
    const auto dir = test::temp_dir();
    write_case_inputs("case0", dir + "/in.safetensors");
    auto r = run_profdit(forward_args(dir + "/in.safetensors", dir + "/out.safetensors") + " --repeat 3 --threads 1");
    ASSERT_EQ(r.code, 0) << r.err;
    const auto line = r.err.substr(r.err.find('{'));
    const auto j    = nlohmann::json::parse(line.substr(0, line.find('\n')));
    EXPECT_EQ(j["repeat"], 3);
    EXPECT_GT(j["median_ms"].get<double>(), 0.0);
    EXPECT_LE(j["min_ms"].get<double>(), j["median_ms"].get<double>());
    EXPECT_EQ(j["tokens"], 48);
    EXPECT_EQ(j["dtype"], "fp32");
}

// Without --config nothing is guessed: weights profdit wrote carry their config in the safetensors metadata
// (read back: 4 heads, the golden output); weights without it and of no official Wan2.1 size are refused with
// one error naming the file and what is missing (the old dim/128 guess ran the tiny model with 1 head).
TEST(Cli, DitForwardWithoutConfigReadsMetadataOrRefuses) {
    const auto dir = test::temp_dir();
    write_case_inputs("case0", dir + "/in.safetensors");
    auto r = run_profdit("dit-forward --weights " + weights() + " --inputs " + dir + "/in.safetensors --out " + dir + "/o.safetensors");
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find(weights() + ": cannot tell the DiT configuration: num_heads and text_len are not in the weights"), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("metadata 'profdit.dit_config'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("dim 64, ffn_dim 128, 2 layers"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--config FILE.json"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir + "/o.safetensors"));

    io::SafetensorsReader src(weights());
    io::write_safetensors(dir + "/w.safetensors", src.load_all(), wan::WanConfig::from_json_file(config()).metadata());
    r = run_profdit("dit-forward --weights " + dir + "/w.safetensors --inputs " + dir + "/in.safetensors --out " + dir + "/o.safetensors");
    ASSERT_EQ(r.code, 0) << r.err;
    io::SafetensorsReader g(test::data_path("wan21_tiny/dit_tiny_io.safetensors")), out(dir + "/o.safetensors");
    EXPECT_LT(test::max_abs_diff(out.load("out"), g.load("case0.out")), 1e-4);
}

// `profdit synth` writes its config into the weights, so they load without --config.
TEST(Cli, SynthWeightsCarryTheirConfig) {
    const auto dir = test::temp_dir();
    auto r = run_profdit("synth --config " + config() + " --weights-out " + dir + "/w.safetensors --inputs-out " + dir +
                         "/in.safetensors --latent 16,1,4,4");
    ASSERT_EQ(r.code, 0) << r.err;
    io::SafetensorsReader w(dir + "/w.safetensors");
    const auto            md = w.metadata();
    ASSERT_TRUE(md.count(wan::WanConfig::kMetadataKey)) << "no config in the metadata";
    const auto c = wan::WanConfig::from_json(nlohmann::json::parse(md.at(wan::WanConfig::kMetadataKey)), "metadata");
    EXPECT_EQ(c.num_heads, 4);
    EXPECT_EQ(c.text_len, 8);
    r = run_profdit("dit-forward --weights " + dir + "/w.safetensors --inputs " + dir + "/in.safetensors --out " + dir + "/o.safetensors");
    EXPECT_EQ(r.code, 0) << r.err;
}

TEST(Cli, SampleMatchesGoldenAndPrintsTable) {
    const auto dir = test::temp_dir();
    io::SafetensorsReader g(test::data_path("wan21_tiny/dit_tiny_pipeline.safetensors"));
    io::write_safetensors(dir + "/in.safetensors", {{"noise", g.load("noise")},
                                                     {"context_cond", g.load("context_cond")},
                                                     {"context_uncond", g.load("context_uncond")}});
    auto r = run_profdit("sample --weights " + weights() + " --config " + config() + " --inputs " + dir +
                         "/in.safetensors --out " + dir + "/out.safetensors --solver unipc --steps 5 --shift 5 --guide 5");
    ASSERT_EQ(r.code, 0) << r.err;
    io::SafetensorsReader out(dir + "/out.safetensors");
    EXPECT_LT(test::max_abs_diff(out.load("final_latent"), g.load("final_latent")), 1e-4);
    EXPECT_LT(test::max_abs_diff(out.load("step_latent"), g.load("step_latent")), 1e-4);
    EXPECT_TRUE(torch::equal(out.load("timesteps"), g.load("timesteps")));
    EXPECT_TRUE(torch::equal(out.load("sigmas"), g.load("sigmas")));
    EXPECT_NE(r.out.find("| model"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("unipc"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("fp32"), std::string::npos) << r.out;

    auto j = run_profdit("sample --weights " + weights() + " --config " + config() + " --inputs " + dir +
                         "/in.safetensors --out " + dir + "/o2.safetensors --steps 2 --format json --quiet");
    ASSERT_EQ(j.code, 0) << j.err;
    auto rows = nlohmann::json::parse(j.out);
    EXPECT_EQ(rows[0]["steps"], "2");
    EXPECT_FALSE(rows[0]["commit"].get<std::string>().empty());
}

TEST(Cli, SampleWithPolicyReportsAgainstNone) {
    const auto dir = test::temp_dir();
    const std::string base = "sample --weights " + weights() + " --config " + config() + " --inputs " +
                             test::data_path("wan21_tiny/dit_tiny_pipeline.safetensors") + " --steps 5 --quiet --format json";
    auto r = run_profdit(base + " --out " + dir + "/o.safetensors --policy step_skip --policy-opt interval=2");
    ASSERT_EQ(r.code, 0) << r.err;
    auto rows = nlohmann::json::parse(r.out);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0]["policy"], "none");
    EXPECT_EQ(rows[0]["computed"], "1.000");
    EXPECT_EQ(rows[1]["policy"], "step_skip-i2-w1-f1-residual");
    EXPECT_EQ(rows[1]["computed"], "0.800");  // refresh 0, 1, 3, 4: step 2 reuses
    EXPECT_NE(rows[1]["latent rel err"], "0");
    io::SafetensorsReader out(dir + "/o.safetensors");
    auto mask = out.load("compute_mask");
    EXPECT_EQ(mask.sizes(), (torch::IntArrayRef{5, 2, 2}));
    EXPECT_EQ(mask[2].sum().item<int64_t>(), 0);

    r = run_profdit(base + " --out " + dir + "/o2.safetensors --policy none --policy '{name: profiling_dit, background_blocks: [1], warmup: 2}'");
    ASSERT_EQ(r.code, 0) << r.err;
    rows = nlohmann::json::parse(r.out);
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[2]["policy"], "profiling_dit-inline-1-w2-fixed6");
    EXPECT_EQ(rows[2]["computed"], "0.800");  // refresh 0-2 (warm-up, then every 6 from 2): steps 3, 4 skip block 1
}

TEST(Cli, SampleRunsEveryCacheRule) {
    // Each rule of issue 17 through `profdit sample --policy '{...}'` on the parity model (5 steps, 2 blocks).
    const auto dir = test::temp_dir();
    const std::string base = "sample --weights " + weights() + " --config " + config() + " --inputs " +
                             test::data_path("wan21_tiny/dit_tiny_pipeline.safetensors") + " --steps 5 --quiet --format json --out " + dir +
                             "/o.safetensors --policy ";
    struct Case {
        std::string yaml, tag, computed;
    };
    for (const Case& c : {Case{"{name: fbcache, threshold: 0}", "fbcache-thr0-w0", "1.000"},
                          Case{"{name: dbcache, fn: 1, threshold: 0.5, warmup: 1}", "dbcache-F1B0-thr0.5-w1", ""},
                          Case{"{name: magcache, threshold: 0}", "magcache-thr0-K2-r0.2-unused", "1.000"},
                          Case{"{name: easycache, threshold: 1e9, warmup: 2, final_full: 0}", "easycache-thr1e+09-w2-f0", "0.400"},
                          Case{"{name: taylorseer, interval: 2}", "taylorseer-n2-o1-w1", "0.600"}}) {
        auto r = run_profdit(base + "'" + c.yaml + "'");
        ASSERT_EQ(r.code, 0) << c.yaml << ": " << r.err;
        auto rows = nlohmann::json::parse(r.out);
        ASSERT_EQ(rows.size(), 2u);
        EXPECT_EQ(rows[1]["policy"], c.tag);
        if (!c.computed.empty()) {
            EXPECT_EQ(rows[1]["computed"], c.computed) << c.yaml;
        }
    }
    auto r = run_profdit(base + "'{name: magcache, threshold: 0.1, ratios: " + dir + "/missing.yaml}'");
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("option 'ratios'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("missing.yaml"), std::string::npos) << r.err;
}

TEST(Cli, InfoReportsFormatAndParams) {
    auto r = run_profdit("info " + weights());
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("official"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("F32:"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("custom (dim 64, ffn 128, ? heads; no config in the file: loading it needs --config)"), std::string::npos) << r.out;
    r = run_profdit("info " + weights() + " --format json");
    ASSERT_EQ(r.code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j[0]["layers"], "2");
    EXPECT_EQ(j[0]["key format"], "official");
}

struct BadInput {
    const char* name;
    std::string args;    // with {W} weights, {C} config, {I} inputs, {D} temp dir
    const char* expect;  // part of the message
};

class CliBadInput : public ::testing::TestWithParam<BadInput> {};

TEST_P(CliBadInput, ExitTwoWithClearMessage) {
    if (std::string(GetParam().name) == "cuda_unavailable" && torch::cuda::is_available()) GTEST_SKIP() << "CUDA is available here";
    const auto dir = test::temp_dir();
    write_case_inputs("case0", dir + "/in.safetensors");
    write_case_inputs("case0", dir + "/noctx.safetensors", false);
    io::SafetensorsReader g(test::data_path("wan21_tiny/dit_tiny_io.safetensors"));
    io::write_safetensors(dir + "/wide.safetensors", {{"x", g.load("case0.x")}, {"t", g.load("case0.t")}, {"context", torch::zeros({3, 31})}});
    io::write_safetensors(dir + "/chan.safetensors", {{"x", torch::zeros({8, 3, 8, 8})}, {"t", g.load("case0.t")}, {"context", g.load("case0.context")}});
    io::write_safetensors(dir + "/tfloat.safetensors", {{"x", g.load("case0.x")}, {"t", torch::ones({1})}, {"context", g.load("case0.context")}});
    io::write_safetensors(dir + "/long.safetensors", {{"x", g.load("case0.x")}, {"t", g.load("case0.t")}, {"context", torch::zeros({9, 32})}});
    {
        std::ifstream src(weights(), std::ios::binary);
        std::string   bytes((std::istreambuf_iterator<char>(src)), {});
        std::ofstream(dir + "/trunc.safetensors", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    }
    std::ofstream(dir + "/badcfg.json") << R"({"dit": {"dim": 64, "ffn_dim": 128, "num_heads": 4, "num_layers": 2, "depth": 3}})";
    std::ofstream(dir + "/wrongcfg.json") << R"({"dit": {"dim": 64, "ffn_dim": 128, "num_heads": 4, "num_layers": 3, "text_len": 8, "freq_dim": 32, "text_dim": 32}})";
    std::ofstream(dir + "/out.safetensors") << "precious";

    std::string args = GetParam().args;
    auto replace = [&](const std::string& from, const std::string& to) {
        for (size_t p; (p = args.find(from)) != std::string::npos;) args.replace(p, from.size(), to);
    };
    replace("{W}", weights());
    replace("{C}", config());
    replace("{I}", dir + "/in.safetensors");
    replace("{D}", dir);
    auto r = run_profdit(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(GetParam().expect), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    std::ifstream kept(dir + "/out.safetensors");
    std::string   content((std::istreambuf_iterator<char>(kept)), {});
    EXPECT_EQ(content, "precious");
}

#define FWD "dit-forward --weights {W} --config {C} --inputs {I} --out {D}/out.safetensors"
#define SMP "sample --weights {W} --config {C} --inputs {I} --out {D}/out.safetensors"
INSTANTIATE_TEST_SUITE_P(
    Cases, CliBadInput,
    ::testing::Values(
        BadInput{"missing_weights", "dit-forward --weights {D}/nope.safetensors --config {C} --inputs {I} --out {D}/out.safetensors", "nope.safetensors: cannot open"},
        BadInput{"truncated_weights", "dit-forward --weights {D}/trunc.safetensors --config {C} --inputs {I} --out {D}/out.safetensors", "truncated?"},
        BadInput{"config_unknown_key", "dit-forward --weights {W} --config {D}/badcfg.json --inputs {I} --out {D}/out.safetensors", "unknown key 'depth'"},
        BadInput{"config_mismatch", "dit-forward --weights {W} --config {D}/wrongcfg.json --inputs {I} --out {D}/out.safetensors", "num_layers = 2"},
        BadInput{"missing_config", "dit-forward --weights {W} --config {D}/none.json --inputs {I} --out {D}/out.safetensors", "none.json: cannot open"},
        BadInput{"missing_inputs", "dit-forward --weights {W} --config {C} --inputs {D}/none.safetensors --out {D}/out.safetensors", "none.safetensors"},
        BadInput{"missing_context", "dit-forward --weights {W} --config {C} --inputs {D}/noctx.safetensors --out {D}/out.safetensors", "missing input tensor 'context'"},
        BadInput{"context_width", "dit-forward --weights {W} --config {C} --inputs {D}/wide.safetensors --out {D}/out.safetensors", "'context' has width 31"},
        BadInput{"context_too_long", "dit-forward --weights {W} --config {C} --inputs {D}/long.safetensors --out {D}/out.safetensors", "'context' has 9 rows"},
        BadInput{"x_channels", "dit-forward --weights {W} --config {C} --inputs {D}/chan.safetensors --out {D}/out.safetensors", "'x' has 8 channels"},
        BadInput{"t_float", "dit-forward --weights {W} --config {C} --inputs {D}/tfloat.safetensors --out {D}/out.safetensors", "'t' must be an integer tensor"},
        BadInput{"unknown_dtype", FWD " --dtype fp8", "unknown dtype 'fp8'"},
        BadInput{"unknown_device", FWD " --device tpu", "unknown device 'tpu'"},
        BadInput{"cuda_unavailable", FWD " --device cuda", "CUDA is not available"},
        BadInput{"unknown_option", FWD " --colour red", "--colour"},
        BadInput{"missing_required", "dit-forward --weights {W}", "--inputs"},
        BadInput{"unknown_solver", SMP " --solver ddim", "unknown solver 'ddim'"},
        BadInput{"zero_steps", SMP " --steps 0", "steps must be at least 1"},
        BadInput{"sample_missing_noise", SMP, "missing input tensor 'noise'"},
        BadInput{"bad_format", SMP " --format xml", "unknown --format 'xml'"},
        BadInput{"sample_repeat_zero", SMP " --repeat 0", "--repeat"},
        BadInput{"sample_warmup_negative", SMP " --warmup -1", "--warmup"},
        BadInput{"info_missing", "info {D}/nothing", "no such file"},
        BadInput{"policy_unknown", SMP " --policy bogus", "unknown policy 'bogus'"},
        BadInput{"policy_opt_range", SMP " --policy step_skip --policy-opt interval=0", "option 'interval' must be an integer in [1, 100000], got 0"},
        BadInput{"policy_opt_unknown", SMP " --policy teacache --policy-opt coefficients=wan2.1-t2v-1.3b --policy-opt thresh=0.1", "unknown option 'thresh'"},
        BadInput{"policy_opt_form", SMP " --policy step_skip --policy-opt interval", "is not of the form key=value"},
        BadInput{"policy_opt_two", SMP " --policy none --policy step_skip --policy-opt interval=2", "applies to a single --policy"},
        BadInput{"unknown_command", "transmogrify", "transmogrify"}),
    [](const auto& i) { return std::string(i.param.name); });
