#!/usr/bin/env python3
"""Quality at matched compute budgets: ideal speedup against each metric, one line per policy across its budgets."""
import math

import matplotlib.pyplot as plt

import common
import leaderboard

TITLE = "Quality at matched budgets"
CAPTION = ("Every setting of the leaderboard (budget-matched, or without a target and within %d%% of a budget's ideal "
           "speedup): its mean ideal speedup (flops_full / flops_computed) against its mean quality over (prompt, "
           "seed) pairs, one line per policy across its budgets; bars: the standard error of the mean over the pairs. "
           "Dotted vertical lines: the budgets' ideal speedups."
           % round(leaderboard.NEAREST_WITHIN * 100))
WANTED = ["psnr", "ssim", "lpips_proxy", "psnr_fg", "psnr_bg"]


def points_by_policy(found):
    """{policy: [entries sorted by ideal speedup]} over every budget's board."""
    lines = {}
    for _, entries in found:
        for e in entries:
            lines.setdefault(e.setting.policy, []).append(e)
    return {p: sorted(es, key=lambda e: e.ideal) for p, es in sorted(lines.items())}


def line_label(policy, entries):
    return policy if any(e.matched for e in entries) else policy + " (no target: nearest budget)"


def make(exp, out_dir, others=()):
    """The figure of exp's boards, with the settings of `others` joined (leaderboard.boards)."""
    found, _ = leaderboard.boards(exp, others)
    if not found:
        raise common.Skip("no budget-matched setting (give a policy target_speedup or target_computed)")
    metrics = sorted((m for m in exp.metric_names() if m[0] in WANTED), key=lambda m: WANTED.index(m[0]))
    if not metrics:
        raise common.Skip("no psnr, ssim, lpips_proxy or region metric in the file")
    lines = points_by_policy(found)
    cmap = plt.get_cmap("tab10")
    cols = min(3, len(metrics))
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.8 * rows), squeeze=False)
    for ax, (name, _, label, _, higher) in zip(axes.flat, metrics):
        for b, _ in found:
            ax.axvline(b.ideal, color="gray", ls=":", lw=1)
        for i, (policy, entries) in enumerate(lines.items()):
            ax.errorbar([e.ideal for e in entries], [e.mean(name) for e in entries],
                        yerr=[0.0 if math.isnan(e.error(name)) else e.error(name) for e in entries],
                        fmt="-o", color=cmap(i % 10), ms=6, capsize=3, label=line_label(policy, entries))
        ax.set_xlabel("ideal speedup (flops_full / flops_computed)")
        ax.set_ylabel(label)
        ax.set_title("%s (%s is better)" % (label, "higher" if higher else "lower"))
    for ax in list(axes.flat)[len(metrics):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), frameon=False,
               bbox_to_anchor=(0.5, -0.03 * math.ceil(len(labels) / 4)))
    fig.suptitle("%s: quality at matched compute budgets" % exp.name)
    fig.tight_layout()
    return [common.save(fig, out_dir, "leaderboard")]


if __name__ == "__main__":
    common.main(make)
