#!/usr/bin/env python3
"""Tests of reports/premise.py on crafted result files laid out as profdit writes them (h5py): the block
consistency verdict both ways, the ablation verdict both ways, the step-curve numbers on a known curve, the
auto-mask IoU, the one-line notes for missing data and exit 2 on bad input. Run by ctest as report_premise_logic;
exit code 77 (ctest: skipped) without h5py, matplotlib or numpy."""
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

HERE = os.path.dirname(os.path.abspath(__file__))
import premise  # noqa: E402

PAIRS = ["0_0", "0_1", "1_0", "1_1"]  # prompt index _ seed
STEPS = 20
# The known step curve (cond branch): early transient, plateau at 0.1, final rise. Late level: median of steps
# 10-19 = 0.1; early level: mean of the first 10% (steps 0-1, step 0 NaN) = 0.5; warm-up: steps 1 and 2 are
# >= 2 x 0.1, step 3 (0.15) is the first below and the curve stays below up to its lowest step 4.
CURVE = np.array([np.nan, 0.5, 0.3, 0.15, 0.1] + [0.1] * 13 + [0.3, 0.5])
CURVE_SCALE = [0.9, 1.1, 1.0, 1.0]  # per pair: the mean over pairs is CURVE, the band 0.9-1.1 x CURVE


def text(s):
    return np.bytes_(s)  # profdit writes fixed-length strings


def alternating(low, high):
    return np.array([low if s % 2 == 0 else high for s in range(STEPS)])


def holds_profile():
    """[STEPS, 4]: blocks 0-2 constant (consistent), block 3 alternates across tau (50% on its side)."""
    return np.stack([np.full(STEPS, 0.1), np.full(STEPS, 0.9), np.full(STEPS, 0.2), alternating(0.3, 0.7)], axis=1)


def fails_profile():
    """[STEPS, 4] for tau 0.5: block 0 constant, blocks 1-3 alternate 0.2 / 0.8 (mean 0.5, 50% on its side)."""
    return np.stack([np.full(STEPS, 0.1)] + [alternating(0.2, 0.8)] * 3, axis=1)


def write_root(f):
    f.attrs["format_version"] = np.int64(1)
    for k, v in (("git_commit", "abc123def456"), ("model", "sprites-tiny fnv1a64:0123"),
                 ("experiment_yaml", "name: premise-test\n")):
        f.attrs[k] = text(v)
    for name in ("runs", "references", "budget"):
        f.create_group(name)


def write_profile(path, r_attn, extras=True):
    """A profile file: each reference has r_attn; with extras also the step curve and mask_auto's IoU."""
    with h5py.File(path, "w") as f:
        write_root(f)
        for i, pair in enumerate(PAIRS):
            ref = f.create_group("references/" + pair)
            values = r_attn.copy()
            if i == 0:
                values[0, 0] = np.nan  # a step without foreground tokens: left out
            ref["profile/r_attn"] = values
            if extras:
                ref["similarity/noise_pred_rel_l1"] = np.stack([CURVE * CURVE_SCALE[i], CURVE], axis=1)
                ref["profile/mask_auto"] = np.zeros((2, 4, 4), dtype=np.uint8)
                ref["profile/mask_auto"].attrs["iou_vs_gt"] = [0.5, 0.7, 0.9, np.nan][i]
            ref.attrs["status"] = text("done")


def write_run(f, plan, tag, pair_index, metrics):
    g = f.create_group("runs/%s_p%d_s%d" % (tag, pair_index // 2, pair_index % 2))
    policy = "none" if plan is None else "profiling_dit"
    params = "{}" if plan is None else "{plan: %s, background_blocks: [0, 2], warmup: 2, final_full: 1, " \
                                       "schedule: {type: fixed, interval: 3}}" % plan
    for k, v in (("policy", policy), ("policy_tag", tag), ("policy_params", params),
                 ("reference", "/references/" + PAIRS[pair_index])):
        g.attrs[k] = text(v)
    g.attrs["prompt_index"], g.attrs["seed"] = float(pair_index // 2), float(pair_index % 2)
    g["cache/computed_fraction"] = 1.0 if plan is None else 0.6
    for name, value in metrics.items():
        g["metrics/" + name] = np.full(3, value)
        g["metrics/" + name].attrs["mean"] = value
    g.attrs["status"] = text("done")


# plan name -> per pair (psnr, psnr_fg, psnr_bg) offsets added to a base; background clearly ahead on all three
CLEAR = {
    "sprites-tiny": [0.0, 0.1, -0.1, 0.05],
    "sprites-tiny-foreground": [-5.0, -5.2, -4.9, -5.1],
    "sprites-tiny-random0": [-3.0, -3.1, -2.9, -3.0],
    "sprites-tiny-random1": [-2.0, -2.2, -1.9, -2.1],
    "sprites-tiny-random2": [-2.5, -2.4, -2.6, -2.5],
    "sprites-tiny-sensitivity": [-1.0, -1.0, -1.0, -1.0],
}
# background and foreground within noise (paired differences +0.5, -0.4, +0.3, -0.6: mean -0.05, standard error
# 0.266), no random draws
NOISE = {"sprites-tiny": [0.0, 0.0, 0.0, 0.0], "sprites-tiny-foreground": [-0.5, 0.4, -0.3, 0.6]}


def write_ablation(path, offsets, schedules=("w2-fixed3-f1",)):
    """offsets: one {plan: per-pair offsets} per schedule."""
    offsets = offsets if isinstance(offsets, (list, tuple)) else [offsets]
    with h5py.File(path, "w") as f:
        write_root(f)
        for i, pair in enumerate(PAIRS):
            f.create_group("references/" + pair).attrs["status"] = text("done")
            write_run(f, None, "none", i, {"psnr": 100.0})
            for schedule, by_plan in zip(schedules, offsets):
                for plan, off in by_plan.items():
                    base = {"psnr": 30.0 + i, "psnr_fg": 20.0 + i, "psnr_bg": 35.0 + i}
                    write_run(f, plan, "profiling_dit-%s-%s" % (plan, schedule), i,
                              {k: v + off[i] for k, v in base.items()})


def run_premise(*args):
    p = subprocess.run([sys.executable, os.path.join(HERE, "premise.py"), *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def verdict_lines(md):
    return [line for line in md.splitlines() if line.startswith("**Verdict")]


class Premise(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        cls.paths = {name: os.path.join(cls.dir.name, name + ".h5") for name in
                     ("holds", "fails", "bare", "clear", "noise", "no_profile", "two_schedules")}
        write_profile(cls.paths["holds"], holds_profile())
        write_profile(cls.paths["fails"], fails_profile())
        write_profile(cls.paths["bare"], holds_profile(), extras=False)
        write_ablation(cls.paths["clear"], CLEAR)
        write_ablation(cls.paths["noise"], NOISE)
        write_ablation(cls.paths["no_profile"], {})
        write_ablation(cls.paths["two_schedules"], [NOISE, CLEAR], ("w2-fixed12-f1", "w2-fixed3-f1"))
        cls.plan, cls.sensitivity_plan = (os.path.join(cls.dir.name, name) for name in ("plan.yaml", "sens.yaml"))
        for path, tau, method in ((cls.plan, 0.5, "attention"), (cls.sensitivity_plan, -35.8, "sensitivity")):
            with open(path, "w") as f:
                f.write("background_blocks: [0]\nforeground_blocks: [1, 2, 3]\ntau: %g\nmethod: %s\n" % (tau, method))

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def premise_ok(self, *args):
        rc, out, err = run_premise(*args)
        self.assertEqual(rc, 0, err)
        return out

    def test_three_of_four_consistent_blocks_hold(self):
        out = self.premise_ok(self.paths["holds"])
        self.assertIn("tau = the median of the blocks' mean R_attn (no --plan given) = 0.3500", out)
        self.assertIn("| 3 | 0.500 | foreground | 50.0% of 80 | no |", out)
        self.assertIn("| 0 | 0.100 | background | 100.0% of 79 | yes |", out)  # the NaN step is left out
        self.assertEqual(verdict_lines(out)[:2], [
            "**Verdict (per (pair, step)): the premise holds**: 3 of 4 blocks are consistent (needed: more than 2).",
            "**Verdict (per pair): the premise holds**: 4 of 4 blocks are consistent (needed: more than 2)."])

    def test_one_of_four_consistent_blocks_does_not_hold(self):
        out = self.premise_ok(self.paths["fails"], "--plan", self.plan)
        self.assertIn("tau = the plan's tau (`%s`) = 0.5000" % self.plan, out)
        self.assertIn("**Verdict (per (pair, step)): the premise does not hold**: 1 of 4 blocks are consistent", out)

    def test_block_statistics(self):
        stack = np.stack([holds_profile()] * 2)
        stack[1, :, 1] = 0.5  # block 1: pair means 0.9 and 0.5, constant over steps
        stats = premise.BlockStats(stack)
        np.testing.assert_allclose(stats.mean, [0.1, 0.7, 0.2, 0.5])
        np.testing.assert_allclose(stats.std_steps, [0.0, 0.0, 0.0, 0.2], atol=1e-12)
        np.testing.assert_allclose(stats.std_pairs, [0.0, 0.2, 0.0, 0.0], atol=1e-12)

    def test_step_curve_numbers_on_a_known_curve(self):
        self.assertAlmostEqual(premise.late_level(CURVE), 0.1)
        self.assertAlmostEqual(premise.early_level(CURVE), 0.5)
        self.assertEqual(premise.suggested_warmup(CURVE), 3)
        blip = CURVE.copy()
        blip[12] = 0.25  # a blip above 2 x the late level after the lowest step does not extend the warm-up
        self.assertEqual(premise.suggested_warmup(blip), 3)
        out = self.premise_ok(self.paths["holds"], "--out", self.dir.name)
        for row in ("| early level: mean of steps 0-1 (step 0 is NaN) | 0.5000 |",
                    "| late level: median of steps 10-19 | 0.1000 |", "| early / late | 5.00 |",
                    "the suggested warm-up, --warmup-ratio 2) | 3 |"):
            self.assertIn(row, out)
        for name in ("premise_r_attn.png", "premise_step_curve.png"):
            with open(os.path.join(self.dir.name, name), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_auto_mask_iou_over_the_references_with_one(self):
        self.assertIn("| 3 | 0.700 | 0.500 | 0.900 |", self.premise_ok(self.paths["holds"]))

    def test_every_section_names_the_command_and_the_build(self):
        out = self.premise_ok(self.paths["holds"], "--ablation", self.paths["clear"])
        command = "Command: `python3 %s %s --ablation %s`" % (os.path.join(HERE, "premise.py"), self.paths["holds"],
                                                            self.paths["clear"])
        self.assertEqual(out.count(command), 5)
        self.assertEqual(out.count("commit abc123def456, model sprites-tiny fnv1a64:0123."), 5)

    def test_missing_data_gives_one_line_each(self):
        out = self.premise_ok(self.paths["bare"])
        self.assertIn("Not computed: no --ablation given.", out)
        self.assertIn("Not computed: no references with similarity/noise_pred_rel_l1", out)
        self.assertIn("Not computed: no reference in `%s` has profile/mask_auto" % self.paths["bare"], out)
        out = self.premise_ok(self.paths["bare"], "--ablation", self.paths["no_profile"])
        self.assertIn("has no done profiling_dit run that caches the plan's background blocks", out)

    def test_background_clearly_beats_foreground_and_random(self):
        out = self.premise_ok(self.paths["holds"], "--ablation", self.paths["clear"])
        self.assertIn("| background | profiling_dit-sprites-tiny-w2-fixed3-f1 | 4 | 0.6000 | 31.51 ± 0.64 |", out)
        # the draws' PSNR means are 28.5, 29.45 and 29.0
        self.assertIn("| random, mean ± std over 3 draws |  | 12 | 0.6000 ± 0.0000 | 28.98 ± 0.48 |", out)
        self.assertIn("| random seed 2 |", out)
        self.assertIn("| sensitivity plan | profiling_dit-sprites-tiny-sensitivity-w2-fixed3-f1 |", out)
        self.assertIn("| background - foreground | fg-PSNR | 4 | 5.06 | [4.85, 5.28] | background better |", out)
        self.assertEqual(verdict_lines(out)[-1],
                         "**Verdict: does background caching beat the other blocks?** vs foreground, PSNR: background "
                         "better, fg-PSNR: background better; vs random mean, PSNR: background better, fg-PSNR: "
                         "background better.")

    def test_within_noise_is_not_separable(self):
        out = self.premise_ok(self.paths["holds"], "--ablation", self.paths["noise"])
        self.assertIn("| background - foreground | PSNR | 4 | -0.05 | [-0.58, 0.48] | not separable |", out)
        self.assertEqual(verdict_lines(out)[-1],
                         "**Verdict: does background caching beat the other blocks?** vs foreground, PSNR: not "
                         "separable, fg-PSNR: not separable.")

    def test_one_ablation_per_step_schedule(self):
        out = self.premise_ok(self.paths["holds"], "--ablation", self.paths["two_schedules"])
        self.assertLess(out.index("**Schedule `w2-fixed3-f1`**"), out.index("**Schedule `w2-fixed12-f1`**"))
        self.assertIn("| background | profiling_dit-sprites-tiny-w2-fixed12-f1 | 4 |", out)
        self.assertIn("| background - foreground | PSNR | 4 | -0.05 | [-0.58, 0.48] | not separable |", out)
        self.assertIn("| background - foreground | fg-PSNR | 4 | 5.06 | [4.85, 5.28] | background better |", out)
        self.assertEqual(len([v for v in verdict_lines(out) if "background caching" in v]), 2)

    def test_ablation_kinds_from_the_plan_name(self):
        class Run:
            def __init__(self, plan):
                self.attrs = {"policy_params": "{plan: %s, background_blocks: [1]}" % plan}

        class Setting:
            def __init__(self, plan):
                self.runs, self.tag = [Run(plan)], "profiling_dit-" + plan

        cases = {"sprites-tiny": ("background", None), "sprites-tiny-foreground": ("foreground", None),
                 "sprites-tiny-random12": ("random", 12), "sprites-tiny-random3-n2": ("random", 3),
                 "sprites-tiny-sensitivity": ("sensitivity", None)}
        for plan, kind in cases.items():
            self.assertEqual(premise.ablation_kind(Setting(plan)), kind, plan)

    def test_bad_input_exits_2_with_one_line(self):
        missing = os.path.join(self.dir.name, "missing.h5")
        for args, message in (([missing], missing + ": file not found"),
                              ([self.paths["no_profile"]], self.paths["no_profile"] + ": no profile data"),
                              ([self.paths["holds"], "--ablation", missing], missing + ": file not found"),
                              ([self.paths["holds"], "--plan", missing], missing + ": plan file not found"),
                              ([self.paths["holds"], "--plan", self.sensitivity_plan],
                               self.sensitivity_plan + ": method sensitivity, its tau is no R_attn threshold")):
            rc, out, err = run_premise(*args)
            self.assertEqual(rc, 2, err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn(message, err)


if __name__ == "__main__":
    unittest.main()
