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
#include "common/device_timer.h"
#include "common/stats.h"
#include "common/error.h"
#include "policies/none.h"
#include "run/budget.h"
#include "run/pipeline.h"
#include "run/non_finite.h"
#include "run/profiler_pass.h"
#include "store/h5.h"
#include "run/recorder.h"
#include "run/non_finite_replay.h"
#include "run/run_metrics.h"
#include "run/run_record.h"
#include "sampling/cached_denoiser.h"
#include "sampling/timed_loop.h"
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
// reference and every policy setting against it, their timed executions interleaved.
class Sweep {
  public:
    Sweep(const Experiment& x, const RunnerOptions& opt) : x_(x), opt_(opt), metrics_(x.metrics) {}
    RunnerResult run();

  private:
    struct Prompt {
        torch::Tensor     text;  // [L, text_dim] text encoder output, on the model's device
        wan::Conditioning cond;  // the DiT's conditioning, held for the pair being run only (14B: ~0.4 GB a branch)
        double            ms = 0;  // encoding and conditioning, this prompt's and the negative prompt's
        bool              conditioned = false;
    };
    // A run (or the reference) of one pair while its executions are interleaved with the pair's others.
    struct Run {
        policies::CachePolicy*           policy = nullptr;
        std::string                      tag;      // its setting's tag (a matched budget's carries the target)
        std::string                      group;    // its store group
        Outcome                          outcome;  // grows by one execution per round
        std::vector<std::vector<double>> call_ms;  // per execution, [S * 2]
        store::Record                    record;   // what the first execution gave: metrics, profile
        bool                             failed = false;
        bool                             shared = false;  // `none`: the reference's own executions
    };
    // What a pair's policy runs compare against.
    struct Reference {
        Run           run;
        torch::Tensor mask;               // uint8 [F, H, W] foreground mask of its frames (models with a mask source)
        bool          from_file = false;  // read back by --resume: no per-step series, so `none` is sampled again
    };

    // setup
    void load_model();
    void make_policies();
    void select_pairs();
    void encode_prompts();
    void open_store();
    void match_budgets();
    BudgetMatch read_budget(const std::string& group, std::vector<BudgetEval>& evals);
    void        write_budget(const std::string& group, const PolicySetting& s, const BudgetMatch& m, const std::vector<BudgetEval>& evals,
                             size_t added);
    // per pair
    void run_pair(const Pair& pair);
    void warm_up(const torch::Tensor& noise, const Prompt& pr);
    bool start_reference(Reference& ref, const Pair& pair, const torch::Tensor& noise, const Prompt& pr);
    void read_reference(Reference& ref, const Pair& pair);
    Run  start_run(size_t setting, const Pair& pair, const torch::Tensor& noise, const Prompt& pr, const Reference& ref);
    bool repeat_executions(Reference& ref, std::vector<Run>& runs, const Pair& pair, const torch::Tensor& noise, const Prompt& pr);
    void finish_reference(Reference& ref, const Pair& pair, const Prompt& pr);
    void finish_run(Run& run, const Reference& ref, const Pair& pair, const Prompt& pr);
    void fail_runs(const std::vector<std::string>& groups, const std::string& reason);
    // helpers
    const Prompt& prompt(int i);
    const Prompt& conditioned_prompt(int i);
    double        calibration_computed(const YAML::Node& node, const std::string& source);
    void          execute(Run& run, const torch::Tensor& noise, const Prompt& pr, const Pair& pair, int execution);
    std::string   locate_non_finite(policies::CachePolicy& p, const torch::Tensor& noise, const Prompt& pr, int flagged_call);
    template <class F>
    bool          guarded(Run& run, F&& step);
    void          progress(const std::string& what, const Pair& pair, int step, int steps);

    const Experiment&                                   x_;
    const RunnerOptions&                                opt_;
    RunMetrics                                          metrics_;
    Pipeline                                            pipe_;
    std::unique_ptr<policies::NonePolicy>               none_;
    std::vector<std::unique_ptr<policies::CachePolicy>> policies_;  // per setting; a budget target's after its match
    std::vector<std::string>                            tags_;      // per setting
    policies::ModelFacts                                facts_;
    std::vector<wan::Conditioning>                      calibration_;  // per calibration prompt, while budgets are matched
    std::vector<Pair>                                   pairs_;
    std::map<int, Prompt>                               prompts_;
    wan::Conditioning                                   negative_;
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
    match_budgets();
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

// Every setting built (its options checked before the file is touched); a budget target's is checked with its
// knob at the search's lower end and built again once match_budgets() found the knob. Tags must be unique.
void Sweep::make_policies() {
    const auto& cfg = pipe_.dit->config();
    facts_ = {int(cfg.num_layers), cfg.variant(), pipe_.fingerprint};
    std::map<std::string, std::string> tags;  // tag -> where it was written
    for (const auto& s : x_.policies) {
        YAML::Node node = s.target ? YAML::Clone(s.node) : s.node;
        if (s.target) {
            const auto* knob   = policies::continuous_knob(node["name"].Scalar());
            node[knob->option] = knob->lo;
        }
        policies_.push_back(policies::make_policy(node, facts_, s.source));
        const auto tag = s.target ? emit(s.node) + " " + s.target->label() : policies_.back()->tag();  // final tag after the match
        if (tags.count(tag)) input_error(s.source + ": policy setting '" + tag + "' repeats the one at " + tags[tag]);
        tags[tag] = s.source;
        tags_.push_back(tag);
    }
    none_ = std::make_unique<policies::NonePolicy>(facts_);
}

void Sweep::select_pairs() {
    for (const auto& p : grid_pairs(x_))
        if (opt_.shard.owns(p.index)) pairs_.push_back(p);
    runs_total_ = int(pairs_.size() * (policies_.size() + 1));
    res_.pairs  = pairs_;
}

// The negative prompt, then every caption of this shard, then the calibration captions when a setting has a
// budget target: a bad caption is refused before the file is touched.
void Sweep::encode_prompts() {
    {
        Stopwatch sw{res_.time.model_s};
        const auto t0 = Clock::now();
        negative_     = pipe_.dit->condition(pipe_.text->encode(pipe_.negative_prompt).to(pipe_.device()), pipe_.latent_shape);
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
    const bool targets = std::any_of(x_.policies.begin(), x_.policies.end(), [](const PolicySetting& s) { return bool(s.target); });
    for (size_t i = 0; targets && i < x_.calibration.prompts.size(); ++i) {
        Stopwatch sw{res_.time.model_s};
        try {
            calibration_.push_back(pipe_.dit->condition(pipe_.text->encode(x_.calibration.prompts[i]).to(pipe_.device()), pipe_.latent_shape));
        } catch (const InputError& e) {
            input_error(x_.path + ": calibration.prompts." + std::to_string(i) + ": " + e.what());
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

// Each budget target's knob, found on the calibration pairs (run/budget.h) or read back from the file's
// /budget group (--resume); the search and its result are written there. Targets of one setting share their
// evaluations, in the experiment's order, so a resumed or sharded sweep finds the same values.
void Sweep::match_budgets() {
    std::map<std::string, std::vector<BudgetEval>> known;  // per setting (its node without the target)
    res_.budgets.assign(x_.policies.size(), "");
    for (size_t i = 0; i < x_.policies.size(); ++i) {
        const auto& s = x_.policies[i];
        if (!s.target) continue;
        const auto*       knob    = policies::continuous_knob(s.node["name"].Scalar());
        const std::string setting = emit(s.node);
        const std::string group   = "/budget/" + std::to_string(i) + "_" + s.node["name"].Scalar() + "_" + s.target->label();
        auto&             evals   = known[setting];
        BudgetMatch       m;
        if (store_->status(group) == "done") {
            m = read_budget(group, evals);
        } else {
            const size_t before = evals.size();
            m = match_budget(s.node["name"].Scalar(), *knob, *s.target, [&](double v) {
                YAML::Node node    = YAML::Clone(s.node);
                node[knob->option] = v;
                const double c     = calibration_computed(node, s.source);
                if (!opt_.quiet)
                    bar_.update("budget " + s.node["name"].Scalar() + " " + s.target->label() + ": " + knob->option + " " + policies::tag_number(v) +
                                    " -> " + s.target->text(c), false);
                return c;
            }, evals, s.source);
            write_budget(group, s, m, evals, evals.size() - before);
        }
        YAML::Node node    = YAML::Clone(s.node);
        node[knob->option] = m.value;
        policies_[i]       = policies::make_policy(node, facts_, s.source);
        tags_[i]           = policies_[i]->tag() + "-" + s.target->label();
        res_.budgets[i]    = knob->option + " " + policies::tag_number(m.value) + " for " + s.target->label() + ": " + s.target->text(m.computed) +
                          " on the calibration pairs";
        if (!opt_.quiet) bar_.update("budget " + tags_[i] + ": " + res_.budgets[i], true);
    }
    calibration_.clear();
    std::map<std::string, size_t> seen;
    for (size_t i = 0; i < tags_.size(); ++i) {
        if (seen.count(tags_[i]))
            input_error(x_.policies[i].source + ": policy setting '" + tags_[i] + "' repeats the one at " + x_.policies[seen[tags_[i]]].source);
        seen[tags_[i]] = i;
    }
    res_.policy_tags = tags_;
}

// A finished search read back (--resume): the knob's value and the setting's evaluations so far.
BudgetMatch Sweep::read_budget(const std::string& group, std::vector<BudgetEval>& evals) {
    Stopwatch  sw{res_.time.store_s};
    const auto k = store_->read_dataset(group + "/knob"), c = store_->read_dataset(group + "/computed");
    evals.clear();
    for (int64_t j = 0; j < k.numel(); ++j) evals.push_back({k[j].item<double>(), c[j].item<double>()});
    BudgetMatch m;
    m.knob     = store_->read_str_attr(group, "knob");
    m.value    = store_->read_num_attr(group, "value");
    m.computed = store_->read_num_attr(group, "computed");
    return m;
}

void Sweep::write_budget(const std::string& group, const PolicySetting& s, const BudgetMatch& m, const std::vector<BudgetEval>& evals,
                         size_t added) {
    store::Record rec;
    rec.str_attrs = {{"policy", s.node["name"].Scalar()}, {"setting", emit(s.node)}, {"knob", m.knob}, {"target_kind", s.target->kind}};
    rec.num_attrs = {{"target", s.target->value}, {"tolerance", s.target->tolerance}, {"value", m.value}, {"computed", m.computed},
                     {"achieved", s.target->in_units(m.computed)}};
    rec.int_attrs = {{"evaluations", int64_t(added)}};
    std::vector<double> k, c;
    for (const auto& e : evals) k.push_back(e.knob), c.push_back(e.computed);
    rec.datasets["knob"]     = {series_tensor(k, {int64_t(k.size())}), {}, {{"note", "every evaluation of this setting so far, in order (earlier targets' included)"}}, false};
    rec.datasets["computed"] = {series_tensor(c, {int64_t(c.size())}), {}, {{"note", "computed FLOPs / full FLOPs over the calibration pairs"}}, false};
    Stopwatch sw{res_.time.store_s};
    store_->write(group, rec, "done");
}

// ---- per pair ----

// Round 1: the reference, then every policy run, each sampled, decoded, compared and its record prepared.
// Rounds 2..repeats: every sampling loop again in the same order, for the timings only, so machine drift
// hits the reference and the runs alike. Each record gets its medians and is written right after its run's
// last execution (with repeats 1, as soon as the run is done).
void Sweep::run_pair(const Pair& pair) {
    std::vector<size_t> todo;  // policy settings not yet done for this pair
    for (size_t i = 0; i < policies_.size(); ++i)
        if (store_->status(run_group(tags_[i], pair)) != "done") todo.push_back(i);
    const bool ref_done = store_->status(pair.reference) == "done";
    const int  done     = int(policies_.size() - todo.size()) + int(ref_done);
    res_.skipped += done;
    run_no_ += done;
    if (todo.empty() && ref_done) return;

    const Prompt& pr    = conditioned_prompt(pair.prompt);
    const auto    noise = sampling::seeded_noise(pipe_.latent_shape, pair.seed).to(pipe_.device());  // [C, F, H, W]
    warm_up(noise, pr);
    Reference ref;
    if (ref_done) {
        read_reference(ref, pair);
    } else if (!start_reference(ref, pair, noise, pr)) {  // this pair's runs cannot be compared: all fail, the sweep goes on
        std::vector<std::string> groups;
        for (size_t i : todo) groups.push_back(run_group(tags_[i], pair));
        run_no_ += int(groups.size());
        fail_runs(groups, "its reference " + pair.reference + " failed");
        return;
    }
    if (pipe_.foreground_mask) {
        Stopwatch sw{res_.time.metrics_s};
        ref.mask = pipe_.foreground_mask(ref.run.outcome.frames.to(torch::kCPU), x_.prompts[size_t(pair.prompt)]);  // [F, H, W]
    }
    const bool one_round = x_.repeats == 1;
    if (one_round && !ref.from_file) finish_reference(ref, pair, pr);
    std::vector<Run> runs;
    for (size_t i : todo) {
        runs.push_back(start_run(i, pair, noise, pr, ref));
        if (one_round) finish_run(runs.back(), ref, pair, pr);
    }
    repeat_executions(ref, runs, pair, noise, pr);
}

// Untimed full runs before the sweep's first timed one: kernel selection and allocator growth stay out of the timings.
void Sweep::warm_up(const torch::Tensor& noise, const Prompt& pr) {
    if (warmed_) return;
    Stopwatch sw{res_.time.model_s};
    sampling::CachedDenoiser d(pipe_.dit, *none_, x_.sampling.steps);
    sampling::warm_up(d, noise, pr.cond, negative_, x_.sampling, x_.warmup_runs);
    warmed_ = true;
}

// The reference's first execution and its profile (when asked); false (and the reference marked failed) when
// a model output is not finite.
bool Sweep::start_reference(Reference& ref, const Pair& pair, const torch::Tensor& noise, const Prompt& pr) {
    ++run_no_;
    ref.run.policy = none_.get();
    ref.run.group  = pair.reference;
    store_->set_status(pair.reference, "running");
    try {
        execute(ref.run, noise, pr, pair, 0);
    } catch (const NonFiniteError& e) {
        std::cerr << "\nprofdit: run " << pair.reference << " failed: " << e.what() << "\n";
        store_->set_status(pair.reference, std::string("failed: ") + e.what());
        ++res_.failed;
        return false;
    }
    if (x_.profile.attention) {
        Stopwatch sw{res_.time.model_s};
        progress("profiling", pair, 0, 1);
        add_profile(ref.run.record, profile_reference(pipe_, x_, pair, noise, pr.cond, negative_, ref.run.outcome.frames.to(torch::kCPU)), x_.profile);
        progress("profiling", pair, 1, 1);
    }
    return true;
}

// A reference finished by an earlier process (--resume): its latent decoded again, its DiT-loop time as stored.
void Sweep::read_reference(Reference& ref, const Pair& pair) {
    Stopwatch sw{res_.time.store_s};
    auto& o       = ref.run.outcome;
    ref.from_file = true;
    o.latent      = store_->read_dataset(pair.reference + "/latent");
    o.frames      = pipe_.decoder->decode(o.latent.to(pipe_.device()));  // [F, 3, H, W]
    o.dit_ms      = {store_->read_dataset(pair.reference + "/latency/dit_ms").item<double>()};
}

// A policy setting's first execution on the pair, compared with the reference (the metrics go into its record).
Sweep::Run Sweep::start_run(size_t setting, const Pair& pair, const torch::Tensor& noise, const Prompt& pr, const Reference& ref) {
    auto& pol = *policies_[setting];
    Run   run;
    run.policy = &pol;
    run.tag    = tags_[setting];
    run.group  = run_group(run.tag, pair);
    // the reference itself, not computed twice; but a reference read back by --resume lacks the per-step
    // series, so then `none` is sampled again
    run.shared = pol.name() == "none" && !ref.from_file;
    ++run_no_;
    guarded(run, [&] {
        store_->set_status(run.group, "running");
        if (run.shared) progress(run.tag + " (the reference)", pair, 1, 1);
        else execute(run, noise, pr, pair, 0);
        Stopwatch sw{res_.time.metrics_s};
        metrics_.add(run.record, (run.shared ? ref.run : run).outcome.frames, ref.run.outcome.frames, ref.mask);
        if (!x_.video) run.outcome.frames = torch::Tensor();  // compared: only a video record needs them again
    });
    return run;
}

// Executions 2..repeats of the reference and of every run still standing, interleaved; in the last round
// each record is written after its execution. False when the reference failed (then the pair's runs are
// marked failed).
bool Sweep::repeat_executions(Reference& ref, std::vector<Run>& runs, const Pair& pair, const torch::Tensor& noise, const Prompt& pr) {
    const int last = x_.repeats - 1;
    for (int e = 1; e <= last; ++e) {
        if (!ref.from_file) {
            try {
                execute(ref.run, noise, pr, pair, e);
                if (e == last) finish_reference(ref, pair, pr);
            } catch (const NonFiniteError& err) {
                std::cerr << "\nprofdit: run " << pair.reference << " failed: " << err.what() << "\n";
                store_->set_status(pair.reference, std::string("failed: ") + err.what());
                ++res_.failed;
                std::vector<std::string> groups;
                for (const auto& run : runs)
                    if (!run.failed) groups.push_back(run.group);
                fail_runs(groups, "its reference " + pair.reference + " failed");
                return false;
            }
        }
        for (auto& run : runs) {
            if (!run.failed && !run.shared) guarded(run, [&] { execute(run, noise, pr, pair, e); });
            if (e == last) finish_run(run, ref, pair, pr);
        }
    }
    return true;
}

void Sweep::finish_reference(Reference& ref, const Pair& pair, const Prompt& pr) {
    auto& o   = ref.run.outcome;
    o.call_ms = median_per_call(ref.run.call_ms);
    auto rec  = outcome_record(o, x_, pair, pr.ms, pipe_.random_weights);
    for (auto& [path, ds] : ref.run.record.datasets) rec.datasets[path] = ds;  // the profile
    rec.str_attrs["policy"] = "none";
    rec.datasets["latent"]  = {o.latent.to(torch::kFloat32).contiguous(), {}, {}, false};
    Stopwatch sw{res_.time.store_s};
    store_->write(pair.reference, rec, "done");
    ++res_.computed;
}

// The run's record with its timings (medians of its executions, the speedup against the reference's) and
// the metrics of its first execution, written.
void Sweep::finish_run(Run& run, const Reference& ref, const Pair& pair, const Prompt& pr) {
    if (run.failed) return;
    guarded(run, [&] {
        auto& pol = *run.policy;
        if (!run.shared) run.outcome.call_ms = median_per_call(run.call_ms);
        const Outcome& o   = run.shared ? ref.run.outcome : run.outcome;
        auto           rec = outcome_record(o, x_, pair, pr.ms, pipe_.random_weights);
        for (auto& [path, ds] : run.record.datasets) rec.datasets[path] = ds;  // the metrics
        const auto speedups            = execution_speedups(ref.run.outcome.dit_ms, o.dit_ms);
        rec.str_attrs["policy"]        = pol.name();
        rec.str_attrs["policy_tag"]    = run.tag;
        rec.str_attrs["policy_params"] = emit(pol.params());
        rec.str_attrs["reference"]     = pair.reference;
        rec.num_attrs["speedup"]       = median(ref.run.outcome.dit_ms) / median(o.dit_ms);
        rec.datasets["latency/speedup_repeats"] = {series_tensor(speedups, {int64_t(speedups.size())}), {},
                                                   {{"note", "reference dit_ms / this run's dit_ms, per execution (interleaved)"}}, false};
        if (run.shared) rec.str_attrs["shared_reference"] = "yes";
        if (pipe_.foreground_mask) rec.str_attrs["mask_source"] = pipe_.mask_source;
        Stopwatch sw{res_.time.store_s};
        store_->write(run.group, rec, "done");
        ++res_.computed;
    });
}

// Marks the given runs failed with `reason`.
void Sweep::fail_runs(const std::vector<std::string>& groups, const std::string& reason) {
    for (const auto& g : groups) store_->set_status(g, "failed: " + reason);
    res_.failed += int(groups.size());
}

// ---- helpers ----

// The computed fraction (computed FLOPs / full FLOPs) of the policy setting `node` over the calibration pairs,
// prompt-major (their conditionings were built by encode_prompts and are held while budgets are matched).
double Sweep::calibration_computed(const YAML::Node& node, const std::string& source) {
    Stopwatch  sw{res_.time.model_s};
    const auto& c = x_.calibration;
    auto   pol = policies::make_policy(node, facts_, source);
    double computed = 0, full = 0;
    for (size_t i = 0; i < c.prompts.size(); ++i) {
        for (uint64_t seed : c.seeds) {
            pol->reset();
            sampling::CachedDenoiser d(pipe_.dit, *pol, x_.sampling.steps);
            sampling::sample_cfg_on_device(d, sampling::seeded_noise(pipe_.latent_shape, seed).to(pipe_.device()), calibration_[i], negative_, x_.sampling);
            computed += d.stats().flops_computed;
            full += d.stats().flops_full;
        }
    }
    return computed / full;
}

const Sweep::Prompt& Sweep::prompt(int i) {
    auto it = prompts_.find(i);
    if (it != prompts_.end()) return it->second;
    Stopwatch  sw{res_.time.model_s};
    const auto t0 = Clock::now();
    Prompt     p;
    p.text = pipe_.text->encode(x_.prompts[size_t(i)]).to(pipe_.device());  // [L, text_dim]
    synchronize(pipe_.device());
    p.ms = ms_since(t0) + negative_ms_;
    return prompts_.emplace(i, p).first->second;
}

// The prompt with its DiT conditioning (text embedding, cross-attention K/V, RoPE) built, before its timed
// runs; other prompts' conditionings are dropped.
const Sweep::Prompt& Sweep::conditioned_prompt(int i) {
    prompt(i);
    Prompt& p = prompts_.at(i);
    if (!p.cond.context.defined()) {
        for (auto& [j, other] : prompts_) other.cond = wan::Conditioning{};
        Stopwatch  sw{res_.time.model_s};
        const auto t0 = Clock::now();
        p.cond = pipe_.dit->condition(p.text, pipe_.latent_shape);
        synchronize(pipe_.device());
        if (!p.conditioned) p.ms += ms_since(t0);
        p.conditioned = true;
    }
    return p;
}

void Sweep::progress(const std::string& what, const Pair& pair, int step, int steps) {
    if (opt_.quiet) return;
    bar_.update("run " + std::to_string(run_no_) + "/" + std::to_string(runs_total_) + " " + what + " prompt " + std::to_string(pair.prompt) +
                    " seed " + std::to_string(pair.seed) + " " + ProgressLine::bar(step, steps),
                step == steps);
}

// Runs `step` for `run`: a runtime failure marks the run failed (the sweep goes on); bad input and a file
// that cannot take more end the sweep.
template <class F>
bool Sweep::guarded(Run& run, F&& step) {
    try {
        step();
        return true;
    } catch (const store::h5::WriteError&) {
        throw;  // the file cannot take more: the sweep ends here (the file keeps its finished runs)
    } catch (const InputError&) {
        store_->set_status(run.group, "failed: bad input");
        throw;
    } catch (const std::exception& e) {
        std::cerr << "\nprofdit: run " << run.group << " failed: " << e.what() << "\n";
        store_->set_status(run.group, std::string("failed: ") + e.what());
        run.failed = true;
        ++res_.failed;
        return false;
    }
}

// One execution of a run: its sampling loop, timed (sampling::timed_sample: only the loop is inside the
// timed region; NaN/Inf flags and the similarity stay on the device until after it), then its decode. The
// first execution keeps the latent, the frames, the series and the cache statistics. A flagged NaN/Inf
// output throws NonFiniteError after the loop, located by an untimed replay.
void Sweep::execute(Run& run, const torch::Tensor& noise, const Prompt& pr, const Pair& pair, int execution) {
    Stopwatch  sw{res_.time.model_s};
    auto&      p     = *run.policy;
    auto&      o     = run.outcome;
    const int  steps = x_.sampling.steps;
    const bool first = execution == 0;
    const auto label = run.group == pair.reference ? std::string("reference") : run.tag;
    const bool rss_reset = reset_peak_memory(pipe_.device());
    p.reset();
    sampling::CachedDenoiser cached(pipe_.dit, p, steps);
    sampling::TimedDenoiser  timed(cached, pipe_.device());
    RecordingDenoiser        rec(timed, steps, x_.profile.similarity && first);
    auto ts = sampling::timed_sample(rec, pipe_.device(), noise, pr.cond, negative_, x_.sampling, [&](int i, int n) {
        progress(first ? label : label + " repeat " + std::to_string(execution + 1) + "/" + std::to_string(x_.repeats), pair, i, n);
    });
    ++res_.sampling_runs;
    res_.model_calls += int64_t(2 * steps);
    const int flagged = rec.first_non_finite();
    if (flagged >= 0) throw NonFiniteError(locate_non_finite(p, noise, pr, flagged));
    if (!all_finite(ts.result.final_latent))  // every model output was finite: the sampler's own update made it
        throw NonFiniteError("NaN/Inf in the final latent after step " + std::to_string(steps - 1) + " of " + std::to_string(steps) +
                             " (the sampler's update; every model output was finite)");
    DeviceTimer decode(pipe_.device());
    decode.start();
    auto frames = pipe_.decoder->decode(ts.result.final_latent.to(pipe_.device()));  // [F, 3, H, W]
    decode.stop();
    o.dit_ms.push_back(ts.loop_ms);
    o.decode_ms.push_back(decode.read_ms().at(0));
    run.call_ms.push_back(timed.call_ms());
    o.timer = sampling::timer_name(pipe_.device());
    const auto mem = read_peak_memory(pipe_.device(), rss_reset);
    o.memory       = first ? mem : max_peak(o.memory, mem);
    if (first) {
        o.latent = ts.result.final_latent;
        o.frames = frames;  // on the run's device: the metrics are computed there
        o.rel_l1 = rec.rel_l1();
        o.cosine = rec.cosine();
        o.stats  = cached.stats();
    }
}

// The message for a loop whose flags found a NaN/Inf model output: the run sampled again, untimed, with
// every output checked as it comes, so the first bad call is named with where in the model it started.
std::string Sweep::locate_non_finite(policies::CachePolicy& p, const torch::Tensor& noise, const Prompt& pr, int flagged_call) {
    p.reset();
    sampling::CachedDenoiser cached(pipe_.dit, p, x_.sampling.steps);
    return replay_non_finite(cached, *pipe_.dit, noise, pr.cond, negative_, x_.sampling, flagged_call);
}

}  // namespace

RunnerResult run_experiment(const Experiment& x, const RunnerOptions& opt) {
    Sweep s(x, opt);
    return s.run();
}

}  // namespace profdit::run
