"""The goodness-of-fit verdict: a fit whose deviance lies far above Poisson noise is 'poor_fit'.

Data: Poisson draws from the full simulation of the reference case (Li spectrum, known interface
excess), fitted with the profile free on 7 nodes (lambda = 0, calibration and Q*Omega held).
"""

import numpy as np
import pytest
from scipy import stats

from recoilsim.fitting.driver import FitParameters, Parameter, fit
from recoilsim.fitting.likelihood import deviance_expectation, goodness_verdict
from recoilsim.forward.simulate import simulate
from recoilsim.model.experiment import reference_experiment
from recoilsim.model.sample import Profile

NODES = np.arange(0.0, 70.0, 10.0)
EXCESS = 1.0 + 0.25 * np.exp(-NODES / 10.0)


def _exp(profile=None):
    e = reference_experiment(profile)
    e.beam.fluence *= 0.3
    return e


@pytest.fixture(scope="module")
def li_counts():
    mu = simulate(_exp(Profile("Li", NODES, EXCESS, kind="ratio")))["counts"].sel(element="Li").values
    return np.random.default_rng(4).poisson(mu).astype(float)


def _par():
    return FitParameters(depth_nm=NODES, regularization=0.0, a=Parameter(fixed=True), b=Parameter(fixed=True),
                         scale=Parameter(1.0, (0, np.inf), fixed=True), relinearize=False)


def test_clean_data_is_success(li_counts):
    r = fit(_exp(), {"Li": li_counts}, _par(), verify=False)
    assert r.status == "success" and r.success and r.converged, r.message
    a = r.dataset.attrs
    assert a["deviance"] < a["poor_fit_limit"]


def test_one_channel_outlier_is_poor_fit(li_counts):
    """+1e9 counts in one channel of the Li window: before the verdict this was 'success' at
    reduced deviance 2.6e7; now 'poor_fit', the message naming the window."""
    d = li_counts.copy()
    r0 = fit(_exp(), {"Li": d}, _par(), verify=False)
    w = r0.problem.win[0]["Li"]
    k = int(w[w.size // 2])
    d[k] += 1e9
    r = fit(_exp(), {"Li": d}, _par(), verify=False)
    assert r.status == "poor_fit" and not r.success and r.converged, r.message
    assert f"measurement 0 Li channels {w[0]}-{w[-1]}" in r.message
    a = r.dataset.attrs
    assert a["reduced_deviance"] > 1.0 + 5.0 * np.sqrt(2.0 / a["dof"])
    assert a["deviance"] > a["poor_fit_limit"]


def test_deviance_expectation_against_scipy():
    """Mean and variance of a bin's deviance under Poisson(mu), by an independent sum with
    scipy's Poisson probabilities; and the chi-square(1) limit 1 + 1/(6 mu) for large mu."""
    for mu in (0.05, 1.0, 7.5, 60.0):
        n = np.arange(0, int(mu + 40 * np.sqrt(mu) + 60))
        pmf = stats.poisson.pmf(n, mu)
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = 2.0 * (mu - n + np.where(n > 0, n * np.log(n / mu), 0.0))
        mean, var = deviance_expectation(np.array([mu]))
        assert mean == pytest.approx(np.sum(pmf * dev), rel=1e-9)
        assert var == pytest.approx(np.sum(pmf * dev ** 2) - np.sum(pmf * dev) ** 2, rel=1e-7)
    mean, var = deviance_expectation(np.array([1000.0]))
    assert mean == pytest.approx(1.0 + 1.0 / 6000.0) and var == 2.0


def test_verdict_rule_for_well_filled_bins():
    """For bins with many counts the limit is the chi-square rule D/dof > 1 + 5 sqrt(2/dof)."""
    mu = np.full(400, 500.0)
    dof = 400 - 10.0
    rule = dof * (1.0 + 5.0 * np.sqrt(2.0 / dof))
    _, _, limit = goodness_verdict(mu, mu, 10.0)
    assert limit == pytest.approx(rule, rel=5e-3)  # (the variance counts all 400 bins, 2 each)
    assert goodness_verdict(mu + np.sqrt(mu) * 1.2, mu, 10.0)[0]        # D/dof ~ 1.44 > 1.36
    assert not goodness_verdict(mu + np.sqrt(mu) * 1.0, mu, 10.0)[0]    # D/dof ~ 1.0
