"""Coverage of the depth-profile bands (fit_profiles) over noise seeds.

For each truth shape (recoilsim.fitting.profile_truths) and count level, Poisson spectra of the
truth (plus 0.02 counts per bin of background) are fitted with fit_profiles (offset fixed,
background and Q*Omega free) and the fraction of (element, node) pairs whose truth lies inside
the 1-sigma (68.3 %) and 2-sigma (95.4 %) posterior intervals is counted, over the nodes where the
truth is at least 0.01 (a truth of exactly 0 is never inside a band of positive fractions).

    python benchmarks/coverage_profiles.py --seeds 50          # the table in docs/depth_profiles.md
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from recoilsim.forward.simulate import simulate
from recoilsim.io.experiment_file import load_experiment
from recoilsim.analysis.element_spectra import rebin_calibration
from recoilsim.fitting.depth_profiles import fit_profiles
from recoilsim.fitting.profile_truths import ELEMENTS, truth_experiment, truth_fractions

ROOT = Path(__file__).resolve().parents[1]
WINDOWS = {"Li": (150, 187), "O": (181, 245), "Mn": (325, 437), "Si": (250, 370)}  # 8-channel bins


def base_experiment(multiple_scattering: bool = True):
    exp = load_experiment(ROOT / "examples" / "potku_ecaart.toml")
    exp.options.multiple_scattering = multiple_scattering
    exp.recoils = list(ELEMENTS)
    det = exp.detector
    det.calibration_a_ns, det.calibration_b_ns = rebin_calibration(det.calibration_a_ns, det.calibration_b_ns, 8)
    det.n_channels //= 8
    return exp


def coverage(shape, level, seeds, n_nodes=41, depth=1000.0, lambdas=None, multiple_scattering=False):
    # multiple scattering off by default (the sharp model, the first table of
    # docs/depth_profiles.md); --ms for the default model (its own table there)
    exp = base_experiment(multiple_scattering=multiple_scattering)
    texp, _, _ = truth_experiment(exp, shape)
    texp.beam.fluence *= level
    exp.beam.fluence *= level
    sim = simulate(texp)
    mean = {e: sim["counts"].sel(element=e).values + 0.02 for e in ELEMENTS}
    in1 = in2 = n = 0
    z_all, per_seed = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        meas = {e: rng.poisson(mean[e]).astype(float) for e in ELEMENTS}
        res = fit_profiles(exp, meas, windows=WINDOWS, nodes_1e15=np.linspace(0, depth, n_nodes), fit_b=False,
                           lambdas=lambdas, n_samples=1000, seed=seed, verify=False)
        ds = res.dataset
        tr = truth_fractions(shape, ds["depth_1e15"].values)
        ok = tr >= 0.01
        k1 = int(np.sum(ok & (tr >= ds["lo1"].values) & (tr <= ds["hi1"].values)))
        k2 = int(np.sum(ok & (tr >= ds["lo2"].values) & (tr <= ds["hi2"].values)))
        in1, in2, n = in1 + k1, in2 + k2, n + int(ok.sum())
        per_seed.append((k1 / ok.sum(), k2 / ok.sum()))
        z_all.append(((ds["fraction"].values - tr) / ds["sigma"].values)[ok])
    z = np.concatenate(z_all)
    # standard errors from the spread between seeds (the nodes of one seed are correlated)
    se = np.std(per_seed, axis=0, ddof=1) / np.sqrt(len(per_seed)) if len(per_seed) > 1 else (np.nan, np.nan)
    return {"shape": shape, "level": level, "seeds": len(seeds), "pairs": n, "cov1": in1 / n, "cov2": in2 / n,
            "se1": float(se[0]), "se2": float(se[1]), "mean_z": float(z.mean()), "sd_z": float(z.std())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--out", default=None)
    ap.add_argument("--shapes", nargs="*", default=["interface_excess", "buried_peak", "step"])
    ap.add_argument("--levels", nargs="*", type=float, default=[1.0, 10.0])
    ap.add_argument("--nodes", type=int, default=41, help="depth nodes over 0..1000e15 at/cm2 (41)")
    ap.add_argument("--ms", action="store_true", help="multiple scattering on in truth and fit")
    a = ap.parse_args()
    rows = []
    for shape in a.shapes:
        for level in a.levels:
            t = time.perf_counter()
            r = coverage(shape, level, range(a.seeds), n_nodes=a.nodes, lambdas=np.logspace(-1.0, 7.0, 9),
                         multiple_scattering=a.ms)
            r["nodes"], r["multiple_scattering"] = a.nodes, a.ms
            r["runtime_s"] = time.perf_counter() - t
            rows.append(r)
            print(json.dumps(r), flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
