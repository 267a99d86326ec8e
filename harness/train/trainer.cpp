#include "train/trainer.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <ATen/CPUGeneratorImpl.h>

#include "common/build_info.h"
#include "common/device.h"
#include "common/draw.h"
#include "common/error.h"
#include "common/threads.h"
#include "io/safetensors.h"
#include "wan/checkpoint.h"
#include "wan/weight_errors.h"

namespace profdit::train {

namespace fs = std::filesystem;

Trainer::Trainer(TrainConfig cfg) : cfg_(std::move(cfg)), device_(parse_device(cfg_.device)), tok_(cfg_.world) {
    if (cfg_.workers > 1 && !device_.is_cpu())
        input_error("train.workers: " + std::to_string(cfg_.workers) + " replicas are for the CPU; on " + cfg_.device + " use workers: 1");
    set_cpu_threads(cfg_.workers > 1 ? 1 : cfg_.threads);
    torch::manual_seed(cfg_.seed);
    for (int r = 0; r < cfg_.workers; ++r) {
        Replica rep;
        rep.dit = wan::WanModel(cfg_.dit);
        rep.enc = world::CaptionEncoder(tok_.vocab_size(), cfg_.dit.text_dim, cfg_.dit.text_len, cfg_.text_layers, cfg_.text_heads);
        for (auto& p : rep.dit->named_parameters()) rep.params.push_back(p.value());
        for (auto& p : rep.enc->named_parameters()) rep.params.push_back(p.value());
        if (r == 0) {
            for (auto& p : rep.dit->named_parameters()) names_.push_back("dit." + p.key());
            for (auto& p : rep.enc->named_parameters()) names_.push_back("text_encoder." + p.key());
        }
        replicas_.push_back(std::move(rep));
    }
    auto& master = replicas_[0];
    torch::NoGradGuard g;
    if (cfg_.weight_init == "wan2.1") {
        wan::init_weights(master.dit, cfg_.seed);
    } else {
        wan::init_random(master.dit, cfg_.seed);
        master.dit->head->head->weight.zero_();
        master.dit->head->head->bias.zero_();
    }
    if (!cfg_.init.empty()) load_init(master.params);
    for (auto& rep : replicas_) {
        rep.dit->to(device_);
        rep.enc->to(device_);
        for (size_t i = 0; i < rep.params.size(); ++i) rep.params[i].copy_(master.params[i]);
    }
    for (const auto& p : master.params) ema_.push_back(p.detach().clone());
    opt_ = std::make_unique<AdamW>(master.params, AdamW::Options{cfg_.beta1, cfg_.beta2, 1e-8, cfg_.weight_decay});
}

Trainer::Batch Trainer::make_batch(int step) const {
    const auto& w = cfg_.world;
    const int   B = cfg_.batch;
    auto gen = at::detail::createCPUGenerator(cfg_.seed * 1000003ull + uint64_t(step) + 1);
    std::mt19937_64 rng(cfg_.seed * 7919ull + uint64_t(step));
    std::vector<torch::Tensor> x0s;
    std::vector<std::vector<int64_t>> ids;
    for (int i = 0; i < B; ++i) {
        const auto scene = world::sample_scene(w, rng());
        x0s.push_back(world::render(scene, w).frames.permute({1, 0, 2, 3}));      // [3, F, H, W]
        ids.push_back(tok_.encode(uniform01(rng) < cfg_.caption_dropout ? "" : world::caption(scene)));
    }
    auto x0    = torch::stack(x0s);                                                // [B, 3, F, H, W]
    auto noise = at::normal(0.0, 1.0, x0.sizes(), gen);                           // [B, 3, F, H, W]
    auto u     = at::normal(cfg_.logit_mean, cfg_.logit_std, {B}, gen);            // [B]
    auto s     = torch::sigmoid(u.to(torch::kFloat64));                            // [B]
    s          = cfg_.shift * s / (1 + (cfg_.shift - 1) * s);
    Batch b;
    b.t        = (s * 1000).to(torch::kInt64).clamp(0, 999);                       // [B]
    auto sf    = (b.t.to(torch::kFloat32) / 1000.0f).view({B, 1, 1, 1, 1});        // [B, 1, 1, 1, 1]
    b.xt       = (1 - sf) * x0 + sf * noise;                                        // [B, 3, F, H, W]
    b.target   = noise - x0;                                                        // [B, 3, F, H, W]
    const int64_t L = cfg_.dit.text_len;
    b.tokens = torch::zeros({B, L}, torch::kInt64);                                // [B, text_len], 0 = padding
    for (int i = 0; i < B; ++i)
        for (size_t j = 0; j < ids[i].size() && int64_t(j) < L; ++j) b.tokens[i][j] = ids[i][j];
    return b;
}

double Trainer::backward(const Batch& b) {
    const int64_t W = cfg_.workers, n = cfg_.batch / W;
    std::vector<double> part(W);
    auto shard = [&](int64_t r) {
        auto& rep = replicas_[r];
        for (auto& p : rep.params) p.mutable_grad() = torch::Tensor();
        auto slice = [&](const torch::Tensor& x) { return x.narrow(0, r * n, n).to(device_); };
        auto ctx   = rep.enc->forward(slice(b.tokens));                            // [n, text_len, text_dim]
        auto pred  = rep.dit->forward_batch(slice(b.xt), slice(b.t), ctx);         // [n, 3, F, H, W]
        auto loss  = torch::mse_loss(pred, slice(b.target)) / double(W);           // this shard's share of the batch mean
        loss.backward();
        part[r] = loss.item<double>();
    };
    std::vector<std::thread> threads;
    for (int64_t r = 1; r < W; ++r)
        threads.emplace_back([&, r] {
            at::set_num_threads(1);  // OpenMP's thread count is per thread
            shard(r);
        });
    shard(0);
    for (auto& t : threads) t.join();
    torch::NoGradGuard ng;
    auto& master = replicas_[0].params;
    for (int64_t r = 1; r < W; ++r)
        for (size_t i = 0; i < master.size(); ++i) master[i].mutable_grad().add_(replicas_[r].params[i].grad());
    double loss = 0;
    for (double l : part) loss += l;
    return loss;
}

double Trainer::step_once(int step) {
    const double loss = backward(make_batch(step));
    auto& params = replicas_[0].params;
    if (cfg_.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params, cfg_.grad_clip);
    opt_->step(cfg_.lr_at(step));
    torch::NoGradGuard ng;
    const double decay = std::min(cfg_.ema, (1.0 + step) / (10.0 + step));  // EMA ramp
    for (size_t i = 0; i < params.size(); ++i) ema_[i].mul_(decay).add_(params[i], 1 - decay);
    for (size_t r = 1; r < replicas_.size(); ++r)
        for (size_t i = 0; i < params.size(); ++i) replicas_[r].params[i].copy_(params[i]);
    return loss;
}

void Trainer::run(bool resume, const std::function<void(const StepLog&)>& on_log,
                  const std::function<void(int, double)>& on_checkpoint) {
    if (resume && fs::exists(fs::path(cfg_.state) / "train_state.safetensors")) load_state();
    auto   t0 = std::chrono::steady_clock::now();
    double window_s = 0, session_s = 0;
    int    window_n = 0;
    for (; step_ < cfg_.steps;) {
        const auto ts   = std::chrono::steady_clock::now();
        const double l  = step_once(step_);
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
        losses_.push_back(l);
        window_s += dt, session_s += dt, ++window_n, ++step_;
        if (on_log && (step_ % cfg_.log_every == 0 || step_ == cfg_.steps)) {
            on_log({step_, l, cfg_.lr_at(step_ - 1), window_n * cfg_.batch / window_s});
            window_s = 0, window_n = 0;
        }
        const bool out_of_time = cfg_.max_seconds > 0 && session_s >= cfg_.max_seconds;
        if (step_ % cfg_.checkpoint_every == 0 || step_ == cfg_.steps || out_of_time) {
            seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            save();
            if (on_checkpoint) on_checkpoint(step_, seconds_);
            t0 = std::chrono::steady_clock::now();
        }
        if (out_of_time) break;
    }
}

void Trainer::save() const {
    fs::create_directories(cfg_.out);
    fs::create_directories(cfg_.state);
    std::map<std::string, torch::Tensor> dit_w, enc_w, state = opt_->state(names_);
    for (size_t i = 0; i < names_.size(); ++i) {
        const auto& n = names_[i];
        auto&       dst = n.rfind("dit.", 0) == 0 ? dit_w : enc_w;
        dst[n.substr(n.find('.') + 1)] = ema_[i].to(torch::kCPU, torch::kBFloat16);
        state["param." + n] = replicas_[0].params[i].detach();
        state["ema." + n]   = ema_[i];
    }
    for (auto& [k, v] : state) v = v.to(torch::kCPU);
    io::write_safetensors(cfg_.out + "/dit.safetensors", dit_w, cfg_.dit.metadata());
    io::write_safetensors(cfg_.out + "/text_encoder.safetensors", enc_w);
    io::write_safetensors(cfg_.state + "/train_state.safetensors", state,
                          {{"step", std::to_string(step_)}, {"seconds", std::to_string(seconds_)}, {"adam_steps", std::to_string(opt_->steps())}});
    nlohmann::json j = cfg_.to_json();
    j["dit"]              = cfg_.dit.to_json();
    j["vocabulary"]       = tok_.words();
    j["trained_steps"]    = step_;
    j["training_seconds"] = seconds_;
    j["profdit_commit"]   = build_commit();
    if (!cfg_.command.empty()) j["command"] = cfg_.command;
    std::ofstream(cfg_.out + "/config.json") << j.dump(1) << "\n";
}

// The weights of the model folder `train.init` into params (names_ order), each checked against the config's shape.
void Trainer::load_init(std::vector<torch::Tensor>& params) const {
    const std::string dit_file = cfg_.init + "/dit.safetensors", enc_file = cfg_.init + "/text_encoder.safetensors";
    for (const auto& f : {dit_file, enc_file})
        if (!fs::exists(f)) input_error("train.init: '" + cfg_.init + "' is not a model folder written by profdit train (no " + f + ")");
    io::SafetensorsReader dit(dit_file), enc(enc_file);
    torch::NoGradGuard    ng;
    for (size_t i = 0; i < names_.size(); ++i) {
        const bool        in_dit = names_[i].rfind("dit.", 0) == 0;
        const std::string key    = names_[i].substr(in_dit ? 4 : 13);  // without "dit." / "text_encoder."
        const std::string file   = in_dit ? dit_file : enc_file;
        auto&             r      = in_dit ? dit : enc;
        if (!r.contains(key)) input_error(file + ": train.init: no tensor '" + key + "', which the config's model has");
        const auto w = r.load(key);
        if (w.sizes() != params[i].sizes())
            input_error(file + ": train.init: '" + key + "' has shape " + wan::shape_str(w.sizes().vec()) + ", the config's model needs " +
                        wan::shape_str(params[i].sizes().vec()));
        params[i].copy_(w);
    }
}

void Trainer::load_state() {
    const std::string path = cfg_.state + "/train_state.safetensors";
    io::SafetensorsFile f(path);
    const auto& meta = f.metadata();
    if (!meta.count("adam_steps"))
        input_error(path + ": a train state of an older profdit (optimizer.pt beside it); it cannot be resumed by this version");
    io::SafetensorsReader r(path);
    std::map<std::string, torch::Tensor> moments;
    for (const auto& n : names_) {
        moments["exp_avg." + n]    = r.load("exp_avg." + n);
        moments["exp_avg_sq." + n] = r.load("exp_avg_sq." + n);
    }
    torch::NoGradGuard ng;
    for (size_t i = 0; i < names_.size(); ++i) {
        for (auto& rep : replicas_) rep.params[i].copy_(r.load("param." + names_[i]));
        ema_[i].copy_(r.load("ema." + names_[i]));
    }
    step_    = std::stoi(meta.at("step"));
    seconds_ = std::stod(meta.at("seconds"));
    opt_->load_state(moments, names_, std::stoll(meta.at("adam_steps")));
}

}  // namespace profdit::train
