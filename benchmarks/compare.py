"""Compare two pytest-benchmark JSON files: per-benchmark medians and their ratio.

    python benchmarks/compare.py base.json new.json [--threshold 1.2] [--fail]

Prints one row per benchmark present in either file: median of A, median of B, B/A. Rows with
B/A above the threshold are marked SLOWER (below 1/threshold: faster); ``--fail`` exits with
status 1 when any benchmark is slower, so a CI job can flag it.
"""

from __future__ import annotations

import argparse
import json
import sys


def _medians(path):
    with open(path) as f:
        data = json.load(f)
    out = {}
    for b in data.get("benchmarks", []):
        out[b.get("fullname") or b["name"]] = float(b["stats"]["median"])
    return out, data.get("machine_info", {})


def _fmt(t):
    if t is None:
        return "-"
    for unit, f in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if t >= f:
            return f"{t / f:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"


def compare(a_path, b_path, threshold=1.2):
    a, ma = _medians(a_path)
    b, mb = _medians(b_path)
    names = sorted(set(a) | set(b))
    rows, slower = [], []
    for n in names:
        ta, tb = a.get(n), b.get(n)
        ratio = tb / ta if ta and tb else None
        flag = ""
        if ratio is not None and ratio > threshold:
            flag = "SLOWER"
            slower.append(n)
        elif ratio is not None and ratio < 1 / threshold:
            flag = "faster"
        rows.append((n, _fmt(ta), _fmt(tb), f"{ratio:.2f}" if ratio is not None else "-", flag))
    return rows, slower, (ma, mb)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a", help="baseline benchmark JSON")
    p.add_argument("b", help="new benchmark JSON")
    p.add_argument("--threshold", type=float, default=1.2, help="ratio above which a row is SLOWER (1.2)")
    p.add_argument("--fail", action="store_true", help="exit 1 when a benchmark is slower")
    args = p.parse_args(argv)
    rows, slower, (ma, mb) = compare(args.a, args.b, args.threshold)
    for label, m in (("A", ma), ("B", mb)):
        cpu = m.get("cpu", {}).get("brand_raw", "?")
        print(f"{label}: {m.get('node', '?')} {cpu} ({m.get('cpu', {}).get('count', '?')} cpus)")
    w = max([len(r[0]) for r in rows] + [9])
    print(f"{'benchmark':<{w}}  {'median A':>10}  {'median B':>10}  {'B/A':>6}")
    for n, ta, tb, r, flag in rows:
        print(f"{n:<{w}}  {ta:>10}  {tb:>10}  {r:>6}  {flag}")
    if slower:
        print(f"{len(slower)} benchmark(s) slower than x{args.threshold}")
    return 1 if (slower and args.fail) else 0


if __name__ == "__main__":
    sys.exit(main())
