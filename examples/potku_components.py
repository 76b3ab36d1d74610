"""The worked example (docs/worked_example_potku.md) rerun with each new physics component, one at
a time: baseline (multiple scattering off, no timing tail), + multiple scattering, + timing tail
(fitted: decay time and weight), + a constant background per element window (fitted with the
film, ``[fit] background = "constant"``). Prints deviance/dof and the deviance per spectrum of each step and
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

from recoilsim.workflows.potku import fit_case, load_case, plot_fit

HERE = Path(__file__).resolve().parent
STEPS = [("baseline: multiple scattering off, no tail, no background", dict(ms=False, tail=False, bg="none")),
         ("+ multiple scattering", dict(ms=True, tail=False, bg="none")),
         ("+ timing tail (fitted)", dict(ms=True, tail=True, bg="none")),
         ("+ constant background (fitted)", dict(ms=True, tail=True, bg="constant"))]
TAIL_START = (-0.5, 0.05)  # ns (< 0: towards earlier times, the events ahead of the edges), weight


def run_step(case, ms: bool, tail: bool, bg: str = "none"):
    c = copy.copy(case)
    e = copy.deepcopy(case.experiment)
    e.options.multiple_scattering = ms
    if tail:
        e.detector = dataclasses.replace(e.detector, timing_tail_ns=TAIL_START[0], timing_tail_fraction=TAIL_START[1])
    c.experiment = e
    c.fit = {**case.fit, "fit_timing_tail": tail, "background": bg}
    return c, fit_case(c)


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
    (out / "steps.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
