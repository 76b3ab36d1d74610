"""The worked example (docs/worked_example_potku.md) rerun with each new physics component, one at
a time: baseline (multiple scattering off, no timing tail), + multiple scattering, + timing tail
(fitted: decay time and weight), + a fixed background level per spectrum (the mean counts per bin
ahead of each leading edge, added to the last step's fitted model through
:func:`recoilsim.analysis.background.add_background`: an evaluation, not a fit, until the fit
holds a background term). Prints deviance/dof and the deviance per spectrum of each step and
writes each step's fit figure into --out.

    .venv/bin/python examples/potku_components.py --out potku-steps
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import xarray as xr

from recoilsim.analysis.background import add_background
from recoilsim.fitting.likelihood import deviance
from recoilsim.workflows.potku import fit_case, load_case, plot_fit

HERE = Path(__file__).resolve().parent
STEPS = [("baseline: multiple scattering off, no tail", dict(ms=False, tail=False)),
         ("+ multiple scattering", dict(ms=True, tail=False)),
         ("+ timing tail (fitted)", dict(ms=True, tail=True))]
TAIL_START = (-0.5, 0.05)  # ns (< 0: towards earlier times, the events ahead of the edges), weight


def run_step(case, ms: bool, tail: bool):
    c = copy.copy(case)
    e = copy.deepcopy(case.experiment)
    e.options.multiple_scattering = ms
    if tail:
        e.detector = dataclasses.replace(e.detector, timing_tail_ns=TAIL_START[0], timing_tail_fraction=TAIL_START[1])
    c.experiment = e
    c.fit = {**case.fit, "fit_timing_tail": tail}
    return c, fit_case(c)


AHEAD_NS = 5.0  # the level is read this far and more ahead of the edge (beyond the tail's reach and the Si gradient)


def background_step(case, res) -> dict:
    """Fixed background per spectrum: mean measured counts per bin in the window's bins more than
    AHEAD_NS before the leading edge (first bin at 10 % of the spectrum's 5-bin-smoothed maximum);
    deviance of the data against the fitted model plus that level, in the fit windows."""
    ds = res.fit.dataset
    t = case.measured["time_ns"].values
    levels, model, data = {}, {}, {}
    for e in case.elements:
        d = case.measured["counts"].sel(element=e).values.astype(float)
        m = ds["fitted"].sel(measurement=0, element=e).values
        lo, hi = case.windows[e]
        smooth = np.convolve(d, np.ones(5) / 5, mode="same")
        edge = int(np.argmax(smooth >= 0.1 * smooth[lo:hi + 1].max()))
        ahead = np.arange(lo, hi + 1)[t[lo:hi + 1] < t[edge] - AHEAD_NS]
        levels[e] = float(d[ahead].mean()) if ahead.size else 0.0
        model[e], data[e] = np.where(np.isfinite(m), m, 0.0), d
    sim = xr.Dataset({"counts": (("element", "channel"), np.array([model[e] for e in case.elements]))},
                     coords={"element": list(case.elements), "time_ns": ("channel", t)})
    with_bg = add_background(sim, levels)
    per = {}
    for e in case.elements:
        lo, hi = case.windows[e]
        per[e] = deviance(data[e][lo:hi + 1], with_bg["counts"].sel(element=e).values[lo:hi + 1])
    return {"levels": levels, "per_element": per, "deviance": sum(per.values())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--toml", default=str(HERE / "potku_ecaart.toml"))
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", default="potku-steps")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    case = load_case(a.toml, a.data)
    rows = []
    for k, (label, kw) in enumerate(STEPS):
        t0 = time.perf_counter()
        c, res = run_step(case, **kw)
        g = res.summary["goodness"]
        plot_fit(c, res, out / f"fit_step{k}.png")
        row = {"step": label, "status": res.status, "deviance": g["deviance"], "dof": g["dof"],
               "reduced": g["reduced_deviance"], "per_element": {e: [v["deviance"], v["n"]] for e, v in g["per_element"].items()},
               "values": {n: v for n, v in res.iterations[-1].items() if isinstance(v, float)}, "seconds": time.perf_counter() - t0}
        rows.append(row)
        print(json.dumps(row))
    bg = background_step(c, res)  # on the last step (timing tail)
    bg["dof"] = rows[-1]["dof"]
    print(json.dumps({"step": "+ fixed background (not refitted)", **bg}))
    rows.append(bg)
    (out / "steps.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
