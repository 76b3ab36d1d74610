"""Diagnostics of the depth-profile bands, multiple scattering on unless --no-ms (docs/depth_profiles.md, "Coverage").

For each shape and count level and a few seeds, fit as benchmarks/coverage_profiles.py does and keep,
per seed and (element, node): the mixture's mean, sd and bands; the same at the single lambda of
largest evidence (draws from that lambda's Laplace posterior only); the evidence weights. Variants:

* ``--variant default``: the fit as shipped;
* ``--variant truth_stopping``: the start sample is the truth on the fitting grid and the fit stops
  after one linearisation (the stopping is the truth's: no re-linearisation error);
* ``--variant wide_lambda``: lambdas 1e-1 ... 1e9 in 21 steps (finer and wider grid).

Summaries (printed as JSON): coverage of the mixture and of the best lambda, overall and split into
"flat" nodes and "feature" nodes (Mn feature, film/Si interface); per split the mean posterior sd, the
frequentist sd of the estimates over seeds and the rms bias (mean error over seeds; with n seeds
it holds the noise's freq_sd / sqrt(n) too).

    python benchmarks/coverage_profiles_diag.py --seeds 12 --variant default --out diag.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from coverage_profiles import WINDOWS, base_experiment
from recoilsim.fitting.depth_profiles import fit_profiles
from recoilsim.fitting.laplace import mixture_samples
from recoilsim.fitting.profile_truths import ELEMENTS, truth_experiment, truth_fractions
from recoilsim.forward.simulate import simulate
from recoilsim.model.depth_grid import DepthGrid

FEATURE = {"interface_excess": (0.0, 200.0), "buried_peak": (160.0, 440.0), "step": (200.0, 400.0)}


def feature_mask(shape, z):
    lo, hi = FEATURE[shape]
    mn_feat = (z >= lo) & (z <= hi)
    iface = np.abs(z - 600.0) <= 120.0
    m = np.tile(iface, (len(ELEMENTS), 1))
    m[ELEMENTS.index("Mn")] |= mn_feat
    m[ELEMENTS.index("O")] |= mn_feat  # O is the rest of the film: it mirrors the Mn shape
    return m


def run(shape, level, seeds, variant, n_nodes=41, depth=1000.0, multiple_scattering=True):
    exp = base_experiment(multiple_scattering=multiple_scattering)
    texp, _, _ = truth_experiment(exp, shape)
    texp.beam.fluence *= level
    exp.beam.fluence *= level
    sim = simulate(texp)
    mean = {e: sim["counts"].sel(element=e).values + 0.02 for e in ELEMENTS}
    nodes = np.linspace(0, depth, n_nodes)
    lambdas = np.logspace(-1.0, 9.0, 21) if variant == "wide_lambda" else np.logspace(-1.0, 7.0, 9)
    fexp, max_relin = exp, 15
    if variant == "truth_stopping":
        grid = DepthGrid(exp.sample, list(ELEMENTS), nodes)
        fexp = dataclasses.replace(exp, sample=grid.sample(truth_fractions(shape, nodes)))
        max_relin = 1
    rows = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        meas = {e: rng.poisson(mean[e]).astype(float) for e in ELEMENTS}
        res = fit_profiles(fexp, meas, windows=WINDOWS, nodes_1e15=nodes, fit_b=False, lambdas=lambdas,
                           n_samples=1000, seed=seed, verify=False, max_relin=max_relin)
        ds = res.dataset
        w = ds["weight"].values
        kb = int(np.argmax(w))
        one = np.zeros_like(w)
        one[kb] = 1.0
        xs = mixture_samples(res.posteriors, one, 1000, np.random.default_rng(seed))
        Fs = np.array([res.model.fractions(x) for x in xs])
        q = np.percentile(Fs, [2.275, 15.865, 84.135, 97.725], axis=0)
        rows.append({"mix": (ds["fraction"].values, ds["sigma"].values, ds["lo1"].values, ds["hi1"].values,
                             ds["lo2"].values, ds["hi2"].values),
                     "best": (Fs.mean(0), Fs.std(0), q[1], q[2], q[0], q[3]),
                     "lam": ds["lam"].values, "w": w, "relin": ds.attrs["relinearisations"]})
    return nodes, rows


def summarise(shape, nodes, rows):
    tr = truth_fractions(shape, nodes)
    ok = tr >= 0.01
    feat = feature_mask(shape, nodes)
    out = {}
    for kind in ("mix", "best"):
        est = np.array([r[kind][0] for r in rows])
        sd = np.array([r[kind][1] for r in rows])
        in1 = np.array([(tr >= r[kind][2]) & (tr <= r[kind][3]) for r in rows])
        in2 = np.array([(tr >= r[kind][4]) & (tr <= r[kind][5]) for r in rows])
        bias = est.mean(0) - tr
        fsd = est.std(0, ddof=1)
        psd = sd.mean(0)
        for part, m in (("all", ok), ("flat", ok & ~feat), ("feature", ok & feat)):
            out[f"{kind}_{part}"] = {
                "cov1": round(float(in1[:, m].mean()), 3), "cov2": round(float(in2[:, m].mean()), 3),
                "post_sd": float(np.sqrt(np.mean(psd[m] ** 2))), "freq_sd": float(np.sqrt(np.mean(fsd[m] ** 2))),
                "rms_bias": float(np.sqrt(np.mean(bias[m] ** 2))),
                "sd_z": round(float(np.std(((est - tr) / sd)[:, m])), 3)}
    lam = sorted({float(x) for r in rows for x in r["lam"]})  # lambdas of no weight are dropped after the first linearisation
    W = np.array([[float(np.sum(r["w"][np.isclose(r["lam"], x)])) for x in lam] for r in rows])
    out["mean_weight"] = dict(zip([f"{x:.3g}" for x in lam], np.round(W.mean(0), 3).tolist()))
    out["relin"] = [r["relin"] for r in rows]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--variant", default="default", choices=["default", "truth_stopping", "wide_lambda"])
    ap.add_argument("--nodes", type=int, default=41)
    ap.add_argument("--shapes", nargs="*", default=["interface_excess", "buried_peak", "step"])
    ap.add_argument("--levels", nargs="*", type=float, default=[1.0, 10.0])
    ap.add_argument("--no-ms", action="store_true", help="multiple scattering off (truth and fit)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    res = []
    for shape in a.shapes:
        for level in a.levels:
            t = time.perf_counter()
            nodes, rows = run(shape, level, range(a.seeds), a.variant, n_nodes=a.nodes,
                              multiple_scattering=not a.no_ms)
            s = {"shape": shape, "level": level, "variant": a.variant, "nodes": a.nodes, "seeds": a.seeds,
                 **summarise(shape, nodes, rows), "runtime_s": round(time.perf_counter() - t, 1)}
            res.append(s)
            print(json.dumps(s), flush=True)
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
