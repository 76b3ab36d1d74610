"""Stopping-power lookup kernels (Numba).

Tables (built by ``recoilsim.stopping.particle_tables``) are rows sampled on a grid uniform in
ln(E/M), E/M the energy per mass in MeV/u: node k sits at ``exp(lnE0 + k*dlnE)``. Interpolation
is linear in (ln E, ln S) ("log-log"), which for SRIM-2013's smooth fits on a 100-per-decade grid
with a node at the 2 keV/u kink stays within 0.1 % of the source (see stopping_data/check_all.py).

Units: energy MeV, mass u, stopping eV/(1e15 atoms/cm2), straggling variance MeV^2 per
1e15 atoms/cm2.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _interp_index(lnE0, dlnE, n, lnx):
    """Cell index i (0 <= i <= n-2) and fraction t for ln(E/M) = lnx; t < 0 below, > 1 above."""
    x = (lnx - lnE0) / dlnE
    if x < 0.0:
        return 0, x
    if x >= n - 1:
        return n - 2, x - (n - 2)
    i = int(x)
    if i > n - 2:
        i = n - 2
    return i, x - i


@njit(cache=True)
def _loglog_cell(a, b, t):
    """Log-log interpolation between node values a (t=0) and b (t=1); linear if either <= 0."""
    if a > 0.0 and b > 0.0:
        return a * math.exp(t * math.log(b / a))
    return a + t * (b - a)


@njit(cache=True)
def loglog(row, lnE0, dlnE, lnx):
    """Interpolate a stopping row at ln(E/M) = lnx (E/M in MeV/u); O(1) index arithmetic.

    Inside the table: linear interpolation of ln S in ln(E/M).
    Below the first node: velocity-proportional stopping, S = S_0 * sqrt(E/E_0) (the Lindhard /
    Lindhard-Scharff low-velocity limit, which SRIM-2013 itself uses below 2 keV/u).
    Above the last node: log-log extrapolation along the last two nodes (the Python layer refuses
    beams above ``e_max_per_u``, so this only serves tiny overshoots).
    Rows with non-positive nodes are interpolated linearly instead (never NaN for finite input).
    """
    n = row.shape[0]
    x = (lnx - lnE0) / dlnE
    if x != x:
        return 0.0
    if x < 0.0:
        return row[0] * math.exp(0.5 * (lnx - lnE0))
    if x >= n - 1:
        return _loglog_cell(row[n - 2], row[n - 1], x - (n - 2))
    i = int(x)
    return _loglog_cell(row[i], row[i + 1], x - i)


@njit(cache=True)
def loglog_flat(row, lnE0, dlnE, lnx):
    """Like :func:`loglog` inside the table, held constant at the end values outside it.

    Used for straggling-variance rows (their low-energy limit is not velocity-proportional).
    """
    n = row.shape[0]
    x = (lnx - lnE0) / dlnE
    if x != x:
        return 0.0
    if x <= 0.0:
        return row[0]
    if x >= n - 1:
        return row[n - 1]
    i = int(x)
    return _loglog_cell(row[i], row[i + 1], x - i)


@njit(cache=True)
def compound_stopping(E_MeV, mass_u, S_p, frac, lnE0, dlnE):
    """Stopping of a particle in a mixture by Bragg's rule, eV/(1e15 atoms/cm2).

    S = sum_j frac_j S_j(E/M) (Bragg & Kleeman, Phil. Mag. 10 (1905) 318). ``S_p`` (n_el, n_grid)
    holds the particle's rows for each element, ``frac`` (n_el,) the atomic fractions (they may
    carry per-element stopping factors). Returns 0.0 for E <= 0.
    """
    if not E_MeV > 0.0:
        return 0.0
    lnx = math.log(E_MeV / mass_u)
    n = S_p.shape[1]
    x = (lnx - lnE0) / dlnE
    s = 0.0
    if x < 0.0:
        f = math.exp(0.5 * (lnx - lnE0))
        for j in range(S_p.shape[0]):
            s += frac[j] * S_p[j, 0]
        return s * f
    if x >= n - 1:
        i = n - 2
    else:
        i = int(x)
    t = x - i
    for j in range(S_p.shape[0]):
        fj = frac[j]
        if fj != 0.0:
            s += fj * _loglog_cell(S_p[j, i], S_p[j, i + 1], t)
    return s


@njit(cache=True)
def compound_straggling(E_MeV, mass_u, W_p, frac, lnE0, dlnE):
    """Energy-straggling variance per areal density in a mixture, MeV^2/(1e15 atoms/cm2).

    Bragg-additive over elements: W = sum_j frac_j W_j(E/M) (Chu, in Ziegler (ed.), Ion Implantation
    Handbook; the additivity of Bohr's variance per electron). Held constant outside the table.
    """
    if not E_MeV > 0.0:
        return 0.0
    lnx = math.log(E_MeV / mass_u)
    s = 0.0
    for j in range(W_p.shape[0]):
        fj = frac[j]
        if fj != 0.0:
            s += fj * loglog_flat(W_p[j], lnE0, dlnE, lnx)
    return s


@njit(cache=True)
def zbl_nuclear_stopping(E_MeV, Z1, M1_u, Z2, M2_u):
    """ZBL universal nuclear stopping, eV/(1e15 atoms/cm2).

    Ziegler, Biersack, Littmark, *The Stopping and Range of Ions in Solids* (Pergamon 1985),
    ch. 2: reduced energy eps = 32.53 M2 E[keV] / (Z1 Z2 (M1+M2) (Z1^0.23 + Z2^0.23));
    S_n(eps) = ln(1 + 1.1383 eps) / (2 (eps + 0.01321 eps^0.21226 + 0.19593 eps^0.5)) for
    eps <= 30, ln(eps)/(2 eps) above; S_n[eV/(1e15 at/cm2)] = 8.462 Z1 Z2 M1 S_n(eps) /
    ((M1 + M2)(Z1^0.23 + Z2^0.23)).
    """
    if not E_MeV > 0.0:
        return 0.0
    zz = Z1 ** 0.23 + Z2 ** 0.23
    eps = E_MeV * 1000.0 * 32.53 * M2_u / (Z1 * Z2 * (M1_u + M2_u) * zz)
    if eps <= 30.0:
        sn = math.log(1.0 + 1.1383 * eps) / (2.0 * (eps + 0.01321 * eps ** 0.21226 + 0.19593 * math.sqrt(eps)))
    else:
        sn = math.log(eps) / (2.0 * eps)
    return sn * 8.462 * Z1 * Z2 * M1_u / ((M1_u + M2_u) * zz)


@njit(cache=True)
def zbl_nuclear_row(lnE0, dlnE, n, Z1, M1_u, Z2, M2_u):
    """ZBL nuclear stopping of ion (Z1, M1) in element (Z2, M2) at the n grid nodes (E = M1 E/M)."""
    out = np.empty(n)
    for k in range(n):
        out[k] = zbl_nuclear_stopping(M1_u * math.exp(lnE0 + k * dlnE), Z1, M1_u, Z2, M2_u)
    return out
