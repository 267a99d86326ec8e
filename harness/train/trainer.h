#pragma once

#include <functional>
#include <string>
#include <vector>

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
class Trainer {
  public:
    explicit Trainer(TrainConfig cfg);
    // Continues from cfg.out's train state when `resume` and one exists.
    void                 run(bool resume, const std::function<void(const StepLog&)>& on_log = nullptr);
    const std::vector<double>& losses() const { return losses_; }
    void                 save(const std::string& dir) const;  // EMA weights (bf16), config.json, train state
    int                  step() const { return step_; }

  private:
    double step_once(int step);
    void   load_state(const std::string& dir);

    TrainConfig                         cfg_;
    wan::WanModel                       dit_{nullptr};
    world::CaptionTokenizer             tok_;
    world::CaptionEncoder               enc_{nullptr};
    std::vector<torch::Tensor>          params_, ema_;
    std::vector<std::string>            names_;
    std::unique_ptr<torch::optim::AdamW> opt_;
    int                                 step_ = 0;
    double                              seconds_ = 0;
    std::vector<double>                 losses_;
};

}  // namespace profdit::train
