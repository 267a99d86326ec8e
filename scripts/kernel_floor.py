#!/usr/bin/env python3
"""The kernel floor of one Wan2.1 DiT forward on the CPU: each dense operation of a block timed alone with the
installed torch (same threads as the forward being judged), summed over the blocks. A forward that takes about
this long spends its time in the kernels themselves, so a faster forward needs faster kernels, not less harness.

    scripts/kernel_floor.py --dim 512 --heads 8 --ffn 2048 --tokens 2048 --context 64 --layers 8 --threads 2

Prints one markdown row per operation (median ms of --repeat runs after one untimed run, GFLOP/s) and the sum.
The block's operations follow wan/modules/model.py: self-attention q|k|v and o projections, q k^T, softmax,
(attention) v; cross-attention q and o projections and the same three on the context (its k and v are computed
once per prompt); the FFN's two matmuls. Norms, modulation, RoPE and GELU are left out (elementwise, small).
"""
import argparse
import statistics
import time

import torch


def median_ms(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def operations(a):
    L, C, d, f, h = a.tokens, a.context, a.dim, a.ffn, a.heads
    hd = d // h
    x, ctx_q = torch.randn(L, d), torch.randn(h, L, hd)
    w_qkv, w_o, w_f1, w_f2 = torch.randn(d, 3 * d), torch.randn(d, d), torch.randn(d, f), torch.randn(f, d)
    q, k, v = torch.randn(h, L, hd), torch.randn(h, L, hd), torch.randn(h, L, hd)
    s, hidden = torch.randn(h, L, L), torch.randn(L, f)
    kc, vc, sc = torch.randn(h, C, hd), torch.randn(h, C, hd), torch.randn(h, L, C)
    return [  # name, function, FLOPs, times per block
        ("self q, k, v projection (fused)", lambda: x @ w_qkv, 2 * L * d * 3 * d, 1),
        ("self q k^T", lambda: torch.bmm(q, k.transpose(1, 2)), 2 * h * L * L * hd, 1),
        ("self softmax", lambda: torch.softmax(s, -1), 0, 1),
        ("self attention v", lambda: torch.bmm(s, v), 2 * h * L * L * hd, 1),
        ("o projection (self, cross)", lambda: x @ w_o, 2 * L * d * d, 2),
        ("cross q projection", lambda: x @ w_o, 2 * L * d * d, 1),
        ("cross q k^T", lambda: torch.bmm(ctx_q, kc.transpose(1, 2)), 2 * h * L * C * hd, 1),
        ("cross softmax", lambda: torch.softmax(sc, -1), 0, 1),
        ("cross attention v", lambda: torch.bmm(sc, vc), 2 * h * L * C * hd, 1),
        ("ffn up", lambda: x @ w_f1, 2 * L * d * f, 1),
        ("ffn down", lambda: hidden @ w_f2, 2 * L * f * d, 1),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--ffn", type=int, required=True)
    ap.add_argument("--tokens", type=int, required=True)
    ap.add_argument("--context", type=int, required=True, help="text context rows (text_len)")
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    print("| operation | per block | ms | GFLOP/s |")
    print("|---|---|---|---|")
    block_ms = 0.0
    for name, fn, flops, times in operations(a):
        ms = median_ms(fn, a.repeat)
        block_ms += ms * times
        rate = "%.1f" % (flops / ms / 1e6) if flops else "-"
        print("| %s | %d | %.1f | %s |" % (name, times, ms, rate))
    print("| **one block** | | %.1f | |" % block_ms)
    print("| **%d blocks (the floor)** | | %.0f | |" % (a.layers, block_ms * a.layers))
    print("\ntorch %s, %d threads, dim %d, %d heads, ffn %d, %d tokens, context %d" %
          (torch.__version__, a.threads, a.dim, a.heads, a.ffn, a.tokens, a.context))


if __name__ == "__main__":
    main()
