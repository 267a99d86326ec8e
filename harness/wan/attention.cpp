#include "wan/attention.h"

#include <cmath>

namespace profdit::wan {

torch::Tensor attention_explicit(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 int64_t max_score_bytes) {
    const auto B = q.size(0), Lq = q.size(1), H = q.size(2), hd = q.size(3), Lk = k.size(1);
    const double scale = 1.0 / std::sqrt(double(hd));
    auto qh = q.permute({0, 2, 1, 3});                   // [B, H, Lq, hd]
    auto kt = k.to(q.scalar_type()).permute({0, 2, 3, 1});  // [B, H, hd, Lk]
    auto vh = v.to(q.scalar_type()).permute({0, 2, 1, 3});  // [B, H, Lk, hd]
    auto out = torch::empty({B, Lq, H, hd}, q.options());   // [B, Lq, H, hd]

    const int64_t row_bytes = B * H * Lk * int64_t(q.element_size());
    const int64_t chunk     = std::max<int64_t>(1, std::min<int64_t>(Lq, max_score_bytes / std::max<int64_t>(row_bytes, 1)));
    for (int64_t s = 0; s < Lq; s += chunk) {
        const int64_t n = std::min(chunk, Lq - s);
        auto scores = torch::matmul(qh.narrow(2, s, n), kt);  // [B, H, n, Lk]
        scores.mul_(scale);
        auto probs = torch::softmax(scores, -1);               // [B, H, n, Lk]
        out.narrow(1, s, n).copy_(torch::matmul(probs, vh).permute({0, 2, 1, 3}));  // [B, n, H, hd]
    }
    return out.view({B, Lq, H * hd});
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, int64_t max_score_bytes) {
#if TORCH_VERSION_MAJOR >= 2
    const auto B = q.size(0), Lq = q.size(1), H = q.size(2), hd = q.size(3);
    auto o = at::scaled_dot_product_attention(q.transpose(1, 2), k.to(q.scalar_type()).transpose(1, 2),
                                              v.to(q.scalar_type()).transpose(1, 2));  // [B, H, Lq, hd]
    return o.transpose(1, 2).reshape({B, Lq, H * hd});
#else
    return attention_explicit(q, k, v, max_score_bytes);
#endif
}

}  // namespace profdit::wan
