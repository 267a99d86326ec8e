#!/usr/bin/env python3
"""Cache decision maps: which blocks each policy setting computed at each step."""
import math

import matplotlib.pyplot as plt
import numpy as np

import common

TITLE = "Cache decision maps"
CAPTION = ("One panel per policy setting: denoising steps left to right, DiT blocks top to bottom. Blue cells "
           "were computed, white cells reused their cached residual (or the whole prediction), orange cells were "
           "forecast from Taylor factors (TaylorSeer). With several runs (prompts, seeds) or branches that decide "
           "differently, a cell's shade is the fraction of those model calls that computed (or forecast) it. "
           "The uncached `none` setting computes every block and is left out.")


def make(exp, out_dir):
    panels = []
    for s in exp.settings(include_none=False):
        m = s.stack("cache/compute_mask")  # [runs, S, B, L]
        if m is not None:  # 1 computed, 2 forecast, 0 reused
            panels.append((s, (m == 1).mean(axis=(0, 2)).T, (m == 2).mean(axis=(0, 2)).T))  # [L, S] each
    if not panels:
        raise common.Skip("no finished cached run has cache/compute_mask")
    n = len(panels)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    steps, blocks = panels[0][1].shape[1], panels[0][1].shape[0]
    w = min(6.0, max(4.2, 0.1 * steps + 2.0))
    h = min(4.5, max(2.4, 0.2 * blocks + 1.4))
    fig, axes = plt.subplots(rows, cols, figsize=(w * cols + 1.0, h * rows + 0.5), squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, (s, frac, fore) in zip(axes.flat, panels):
        extent = (-0.5, frac.shape[1] - 0.5, frac.shape[0] - 0.5, -0.5)
        im = ax.imshow(frac, cmap="Blues", vmin=0, vmax=1, aspect="auto", interpolation="nearest", extent=extent)
        title = "%s\ncomputed %.1f%% of block calls" % (common.short(s.tag, 44), 100 * frac.mean())
        if fore.any():
            ax.imshow(np.ma.masked_equal(fore, 0), cmap="Oranges", vmin=0, vmax=1, aspect="auto", interpolation="nearest",
                      extent=extent)
            title += ", forecast %.1f%%" % (100 * fore.mean())
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("denoising step")
        ax.set_ylabel("DiT block")
        ax.grid(False)
        ax.set_yticks(np.arange(frac.shape[0]) if frac.shape[0] <= 16 else np.linspace(0, frac.shape[0] - 1, 8).round())
    cbar = fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.9)
    cbar.set_label("fraction of calls computed")
    fig.suptitle("%s: compute mask (steps x blocks)" % exp.name)
    return [common.save(fig, out_dir, "cache_maps")]


if __name__ == "__main__":
    common.main(make)
