"""The detector's timing tail in the fit (issue 13): the same exponential-tail filter in every
model column, and its decay time and weight as slow fit parameters, shared or per measurement."""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.fitting.driver import FitParameters, Parameter, SlowParameter, fit
from recoilsim.fitting.registry import get_value, set_profile, set_value
from recoilsim.forward.linear_model import LinearModel
from recoilsim.forward.node_response import NodeResponse
from recoilsim.forward.simulate import simulate
from recoilsim.fitting.profile_truths import truth_experiment
from recoilsim.model.experiment import reference_experiment

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from coverage_profiles import base_experiment  # noqa: E402

NODES = np.array([0.0, 20.0, 40.0, 60.0])
TAU, FRACS = 0.6, (0.2, 0.4)  # ns; tail weight of measurement 0 and 1


def _tailed(exp, tau, frac):
    return dataclasses.replace(exp, detector=dataclasses.replace(exp.detector, timing_tail_ns=tau,
                                                                 timing_tail_fraction=frac))


@pytest.fixture(scope="module")
def exp():
    return reference_experiment(multiple_scattering=False)


def test_registry_keys(exp):
    e = set_value(set_value(exp, ("timing_tail_ns",), 0.7), ("timing_tail_fraction",), 0.25)
    assert get_value(e, ("timing_tail_ns",)) == 0.7 and get_value(e, ("timing_tail_fraction",)) == 0.25
    assert exp.detector.timing_tail_fraction == 0.0  # the input is not changed
    with pytest.raises(RecoilsimError, match="timing_tail_fraction"):
        set_value(exp, ("timing_tail_fraction",), 1.5)
    with pytest.raises(RecoilsimError, match="layer"):
        SlowParameter("thickness")
    assert SlowParameter("timing_tail_ns").key == ("timing_tail_ns",)


def test_model_columns_carry_the_tail(exp):
    """LinearModel (full and windowed) and NodeResponse with a tail equal simulate() with it."""
    e = _tailed(exp, TAU, 0.3)
    # the linear model carries the profile (ratio 1 on its nodes): simulate the same sample
    full = simulate(set_profile(e, 1, "Li", NODES, np.ones(NODES.size)))
    plain = simulate(set_profile(exp, 1, "Li", NODES, np.ones(NODES.size)))
    lm = LinearModel(e, "Li", 1, NODES)
    for el, (A, c) in lm.element_columns().items():
        f = full["counts"].sel(element=el).values
        m = c if A is None else c + A @ lm.base
        assert np.max(np.abs(m - f)) <= 1e-9 * f.max()
        # the tail moved counts: without it the spectra differ by far more than that
        assert np.max(np.abs(plain["counts"].sel(element=el).values - f)) > 1e-3 * f.max()
    lo, hi = 300, 420  # a window on the Li spectrum: the tail from earlier channels must reach into it
    (A, c), = lm.element_columns(windows={"Li": (lo, hi)}).values()
    f = full["counts"].sel(element="Li").values
    assert np.max(np.abs((c + A @ lm.base)[lo:hi + 1] - f[lo:hi + 1])) <= 1e-9 * f.max()
    # the depth-profile fit's response (the Potku case's film on Si, 8-channel bins)
    te, grid, F = truth_experiment(_tailed(base_experiment(), TAU, 0.3), "graded")
    r = NodeResponse(te, grid, F).counts()["Mn"]
    f = simulate(te)["counts"].sel(element="Mn").values
    assert np.max(np.abs(r - f)) <= 1e-9 * f.max()


def test_closed_loop_shared_decay_per_measurement_weight(exp):
    """Two measurements with one tail decay time and their own tail weights: Poisson draws of the
    full simulation; the fit (tail decay shared, weight per measurement) recovers all three."""
    rng = np.random.default_rng(3)
    meas = []
    for frac in FRACS:
        ds = simulate(_tailed(exp, TAU, frac))
        meas.append({el: rng.poisson(ds["counts"].sel(element=el).values).astype(float) for el in ("Li", "O")})
    par = FitParameters(depth_nm=NODES, regularization=0.0, a=Parameter(fixed=True), b=Parameter(fixed=True),
                        scale=Parameter(1.0, (0, np.inf), fixed=True),
                        slow=[SlowParameter("timing_tail_ns", value=0.3, bounds=(0.01, 5.0)),
                              SlowParameter("timing_tail_fraction", value=0.1, bounds=(0.0, 1.0), measurement=0),
                              SlowParameter("timing_tail_fraction", value=0.1, bounds=(0.0, 1.0), measurement=1)])
    res = fit([exp, exp], meas, par)
    assert res.status in ("success", "poor_fit"), res.message
    for key, m, truth in ((("timing_tail_ns",), None, TAU), (("timing_tail_fraction",), 0, FRACS[0]),
                          (("timing_tail_fraction",), 1, FRACS[1])):
        v, s = res.parameter(key, m)
        assert 0 < s < 0.5 * truth
        assert abs(v - truth) < 3 * s, (key, m, v, s, truth)


def test_finite_difference_points_stay_valid(exp):
    """The tail weight's FD points value +- step never leave [0, 1] (a Detector would refuse
    them), nor does the decay time cross 0; fit_film needs a start decay time with a sign."""
    from recoilsim.fitting.film import fit_film
    from recoilsim.fitting.vector import ParameterVector
    par = FitParameters(depth_nm=NODES, slow=[SlowParameter("timing_tail_fraction", value=0.0, bounds=(0.0, 1.0)),
                                              SlowParameter("timing_tail_ns", value=-0.5, bounds=(-5.0, 5.0))])
    vec = ParameterVector(exp, par, 1, NODES)
    (i_f, i_t), (h_f, h_t) = vec.i_slow, vec.slow_h
    assert vec.lo[i_f] - h_f >= 0.0 and vec.hi[i_f] + h_f <= 1.0
    assert vec.hi[i_t] + h_t <= 0.0 and vec.lo[i_t] == -5.0
    with pytest.raises(RecoilsimError, match="timing_tail_ns"):
        fit_film(exp, {"Li": np.ones(exp.detector.n_channels)}, layer=1, fast="Li", ratios=(), timing_tail=True)


def test_fraction_fd_points_stay_in_0_1(exp):
    """An atomic fraction's FD points too (a Si fraction at its 0.99 bound with step 0.01 made the
    Potku film fit fail with 'profile[Si].values = [1.0009]')."""
    from recoilsim.fitting.vector import ParameterVector
    par = FitParameters(depth_nm=NODES, slow=[SlowParameter("fraction", 1, "O", value=0.5, bounds=(0.01, 0.999),
                                                            step=0.01)])
    vec = ParameterVector(exp, par, 1, NODES)
    i, h = vec.i_slow[0], vec.slow_h[0]
    assert vec.hi[i] + h <= 1.0 and vec.lo[i] - h >= 0.0
