#!/usr/bin/env python3
"""Tests of scripts/latency-extrapolate on a crafted result file (h5py): the 50-step DiT loop from the
per-step times of a 12-step run, split into full and cached steps by the compute mask. Run by ctest as
latency_extrapolate_logic; exit code 77 (ctest: skipped) without h5py."""
import os
import subprocess
import sys
import tempfile
import unittest

try:
    import h5py
    import numpy as np
    import yaml  # noqa: F401  (the tool needs it)
except ImportError as e:
    if sys.executable != "/usr/bin/python3" and os.access("/usr/bin/python3", os.X_OK):
        os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])  # Debian's, where scripts/setup puts h5py
    print(f"skipped: {e} (Debian: python3-h5py python3-yaml)")
    sys.exit(77)

TOOL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "latency-extrapolate")


def write_run(f, run_id, policy, params, step_s, cached_steps, steps=12, blocks=4):
    g = f.create_group(f"runs/{run_id}")
    g.attrs["status"] = np.bytes_("done")  # as profdit writes them: fixed-length bytes
    g.attrs["policy"] = np.bytes_(policy)
    g.attrs["policy_params"] = np.bytes_(params)
    per_branch = [[t * 500.0, t * 500.0] for t in step_s]  # ms, both CFG branches
    g["latency/step_ms"] = np.array(per_branch)
    mask = np.ones((steps, 2, blocks), dtype=np.uint8)
    for s in cached_steps:
        mask[s, :, 0] = 0
    g["cache/compute_mask"] = mask
    g["latency/text_ms"] = 100.0
    g["latency/decode_ms"] = 900.0
    g["memory/cuda_peak_allocated_bytes"] = float(3 * 2**30)


class ExtrapolateTest(unittest.TestCase):
    def test_official_schedule_from_12_steps(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.h5")
            with h5py.File(path, "w") as f:
                write_run(f, "none_p0_s0", "none", "{}", [10.0] * 12, [])
                # warm-up 6, refresh every 6: steps 0-6 full, 7-11 cached (4 s each)
                write_run(f, "pd_p0_s0", "profiling_dit", "{warmup: 6, schedule: {type: fixed, interval: 6}}",
                          [10.0] * 7 + [4.0] * 5, range(7, 12))
            out = subprocess.run([sys.executable, TOOL, path, "--steps", "50"], capture_output=True, text=True)
            self.assertEqual(out.returncode, 0, out.stderr)
            rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
                    for line in out.stdout.splitlines() if line.startswith("| none") or line.startswith("| profiling")}
            # none: 50 x 10 s; profiling_dit: 14 full (0-5, 6, 12, ..., 48) x 10 s + 36 cached x 4 s = 284 s
            self.assertEqual(rows["none"][5], "500.0")
            self.assertEqual(rows["profiling_dit"][4], "14")
            self.assertEqual(rows["profiling_dit"][5], "284.0")
            self.assertEqual(rows["profiling_dit"][6], "285.0")   # + text 0.1 s + decode 0.9 s
            self.assertEqual(rows["profiling_dit"][7], "1.761x")  # 500 / 284
            self.assertEqual(rows["profiling_dit"][9], "3.00")

    def test_run_without_a_cached_step_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "r.h5")
            with h5py.File(path, "w") as f:
                write_run(f, "pd_p0_s0", "profiling_dit", "{warmup: 6, schedule: {type: fixed, interval: 6}}",
                          [10.0] * 6, [], steps=6)
            out = subprocess.run([sys.executable, TOOL, path], capture_output=True, text=True)
            self.assertNotEqual(out.returncode, 0)
            self.assertIn("no cached step was measured", out.stderr)


if __name__ == "__main__":
    unittest.main()
