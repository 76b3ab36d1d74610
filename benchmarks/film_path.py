"""The worked example's film fit, counted: model builds and full-model runs per re-nominalised fit.

    python benchmarks/film_path.py [--exact] [--option KEY=VALUE ...]

Runs ``fit_case`` on examples/potku_ecaart.toml once to compile, then once counted: per fit of
the re-nominalisation its outer iterations, LinearModels built (13 per build: the centre and
value +- step of the 6 slow parameters), ``engine.run`` calls (full deviance, stopping
correction, the check against ``simulate``) and whether its outer loop stopped early (inexact);
then the totals and the CPU time. ``--exact``: every fit runs its outer loop to the full
criterion (``fit_film(..., inexact=False)``), as before session 10. ``--option``: an
``Experiment.options`` field set for every model of the fit (e.g. ``profile_model=blocks``,
``max_sigma_fraction=0.48``: how the path moves with the model's numerics, benchmarks/README.md,
"Session 12, the film fit's path"). Needs the Potku data in
../shared/data (benchmarks/README.md, "Session 10, film fit").
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exact", action="store_true", help="every fit to the full criterion (inexact=False)")
    ap.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                    help="an Experiment.options field for the fit (repeatable)")
    args = ap.parse_args(argv)
    import recoilsim.fitting.film as film
    import recoilsim.forward.engine as engine
    import recoilsim.forward.linear_model as linear_model
    from recoilsim.workflows.potku import fit_case, load_case

    if args.exact:
        film.fit_film = functools.partial(film.fit_film, inexact=False)
    case = load_case(ROOT / "examples" / "potku_ecaart.toml")
    if args.option:
        opts = case.experiment.options
        kv = dict(o.split("=", 1) for o in args.option)
        kv = {k: v if isinstance(getattr(opts, k), str) else type(getattr(opts, k))(float(v)) for k, v in kv.items()}
        exp = dataclasses.replace(case.experiment, options=dataclasses.replace(opts, **kv))
        case = dataclasses.replace(case, experiment=exp)
    fit_case(case)  # compile and import outside the count
    count = {"run": 0, "lm": 0}
    run, lm_init, fit = engine.run, linear_model.LinearModel.__init__, film.fit

    def counted_run(*a, **k):
        count["run"] += 1
        return run(*a, **k)

    def counted_lm(self, *a, **k):
        count["lm"] += 1
        return lm_init(self, *a, **k)

    def counted_fit(*a, **k):
        before = dict(count)
        res = fit(*a, **k)
        outer = res.problem.outer
        print(f"fit: {outer['iterations']:2d} outer iterations, {count['lm'] - before['lm']:3d} LinearModels, "
              f"{count['run'] - before['run']:3d} engine runs, {res.status}"
              + (f", stopped early (moved {outer['inexact']['moved_sigma']:.3g} sigma, last solve "
                 f"{outer['inexact']['last_sigma']:.3g})" if "inexact" in outer else ""))
        return res

    engine.run, linear_model.LinearModel.__init__, film.fit = counted_run, counted_lm, counted_fit
    t = time.process_time()
    res = fit_case(case)
    cpu = time.process_time() - t
    print(f"total: {len(res.iterations)} fits, {count['lm']} LinearModels ({count['lm'] / 13:.0f} builds), "
          f"{count['run']} engine runs, {cpu:.2f} s CPU; {res.message.split(';')[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
