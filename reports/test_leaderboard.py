#!/usr/bin/env python3
"""Tests of the budget leaderboard (reports/leaderboard.py, fig_leaderboard.py) and of the Results table's
measured speedup range, on a crafted result file laid out as `profdit run` writes one (h5py): fbcache and
easycache matched at 1.5x and 2x ideal, a step_skip near 1.5x and one far from every budget. Run by ctest as
report_leaderboard_logic; exit code 77 (ctest: skipped) without h5py, matplotlib or numpy."""
import os
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True  # the tests may run from a read-only source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_env  # noqa: E402

test_env.require("h5py", "matplotlib", "numpy")
import h5py  # noqa: E402
import numpy as np  # noqa: E402

import common  # noqa: E402
import fig_leaderboard  # noqa: E402
import leaderboard  # noqa: E402
import report  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PAIRS = ["0_0", "1_0", "2_0"]  # prompt index _ seed
FRAMES = 4

# tag -> (policy, ideal speedup, PSNR per pair, measured speedup per pair and execution; None: a file written
# before latency/speedup_repeats, the runs' `speedup` attributes are then the values)
SETTINGS = {
    "none": ("none", 1.0, [100.0] * 3, [[1.0, 1.0]] * 3),
    # 1.5x: fbcache and easycache nearly tie (paired differences -0.1, +0.3, -0.1), step_skip is far below
    "fbcache-thr0.191095-w2-x1.5": ("fbcache", 1.52, [30.0, 31.0, 32.0], [[1.40, 1.45], [1.50, 1.38], [1.47, 1.52]]),
    "easycache-thr0.0649382-w2-f1-x1.5": ("easycache", 1.48, [30.1, 30.7, 32.1], [[1.41, 1.44]] * 3),
    "step_skip-i2-w2-f1-residual": ("step_skip", 1.6, [25.0, 26.0, 27.0], None),
    # 2x: a clear gap
    "fbcache-thr0.273842-w2-x2": ("fbcache", 1.95, [24.0, 25.5, 26.0], [[1.8, 1.9]] * 3),
    "easycache-thr0.133352-w2-f1-x2": ("easycache", 2.0, [28.0, 29.0, 30.0], [[1.85, 1.95]] * 3),
    # 2.5x ideal: more than 15% from 2x, so on no board
    "step_skip-i3-w2-f1-residual": ("step_skip", 2.5, [20.0, 21.0, 22.0], None),
}
OLD_FILE_SPEEDUPS = [1.55, 1.60, 1.58]  # the step_skip runs' `speedup` attributes


def text(s):
    return np.bytes_(s)  # profdit writes fixed-length strings


def write_latency(g, speedups, run_index):
    g["latency/dit_ms"] = 1000.0
    g["latency/e2e_ms"] = 1010.0
    if speedups is not None:
        g["latency/speedup_repeats"] = np.array(speedups[run_index], dtype=np.float64)


def write_run(f, tag, pair_index, settings=SETTINGS):
    policy, ideal, psnr, speedups = settings[tag]
    g = f.create_group("runs/%s_p%d_s0" % (tag, pair_index))
    for k, v in (("policy", policy), ("policy_tag", tag), ("reference", "/references/" + PAIRS[pair_index])):
        g.attrs[k] = text(v)
    g.attrs["prompt_index"], g.attrs["seed"] = float(pair_index), 0.0
    g.attrs["speedup"] = float(np.median(speedups[pair_index])) if speedups else OLD_FILE_SPEEDUPS[pair_index]
    g["cache/flops_full"] = 100.0
    g["cache/flops_computed"] = 100.0 / ideal
    g["cache/computed_fraction"] = 1.0 / ideal
    write_latency(g, speedups, pair_index)
    for name, value in (("psnr", psnr[pair_index]), ("ssim", 0.9), ("psnr_fg", psnr[pair_index] - 3.0)):
        g["metrics/" + name] = np.full(FRAMES, value)
        g["metrics/" + name].attrs["mean"] = value
    g.attrs["status"] = text("done")


def write_budget(f, index, policy, label, target):
    g = f.create_group("budget/%d_%s_%s" % (index, policy, label))
    for k, v in (("policy", policy), ("setting", "{name: %s, warmup: 2}" % policy), ("knob", "threshold"),
                 ("target_kind", "speedup")):
        g.attrs[k] = text(v)
    g.attrs["target"], g.attrs["tolerance"], g.attrs["value"] = target, 0.05, 0.2
    g["knob"], g["computed"] = np.array([1e-4, 0.2]), np.array([1.0, 1.0 / target])
    g.attrs["status"] = text("done")


def write_file(path, with_budgets=True, settings=None, latent_offset=0.0):
    """The crafted file: SETTINGS (or `settings`), budgets when with_budgets; each reference holds a latent."""
    settings = SETTINGS if settings is None else settings
    with h5py.File(path, "w") as f:
        f.attrs["format_version"] = np.int64(1)
        for k, v in (("git_commit", "abc123def456"), ("device", "cpu (1 threads)"), ("dtype", "fp32"),
                     ("model", "sprites-tiny fnv1a64:0123"), ("experiment_yaml", "name: lb-test\n")):
            f.attrs[k] = text(v)
        for name in ("runs", "references", "budget"):
            f.create_group(name)
        for i, pair in enumerate(PAIRS):
            ref = f.create_group("references/" + pair)
            ref["latency/dit_ms"] = 1500.0
            ref["latent"] = np.arange(8, dtype=np.float32) + i + latent_offset
            ref.attrs["prompt"], ref.attrs["seed"] = text("caption %d" % i), 0.0
            ref.attrs["status"] = text("done")
            for tag in settings:
                if with_budgets or not tag.endswith(("-x1.5", "-x2")):
                    write_run(f, tag, i, settings)
        if with_budgets:
            for index, (policy, label, target) in enumerate([("fbcache", "x1.5", 1.5), ("fbcache", "x2", 2.0),
                                                             ("easycache", "x1.5", 1.5), ("easycache", "x2", 2.0)], 1):
                write_budget(f, index, policy, label, target)


class Leaderboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.path = os.path.join(cls.dir.name, "lb.h5")
        write_file(cls.path)
        cls.exp = common.Experiment(cls.path)
        cls.boards, cls.unranked = leaderboard.boards(cls.exp)

    @classmethod
    def tearDownClass(cls):
        cls.exp.close()
        cls.dir.cleanup()

    def board(self, label):
        head, rows = next(leaderboard.table(self.exp, entries) for b, entries in self.boards if b.label == label)
        return [dict(zip(head, r)) for r in rows]

    def test_budgets_take_matched_settings_and_the_nearest_unmatched_one(self):
        self.assertEqual([(b.label, b.title()) for b, _ in self.boards], [("x1.5", "1.5x ideal"), ("x2", "2x ideal")])
        members = {b.label: sorted(e.setting.tag for e in entries) for b, entries in self.boards}
        self.assertEqual(members["x1.5"], ["easycache-thr0.0649382-w2-f1-x1.5", "fbcache-thr0.191095-w2-x1.5",
                                           "step_skip-i2-w2-f1-residual"])
        self.assertEqual(members["x2"], ["easycache-thr0.133352-w2-f1-x2", "fbcache-thr0.273842-w2-x2"])
        self.assertEqual([s.tag for s in self.unranked], ["step_skip-i3-w2-f1-residual"])  # 2.5x: 25% from 2x

    def test_ranked_by_psnr_higher_first(self):
        self.assertEqual([r["policy"] for r in self.board("x1.5")],
                         ["fbcache-thr0.191-w2", "easycache-thr0.0649-w2-f1", "step_skip-i2-w2-f1-residual"])
        self.assertEqual([r["policy"] for r in self.board("x2")], ["easycache-thr0.133-w2-f1", "fbcache-thr0.274-w2"])
        self.assertEqual([r["rank"] for r in self.board("x2")], ["1", "2"])

    def test_near_tie_is_not_separable_and_a_clear_gap_is(self):
        x15, x2 = self.board("x1.5"), self.board("x2")
        self.assertEqual(x15[0]["notes"], "")
        self.assertEqual(x15[1]["notes"], "not separable from #1")
        self.assertEqual(x15[2]["notes"], "no target: nearest budget")  # 5 dB below, separable
        self.assertEqual(x2[1]["notes"], "")
        self.assertIn("not separable from #k", leaderboard.rule_text(self.exp))

    def test_cells_show_mean_with_standard_error_and_the_actual_ideal_speedup(self):
        step_skip = self.board("x1.5")[2]
        self.assertEqual(step_skip["psnr dB"], "26.00 ± 0.58")  # sd 1 over 3 pairs
        self.assertEqual(step_skip["ideal x"], "1.600")
        self.assertEqual(step_skip["pairs"], "3")

    def test_measured_median_and_range_over_every_execution(self):
        fb = self.board("x1.5")[0]
        self.assertEqual(fb["measured x (range)"], "1.460 (1.380-1.520)")
        self.assertEqual(self.board("x1.5")[2]["measured x (range)"], "1.580 (1.550-1.600)")  # old file: runs' speedup
        head, rows = report.results_table(self.exp)
        row = dict(zip(head, next(r for r in rows if r[0] == "fbcache-thr0.191095-w2-x1.5")))
        self.assertEqual((row["measured x"], row["measured range"]), ("1.460", "1.380-1.520"))
        row = dict(zip(head, next(r for r in rows if r[0] == "step_skip-i2-w2-f1-residual")))
        self.assertEqual((row["measured x"], row["measured range"]), ("1.580", "1.550-1.600"))

    def test_markdown_is_stamped_and_holds_one_table_per_budget(self):
        md = leaderboard.markdown(self.exp)
        self.assertTrue(md.startswith("Leaderboard of `lb.h5`: commit abc123def456, device cpu (1 threads), dtype "
                                      "fp32, model sprites-tiny fnv1a64:0123."), md)
        self.assertIn("### 1.5x ideal", md)
        self.assertIn("### 2x ideal", md)
        self.assertEqual(md.count("| rank | policy |"), 2)

    def test_report_has_the_section_after_results(self):
        with tempfile.TemporaryDirectory() as d:
            blocks, failures = report.build(self.exp, d)
        self.assertEqual(failures, 0)
        self.assertEqual([b[1] for b in blocks if b[0] == "h2"][:3], ["Results", "Leaderboard", "Figures"])
        self.assertIn(("note", "Not ranked (no budget within 15% of their ideal speedup): step_skip-i3-w2-f1-residual."),
                      blocks)

    def test_figure_writes_a_png(self):
        with tempfile.TemporaryDirectory() as d:
            pngs = fig_leaderboard.make(self.exp, d)
            self.assertEqual([os.path.basename(p) for p in pngs], ["leaderboard.png"])
            with open(pngs[0], "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


# A second file of the same pairs: a profiling_dit setting near 2x, as experiments/leaderboard-profiling-dit.yaml
OTHER = {"none": SETTINGS["none"],
         "profiling_dit-plan-n10-w6-fixed3": ("profiling_dit", 1.94, [29.0, 30.0, 31.5], [[1.8, 1.9]] * 3)}


class WithOtherFile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.paths = {name: os.path.join(cls.dir.name, name + ".h5") for name in ("lb", "other", "other_pairs")}
        write_file(cls.paths["lb"])
        write_file(cls.paths["other"], with_budgets=False, settings=OTHER)
        write_file(cls.paths["other_pairs"], with_budgets=False, settings=OTHER, latent_offset=0.5)

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def run_script(self, *args):
        p = subprocess.run([sys.executable, os.path.join(HERE, "leaderboard.py"), *args], capture_output=True, text=True)
        return p.returncode, p.stdout, p.stderr

    def test_the_other_files_settings_join_the_nearest_budget(self):
        code, out, err = self.run_script(self.paths["lb"], "--with", self.paths["other"], "--figure", self.dir.name)
        self.assertEqual(code, 0, err)
        self.assertTrue(out.startswith("Leaderboard of `lb.h5` with the settings of `other.h5` (commit abc123def456):"))
        x2 = out[out.index("### 2x ideal"):]
        # 29.0/30.0/31.5 against easycache's 28/29/30: ranked first, paired difference +1.17 ± 0.17: separable
        self.assertIn("| 1 | profiling_dit-plan-n10-w6-fixed3 | 3 | 1.940 |", x2)
        self.assertIn("| 2 | easycache-thr0.133-w2-f1 |", x2)
        self.assertTrue(os.path.exists(os.path.join(self.dir.name, "leaderboard.png")))

    def test_a_file_of_other_pairs_is_refused(self):
        code, out, err = self.run_script(self.paths["lb"], "--with", self.paths["other_pairs"])
        self.assertEqual((code, out), (2, ""))
        self.assertIn("other_pairs.h5: reference 0_0 differs from %s's (caption, seed or latent)" % self.paths["lb"], err)


class WithoutBudgets(unittest.TestCase):
    def test_no_section_and_the_figure_skips(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "plain.h5")
            write_file(path, with_budgets=False)
            exp = common.Experiment(path)
            try:
                self.assertEqual(leaderboard.blocks(exp), [])
                with self.assertRaises(common.Skip):
                    fig_leaderboard.make(exp, d)
            finally:
                exp.close()


if __name__ == "__main__":
    unittest.main()
