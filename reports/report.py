#!/usr/bin/env python3
"""The whole report of one result file: every figure script, then DIR/report.md and a self-contained DIR/report.html.

    python3 reports/report.py FILE.h5 --out DIR      (what `profdit report FILE.h5 --out DIR` runs)

Video previews and frame strips are exported by `profdit report` (C++, OpenCV) into DIR/videos before this
runs; they are listed when present. Nothing in report.md depends on the time it was made.
"""
import argparse
import base64
import html
import importlib
import math
import os
import sys
import traceback

sys.dont_write_bytecode = True  # the scripts may live in a read-only source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import leaderboard  # noqa: E402
import numpy as np  # noqa: E402

FIGURES = ["fig_attention", "fig_similarity", "fig_pareto", "fig_leaderboard", "fig_cache_map", "fig_qualitative", "fig_latency"]


def num(v, decimals):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return "%.*f" % (decimals, v)


def experiment_table(exp):
    a = exp.attrs
    rows = [("file", os.path.basename(exp.path)), ("experiment", exp.name), ("model", a.get("model", "")),
            ("device", a.get("device", "")), ("dtype", a.get("dtype", "")),
            ("format version", str(a.get("format_version", ""))), ("profdit", "%s (%s)" % (a.get("profdit_version", ""), a.get("git_commit", ""))),
            ("torch", a.get("torch_version", ""))]
    if a.get("shard"):
        rows.append(("shard", a["shard"]))
    if "merged_from" in a:
        rows.append(("merged from", ", ".join(os.path.basename(p) for p in a["merged_from"])))
    steps = {r.ds("latency/step_ms").shape[0] for r in exp.done_runs() + list(exp.refs.values()) if r.has("latency/step_ms")}
    if steps:
        rows.append(("sampling steps", ", ".join(str(s) for s in sorted(steps))))
    rows.append(("prompts x seeds", "%d x %d" % (len({r.prompt_index for r in exp.runs + exp.references}),
                                                 len({r.seed for r in exp.runs + exp.references}))))
    rows.append(("runs done", "%d of %d" % (len(exp.done_runs()), len(exp.runs))))
    rows.append(("references done", "%d of %d" % (len(exp.refs), len(exp.references))))
    return ["key", "value"], [[k, str(v)] for k, v in rows]


def measured_median(speedups):
    return num(float(np.median(speedups)) if speedups else None, 3)


def measured_range(speedups):
    """min-max, as `profdit run`'s `measured range` column writes it."""
    return "%s-%s" % (num(min(speedups), 3), num(max(speedups), 3)) if speedups else "-"


def results_table(exp):
    metrics = exp.metric_names()
    head = ["policy", "runs", "computed", "ideal x", "measured x", "measured range", "dit ms", "e2e ms"] + [m[1] for m in metrics]
    rows = []
    for s in exp.settings():
        speedups = s.measured_speedups()
        row = [s.tag, str(len(s.runs)), num(s.mean(lambda r: r.ds("cache/computed_fraction", math.nan)), 3),
               num(s.mean(lambda r: r.ideal_speedup()), 3), measured_median(speedups), measured_range(speedups),
               num(s.mean(lambda r: r.ds("latency/dit_ms", math.nan)), 2), num(s.mean(lambda r: r.ds("latency/e2e_ms", math.nan)), 2)]
        row += [num(s.mean(lambda r, n=m[0]: r.metric_mean(n)), m[3]) for m in metrics]
        rows.append(row)
    return head, rows


def runs_table(exp):
    metrics = [m for m in exp.metric_names() if m[0] in ("psnr", "ssim", "lpips_proxy")]
    head = ["run", "policy", "prompt", "seed", "status", "computed", "speedup", "dit ms"] + [m[1] for m in metrics]
    rows = []
    for r in exp.runs:
        d = r.done
        row = [r.id, r.policy, str(r.prompt_index), str(r.seed), r.status or "(no status)",
               num(r.ds("cache/computed_fraction", math.nan) if d else None, 3),
               num(r.attrs.get("speedup", math.nan) if d else None, 3), num(r.ds("latency/dit_ms", math.nan) if d else None, 2)]
        row += [num(r.metric_mean(m[0]) if d else None, m[3]) for m in metrics]
        rows.append(row)
    return head, rows


def references_table(exp):
    head = ["reference", "prompt", "seed", "status", "dit ms", "e2e ms", "prompt text"]
    rows = []
    for r in exp.references:
        d = r.done
        rows.append([r.id, str(r.prompt_index), str(r.seed), r.status or "(no status)",
                     num(r.ds("latency/dit_ms", math.nan) if d else None, 2), num(r.ds("latency/e2e_ms", math.nan) if d else None, 2),
                     r.prompt])
    return head, rows


def video_rows(exp, out_dir):
    """(group id, preview file or None, strip PNG or None) for every done group with stored video."""
    rows = []
    for g in list(exp.refs.values()) + exp.done_runs():
        if not g.has("video") or (g.kind == "run" and g.policy == "none"):  # a none run is its reference
            continue
        name = ("reference_" if g.kind == "reference" else "") + g.id
        preview = next((f for f in (name + ".mp4", name + ".avi") if os.path.exists(os.path.join(out_dir, "videos", f))), None)
        strip = name + ".png" if os.path.exists(os.path.join(out_dir, "videos", name + ".png")) else None
        rows.append((g, preview, strip))
    return rows


def build(exp, out_dir):
    """The report as a list of blocks: (kind, ...) with kind h1, h2, p, note, table, img, code."""
    blocks = [("h1", "profdit report: %s" % exp.name)]
    blocks.append(("table",) + experiment_table(exp))
    not_done = [r for r in exp.runs + exp.references if not r.done]
    blocks.append(("h2", "Results"))
    blocks.append(("p", "Mean over prompts and seeds of each finished run's per-frame mean, against the uncached "
                        "reference of the same prompt and seed. computed: share of block calls computed; ideal x: "
                        "flops_full / flops_computed; measured x: the median, over every timed execution of the "
                        "setting's runs, of the reference's DiT-loop time / this run's in the same round, and "
                        "measured range their minimum-maximum. The `none` "
                        "setting is the reference itself (PSNR 100 is the identical-frames cap). Definitions: "
                        "docs/metrics.md."))
    head, rows = results_table(exp)
    blocks.append(("table", head, rows) if rows else ("note", "No finished run."))
    if not_done:
        blocks.append(("note", "%d group(s) are not done (status running or failed): they are listed below but left "
                               "out of the means and figures; `profdit run ... --resume` computes them." % len(not_done)))
    blocks += leaderboard.blocks(exp)
    blocks.append(("h2", "Figures"))
    fig_dir = os.path.join(out_dir, "figures")
    failures = 0
    for mod_name in FIGURES:
        mod = importlib.import_module(mod_name)
        blocks.append(("h3", mod.TITLE))
        try:
            pngs = mod.make(exp, fig_dir)
            for p in pngs:
                rel = os.path.relpath(p, out_dir)
                blocks.append(("img", rel, mod.TITLE, os.path.splitext(rel)[0] + ".pdf"))
            blocks.append(("p", mod.CAPTION))
            print("profdit report: figure %s: %s" % (mod_name, ", ".join(pngs)), file=sys.stderr)
        except common.Skip as e:
            blocks.append(("note", "Skipped: %s." % e))
            print("profdit report: figure %s: skipped (%s)" % (mod_name, e), file=sys.stderr)
        except Exception as e:  # a bug in a script: the rest of the report is still written
            failures += 1
            traceback.print_exc()
            blocks.append(("note", "Failed: %s: %s." % (type(e).__name__, e)))
            print("profdit report: figure %s: failed" % mod_name, file=sys.stderr)
    blocks.append(("h2", "Videos"))
    vids = video_rows(exp, out_dir)
    if not vids:
        blocks.append(("note", "Skipped: no stored video (run the experiment with video: true)."))
    else:
        blocks.append(("p", "Previews (MP4, or AVI/MJPG where MP4 is unavailable) and frame strips of every finished "
                            "run with stored frames, in videos/."))
        missing = 0
        for g, preview, strip in vids:
            label = "reference %s" % g.id if g.kind == "reference" else g.id
            blocks.append(("h3", label))
            if strip:
                blocks.append(("img", "videos/" + strip, label, None))
            if preview:
                blocks.append(("link", "videos/" + preview, "preview: videos/" + preview))
            if not strip and not preview:
                missing += 1
        if missing:
            blocks.append(("note", "%d video(s) were not exported (`profdit report` exports them; this profdit may "
                                   "be built without OpenCV)." % missing))
    blocks.append(("h2", "Runs"))
    blocks.append(("table",) + runs_table(exp))
    blocks.append(("h2", "References"))
    blocks.append(("table",) + references_table(exp))
    blocks.append(("h2", "Experiment YAML"))
    blocks.append(("code", exp.yaml))
    return blocks, failures


def to_markdown(blocks):
    out = []
    for b in blocks:
        k = b[0]
        if k in ("h1", "h2", "h3"):
            out.append("#" * int(k[1]) + " " + b[1])
        elif k == "p":
            out.append(b[1])
        elif k == "note":
            out.append("*%s*" % b[1])
        elif k == "table":
            out.append(common.markdown_table(b[1], b[2]))
        elif k == "img":
            out.append("![%s](%s)" % (b[2], b[1]) + ("\n\n[PDF](%s)" % b[3] if b[3] else ""))
        elif k == "link":
            out.append("[%s](%s)" % (b[2], b[1]))
        elif k == "code":
            out.append("```yaml\n" + b[1].rstrip("\n") + "\n```")
    return "\n\n".join(out) + "\n"


CSS = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f0f0f0}img{max-width:100%;height:auto;display:block;margin:1em 0}.note{color:#a15c00;font-style:italic}
pre{background:#f6f6f6;padding:1em;overflow-x:auto}"""


def to_html(blocks, out_dir):
    title = html.escape(blocks[0][1])
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title><style>%s</style></head><body>"
           % (title, CSS)]
    e = html.escape
    for b in blocks:
        k = b[0]
        if k in ("h1", "h2", "h3"):
            out.append("<%s>%s</%s>" % (k, e(b[1]), k))
        elif k == "p":
            out.append("<p>%s</p>" % e(b[1]))
        elif k == "note":
            out.append("<p class=\"note\">%s</p>" % e(b[1]))
        elif k == "table":
            out.append("<table><thead><tr>%s</tr></thead><tbody>%s</tbody></table>" % (
                "".join("<th>%s</th>" % e(str(h)) for h in b[1]),
                "".join("<tr>%s</tr>" % "".join("<td>%s</td>" % e(str(c)) for c in r) for r in b[2])))
        elif k == "img":
            with open(os.path.join(out_dir, b[1]), "rb") as f:
                data = base64.b64encode(f.read()).decode("ascii")
            out.append("<img src=\"data:image/png;base64,%s\" alt=\"%s\">" % (data, e(b[2])))
        elif k == "link":
            out.append("<p><a href=\"%s\">%s</a></p>" % (e(b[1]), e(b[2])))
        elif k == "code":
            out.append("<details><summary>experiment YAML</summary><pre>%s</pre></details>" % e(b[1]))
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description="profdit report: figures, report.md and report.html of a result file")
    ap.add_argument("file", help="profdit result file (HDF5)")
    ap.add_argument("--out", required=True, help="report folder")
    a = ap.parse_args()
    exp = common.Experiment(a.file)
    os.makedirs(a.out, exist_ok=True)
    try:
        blocks, failures = build(exp, a.out)
    finally:
        exp.close()
    md, page = os.path.join(a.out, "report.md"), os.path.join(a.out, "report.html")
    write(md, to_markdown(blocks))
    write(page, to_html(blocks, a.out))
    print(md)
    print(page)
    if failures:
        print("profdit report: error: %d figure script(s) failed (see above); the report was written without them"
              % failures, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
