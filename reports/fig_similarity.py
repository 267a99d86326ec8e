#!/usr/bin/env python3
"""Inter-step similarity of the noise prediction: the uncached reference and each policy setting."""
import math
import re

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

import common

TITLE = "Inter-step change of the noise prediction"
CAPTION = ("Relative L1 change of the noise prediction from the previous step (lower: more similar), cond branch "
           "solid, uncond dashed, mean over prompts and seeds. Grey: the uncached reference. Shaded: warm-up "
           "(the policy's `warmup` steps, or else the leading steps every run computed in full); dotted verticals: refresh steps "
           "(full computation after the warm-up in every run); crosses: steps where at least one block was reused.")


def warmup_and_refresh(mask, params):
    """mask [runs, S, B, L] and the policy_params YAML -> (warm-up length, refresh steps, steps with any reuse).
    The warm-up is the policy's `warmup` option, or else the leading steps every run computed in full."""
    full = (mask == 1).all(axis=(2, 3))  # [runs, S]: the step computed every block of both branches (2 = forecast)
    all_full = full.all(axis=0)
    m = re.search(r"\bwarmup:\s*(\d+)", params)
    if m:
        warm = min(int(m.group(1)), len(all_full))
    else:
        warm = 0
        while warm < len(all_full) and all_full[warm]:
            warm += 1
    refresh = [s for s in range(warm, len(all_full)) if all_full[s]]
    reused = [s for s in range(len(all_full)) if not full[:, s].all()]
    return warm, refresh, reused


def make(exp, out_dir):
    name = "similarity/noise_pred_rel_l1"
    refs = [r for r in exp.refs.values() if r.has(name)]
    settings = [s for s in exp.settings(include_none=False) if s.stack(name) is not None]
    if not refs and not settings:
        raise common.Skip("no noise_pred_rel_l1 in the file (the experiment ran with profile: {similarity: false})")
    ref = np.stack([r.ds(name) for r in refs]).mean(axis=0) if refs else None  # [S, B]
    colors = exp.colors()
    panels = settings or [None]
    cols = min(len(panels), 2)
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.0 * cols, 3.3 * rows + 0.8), squeeze=False, sharey=True,
                             layout="constrained")
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, s in zip(axes.flat, panels):
        if ref is not None:
            steps = np.arange(ref.shape[0])
            ax.plot(steps, ref[:, 0], "-", color="0.6", lw=2)
            ax.plot(steps, ref[:, 1], "--", color="0.6", lw=2)
        if s is None:
            ax.set_title("uncached reference")
        else:
            y = s.stack(name).mean(axis=0)  # [S, B]
            steps = np.arange(y.shape[0])
            c = colors[s.tag]
            mask = s.stack("cache/compute_mask")
            if mask is not None:
                warm, refresh, reused = warmup_and_refresh(mask, str(s.runs[0].attrs.get("policy_params", "")))
                if warm:
                    ax.axvspan(-0.5, warm - 0.5, color=c, alpha=0.12, lw=0)
                for r in refresh:
                    ax.axvline(r, color=c, ls=":", lw=1.2)
                ax.plot(reused, y[reused, 0], "x", color=c, ms=6, mew=1.5)
            ax.plot(steps, y[:, 0], "-", color=c, lw=1.5)
            ax.plot(steps, y[:, 1], "--", color=c, lw=1.5)
            ax.set_title(common.short(s.tag, 60))
        ax.set_xlabel("denoising step")
        ax.set_ylabel("rel. L1 change of noise pred.")
        ax.set_xlim(-0.5, (ref if ref is not None else y).shape[0] - 0.5)
        ax.set_ylim(bottom=0)
    handles = [Line2D([], [], color="0.6", lw=2, label="uncached reference"),
               Line2D([], [], color="k", ls="-", label="cond branch"),
               Line2D([], [], color="k", ls="--", label="uncond branch"),
               Patch(color="k", alpha=0.12, label="warm-up"),
               Line2D([], [], color="k", ls=":", label="refresh step"),
               Line2D([], [], color="k", marker="x", ls="", label="blocks reused")]
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0), ncol=6, frameon=False)
    fig.suptitle("%s: inter-step change of the noise prediction" % exp.name)
    return [common.save(fig, out_dir, "similarity")]


if __name__ == "__main__":
    common.main(make)
