"""Parametric profile shapes (recoilsim.fitting.driver.ProfileShape): the chain-rule columns against finite
differences of the closed forms, and closed-loop recovery of the shape parameters within their
errors on the reference case (data: Poisson draws of the full simulation of the known shape)."""

import numpy as np
import pytest

from test_fit import _draw, _exp

from recoilsim.fitting.driver import FitParameters, Parameter, ProfileShape, fit
from recoilsim.model.sample import Profile
from recoilsim.forward.simulate import simulate

FLUENCE = 3.0  # 10x the other fit tests (~24,000 Li counts in the window): a 25 % excess that
# decays over 10 nm is then resolved; at 0.3 some seeds prefer any length from 10 to 100 nm
# within one unit of deviance (the fit says so: status 'correlated', level ~ amplitude ~ length)

GRID = np.arange(0.0, 62.0, 2.0)  # 31 nodes: the shape's piecewise-linear carrier


@pytest.mark.parametrize("kind", ["exp", "erf"])
def test_shape_gradient_matches_finite_differences(kind):
    sh = ProfileShape(kind)
    th = np.array([1.0, 0.3, 7.0, 12.0])
    v, g = sh.values_and_grad(GRID + 0.37, th)
    for k in range(4):
        h = 1e-6 * max(1.0, abs(th[k]))
        tp, tm = th.copy(), th.copy()
        tp[k] += h
        tm[k] -= h
        fd = (sh.values_and_grad(GRID + 0.37, tp)[0] - sh.values_and_grad(GRID + 0.37, tm)[0]) / (2 * h)
        np.testing.assert_allclose(g[:, k], fd, rtol=1e-5, atol=1e-8)
    if kind == "exp":
        np.testing.assert_allclose(v[GRID + 0.37 <= 12.0], 1.3)  # plateau above the position


def _recover(kind, truth, start, seeds):
    sh = ProfileShape(kind, **start)
    v_true, _ = sh.values_and_grad(GRID, np.array(truth))
    ds = simulate(_exp(Profile("Li", GRID, v_true, kind="ratio"), fluence=FLUENCE))
    mu = {e: ds["counts"].sel(element=e).values for e in ("Li", "P", "O", "N")}
    names = [n for n in ProfileShape.NAMES if not getattr(sh, n).fixed]
    z = {n: [] for n in names}
    for seed in seeds:
        r = fit(_exp(fluence=FLUENCE), _draw(mu, 500 + seed), FitParameters(depth_nm=GRID, shape=sh), verify=False)
        assert r.success, r.message
        ds = r.dataset
        for n, t in zip(ProfileShape.NAMES, truth):
            if n in z:
                v, s = ds.value.sel(parameter=f"{kind}.{n}[0]").item(), ds.sigma.sel(parameter=f"{kind}.{n}[0]").item()
                print(kind, seed, n, round(v, 4), "+-", round(s, 4), "truth", t)
                z[n].append((v - t) / s)
        # the profile band follows from the shape's covariance
        assert np.all(ds.profile_sigma.values[0] > 0)
        assert np.all(np.abs(ds.profile.values[0] - v_true) < 4 * ds.profile_sigma.values[0])
    return z


def test_exp_shape_recovered_within_errors():
    """Interface excess 25 % decaying over 10 nm; level, amplitude, length free (position 0)."""
    z = _recover("exp", [1.0, 0.25, 10.0, 0.0],
                 dict(amplitude=Parameter(0.1, (-1.0, 3.0)), length=Parameter(5.0, (0.5, 100.0))), range(3))
    for n, zz in z.items():
        assert np.all(np.abs(zz) < 3), (n, zz)


def test_erf_step_recovered_within_errors():
    """A buried Li-rich region: ratio 1.3 above a smooth step at 25 nm of width 6 nm; all four free."""
    z = _recover("erf", [1.0, 0.3, 6.0, 25.0],
                 dict(amplitude=Parameter(0.2, (-1.0, 3.0)), length=Parameter(4.0, (0.5, 100.0)),
                      position=Parameter(20.0, (0.0, 60.0))), range(2))
    for n, zz in z.items():
        assert np.all(np.abs(zz) < 3), (n, zz)
