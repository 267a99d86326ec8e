#include "train/trainer.h"
#include "common/threads.h"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>

#include <ATen/CPUGeneratorImpl.h>

#include "common/build_info.h"
#include "common/error.h"
#include "io/safetensors.h"
#include "wan/checkpoint.h"

namespace profdit::train {

namespace fs = std::filesystem;

Trainer::Trainer(TrainConfig cfg) : cfg_(std::move(cfg)), tok_(cfg_.world) {
    set_cpu_threads(cfg_.threads);
    torch::manual_seed(cfg_.seed);
    dit_ = wan::WanModel(cfg_.dit);
    wan::init_random(dit_, cfg_.seed);
    {  // the reference zero-initialises the head's output layer
        torch::NoGradGuard g;
        dit_->head->head->weight.zero_();
        dit_->head->head->bias.zero_();
    }
    enc_ = world::CaptionEncoder(tok_.vocab_size(), cfg_.dit.text_dim, cfg_.dit.text_len, cfg_.text_layers, cfg_.text_heads);
    for (auto& p : dit_->named_parameters()) names_.push_back("dit." + p.key()), params_.push_back(p.value());
    for (auto& p : enc_->named_parameters()) names_.push_back("text_encoder." + p.key()), params_.push_back(p.value());
    for (const auto& p : params_) ema_.push_back(p.detach().clone());
    opt_ = std::make_unique<torch::optim::AdamW>(params_, torch::optim::AdamWOptions(cfg_.lr).weight_decay(cfg_.weight_decay));
}

double Trainer::step_once(int step) {
    const auto& w = cfg_.world;
    const int   B = cfg_.batch;
    auto gen = at::detail::createCPUGenerator(cfg_.seed * 1000003ull + uint64_t(step) + 1);
    std::mt19937_64 rng(cfg_.seed * 7919ull + uint64_t(step));
    std::vector<torch::Tensor> x0s;
    std::vector<std::vector<int64_t>> ids;
    std::uniform_real_distribution<double> u01(0, 1);
    for (int i = 0; i < B; ++i) {
        const auto scene = world::sample_scene(w, rng());
        x0s.push_back(world::render(scene, w).frames.permute({1, 0, 2, 3}));      // [3, F, H, W]
        ids.push_back(tok_.encode(u01(rng) < cfg_.caption_dropout ? "" : world::caption(scene)));
    }
    auto x0    = torch::stack(x0s);                                                // [B, 3, F, H, W]
    auto noise = at::normal(0.0, 1.0, x0.sizes(), gen);                           // [B, 3, F, H, W]
    auto u     = at::normal(cfg_.logit_mean, cfg_.logit_std, {B}, gen);
    auto s     = torch::sigmoid(u.to(torch::kFloat64));
    s          = cfg_.shift * s / (1 + (cfg_.shift - 1) * s);
    auto t     = (s * 1000).to(torch::kInt64).clamp(0, 999);                       // [B]
    auto sf    = (t.to(torch::kFloat32) / 1000.0f).view({B, 1, 1, 1, 1});
    auto xt    = (1 - sf) * x0 + sf * noise;
    auto target = noise - x0;

    const int64_t L = cfg_.dit.text_len;
    auto tokens = torch::zeros({B, L}, torch::kInt64);                             // [B, text_len], 0 = padding
    for (int i = 0; i < B; ++i)
        for (size_t j = 0; j < ids[i].size() && int64_t(j) < L; ++j) tokens[i][j] = ids[i][j];
    auto ctx  = enc_->forward(tokens);                                             // [B, text_len, text_dim]
    auto pred = dit_->forward_batch(xt, t, ctx);                                   // [B, 3, F, H, W]
    auto loss = torch::mse_loss(pred, target);

    const double lr = cfg_.lr_at(step);
    for (auto& g : opt_->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    opt_->zero_grad();
    loss.backward();
    if (cfg_.grad_clip > 0) torch::nn::utils::clip_grad_norm_(params_, cfg_.grad_clip);
    opt_->step();
    torch::NoGradGuard ng;
    const double decay = std::min(cfg_.ema, (1.0 + step) / (10.0 + step));  // EMA ramp
    for (size_t i = 0; i < params_.size(); ++i) ema_[i].mul_(decay).add_(params_[i].detach(), 1 - decay);
    return loss.item<double>();
}

void Trainer::run(bool resume, const std::function<void(const StepLog&)>& on_log) {
    if (resume && fs::exists(fs::path(cfg_.out) / "train_state.safetensors")) load_state(cfg_.out);
    auto   t0 = std::chrono::steady_clock::now();
    double window_s = 0;
    int    window_n = 0;
    for (; step_ < cfg_.steps;) {
        const auto ts   = std::chrono::steady_clock::now();
        const double l  = step_once(step_);
        const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
        losses_.push_back(l);
        window_s += dt, ++window_n, ++step_;
        if (on_log && (step_ % cfg_.log_every == 0 || step_ == cfg_.steps)) {
            on_log({step_, l, cfg_.lr_at(step_ - 1), window_n * cfg_.batch / window_s});
            window_s = 0, window_n = 0;
        }
        if (step_ % cfg_.checkpoint_every == 0 || step_ == cfg_.steps) {
            seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            t0 = std::chrono::steady_clock::now();
            save(cfg_.out);
        }
    }
}

void Trainer::save(const std::string& dir) const {
    fs::create_directories(dir);
    std::map<std::string, torch::Tensor> dit_w, enc_w, state;
    for (size_t i = 0; i < names_.size(); ++i) {
        const auto& n = names_[i];
        auto&       dst = n.rfind("dit.", 0) == 0 ? dit_w : enc_w;
        dst[n.substr(n.find('.') + 1)] = ema_[i].to(torch::kBFloat16);
        state["param." + n] = params_[i].detach();
        state["ema." + n]   = ema_[i];
    }
    io::write_safetensors(dir + "/dit.safetensors", dit_w, cfg_.dit.metadata());
    io::write_safetensors(dir + "/text_encoder.safetensors", enc_w);
    io::write_safetensors(dir + "/train_state.safetensors", state, {{"step", std::to_string(step_)}, {"seconds", std::to_string(seconds_)}});
    torch::save(*opt_, dir + "/optimizer.pt");
    nlohmann::json j = cfg_.to_json();
    j["dit"]             = cfg_.dit.to_json();
    j["vocabulary"]      = tok_.words();
    j["trained_steps"]   = step_;
    j["training_seconds"] = seconds_;
    j["profdit_commit"]  = build_commit();
    if (!cfg_.command.empty()) j["command"] = cfg_.command;
    std::ofstream(dir + "/config.json") << j.dump(1) << "\n";
}

void Trainer::load_state(const std::string& dir) {
    io::SafetensorsReader r(dir + "/train_state.safetensors");
    torch::NoGradGuard    ng;
    for (size_t i = 0; i < names_.size(); ++i) {
        params_[i].copy_(r.load("param." + names_[i]));
        ema_[i].copy_(r.load("ema." + names_[i]));
    }
    io::SafetensorsFile f(dir + "/train_state.safetensors");
    step_    = std::stoi(f.metadata().at("step"));
    seconds_ = std::stod(f.metadata().at("seconds"));
    torch::load(*opt_, dir + "/optimizer.pt");
}

}  // namespace profdit::train
