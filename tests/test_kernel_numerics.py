"""Fast numerical pieces of the slab kernels (range tables, spreading) against their exact forms (issue 7)."""

import math

import numpy as np
from scipy.special import ndtr

from recoilsim.kernels.range_tables import logmean
from recoilsim.kernels.spreading import box_gauss_h


def test_tabulated_H_matches_closed_form():
    """H(z) = z Phi(z) + phi(z) (scipy's ndtr as the independent Phi) to 2e-9 absolute."""
    z = np.concatenate([np.linspace(-9.0, 9.0, 20001), np.random.default_rng(3).uniform(-8.5, 8.5, 20000)])
    exact = z * ndtr(z) + np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    approx = np.array([box_gauss_h(v) for v in z])
    assert np.max(np.abs(approx - exact)) < 2e-9


def test_logmean_series_matches_log_formula():
    """(b - a)/ln(b/a) by its artanh series inside |x| < 0.1, the log formula outside."""
    rng = np.random.default_rng(4)
    a = rng.uniform(0.1, 10.0, 5000)
    for spread in (1e-7, 1e-3, 0.05, 0.19, 0.3, 3.0):
        b = a * np.exp(spread * rng.uniform(-1.0, 1.0, a.size))
        for x, y in zip(a, b):
            exact = (y - x) / math.log1p((y - x) / x) if y != x else x  # log1p: no cancellation
            assert abs(logmean(x, y) / exact - 1.0) < 1e-12 + 5e-8, (x, y)
