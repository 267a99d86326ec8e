#!/usr/bin/env python3
"""Learning curves of embedded-model training runs: the strict detector's rates against training time.

    python3 scripts/learning_curve.py OUT.png LABEL=STATE/curve.csv [LABEL=STATE/curve.csv ...]

Each curve.csv is written by `profdit train` when its config sets sampling.eval_every (one row per
evaluation: step, train_seconds, pairs, sprite, background, direction, all, shape, size_error, ...).
One panel per rate; the dashed lines are the issue's gates (sprite 0.8, background 0.9, direction 0.7, all 0.6).
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

RATES = [("sprite", 0.8), ("background", 0.9), ("direction", 0.7), ("all", 0.6), ("shape", None)]


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def main(argv):
    if len(argv) < 3 or any("=" not in a for a in argv[2:]):
        sys.exit(__doc__)
    runs = [(a.split("=", 1)[0], read(a.split("=", 1)[1])) for a in argv[2:]]
    fig, axes = plt.subplots(1, len(RATES), figsize=(3.2 * len(RATES), 3.0), sharey=True)
    for ax, (rate, gate) in zip(axes, RATES):
        for label, rows in runs:
            hours = [float(r["train_seconds"]) / 3600 for r in rows]
            ax.plot(hours, [float(r[rate]) for r in rows], marker="o", ms=3, label=label)
        if gate is not None:
            ax.axhline(gate, ls="--", c="gray", lw=0.8)
        ax.set_title(rate)
        ax.set_xlabel("training time (h)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("share of held-out videos")
    axes[-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(argv[1], dpi=120)


if __name__ == "__main__":
    main(sys.argv)
