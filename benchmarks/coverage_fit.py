"""Coverage studies of recoilsim.fitting.driver over many Poisson seeds (numbers for the report; too slow
for the test suite, whose fast versions live in tests/test_fit.py).

    python benchmarks/coverage_fit.py joint --seeds 50 --out joint.json
    python benchmarks/coverage_fit.py gcv --seeds 50 --out gcv.json

joint: the three-potential fit of tests/test_fit.py (AP flat, 0.006 V excess, DS smaller
    excess; Li + P + O; a, b, Q*Omega shared; Cu thickness free, start 31 nm, truth 30 nm);
    7 nodes, lambda = 0. Coverage of the 1-sigma band for the 21 profile values, z of the Cu
    thickness, a, b and Q*Omega.
gcv: 50-node grid, GCV smoothing, one spectrum set (Li, P, O, N), interface excess; coverage
    of the Bayesian band (F + P)^-1 and the sandwich band over the 50 nodes.
shapes: the default FitParameters() (50 nodes over 0-58.8 nm) with ``--reg`` ('gcv' or
    'evidence') on Li excesses of shapes the test suite does not hold (``--shape``: SHAPES), the
    reference experiment with multiple scattering as ``--ms`` says (the truth and the fit alike).

Data: Poisson draws from the full simulation of the known truth (the test suite's _mean). Each
seed is independent; --jobs runs seeds in parallel processes.
"""

import argparse
import functools
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_fit import EXCESS, NODES, _draw, _exp, _mean  # noqa: E402

from recoilsim.fitting.driver import FitParameters, SlowParameter, fit  # noqa: E402

TRUTHS = [np.ones(NODES.size), EXCESS, 1.0 + 0.1 * np.exp(-NODES / 10.0)]
TRUE = {"a_ns": 0.1039, "b_ns": 29.08, "scale": 1.0, "thickness[0]": 30.0}
FINE = np.linspace(0.0, 58.8, 50)
FINE_TRUTH = 1.0 + 0.25 * np.exp(-FINE / 10.0)
_MU = {}
SHAPES = {"bump": 1.0 + 0.25 * np.exp(-(((FINE - 15.0) / 6.0) ** 2)),  # buried Gaussian bump at 15 nm
          "dip": 1.0 - 0.2 * np.exp(-(((FINE - 25.0) / 8.0) ** 2)),  # buried depletion at 25 nm
          "ramp": 1.0 + 0.3 * np.clip(1.0 - FINE / 30.0, 0.0, None)}  # linear excess to 30 nm, a kink


def _mu(kind):
    if kind not in _MU:
        if kind == "joint":
            _MU[kind] = [_mean(NODES, t, ("Li", "P", "O")) for t in TRUTHS]
        else:
            _MU[kind] = _mean(FINE, FINE_TRUTH, ("Li", "P", "O", "N"))
    return _MU[kind]


def one_joint(seed):
    mus = _mu("joint")
    meas = [_draw(mus[i], 10_000 + 3 * seed + i) for i in range(3)]
    par = FitParameters(depth_nm=NODES, regularization=0.0,
                        slow=[SlowParameter("thickness", 0, value=31.0, bounds=(20.0, 40.0), step=0.15)])
    t = time.perf_counter()
    r = fit(_exp(), meas, par, verify=False)
    out = {"seed": seed, "status": r.status, "time_s": time.perf_counter() - t}
    if r.dataset is None:
        return out
    ds = r.dataset
    z = (ds.profile.values - np.array(TRUTHS)) / ds.profile_sigma.values
    out["z_profile"] = z.tolist()
    for n, v in TRUE.items():
        out["z_" + n] = float((ds.value.sel(parameter=n).item() - v) / ds.sigma.sel(parameter=n).item())
        out["sigma_" + n] = float(ds.sigma.sel(parameter=n).item())
    out["outer"] = r.problem.outer
    return out


def one_gcv(seed):
    mu = _mu("gcv")
    r = fit(_exp(), _draw(mu, 20_000 + seed), FitParameters(depth_nm=FINE, regularization="gcv"), verify=False)
    out = {"seed": seed, "status": r.status}
    if r.dataset is None:
        return out
    ds = r.dataset
    p = ds.profile.values[0]
    out["z_profile"] = ((p - FINE_TRUTH) / ds.profile_sigma.values[0]).tolist()
    out["z_sandwich"] = ((p - FINE_TRUTH) / ds.profile_sigma_sandwich.values[0]).tolist()
    out["lambda"] = ds.attrs["lambda"]
    return out


def one_shape(seed, shape, reg, ms):
    from recoilsim.forward.simulate import simulate
    from recoilsim.model.experiment import reference_experiment
    from recoilsim.model.sample import Profile
    key = ("shape", shape, ms)
    if key not in _MU:
        ds = simulate(reference_experiment(Profile("Li", FINE, SHAPES[shape], kind="ratio"), multiple_scattering=ms))
        _MU[key] = {e: ds["counts"].sel(element=e).values for e in ("Li", "P", "O", "N")}
    t = time.perf_counter()
    r = fit(reference_experiment(multiple_scattering=ms), _draw(_MU[key], 30_000 + seed),
            FitParameters(regularization=reg), verify=False)
    out = {"seed": seed, "status": r.status, "time_s": time.perf_counter() - t}
    if r.dataset is not None:
        ds = r.dataset
        out["z_profile"] = ((ds.profile.values[0] - SHAPES[shape]) / ds.profile_sigma.values[0]).tolist()
        out["lambda"] = ds.attrs["lambda"]
        if "profile_posterior_mean" in ds:
            out["z_posterior_mean"] = ((ds.profile_posterior_mean.values[0] - SHAPES[shape])
                                       / ds.profile_posterior_sd.values[0]).tolist()
    return out


def summary(rows, key="z_profile"):
    z = np.array([r[key] for r in rows if r.get("status") == "success"], dtype=float)
    if z.size == 0:
        return {}
    n = z.shape[0]
    az = np.abs(z)
    res = {"n_seeds": int(n), "coverage_1sigma": float(np.mean(az <= 1)), "coverage_2sigma": float(np.mean(az <= 2)),
           "max_abs_z": float(az.max()), "rms_z": float(np.sqrt(np.mean(z ** 2))),
           "mean_z_per_node": np.round(z.reshape(n, -1).mean(0), 3).tolist()}
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("study", choices=["joint", "gcv", "shapes"])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="bump")
    ap.add_argument("--reg", default="evidence", help="shapes: 'gcv' or 'evidence'")
    ap.add_argument("--ms", action="store_true", help="shapes: multiple scattering on (truth and fit)")
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    fn = {"joint": one_joint, "gcv": one_gcv,
          "shapes": functools.partial(one_shape, shape=a.shape, reg=a.reg, ms=a.ms)}[a.study]
    seeds = range(a.first, a.first + a.seeds)
    rows = []
    if a.jobs > 1:
        with ProcessPoolExecutor(a.jobs) as ex:
            for r in ex.map(fn, seeds):
                rows.append(r)
                print(json.dumps({k: r[k] for k in r if not k.startswith("z_")}), flush=True)
    else:
        for s in seeds:
            r = fn(s)
            rows.append(r)
            print(json.dumps({k: r[k] for k in r if not k.startswith("z_")}), flush=True)
    res = {"study": a.study, "rows": rows, "profile": summary(rows)}
    if a.study == "shapes":
        res.update(shape=a.shape, reg=a.reg, ms=a.ms)
        if a.reg == "evidence":
            res["posterior_mean"] = summary(rows, "z_posterior_mean")
    if a.study == "gcv":
        res["sandwich"] = summary(rows, "z_sandwich")
    elif a.study == "joint":
        for n in TRUE:
            z = np.array([r["z_" + n] for r in rows if r.get("status") == "success"])
            if z.size:
                res[n] = {"coverage_1sigma": float(np.mean(np.abs(z) <= 1)), "rms_z": float(np.sqrt(np.mean(z ** 2))),
                          "mean_z": float(z.mean()), "max_abs_z": float(np.abs(z).max())}
    res["statuses"] = {s: sum(r.get("status") == s for r in rows) for s in {r.get("status") for r in rows}}
    print(json.dumps({k: v for k, v in res.items() if k != "rows"}, indent=1))
    if a.out:
        Path(a.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
