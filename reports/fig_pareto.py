#!/usr/bin/env python3
"""Speed vs quality: measured speedup against PSNR, SSIM and LPIPS-proxy, one marker per policy setting."""
import math

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

import common

TITLE = "Speed vs quality"
CAPTION = ("Each filled marker is one policy setting: its measured DiT-loop speedup over the uncached reference "
           "and its quality against the reference (mean over prompts and seeds; bars: the range, min to max, "
           "over the runs when there are several). The hollow marker on the same row is the ideal speedup from FLOPs "
           "(flops_full / flops_computed). The dashed line is the uncached reference (speedup 1).")


def make(exp, out_dir):
    settings = exp.settings(include_none=False)
    if not settings:
        raise common.Skip("no finished cached run (only the uncached reference or nothing is done)")
    wanted = ["psnr", "ssim", "lpips_proxy"]
    metrics = [m for m in exp.metric_names() if m[0] in wanted]
    metrics.sort(key=lambda m: wanted.index(m[0]))
    if not metrics:
        raise common.Skip("no psnr, ssim or lpips_proxy metric in the file")
    colors = exp.colors()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 4.0), squeeze=False)
    for ax, (name, _, label, _, higher) in zip(axes[0], metrics):
        for s in settings:
            speed = s.mean(lambda r: r.attrs.get("speedup", math.nan))
            ideal = s.mean(lambda r: r.ideal_speedup())
            q = s.mean(lambda r: r.metric_mean(name))
            if math.isnan(q) or math.isnan(speed):
                continue
            c = colors[s.tag]
            ax.plot([speed, ideal], [q, q], ":", color=c, lw=1)
            ax.errorbar(speed, q, xerr=s.spread(lambda r: r.attrs.get("speedup", math.nan)),
                        yerr=s.spread(lambda r: r.metric_mean(name)), fmt="o", color=c, ms=7, capsize=2)
            ax.plot(ideal, q, "o", mfc="none", mec=c, ms=8, mew=1.5)
        ax.axvline(1.0, color="gray", ls="--", lw=1)
        ax.set_xlabel("speedup over the uncached reference (x)")
        ax.set_ylabel(label)
        ax.set_title("%s (%s is better)" % (label, "higher" if higher else "lower"))
        lo, hi = ax.get_xlim()
        ax.set_xlim(min(lo, 0.9), max(hi, 1.1))
    handles = [Line2D([], [], marker="o", ls="", color=colors[s.tag], label=common.short(s.tag, 48)) for s in settings]
    handles += [Line2D([], [], marker="o", ls="", color="gray", label="measured speedup"),
                Line2D([], [], marker="o", ls="", mfc="none", mec="gray", label="ideal speedup (FLOPs)")]
    fig.legend(handles=handles, loc="lower center", ncol=min(3, len(handles)), bbox_to_anchor=(0.5, -0.02 - 0.045 * math.ceil(len(handles) / 3)),
               frameon=False)
    fig.suptitle("%s: speed vs quality" % exp.name)
    fig.tight_layout()
    return [common.save(fig, out_dir, "pareto")]


if __name__ == "__main__":
    common.main(make)
