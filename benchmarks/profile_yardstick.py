"""Depth profiles against the converged block model (benchmarks/README.md, "Session 11").

    python benchmarks/profile_yardstick.py [--bricks 4] [--grid 16]
    cd /some/other/dir && OTHER_CHECKOUT/.venv/bin/python /path/to/benchmarks/profile_yardstick.py --only-default
        (another checkout's default spectra, saved for this checkout's comparison with --main FILE)

The yardstick: every profile step of 0.125 nm its own block (``options.profile_model='blocks'``,
``profile_step_nm=0.125``), the energy grid refined ``--grid`` times and bricks ``--bricks`` times
narrower (:func:`recoilsim.forward.refinement.refined`), the multiple-scattering exit tables walked
at every node (stride 1, in a child process with its own Numba cache, as benchmarks/convergence.py
does). Printed: max |difference| / peak of every isotope's spectrum of the default settings (and of
``--main``'s) from the yardstick, for the benchmark reference's profile, a linear Li excess, a
profile of ones over 31 nm of LiPON, a 2 nm Li-rich marker under the Cu cap and the flat reference.
~2 min on a shared 2-core box.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convergence import refined_inputs  # noqa: E402  (this checkout's refinement)


def cases(deep: bool = False):
    """(name, experiment) of the profiled cases and the flat reference; ``deep``: smooth profiles 100-300 nm
    deep instead (a linear Li excess, the benchmark reference's profile stretched)."""
    from recoilsim.model.experiment import reference_experiment as ref
    from recoilsim.model.sample import Profile

    if deep:
        d = np.arange(0.0, 301.0, 10.0)
        return [("li_gradient_300nm", ref(Profile("Li", [0, 300], [1.25, 1.0], kind="ratio"))),
                ("li_gradient_100nm", ref(Profile("Li", [0, 100], [1.25, 1.0], kind="ratio"))),
                ("bench_stretched_300nm", ref(Profile("Li", d, 1.0 + 0.25 * np.exp(-d / 50.0), kind="scale")))]
    depth = np.arange(0.0, 31.0)
    return [("bench_reference", ref(Profile("Li", depth, 1.0 + 0.25 * np.exp(-depth / 5.0), kind="scale"))),
            ("li_excess", ref(Profile("Li", [0, 30], [1.25, 1.0], kind="ratio"))),
            ("ones", ref(Profile("Li", depth, np.ones(31), kind="scale"))),
            ("marker", ref(Profile("Li", [0, 0.5, 1.0, 2.0, 2.5, 30.0], [1, 1, 3, 3, 1, 1.0], kind="scale"))),
            ("flat", ref())]


def spectra(yardstick: bool, grid: int, bricks: int, deep: bool = False) -> dict:
    """{case: (n_sp, n_channels)} of the default settings, or of the yardstick."""
    from recoilsim.forward.engine import prepare, run, spread

    out = {}
    for name, exp in cases(deep):
        if yardstick:
            exp = dataclasses.replace(exp, options=dataclasses.replace(exp.options, profile_model="blocks",
                                                                       profile_step_nm=0.125))
        inputs = prepare(exp)
        if yardstick:
            inputs = refined_inputs(inputs, grid, 1, bricks)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            b = run(inputs)
        d = exp.detector
        out[name] = spread(b, d.calibration_a_ns, d.calibration_b_ns, d.n_channels, True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", type=int, default=16)
    ap.add_argument("--bricks", type=int, default=4)
    ap.add_argument("--main", default=None, help="another checkout's default spectra (.npz of --only-default)")
    ap.add_argument("--only-default", default=None, help="write this checkout's default spectra here and stop")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--deep", action="store_true", help="the deep smooth profiles of cases(deep=True) instead")
    ap.add_argument("--loss", type=float, nargs="*", default=[],
                    help="also the default model with these PERTURBATION_MAX_LOSS values (blocks deeper or shallower)")
    args = ap.parse_args(argv)
    if args.child:  # the yardstick, with the multiple-scattering tables walked at every node
        import recoilsim.kernels.multiple_scattering as ms

        for name in ("MS_NODE_STRIDE", "MS_THIN_STRIDE"):
            setattr(ms, name, 1)
        np.savez(args.child, **spectra(True, args.grid, args.bricks, args.deep))
        return 0
    if args.only_default:
        np.savez(args.only_default, **spectra(False, 1, 1, args.deep))
        return 0
    now = spectra(False, 1, 1, args.deep)
    import recoilsim.forward.stack as stack

    variants = {}
    for loss in args.loss:
        stack.PERTURBATION_MAX_LOSS, keep = loss, stack.PERTURBATION_MAX_LOSS
        variants[loss] = spectra(False, 1, 1, args.deep)
        stack.PERTURBATION_MAX_LOSS = keep
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(tmp, "numba"))  # the stride is compiled in
        path = os.path.join(tmp, "yard.npz")
        subprocess.run([sys.executable, __file__, "--child", path, "--grid", str(args.grid), "--bricks",
                        str(args.bricks)] + (["--deep"] if args.deep else []), env=env, check=True)
        with np.load(path) as z:
            yard = {k: z[k] for k in z.files}
    other = dict(np.load(args.main)) if args.main else None
    from recoilsim.forward.engine import prepare

    labels = [sp.label for sp in prepare(cases()[0][1]).species]
    for name in yard:
        y = yard[name]
        cols = []
        for s, label in enumerate(labels):
            peak = y[s].max()
            if peak <= 0:
                continue
            v = f"{np.abs(now[name][s] - y[s]).max() / peak:.1e}"
            if other is not None:
                v = f"{np.abs(other[name][s] - y[s]).max() / peak:.1e} / " + v
            for loss, sp in variants.items():
                v += f" (loss {loss:g}: {np.abs(sp[name][s] - y[s]).max() / peak:.1e})"
            cols.append(f"{label} {v}")
        print(name + ": " + ", ".join(cols))
    return 0


if __name__ == "__main__":
    sys.exit(main())
