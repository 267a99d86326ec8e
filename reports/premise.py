#!/usr/bin/env python3
"""ProfilingDiT's premise, checked on a profdit result file (issue 18.4): does each DiT block consistently attend
to the foreground or the background, does caching the background-focused blocks beat caching other blocks at the
same budget, and what does the step curve suggest. Markdown on stdout, figures into --out DIR:

    python3 reports/premise.py PROFILE.h5 [--ablation ABLATION.h5] [--plan PLAN.yaml] [--out DIR]

PROFILE.h5 needs references with profile/r_attn (`profdit profile`, or `profdit run` with profile: {attention:
true}); ABLATION.h5 is experiments/ablation-blocks.yaml's output. The definitions are in docs/profiling.md
("Checking the premise").
"""
import argparse
import math
import os
import re
import shlex
import sys
import warnings

sys.dont_write_bytecode = True  # the scripts may live in a read-only source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

CONSISTENT_SHARE = 0.8  # a block is consistent when at least this share of its values lies on its mean's side of tau
EARLY_SHARE = 0.1  # the step curve's early level: the mean of this leading share of the steps
WARMUP_RATIO = 2.0  # profdit profile's default --warmup-ratio
SEPARATION = 2.0  # a paired difference is separable when its interval mean ± SEPARATION standard errors excludes 0
ABLATION_METRICS = (("psnr", "PSNR"), ("psnr_fg", "fg-PSNR"), ("psnr_bg", "bg-PSNR"))


def nanmean(a, axis=None):
    """np.nanmean without the all-NaN warning (such a slice gives NaN)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def nanstd(a, axis=None):
    """Population standard deviation over the defined values (NaN when there are none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanstd(a, axis=axis)


def fmt(v, decimals=3):
    return "-" if v is None or math.isnan(v) else "%.*f" % (decimals, v)


def stamp(exp):
    return "File `%s`: commit %s, model %s." % (exp.path, exp.attrs.get("git_commit", "?"), exp.attrs.get("model", "?"))


def section(title, command, exps, body):
    """A markdown section: heading, the command that regenerates it, the files' builds, then the body lines."""
    stamps = [stamp(e) for e in exps] + [""] if exps else []
    return "\n".join(["## " + title, "", "Command: `%s`" % command, ""] + stamps + body)


# --- the profile -----------------------------------------------------------------------------------------------

def r_attn_stack(exp):
    """R_attn of every done reference with a profile, [pairs, S, blocks], and the pairs; exits 2 without any."""
    refs = [r for r in exp.refs.values() if r.has("profile/r_attn")]
    if not refs:
        common.fail("%s: no profile data (no done /references/*/profile/r_attn; run profdit profile, or profdit run "
                    "with profile: {attention: true})" % exp.path)
    shapes = {r.ds("profile/r_attn").shape for r in refs}
    if len(shapes) != 1:
        common.fail("%s: profile/r_attn has different shapes across references: %s" % (exp.path, sorted(shapes)))
    return np.stack([r.ds("profile/r_attn") for r in refs]).astype(np.float64), [r.pair for r in refs]


class BlockStats:
    """Per-block R_attn statistics of a [pairs, S, blocks] stack."""

    def __init__(self, stack):
        self.stack = stack
        self.per_step = nanmean(stack, axis=0)  # [S, blocks]: mean over pairs
        self.per_pair = nanmean(stack, axis=1)  # [pairs, blocks]: mean over steps
        self.mean = nanmean(stack.reshape(-1, stack.shape[2]), axis=0)  # over every (pair, step)
        self.std_steps = nanstd(self.per_step, axis=0)
        self.std_pairs = nanstd(self.per_pair, axis=0)
        self.defined = (~np.isnan(stack)).sum(axis=(0, 1))

    @property
    def blocks(self):
        return self.stack.shape[2]


def read_tau(path):
    """The `tau:` of an attention plan file (exits 2 when the file or the key is missing, or the plan's tau is not an
    R_attn threshold)."""
    if not os.path.exists(path):
        common.fail("%s: plan file not found" % path)
    with open(path, encoding="utf-8") as f:
        plan = f.read()
    method = re.search(r"^method:\s*(\S+)\s*$", plan, re.M)
    if method and method.group(1) != "attention":
        common.fail("%s: method %s, its tau is no R_attn threshold (pass the attention plan)" % (path, method.group(1)))
    m = re.search(r"^tau:\s*([-+0-9.eE]+)\s*$", plan, re.M)
    if not m:
        common.fail("%s: no tau in the plan file (a sensitivity or hand-written plan has none)" % path)
    return float(m.group(1))


class Consistency:
    """Which side of tau each block's mean lies on, and the share of `values` [n, blocks] on that side."""

    def __init__(self, values, mean, tau):
        self.foreground = mean >= tau  # the profiler's rule: R_attn >= tau is foreground-focused
        self.count = (~np.isnan(values)).sum(axis=0)
        same = np.where(np.isnan(values), False, (values >= tau) == self.foreground)
        self.share = np.where(self.count > 0, same.sum(axis=0) / np.maximum(self.count, 1), np.nan)
        self.consistent = np.where(np.isnan(mean), False, np.nan_to_num(self.share) >= CONSISTENT_SHARE)

    def holds(self):
        return int(self.consistent.sum()) > len(self.consistent) / 2

    def verdict(self, what):
        n, k = len(self.consistent), int(self.consistent.sum())
        return "**Verdict (%s): the premise %s**: %d of %d blocks are consistent (needed: more than %g)." % (
            what, "holds" if self.holds() else "does not hold", k, n, n / 2)

    def side(self, mean, b):
        return "-" if math.isnan(mean[b]) else ("foreground" if self.foreground[b] else "background")

    def rows(self, mean):
        return [[b, fmt(mean[b]), self.side(mean, b),
                 "-" if math.isnan(self.share[b]) else "%.1f%% of %d" % (100 * self.share[b], self.count[b]),
                 "yes" if self.consistent[b] else "no"] for b in range(len(mean))]


def tau_of(stats, plan):
    if plan:
        return read_tau(plan), "the plan's tau (`%s`)" % plan
    return float(np.nanmedian(stats.mean)), "the median of the blocks' mean R_attn (no --plan given)"


def r_attn_figure(stats, pairs, out_dir):
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 2.0 + 0.3 * max(stats.blocks, 6)), sharey=True,
                               gridspec_kw={"width_ratios": [3, 1]}, layout="constrained")
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("0.8")
    for ax, data, xlabel in ((a, stats.per_step, "denoising step (mean over pairs)"),
                             (b, stats.per_pair, "prompt_seed pair (mean over steps)")):
        im = ax.imshow(np.ma.masked_invalid(data.T), cmap=cmap, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        ax.set_xlabel(xlabel)
        ax.grid(False)
    b.set_xticks(range(len(pairs)), pairs, rotation=90)
    a.set_ylabel("block")
    a.set_yticks(range(stats.blocks))
    fig.colorbar(im, ax=b, label="R_attn")
    return common.save(fig, out_dir, "premise_r_attn")


def section_r_attn(exp, stats, pairs, command, out_dir):
    rows = [[b, fmt(stats.mean[b]), fmt(stats.std_steps[b]), fmt(stats.std_pairs[b]), int(stats.defined[b])]
            for b in range(stats.blocks)]
    body = ["R_attn of the cond branch, %d pairs x %d steps. mean: over every defined (pair, step) value; std over "
            "steps: population standard deviation over steps of the per-step mean over pairs; std over pairs: the "
            "same over pairs of the per-pair mean over steps. NaN (no foreground tokens) is left out."
            % (len(pairs), stats.stack.shape[1]), "",
            common.markdown_table(["block", "R_attn mean", "std over steps", "std over pairs", "defined values"], rows)]
    if out_dir:
        body += ["", "Figure: `%s` (per-step and per-pair means)." % r_attn_figure(stats, pairs, out_dir)]
    return section("(a) R_attn per block", command, [exp], body)


def section_consistency(exp, stats, plan, command):
    tau, source = tau_of(stats, plan)
    values = stats.stack.reshape(-1, stats.blocks)
    by_value, by_pair = Consistency(values, stats.mean, tau), Consistency(stats.per_pair, stats.mean, tau)
    head = ["block", "R_attn mean", "side", "share on that side", "consistent"]
    body = ["Test: tau = %s = %.4f. A block's side is foreground when its mean R_attn >= tau, else background. A "
            "block is consistent when at least %d%% of its defined values lie on the same side of tau as its mean; "
            "the premise (\"most blocks consistently prefer foreground or background\") holds when more than half "
            "of the blocks are consistent." % (source, tau, round(100 * CONSISTENT_SHARE)), "",
            "Values: every defined (pair, step) R_attn.", "", common.markdown_table(head, by_value.rows(stats.mean)),
            "", by_value.verdict("per (pair, step)"), "",
            "Values: the per-pair means over steps (is the side stable across prompts?).", "",
            common.markdown_table(head, by_pair.rows(stats.mean)), "", by_pair.verdict("per pair")]
    return section("(b) Do blocks consistently prefer foreground or background?", command, [exp], body)


# --- the step curve --------------------------------------------------------------------------------------------

def late_level(curve):
    """The median of the curve's second half, NaN left out (harness/profile/plan_builder.cpp late_level)."""
    late = curve[len(curve) // 2:]
    late = late[~np.isnan(late)]
    return float(np.median(late)) if len(late) else math.nan


def early_level(curve):
    """The mean of the first EARLY_SHARE of the steps (at least one), NaN (step 0) left out."""
    return float(nanmean(curve[:max(1, round(EARLY_SHARE * len(curve)))]))


def suggested_warmup(curve, ratio=WARMUP_RATIO):
    """The warm-up profdit profile suggests (plan_builder.cpp suggest_schedule): the first step after which the curve
    stays below ratio x its late level, up to its lowest step (where the final rise cannot have begun)."""
    steps = len(curve)
    if steps < 3:
        return steps
    best = 1
    for s in range(1, steps):
        if not math.isnan(curve[s]) and (math.isnan(curve[best]) or curve[s] < curve[best]):
            best = s
    high = ratio * late_level(curve)
    warmup = 1
    for s in range(1, best + 1):
        if math.isnan(curve[s]) or curve[s] >= high:
            warmup = s + 1
    return min(warmup, steps)


def step_curves(exp):
    """The cond branch's noise_pred_rel_l1 of every done reference, [pairs, S], or None."""
    refs = [r for r in exp.refs.values() if r.has("similarity/noise_pred_rel_l1")]
    curves = [r.ds("similarity/noise_pred_rel_l1")[:, 0] for r in refs]
    if not curves or len({c.shape for c in curves}) != 1:
        return None
    return np.stack(curves).astype(np.float64)


def step_figure(curves, late, warmup, out_dir):
    mean, steps = nanmean(curves, axis=0), np.arange(curves.shape[1])
    fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ax.fill_between(steps, np.nanmin(curves, axis=0), np.nanmax(curves, axis=0), color="C0", alpha=0.25, lw=0,
                        label="min-max over pairs")
    ax.plot(steps, mean, "-", color="C0", lw=1.5, label="mean over pairs")
    ax.axhline(late, color="0.4", ls="--", lw=1, label="late level (median of 2nd half)")
    ax.axhline(WARMUP_RATIO * late, color="C3", ls=":", lw=1, label="%g x late level" % WARMUP_RATIO)
    ax.axvline(warmup - 0.5, color="C3", lw=1, label="suggested warm-up (%d steps)" % warmup)
    ax.set_yscale("log")
    ax.set_xlabel("denoising step")
    ax.set_ylabel("rel. L1 change of noise pred. (cond)")
    ax.legend()
    return common.save(fig, out_dir, "premise_step_curve")


def section_steps(exp, command, out_dir):
    title = "(d) Step-level change of the noise prediction"
    curves = step_curves(exp)
    if curves is None:
        return section(title, command, [exp], ["Not computed: no references with similarity/noise_pred_rel_l1 "
                                               "of one shape in `%s`." % exp.path])
    mean = nanmean(curves, axis=0)
    early, late = early_level(mean), late_level(mean)
    warmup = suggested_warmup(mean)
    n_early = max(1, round(EARLY_SHARE * len(mean)))
    rows = [["early level: mean of steps 0-%d (step 0 is NaN)" % (n_early - 1), fmt(early, 4)],
            ["late level: median of steps %d-%d" % (len(mean) // 2, len(mean) - 1), fmt(late, 4)],
            ["early / late", fmt(early / late, 2)],
            ["first step from which the curve stays below %g x the late level (the suggested warm-up, "
             "--warmup-ratio %g)" % (WARMUP_RATIO, WARMUP_RATIO), str(warmup)]]
    body = ["Relative L1 change of the cond branch's noise prediction from the previous step, mean over %d pairs "
            "(%d steps). The warm-up rule is profdit profile's: the curve stays below the line up to its lowest "
            "step (a final rise after it is the plan's final_full)." % curves.shape, "",
            common.markdown_table(["quantity", "value"], rows)]
    if out_dir:
        body += ["", "Figure: `%s`." % step_figure(curves, late, warmup, out_dir)]
    return section(title, command, [exp], body)


# --- the auto mask ---------------------------------------------------------------------------------------------

def section_mask(exp, command):
    title = "(e) Auto mask vs ground truth"
    ious = [float(r.g["profile/mask_auto"].attrs["iou_vs_gt"]) for r in exp.refs.values()
            if r.has("profile/mask_auto") and "iou_vs_gt" in r.g["profile/mask_auto"].attrs]
    ious = [v for v in ious if not math.isnan(v)]
    if not ious:
        return section(title, command, [exp], ["Not computed: no reference in `%s` has profile/mask_auto with a "
                                               "defined iou_vs_gt." % exp.path])
    rows = [[len(ious), fmt(float(np.mean(ious))), fmt(min(ious)), fmt(max(ious))]]
    return section(title, command, [exp], ["IoU of profile/mask_auto against the gt mask, over the references.", "",
                                           common.markdown_table(["references", "mean", "min", "max"], rows)])


# --- the block ablation ----------------------------------------------------------------------------------------

def ablation_kind(setting):
    """('background' | 'foreground' | 'random' | 'sensitivity', random seed or None) of a profiling_dit setting,
    from the plan name in its policy_params: <plan>[-foreground | -random<seed>][-n<count>]
    (policies/profiling_dit.cpp)."""
    m = re.search(r"\bplan:\s*([^,}\s]+)", str(setting.runs[0].attrs.get("policy_params", "")))
    plan = m.group(1) if m else setting.tag
    m = re.search(r"-(foreground|random(\d+))(-n\d+)?$", plan)
    if m:
        return ("random", int(m.group(2))) if m.group(2) else ("foreground", None)
    return ("sensitivity" if "sensitivity" in plan else "background"), None


def ablation_schedule(setting):
    """The step schedule part of a profiling_dit tag (`w12-fixed2-f7`), '' when the tag has none."""
    m = re.search(r"-(w\d+-.+)$", setting.tag)
    return m.group(1) if m else ""


def ablation_groups(exp):
    """{schedule: ({kind: setting} for background, foreground and sensitivity, {seed: setting} for the random
    draws)}: one ablation per step schedule, since only settings with the same schedule have the same budget."""
    groups = {}
    for s in exp.settings(include_none=False):
        if s.policy != "profiling_dit":
            continue
        single, draws = groups.setdefault(ablation_schedule(s), ({}, {}))
        kind, seed = ablation_kind(s)
        slot, key = (draws, seed) if kind == "random" else (single, kind)
        if key in slot:
            common.fail("%s: two profiling_dit settings are %s%s: %s and %s" % (
                exp.path, kind, "" if seed is None else " seed %d" % seed, slot[key].tag, s.tag))
        slot[key] = s
    return {k: (single, dict(sorted(draws.items()))) for k, (single, draws) in sorted(groups.items(), key=schedule_order)}


def schedule_order(item):
    """Schedules by their numbers (fixed2 before fixed12)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", item[0])]


def per_pair(setting, metric):
    return setting.by_pair(lambda r: r.metric_mean(metric))


def random_mean_per_pair(draws, metric):
    """{pair: mean over the draws that ran the pair}."""
    by_pair = {}
    for s in draws.values():
        for p, v in per_pair(s, metric).items():
            by_pair.setdefault(p, []).append(v)
    return {p: float(np.mean(v)) for p, v in by_pair.items()}


def mean_with_error(values, decimals=2):
    if not values:
        return "-"
    e = common.standard_error(values)
    return "%.*f" % (decimals, np.mean(values)) + ("" if math.isnan(e) else " ± %.*f" % (decimals, e))


def computed_fraction(setting):
    return setting.mean(lambda r: r.ds("cache/computed_fraction", math.nan))


def setting_row(label, s):
    return [label, common.short(s.tag, 60), len(s.runs), fmt(computed_fraction(s), 4)] + [
        mean_with_error(list(per_pair(s, m).values())) for m, _ in ABLATION_METRICS]


def random_row(draws):
    """The random draws summarised: each cell is the mean over the draws of the draw's mean ± its std over draws."""
    def cell(f, decimals):
        vals = [v for v in (f(s) for s in draws.values()) if not math.isnan(v)]
        if not vals:
            return "-"
        return "%.*f ± %.*f" % (decimals, np.mean(vals), decimals, np.std(vals, ddof=1)) if len(vals) > 1 else \
            "%.*f" % (decimals, vals[0])

    def metric_mean(m):
        def of(s):
            vals = list(per_pair(s, m).values())
            return float(np.mean(vals)) if vals else math.nan
        return of

    return (["random, mean ± std over %d draws" % len(draws), "", sum(len(s.runs) for s in draws.values()),
             cell(computed_fraction, 4)] + [cell(metric_mean(m), 2) for m, _ in ABLATION_METRICS])


def paired(a, b):
    """(mean of a - b over the shared pairs, its standard error, pair count)."""
    diffs = [a[p] - b[p] for p in sorted(set(a) & set(b))]
    return (float(np.mean(diffs)) if diffs else math.nan), common.standard_error(diffs), len(diffs)


def outcome(mean, error):
    if math.isnan(mean) or math.isnan(error):
        return "untested (fewer than 2 shared pairs)"
    if abs(mean) <= SEPARATION * error:
        return "not separable"
    return "background better" if mean > 0 else "background worse"


def comparisons(single, draws):
    """[(opponent label, metric label, mean, standard error, pairs)] of background - opponent."""
    opponents = []
    if "foreground" in single:
        opponents.append(("foreground", lambda m: per_pair(single["foreground"], m)))
    if draws:
        opponents.append(("random mean", lambda m: random_mean_per_pair(draws, m)))
    return [(name, label) + paired(per_pair(single["background"], m), values(m))
            for name, values in opponents for m, label in ABLATION_METRICS]


def comparison_rows(found):
    return [["background - " + name, label, n, fmt(mean, 2),
             "-" if math.isnan(error) else "[%.2f, %.2f]" % (mean - SEPARATION * error, mean + SEPARATION * error),
             outcome(mean, error)] for name, label, mean, error, n in found]


def verdict(found):
    parts = []
    for name in dict.fromkeys(c[0] for c in found):
        cells = ["%s: %s" % (label, outcome(mean, error)) for n, label, mean, error, _ in found
                 if n == name and label in ("fg-PSNR", "PSNR")]
        parts.append("vs %s, %s" % (name, ", ".join(cells)))
    return "**Verdict: does background caching beat the other blocks?** " + "; ".join(parts) + "."


def section_ablation(path, command):
    title = "(c) Block ablation at equal budget"
    if not path:
        return section(title, command, [], ["Not computed: no --ablation given."])
    exp = common.Experiment(path)
    try:
        groups = {k: g for k, g in ablation_groups(exp).items() if "background" in g[0]}
        if not groups:
            return section(title, command, [exp], ["Not computed: `%s` has no done profiling_dit run that caches "
                                                   "the plan's background blocks." % path])
        body = []
        for schedule, (single, draws) in groups.items():
            if len(groups) > 1:
                body += ([""] if body else []) + ["**Schedule `%s`**" % schedule, ""]
            body += ablation_body(single, draws)
        return section(title, command, [exp], body)
    finally:
        exp.close()


def ablation_body(single, draws):
    """The ablation table, the paired comparisons and the verdict of one schedule's settings."""
    rows = [setting_row(k, single[k]) for k in ("background", "foreground") if k in single]
    if draws:
        rows += [random_row(draws)] + [setting_row("random seed %d" % seed, s) for seed, s in draws.items()]
    if "sensitivity" in single:
        rows.append(setting_row("sensitivity plan", single["sensitivity"]))
    found = comparisons(single, draws)
    head = ["blocks cached", "policy tag", "runs", "computed fraction"] + [label + " dB" for _, label in
                                                                           ABLATION_METRICS]
    body = ["Metrics against the uncached reference, mean over (prompt, seed) pairs ± standard error over pairs "
            "(random: the draws' means, mean ± standard deviation over the draws). Equal computed fractions "
            "mean equal budgets.", "", common.markdown_table(head, rows)]
    if found:
        body += ["", "Paired over the shared pairs: background minus the other setting (random mean: the mean "
                 "over the draws per pair); interval = mean ± %g standard errors; \"not separable\" when it "
                 "contains 0." % SEPARATION, "",
                 common.markdown_table(["difference", "metric", "pairs", "mean dB", "interval dB", "result"],
                                       comparison_rows(found)), "", verdict(found)]
    else:
        body += ["", "No foreground or random setting to compare with."]
    return body


def markdown(args, command):
    exp = common.Experiment(args.profile)
    try:
        stack, pairs = r_attn_stack(exp)
        stats = BlockStats(stack)
        parts = ["# The premise on ground truth\n\nProfilingDiT's claims (docs/profiling.md, \"Checking the premise\") "
                 "on `%s`." % args.profile,
                 section_r_attn(exp, stats, pairs, command, args.out),
                 section_consistency(exp, stats, args.plan, command),
                 section_ablation(args.ablation, command),
                 section_steps(exp, command, args.out),
                 section_mask(exp, command)]
    finally:
        exp.close()
    return "\n\n".join(parts) + "\n"


def main():
    ap = argparse.ArgumentParser(description="ProfilingDiT's premise on a profdit result file, as markdown")
    ap.add_argument("profile", help="result file with profile/r_attn (profdit profile or run)")
    ap.add_argument("--ablation", help="result file of experiments/ablation-blocks.yaml")
    ap.add_argument("--plan", help="plan file whose tau sets the side test (default: median of the blocks' means)")
    ap.add_argument("--out", help="folder for the figures (none without it)")
    args = ap.parse_args()
    sys.stdout.write(markdown(args, shlex.join(["python3"] + sys.argv)))


if __name__ == "__main__":
    main()
