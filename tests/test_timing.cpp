// Issue 19.1: one timing implementation for `profdit run` and `profdit sample` (a DeviceTimer: CUDA events
// on a CUDA device, the steady clock on the CPU), nothing waiting for the device inside the sampling loop
// (NaN/Inf flags read after it, the failing block located by a replay), interleaved repeats (3 by default)
// with the median and the range stored and shown.
#include <cmath>
#include <fstream>
#include <numeric>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/device_timer.h"
#include "io/safetensors.h"
#include "run/experiment.h"
#include "run/non_finite_replay.h"
#include "run/recorder.h"
#include "run/runner.h"
#include "sampling/timed_loop.h"
#include "store/store.h"
#include "test_util.h"

using namespace profdit;

namespace {

std::string write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
    return path;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The parity case's 5-step pipeline inputs: the golden file's noise and both branches' conditionings.
struct TinyInputs {
    torch::Tensor     noise;
    wan::Conditioning cond, uncond;
};
TinyInputs tiny_inputs() {
    io::SafetensorsReader g(test::data_path("wan21_tiny/dit_tiny_pipeline.safetensors"));
    auto       model = test::tiny_model();
    const auto noise = g.load("noise");
    return {noise, model->condition(g.load("context_cond"), noise.sizes()), model->condition(g.load("context_uncond"), noise.sizes())};
}

// The plain model, with the output of one call (step * 2 + branch) replaced by NaN.
class NaNAtCall : public sampling::Denoiser {
  public:
    NaNAtCall(wan::WanModel m, int call) : plain_(std::move(m)), call_(call) {}
    torch::Tensor predict(int step, sampling::Branch b, const torch::Tensor& latent, int64_t t, const wan::Conditioning& ctx) override {
        auto out = plain_.predict(step, b, latent, t, ctx);  // [C, F, H, W]
        ++calls;
        return step * 2 + int(b) == call_ ? torch::full_like(out, std::nan("")) : out;
    }
    int calls = 0;

  private:
    sampling::PlainDenoiser plain_;
    int                     call_;
};

std::string experiment(const std::string& dir, const std::string& timing) {
    return write(dir + "/x.yaml",
                 "name: t\n"
                 "model: {preset: sprites-tiny, threads: 1}\n"
                 "sampling: {solver: unipc, steps: 2, shift: 3.0, guide: 4.0}\n"
                 "prompts: [a red circle moving left over blue stripes]\n"
                 "seeds: [0]\n"
                 "policies: [none, {name: step_skip, interval: 2, warmup: 1}]\n"
                 "metrics: [psnr, ms_ssim, lpips_proxy]\n" +
                     timing + "output: " + dir + "/x.h5\n");
}

}  // namespace

TEST(DeviceTimer, CpuUsesTheSteadyClockAndReadsEveryInterval) {
    DeviceTimer t(torch::kCPU);
    EXPECT_FALSE(t.uses_events());
    for (int i = 0; i < 3; ++i) {
        t.start();
        auto x = torch::randn({64, 64}).matmul(torch::randn({64, 64}));  // [64, 64]
        (void)x;
        t.stop();
    }
    const auto ms = t.read_ms();
    ASSERT_EQ(ms.size(), 3u);
    for (double v : ms) EXPECT_GE(v, 0.0);
    EXPECT_EQ(sampling::timer_name(torch::kCPU), "steady clock");
}

TEST(DeviceTimer, CudaUsesEventsWhereCompiled) {
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
    if (!DeviceTimer::events_compiled()) GTEST_SKIP() << "this build has no CUDA runtime headers (CPU LibTorch)";
    DeviceTimer t(torch::Device("cuda"));
    EXPECT_TRUE(t.uses_events());
    t.start();
    auto x = torch::randn({512, 512}, torch::kCUDA).matmul(torch::randn({512, 512}, torch::kCUDA));  // [512, 512]
    (void)x;
    t.stop();
    ASSERT_EQ(t.read_ms().size(), 1u);
    EXPECT_GT(t.read_ms()[0], 0.0);
    EXPECT_EQ(sampling::timer_name(torch::Device("cuda")), "cuda events");
}

// The timed loop: one interval per model call, the loop's own interval holding them all, and the same
// latents as the untimed loop.
TEST(TimedSample, TimesEveryCallAndTheLoop) {
    const auto in = tiny_inputs();
    sampling::SampleOptions opt;
    opt.steps = 3;
    sampling::PlainDenoiser plain(test::tiny_model());
    sampling::TimedDenoiser timed(plain, torch::kCPU);
    const auto ts = sampling::timed_sample(timed, torch::kCPU, in.noise, in.cond, in.uncond, opt);
    const auto calls = timed.call_ms();
    ASSERT_EQ(calls.size(), 6u);
    EXPECT_GE(ts.loop_ms, std::accumulate(calls.begin(), calls.end(), 0.0));
    sampling::PlainDenoiser again(test::tiny_model());
    const auto plain_res = sampling::sample_cfg(again, in.noise, in.cond, in.uncond, opt);
    EXPECT_TRUE(torch::equal(ts.result.final_latent, plain_res.final_latent));
    EXPECT_TRUE(torch::equal(ts.result.step_latent, plain_res.step_latent));
    EXPECT_TRUE(ts.result.final_latent.device().is_cpu());
}

// A NaN output no longer stops the loop where it happens (that needed a host sync per call): the loop
// finishes, the flags name the first bad call, and the replay locates it.
TEST(RecordingDenoiser, FlagsNonFiniteOutputsWithoutStoppingTheLoop) {
    const auto in = tiny_inputs();
    sampling::SampleOptions opt;
    opt.steps = 3;
    NaNAtCall               bad(test::tiny_model(), 3);  // step 1, uncond
    run::RecordingDenoiser  rec(bad, opt.steps, true);
    sampling::sample_cfg(rec, in.noise, in.cond, in.uncond, opt);
    EXPECT_EQ(bad.calls, 6);  // every call ran
    EXPECT_EQ(rec.first_non_finite(), 3);

    NaNAtCall  fresh(test::tiny_model(), 3);
    auto       model = test::tiny_model();
    const auto msg   = run::replay_non_finite(fresh, *model, in.noise, in.cond, in.uncond, opt, 3);
    EXPECT_EQ(msg, "NaN/Inf in the model output at step 1 of 3, uncond branch; an uncached replay finds it first in no stage of an "
                   "uncached forward (the cached path produced it)");
    EXPECT_EQ(fresh.calls, 4);  // the replay stops at the bad call

    sampling::PlainDenoiser good(test::tiny_model());
    run::RecordingDenoiser  ok(good, opt.steps, true);
    sampling::sample_cfg(ok, in.noise, in.cond, in.uncond, opt);
    EXPECT_EQ(ok.first_non_finite(), -1);
    const auto rel = ok.rel_l1();
    ASSERT_EQ(rel.size(), 6u);
    EXPECT_TRUE(std::isnan(rel[0]) && std::isnan(rel[1]));  // step 0 has no previous prediction
    EXPECT_GT(rel[2], 0.0);
}

TEST(Timing, RepeatsDefaultToThree) {
    const auto dir = test::temp_dir();
    EXPECT_EQ(run::load_experiment(experiment(dir, ""), {}).repeats, 3);
    EXPECT_EQ(run::load_experiment(experiment(dir, "timing: {warmup_runs: 0}\n"), {}).repeats, 3);
    EXPECT_TRUE(contains(test::input_error_of([&] { run::load_experiment(experiment(dir, "timing: {repeats: 0}\n"), {}); }), "repeats"));
}

// Reference and policy runs interleaved, 3 executions each: the median and the range of the DiT-loop time
// and of the measured speedup are stored, and the table shows the range.
TEST(Timing, RunStoresMedianAndRangeOfInterleavedRepeats) {
    const auto dir = test::temp_dir();
    const auto x   = run::load_experiment(experiment(dir, "timing: {warmup_runs: 0}\n"), {});
    const auto r   = run::run_experiment(x, {});
    EXPECT_EQ(r.sampling_runs, 2 * 3);  // the reference and step_skip, 3 executions each (none shares the reference)
    const auto st  = store::Store::open_existing(dir + "/x.h5");
    const std::string g = "/runs/step_skip-i2-w1-f1-residual_p0_s0";
    ASSERT_EQ(st.status(g), "done");
    const auto reps = st.read_dataset(g + "/latency/dit_ms_repeats");
    ASSERT_EQ(reps.numel(), 3);
    EXPECT_EQ(st.read_num_attr(g + "/latency/dit_ms", "min"), reps.min().item<double>());
    EXPECT_EQ(st.read_num_attr(g + "/latency/dit_ms", "max"), reps.max().item<double>());
    EXPECT_EQ(st.read_dataset(g + "/latency/dit_ms").item<double>(), reps.median().item<double>());
    EXPECT_EQ(st.read_str_attr(g + "/latency/dit_ms", "timer"), "steady clock");
    const auto sp  = st.read_dataset(g + "/latency/speedup_repeats");
    const auto ref = st.read_dataset("/references/0_0/latency/dit_ms_repeats");
    ASSERT_EQ(sp.numel(), 3);
    for (int i = 0; i < 3; ++i) EXPECT_DOUBLE_EQ(sp[i].item<double>(), ref[i].item<double>() / reps[i].item<double>());
    EXPECT_EQ(st.read_dataset("/runs/none_p0_s0/latency/speedup_repeats").sum().item<double>(), 3.0);

    const auto cli = test::run_profdit("run " + experiment(dir, "timing: {warmup_runs: 0}\n") + " --out " + dir + "/y.h5 --format json --quiet");
    ASSERT_EQ(cli.code, 0) << cli.err;
    const auto rows = nlohmann::json::parse(cli.out);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0]["measured range"], "1.000-1.000");
    EXPECT_TRUE(contains(rows[1]["measured range"].get<std::string>(), "-")) << rows[1];
}

// `profdit sample` times with the same implementation as `profdit run` (the timer both name) and the same
// default of 3 interleaved repeats.
TEST(Timing, SampleAndRunUseTheSameTimer) {
    const auto dir = test::temp_dir();
    const auto r   = test::run_profdit("sample --weights " + test::data_path("wan21_tiny/dit_tiny_weights.safetensors") + " --config " +
                                     test::data_path("wan21_tiny/config.json") + " --inputs " +
                                     test::data_path("wan21_tiny/dit_tiny_pipeline.safetensors") + " --out " + dir +
                                     "/o.safetensors --steps 2 --policy step_skip --quiet --format json");
    ASSERT_EQ(r.code, 0) << r.err;
    const auto rows = nlohmann::json::parse(r.out);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[1]["repeats"], "3");
    EXPECT_EQ(rows[1]["timer"], sampling::timer_name(torch::kCPU));
    EXPECT_TRUE(contains(rows[1]["measured range"].get<std::string>(), "-")) << rows[1];

    const auto x = run::load_experiment(experiment(dir, "timing: {warmup_runs: 0, repeats: 1}\n"), {});
    run::run_experiment(x, {});
    const auto st = store::Store::open_existing(dir + "/x.h5");
    EXPECT_EQ(st.read_str_attr("/references/0_0/latency/dit_ms", "timer"), rows[1]["timer"].get<std::string>());
}
