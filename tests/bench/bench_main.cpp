// profdit_bench: the Google Benchmark suite behind scripts/bench-gate (docs/ci.md).
//
// Every benchmark uses manual time: the clock is read after profdit::synchronize(device), so CUDA kernels
// are counted when they finish, not when they are queued (a no-op on CPU). Device: cuda when
// torch::cuda::is_available() (PROFDIT_BENCH_DEVICE=cpu forces the CPU), else cpu. CPU threads:
// PROFDIT_BENCH_THREADS (default 1, as experiments/ci-regression.yaml, so a busy second core disturbs less).
//
//   profdit_bench --benchmark_format=json --benchmark_min_time=0.05
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <unistd.h>

#include <torch/torch.h>

#include "common/build_info.h"
#include "common/device.h"
#include "common/threads.h"
#include "io/safetensors.h"
#include "metrics/psnr.h"
#include "metrics/ssim.h"
#include "sampling/scheduler.h"
#include "wan/attention.h"
#include "wan/checkpoint.h"
#include "wan/dit.h"
#ifdef PROFDIT_HAVE_HDF5
#include "run/run_metrics.h"
#include "store/store.h"
#endif

namespace {

using namespace profdit;
using Clock = std::chrono::steady_clock;

torch::Device bench_device() {
    const char* d = std::getenv("PROFDIT_BENCH_DEVICE");
    if (d && std::string(d) == "cpu") return torch::kCPU;
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
}

const torch::Device& device() {
    static const torch::Device d = bench_device();
    return d;
}

// Runs `body` once per iteration and reports its synchronised wall time as the iteration's time.
template <class F>
void timed_loop(benchmark::State& state, F&& body) {
    for (auto _ : state) {
        synchronize(device());
        const auto t0 = Clock::now();
        body();
        synchronize(device());
        state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
    }
}

// Two model sizes: "tiny" is sprites-tiny (the CI model: dim 128, 4 heads, 6 blocks, 3x16x32x32 pixel
// latent, 4x4 patches -> 1024 tokens); "small" is a Wan-shaped 512-dim, 8-head block on 1536 tokens.
struct Size {
    const char*            name;
    wan::WanConfig         config;
    std::array<int64_t, 4> latent;  // C, F, H, W
};

Size size_of(int64_t k) {
    wan::WanConfig c;
    if (k == 0) {
        c.dim = 128, c.num_heads = 4, c.ffn_dim = 512, c.num_layers = 6, c.freq_dim = 64, c.in_dim = 3, c.out_dim = 3;
        c.text_dim = 64, c.text_len = 16, c.patch_size = {1, 4, 4};
        return {"tiny", c, {3, 16, 32, 32}};
    }
    c.dim = 512, c.num_heads = 8, c.ffn_dim = 2048, c.num_layers = 4, c.freq_dim = 256, c.in_dim = 16, c.out_dim = 16;
    c.text_dim = 512, c.text_len = 64, c.patch_size = {1, 2, 2};
    return {"small", c, {16, 6, 32, 32}};
}

// A randomly initialised model plus one embedded input and its prompt's conditioning, built once per size.
struct ModelCase {
    wan::WanModel     model{nullptr};
    wan::Embedded     emb;
    wan::Conditioning cond;
    torch::Tensor     latent, context;
};

ModelCase& model_case(int64_t k) {
    static std::map<int64_t, ModelCase> cache;
    auto it = cache.find(k);
    if (it != cache.end()) return it->second;
    const Size s = size_of(k);
    torch::NoGradGuard ng;
    ModelCase mc;
    mc.model = wan::WanModel(s.config);
    wan::init_random(mc.model, 7);
    mc.model->to(device());
    mc.model->eval();
    torch::manual_seed(1);
    const auto& l = s.latent;
    mc.latent  = torch::randn({l[0], l[1], l[2], l[3]}).to(device());
    mc.context = torch::randn({s.config.text_len, s.config.text_dim}).to(device());
    mc.cond    = mc.model->condition(mc.context, mc.latent.sizes());
    mc.emb     = mc.model->embed(mc.latent, 500, mc.cond);
    return cache.emplace(k, std::move(mc)).first->second;
}

wan::WanAttentionBlockImpl& block0(ModelCase& mc) { return *mc.model->blocks[0]->as<wan::WanAttentionBlockImpl>(); }

void set_label(benchmark::State& state, int64_t k) {
    const ModelCase& mc = model_case(k);
    state.SetLabel(std::string(size_of(k).name) + " L=" + std::to_string(mc.emb.x.size(1)) + " dim=" +
                   std::to_string(size_of(k).config.dim));
}

// ---- DiT block parts and whole forwards ------------------------------------------------------------------

void BM_BlockSelfAttn(benchmark::State& state) {
    torch::NoGradGuard ng;
    auto& mc = model_case(state.range(0));
    auto& b  = block0(mc);
    timed_loop(state, [&] { benchmark::DoNotOptimize(b.self_attn->forward(mc.emb.x, mc.emb.cond.rope, nullptr)); });
    set_label(state, state.range(0));
}

void BM_BlockCrossAttn(benchmark::State& state) {
    torch::NoGradGuard ng;
    auto& mc = model_case(state.range(0));
    auto& b  = block0(mc);
    timed_loop(state, [&] { benchmark::DoNotOptimize(b.cross_attn->forward(mc.emb.x, mc.emb.cond.cross_kv[0])); });
    set_label(state, state.range(0));
}

void BM_BlockFFN(benchmark::State& state) {
    torch::NoGradGuard ng;
    auto& mc = model_case(state.range(0));
    auto& b  = block0(mc);
    timed_loop(state, [&] { benchmark::DoNotOptimize(b.ffn->forward(mc.emb.x)); });
    set_label(state, state.range(0));
}

void BM_Block(benchmark::State& state) {
    torch::NoGradGuard ng;
    auto& mc = model_case(state.range(0));
    timed_loop(state, [&] { benchmark::DoNotOptimize(mc.model->block(0, mc.emb.x, mc.emb.cond)); });
    set_label(state, state.range(0));
}

// One DiT forward: from a raw text context as `profdit dit-forward` runs it (the conditioning, i.e. text MLP,
// cross-attention K/V and RoPE tables, built inside), or as a sampling loop's call (`prebuilt`: the prompt's
// conditioning built once, outside the timing).
void dit_forward(benchmark::State& state, bool prebuilt) {
    torch::NoGradGuard ng;
    auto& mc = model_case(state.range(0));
    timed_loop(state, [&] {
        benchmark::DoNotOptimize(prebuilt ? mc.model->forward(mc.latent, 500, mc.cond) : mc.model->forward(mc.latent, 500, mc.context));
    });
    set_label(state, state.range(0));
    state.counters["blocks"] = double(mc.model->num_blocks());
}

void BM_DiTForward(benchmark::State& state) { dit_forward(state, false); }
void BM_DiTStep(benchmark::State& state) { dit_forward(state, true); }

// ---- attention: the normal (fast) path and the profiling path ---------------------------------------------

struct Qkv {
    torch::Tensor q, k, v;
};

Qkv qkv(int64_t L) {
    torch::manual_seed(2);
    const auto o = torch::TensorOptions().device(device());
    return {torch::randn({1, L, 8, 64}, o), torch::randn({1, L, 8, 64}, o), torch::randn({1, L, 8, 64}, o)};
}

void BM_Attention(benchmark::State& state) {
    torch::NoGradGuard    ng;
    const auto            t = qkv(state.range(0));
    wan::AttentionScratch scratch;
    timed_loop(state, [&] { benchmark::DoNotOptimize(wan::attention(t.q, t.k, t.v, &scratch)); });
    state.SetLabel("fast path, 8 heads x 64");
}

void BM_AttentionProfiling(benchmark::State& state) {  // wan::received_attention, what AttentionProfile adds per block
    torch::NoGradGuard ng;
    const auto         t = qkv(state.range(0));
    timed_loop(state, [&] { benchmark::DoNotOptimize(wan::received_attention(t.q, t.k)); });
    state.SetLabel("received attention, query chunk 64");
}

// ---- sampling ---------------------------------------------------------------------------------------------

void BM_UniPCStep(benchmark::State& state) {  // Wan2.1-1.3B's latent for 81x480x832: [16, 21, 60, 104]
    torch::NoGradGuard ng;
    torch::manual_seed(3);
    const auto o = torch::TensorOptions().device(device());
    auto       x = torch::randn({16, 21, 60, 104}, o), v = torch::randn({16, 21, 60, 104}, o);
    auto       sched = std::make_unique<sampling::FlowUniPC>(50, 5.0);
    const auto x0    = x.clone();
    for (auto _ : state) {
        if (sched->step_index() >= sched->steps()) {  // a fresh 50-step schedule, outside the timing
            sched = std::make_unique<sampling::FlowUniPC>(50, 5.0);
            x     = x0.clone();
        }
        synchronize(device());
        const auto t0 = Clock::now();
        x             = sched->step(v, x);
        synchronize(device());
        state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    state.SetLabel("latent 16x21x60x104, 50 steps cycled");
}

// ---- metrics: PSNR / SSIM / MS-SSIM / LPIPS-proxy and a run's whole metric set on 480x832 frames, on the
// benchmark's device (the run's device computes them too): the whole 81-frame video on CUDA, 2 of its frames
// on the CPU (frames/s extrapolates); registered in main, where the device is known ----------------------------

template <class Metric>
void frames_bench(benchmark::State& state, Metric metric) {
    torch::NoGradGuard ng;
    const int64_t      F = state.range(0);
    torch::manual_seed(4);
    const auto ref  = torch::rand({F, 3, 480, 832}, torch::TensorOptions().device(device())) * 2 - 1;
    const auto test = (ref + 0.05 * torch::randn_like(ref)).clamp(-1, 1);
    timed_loop(state, [&] { benchmark::DoNotOptimize(metric(test, ref)); });
    state.counters["frames_per_s"] = benchmark::Counter(double(F), benchmark::Counter::kIsIterationInvariantRate);
    state.SetLabel(std::to_string(F) + " of 81 frames 480x832 (frames/s extrapolates to the video)");
}

void BM_SSIM(benchmark::State& state) { frames_bench(state, metrics::ssim); }
void BM_MSSSIM(benchmark::State& state) { frames_bench(state, metrics::ms_ssim); }
void BM_PSNR(benchmark::State& state) { frames_bench(state, metrics::psnr); }
void BM_LPIPSProxy(benchmark::State& state) { frames_bench(state, metrics::lpips_proxy); }
#ifdef PROFDIT_HAVE_HDF5
// What a run with metrics [psnr, ssim, ms_ssim, lpips_proxy] spends per video (MS-SSIM computed once).
void BM_RunMetrics(benchmark::State& state) {
    const run::RunMetrics m({{"psnr", "", true}, {"ssim", "", true}, {"ms_ssim", "", true}, {"lpips_proxy", "", true}});
    frames_bench(state, [&](const torch::Tensor& test, const torch::Tensor& ref) {
        store::Record r;
        m.add(r, test, ref, torch::Tensor());
        return r.datasets.size();
    });
}
#endif

// ---- I/O --------------------------------------------------------------------------------------------------

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("profdit_bench_" + std::to_string(::getpid()) + "_" + name)).string();
}

void BM_SafetensorsLoad(benchmark::State& state) {  // bytes/s over every tensor of a 64 MiB file (page cache warm)
    const std::string path = temp_path("weights.safetensors");
    std::map<std::string, torch::Tensor> tensors;
    torch::manual_seed(5);
    for (int i = 0; i < 16; ++i) tensors["blocks." + std::to_string(i) + ".weight"] = torch::randn({1024, 1024});
    io::write_safetensors(path, tensors);
    const int64_t bytes = 16 * 1024 * 1024 * 4;
    for (auto _ : state) {
        const auto t0 = Clock::now();
        io::SafetensorsReader r(path);
        for (const auto& n : r.names()) benchmark::DoNotOptimize(r.load(n));
        state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    state.SetBytesProcessed(state.iterations() * bytes);
    state.SetLabel("16 x 4 MiB f32");
    std::filesystem::remove(path);
}

#ifdef PROFDIT_HAVE_HDF5
void BM_H5Write(benchmark::State& state) {  // one run record as the runner writes it: frames (deflate) + series
    const std::string path = temp_path("store.h5");
    store::FileInfo   info;
    info.profdit_version = "bench", info.git_commit = build_commit(), info.torch_version = "bench";
    info.device = "cpu", info.dtype = "fp32", info.created = "bench", info.experiment_yaml = "name: bench\n";
    auto st = store::Store::open(path, info, false);
    torch::manual_seed(6);
    store::Record r;
    r.str_attrs                    = {{"policy", "step_skip"}, {"policy_tag", "step_skip_i2"}};
    r.num_attrs                    = {{"speedup", 1.5}};
    r.datasets["video/frames"]     = {(torch::rand({16, 32, 32, 3}) * 255).to(torch::kUInt8), {}, {}, true};
    r.datasets["latent"]           = {torch::randn({3, 16, 32, 32}), {}, {}, false};
    r.datasets["latency/step_ms"]  = {torch::rand({20, 2}, torch::kFloat64), {}, {}, false};
    r.datasets["cache/compute_mask"] = {torch::ones({20, 2, 6}, torch::kUInt8), {}, {}, false};
    int k = 0;
    for (auto _ : state) {
        const auto t0 = Clock::now();
        st.write("/runs/r" + std::to_string(k++), r, "done");
        state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
    }
    state.SetLabel("one run record (16x32x32x3 frames deflate, latent, series)");
    std::filesystem::remove(path);
}
BENCHMARK(BM_H5Write)->UseManualTime()->Unit(benchmark::kMillisecond);
#endif

BENCHMARK(BM_BlockSelfAttn)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BlockCrossAttn)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BlockFFN)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Block)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DiTForward)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DiTStep)->Arg(0)->Arg(1)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Attention)->Arg(1024)->Arg(4096)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_AttentionProfiling)->Arg(1024)->Arg(4096)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_UniPCStep)->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SafetensorsLoad)->UseManualTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
    const char* t       = std::getenv("PROFDIT_BENCH_THREADS");
    const int   threads = t ? std::atoi(t) : 1;
    profdit::set_cpu_threads(threads);
    benchmark::AddCustomContext("profdit_commit", profdit::build_commit());
    benchmark::AddCustomContext("torch_version", TORCH_VERSION);
    benchmark::AddCustomContext("device", profdit::device_label(device()));
    benchmark::AddCustomContext("threads", std::to_string(threads));
    const int64_t frames = device().is_cuda() ? 81 : 2;
    benchmark::RegisterBenchmark("BM_SSIM", BM_SSIM)->Arg(frames)->UseManualTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_MSSSIM", BM_MSSSIM)->Arg(frames)->UseManualTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_PSNR", BM_PSNR)->Arg(frames)->UseManualTime()->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("BM_LPIPSProxy", BM_LPIPSProxy)->Arg(frames)->UseManualTime()->Unit(benchmark::kMillisecond);
#ifdef PROFDIT_HAVE_HDF5
    benchmark::RegisterBenchmark("BM_RunMetrics", BM_RunMetrics)->Arg(frames)->UseManualTime()->Unit(benchmark::kMillisecond);
#endif
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
