// Faults around a sweep: an output path that cannot be created, a disk that fills up, a result file truncated
// by a crash, a checkpoint with a missing tensor, NaN in the model's output. Each is one clear error (exit 2) naming the file, and nothing
// already on disk is changed.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <regex>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "store/store.h"
#include "test_util.h"

namespace profdit {
namespace {

namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string experiment(const std::string& dir, const std::string& model = "{preset: sprites-tiny, threads: 1}",
                       const std::string& prompts = "[a red circle moving left over blue stripes]", const std::string& seeds = "[0]") {
    const auto path = dir + "/x.yaml";
    std::ofstream(path) << "name: faults\n"
                           "model: " << model << "\n"
                           "sampling: {solver: unipc, steps: 3, shift: 3.0, guide: 1.5}\n"
                           "prompts: " << prompts << "\n"
                           "seeds: " << seeds << "\n"
                           "policies: [none, {name: step_skip, interval: 2, warmup: 1}]\n"
                           "metrics: [psnr, ssim]\n"
                           "timing: {warmup_runs: 0, repeats: 1}\n";
    return path;
}

std::string embedded_model() { return test::data_path("../../data/models/sprites-tiny"); }

using Tensors = std::map<std::string, torch::Tensor>;

// DIR/m: a copy of the embedded model with `edit` applied to the tensors of one of its files.
void edited_model(const std::string& dir, const std::string& file, const std::function<void(Tensors&)>& edit) {
    fs::create_directories(dir + "/m");
    for (const std::string f : {"config.json", "dit.safetensors", "text_encoder.safetensors"})
        if (f != file) fs::copy_file(embedded_model() + "/" + f, dir + "/m/" + f);
    auto tensors = io::SafetensorsReader(embedded_model() + "/" + file).load_all();
    edit(tensors);
    io::write_safetensors(dir + "/m/" + file, tensors);
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(Faults, OutputPathThatCannotBeCreated) {
    const auto dir = test::temp_dir();
    std::ofstream(dir + "/plain_file") << "not a folder";
    const auto r = test::run_profdit("run " + experiment(dir) + " --out " + dir + "/plain_file/out.h5");
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_TRUE(has(r.err, dir + "/plain_file/out.h5")) << r.err;
    EXPECT_TRUE(has(r.err, "Not a directory")) << r.err;
    EXPECT_EQ(slurp(dir + "/plain_file"), "not a folder");
}

// Every caption is checked before the result file is created: a bad second prompt costs no runs.
TEST(Faults, BadCaptionIsRefusedBeforeAnyRun) {
    const auto dir = test::temp_dir();
    const auto x   = experiment(dir, "{preset: sprites-tiny, threads: 1}",
                                "[a red circle moving left over blue stripes, a red circle moving left over purple stripes]");
    const auto r   = test::run_profdit("run " + x + " --out " + dir + "/x.h5");
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_TRUE(has(r.err, x + ": prompts.1: caption 'a red circle moving left over purple stripes': word 'purple'")) << r.err;
    EXPECT_FALSE(has(r.err, "run 1/")) << "no run may start:\n" << r.err;
    EXPECT_FALSE(fs::exists(dir + "/x.h5"));
}

// A plan profiled on other weights (a stale plans/ file after the embedded model was retrained) is refused before
// the result file is touched, naming the experiment's option, the plan and both fingerprints.
TEST(Faults, APlanMeasuredOnOtherWeightsIsRefusedBeforeAnyRun) {
    const auto dir = test::temp_dir();
    const auto x   = experiment(dir);
    const auto out = dir + "/x.h5";
    ASSERT_EQ(test::run_profdit("run " + x + " --out " + out).code, 0);
    const auto before = slurp(out);

    std::ofstream(dir + "/stale.yaml") << "background_blocks: [1, 2]\nsource: {model: sprites-tiny fnv1a64:0123456789abcdef}\n";
    std::string text = slurp(x);
    text.replace(text.find("policies: [none, "), 17, "policies: [none, {name: profiling_dit, plan: " + dir + "/stale.yaml}, ");
    std::ofstream(x) << text;
    const auto r = test::run_profdit("run " + x + " --out " + out + " --resume");
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_TRUE(has(r.err, "option 'plan' names '" + dir + "/stale.yaml', measured on other weights (its source.model: "
                           "'sprites-tiny fnv1a64:0123456789abcdef') than this run's model ('sprites-tiny fnv1a64:")) << r.err;
    EXPECT_TRUE(has(r.err, x + ":")) << r.err;
    EXPECT_FALSE(has(r.err, "run 1/")) << "no run may start:\n" << r.err;
    EXPECT_EQ(slurp(out), before);
}

// A full disk, made with a file-size limit (RLIMIT_FSIZE; SIGXFSZ ignored, so writes fail with EFBIG): the
// sweep stops at the first failed write with one error, the file keeps every run finished before it, and
// --resume (with room again) completes it.
TEST(Faults, DiskFullStopsTheSweepAndKeepsFinishedRuns) {
    const auto dir = test::temp_dir();
    const auto x   = experiment(dir, "{preset: sprites-tiny, threads: 1}", "[a red circle moving left over blue stripes]", "[0, 1, 2]");
    ASSERT_EQ(test::run_profdit("run " + x + " --out " + dir + "/full.h5").code, 0);
    const auto full = fs::file_size(dir + "/full.h5");

    const auto out = dir + "/x.h5";
    const auto r   = test::run_profdit("run " + x + " --out " + out, "trap '' XFSZ; prlimit --fsize=" + std::to_string(full * 6 / 10));
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_TRUE(has(r.err, "profdit: error: " + out + ": ")) << r.err;
    EXPECT_TRUE(has(r.err, "File too large: disk full?")) << r.err;
    EXPECT_TRUE(has(r.err, "continue with --resume")) << r.err;
    EXPECT_FALSE(has(r.err, "run /runs/")) << "the sweep must stop, not go on run by run:\n" << r.err;
    EXPECT_FALSE(fs::exists(out + ".journal"));

    const auto resumed = test::run_profdit("run " + x + " --out " + out + " --resume");
    EXPECT_EQ(resumed.code, 0) << resumed.err;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(resumed.err, m, std::regex(R"((\d+) run\(s\) computed, (\d+) already done, 0 failed)"))) << resumed.err;
    EXPECT_GE(std::stoi(m[2]), 1) << "runs finished before the disk filled must be kept";
    EXPECT_EQ(std::stoi(m[1]) + std::stoi(m[2]), 9);
    EXPECT_EQ(test::run_profdit("report " + out + " --out " + dir + "/rep --no-video").code, 0);
}

TEST(Faults, ResultFileTruncatedByACrash) {
    const auto dir = test::temp_dir();
    const auto x   = experiment(dir);
    const auto out = dir + "/x.h5";
    ASSERT_EQ(test::run_profdit("run " + x + " --out " + out).code, 0);
    fs::resize_file(out, fs::file_size(out) * 6 / 10);
    const auto damaged = slurp(out);
    for (const std::string& cmd : {"run " + x + " --out " + out + " --resume", "report " + out + " --out " + dir + "/rep --no-video",
                                  "merge " + dir + "/m.h5 " + out}) {
        const auto r = test::run_profdit(cmd);
        EXPECT_EQ(r.code, 2) << cmd << "\n" << r.err;
        EXPECT_TRUE(has(r.err, out + " is not an HDF5 file, or is damaged")) << cmd << "\n" << r.err;
        EXPECT_EQ(slurp(out), damaged) << cmd;
    }
    EXPECT_FALSE(fs::exists(dir + "/m.h5"));
}

TEST(Faults, CheckpointWithAMissingTensor) {
    const auto dir = test::temp_dir();
    edited_model(dir, "dit.safetensors", [](Tensors& t) { ASSERT_EQ(t.erase("blocks.2.ffn.0.weight"), 1u); });
    const auto r = test::run_profdit("run " + experiment(dir, "{dir: " + dir + "/m, threads: 1}") + " --out " + dir + "/x.h5");
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_TRUE(has(r.err, dir + "/m/dit.safetensors: missing DiT tensors 'blocks.2.ffn.0.weight'")) << r.err;
    EXPECT_FALSE(fs::exists(dir + "/x.h5"));
}

// One word of the embedded model's vocabulary gets a NaN embedding: every run of the prompt with that word
// fails with the step, branch and block where the NaN appeared (its reference first, then the policies
// compared with it); the other prompt's runs complete, and the sweep exits 1 (some runs failed).
TEST(Faults, NaNInTheLatentFailsThoseRunsAndTheSweepGoesOn) {
    const auto dir   = test::temp_dir();
    const auto vocab = nlohmann::json::parse(slurp(embedded_model() + "/config.json"))["vocabulary"].get<std::vector<std::string>>();
    const auto word  = std::find(vocab.begin(), vocab.end(), "square") - vocab.begin();
    ASSERT_LT(size_t(word), vocab.size());
    edited_model(dir, "text_encoder.safetensors", [&](Tensors& t) { t.at("token_embedding.weight")[word].fill_(std::nan("")); });

    const auto x = experiment(dir, "{dir: " + dir + "/m, threads: 1}",
                              "[a red square moving left over blue stripes, a red circle moving left over blue stripes]");
    const auto out = dir + "/x.h5";
    const auto r   = test::run_profdit("run " + x + " --out " + out);
    EXPECT_EQ(r.code, 1) << r.err;
    const std::string where = "NaN/Inf in the model output at step 0 of 3, cond branch; an uncached replay finds it first in block 0; "
                              "its text context is not finite";
    EXPECT_TRUE(has(r.err, "profdit: run /references/0_0 failed: " + where)) << r.err;
    EXPECT_TRUE(has(r.err, "3 run(s) computed, 0 already done, 3 failed")) << r.err;  // the square's reference + 2 runs

    auto st = store::Store::open_existing(out);
    EXPECT_EQ(st.status("/references/0_0"), "failed: " + where);
    for (const auto& g : st.groups("/runs")) {
        const bool square = g.find("_p0_") != std::string::npos;
        EXPECT_EQ(st.status("/runs/" + g), square ? "failed: its reference /references/0_0 failed" : "done") << g;
    }
    EXPECT_EQ(st.status("/references/1_0"), "done");
}

}  // namespace
}  // namespace profdit
