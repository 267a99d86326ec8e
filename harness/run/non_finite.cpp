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
    auto x = em.x;  // [1, L, dim]
    for (int64_t i = 0; i < dit.num_blocks(); ++i) {
        x = dit.block(i, x, em.cond);  // [1, L, dim]
        if (!all_finite(x)) return "block " + std::to_string(i) + note;
    }
    if (!all_finite(dit.head_tokens(x, em.cond))) return "the head" + note;
    return "no stage of an uncached forward (the cached path produced it)";
}

}  // namespace profdit::run
