"""recoilsim.fit with the smoothing strength chosen by the evidence (regularization='evidence',
recoilsim.fitting.smoothing_evidence) and the band mixed over strengths."""

import numpy as np
import pytest

from test_fit import _draw, _exp, _mean

from recoilsim.fitting.driver import FitParameters, fit
from recoilsim.fitting.laplace import log_det_spd
from recoilsim.fitting.smoothing_evidence import GRID

FINE = np.linspace(0.0, 58.8, 50)


def test_log_det_of_badly_scaled_matrix():
    # A = D B D: ln det A = ln det B + 2 sum ln D, whatever the scales in D
    rng = np.random.default_rng(0)
    M = rng.standard_normal((6, 6))
    B = M @ M.T + 6 * np.eye(6)
    D = 10.0 ** np.array([-7.0, -3.0, 0.0, 2.0, 5.0, 8.0])
    A = B * np.outer(D, D)
    expected = np.linalg.slogdet(B)[1] + 2 * np.sum(np.log(D))
    assert log_det_spd(A) == pytest.approx(expected, abs=1e-9)


def test_evidence_of_a_linear_truth_reaches_the_plateau(tmp_path):
    # noiseless spectra of a profile in the prior's null space (a straight line): every strength
    # explains them, the largest ones with the fewest effective parameters, so the evidence rises
    # to the limit of infinite smoothing; the grid stops there (the strengths beyond give the same
    # straight-line posterior and would each add its weight to it)
    truth = 1.0 + 0.2 * (1.0 - FINE / FINE[-1])
    mu = _mean(FINE, truth, ("Li", "P", "O", "N"))
    r = fit(_exp(), mu, FitParameters(depth_nm=FINE, regularization="evidence"), verify=False)
    assert r.success, r.message
    ds = r.dataset
    w = ds["lambda_weight"].values
    assert w.sum() == pytest.approx(1.0)
    assert len(w) < len(GRID)  # truncated at the plateau
    assert int(np.argmax(w)) >= len(w) - 3
    assert np.all(np.diff(ds["lambda_log_evidence"].values[:-3]) > 0)
    assert np.max(np.abs(ds.profile.values[0] - truth)) < 0.01
    assert ds.attrs["lambda_criterion"].startswith("evidence")
    assert FitParameters().regularization == "evidence"  # the default
    assert "deviance" in r.summary(print_it=False)
    ds.to_netcdf(tmp_path / "fit.nc")


def test_evidence_band_covers_a_ramp():
    # fast version of `benchmarks/coverage_fit.py shapes --shape ramp --reg evidence` (numbers in
    # docs/depth_profiles.md): a linear excess ending in a kink at 30 nm, a shape the other tests
    # do not hold; 3 seeds x 50 nodes
    truth = 1.0 + 0.3 * np.clip(1.0 - FINE / 30.0, 0.0, None)
    mu = _mean(FINE, truth, ("Li", "P", "O", "N"))
    z = []
    for seed in range(3):
        r = fit(_exp(), _draw(mu, 30_000 + seed), FitParameters(depth_nm=FINE, regularization="evidence"),
                verify=False)
        assert r.success, r.message
        z.append((r.dataset.profile.values[0] - truth) / r.dataset.profile_sigma.values[0])
    z = np.abs(np.array(z))
    assert 0.5 <= np.mean(z <= 1) <= 0.9
    assert np.mean(z <= 2) >= 0.9


def test_plateau_end_closed_form():
    # H = I + lam diag(1, 1, 0), P = lam diag(1, 1, 0): effective parameters 3 - tr(H^-1 P) =
    # 1 + 2 / (1 + lam): 1.1818 (lam 10), 1.0198 (1e2), 1.0020 (1e3); the first fall below 0.05 is
    # from 1e2 to 1e3: the plateau starts at 1e3, and the scan keeps the strengths up to it
    from recoilsim.fitting.laplace import Posterior, plateau_end
    lams = np.logspace(-6, 6, 13)
    posts = [Posterior(np.zeros(3), np.eye(3) + np.diag([lam, lam, 0.0]), 0.0, 1, True) for lam in lams]
    n = plateau_end(posts, [np.diag([lam, lam, 0.0]) for lam in lams])
    assert lams[n - 1] == pytest.approx(1e3)
