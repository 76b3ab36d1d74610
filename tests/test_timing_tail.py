"""Timing response with an exponential tail (issue 13): the exponentially modified Gaussian."""

import math

import numpy as np
import pytest
from scipy import stats

from recoilsim import RecoilsimError
from recoilsim.forward.simulate import simulate
from recoilsim.kernels.timing_tail import apply_exponential_tail
from recoilsim.model.experiment import Experiment, Options
from recoilsim.model.instrument import Beam, Detector, Foil, Geometry
from recoilsim.model.sample import Layer, Sample


def _binned(dist, n=800):
    edges = np.arange(n + 1) - 0.5
    return np.diff(dist.cdf(edges))


@pytest.mark.parametrize("sigma, tau", [(3.0, 8.0), (2.0, 40.0), (6.0, 2.0)])
def test_tail_of_a_gaussian_is_the_analytic_emg(sigma, tau):
    """Binned Gaussian -> filter -> binned EMG (Grushka 1972; scipy's exponnorm, K = tau/sigma),
    within 1 % of the peak: the filter takes each channel's counts as uniform inside it, which
    is off by ~0.5 % of the peak for sigma >= 2 channels (3 % for sigma = 1.5, tau = 0.7)."""
    g = _binned(stats.norm(300.3, sigma))[None, :].copy()
    apply_exponential_tail(g, tau, 1.0)
    emg = _binned(stats.exponnorm(tau / sigma, loc=300.3, scale=sigma))
    assert np.abs(g[0] - emg).max() < 1e-2 * emg.max()
    # towards lower channels: the mirror image
    h = _binned(stats.norm(300.3, sigma))[None, ::-1].copy()
    apply_exponential_tail(h, -tau, 1.0)
    assert np.abs(h[0, ::-1] - emg).max() < 1e-2 * emg.max()


def test_mixture_conserves_counts_and_shifts_the_mean_by_f_tau():
    x = np.zeros((2, 2000))
    x[0, 100:130] = np.linspace(1.0, 5.0, 30)
    x[1, 1500:1510] = 3.0
    y = x.copy()
    apply_exponential_tail(y, 12.5, 0.3)
    c = np.arange(2000)
    for a, b in zip(x, y):
        assert b.sum() == pytest.approx(a.sum(), rel=1e-12)
        assert (b * c).sum() / b.sum() - (a * c).sum() / a.sum() == pytest.approx(0.3 * 12.5, rel=1e-6)
    z = x.copy()
    apply_exponential_tail(z, 12.5, 0.0)  # fraction 0: unchanged
    assert np.array_equal(z, x)


def _film(tail_ns=0.0, fraction=0.0):
    sample = Sample([Layer("Li", areal_density_1e15=50.0)])
    det = Detector(flight_length_m=0.6, solid_angle_msr=1.0, calibration_a_ns=-0.1, calibration_b_ns=150.0,
                   n_channels=1024, timing_resolution_ps=150.0, foils=[Foil("C", thickness_ug_cm2=3.0)],
                   timing_tail_ns=tail_ns, timing_tail_fraction=fraction)
    return Experiment(Beam("63Cu", 9.0, fluence=1e12), Geometry(70, 70, 40, 0.05, 0.3), det, sample, ["7Li"],
                      Options())


def test_simulate_with_tail_in_time_for_either_calibration_sign():
    """A late tail (in ns) moves the mean time by f tau whatever the sign of the calibration
    slope (here a < 0: later times are lower channels); totals unchanged."""
    off = simulate(_film())
    on = simulate(_film(2.0, 0.25))
    t = off.time_ns.values
    m_off = float((off.counts.sum("element") * t).sum() / off.counts.sum())
    m_on = float((on.counts.sum("element") * t).sum() / on.counts.sum())
    assert float(on.counts.sum()) == pytest.approx(float(off.counts.sum()), rel=1e-9)
    assert m_on - m_off == pytest.approx(0.25 * 2.0, rel=1e-3)


def test_tail_parameters_validated():
    with pytest.raises(RecoilsimError, match="timing_tail_fraction"):
        _film(1.0, 1.5)
    with pytest.raises(RecoilsimError, match="timing_tail_ns"):
        _film(math.inf, 0.1)
