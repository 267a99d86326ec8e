#include "run/runner.h"
#include "common/threads.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "common/build_info.h"
#include "common/progress.h"
#include "common/device.h"
#include "common/stats.h"
#include "common/error.h"
#include "metrics/flicker.h"
#include "metrics/lpips.h"
#include "metrics/psnr.h"
#include "metrics/ssim.h"
#include "policies/none.h"
#include "run/pipeline.h"
#include "run/non_finite.h"
#include "run/profiler_pass.h"
#include "store/h5.h"
#include "run/recorder.h"
#include "sampling/cached_denoiser.h"
#include "store/store.h"

namespace profdit::run {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

torch::Tensor vec_tensor(const std::vector<double>& v, std::vector<int64_t> shape) {
    return torch::tensor(v, torch::kFloat64).reshape(shape);
}

torch::Tensor scalar(double v) { return torch::tensor(v, torch::kFloat64).reshape({}); }

std::string emit(const YAML::Node& n) {
    YAML::Emitter e;
    e << YAML::Flow << n;
    return e.c_str();
}

std::string now_iso() {
    std::time_t t = std::time(nullptr);
    char        buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
}

// A timed accumulator for the time breakdown.
struct Stopwatch {
    double& into;
    Clock::time_point t0 = Clock::now();
    ~Stopwatch() { into += std::chrono::duration<double>(Clock::now() - t0).count(); }
};

// What one sampling run (repeated) produced.
struct Outcome {
    torch::Tensor          latent, frames;  // [C, F, H, W], [F, 3, H, W]
    std::vector<double>    dit_ms, decode_ms;
    std::vector<double>    call_ms;  // [S * 2], median over repeats
    std::vector<double>    rel_l1, cosine;  // [S * 2]
    sampling::CacheStats   stats;
    PeakMemory             memory;  // over the repeats and their decodes
};

class Sweep {
  public:
    Sweep(const Experiment& x, const RunnerOptions& opt) : x_(x), opt_(opt) {}
    RunnerResult run();

  private:
    struct Prompt {
        torch::Tensor cond;               // [L, text_dim] text encoder output
        double        ms = 0;             // encoding and DiT conditioning, this prompt's and the negative prompt's
        bool          conditioned = false;
    };
    const Prompt&            prompt(int i);
    const wan::Conditioning& conditioning(int i);
    Outcome sample(policies::CachePolicy& p, const torch::Tensor& noise, const wan::Conditioning& cond, const std::string& label, const Pair& pair);
    store::Record record(const Outcome& o, const Prompt& pr, const Pair& pair);
    void          add_metrics(store::Record& r, const torch::Tensor& frames, const torch::Tensor& ref, const torch::Tensor& mask);
    void          progress(const std::string& what, const Pair& pair, int step, int steps);

    const Experiment&                          x_;
    const RunnerOptions&                       opt_;
    Pipeline                                   pipe_;
    std::vector<std::unique_ptr<policies::CachePolicy>> policies_;
    std::map<int, Prompt>                      prompts_;
    wan::Conditioning                          negative_;
    double                                     negative_ms_ = 0;
    wan::Conditioning                          conditioning_;  // of prompt conditioned_ only: 14B's cross K/V are ~0.4 GB a branch
    int                                        conditioned_ = -1;
    std::optional<metrics::Lpips>              lpips_;
    RunnerResult                               res_;
    int                                        run_no_ = 0, runs_total_ = 0;
    ProgressLine                               bar_{std::cerr, ProgressLine::stderr_is_terminal()};
};

const Sweep::Prompt& Sweep::prompt(int i) {
    auto it = prompts_.find(i);
    if (it != prompts_.end()) return it->second;
    Stopwatch  sw{res_.time.model_s};
    const auto t0 = Clock::now();
    Prompt     p;
    p.cond = pipe_.text->encode(x_.prompts[size_t(i)]).to(pipe_.device());  // [L, text_dim]
    synchronize(pipe_.device());
    p.ms = ms_since(t0) + negative_ms_;
    return prompts_.emplace(i, p).first->second;
}

const wan::Conditioning& Sweep::conditioning(int i) {
    if (conditioned_ == i) return conditioning_;
    prompt(i);
    Stopwatch  sw{res_.time.model_s};
    const auto t0 = Clock::now();
    conditioning_ = pipe_.dit->condition(prompts_[i].cond, pipe_.latent_shape);
    conditioned_  = i;
    synchronize(pipe_.device());
    if (!prompts_[i].conditioned) prompts_[i].ms += ms_since(t0);
    prompts_[i].conditioned = true;
    return conditioning_;
}

void Sweep::progress(const std::string& what, const Pair& pair, int step, int steps) {
    if (opt_.quiet) return;
    bar_.update("run " + std::to_string(run_no_) + "/" + std::to_string(runs_total_) + " " + what + " prompt " + std::to_string(pair.prompt) +
                    " seed " + std::to_string(pair.seed) + " " + ProgressLine::bar(step, steps),
                step == steps);
}

Outcome Sweep::sample(policies::CachePolicy& p, const torch::Tensor& noise, const wan::Conditioning& cond, const std::string& label,
                      const Pair& pair) {
    Stopwatch sw{res_.time.model_s};
    Outcome   o;
    const bool rss_reset = reset_peak_memory(pipe_.device());
    std::vector<std::vector<double>> calls;
    const int steps = x_.sampling.steps;
    for (int r = 0; r < x_.repeats; ++r) {
        p.reset();
        sampling::CachedDenoiser cached(pipe_.dit, p, steps);
        RecordingDenoiser        rec(cached, steps, x_.profile.similarity && r == 0,
                                     [this](const torch::Tensor& latent, int64_t t, const wan::Conditioning& c) {
                                         return first_non_finite_stage(*pipe_.dit, latent, t, c);
                                     });
        const auto               t0 = Clock::now();
        auto res = sampling::sample_cfg(rec, noise, cond, negative_, x_.sampling, [&](int i, int n) {
            if (r == 0) progress(label, pair, i, n);
        });
        o.dit_ms.push_back(ms_since(t0));
        ++res_.sampling_runs;
        res_.model_calls += int64_t(rec.call_ms().size());
        const auto t1     = Clock::now();
        if (!all_finite(res.final_latent))  // every model output was finite: the sampler's own update made it
            throw NonFiniteError("NaN/Inf in the final latent after step " + std::to_string(steps - 1) + " of " + std::to_string(steps) +
                                 " (the sampler's update; every model output was finite)");
        auto       frames = pipe_.decoder->decode(res.final_latent.to(pipe_.device())).to(torch::kCPU);  // [F, 3, H, W]
        o.decode_ms.push_back(ms_since(t1));
        calls.push_back(rec.call_ms());
        if (r == 0) {
            o.latent = res.final_latent;
            o.frames = frames;
            o.rel_l1 = rec.rel_l1();
            o.cosine = rec.cosine();
            o.stats  = cached.stats();
        }
    }
    o.memory = read_peak_memory(pipe_.device(), rss_reset);
    o.call_ms.resize(calls[0].size());
    for (size_t i = 0; i < o.call_ms.size(); ++i) {
        std::vector<double> v;
        for (const auto& c : calls) v.push_back(c[i]);
        o.call_ms[i] = median(v);
    }
    return o;
}

store::Record Sweep::record(const Outcome& o, const Prompt& pr, const Pair& pair) {
    store::Record r;
    const int64_t S = x_.sampling.steps;
    auto spread = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()) - *std::min_element(v.begin(), v.end()); };
    const double dit = median(o.dit_ms), dec = median(o.decode_ms);
    r.str_attrs["prompt"]       = x_.prompts[size_t(pair.prompt)];
    r.num_attrs["prompt_index"] = pair.prompt;
    r.num_attrs["seed"]         = double(pair.seed);
    r.num_attrs["repeats"]      = x_.repeats;
    r.datasets["latency/step_ms"]   = {vec_tensor(o.call_ms, {S, 2}), {}, {}, false};
    r.datasets["latency/dit_ms"]    = {scalar(dit), {{"spread", spread(o.dit_ms)}}, {}, false};
    r.datasets["latency/dit_ms_repeats"] = {vec_tensor(o.dit_ms, {int64_t(o.dit_ms.size())}), {}, {}, false};
    r.datasets["latency/text_ms"]   = {scalar(pr.ms), {}, {{"note", "prompt and negative prompt: text encoding and the DiT's conditioning (text embedding, cross-attention K/V, RoPE), measured when first built (both are kept per prompt)"}}, false};
    r.datasets["latency/decode_ms"] = {scalar(dec), {{"spread", spread(o.decode_ms)}}, {}, false};
    r.datasets["latency/e2e_ms"]    = {scalar(pr.ms + dit + dec), {}, {{"note", "text_ms + dit_ms + decode_ms"}}, false};
    r.datasets["cache/compute_mask"]    = {o.stats.compute_mask, {}, {}, false};
    r.datasets["cache/flops_computed"]  = {scalar(o.stats.flops_computed), {}, {}, false};
    r.datasets["cache/flops_full"]      = {scalar(o.stats.flops_full), {}, {}, false};
    r.datasets["cache/computed_fraction"] = {scalar(o.stats.computed_fraction()), {}, {}, false};
    r.datasets["cache/peak_cache_bytes"] = {scalar(double(o.stats.peak_cache_bytes)), {}, {}, false};
    r.datasets["memory/peak_rss_bytes"] = {scalar(o.memory.rss_bytes), {},
                                           {{"note", o.memory.rss_reset ? "peak resident set of this run's sampling loops and decodes (VmHWM, reset before the run)"
                                                                        : "the process's peak resident set so far (could not reset VmHWM)"}},
                                           false};
    if (o.memory.cuda_bytes >= 0)
        r.datasets["memory/cuda_peak_allocated_bytes"] = {scalar(o.memory.cuda_bytes), {},
                                                          {{"note", "peak bytes allocated by LibTorch's CUDA caching allocator during this run's loops and decodes"}}, false};
    if (pipe_.random_weights) r.str_attrs["weights"] = "random";
    if (x_.profile.similarity) {
        r.datasets["similarity/noise_pred_rel_l1"] = {vec_tensor(o.rel_l1, {S, 2}), {}, {{"axes", "step, branch (cond, uncond)"}}, false};
        r.datasets["similarity/noise_pred_cos"]    = {vec_tensor(o.cosine, {S, 2}), {}, {{"axes", "step, branch (cond, uncond)"}}, false};
    }
    if (x_.video)
        r.datasets["video"] = {((o.frames.permute({0, 2, 3, 1}) + 1) * 127.5).round().clamp(0, 255).to(torch::kUInt8).contiguous(), {}, {}, true};
    return r;
}

void Sweep::add_metrics(store::Record& r, const torch::Tensor& frames, const torch::Tensor& ref, const torch::Tensor& mask) {
    Stopwatch sw{res_.time.metrics_s};
    auto put = [&](const metrics::Series& s) {
        r.datasets["metrics/" + s.name] = {vec_tensor(s.per_frame, {int64_t(s.per_frame.size())}), {{"mean", s.mean}}, {{"note", s.note}}, false};
    };
    for (const auto& m : x_.metrics) {
        if (m.name == "psnr") put(metrics::psnr(frames, ref));
        else if (m.name == "ssim") put(metrics::ssim(frames, ref));
        else if (m.name == "ms_ssim") put(metrics::ms_ssim(frames, ref));
        else if (m.name == "lpips_proxy") put(metrics::lpips_proxy(frames, ref));
        else if (m.name == "lpips") put((*lpips_)(frames, ref));
        else if (m.name == "flicker") put(metrics::flicker(frames, ref));
        else if (m.name == "region") {
            auto [fg, bg] = metrics::region_psnr(frames, ref, mask);
            put(fg), put(bg);
        }
    }
}

RunnerResult Sweep::run() {
    const auto t_start = Clock::now();
    set_cpu_threads(x_.model.threads);
    for (const auto& m : x_.metrics)
        if (m.name == "lpips") lpips_ = metrics::Lpips::load(m.weights, m.spatial);
    {
        Stopwatch sw{res_.time.model_s};
        pipe_ = load_pipeline(x_.model, x_.path);
    }
    const bool region = std::any_of(x_.metrics.begin(), x_.metrics.end(), [](const MetricSpec& m) { return m.name == "region"; });
    if (region && !pipe_.foreground_mask)
        input_error(x_.path + ": metrics: region needs a foreground mask source, which model '" + pipe_.label + "' does not have");
    check_mask_source(pipe_, x_);

    const auto& cfg = pipe_.dit->config();
    const policies::ModelFacts facts{int(cfg.num_layers), cfg.variant()};
    std::map<std::string, std::string> tags;
    for (const auto& s : x_.policies) {
        policies_.push_back(policies::make_policy(s.node, facts, s.source));
        const auto tag = policies_.back()->tag();
        if (tags.count(tag)) input_error(s.source + ": policy setting '" + tag + "' repeats the one at " + tags[tag]);
        tags[tag] = s.source;
        res_.policy_tags.push_back(tag);
    }
    policies::NonePolicy none(facts);

    store::FileInfo info;
    info.format_version  = store::kFormatVersion;
    info.profdit_version = build_version();
    info.git_commit      = build_commit();
    info.torch_version   = TORCH_VERSION;
    info.device          = device_label(pipe_.device());
    info.dtype           = dtype_label(pipe_.dit->compute_dtype());
    info.created         = now_iso();
    info.experiment_yaml = x_.yaml;
    info.shard           = opt_.shard.text();
    info.model           = pipe_.fingerprint;
    res_.file            = opt_.out.empty() ? x_.output : opt_.out;
    std::vector<Pair> pairs;
    for (const auto& p : grid_pairs(x_))
        if (opt_.shard.owns(p.index)) pairs.push_back(p);
    runs_total_ = int(pairs.size() * (policies_.size() + 1));
    res_.pairs  = pairs;

    {
        Stopwatch sw{res_.time.model_s};
        const auto t0 = Clock::now();
        negative_     = pipe_.dit->condition(pipe_.text->encode(pipe_.negative_prompt), pipe_.latent_shape);
        synchronize(pipe_.device());
        negative_ms_  = ms_since(t0);
    }
    for (const auto& pair : pairs) {  // a bad caption is refused before the file is touched
        try {
            prompt(pair.prompt);
        } catch (const InputError& e) {
            input_error(x_.path + ": prompts." + std::to_string(pair.prompt) + ": " + e.what());
        }
    }

    std::optional<store::Store> st;
    {
        Stopwatch sw{res_.time.store_s};
        st.emplace(store::Store::open(res_.file, info, opt_.resume));
    }

    bool warmed = false;
    for (const auto& pair : pairs) {
        std::vector<size_t> todo;
        for (size_t i = 0; i < policies_.size(); ++i)
            if (st->status(run_group(policies_[i]->tag(), pair)) != "done") todo.push_back(i);
        const bool ref_done = st->status(pair.reference) == "done";
        res_.skipped += int(policies_.size() - todo.size()) + int(ref_done);
        run_no_ += int(policies_.size() - todo.size()) + int(ref_done);
        if (todo.empty() && ref_done) continue;

        const auto&   cond  = conditioning(pair.prompt);
        const Prompt& pr    = prompt(pair.prompt);
        const auto    noise = sampling::seeded_noise(pipe_.latent_shape, pair.seed).to(pipe_.device());  // [C, F, H, W]
        if (!warmed) {  // untimed full runs: kernel selection and allocator growth stay out of the timings
            Stopwatch sw{res_.time.model_s};
            for (int w = 0; w < x_.warmup_runs; ++w) {
                sampling::CachedDenoiser d(pipe_.dit, none, x_.sampling.steps);
                sampling::sample_cfg(d, noise, cond, negative_, x_.sampling);
            }
            warmed = true;
        }

        Outcome ref;
        if (ref_done) {
            Stopwatch sw{res_.time.store_s};
            ref.latent = st->read_dataset(pair.reference + "/latent");
            ref.frames = pipe_.decoder->decode(ref.latent.to(pipe_.device())).to(torch::kCPU);
            ref.dit_ms = {st->read_dataset(pair.reference + "/latency/dit_ms").item<double>()};
        } else {
            ++run_no_;
            st->set_status(pair.reference, "running");
            try {
                ref = sample(none, noise, cond, "reference", pair);
            } catch (const NonFiniteError& e) {  // this pair's runs cannot be compared: all fail, the sweep goes on
                std::cerr << "\nprofdit: run " << pair.reference << " failed: " << e.what() << "\n";
                st->set_status(pair.reference, std::string("failed: ") + e.what());
                for (size_t i : todo) {
                    ++run_no_;
                    st->set_status(run_group(policies_[i]->tag(), pair), "failed: its reference " + pair.reference + " failed");
                }
                res_.failed += int(todo.size()) + 1;
                continue;
            }
            auto rec = record(ref, pr, pair);
            rec.str_attrs["policy"] = "none";
            rec.datasets["latent"]  = {ref.latent.to(torch::kFloat32).contiguous(), {}, {}, false};
            if (x_.profile.attention) {
                Stopwatch sw{res_.time.model_s};
                progress("profiling", pair, 0, 1);
                add_profile(rec, profile_reference(pipe_, x_, pair, noise, cond, negative_, ref.frames), x_.profile);
                progress("profiling", pair, 1, 1);
            }
            Stopwatch sw{res_.time.store_s};
            st->write(pair.reference, rec, "done");
            ++res_.computed;
        }
        torch::Tensor mask;
        if (pipe_.foreground_mask) {
            Stopwatch sw{res_.time.metrics_s};
            mask = pipe_.foreground_mask(ref.frames, x_.prompts[size_t(pair.prompt)]);  // [F, H, W]
        }

        for (size_t i : todo) {
            auto&      pol   = *policies_[i];
            const auto group = run_group(pol.tag(), pair);
            ++run_no_;
            try {
                st->set_status(group, "running");
                // the reference itself, not computed twice; but a reference read back by --resume lacks the
                // per-step series, so then `none` is sampled again
                const bool shared = pol.name() == "none" && !ref_done;
                Outcome    o      = shared ? ref : sample(pol, noise, cond, pol.tag(), pair);
                if (shared) progress(pol.tag() + " (the reference)", pair, 1, 1);
                auto rec = record(o, pr, pair);
                rec.str_attrs["policy"]        = pol.name();
                rec.str_attrs["policy_tag"]    = pol.tag();
                rec.str_attrs["policy_params"] = emit(pol.params());
                rec.str_attrs["reference"]     = pair.reference;
                rec.num_attrs["speedup"]       = median(ref.dit_ms) / median(o.dit_ms);
                if (shared) rec.str_attrs["shared_reference"] = "yes";
                if (pipe_.foreground_mask) rec.str_attrs["mask_source"] = pipe_.mask_source;
                add_metrics(rec, o.frames, ref.frames, mask);
                Stopwatch sw{res_.time.store_s};
                st->write(group, rec, "done");
                ++res_.computed;
            } catch (const store::h5::WriteError&) {
                throw;  // the file cannot take more: the sweep ends here (the file keeps its finished runs)
            } catch (const InputError&) {
                st->set_status(group, "failed: bad input");
                throw;
            } catch (const std::exception& e) {
                std::cerr << "\nprofdit: run " << group << " failed: " << e.what() << "\n";
                st->set_status(group, std::string("failed: ") + e.what());
                ++res_.failed;
            }
        }
    }
    res_.time.total_s = std::chrono::duration<double>(Clock::now() - t_start).count();
    return res_;
}

}  // namespace

RunnerResult run_experiment(const Experiment& x, const RunnerOptions& opt) {
    Sweep s(x, opt);
    return s.run();
}

}  // namespace profdit::run
