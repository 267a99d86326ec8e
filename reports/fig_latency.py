#!/usr/bin/env python3
"""Latency: DiT time per denoising step for each policy setting, and the end-to-end breakdown."""
import numpy as np
import matplotlib.pyplot as plt

import common

TITLE = "Latency breakdown"
CAPTION = ("Left: time of the two DiT calls (cond and uncond, stacked) at each denoising step for each policy "
           "setting, median over repeats, mean over prompts and seeds; steps that reuse the cache are short. Right: where the end-to-end time goes: text encoding, the DiT calls of each "
           "branch, the rest of the denoising loop (guidance, solver, cache bookkeeping: dit_ms minus the calls) "
           "and decoding.")

PARTS = [("text encoding", "#9e9e9e"), ("DiT cond", "#1f77b4"), ("DiT uncond", "#aec7e8"),
         ("loop rest (solver, guidance)", "#ff7f0e"), ("decode", "#2ca02c")]


def breakdown(r):
    step = r.ds("latency/step_ms")
    text, dit, decode = r.ds("latency/text_ms", 0.0), r.ds("latency/dit_ms", 0.0), r.ds("latency/decode_ms", 0.0)
    cond, uncond = (float(step[:, 0].sum()), float(step[:, 1].sum())) if step is not None and step.ndim == 2 and step.shape[1] >= 2 \
        else (float(np.sum(step)) if step is not None else dit, 0.0)
    return [text, cond, uncond, max(dit - cond - uncond, 0.0), decode]


def make(exp, out_dir):
    rows = []
    for s in exp.settings():
        step = s.stack("latency/step_ms")
        if step is not None:
            rows.append((s, step.mean(axis=0), np.mean([breakdown(r) for r in s.runs], axis=0)))
    if not rows:
        raise common.Skip("no finished run has latency/step_ms")
    n = len(rows)
    fig = plt.figure(figsize=(13, 1.0 + 1.5 * max(n, 3)), layout="constrained")
    grid = fig.add_gridspec(n, 2, width_ratios=[1.3, 1])
    first = None
    for i, (s, step, _) in enumerate(rows):
        a = fig.add_subplot(grid[i, 0], sharex=first, sharey=first)
        first = first or a
        x = np.arange(step.shape[0])
        cond = step[:, 0] if step.ndim == 2 else step
        uncond = step[:, 1] if step.ndim == 2 and step.shape[1] > 1 else np.zeros_like(cond)
        a.bar(x, cond, width=0.8, color=PARTS[1][1], label=PARTS[1][0])
        a.bar(x, uncond, width=0.8, bottom=cond, color=PARTS[2][1], label=PARTS[2][0])
        a.set_title(common.short(s.tag, 60), fontsize=9, loc="left")
        a.set_ylabel("DiT ms")
        a.grid(axis="x", visible=False)
        if i < n - 1:
            a.tick_params(labelbottom=False)
    a.set_xlabel("denoising step")
    first.legend(loc="upper right", ncol=2, fontsize=7)
    b = fig.add_subplot(grid[:, 1])
    y = np.arange(len(rows))[::-1]
    left = np.zeros(len(rows))
    parts = np.array([p for _, _, p in rows])
    for i, (label, c) in enumerate(PARTS):
        b.barh(y, parts[:, i], left=left, color=c, label=label, height=0.6)
        left += parts[:, i]
    for yy, total in zip(y, left):
        b.text(total, yy, " %.0f ms" % total, va="center", fontsize=8)
    b.set_yticks(y)
    b.set_yticklabels([common.short(s.tag, 44) for s, _, _ in rows], fontsize=8)
    b.set_xlabel("end-to-end time (ms)")
    b.set_xlim(0, left.max() * 1.18)
    b.set_title("end-to-end breakdown")
    b.legend(loc="upper center", bbox_to_anchor=(0.5, -0.6 / max(n, 3)), ncol=3, frameon=False)
    b.grid(axis="y", visible=False)
    fig.suptitle("%s: latency" % exp.name)
    return [common.save(fig, out_dir, "latency")]


if __name__ == "__main__":
    common.main(make)
