"""The beam's multiple-scattering walk moments and how the sample is cut into blocks.

``walk_moments`` extends int L dA and int L^2 dA (A the walk's projected angular variance, L the
energy lost) over a step from the widths at its ends, taking A as the power law a (L - L*)^n of
the walk's local growth (benchmarks/README.md, "Session 9, multiple-scattering moments"). Before,
A was taken linear in L over each step (each block, and from the block top to each depth), so the
moments, and with them the spectra, depended on how the sample was cut into blocks.
"""

import numpy as np
import pytest
from numba import njit
from scipy.integrate import quad

from recoilsim.forward.engine import prepare, run, spread
from recoilsim.forward.refinement import refined
from recoilsim.kernels.multiple_scattering import HWHM_TO_SIGMA, walk_moments
from recoilsim.model.experiment import reference_experiment


@njit  # (no cache: it calls a kernel function, whose changes a cache of this file would not see)
def _moments(w, L, n):
    """walk_moments summed over the steps between consecutive entries of w, L."""
    m1 = 0.0
    m2 = 0.0
    for i in range(w.shape[0] - 1):
        m1, m2 = walk_moments(w[i], w[i + 1], L[i], L[i + 1], n, m1, m2)
    return m1, m2


@pytest.mark.parametrize("n", [1.0, 1.3, 2.0, 2.6, 3.0])
@pytest.mark.parametrize("l_star", [0.0, -0.4, 0.1])
@pytest.mark.parametrize("cuts", [1, 3, 200])
def test_moments_are_exact_for_a_power_law(n, l_star, cuts):
    """A = a (L - L*)^n, L from 0.1 to 0.6 MeV in `cuts` equal steps (L* = 0.1: a walk that starts
    there with A = 0), the steps' moments summed: scipy's quadrature of L dA and L^2 dA over the
    whole path (200 steps put every step in the series branch, 1 - r < 0.01, for L* = -0.4)."""
    a = 3.0e-4
    lo = 0.1
    L = np.linspace(lo, 0.6, cuts + 1)
    w = np.sqrt(a * (L - l_star) ** n) / HWHM_TO_SIGMA
    m1, m2 = _moments(w, L, n)

    def dA(x):
        return a * n * (x - l_star) ** (n - 1.0)

    e1 = quad(lambda x: x * dA(x), lo, 0.6, epsabs=0, epsrel=1e-12)[0]
    e2 = quad(lambda x: x * x * dA(x), lo, 0.6, epsabs=0, epsrel=1e-12)[0]
    assert m1 == pytest.approx(e1, rel=1e-9)
    assert m2 == pytest.approx(e2, rel=1e-9)


def test_the_linear_rule_is_the_case_n_equal_one():
    """n = 1 (A linear in L over the step): m1 = dA L_mid, m2 = dA (L_mid^2 + dL^2/12)."""
    w = np.array([0.002, 0.005])
    L = np.array([0.3, 0.7])
    dA = (w[1] ** 2 - w[0] ** 2) * HWHM_TO_SIGMA ** 2
    m1, m2 = _moments(w, L, 1.0)
    assert m1 == pytest.approx(dA * 0.5, rel=1e-12)
    assert m2 == pytest.approx(dA * (0.25 + 0.16 / 12.0), rel=1e-12)


def _spectra(exp, blocks):
    det = exp.detector
    inputs = refined(prepare(exp), blocks=blocks, bricks=16)
    return spread(run(inputs), det.calibration_a_ns, det.calibration_b_ns, det.n_channels, True)


def test_cutting_every_block_into_eight_moves_no_spectrum_with_multiple_scattering():
    """The flat reference (Cu / LiPON / LATP, multiple scattering on) as its 3 blocks and with every
    block cut into 8 of the same composition, bricks 16x narrower in both (so that the bricks'
    restart at block boundaries does not count; benchmarks/block_cuts.py): measured 7.8e-4 of peak;
    with the moments taken linear in each step (before) 2.7e-3."""
    exp = reference_experiment()
    one = _spectra(exp, 1)
    cut = _spectra(exp, 8)
    assert one.sum() > 0
    for s in range(one.shape[0]):
        if one[s].max() > 0:
            assert np.abs(one[s] - cut[s]).max() < 1e-3 * one[s].max()
