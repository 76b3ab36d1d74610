"""Which slow parameters the reference spectra (Li, P, O of Cu / LiPON / LATP) can separate.

Closed loops on Poisson draws of the full simulation (truth: Cu 30 nm, stopping factors 1):
* the Cu stopping factor with the Cu thickness known: recovered within its errors (steps: 0.5 %
  of the factor, 0.15 nm of Cu, well under a channel, see SlowParameter.step);
* Cu stopping factor and Cu thickness together: only the energy loss in Cu, ~ t x S, reaches the
  spectra (no Cu recoil spectrum), so rho -> -1: the fit says so (status 'correlated' and a
  RuntimeWarning) and the product t S is still recovered within its error;
* the LiPON stopping factor with its thickness known: with Q*Omega free it trades against
  Q*Omega (counts per channel ~ Q*Omega / S in the layer): reported as correlated; with Q*Omega
  known it is recovered.
"""

import json
import warnings

import numpy as np
import pytest

from test_fit import EXCESS, NODES, _draw, _exp, _mean

from recoilsim.fitting.driver import FitParameters, SlowParameter, fit


@pytest.fixture(scope="module")
def mu():
    return _mean(NODES, EXCESS, ("Li", "P", "O"))


def _fit(mu, seed, slow, fix_scale=False):
    par = FitParameters(depth_nm=NODES, regularization=0.0, slow=slow)
    par.scale.fixed = fix_scale
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = fit(_exp(), _draw(mu, 300 + seed), par, verify=False)
    return r, [w for w in caught if issubclass(w.category, RuntimeWarning)]


def _vs(ds, name):
    return ds.value.sel(parameter=name).item(), ds.sigma.sel(parameter=name).item()


def test_cu_stopping_factor_with_known_thickness(mu):
    z = []
    for seed in range(4):
        r, warned = _fit(mu, seed, [SlowParameter("stopping", 0, value=1.05, bounds=(0.5, 2.0), step=0.005)])
        assert r.success and not warned, r.message
        v, s = _vs(r.dataset, "stopping[0]")
        print(seed, v, s)
        assert 0.01 < s < 0.1
        z.append((v - 1.0) / s)
    assert np.all(np.abs(z) < 3) and np.sqrt(np.mean(np.square(z))) < 2.0


def test_cu_stopping_factor_and_thickness_are_not_separable(mu):
    r, warned = _fit(mu, 0, [SlowParameter("stopping", 0, value=1.05, bounds=(0.5, 2.0), step=0.005),
                             SlowParameter("thickness", 0, value=31.0, bounds=(20.0, 40.0), step=0.15)])
    ds = r.dataset
    assert r.status == "correlated" and not r.success and ds is not None
    assert "stopping[0]" in r.message and "thickness[0]" in r.message
    assert warned and "correlated" in str(warned[0].message)
    pairs = json.loads(ds.attrs["strong_correlations"])
    assert [p[:2] for p in pairs] == [["stopping[0]", "thickness[0]"]] and pairs[0][2] < -0.99
    (S, sS), (t, st) = _vs(ds, "stopping[0]"), _vs(ds, "thickness[0]")
    cov = ds.covariance.sel(parameter="stopping[0]", parameter2="thickness[0]").item()
    s_prod = np.sqrt(t * t * sS * sS + S * S * st * st + 2 * S * t * cov)
    print("S", S, sS, "t", t, st, "t*S", t * S, "+-", s_prod)
    assert s_prod < 0.5 * st * S  # better known than either factor (measured: 2.1 nm against 9-19 nm)
    assert abs(t * S - 30.0) < 3 * s_prod


def test_lipon_stopping_factor_trades_against_q_omega(mu):
    slow = [SlowParameter("stopping", 1, value=1.05, bounds=(0.5, 2.0), step=0.005)]
    r, warned = _fit(mu, 0, slow)
    assert r.status == "correlated" and warned
    pairs = json.loads(r.dataset.attrs["strong_correlations"])
    assert {"scale", "stopping[1]"} == set(pairs[0][:2]) and pairs[0][2] > 0.99
    for seed in range(2):
        r, warned = _fit(mu, seed, slow, fix_scale=True)
        assert r.success and not warned, r.message
        v, s = _vs(r.dataset, "stopping[1]")
        print("LiPON stopping factor with Q*Omega known", v, "+-", s)
        assert abs(v - 1.0) < 3 * s and s < 0.03
