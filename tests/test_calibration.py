"""TOF calibration t = a*ch + b from features of known time."""

import numpy as np
import pytest

from recoilsim.analysis.calibration import calibration_from_potku, feature_time_ns, fit_tof_calibration
from recoilsim.errors import RecoilsimError


def test_two_points_exact():
    cal = fit_tof_calibration([100, 300], [10.0, 20.0])
    assert cal.a == pytest.approx(0.05) and cal.b == pytest.approx(5.0)
    assert np.all(np.isnan(cal.cov))
    assert cal.channel(15.0) == pytest.approx(200.0)


def test_negative_slope():
    cal = fit_tof_calibration([100, 300, 500], [80.0, 60.0, 40.0])
    assert cal.a == pytest.approx(-0.1) and cal.b == pytest.approx(90.0)


def test_weighted_matches_closed_form():
    """Time uncertainties only: compare with the textbook weighted straight-line formulas."""
    x = np.array([100.0, 250.0, 400.0, 800.0])
    y = np.array([7.4, 15.9, 24.6, 47.1])
    s = np.array([0.1, 0.2, 0.1, 0.3])
    w = 1 / s**2
    S, Sx, Sy, Sxx, Sxy = w.sum(), (w * x).sum(), (w * y).sum(), (w * x * x).sum(), (w * x * y).sum()
    D = S * Sxx - Sx**2
    a = (S * Sxy - Sx * Sy) / D
    b = (Sxx * Sy - Sx * Sxy) / D
    cal = fit_tof_calibration(x, y, time_sigma_ns=s)
    assert cal.a == pytest.approx(a, rel=1e-12) and cal.b == pytest.approx(b, rel=1e-12)
    assert cal.cov[0, 0] == pytest.approx(S / D, rel=1e-10)
    assert cal.cov[1, 1] == pytest.approx(Sxx / D, rel=1e-10)
    assert cal.cov[0, 1] == pytest.approx(-Sx / D, rel=1e-10)
    assert cal.dof == 2


def test_channel_uncertainty_effective_variance():
    """Channel sigma only (equal for all): sigma_t = |a| sigma_ch, equal weights -> OLS slope,
    and var(a) = a^2 sigma_ch^2 / Sxx_centered."""
    x = np.array([100.0, 200.0, 300.0, 400.0])
    y = 0.057 * x + 1.66 + np.array([0.01, -0.02, 0.015, -0.005])
    cal = fit_tof_calibration(x, y, channel_sigma=2.0)
    a_ols, b_ols = np.polyfit(x, y, 1)
    assert cal.a == pytest.approx(a_ols, rel=1e-12)
    sxx = ((x - x.mean())**2).sum()
    assert cal.sigma_a == pytest.approx(abs(cal.a) * 2.0 / np.sqrt(sxx), rel=1e-9)


def test_coverage_of_uncertainties():
    """Over many noise draws the 1-sigma interval of a covers the truth ~68 % of the time."""
    rng = np.random.default_rng(1)
    x = np.array([300.0, 600.0, 900.0, 1500.0, 2000.0])
    a0, b0 = 0.0570569, 1.6638
    hits = 0
    n = 2000
    for _ in range(n):
        xs = x + rng.normal(0, 3.0, x.size)  # measured channel scatters around the true one
        cal = fit_tof_calibration(xs, a0 * x + b0, channel_sigma=3.0)
        hits += abs(cal.a - a0) < cal.sigma_a
    assert 0.64 < hits / n < 0.72


def test_feature_time():
    # design doc check value: 7Li at 1.9065 MeV over 0.600 m takes 82.876 ns (relativistic)
    assert feature_time_ns(1.9065, 7.016003, 0.600) == pytest.approx(82.876, abs=2e-3)


def test_potku_calibration():
    cal = calibration_from_potku({"calibration": {"slope_ns": 0.057, "offset_ns": 1.66}})
    assert cal.time_ns(100) == pytest.approx(7.36)
    with pytest.raises(RecoilsimError):
        calibration_from_potku({"calibration": None})


@pytest.mark.parametrize("args, kw", [
    (([100], [5.0]), {}),
    (([100, 100], [5.0, 6.0]), {}),
    (([100, 200], [5.0]), {}),
    (([100, np.nan], [5.0, 6.0]), {}),
    ((["a", 200], [5.0, 6.0]), {}),
    (([100, 200], [5.0, 6.0]), {"channel_sigma": [-1, 1]}),
    (([100, 200], [5.0, 6.0]), {"channel_sigma": [1, 1, 1]}),
    (([100, 200], [5.0, 5.0]), {}),  # zero slope
])
def test_bad_inputs(args, kw):
    with pytest.raises(RecoilsimError):
        fit_tof_calibration(*args, **kw)
    with pytest.raises(RecoilsimError):
        feature_time_ns(-1, 7, 0.6)
