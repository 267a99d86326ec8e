#pragma once

#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace profdit::sampling {

// Integer timesteps the model sees and the sigmas the solver uses (N + 1 entries, the last 0).
struct Schedule {
    std::vector<int64_t> timesteps;
    std::vector<float>   sigmas;
};

// FlowUniPCMultistepScheduler.set_timesteps(N, shift): sigma from fp32(0.999) down, shifted, truncated.
Schedule unipc_schedule(int steps, double shift);
// Wan's get_sampling_sigmas(N, shift) passed to FlowDPMSolverMultistepScheduler: sigma from 1 down.
Schedule dpmpp_schedule(int steps, double shift);

// A flow-matching solver driven one step at a time with the model's velocity prediction.
class FlowScheduler {
  public:
    virtual ~FlowScheduler() = default;
    virtual const char* name() const = 0;
    // v and x are [...] (any shape); returns the sample after this step and advances the step index.
    virtual torch::Tensor step(const torch::Tensor& v, const torch::Tensor& x) = 0;

    const Schedule& schedule() const { return schedule_; }
    int             steps() const { return int(schedule_.timesteps.size()); }
    int             step_index() const { return index_; }
    int64_t         timestep() const { return schedule_.timesteps.at(index_); }

  protected:
    explicit FlowScheduler(Schedule s) : schedule_(std::move(s)) {}
    double sigma(int i) const { return double(schedule_.sigmas.at(i)); }
    Schedule schedule_;
    int      index_ = 0;
};

// UniPC, solver_order 2, bh2, predict_x0, corrector on, lower_order_final, final sigma 0 (Wan's default).
class FlowUniPC : public FlowScheduler {
  public:
    FlowUniPC(int steps, double shift);
    const char*   name() const override { return "unipc"; }
    torch::Tensor step(const torch::Tensor& v, const torch::Tensor& x) override;

    // What the last step did (for tests and traces).
    const torch::Tensor& last_x0() const { return x0_[1]; }
    const torch::Tensor& last_corrected() const { return x_prev_; }
    int                  last_order() const { return order_; }
    int                  last_corrector_order() const { return corr_order_; }

  private:
    torch::Tensor x0_[2];  // x0_{i-1}, x0_i (history of converted outputs)
    torch::Tensor x_prev_;
    int           order_ = 0, corr_order_ = 0, lower_order_nums_ = 0;
};

// DPM-Solver++ 2M (midpoint), first order on the first and last steps, final sigma 0.
class FlowDPMpp : public FlowScheduler {
  public:
    FlowDPMpp(int steps, double shift);
    const char*   name() const override { return "dpm++"; }
    torch::Tensor step(const torch::Tensor& v, const torch::Tensor& x) override;

  private:
    torch::Tensor x0_prev_;
};

// Plain flow-matching Euler, x_next = x + (sigma_{i+1} - sigma_i) v, on the UniPC schedule.
class FlowEuler : public FlowScheduler {
  public:
    FlowEuler(int steps, double shift);
    const char*   name() const override { return "euler"; }
    torch::Tensor step(const torch::Tensor& v, const torch::Tensor& x) override;
};

const std::vector<std::string>& solver_names();
// InputError for an unknown solver, steps < 1 or shift <= 0.
std::unique_ptr<FlowScheduler> make_scheduler(const std::string& solver, int steps, double shift);

}  // namespace profdit::sampling
