"""Before/after check of a refactor: every spectrum and fit result of a fixed set of cases.

    python benchmarks/before_after.py dump before.npz      # on the old commit
    python benchmarks/before_after.py dump after.npz       # on the new one
    python benchmarks/before_after.py compare before.npz after.npz [--spectra 1e-12] [--fits 1e-9]
    python benchmarks/before_after.py dump after.npz --fit-data before.npz   # fit before's data

The reference fit's "measurements" are Poisson draws of simulated spectra, stored in the dump
(``data/...``). numpy's Poisson generator draws by rejection for large means, so a change that
moves a spectrum by ~1e-5 can shift every later draw (benchmarks/README.md, "Session 8,
kernel"); with ``--fit-data`` the new code fits the old dump's draws, so that the fit check tests
the fit and not the random generator (the ``data/`` arrays then compare equal by construction).

Cases: the reference experiment (flat and Li-excess profile), every ``examples/*.toml``, the
scattered beam and a TOF-E map of the reference case, a thick-substrate and a foil case, the
Potku worked example's experiment (when ``../shared/data`` is there), the three-spectra
reference fit of ``benchmarks/test_bench_fit.py`` and the Potku film fit (``--potku-fit``, ~20 s).
Spectra are compared relative to each spectrum's peak; fit values relative to their own size
(absolute below 1e-300). Exit status 1 when anything differs by more than the tolerance.
"""

from __future__ import annotations

import argparse
import copy
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _api():
    """The simulate / fit entry points in either layout (before or after the package redesign)."""
    try:
        from recoilsim.fitting.driver import FitParameters, fit
        from recoilsim.forward.simulate import simulate
        from recoilsim.io.experiment_file import load_experiment
        from recoilsim.model.experiment import reference_experiment
        from recoilsim.model.sample import Profile
    except ImportError:
        from recoilsim.io.experiment_file import load_experiment
        from recoilsim.model.experiment import reference_experiment
        from recoilsim.fitting.driver import FitParameters, fit
        from recoilsim.model.sample import Profile
        from recoilsim.forward.simulate import simulate
    return simulate, fit, FitParameters, load_experiment, reference_experiment, Profile


def _cases(fit_data=None):
    simulate, fit, FitParameters, load_experiment, ref, Profile = _api()
    out = {}

    def add(name, exp, **kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = simulate(exp, **kw)
        out[f"sim/{name}/counts_isotope"] = ds["counts_isotope"].values
        out[f"sim/{name}/depth_1e15"] = np.nan_to_num(ds["isotope_depth_1e15"].values, nan=-1.0)
        if "tofe" in ds:
            out[f"sim/{name}/tofe"] = ds["tofe"].values

    add("reference", ref())
    add("reference_li_excess", ref(Profile("Li", [0, 30], [1.25, 1.0], kind="ratio")))
    for p in sorted((ROOT / "examples").glob("*.toml")):
        try:
            add(f"example_{p.stem}", load_experiment(p))
        except Exception as exc:  # a file that needs data not present here
            print(f"skipped {p.name}: {exc}", file=sys.stderr)
    e = ref()
    e.options.scattered_beam = True
    add("reference_scattered", e)
    add("reference_tofe", ref(), tofe=True)
    e = ref()
    e.options.resolution = False
    add("reference_no_resolution", e)
    # closed-form hook
    add("reference_constant_stopping", ref(), constant_stopping=50.0)
    # the reference three-spectra fit of the benchmarks
    nodes = np.linspace(0.0, 58.8, 50)
    truths = [np.ones(50), 1 + 0.25 * np.exp(-nodes / 10), 1 + 0.1 * np.exp(-nodes / 10)]
    meas = []
    for i, t in enumerate(truths):
        e = ref(Profile("Li", nodes, t, kind="ratio"))
        e.beam.fluence *= 0.3
        ds = simulate(e)
        rng = np.random.default_rng(i)
        if fit_data is None:
            drawn = {el: rng.poisson(ds["counts"].sel(element=el).values).astype(float) for el in ("Li", "P", "O")}
        else:
            drawn = {el: fit_data[f"data/{i}/{el}"] for el in ("Li", "P", "O")}
        meas.append(drawn)
        out.update({f"data/{i}/{el}": v for el, v in drawn.items()})
    e0 = ref()
    e0.beam.fluence *= 0.3
    for label, par in (("fixed_lambda", FitParameters(depth_nm=nodes, regularization=1e4, relinearize=False)),
                       ("default", FitParameters(depth_nm=nodes))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = fit(copy.deepcopy(e0), meas, par)
        ds = r.dataset
        out[f"fit/{label}/value"] = ds["value"].values
        out[f"fit/{label}/sigma"] = ds["sigma"].values
        out[f"fit/{label}/profile"] = ds["profile"].values
        out[f"fit/{label}/deviance"] = np.array([ds.attrs["deviance"]])
    return out


def _potku_fit(out):
    try:
        from recoilsim.workflows.potku import fit_case, load_case
    except ImportError:
        from recoilsim.workflows.potku import fit_case, load_case
    data = ROOT.parent / "shared" / "data" / "potku-ecaart-11-mini"
    if not data.is_dir():
        print("skipped the Potku fit: no ../shared/data", file=sys.stderr)
        return
    case = load_case(ROOT / "examples" / "potku_ecaart.toml", data_dir=data)
    res = fit_case(case)
    ds = res.fit.dataset
    out["potku_fit/value"] = ds["value"].values
    out["potku_fit/sigma"] = ds["sigma"].values
    out["potku_fit/fitted"] = np.nan_to_num(ds["fitted"].values, nan=-1.0)
    comp = res.composition
    out["potku_fit/fraction"] = comp["fraction"].values


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("path")
    d.add_argument("--potku-fit", action="store_true")
    d.add_argument("--fit-data", help="an earlier dump whose drawn fit data are fitted instead of new draws")
    c = sub.add_parser("compare")
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--spectra", type=float, default=1e-12)
    c.add_argument("--fits", type=float, default=1e-9)
    args = ap.parse_args(argv)
    if args.cmd == "dump":
        out = _cases(None if args.fit_data is None else np.load(args.fit_data))
        if args.potku_fit:
            _potku_fit(out)
        np.savez(args.path, **out)
        print(f"{len(out)} arrays -> {args.path}")
        return 0
    a, b = np.load(args.a), np.load(args.b)
    bad = 0
    for k in sorted(set(a.files) | set(b.files)):
        if k not in a.files or k not in b.files:
            drawn = k.startswith("data/")  # dumps made before the drawn data were stored lack them
            print(f"{'note' if drawn else 'BAD'} {k}: only in {'A' if k in a.files else 'B'}")
            bad += not drawn
            continue
        x, y = a[k], b[k]
        if x.shape != y.shape:
            print(f"{k}: shape {x.shape} vs {y.shape}")
            bad += 1
            continue
        if k.startswith("sim/"):
            scale = np.maximum(np.abs(x).max(axis=-1, keepdims=True), 1e-300)
            tol = args.spectra
        else:
            scale = np.maximum(np.abs(x), 1e-300)
            tol = args.fits
        d = float(np.nanmax(np.abs(x - y) / scale)) if x.size else 0.0
        ok = d <= tol or (np.array_equal(np.isnan(x), np.isnan(y)) and d != d)
        bad += not ok
        print(f"{'ok ' if ok else 'BAD'} {k}: max rel diff {d:.3g} (tol {tol:g})")
    print(f"{len(set(a.files) | set(b.files))} arrays, {bad} differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
