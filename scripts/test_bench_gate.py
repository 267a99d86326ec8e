#!/usr/bin/env python3
"""Tests of the regression gate's comparison (scripts/bench_gate.py) on crafted results files; run by ctest
as bench_gate_logic. Runs the gate as CI does (a subprocess with --baseline/--current), so exit codes and the
printed table are what is checked."""
import copy
import json
import os
import subprocess
import sys
import tempfile
import unittest

GATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_gate.py")

MACHINE = {"cpu": "Test CPU", "cores": 2, "torch_version": "1.13.0", "device": "cpu (1 threads)", "bench_threads": "1",
           "commit": "abc"}
BASE = {
    "machine": MACHINE,
    "policies": {
        "none": {"computed": 1.0, "ideal_speedup": 1.0, "speedup": 1.0, "psnr": 100.0, "ssim": 1.0, "dit_ms": 900.0},
        "step_skip_i2": {"computed": 0.542, "ideal_speedup": 1.8, "speedup": 1.70, "psnr": 31.2, "ssim": 0.95, "dit_ms": 530.0},
        "teacache_t0.1": {"computed": 0.625, "ideal_speedup": 1.55, "speedup": 1.45, "psnr": 34.0, "ssim": 0.97, "dit_ms": 620.0},
    },
    "bench": {"BM_DiTForward/0": {"ms": 10.0, "label": "tiny"},
              "BM_SSIM/2": {"ms": 400.0, "label": "", "frames_per_s": 5.0}},
}


class GateTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def write(self, name, obj):
        path = os.path.join(self.dir.name, name)
        with open(path, "w") as f:
            f.write(obj if isinstance(obj, str) else json.dumps(obj))
        return path

    def gate(self, cur, base=BASE):
        p = subprocess.run([sys.executable, GATE, "--baseline", self.write("base.json", base), "--current", self.write("cur.json", cur)],
                           capture_output=True, text=True)
        return p.returncode, p.stdout, p.stderr

    def row(self, out, check):
        return next(l for l in out.splitlines() if l.startswith("| " + check + " "))

    def test_identical_passes(self):
        rc, out, _ = self.gate(BASE)
        self.assertEqual(rc, 0, out)
        self.assertIn("bench-gate: PASS", out)

    def test_noise_within_tolerance_passes(self):
        cur = copy.deepcopy(BASE)
        cur["policies"]["step_skip_i2"]["speedup"] = 1.70 * 0.93  # -7%
        cur["policies"]["teacache_t0.1"]["speedup"] = 1.45 * 1.05
        cur["bench"]["BM_DiTForward/0"]["ms"] = 12.5  # +25%
        rc, out, _ = self.gate(cur)
        self.assertEqual(rc, 0, out)

    def test_quality_is_exact_on_the_same_machine_and_tolerant_across(self):
        cur = copy.deepcopy(BASE)
        cur["policies"]["step_skip_i2"]["psnr"] -= 0.3
        cur["policies"]["teacache_t0.1"]["ssim"] -= 0.003
        cur["policies"]["none"]["ssim"] += 0.0001  # better counts too: a deterministic run changed
        rc, out, _ = self.gate(cur)
        self.assertEqual(rc, 1, out)
        self.assertIn("FAIL", self.row(out, "step_skip_i2 psnr dB"))
        self.assertIn("no change (same machine)", self.row(out, "step_skip_i2 psnr dB"))
        self.assertIn("FAIL", self.row(out, "teacache_t0.1 ssim"))
        self.assertIn("FAIL", self.row(out, "none ssim"))
        self.assertIn("ok", self.row(out, "teacache_t0.1 psnr dB"))
        self.assertIn("quality must equal the baseline", out)
        cur["machine"] = dict(MACHINE, torch_version="2.4.0")  # other kernels, other rounding
        rc, out, _ = self.gate(cur)
        self.assertEqual(rc, 0, out)
        self.assertIn("ok (other machine: tolerance)", self.row(out, "step_skip_i2 psnr dB"))
        self.assertIn(">= -0.5 (other machine)", self.row(out, "step_skip_i2 psnr dB"))
        self.assertIn("quality within the cross-machine tolerance", out)

    def test_speedup_drop_fails(self):
        cur = copy.deepcopy(BASE)
        cur["policies"]["step_skip_i2"]["speedup"] = 1.20  # -29.4%
        rc, out, _ = self.gate(cur)
        self.assertEqual(rc, 1, out)
        self.assertIn("FAIL", self.row(out, "step_skip_i2 measured x"))
        self.assertIn("-29.4%", self.row(out, "step_skip_i2 measured x"))
        self.assertIn("ok", self.row(out, "teacache_t0.1 measured x"))
        self.assertIn("bench-gate: FAIL: 1 of", out)

    def test_psnr_and_ssim_drop_fail(self):
        cur = copy.deepcopy(BASE)
        cur["machine"] = dict(MACHINE, cpu="Other CPU")  # beyond even the cross-machine tolerance
        cur["policies"]["teacache_t0.1"]["psnr"] = 33.2
        cur["policies"]["step_skip_i2"]["ssim"] = 0.94
        rc, out, _ = self.gate(cur)
        self.assertEqual(rc, 1, out)
        self.assertIn("FAIL", self.row(out, "teacache_t0.1 psnr dB"))
        self.assertIn("-0.80", self.row(out, "teacache_t0.1 psnr dB"))
        self.assertIn("FAIL", self.row(out, "step_skip_i2 ssim"))

    def test_computed_fraction_change_fails_even_when_faster(self):
        cur = copy.deepcopy(BASE)
        cur["policies"]["step_skip_i2"]["computed"] = 0.54
        cur["policies"]["step_skip_i2"]["speedup"] = 1.72
        rc, out, _ = self.gate(cur)
        self.assertEqual(rc, 1, out)
        self.assertIn("FAIL", self.row(out, "step_skip_i2 computed"))

    def test_missing_policy_fails_new_policy_does_not(self):
        cur = copy.deepcopy(BASE)
        cur["policies"]["profiling_dit_x"] = cur["policies"].pop("teacache_t0.1")
        rc, out, _ = self.gate(cur)
        self.assertEqual(rc, 1, out)
        self.assertIn("policy row missing", self.row(out, "teacache_t0.1"))
        self.assertIn("new (not gated", self.row(out, "profiling_dit_x"))

    def test_bench_times_gate_only_on_the_same_machine(self):
        cur = copy.deepcopy(BASE)
        cur["bench"]["BM_DiTForward/0"]["ms"] = 20.0  # +100%
        rc, out, _ = self.gate(cur)
        self.assertEqual(rc, 1, out)
        self.assertIn("FAIL", self.row(out, "BM_DiTForward/0"))
        cur["machine"] = dict(MACHINE, cpu="Other CPU")
        rc, out, _ = self.gate(cur)
        self.assertEqual(rc, 0, out)
        self.assertIn("info (other machine)", self.row(out, "BM_DiTForward/0"))
        self.assertIn("frames/s", self.row(out, "BM_SSIM/2"))

    def test_a_slower_machine_slows_every_benchmark_alike_and_passes(self):
        # +35% on every benchmark is the host, not the code (machine factor 1.35); one of them 1.5x more is the code
        cur = copy.deepcopy(BASE)
        for b in cur["bench"].values():
            b["ms"] *= 1.35
        rc, out, _ = self.gate(cur)
        self.assertEqual(rc, 0, out)
        self.assertIn("1.350", self.row(out, "benchmarks: machine factor"))
        self.assertIn("(+0.0% vs machine)", self.row(out, "BM_DiTForward/0"))
        cur["bench"]["BM_DiTForward/0"]["ms"] = 10.0 * 1.35 * 2.5  # median (1.35 x 2.5 + 1.35) / 2 = 2.36: 1.43x of it
        rc, out, _ = self.gate(cur)
        self.assertEqual(rc, 1, out)
        self.assertIn("FAIL", self.row(out, "BM_DiTForward/0"))

    def test_a_faster_machine_does_not_tighten_the_limit(self):
        cur = copy.deepcopy(BASE)
        cur["bench"]["BM_SSIM/2"]["ms"] = 100.0  # 4x faster
        cur["bench"]["BM_DiTForward/0"]["ms"] = 12.5  # +25%: within the limit; the factor stays 1
        rc, out, _ = self.gate(cur)
        self.assertEqual(rc, 0, out)
        self.assertIn("1.000", self.row(out, "benchmarks: machine factor"))

    def test_bad_baseline_exits_2_naming_the_file(self):
        missing = os.path.join(self.dir.name, "nope.json")
        p = subprocess.run([sys.executable, GATE, "--baseline", missing, "--current", self.write("cur.json", BASE)],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn(missing, p.stderr)
        bad = self.write("bad.json", "{not json")
        p = subprocess.run([sys.executable, GATE, "--baseline", bad, "--current", self.write("cur.json", BASE)],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn(bad, p.stderr)
        incomplete = self.write("inc.json", {"machine": {}, "policies": {"none": {"computed": 1}}})
        p = subprocess.run([sys.executable, GATE, "--baseline", incomplete, "--current", self.write("cur.json", BASE)],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn("none", p.stderr)

    def test_update_baseline_rewrites_it(self):
        base = self.write("base.json", BASE)
        cur = copy.deepcopy(BASE)
        cur["policies"]["step_skip_i2"]["speedup"] = 1.0
        p = subprocess.run([sys.executable, GATE, "--baseline", base, "--current", self.write("cur.json", cur),
                            "--update-baseline"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(base) as f:
            self.assertEqual(json.load(f)["policies"]["step_skip_i2"]["speedup"], 1.0)


    def test_a_failed_benchmark_is_confirmed_alone_by_its_lowest_repetition(self):
        # run_bench on a stand-in benchmark binary that reports three repetitions and an aggregate row: the lowest
        # repetition counts, aggregates are ignored, and the confirmation's filter names exactly the failed ones.
        sys.path.insert(0, os.path.dirname(GATE))
        import bench_gate
        fake = self.write("bench.py", "import json, sys\n"
                          "open(sys.argv[0] + '.args', 'w').write(' '.join(sys.argv[1:]))\n"
                          "rows = [dict(name='BM_A/1/manual_time', run_type='iteration', real_time=t, cpu_time=t, time_unit='ms')"
                          " for t in (140.0, 101.0, 150.0)]\n"
                          "rows.append(dict(name='BM_A/1/manual_time_mean', run_type='aggregate', real_time=1.0, cpu_time=1.0, time_unit='ms'))\n"
                          "print(json.dumps(dict(context=dict(), benchmarks=rows)))\n")
        exe = self.write("bench", "#!/bin/sh\nexec %s %s \"$@\"\n" % (sys.executable, fake))
        os.chmod(exe, 0o755)
        flt = bench_gate.only(["BM_A/1/manual_time", "BM_B.x"])
        self.assertEqual(flt, "^(BM_A/1/manual_time|BM_B[.]x)$")
        _, results = bench_gate.run_bench(exe, 0.5, flt, repetitions=5)
        self.assertEqual(results["BM_A/1/manual_time"]["ms"], 101.0)
        self.assertEqual(list(results), ["BM_A/1/manual_time"])
        with open(fake + ".args") as f:
            args = f.read()
        self.assertIn("--benchmark_repetitions=5", args)
        self.assertIn("--benchmark_filter=" + flt, args)

if __name__ == "__main__":
    unittest.main(verbosity=2)
