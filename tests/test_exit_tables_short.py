"""The exit tables' crossing of a thin block by series (kernels/exit_tables.py::short_crossing).

Where a block's path is short against E/S, the energy after it lies in the cell below the node
and ``exit_tables_down`` takes it from a series instead of inverting the range table with two
logarithms and an exponential (benchmarks/README.md, "Session 10, kernel"). Checked against the
closed form of the same model (S log-log in the cell: E1/E_k = (1 - b u)^(1/b), b = 1 - a) and
against the range-table inversion the kernel uses elsewhere (``range_tables.t_of_range``).
"""

import math

import pytest
from numba import njit

from recoilsim.kernels.exit_tables import SHORT_U, SHORT_X, short_crossing
from recoilsim.kernels.range_tables import t_of_range

DLNE = math.log(10.0) / 100.0  # the shipped tables' step in ln E (100 nodes per decade)


def _cases():
    for u in (1e-7, 1e-4, 1e-3, SHORT_U):
        for x in (-SHORT_X, -0.01, 0.0, 0.003, SHORT_X):
            yield u, x


@pytest.mark.parametrize("u,x", list(_cases()))
def test_series_is_the_closed_form(u, x):
    """L = ln(1 - b u)/b, e^L and e^(a L) within 1e-14 relative (u, L) of log1p/expm1."""
    a = math.log((1.0 + x) / (1.0 - x)) / DLNE  # S_k/S_(k-1) = (1 + x)/(1 - x)
    b = 1.0 - a
    L_exact = math.log1p(-b * u) / b if b != 0.0 else -u
    L, eL, sr = short_crossing(u, x, DLNE)
    assert abs(L - L_exact) <= 1e-14 * u
    assert abs(eL - math.exp(L_exact)) <= 1e-14 * max(u, 1e-300) + 2e-16
    assert abs(sr - math.exp(a * L_exact)) <= 1e-14 * max(abs(a) * u, 1e-300) + 2e-16
    assert L > -DLNE  # the energy stays in the cell below the node


@njit(cache=True)
def _inverted(S_j, S_k, E_k, path, dlnE):
    """t_of_range's crossing of ``path`` from node k down into cell j = k - 1 (range table of the
    log-log cell: R_k - R_j = dlnE (g_k - g_j)/ln(g_k/g_j), g = E/S): (t, S(E1), E1)."""
    step = math.exp(dlnE)
    E_j = E_k / step
    g_j = E_j / S_j
    g_k = E_k / S_k
    R_j = 0.0
    R_k = dlnE * (g_k - g_j) / math.log(g_k / g_j)
    t, s2, e_r = t_of_range(R_j, R_k, S_j, S_k, step, dlnE, R_k - path)
    return t, s2, E_j * e_r


@pytest.mark.parametrize("u,x", [(1e-4, 0.01), (1e-3, -0.02), (SHORT_U, 0.04), (2e-3, -SHORT_X)])
def test_series_is_the_range_table_inversion(u, x):
    """The cell fraction, stopping and energy after the path as t_of_range gives them, within
    1e-11 (relative; t_of_range's own rounding: a logarithm of a ratio near the cell's)."""
    S_k = 0.05  # MeV per 1e15 at/cm2
    S_j = S_k * (1.0 - x) / (1.0 + x)
    E_k = 2.0
    path = u * E_k / S_k
    L, eL, sr = short_crossing(u, x, DLNE)
    t, s2, e1 = _inverted(S_j, S_k, E_k, path, DLNE)
    assert abs((1.0 + L / DLNE) - t) < 1e-11
    assert abs(S_k * sr - s2) < 1e-11 * s2
    assert abs(E_k * eL - e1) < 1e-11 * e1
    # and the energy lost: S_k path (1 - a u/2 + a (2a - 1) u^2/6 + ...), a the cell's log-log slope
    a = math.log((1.0 + x) / (1.0 - x)) / DLNE
    assert abs((E_k - e1) / (S_k * path) - (1.0 - a * u / 2.0)) < abs(a * (2.0 * a - 1.0)) / 6.0 * u * u * 1.1 + 1e-12
