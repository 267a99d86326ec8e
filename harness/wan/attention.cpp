#include "wan/attention.h"

#include <cmath>

namespace profdit::wan {

torch::Tensor AttentionScratch::get(int64_t numel, const torch::TensorOptions& opt) {
    if (!buffer_.defined() || buffer_.numel() < numel || buffer_.dtype() != opt.dtype() || buffer_.device() != opt.device())
        buffer_ = torch::empty({numel}, opt);
    return buffer_.narrow(0, 0, numel);
}

torch::Tensor attention_explicit(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                 AttentionScratch* scratch, int64_t max_score_bytes) {
    const auto B = q.size(0), Lq = q.size(1), H = q.size(2), hd = q.size(3), Lk = k.size(1);
    const double scale = 1.0 / std::sqrt(double(hd));
    // Scores, exp, row sums and P·V accumulate in fp32 (fp64 for fp64 input), as flash attention does for
    // bf16/f16: only the output is rounded to q's dtype. For fp32 input every .to() is a no-op.
    const auto acc = q.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    auto qh  = (q.to(acc) * scale).permute({0, 2, 1, 3}).contiguous();  // [B, H, Lq, hd]
    auto kt  = k.to(acc).permute({0, 2, 3, 1}).contiguous();            // [B, H, hd, Lk]
    auto vh  = v.to(acc).permute({0, 2, 1, 3}).contiguous();            // [B, H, Lk, hd]
    auto out = torch::empty({B, Lq, H, hd}, q.options());              // [B, Lq, H, hd]

    const auto    sopt      = q.options().dtype(acc);
    const int64_t row_bytes = B * H * Lk * int64_t(c10::elementSize(acc));
    const int64_t chunk     = std::max<int64_t>(1, std::min<int64_t>(Lq, max_score_bytes / std::max<int64_t>(row_bytes, 1)));
    auto buf    = scratch ? scratch->get(B * H * chunk * Lk, sopt) : torch::empty({B * H * chunk * Lk}, sopt);
    auto scores = buf.view({B, H, chunk, Lk});                           // [B, H, chunk, Lk]
    for (int64_t s = 0; s < Lq; s += chunk) {
        const int64_t n  = std::min(chunk, Lq - s);
        auto          sc = n == chunk ? scores : buf.narrow(0, 0, B * H * n * Lk).view({B, H, n, Lk});  // [B, H, n, Lk]
        at::matmul_out(sc, qh.narrow(2, s, n), kt);
        sc.sub_(sc.amax(-1, true)).exp_();
        auto denom = sc.sum(-1, true);                                   // [B, H, n, 1]
        auto o     = torch::matmul(sc, vh).div_(denom);                  // [B, H, n, hd]
        out.narrow(1, s, n).copy_(o.permute({0, 2, 1, 3}));              // [B, n, H, hd]
    }
    return out.view({B, Lq, H * hd});
}

torch::Tensor received_attention(const torch::Tensor& q, const torch::Tensor& k, int64_t query_chunk, int64_t query_stride) {
    torch::NoGradGuard ng;
    const auto B = q.size(0), H = q.size(2), hd = q.size(3), Lk = k.size(1);
    auto qs  = q.to(torch::kFloat32).slice(1, 0, q.size(1), std::max<int64_t>(1, query_stride));   // [B, Lq', H, hd]
    auto qh  = (qs * (1.0 / std::sqrt(double(hd)))).permute({0, 2, 1, 3});                     // [B, H, Lq', hd]
    auto kt  = k.to(torch::kFloat32).permute({0, 2, 3, 1});                                      // [B, H, hd, Lk]
    auto acc = torch::zeros({B, Lk}, q.options().dtype(torch::kFloat32));                        // [B, Lk]
    const int64_t Lq = qh.size(2), chunk = std::max<int64_t>(1, query_chunk);
    for (int64_t s = 0; s < Lq; s += chunk) {
        auto p = torch::softmax(torch::matmul(qh.narrow(2, s, std::min(chunk, Lq - s)), kt), -1);  // [B, H, n, Lk]
        acc.add_(p.sum({1, 2}));
    }
    return acc.div_(double(H * Lq));
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, AttentionScratch* scratch) {
#if TORCH_VERSION_MAJOR < 2
    if (torch::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad())) {
        // training: the in-place scratch path is not differentiable
        const auto B = q.size(0), Lq = q.size(1), H = q.size(2), hd = q.size(3);
        auto s = torch::matmul(q.permute({0, 2, 1, 3}) * (1.0 / std::sqrt(double(hd))), k.to(q.scalar_type()).permute({0, 2, 3, 1}));
        auto o = torch::matmul(torch::softmax(s, -1), v.to(q.scalar_type()).permute({0, 2, 1, 3}));  // [B, H, Lq, hd]
        return o.permute({0, 2, 1, 3}).reshape({B, Lq, H * hd});
    }
#endif
#if TORCH_VERSION_MAJOR >= 2
    const auto B = q.size(0), Lq = q.size(1), H = q.size(2), hd = q.size(3);
    auto o = at::scaled_dot_product_attention(q.transpose(1, 2), k.to(q.scalar_type()).transpose(1, 2),
                                              v.to(q.scalar_type()).transpose(1, 2));  // [B, H, Lq, hd]
    return o.transpose(1, 2).reshape({B, Lq, H * hd});
#else
    return attention_explicit(q, k, v, scratch);
#endif
}

}  // namespace profdit::wan
