#!/usr/bin/env python3
"""Attention distribution: R_attn per block and step, with the foreground/background block classification."""
import re

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Patch

import common

TITLE = "Attention distribution (R_attn)"
CAPTION = ("Left: R_attn, the share of foreground tokens whose received attention is high, for each DiT block "
           "(rows) and denoising step (columns) of the uncached reference's cond branch, mean over prompts and "
           "seeds; grey cells: not measured. Right: R_attn per block averaged over steps (the profiled plan's "
           "values when the file has a /plan), coloured by the classification: foreground blocks are always "
           "computed, background blocks may reuse their cache; the dashed line is the threshold tau.")

FG, BG = "#d62728", "#1f77b4"


def background_blocks(exp):
    """(background block list or None, tau or None, where they come from)."""
    if exp.plan is not None and ("background_blocks" in exp.plan or "background_blocks" in exp.plan.attrs):
        tau = exp.plan.attrs.get("tau")
        blocks = exp.plan["background_blocks"][()] if "background_blocks" in exp.plan else exp.plan.attrs["background_blocks"]
        return ([int(b) for b in np.atleast_1d(blocks)], float(tau) if tau is not None else None, "plan")
    found = set()
    for s in exp.settings(include_none=False):
        if s.policy == "profiling_dit":
            m = re.search(r"background_blocks:\s*\[([^\]]*)\]", str(s.runs[0].attrs.get("policy_params", "")))
            if m:
                found.add(tuple(int(x) for x in m.group(1).replace(",", " ").split()))
    if len(found) == 1:
        return list(found.pop()), None, "the profiling_dit setting"
    return None, None, None


def make(exp, out_dir):
    name = "profile/r_attn"
    groups = [r for r in exp.refs.values() if r.has(name)] or [r for r in exp.done_runs() if r.has(name)]
    if not groups:
        raise common.Skip("no profile/r_attn in the file (run the experiment with profile: {attention: true})")
    shapes = {r.ds(name).shape for r in groups}
    groups = [r for r in groups if r.ds(name).shape == sorted(shapes)[0]]
    stack = np.stack([r.ds(name) for r in groups]).astype(np.float64)  # [n, S, L]
    with np.errstate(invalid="ignore"), np.testing.suppress_warnings() as sup:
        sup.filter(RuntimeWarning)
        per_step = np.nanmean(stack, axis=0).T  # [L, S]
        per_block = np.nanmean(per_step, axis=1)
    if exp.plan is not None and "r_attn" in exp.plan and exp.plan["r_attn"].shape == (per_step.shape[0],):
        per_block = exp.plan["r_attn"][()].astype(np.float64)
    bg, tau, source = background_blocks(exp)
    blocks, steps = per_step.shape

    fig_h = 2.0 + 0.24 * max(blocks, 6)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, fig_h), sharey=True,
                               gridspec_kw={"width_ratios": [3, 1]}, layout="constrained")
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("0.8")
    im = a.imshow(np.ma.masked_invalid(per_step), cmap=cmap, vmin=0, vmax=1, aspect="auto", interpolation="nearest",
                  extent=(-0.5, steps - 0.5, blocks - 0.5, -0.5))
    a.grid(False)
    a.set_xlabel("denoising step")
    a.set_ylabel("DiT block")
    ticks = np.arange(blocks) if blocks <= 40 else np.arange(0, blocks, 5)
    a.set_yticks(ticks)
    a.set_title("R_attn per step and block (%d reference%s)" % (len(groups), "" if len(groups) == 1 else "s"))
    cbar = fig.colorbar(im, ax=a, pad=0.01, fraction=0.05, aspect=25)
    cbar.set_label("R_attn")

    colors = ["0.5"] * blocks if bg is None else [BG if i in bg else FG for i in range(blocks)]
    b.barh(np.arange(blocks), np.nan_to_num(per_block), color=colors, height=0.7)
    if tau is not None:
        b.axvline(tau, color="k", ls="--", lw=1)
    b.set_xlim(0, 1)
    b.set_xlabel("R_attn, mean over steps")
    b.tick_params(labelleft=False)
    if bg is None:
        b.set_title("blocks not classified\n(no plan in the file)")
    else:
        b.set_title("classification (from %s)" % source)
        handles = [Patch(color=FG, label="foreground (always computed)"), Patch(color=BG, label="background (cached)")]
        if tau is not None:
            handles.append(plt.Line2D([], [], color="k", ls="--", label="tau = %.3g" % tau))
        b.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.75 / (fig_h - 1.2)), frameon=False)
        for t in a.get_yticklabels():
            i = int(round(float(t.get_position()[1])))
            t.set_color(BG if i in bg else FG)
            t.set_fontweight("bold")
    fig.suptitle("%s: attention distribution over blocks and steps" % exp.name)
    return [common.save(fig, out_dir, "attention")]


if __name__ == "__main__":
    common.main(make)
