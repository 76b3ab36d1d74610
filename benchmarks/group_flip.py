"""The group-flip jump of the perturbation model (benchmarks/README.md, "Session 11, follow-up").

    python benchmarks/group_flip.py

For the Li-excess profile of ``before_after.py``, the benchmark reference's profile and a Li step at
10-11 nm (its height), one node's value is scanned for the values where :func:`recoilsim.forward.stack.perturbation_groups` changes
the blocks; at each such value (found by bisection to 1e-9) the spectra just above and just below
are compared (max |diff| / peak over the isotopes), and the same move with the grouping held at
the lower side's. Printed: the value, the blocks on either side, the jump with the grouping free
and held.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np

from recoilsim.forward import engine
from recoilsim.model.experiment import reference_experiment as ref
from recoilsim.model.sample import Profile

DEPTH = np.arange(0.0, 31.0)


def cases():
    """(name, function of one node's value -> experiment, scanned values)."""
    def bench(v):
        vals = 1.0 + 0.25 * np.exp(-DEPTH / 5.0)
        vals[0] = v
        return ref(Profile("Li", DEPTH, vals, kind="scale"))

    def excess(v):
        return ref(Profile("Li", [0, 30], [v, 1.0], kind="ratio"))
    def step(v):
        return ref(Profile("Li", DEPTH, np.where(DEPTH < 10.5, v, 1.0), kind="scale"))
    return [("bench_reference, node 0", bench, np.linspace(1.0, 1.6, 61)),
            ("li_excess, node 0", excess, np.linspace(1.0, 1.6, 61)),
            ("Li step at 10-11 nm, its height", step, np.linspace(1.0, 2.0, 21))]


def starts_of(exp):
    """The grouping prepare uses for exp (its starts)."""
    seen = []
    orig = engine.perturbation_groups

    def spy(*a, **k):
        seen.append(orig(*a, **k))
        return seen[-1]
    engine.perturbation_groups = spy
    try:
        engine.prepare(exp)
    finally:
        engine.perturbation_groups = orig
    return tuple(seen[0]) if seen else ()


def spectrum(exp, starts=None):
    """(n_sp, n_ch) spectra; with ``starts`` the grouping held at those."""
    orig = engine.perturbation_groups
    if starts is not None:
        engine.perturbation_groups = lambda *a, **k: np.asarray(starts, dtype=np.int64)
    try:
        inputs = engine.prepare(exp)
    finally:
        engine.perturbation_groups = orig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = engine.run(inputs)
    d = exp.detector
    return engine.spread(b, d.calibration_a_ns, d.calibration_b_ns, d.n_channels, True)


def rel(a, b):
    """Largest |a - b| / peak over the isotopes (peak of a)."""
    return max(float(np.abs(a[s] - b[s]).max() / a[s].max()) for s in range(a.shape[0]) if a[s].max() > 0)


def flips(make, values):
    """Values (bisected to 1e-9) where the grouping changes along ``values``."""
    out = []
    prev = starts_of(make(values[0]))
    for lo, hi in zip(values[:-1], values[1:]):
        cur = starts_of(make(hi))
        if cur != prev:
            a, b = lo, hi
            while b - a > 1e-9:
                m = 0.5 * (a + b)
                if starts_of(make(m)) == prev:
                    a = m
                else:
                    b = m
            out.append((a, b))
        prev = cur
    return out


def main() -> int:
    for name, make, values in cases():
        for a, b in flips(make, values):
            sa, sb = starts_of(make(a)), starts_of(make(b))
            lo, hi = spectrum(make(a)), spectrum(make(b))
            held = spectrum(make(b), sa)
            print(f"{name}: value {a:.9f}, blocks {len(sa) - 1} -> {len(sb) - 1}: jump {rel(lo, hi):.2e} of peak; "
                  f"grouping held: {rel(lo, held):.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
