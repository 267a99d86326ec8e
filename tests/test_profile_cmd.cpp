// `profdit profile`: profiles the shipped model on a small experiment, writes a plan the profiling_dit
// policy runs, stores every profile in the HDF5 file, and refuses bad input with exit code 2.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "policies/profiling_dit.h"
#include "store/store.h"
#include "test_util.h"

using namespace profdit;
using test::run_profdit;

namespace {

std::string experiment(const std::string& dir, const std::string& extra = "") {
    const std::string path = dir + "/x.yaml";
    std::ofstream(path) << "name: prof\n"
                           "model: {preset: sprites-tiny, threads: 1}\n"
                           "sampling: {solver: unipc, steps: 6, shift: 3.0, guide: 4.0}\n"
                           "prompts: [a red circle moving left over blue stripes, a yellow square moving down over a green background]\n"
                           "seeds: [0]\n"
                           "policies: [none]\n"
                           "output: " + dir + "/x.h5\n" + extra;
    return path;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

// A centred 16 x 16 square in every frame: foreground that does not depend on what 6 sampling steps draw.
std::string square_masks(const std::string& dir) {
    store::FileInfo info;
    auto st = store::Store::open(dir + "/square.h5", info, false);
    store::Record rec;
    auto m = torch::zeros({8, 32, 32}, torch::kUInt8);
    m.narrow(1, 8, 16).narrow(2, 8, 16).fill_(1);
    rec.datasets["masks"] = {m, {}, {}, false};
    st.write("/seg", rec, "done");
    return dir + "/square.h5:/seg/masks";
}

TEST(ProfileCmd, WritesAPlanAndTheProfiles) {
    const auto dir = test::temp_dir();
    auto r = run_profdit("profile " + experiment(dir) + " --set profile.mask=file --set profile.mask_file=" + square_masks(dir) +
                         " --out " + dir + "/plan.yaml --budget 0.5 --quiet");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("| block |"), std::string::npos) << r.out;
    const int64_t blocks = test::shipped_model_blocks();
    const auto    plan   = policies::load_block_plan(dir + "/plan.yaml");
    EXPECT_EQ(int64_t(plan.background.size()), blocks / 2);  // half the compute kept
    const auto yaml = YAML::LoadFile(dir + "/plan.yaml");
    EXPECT_EQ(int64_t(yaml["r_attn"].size()), blocks);
    EXPECT_EQ(yaml["source"]["mask"].as<std::string>(), "file");
    for (const auto& v : yaml["r_attn"]) EXPECT_TRUE(v.as<double>() >= 0 && v.as<double>() <= 1) << v;

    auto st = store::Store::open_existing(dir + "/plan.h5");
    EXPECT_EQ(st.status("/plan"), "done");
    EXPECT_EQ(st.read_dataset("/plan/r_attn").size(0), blocks);
    for (const char* ref : {"/references/0_0", "/references/1_0"}) {
        EXPECT_EQ(st.read_dataset(std::string(ref) + "/profile/r_attn").sizes(), (std::vector<int64_t>{6, blocks}));  // [steps, blocks]
        EXPECT_EQ(st.read_dataset(std::string(ref) + "/profile/received_mean").sizes(), (std::vector<int64_t>{blocks, 512}));
        EXPECT_EQ(st.read_dataset(std::string(ref) + "/profile/mask").sizes(), (std::vector<int64_t>{8, 32, 32}));
        EXPECT_EQ(st.read_dataset(std::string(ref) + "/similarity/noise_pred_cos").sizes(), (std::vector<int64_t>{6, 2}));
    }

    // The plan runs as a policy.
    r = run_profdit("run " + experiment(dir) + " --set 'policies=[none, {name: profiling_dit, plan: " + dir +
                    "/plan.yaml}]' --out " + dir + "/use.h5 --quiet");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("profiling_dit-plan-"), std::string::npos) << r.out;
}

TEST(ProfileCmd, SensitivityCachesEachBlockAlone) {
    const auto dir = test::temp_dir();
    auto r = run_profdit("profile " + experiment(dir) + " --set seeds=[1] --set 'prompts=[a white circle moving right over gray stripes]'"
                         " --out " + dir + "/sens.yaml --method sensitivity --budget 0.5 --rho 0.5 --quiet");
    ASSERT_EQ(r.code, 0) << r.err;
    const auto yaml = YAML::LoadFile(dir + "/sens.yaml");
    EXPECT_EQ(yaml["method"].as<std::string>(), "sensitivity");
    const int blocks = int(test::shipped_model_blocks());
    EXPECT_EQ(int(yaml["background_blocks"].size()), blocks / 2);
    ASSERT_EQ(int(yaml["source"]["sensitivity_psnr"].size()), blocks);
    // background = the half of the blocks whose caching alone hurts least (highest PSNR)
    std::vector<std::pair<double, int>> psnr;
    for (int b = 0; b < blocks; ++b) psnr.push_back({yaml["source"]["sensitivity_psnr"][b].as<double>(), b});
    std::sort(psnr.rbegin(), psnr.rend());
    std::vector<int> best;
    for (int i = 0; i < blocks / 2; ++i) best.push_back(psnr[i].second);
    std::sort(best.begin(), best.end());
    EXPECT_EQ(yaml["background_blocks"].as<std::vector<int>>(), best);
}

TEST(ProfileCmd, BadInputExitsTwoAndKeepsThePlan) {
    const auto dir = test::temp_dir();
    const auto x   = experiment(dir);
    std::ofstream(dir + "/plan.yaml") << "precious";
    std::ofstream(dir + "/plan.h5") << "not hdf5";
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"--budget 2", "--budget must be in [0, 1]"},
        {"--method magic", "unknown --method 'magic'"},
        {"--tau 0.3 --budget 0.5", "not both"},
        {"--rho 0", "--rho must be positive"},
        {"--warmup-ratio 0.5", "--warmup-ratio must be at least 1 (a multiple of the curve's late level), got 0.5"},
        {"--set profile.mask=file", "mask_file"},
        {"--set profile.high=median", "median"},
        {"", "plan.h5"},  // an existing file that is not ours: not overwritten
    };
    for (const auto& [args, expect] : cases) {
        auto r = run_profdit("profile " + x + " --out " + dir + "/plan.yaml " + args + " --quiet");
        EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
        EXPECT_NE(r.err.find(expect), std::string::npos) << args << "\n" << r.err;
        EXPECT_EQ(slurp(dir + "/plan.yaml"), "precious") << args;
    }
    auto r = run_profdit("profile " + x + " --out " + dir + "/nowhere/plan.yaml --quiet");
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("nowhere"), std::string::npos) << r.err;
}

TEST(ProfileCmd, AutoAndFileMaskSources) {
    const auto dir = test::temp_dir();
    const auto x   = experiment(dir);
    // sensitivity: it needs no foreground, which the auto mask of a 6-step video may not find
    auto r = run_profdit("profile " + x + " --set seeds=[2] --set profile.mask=auto --method sensitivity --rho 0.5 --out " + dir +
                         "/auto.yaml --quiet");
    ASSERT_EQ(r.code, 0) << r.err;
    auto yaml = YAML::LoadFile(dir + "/auto.yaml");
    EXPECT_EQ(yaml["source"]["mask"].as<std::string>(), "auto");
    const double iou = yaml["source"]["auto_mask_iou_vs_gt"].as<double>();
    EXPECT_TRUE(iou >= 0 && iou <= 1) << iou;

    // An external segmenter's masks: the whole frame foreground for prompt 0, nothing for prompt 1.
    for (int p = 0; p < 2; ++p) {
        store::FileInfo info;
        auto st = store::Store::open(dir + "/m" + std::to_string(p) + ".h5", info, false);
        store::Record rec;
        rec.datasets["masks"] = {torch::full({8, 32, 32}, p == 0 ? 1 : 0, torch::kUInt8), {}, {}, false};
        st.write("/seg", rec, "done");
    }
    r = run_profdit("profile " + x + " --set seeds=[2] --set profile.mask=file --set 'profile.mask_file=" + dir +
                    "/m{prompt}.h5:/seg/masks' --out " + dir + "/file.yaml --h5 " + dir + "/file.h5 --quiet");
    ASSERT_EQ(r.code, 0) << r.err;
    auto st = store::Store::open_existing(dir + "/file.h5");
    EXPECT_EQ(st.read_dataset("/references/0_2/profile/token_fg").sum().item<int64_t>(), 512);
    EXPECT_EQ(st.read_dataset("/references/1_2/profile/token_fg").sum().item<int64_t>(), 0);
    EXPECT_TRUE(torch::isnan(st.read_dataset("/references/1_2/profile/r_attn")).all().item<bool>());  // no foreground: undefined

    r = run_profdit("profile " + x + " --set profile.mask=file --set profile.mask_file=" + dir + "/none.h5 --out " + dir +
                    "/bad.yaml --h5 " + dir + "/bad.h5 --quiet");
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_NE(r.err.find("none.h5"), std::string::npos) << r.err;
}
