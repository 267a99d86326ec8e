#!/usr/bin/python3
"""Compares the results of two profdit HDF5 files (docs/hdf5-schema.md), e.g. a merged sharded sweep with
the same sweep run unsharded.

    scripts/h5_compare.py A.h5 B.h5 [--ignore NAME ...] [--quiet]

Checks, and reports every difference found (exit 1; exit 0 when there is none, 2 on a bad argument or an
unreadable file):
  - both files hold the same groups under /runs, /references and /budget (the budget searches; a file without
    budget targets has none), and every one has status "done";
  - the same objects (groups, datasets) and attributes below those groups, every dataset with
    the same dtype and shape and bit-identical contents, every attribute bit-identical;
  - the same root attributes, except the provenance ones that differ by construction between a merged
    and an unsharded file: created, shard, merged_from.
--subset compares a part with its whole, e.g. one shard run alone (`--shard 1/4`) with the full sweep: every run,
reference and budget search of A must be in B and equal there; B's others are not listed.
--ignore NAME (repeatable, shell-style patterns allowed) skips every group, dataset or attribute whose
name matches, with everything below it; e.g. `--ignore latency --ignore speedup` skips the timings
(latency/ datasets and the measured-speedup attribute of each run), which differ between two executions.
Uses h5py and numpy (Debian: python3-h5py, installed by scripts/setup).
"""
import argparse
import fnmatch
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:  # pragma: no cover - environment problem
    sys.exit(f"h5_compare.py: {e} (install python3-h5py, or run with /usr/bin/python3)")

ROOT_PROVENANCE = {"created", "shard", "merged_from"}
TOP_GROUPS = ("runs", "references", "budget")
OPTIONAL_GROUPS = {"budget"}
MAX_LISTED = 20


def same_value(a, b):
    """Bit-identical comparison of two attribute or dataset values (NaNs with equal bits are equal)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind == "O":  # variable-length strings and the like
        return a.tolist() == b.tolist()
    return a.tobytes() == b.tobytes()


def show(v, limit=80):
    s = repr(v.decode() if isinstance(v, bytes) else v)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def show_pair(va, vb):
    """The two values, around their first difference when both are long strings."""
    sa, sb = (v.decode() if isinstance(v, bytes) else v for v in (va, vb))
    if isinstance(sa, str) and isinstance(sb, str) and max(len(sa), len(sb)) > 60:
        i = next((i for i, (x, y) in enumerate(zip(sa, sb)) if x != y), min(len(sa), len(sb)))
        lo = max(0, i - 20)
        return f"from character {i}: A ...{sa[lo:i + 40]!r} vs B ...{sb[lo:i + 40]!r}"
    return f"A {show(va)} vs B {show(vb)}"


class Comparison:
    def __init__(self, a, b, ignore, subset=False):
        self.a, self.b, self.ignore, self.subset = a, b, ignore, subset
        self.problems = []
        self.datasets = 0
        self.attributes = 0

    def ignored(self, name):
        return any(fnmatch.fnmatchcase(name, p) for p in self.ignore)

    def problem(self, msg):
        self.problems.append(msg)

    def attrs(self, path, oa, ob, skip=()):
        na = {k for k in oa.attrs if k not in skip and not self.ignored(k)}
        nb = {k for k in ob.attrs if k not in skip and not self.ignored(k)}
        for k in sorted(na - nb):
            self.problem(f"{path}: attribute '{k}' only in A")
        for k in sorted(nb - na):
            self.problem(f"{path}: attribute '{k}' only in B")
        for k in sorted(na & nb):
            self.attributes += 1
            va, vb = oa.attrs[k], ob.attrs[k]
            if not same_value(va, vb):
                self.problem(f"{path}: attribute '{k}' differs: {show_pair(va, vb)}")

    def objects(self, path, ga, gb, a_in_b=False):
        """Recursively compares two groups (attributes, members); with a_in_b, B may hold members A lacks."""
        self.attrs(path, ga, gb)
        na = {k for k in ga if not self.ignored(k)}
        nb = {k for k in gb if not self.ignored(k)}
        for k in sorted(na - nb):
            self.problem(f"{path}/{k}: only in A")
        if a_in_b:
            nb &= na
        for k in sorted(nb - na):
            self.problem(f"{path}/{k}: only in B")
        for k in sorted(na & nb):
            oa, ob, p = ga[k], gb[k], f"{path}/{k}"
            if isinstance(oa, h5py.Group) != isinstance(ob, h5py.Group):
                self.problem(f"{p}: a group in one file, a dataset in the other")
            elif isinstance(oa, h5py.Group):
                self.objects(p, oa, ob)
            else:
                self.dataset(p, oa, ob)

    def dataset(self, path, da, db):
        self.datasets += 1
        if da.dtype != db.dtype or da.shape != db.shape:
            self.problem(f"{path}: A is {da.dtype}{list(da.shape)}, B is {db.dtype}{list(db.shape)}")
            return
        va, vb = da[()], db[()]
        if not same_value(va, vb):
            detail = ""
            if np.asarray(va).dtype.kind in "fiub":
                x, y = np.asarray(va, dtype=np.float64), np.asarray(vb, dtype=np.float64)
                neq = np.count_nonzero(~((x == y) | (np.isnan(x) & np.isnan(y))))
                detail = f" ({neq} of {x.size} values differ, max abs diff {np.nanmax(np.abs(x - y)):.3g})"
            self.problem(f"{path}: contents differ{detail}")
        self.attrs(path, da, db)

    def run(self):
        self.attrs("/ (root)", self.a, self.b, skip=ROOT_PROVENANCE)
        for top in TOP_GROUPS:
            if top not in self.a or top not in self.b:
                for name, f in (("A", self.a), ("B", self.b)):
                    if top not in f and not (top in OPTIONAL_GROUPS and top not in self.a and top not in self.b):
                        self.problem(f"/{top}: missing in {name}")
                continue
            for name, f in (("A", self.a), ("B", self.b)):
                for k in sorted(f[top]):
                    if self.ignored(k) or (self.subset and name == "B" and k not in self.a[top]):
                        continue
                    st = f[top][k].attrs.get("status", b"(no status)")
                    st = st.decode() if isinstance(st, bytes) else str(st)
                    if st != "done":
                        self.problem(f"/{top}/{k}: status in {name} is '{st}', not 'done'")
            self.objects(f"/{top}", self.a[top], self.b[top], a_in_b=self.subset)


def main():
    ap = argparse.ArgumentParser(description="Compare the results of two profdit HDF5 files bit for bit.")
    ap.add_argument("a", metavar="A.h5")
    ap.add_argument("b", metavar="B.h5")
    ap.add_argument("--ignore", action="append", default=[], metavar="NAME",
                    help="skip groups, datasets and attributes with this name (shell pattern; repeatable)")
    ap.add_argument("--subset", action="store_true",
                    help="A is a part of B (e.g. one shard): B may hold runs, references and budget searches A lacks")
    ap.add_argument("--quiet", action="store_true", help="print nothing when the files agree")
    args = ap.parse_args()
    try:
        fa = h5py.File(args.a, "r")
        fb = h5py.File(args.b, "r")
    except OSError as e:
        print(f"h5_compare.py: cannot open: {e}", file=sys.stderr)
        return 2
    with fa, fb:
        c = Comparison(fa, fb, args.ignore, args.subset)
        c.run()
        runs = [len(f["runs"]) if "runs" in f else 0 for f in (fa, fb)]
        refs = [len(f["references"]) if "references" in f else 0 for f in (fa, fb)]
    ign = f", ignoring {', '.join(args.ignore)}" if args.ignore else ""
    if args.subset:
        ign += f" (A is a subset of B: B has {runs[1]} runs, {refs[1]} references)"
    if c.problems:
        print(f"h5_compare.py: DIFFERENT: A={args.a} B={args.b}{ign}: {len(c.problems)} difference(s):",
              file=sys.stderr)
        for p in c.problems[:MAX_LISTED]:
            print(f"  {p}", file=sys.stderr)
        if len(c.problems) > MAX_LISTED:
            print(f"  ... and {len(c.problems) - MAX_LISTED} more", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"h5_compare.py: identical: {runs[0]} runs, {refs[0]} references, {c.datasets} datasets and "
              f"{c.attributes} attributes bit-identical{ign}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
