"""The inexact outer loop (FitParameters.inexact_outer; recoilsim.fitting.solver.inexact_stop)
and fit_film's use of it: a fit the caller re-linearises from anyway stops its outer loop once
its last re-linearisation moved the slow parameters by at most eta of their move since the
start; the last fit of fit_film still runs to the full criterion, so the answer is the same."""

from types import SimpleNamespace

import numpy as np
import pytest

import recoilsim.fitting.problem as problem_module
from recoilsim.errors import RecoilsimError
from recoilsim.fitting.driver import FitParameters, SlowParameter, fit
from recoilsim.fitting.film import fit_film
from recoilsim.fitting.solver import inexact_stop
from recoilsim.forward.simulate import simulate

from test_fit_composition import _exp


def test_inexact_stop_verdict_by_hand():
    # two slow parameters at indices 1 and 3; sigmas 2 and 0.5
    prob = SimpleNamespace(i_slow=[1, 3], lin=SimpleNamespace(slow0=[10.2, 0.95]))
    start = np.array([0.0, 10.0, 0.0, 1.0])
    sig = [2.0, 0.5]
    # moved: |10.4 - 10| / 2 = 0.2, |0.9 - 1| / 0.5 = 0.2 -> 0.2; last: 0.1, 0.1 -> 0.1 = 0.5 x moved (to rounding)
    p = np.array([0.0, 10.4, 0.0, 0.9])
    assert inexact_stop(prob, p, start, sig, after=0.1, eta=0.2) is None  # last > 0.2 x moved
    v = inexact_stop(prob, p, start, sig, after=0.1, eta=0.6)
    assert v == pytest.approx({"moved_sigma": 0.2, "last_sigma": 0.1})
    assert inexact_stop(prob, p, start, sig, after=0.25, eta=0.9) is None  # moved below `after`


def test_inexact_outer_validation():
    with pytest.raises(RecoilsimError, match="inexact_outer"):
        FitParameters(inexact_outer=0.0)
    with pytest.raises(RecoilsimError, match="inexact_eta"):
        FitParameters(inexact_outer=0.1, inexact_eta=1.0)


def _film_problem():
    truth = simulate(_exp(mn_ratio=0.85, li_ratio=0.3, thickness=70.0))
    meas = {e: truth["counts"].sel(element=e).values for e in ("Li", "O", "Mn")}
    return meas


def _counting_builds(monkeypatch):
    n = {"build": 0}
    orig = problem_module.Problem.build_models

    def counted(self):
        n["build"] += 1
        return orig(self)

    monkeypatch.setattr(problem_module.Problem, "build_models", counted)
    return n


def test_inexact_outer_loop_stops_a_far_moving_fit_early(monkeypatch):
    """From 90 nm and LiMn2O4 towards 70 nm, Li x 0.3, Mn x 0.85: the first fit moves the film's
    thickness by tens of sigma. With inexact_outer it stops as soon as a solve moved the slow
    parameters by at most a fifth of that, after fewer re-linearisations than the full criterion
    needs, and says so; without, it runs until the moves are below 5 % of a step."""
    meas = _film_problem()
    slow = [SlowParameter("thickness", 0, bounds=(1.0, 5000.0)), SlowParameter("ratio", 0, "Mn", bounds=(0.05, 3.0))]

    def par(inexact):
        return FitParameters(element="Li", layer=0, depth_nm=[0.0], profile_bounds=(0.0, 3.4), regularization=0.0,
                             slow=slow, inexact_outer=inexact)

    n = _counting_builds(monkeypatch)
    full = fit(_exp(thickness=90.0), meas, par(None), verify=False)
    builds_full = n["build"]
    n["build"] = 0
    early = fit(_exp(thickness=90.0), meas, par(0.1), verify=False)
    assert full.problem.outer["converged"] and "inexact" not in full.problem.outer
    x = early.problem.outer["inexact"]
    assert x["moved_sigma"] >= 0.1 and x["last_sigma"] <= 0.2 * x["moved_sigma"]
    assert early.status == "not_converged" and "stopped early" in early.message
    assert n["build"] < builds_full
    # the early stop is where the full loop passed: the same solves up to there
    assert early.problem.outer["iterations"] < full.problem.outer["iterations"]


def test_fit_film_inexact_reaches_the_same_answer():
    """The last fit of fit_film runs to the full criterion: noiseless data, both ways at the truth,
    and the two answers within 1 % of a sigma of each other."""
    meas = _film_problem()
    res = {ix: fit_film(_exp(thickness=90.0), meas, layer="film", fast="Li", ratios=["Mn"], inexact=ix)
           for ix in (False, True)}
    for r in res.values():
        assert r.status == "success", r.message
        assert r.fit.problem.outer["converged"] and "inexact" not in r.fit.problem.outer
    assert res[True].iterations[0]["status"] == "not_converged"  # the first fit stopped early
    assert res[True].iterations[0]["stopped_early"] and not res[True].iterations[-1]["stopped_early"]
    assert res[False].iterations[0]["status"] == "success" and not res[False].iterations[0]["stopped_early"]
    a, b = res[False].summary["parameters"], res[True].summary["parameters"]
    for k in a:
        if a[k]["sigma"] > 0:
            assert abs(a[k]["value"] - b[k]["value"]) < 0.01 * a[k]["sigma"], k
            assert b[k]["sigma"] == pytest.approx(a[k]["sigma"], rel=1e-3), k
