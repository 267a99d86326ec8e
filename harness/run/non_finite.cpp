#include "run/non_finite.h"

namespace profdit::run {

bool all_finite(const torch::Tensor& t) { return torch::isfinite(t).all().item<bool>(); }

std::string first_non_finite_stage(wan::WanModelImpl& dit, const torch::Tensor& latent, int64_t t,
                                   const wan::Conditioning& cond) {
    torch::NoGradGuard ng;
    if (!all_finite(latent)) return "its input latent";
    const auto        em   = dit.embed(latent, t, cond);
    const std::string note = all_finite(em.cond.context) ? "" : "; its text context is not finite";
    if (!all_finite(em.cond.e0)) return "the time embedding";
    if (!all_finite(em.x)) return "the patch embedding";
    std::string where;
    auto        x = dit.run_blocks(em.x, em.cond, 0, dit.num_blocks() - 1,
                                   [&](int64_t block, const torch::Tensor&, const torch::Tensor& out, const wan::BlockProbe*) {
                                       if (all_finite(out)) return true;
                                       where = "block " + std::to_string(block) + note;
                                       return false;
                                   });  // [1, L, dim]
    if (!where.empty()) return where;
    if (!all_finite(dit.head_tokens(x, em.cond))) return "the head" + note;
    return "no stage of an uncached forward (the cached path produced it)";
}

}  // namespace profdit::run
