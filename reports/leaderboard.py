#!/usr/bin/env python3
"""The leaderboard of a file with budget-matched settings (/budget groups, docs/experiments.md "Budget targets"):
one ranked table per budget. report.py adds it as a section; alone it prints the tables as markdown, stamped
with the file's build, device, dtype and model (for docs/leaderboard.md):

    python3 reports/leaderboard.py FILE.h5 [--with OTHER.h5 ...] [--figure DIR] > table.md

--with adds the settings of another file that ran the same pairs (same model, device and dtype; every reference
it shares with FILE the same caption, seed and latent, bit for bit), e.g. integer-knob rows run after the
leaderboard; they join the budgets like FILE's settings without a target. --figure writes the Pareto figure of
the joined boards (fig_leaderboard.py) to DIR.
"""
import argparse
import math
import os
import re
import sys

sys.dont_write_bytecode = True  # the scripts may live in a read-only source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import numpy as np  # noqa: E402

RANK_BY = ("psnr", True)  # the ranking rule: this metric's mean over pairs, higher first when True
NEAREST_WITHIN = 0.15  # an unmatched setting joins the budget nearest its ideal speedup within this relative distance
SEPARATION = 2.0  # adjacent ranks are separable when |paired mean difference| > SEPARATION standard errors
SHOWN_METRICS = ("psnr", "ssim", "ms_ssim", "lpips_proxy", "lpips", "psnr_fg", "psnr_bg", "flicker")


class Budget:
    """One compute budget: a target_speedup (kind `speedup`) or target_computed (`computed`) value, its label
    (`x2`, `c0.5`: the suffix of the matched settings' tags) and the policies matched to it."""

    def __init__(self, kind, target, label):
        self.kind, self.target, self.label = kind, target, label
        self.ideal = target if kind == "speedup" else 1.0 / target  # the ideal speedup the target stands for
        self.policies = set()

    def title(self):
        if self.kind == "speedup":
            return "%gx ideal" % self.target
        return "computed %g (%.3gx ideal)" % (self.target, self.ideal)


class Entry:
    """One policy setting on a budget's board, with its per-pair metric values."""

    def __init__(self, setting, budget, matched, metrics):
        self.setting, self.budget, self.matched = setting, budget, matched
        self.ideal = setting.mean(lambda r: r.ideal_speedup())
        self.values = {name: setting.by_pair(lambda r, n=name: r.metric_mean(n)) for name in metrics}

    def mean(self, name):
        vals = list(self.values[name].values())
        return float(np.mean(vals)) if vals else math.nan

    def error(self, name):
        return common.standard_error(list(self.values[name].values()))


def budgets(exp):
    """The file's budgets, one per target label, by ideal speedup; [] for a file without /budget groups."""
    found = {}
    for name, g in sorted(exp.f["budget"].items()) if "budget" in exp.f else []:
        attrs = {k: common._text(v) for k, v in g.attrs.items()}
        if attrs.get("status") != "done":
            continue
        policy = str(attrs["policy"])
        label = name.split("_", 1)[1][len(policy) + 1:]  # <setting index>_<policy>_<label>
        b = found.setdefault(label, Budget(str(attrs["target_kind"]), float(attrs["target"]), label))
        b.policies.add(policy)
    return sorted(found.values(), key=lambda b: (b.ideal, b.kind))


def matched_budget(setting, budgets):
    return next((b for b in budgets if setting.policy in b.policies and setting.tag.endswith("-" + b.label)), None)


def nearest_budget(ideal, budgets):
    near = [b for b in budgets if abs(ideal - b.ideal) <= NEAREST_WITHIN * b.ideal]
    return min(near, key=lambda b: abs(ideal - b.ideal)) if near else None


def rank_metric(exp):
    """RANK_BY's metric, or the first metric of the file when it lacks that one."""
    names = [m[0] for m in exp.metric_names()]
    return RANK_BY[0] if RANK_BY[0] in names or not names else names[0]


def ranked(entries, metric):
    """Best first by `metric` (RANK_BY's direction for RANK_BY's metric, else the metric's own); NaN last."""
    higher = RANK_BY[1] if metric == RANK_BY[0] else next((m[4] for m in common.METRICS if m[0] == metric), True)

    def key(e):
        m = e.mean(metric)
        return (math.isnan(m), -m if higher else m, e.setting.tag)

    return sorted(entries, key=key)


def check_same_pairs(exp, other):
    """Fails unless `other` ran exp's model, device and dtype, and each of its references is one of exp's: the same
    pair, caption and seed, and where both stored the latent, the same latent bit for bit."""
    for key in ("model", "device", "dtype"):
        if exp.attrs.get(key) != other.attrs.get(key):
            common.fail("%s: %s '%s' differs from %s's '%s': its settings cannot join that leaderboard"
                        % (other.path, key, other.attrs.get(key), exp.path, exp.attrs.get(key)))
    for pair, ref in sorted(other.refs.items()):
        mine = exp.refs.get(pair)
        if mine is None:
            common.fail("%s: reference %s is not in %s: the files ran different pairs" % (other.path, pair, exp.path))
        same = all(common._text(ref.attrs.get(k)) == common._text(mine.attrs.get(k)) for k in ("prompt", "seed"))
        if same and "latent" in ref.g and "latent" in mine.g:
            same = np.array_equal(ref.g["latent"][()], mine.g["latent"][()])
        if not same:
            common.fail("%s: reference %s differs from %s's (caption, seed or latent): the files ran different pairs"
                        % (other.path, pair, exp.path))


def boards(exp, others=()):
    """[(budget, ranked entries)] and the cached settings no budget takes (none is never ranked); the settings of
    `others` (files of the same pairs, check_same_pairs) join like exp's settings without a target."""
    found = budgets(exp)
    metrics = [m[0] for m in exp.metric_names()]
    members, unranked = {b.label: [] for b in found}, []
    for other in others:
        check_same_pairs(exp, other)
    for source, s in [(e, s) for e in (exp,) + tuple(others) for s in e.settings(include_none=False)]:
        b = matched_budget(s, found) if source is exp else None
        entry = Entry(s, b, b is not None, metrics)
        if not b:
            entry.budget = b = nearest_budget(entry.ideal, found)
        if b:
            members[b.label].append(entry)
        else:
            unranked.append(s)
    metric = rank_metric(exp)
    return [(b, ranked(members[b.label], metric)) for b in found], unranked


def paired_difference(upper, lower, metric):
    """Mean and standard error of upper - lower over the (prompt, seed) pairs both ran, and their count."""
    a, b = upper.values[metric], lower.values[metric]
    diffs = [a[p] - b[p] for p in sorted(set(a) & set(b))]
    return (float(np.mean(diffs)) if diffs else math.nan), common.standard_error(diffs), len(diffs)


def separability_note(upper_rank, upper, lower, metric):
    """'' when the lower entry is separable from the one ranked just above it, else the reason."""
    mean, error, n = paired_difference(upper, lower, metric)
    if n < 2:
        return "separability untested against #%d: %d shared pair(s)" % (upper_rank, n)
    if abs(mean) <= SEPARATION * error:
        return "not separable from #%d" % upper_rank
    return ""


def short_tag(tag, budget):
    """The tag without the budget label (the table says it) and with long numbers cut to 3 significant digits."""
    if budget and tag.endswith("-" + budget.label):
        tag = tag[: -len(budget.label) - 1]
    return re.sub(r"\d+\.\d{4,}", lambda m: "%.3g" % float(m.group()), tag)


def with_error(mean, error, decimals):
    if math.isnan(mean):
        return "-"
    return "%.*f" % (decimals, mean) + ("" if math.isnan(error) else " ± %.*f" % (decimals, error))


def measured_cell(setting):
    v = setting.measured_speedups()
    return "%.3f (%.3f-%.3f)" % (float(np.median(v)), min(v), max(v)) if v else "-"


def table(exp, entries):
    metrics = [m for m in exp.metric_names() if m[0] in SHOWN_METRICS]
    metric = rank_metric(exp)
    head = ["rank", "policy", "pairs", "ideal x", "measured x (range)"] + [m[1] for m in metrics] + ["notes"]
    rows = []
    for i, e in enumerate(entries):
        notes = [] if e.matched else ["no target: nearest budget"]
        if i > 0:
            notes.append(separability_note(i, entries[i - 1], e, metric))
        rows.append([str(i + 1), short_tag(e.setting.tag, e.budget), str(len(e.setting.runs)), "%.3f" % e.ideal,
                     measured_cell(e.setting)] + [with_error(e.mean(m[0]), e.error(m[0]), m[3]) for m in metrics] +
                    ["; ".join(n for n in notes if n)])
    return head, rows


def rule_text(exp):
    higher = RANK_BY[1] if rank_metric(exp) == RANK_BY[0] else None
    order = {True: "higher first", False: "lower first", None: "in the metric's better direction"}[higher]
    return ("One table per compute budget (a policy's target_speedup or target_computed). A setting matched to a "
            "budget is ranked there; a setting without one (step_skip, taylorseer, profiling_dit, a fixed "
            "threshold) joins the budget whose ideal speedup is nearest its own mean ideal speedup, if within "
            "%d%% of it (notes: no target), and its ideal x shows the mismatch; `none` is not ranked. Rank: mean %s "
            "over (prompt, seed) pairs, %s. Every metric is its mean ± the standard error of the mean over the "
            "pairs (sample standard deviation / sqrt(pairs)); ideal x is the mean flops_full / flops_computed; "
            "measured x is the median (min-max) of the measured speedup over every timed execution. Adjacent "
            "ranks: the %s difference is taken pair by pair over the pairs both ran; when |mean difference| <= "
            "%g x its standard error the lower one is marked `not separable from #k`."
            % (round(NEAREST_WITHIN * 100), rank_metric(exp), order, rank_metric(exp), SEPARATION))


def blocks(exp, others=()):
    """The report section (report.py's block list), [] for a file without budget-matched settings."""
    found, unranked = boards(exp, others)
    if not found:
        return []
    out = [("h2", "Leaderboard"), ("p", rule_text(exp))]
    for b, entries in found:
        out.append(("h3", b.title()))
        out.append(("table",) + table(exp, entries) if entries else ("note", "No finished run on this budget."))
    if unranked:
        out.append(("note", "Not ranked (no budget within %d%% of their ideal speedup): %s."
                    % (round(NEAREST_WITHIN * 100), ", ".join(s.tag for s in unranked))))
    return out


def markdown(exp, others=()):
    """The leaderboard tables alone, stamped with the files' builds, device, dtype and model."""
    a = exp.attrs
    joined = "".join(" with the settings of `%s` (commit %s)" % (os.path.basename(o.path), o.attrs.get("git_commit", "?"))
                     for o in others)
    out = ["Leaderboard of `%s`%s: commit %s, device %s, dtype %s, model %s."
           % (os.path.basename(exp.path), joined, a.get("git_commit", "?"), a.get("device", "?"), a.get("dtype", "?"),
              a.get("model", "?"))]
    for b in blocks(exp, others)[1:]:
        if b[0] == "h3":
            out.append("### " + b[1])
        elif b[0] == "table":
            out.append(common.markdown_table(b[1], b[2]))
        else:
            out.append(b[1] if b[0] == "p" else "*%s*" % b[1])
    return "\n\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description="the budget leaderboard of a profdit result file, as markdown on stdout")
    ap.add_argument("file", help="profdit result file (HDF5)")
    ap.add_argument("--with", dest="others", action="append", default=[], metavar="OTHER.h5",
                    help="add the settings of a file that ran the same pairs (repeatable)")
    ap.add_argument("--figure", metavar="DIR", help="also write the Pareto figure of the joined boards to DIR")
    args = ap.parse_args()
    exp = common.Experiment(args.file)
    others = [common.Experiment(path) for path in args.others]
    try:
        if not budgets(exp):
            common.fail("%s has no budget-matched setting (no /budget group): give a policy target_speedup or "
                        "target_computed" % exp.path)
        sys.stdout.write(markdown(exp, others))
        if args.figure:
            import fig_leaderboard  # imports this module: loaded only when asked for
            os.makedirs(args.figure, exist_ok=True)
            for path in fig_leaderboard.make(exp, args.figure, others):
                print("leaderboard.py: wrote %s" % path, file=sys.stderr)
    finally:
        for e in [exp] + others:
            e.close()


if __name__ == "__main__":
    main()
