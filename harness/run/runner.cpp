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
#include "policies/none.h"
#include "run/pipeline.h"
#include "run/non_finite.h"
#include "run/profiler_pass.h"
#include "store/h5.h"
#include "run/recorder.h"
#include "run/run_metrics.h"
#include "run/run_record.h"
#include "sampling/cached_denoiser.h"
#include "store/store.h"

namespace profdit::run {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

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

// One sweep, in the order run() calls its steps: load the model and the metrics, build the policy
// settings, pick this shard's pairs, encode the prompts, open the store, then per (prompt, seed) pair the
// reference and every policy setting against it.
class Sweep {
  public:
    Sweep(const Experiment& x, const RunnerOptions& opt) : x_(x), opt_(opt), metrics_(x.metrics) {}
    RunnerResult run();

  private:
    struct Prompt {
        torch::Tensor cond;  // [L, text_dim] on the model's device
        double        ms = 0;
    };
    // What a pair's policy runs compare against.
    struct Reference {
        Outcome       outcome;
        torch::Tensor mask;      // uint8 [F, H, W] foreground mask of its frames (models with a mask source)
        bool          from_file = false;  // read back by --resume: no per-step series, so `none` is sampled again
    };

    // setup
    void load_model();
    void make_policies();
    void select_pairs();
    void encode_prompts();
    void open_store();
    // per pair
    void                     run_pair(const Pair& pair);
    void                     warm_up(const torch::Tensor& noise, const Prompt& pr);
    std::optional<Reference> compute_reference(const Pair& pair, const torch::Tensor& noise, const Prompt& pr, const std::vector<size_t>& todo);
    Reference                read_reference(const Pair& pair);
    void                     run_policy(policies::CachePolicy& pol, const Pair& pair, const torch::Tensor& noise, const Prompt& pr, const Reference& ref);
    // helpers
    const Prompt& prompt(int i);
    Outcome       sample(policies::CachePolicy& p, const torch::Tensor& noise, const Prompt& pr, const std::string& label, const Pair& pair);
    void          progress(const std::string& what, const Pair& pair, int step, int steps);

    const Experiment&                                   x_;
    const RunnerOptions&                                opt_;
    RunMetrics                                          metrics_;
    Pipeline                                            pipe_;
    std::unique_ptr<policies::NonePolicy>               none_;
    std::vector<std::unique_ptr<policies::CachePolicy>> policies_;
    std::vector<Pair>                                   pairs_;
    std::map<int, Prompt>                               prompts_;
    torch::Tensor                                       negative_;  // [L, text_dim]
    double                                              negative_ms_ = 0;
    std::optional<store::Store>                         store_;
    bool                                                warmed_ = false;
    RunnerResult                                        res_;
    int                                                 run_no_ = 0, runs_total_ = 0;
    ProgressLine                                        bar_{std::cerr, ProgressLine::stderr_is_terminal()};
};

RunnerResult Sweep::run() {
    const auto t_start = Clock::now();
    load_model();
    make_policies();
    select_pairs();
    encode_prompts();
    open_store();
    for (const auto& pair : pairs_) run_pair(pair);
    res_.time.total_s = std::chrono::duration<double>(Clock::now() - t_start).count();
    return res_;
}

// ---- setup ----

void Sweep::load_model() {
    set_cpu_threads(x_.model.threads);
    {
        Stopwatch sw{res_.time.model_s};
        pipe_ = load_pipeline(x_.model, x_.path);
    }
    if (metrics_.wants("region") && !pipe_.foreground_mask)
        input_error(x_.path + ": metrics: region needs a foreground mask source, which model '" + pipe_.label + "' does not have");
    check_mask_source(pipe_, x_);
}

void Sweep::make_policies() {
    const auto& cfg = pipe_.dit->config();
    const policies::ModelFacts facts{int(cfg.num_layers), cfg.variant()};
    std::map<std::string, std::string> tags;  // tag -> where it was written
    for (const auto& s : x_.policies) {
        policies_.push_back(policies::make_policy(s.node, facts, s.source));
        const auto tag = policies_.back()->tag();
        if (tags.count(tag)) input_error(s.source + ": policy setting '" + tag + "' repeats the one at " + tags[tag]);
        tags[tag] = s.source;
        res_.policy_tags.push_back(tag);
    }
    none_ = std::make_unique<policies::NonePolicy>(facts);
}

void Sweep::select_pairs() {
    for (const auto& p : grid_pairs(x_))
        if (opt_.shard.owns(p.index)) pairs_.push_back(p);
    runs_total_ = int(pairs_.size() * (policies_.size() + 1));
    res_.pairs  = pairs_;
}

// The negative prompt, then every caption of this shard: a bad caption is refused before the file is touched.
void Sweep::encode_prompts() {
    {
        Stopwatch sw{res_.time.model_s};
        const auto t0 = Clock::now();
        negative_     = pipe_.text->encode(pipe_.negative_prompt).to(pipe_.device());  // [L, text_dim]
        synchronize(pipe_.device());
        negative_ms_  = ms_since(t0);
    }
    for (const auto& pair : pairs_) {
        try {
            prompt(pair.prompt);
        } catch (const InputError& e) {
            input_error(x_.path + ": prompts." + std::to_string(pair.prompt) + ": " + e.what());
        }
    }
}

void Sweep::open_store() {
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
    Stopwatch sw{res_.time.store_s};
    store_.emplace(store::Store::open(res_.file, info, opt_.resume));
}

// ---- per pair ----

void Sweep::run_pair(const Pair& pair) {
    std::vector<size_t> todo;  // policy settings not yet done for this pair
    for (size_t i = 0; i < policies_.size(); ++i)
        if (store_->status(run_group(policies_[i]->tag(), pair)) != "done") todo.push_back(i);
    const bool ref_done = store_->status(pair.reference) == "done";
    const int  done     = int(policies_.size() - todo.size()) + int(ref_done);
    res_.skipped += done;
    run_no_ += done;
    if (todo.empty() && ref_done) return;

    const Prompt& pr    = prompt(pair.prompt);
    const auto    noise = sampling::seeded_noise(pipe_.latent_shape, pair.seed).to(pipe_.device());  // [C, F, H, W]
    warm_up(noise, pr);
    auto ref = ref_done ? std::optional<Reference>(read_reference(pair)) : compute_reference(pair, noise, pr, todo);
    if (!ref) return;  // the reference failed, and with it every run of the pair
    if (pipe_.foreground_mask) {
        Stopwatch sw{res_.time.metrics_s};
        ref->mask = pipe_.foreground_mask(ref->outcome.frames, x_.prompts[size_t(pair.prompt)]);  // [F, H, W]
    }
    for (size_t i : todo) run_policy(*policies_[i], pair, noise, pr, *ref);
}

// Untimed full runs before the sweep's first timed one: kernel selection and allocator growth stay out of the timings.
void Sweep::warm_up(const torch::Tensor& noise, const Prompt& pr) {
    if (warmed_) return;
    Stopwatch sw{res_.time.model_s};
    for (int w = 0; w < x_.warmup_runs; ++w) {
        sampling::CachedDenoiser d(pipe_.dit, *none_, x_.sampling.steps);
        sampling::sample_cfg(d, noise, pr.cond, negative_, x_.sampling);
    }
    warmed_ = true;
}

// Samples and writes the pair's reference (with its profile, when asked). When it fails, it and every run
// still to do for the pair are marked failed and nothing is returned: the sweep goes on with the next pair.
std::optional<Sweep::Reference> Sweep::compute_reference(const Pair& pair, const torch::Tensor& noise, const Prompt& pr,
                                                         const std::vector<size_t>& todo) {
    ++run_no_;
    store_->set_status(pair.reference, "running");
    Reference ref;
    try {
        ref.outcome = sample(*none_, noise, pr, "reference", pair);
    } catch (const NonFiniteError& e) {  // this pair's runs cannot be compared: all fail, the sweep goes on
        std::cerr << "\nprofdit: run " << pair.reference << " failed: " << e.what() << "\n";
        store_->set_status(pair.reference, std::string("failed: ") + e.what());
        for (size_t i : todo) {
            ++run_no_;
            store_->set_status(run_group(policies_[i]->tag(), pair), "failed: its reference " + pair.reference + " failed");
        }
        res_.failed += int(todo.size()) + 1;
        return std::nullopt;
    }
    auto rec = outcome_record(ref.outcome, x_, pair, pr.ms, pipe_.random_weights);
    rec.str_attrs["policy"] = "none";
    rec.datasets["latent"]  = {ref.outcome.latent.to(torch::kFloat32).contiguous(), {}, {}, false};
    if (x_.profile.attention) {
        Stopwatch sw{res_.time.model_s};
        progress("profiling", pair, 0, 1);
        add_profile(rec, profile_reference(pipe_, x_, pair, noise, pr.cond, negative_, ref.outcome.frames), x_.profile);
        progress("profiling", pair, 1, 1);
    }
    Stopwatch sw{res_.time.store_s};
    store_->write(pair.reference, rec, "done");
    ++res_.computed;
    return ref;
}

// A reference finished by an earlier process (--resume): its latent decoded again, its DiT-loop time as stored.
Sweep::Reference Sweep::read_reference(const Pair& pair) {
    Stopwatch sw{res_.time.store_s};
    Reference ref;
    ref.from_file      = true;
    ref.outcome.latent = store_->read_dataset(pair.reference + "/latent");
    ref.outcome.frames = pipe_.decoder->decode(ref.outcome.latent.to(pipe_.device())).to(torch::kCPU);  // [F, 3, H, W]
    ref.outcome.dit_ms = {store_->read_dataset(pair.reference + "/latency/dit_ms").item<double>()};
    return ref;
}

// One policy setting on the pair, compared with its reference and written. A runtime failure marks the run
// failed and the sweep goes on; bad input and a file that cannot take more end the sweep.
void Sweep::run_policy(policies::CachePolicy& pol, const Pair& pair, const torch::Tensor& noise, const Prompt& pr, const Reference& ref) {
    const auto group = run_group(pol.tag(), pair);
    ++run_no_;
    try {
        store_->set_status(group, "running");
        // the reference itself, not computed twice; but a reference read back by --resume lacks the
        // per-step series, so then `none` is sampled again
        const bool shared = pol.name() == "none" && !ref.from_file;
        Outcome    o      = shared ? ref.outcome : sample(pol, noise, pr, pol.tag(), pair);
        if (shared) progress(pol.tag() + " (the reference)", pair, 1, 1);
        auto rec = outcome_record(o, x_, pair, pr.ms, pipe_.random_weights);
        rec.str_attrs["policy"]        = pol.name();
        rec.str_attrs["policy_tag"]    = pol.tag();
        rec.str_attrs["policy_params"] = emit(pol.params());
        rec.str_attrs["reference"]     = pair.reference;
        rec.num_attrs["speedup"]       = median(ref.outcome.dit_ms) / median(o.dit_ms);
        if (shared) rec.str_attrs["shared_reference"] = "yes";
        if (pipe_.foreground_mask) rec.str_attrs["mask_source"] = pipe_.mask_source;
        {
            Stopwatch sw{res_.time.metrics_s};
            metrics_.add(rec, o.frames, ref.outcome.frames, ref.mask);
        }
        Stopwatch sw{res_.time.store_s};
        store_->write(group, rec, "done");
        ++res_.computed;
    } catch (const store::h5::WriteError&) {
        throw;  // the file cannot take more: the sweep ends here (the file keeps its finished runs)
    } catch (const InputError&) {
        store_->set_status(group, "failed: bad input");
        throw;
    } catch (const std::exception& e) {
        std::cerr << "\nprofdit: run " << group << " failed: " << e.what() << "\n";
        store_->set_status(group, std::string("failed: ") + e.what());
        ++res_.failed;
    }
}

// ---- helpers ----

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

void Sweep::progress(const std::string& what, const Pair& pair, int step, int steps) {
    if (opt_.quiet) return;
    bar_.update("run " + std::to_string(run_no_) + "/" + std::to_string(runs_total_) + " " + what + " prompt " + std::to_string(pair.prompt) +
                    " seed " + std::to_string(pair.seed) + " " + ProgressLine::bar(step, steps),
                step == steps);
}

Outcome Sweep::sample(policies::CachePolicy& p, const torch::Tensor& noise, const Prompt& pr, const std::string& label, const Pair& pair) {
    Stopwatch sw{res_.time.model_s};
    Outcome   o;
    const bool rss_reset = reset_peak_memory(pipe_.device());
    std::vector<std::vector<double>> calls;
    const int steps = x_.sampling.steps;
    for (int r = 0; r < x_.repeats; ++r) {
        p.reset();
        sampling::CachedDenoiser cached(pipe_.dit, p, steps);
        RecordingDenoiser        rec(cached, steps, x_.profile.similarity && r == 0,
                                     [this](const torch::Tensor& latent, int64_t t, const torch::Tensor& context) {
                                         return first_non_finite_stage(*pipe_.dit, latent, t, context);
                                     });
        const auto               t0 = Clock::now();
        auto res = sampling::sample_cfg(rec, noise, pr.cond, negative_, x_.sampling, [&](int i, int n) {
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

}  // namespace

RunnerResult run_experiment(const Experiment& x, const RunnerOptions& opt) {
    Sweep s(x, opt);
    return s.run();
}

}  // namespace profdit::run
