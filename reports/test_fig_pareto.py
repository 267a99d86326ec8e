#!/usr/bin/env python3
"""Test of the Pareto figure's error bars (run by ctest as report_pareto_bars): on runs whose SSIM reaches 1
and whose LPIPS-proxy reaches 0, no bar may leave the metric's range, and each bar spans the runs' min-max."""
import math
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.axes  # noqa: E402

import common  # noqa: E402
import fig_pareto  # noqa: E402


class FakeRun:
    def __init__(self, speedup, metrics):
        self.attrs = {"speedup": speedup}
        self.policy = "step_skip"
        self.metrics = metrics

    def ideal_speedup(self):
        return 2.0

    def metric_mean(self, name):
        return self.metrics.get(name, math.nan)


class FakeExp:
    name = "fake"

    def __init__(self, settings):
        self._settings = settings

    def settings(self, include_none=True):
        return self._settings

    def metric_names(self):
        return [m for m in common.METRICS if m[0] in ("ssim", "lpips_proxy")]

    def colors(self):
        return {s.tag: "C0" for s in self._settings}


class ParetoBars(unittest.TestCase):
    def test_bars_span_min_max_and_stay_in_range(self):
        # three runs: SSIM 1, 1, 0.8 (mean 0.933, std 0.094: mean + std = 1.03 > 1); proxy 0, 0, 0.2
        runs = [FakeRun(1.5, {"ssim": 1.0, "lpips_proxy": 0.0}), FakeRun(1.6, {"ssim": 1.0, "lpips_proxy": 0.0}),
                FakeRun(1.7, {"ssim": 0.8, "lpips_proxy": 0.2})]
        bars = []
        original = matplotlib.axes.Axes.errorbar

        def record(ax, x, y, xerr=None, yerr=None, **kw):
            lo, hi = (yerr[0][0], yerr[1][0]) if isinstance(yerr, (list, tuple)) else (yerr, yerr)
            bars.append((ax.get_ylabel() or "", y - lo, y + hi))
            return original(ax, x, y, xerr=xerr, yerr=yerr, **kw)

        matplotlib.axes.Axes.errorbar = record
        try:
            with tempfile.TemporaryDirectory() as d:
                fig_pareto.make(FakeExp([common.Setting("step_skip", runs)]), d)
        finally:
            matplotlib.axes.Axes.errorbar = original
        self.assertEqual(len(bars), 2)
        ssim, proxy = bars  # in the figure's order: ssim, lpips_proxy
        self.assertAlmostEqual(ssim[1], 0.8, places=12)
        self.assertAlmostEqual(ssim[2], 1.0, places=12)
        self.assertAlmostEqual(proxy[1], 0.0, places=12)
        self.assertAlmostEqual(proxy[2], 0.2, places=12)
        self.assertIn("min to max", fig_pareto.CAPTION)


if __name__ == "__main__":
    unittest.main()
