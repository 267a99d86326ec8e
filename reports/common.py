"""Loading a profdit result file (docs/hdf5-schema.md) and the conventions every figure script shares.

A figure script defines TITLE, CAPTION and make(exp, out_dir) -> [png paths], raising Skip when the file
lacks the data it needs, and ends with `if __name__ == "__main__": common.main(make)` so it also runs alone:
    python3 reports/fig_pareto.py out/quickstart.h5 --out DIR
"""
import argparse
import math
import os
import re
import sys

try:
    import h5py
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
except ImportError as e:
    sys.exit("profdit report: error: %s lacks %s: scripts/setup installs python3-matplotlib, python3-h5py and "
             "python3-numpy (or set PROFDIT_PYTHON to a python3 that has them)" % (sys.executable, e.name))

FORMAT_VERSION = 1  # the newest format these scripts read
BRANCHES = ("cond", "uncond")
METRICS = [  # name, column label, axis label, decimals, higher is better
    ("psnr", "psnr dB", "PSNR (dB)", 2, True),
    ("ssim", "ssim", "SSIM", 4, True),
    ("ms_ssim", "ms-ssim", "MS-SSIM", 4, True),
    ("lpips_proxy", "lpips-proxy (1-ms-ssim)", "LPIPS-proxy (1 - MS-SSIM)", 4, False),
    ("lpips", "lpips", "LPIPS", 4, False),
    ("psnr_fg", "psnr fg dB", "PSNR foreground (dB)", 2, True),
    ("psnr_bg", "psnr bg dB", "PSNR background (dB)", 2, True),
    ("flicker", "flicker vs ref", "flicker vs reference (0-255)", 4, False),
]

plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "font.size": 10, "axes.titlesize": 10,
                     "legend.fontsize": 8, "axes.grid": True, "grid.alpha": 0.3})


class Skip(Exception):
    """The file lacks optional data this figure needs; the message says which and how to get it."""


def _text(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.ndarray) and v.dtype.kind in "SO":
        return [_text(x) for x in v.tolist()]
    if isinstance(v, np.generic):
        return v.item()
    return v


class Group:
    """One /runs/<id> or /references/<p>_<s> group."""

    def __init__(self, h5group, kind):
        self.g = h5group
        self.kind = kind  # "run" or "reference"
        self.id = h5group.name.rsplit("/", 1)[1]
        self.attrs = {k: _text(v) for k, v in h5group.attrs.items()}
        self.status = str(self.attrs.get("status", ""))
        self.done = self.status == "done"
        # A run still `running` (or failed early) has only its status: the rest comes from the id,
        # <policy tag>_p<prompt index>_s<seed> for runs, <prompt index>_<seed> for references.
        m = re.match(r"^(.*)_p(\d+)_s(\d+)$", self.id) if kind == "run" else re.match(r"^()(\d+)_(\d+)$", self.id)
        tag, p, s = m.groups() if m else (self.id, -1, -1)
        self.tag = str(self.attrs.get("policy_tag", tag if kind == "run" else "reference"))
        self.policy = str(self.attrs.get("policy", self.tag.split("-")[0] if kind == "run" else "none"))
        self.prompt = str(self.attrs.get("prompt", ""))
        self.prompt_index = int(self.attrs.get("prompt_index", p))
        self.seed = int(self.attrs.get("seed", s))
        self.pair = "%d_%d" % (self.prompt_index, self.seed)

    def has(self, name):
        return name in self.g

    def ds(self, name, default=None):
        """The dataset as a numpy array (a scalar as a float), or default when absent."""
        if name not in self.g:
            return default
        v = self.g[name][()]
        return float(v) if np.ndim(v) == 0 else v

    def metric_mean(self, name):
        d = "metrics/" + name
        if d not in self.g:
            return math.nan
        return float(self.g[d].attrs.get("mean", np.nanmean(self.g[d][()])))

    def ideal_speedup(self):
        full, done = self.ds("cache/flops_full"), self.ds("cache/flops_computed")
        return full / done if full is not None and done else math.nan


class Setting:
    """The done runs of one policy setting (one policy_tag), over prompts and seeds."""

    def __init__(self, tag, runs):
        self.tag = tag
        self.runs = runs
        self.policy = runs[0].policy

    def mean(self, f):
        vals = [f(r) for r in self.runs]
        vals = [v for v in vals if v is not None and not math.isnan(v)]
        return float(np.mean(vals)) if vals else math.nan

    def spread(self, f):
        """Error-bar lengths [[below], [above]] from the mean to the runs' smallest and largest value: the bar
        spans their min-max range, so it never leaves the metric's own range (SSIM <= 1, LPIPS-proxy >= 0)."""
        vals = [f(r) for r in self.runs]
        vals = [v for v in vals if v is not None and not math.isnan(v)]
        if len(vals) < 2:
            return [[0.0], [0.0]]
        m = float(np.mean(vals))
        return [[max(0.0, m - min(vals))], [max(0.0, max(vals) - m)]]

    def by_pair(self, f):
        """{pair: f(run)} over the runs, NaN and None left out (one run per (prompt, seed) pair)."""
        vals = {r.pair: f(r) for r in self.runs}
        return {p: v for p, v in vals.items() if v is not None and not math.isnan(v)}

    def measured_speedups(self):
        """The measured speedup of every timed execution of the runs (latency/speedup_repeats); a file
        written before it existed gives each run's `speedup` (the ratio of the medians) instead."""
        vals = []
        for r in self.runs:
            repeats = r.ds("latency/speedup_repeats")
            vals += [float(v) for v in repeats] if repeats is not None else [float(r.attrs.get("speedup", math.nan))]
        return [v for v in vals if not math.isnan(v)]

    def stack(self, name):
        """The dataset of every run that has it, stacked on a new first axis (None when no run has it)."""
        arrs = [r.ds(name) for r in self.runs if r.has(name)]
        shapes = {np.shape(a) for a in arrs}
        if not arrs or len(shapes) != 1:
            return None
        return np.stack(arrs).astype(np.float64)


class Experiment:
    def __init__(self, path):
        self.path = path
        if not os.path.exists(path):
            fail("%s: file not found" % path)
        try:
            self.f = h5py.File(path, "r")
        except OSError:
            fail("%s: not an HDF5 file" % path)
        self.attrs = {k: _text(v) for k, v in self.f.attrs.items()}
        version = self.attrs.get("format_version")
        if version is None:
            fail("%s is not a profdit result file (no format_version attribute)" % path)
        if int(version) > FORMAT_VERSION:
            fail("%s was written by format version %d; these scripts read up to %d, update profdit"
                 % (path, int(version), FORMAT_VERSION))
        self.yaml = str(self.attrs.get("experiment_yaml", ""))
        m = re.search(r"^name:\s*(.+?)\s*$", self.yaml, re.M)
        self.name = m.group(1).strip("'\"") if m else os.path.splitext(os.path.basename(path))[0]
        self.runs = [Group(g, "run") for _, g in sorted(self.f["runs"].items())] if "runs" in self.f else []
        self.references = ([Group(g, "reference") for _, g in sorted(self.f["references"].items())]
                           if "references" in self.f else [])
        self.refs = {r.pair: r for r in self.references if r.done}
        self.plan = self.f["plan"] if "plan" in self.f else None

    def close(self):
        self.f.close()

    def done_runs(self):
        return [r for r in self.runs if r.done]

    def settings(self, include_none=True):
        """Policy settings with at least one done run: `none` first, then by tag."""
        by_tag = {}
        for r in self.done_runs():
            by_tag.setdefault(r.tag, []).append(r)
        tags = sorted(by_tag, key=lambda t: (by_tag[t][0].policy != "none", t))
        return [Setting(t, by_tag[t]) for t in tags if include_none or by_tag[t][0].policy != "none"]

    def reference_of(self, run):
        ref = str(run.attrs.get("reference", "/references/" + run.pair)).rsplit("/", 1)[1]
        return self.refs.get(ref)

    def metric_names(self):
        present = set()
        for r in self.done_runs():
            if "metrics" in r.g:
                present.update(r.g["metrics"].keys())
        known = [self._lpips_labelled(m) if m[0] == "lpips" else m for m in METRICS if m[0] in present]
        return known + [(n, n, n, 4, True) for n in sorted(present - {m[0] for m in METRICS})]

    def _lpips_labelled(self, m):
        """The LPIPS entry labelled with its convention, read from the stored note (docs/metrics.md)."""
        note = next((_text(r.g["metrics/lpips"].attrs.get("note", "")) for r in self.done_runs() if r.has("metrics/lpips")), "")
        conv = "mean" if "spatial=False" in note else "spatial"
        return (m[0], "lpips (alex, %s)" % conv, "LPIPS (AlexNet, %s)" % conv) + tuple(m[3:])

    def colors(self):
        """A fixed colour per policy setting (none: black), the same in every figure."""
        cmap = plt.get_cmap("tab10")
        out, i = {}, 0
        for s in self.settings():
            if s.policy == "none":
                out[s.tag] = "black"
            else:
                out[s.tag] = cmap(i % 10)
                i += 1
        return out


def fail(msg):
    print("profdit report: error: " + msg, file=sys.stderr)
    sys.exit(2)


def save(fig, out_dir, name):
    """Writes NAME.png and NAME.pdf (no timestamps, so identical input gives identical files)."""
    os.makedirs(out_dir, exist_ok=True)
    png, pdf = os.path.join(out_dir, name + ".png"), os.path.join(out_dir, name + ".pdf")
    fig.savefig(png, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(pdf, bbox_inches="tight", metadata={"CreationDate": None, "Creator": None, "Producer": None})
    plt.close(fig)
    return png


def standard_error(values):
    """Standard error of the mean (sample standard deviation / sqrt(n)); NaN with fewer than two values."""
    if len(values) < 2:
        return math.nan
    return float(np.std(values, ddof=1) / math.sqrt(len(values)))


def markdown_table(head, rows):
    def cell(s):
        return str(s).replace("|", "\\|").replace("\n", " ")

    return "\n".join(["| " + " | ".join(cell(h) for h in head) + " |", "|" + "|".join("---" for _ in head) + "|"] +
                     ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows])


def short(tag, width=34):
    return tag if len(tag) <= width else tag[: width - 1] + "…"


def wrap(tag, width=20):
    """A policy tag broken at its '-' separators into lines of about `width` characters."""
    lines, cur = [], ""
    for part in tag.split("-"):
        piece = part if not cur else "-" + part
        if cur and len(cur) + len(piece) > width:
            lines.append(cur + "-")
            cur = part
        else:
            cur += piece
    return "\n".join(lines + [cur])


def main(make):
    ap = argparse.ArgumentParser(description=(make.__module__ if make.__module__ != "__main__" else "figure script"))
    ap.add_argument("file", help="profdit result file (HDF5)")
    ap.add_argument("--out", default=".", help="folder for the PNG and PDF")
    a = ap.parse_args()
    exp = Experiment(a.file)
    try:
        for p in make(exp, a.out):
            print(p)
    except Skip as e:
        print("skipped: %s" % e, file=sys.stderr)
    finally:
        exp.close()
