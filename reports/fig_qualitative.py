#!/usr/bin/env python3
"""Qualitative grid: frames of the reference and of each policy setting, with the difference to the reference."""
import numpy as np
import matplotlib.pyplot as plt

import common

TITLE = "Qualitative comparison"
CAPTION = ("Frames of the uncached reference (top row) and of each policy setting for the first (prompt, seed) "
           "pair with stored video; under each setting, the per-pixel absolute difference to the reference "
           "(mean over RGB, 0-255 scale, colour bar on the right). Up to 8 settings and 6 frames are shown.")

MAX_SETTINGS, MAX_FRAMES = 8, 6


def make(exp, out_dir):
    for pair, ref in sorted(exp.refs.items()):
        if not ref.has("video"):
            continue
        rows = []
        for s in exp.settings(include_none=False):
            run = next((r for r in s.runs if r.pair == pair and r.has("video")), None)
            if run is not None:
                rows.append((s.tag, run))
        if rows:
            break
    else:
        if any(r.has("video") for r in exp.refs.values()):
            raise common.Skip("no finished cached run with stored video to compare with its reference")
        raise common.Skip("no stored video (run the experiment with video: true)")
    rows = rows[:MAX_SETTINGS]
    ref_video = ref.ds("video")  # [F, H, W, 3] uint8
    frames = np.unique(np.linspace(0, ref_video.shape[0] - 1, min(MAX_FRAMES, ref_video.shape[0])).round().astype(int))
    h, w = ref_video.shape[1:3]
    cell = 1.3
    n_rows = 1 + 2 * len(rows)
    fig, axes = plt.subplots(n_rows, len(frames), figsize=(cell * len(frames) * w / h + 2.6, cell * n_rows + 0.9),
                             squeeze=False, layout="constrained")
    diff_im = None
    for j, f in enumerate(frames):
        axes[0, j].imshow(ref_video[f], interpolation="nearest")
        axes[0, j].set_title("frame %d" % f)
    axes[0, 0].set_ylabel("reference\n(uncached)", fontsize=8)
    for i, (tag, run) in enumerate(rows):
        video = run.ds("video")
        psnr = run.metric_mean("psnr")
        label = common.wrap(tag) + ("\nPSNR %.1f dB" % psnr if psnr == psnr else "")
        for j, f in enumerate(frames):
            axes[1 + 2 * i, j].imshow(video[f], interpolation="nearest")
            d = np.abs(video[f].astype(np.float64) - ref_video[f].astype(np.float64)).mean(axis=2)
            diff_im = axes[2 + 2 * i, j].imshow(d, cmap="magma", vmin=0, vmax=64, interpolation="nearest")
        axes[1 + 2 * i, 0].set_ylabel(label, fontsize=8)
        axes[2 + 2 * i, 0].set_ylabel("|diff| to ref.", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    cbar = fig.colorbar(diff_im, ax=axes.ravel().tolist(), shrink=0.5, extend="max")
    cbar.set_label("|run - reference| (0-255)")
    fig.suptitle("%s: prompt %d, seed %d\n%s" % (exp.name, ref.prompt_index, ref.seed, common.short(ref.prompt, 70)),
                 fontsize=10)
    return [common.save(fig, out_dir, "qualitative")]


if __name__ == "__main__":
    common.main(make)
