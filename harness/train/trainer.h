#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "train/adamw.h"
#include "train/train_config.h"
#include "wan/dit.h"
#include "world/caption_encoder.h"

namespace profdit::train {

struct StepLog {
    int    step = 0;
    double loss = 0, lr = 0, samples_per_s = 0;
};

// Rectified-flow training of a Wan2.1-architecture DiT with the world's caption encoder, in Wan's
// parameterisation: x_t = (1 - s) x0 + s noise, target noise - x0, timestep = int(1000 s), s from a
// shifted logit-normal. Deterministic from the seed: the batch of step k depends only on (seed, k).
// With `workers` > 1 the batch is split over model replicas that run one thread each; their gradients
// are summed in replica order, so a run is bit-reproducible for a fixed worker count and device.
class Trainer {
  public:
    explicit Trainer(TrainConfig cfg);
    // Continues from cfg.state's train state when `resume` and one exists. `on_checkpoint` runs after
    // each checkpoint is written (its time is not counted as training time).
    void run(bool resume, const std::function<void(const StepLog&)>& on_log = nullptr,
             const std::function<void(int step, double train_seconds)>& on_checkpoint = nullptr);
    const std::vector<double>& losses() const { return losses_; }
    void   save() const;  // EMA weights (bf16) + config.json to cfg.out, the resumable state to cfg.state
    int    step() const { return step_; }
    double seconds() const { return seconds_; }

  private:
    struct Replica {
        wan::WanModel              dit{nullptr};
        world::CaptionEncoder      enc{nullptr};
        std::vector<torch::Tensor> params;
    };
    struct Batch {
        torch::Tensor xt, t, tokens, target;  // [B, 3, F, H, W], [B], [B, text_len], [B, 3, F, H, W]
    };
    Batch  make_batch(int step) const;
    double backward(const Batch& b);  // gradients of the batch loss into the first replica's parameters
    double step_once(int step);
    void   load_state();
    void   load_init(std::vector<torch::Tensor>& params) const;

    TrainConfig                cfg_;
    torch::Device              device_;
    world::CaptionTokenizer    tok_;
    std::vector<Replica>       replicas_;
    std::vector<torch::Tensor> ema_;
    std::vector<std::string>   names_;
    std::unique_ptr<AdamW>     opt_;
    int                        step_ = 0;
    double                     seconds_ = 0;
    std::vector<double>        losses_;
};

}  // namespace profdit::train
