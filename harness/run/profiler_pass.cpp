#include "run/profiler_pass.h"

#include "common/error.h"
#include "policies/none.h"
#include "profile/attention_profile.h"
#include "profile/block_focus.h"
#include "profile/mask_source.h"
#include "sampling/cached_denoiser.h"
#include "world/detector.h"

namespace profdit::run {

namespace {

// The cond branch's prediction averaged over the second half of the steps (the `auto` mask's input).
class PredictionAverage : public sampling::Denoiser {
  public:
    PredictionAverage(sampling::Denoiser& inner, int steps) : inner_(inner), from_(steps / 2) {}
    torch::Tensor predict(int step, sampling::Branch branch, const torch::Tensor& latent, int64_t t,
                          const wan::Conditioning& cond) override {
        auto out = inner_.predict(step, branch, latent, t, cond);  // [C, F, H, W]
        if (branch == sampling::kCond && step >= from_) {
            auto f = out.to(torch::kCPU, torch::kFloat32);
            sum_   = sum_.defined() ? sum_ + f : f.clone();
            ++n_;
        }
        return out;
    }
    void          begin(const sampling::Schedule& schedule) override { inner_.begin(schedule); }
    torch::Tensor mean() const { return sum_ / double(std::max(n_, 1)); }  // [C, F, H, W]

  private:
    sampling::Denoiser& inner_;
    int                 from_, n_ = 0;
    torch::Tensor       sum_;
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (size_t p; (p = s.find(from)) != std::string::npos;) s.replace(p, from.size(), to);
    return s;
}

}  // namespace

void check_mask_source(const Pipeline& pipe, const Experiment& x) {
    if (!x.profile.attention) return;
    if (x.profile.mask == "gt" && !pipe.foreground_mask)
        input_error(x.path + ": profile: mask: gt needs the embedded world's masks, which model '" + pipe.label +
                    "' does not have (use mask: auto or mask: file)");
}

ReferenceProfile profile_reference(const Pipeline& pipe, const Experiment& x, const Pair& pair, const torch::Tensor& noise,
                                   const wan::Conditioning& cond, const wan::Conditioning& uncond, const torch::Tensor& ref_frames) {
    const auto& cfg   = pipe.dit->config();
    const int   steps = x.sampling.steps, blocks = int(cfg.num_layers);
    policies::NonePolicy     none({blocks, cfg.variant(), pipe.fingerprint});
    sampling::CachedDenoiser d(pipe.dit, none, steps);
    profile::AttentionProfile prof(steps, blocks, x.profile.query_chunk, x.profile.query_stride);
    d.observe(&prof);
    PredictionAverage avg(d, steps);
    sampling::sample_cfg(avg, noise, cond, uncond, x.sampling);

    ReferenceProfile p;
    const auto& lat = pipe.latent_shape;                                                          // [C, F, H, W]
    const int64_t F = ref_frames.size(0), H = ref_frames.size(2), W = ref_frames.size(3);
    const int64_t stride = lat[1] > 1 ? (F - 1) / (lat[1] - 1) : 1;
    auto to_latent = [&](const torch::Tensor& video) { return profile::resize_mask(video, lat[1], lat[2], lat[3], stride); };
    p.mask_auto = profile::auto_mask(avg.mean());                                                 // [F_lat, H_lat, W_lat]
    torch::Tensor gt;
    if (pipe.foreground_mask) gt = to_latent(pipe.foreground_mask(ref_frames, x.prompts[size_t(pair.prompt)]));
    if (gt.defined()) p.auto_iou = world::mask_iou(p.mask_auto, gt);
    if (x.profile.mask == "auto") p.mask = p.mask_auto;
    else if (x.profile.mask == "gt") p.mask = gt;
    else
        p.mask = to_latent(profile::load_mask_file(
            replace_all(replace_all(x.profile.mask_file, "{prompt}", std::to_string(pair.prompt)), "{seed}", std::to_string(pair.seed)), F, H, W));
    p.token_fg = profile::token_mask(p.mask, {cfg.patch_size[0], cfg.patch_size[1], cfg.patch_size[2]});  // [L]
    const int64_t frames = lat[1] / cfg.patch_size[0];
    p.r_attn        = profile::r_attn_per_step(prof.received(), p.token_fg, frames, {x.profile.high, x.profile.high_value});
    p.received_mean = prof.received().nanmean(0);                                                // [blocks, L]
    if (x.profile.keep_received) p.received = prof.received();
    p.residual        = prof.residual();
    p.residual_change = prof.residual_change();
    return p;
}

void add_profile(store::Record& r, const ReferenceProfile& p, const ProfileSpec& spec) {
    const std::string rule = profile::HighRule{spec.high, spec.high_value}.text();
    r.datasets["profile/r_attn"] = {p.r_attn, {}, {{"axes", "step, block"}, {"branch", "cond"}, {"high", rule},
                                                   {"note", "share of foreground tokens whose received attention is high"}}, false};
    r.datasets["profile/received_mean"] = {p.received_mean, {}, {{"axes", "block, token"}, {"note", "received attention averaged over steps"}}, false};
    if (p.received.defined()) r.datasets["profile/received"] = {p.received, {}, {{"axes", "step, block, token"}}, true};
    r.datasets["profile/residual"]        = {p.residual, {}, {{"axes", "step, block"}, {"note", "||x_out - x_in|| / ||x_in||"}}, false};
    r.datasets["profile/residual_change"] = {p.residual_change, {}, {{"axes", "step, block"}, {"note", "||d_s - d_prev|| / ||d_prev||, d = block residual"}}, false};
    r.datasets["profile/mask"]            = {p.mask, {}, {{"source", spec.mask}, {"axes", "latent frame, height, width"}}, false};
    r.datasets["profile/token_fg"]        = {p.token_fg, {}, {}, false};
    r.datasets["profile/mask_auto"]       = {p.mask_auto, {{"iou_vs_gt", p.auto_iou}}, {{"note", "the auto source's mask, kept for comparison"}}, false};
}

}  // namespace profdit::run
