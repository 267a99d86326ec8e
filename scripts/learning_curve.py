#!/usr/bin/env python3
"""Learning curves of embedded-model training runs: the strict detector's rates against training time.

    python3 scripts/learning_curve.py [--steps] OUT.png LABEL=STATE/curve.csv [LABEL=STATE/curve.csv ...]

Each curve.csv is written by `profdit train` when its config sets sampling.eval_every (one row per
evaluation: step, train_seconds, pairs, sprite, background, direction, all, shape, size_error, ...).
One panel per rate; the dashed lines are the issue's gates (sprite 0.8, background 0.9, direction 0.7, all 0.6).
Runs on a world with heading (curve.csv's heading and motion_follows_heading cells filled) get two panels more.
When a run's probe.csv lies beside its curve.csv (the caption probe at each evaluation; for a copy NAME.csv,
NAME-probe.csv), a last panel shows its direction gap at sigma 0.95: how much the loss rises when the direction
word is reversed.
The x axis is training time, or with --steps the step (comparable across runs on machines of different load).
"""
import csv
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RATES = [("sprite", 0.8), ("background", 0.9), ("direction", 0.7), ("all", 0.6), ("shape", None)]
HEADING = [("heading", None), ("motion_follows_heading", None)]


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def probe_beside(curve_path):
    """A state folder's probe.csv beside its curve.csv, or NAME-probe.csv beside a copied NAME.csv: sigma 0.95 rows."""
    if os.path.basename(curve_path) == "curve.csv":
        path = os.path.join(os.path.dirname(curve_path), "probe.csv")
    else:
        path = curve_path[:-len(".csv")] + "-probe.csv"
    return [r for r in read(path) if abs(float(r["sigma"]) - 0.95) < 1e-6] if os.path.exists(path) else []


def main(argv):
    steps = "--steps" in argv
    argv = [a for a in argv if a != "--steps"]
    if len(argv) < 3 or any("=" not in a for a in argv[2:]):
        sys.exit(__doc__)
    runs = [(a.split("=", 1)[0], read(a.split("=", 1)[1]), probe_beside(a.split("=", 1)[1])) for a in argv[2:]]
    with_probe = any(p for _, _, p in runs)
    rates = RATES + [h for h in HEADING if any(r.get(h[0]) for _, rows, _ in runs for r in rows)]
    panels = len(rates) + (1 if with_probe else 0)
    fig, axes = plt.subplots(1, panels, figsize=(3.2 * panels, 3.0))

    def x_of(r, seconds):
        return float(r["step"]) if steps else seconds.get(r["step"], float("nan")) / 3600

    xlabel = "step" if steps else "training time (h)"
    for ax, (rate, gate) in zip(axes, rates):
        for label, rows, _ in runs:
            seconds = {r["step"]: float(r["train_seconds"]) for r in rows}
            shown = [r for r in rows if r.get(rate)]
            ax.plot([x_of(r, seconds) for r in shown], [float(r[rate]) for r in shown], marker="o", ms=3, label=label)
        if gate is not None:
            ax.axhline(gate, ls="--", c="gray", lw=0.8)
        ax.set_title(rate.replace("_", " "))
        ax.set_xlabel(xlabel)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    if with_probe:
        ax = axes[-1]
        for label, rows, probe in runs:
            seconds = {r["step"]: float(r["train_seconds"]) for r in rows}
            ax.plot([x_of(r, seconds) for r in probe], [100 * float(r["gap_direction"]) for r in probe], marker="o", ms=3, label=label)
        ax.axhline(0, c="gray", lw=0.8)
        ax.set_title("direction gap, sigma 0.95 (%)")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of held-out videos")
    axes[len(rates) - 1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(argv[1], dpi=120)


if __name__ == "__main__":
    main(sys.argv)
