"""Stopping-power lookup kernels (Numba).

Tables (built by ``recoilsim.stopping.tables.particle_tables``) are rows sampled on a grid uniform in
ln(E/M), E/M the energy per mass in MeV/u: node k sits at ``exp(lnE0 + k*dlnE)``.

Interpolation: cubic in (ln E, ln S) ("log-log cubic"): ln S is the Lagrange polynomial through
four neighbouring nodes (k-1 .. k+2 for the cell k .. k+1), so a power law S ~ E^p is reproduced
exactly, nodes are returned exactly and one lookup is O(1) (index arithmetic, three logarithms
and one exponential per row). The four nodes never straddle one of SRIM-2013's fit boundaries
(:data:`KINKS_MEV_U`, where its electronic stopping has a slope discontinuity): near one the
stencil shifts to the nodes on the side of the lookup energy. Where a boundary falls between
nodes (1.0, 1.2, 2.4 MeV/u) that means extrapolating by less than one cell, and the two one-sided
cubics meet with a step of at most 1e-4 relative (the table's 7.6e-6 rounding, amplified).
Measured against lunasrim on the shipped 100-per-decade grid (stopping_data/check_all.py, every
pair, 0.98 keV/u .. 20 MeV/u): worst 0.012 % (0.016 % sampling only 2.0 .. 2.6 keV/u); linear
log-log interpolation of the same table deviated by up to 0.55 % just above 2 keV/u, where
SRIM's heavy-ion scaling makes S rise as steeply as E^9, and by 0.08 % next to the off-node
boundaries (stopping_data/PROVENANCE.md). Rows with a non-positive node in the stencil, and grids
too coarse for four nodes between two boundaries, fall back to linear log-log on the cell.

Units: energy MeV, mass u, stopping eV/(1e15 atoms/cm2), straggling variance MeV^2 per
1e15 atoms/cm2.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .jit_options import LEAF

KINKS_MEV_U = (0.002, 1.0, 1.2, 2.0, 2.4)
"""Energies per mass (MeV/u) where SRIM-2013's electronic stopping has a slope discontinuity
(lunasrim.stopping): 2 keV/u, the lower end of all its fits (S ~ sqrt(E) below, a node of the
shipped grid); 1.0 and 1.2 MeV/u, protons (fit, then a linear blend, then Bethe-Bloch above);
2.0 and 2.4 MeV/u, helium and lithium, and through the scaled helium stopping every heavier ion
(2.0 MeV/u is a node of the shipped grid). Straggling rows inherit them through the effective
charge. A boundary that does not apply to a row only costs a one-sided stencil there."""

_LN_KINKS = np.log(np.array(KINKS_MEV_U))  # ascending: _stencil stops at the first one above


@njit(cache=True)
def _stencil(lnE0, dlnE, n, lnx, x):
    """First node s of the four-node stencil at ln(E/M) = lnx, grid coordinate
    x = (lnx - lnE0)/dlnE (0 <= x <= n-1); -1 if no four nodes lie between the boundaries
    around x (a grid too coarse: interpolate the cell linearly)."""
    i = min(int(x), n - 2)
    lo = 0
    hi = n - 1
    for j in range(_LN_KINKS.shape[0]):
        d = _LN_KINKS[j] - lnx
        if d >= 2.5 * dlnE:
            break  # this boundary and all above it lie beyond the stencil i-1 .. i+2
        if d <= -2.5 * dlnE:
            continue
        xk = (_LN_KINKS[j] - lnE0) / dlnE
        r = math.floor(xk + 0.5)
        if abs(xk - r) < 1e-6:
            xk = r  # a boundary on a node (2 keV/u on the shipped grid) belongs to both sides
        if xk <= x:
            lo = max(lo, math.ceil(xk))
        else:
            hi = min(hi, math.floor(xk))
    if hi - lo < 3:
        return -1
    return max(min(i - 1, hi - 3), lo)


@njit(cache=True)
def _lagrange4(u):
    """Weights of the cubic Lagrange polynomial through nodes 0, 1, 2, 3 at u (w0 = 1 - w1 - w2 - w3)."""
    a = u * (u - 1.0)
    b = (u - 2.0) * (u - 3.0)
    return 0.5 * u * b, -0.5 * a * (u - 3.0), a * (u - 2.0) / 6.0


@njit(cache=True)
def _cubic4(y0, y1, y2, y3, w1, w2, w3):
    """exp of the cubic through ln y0..ln y3 (weights from :func:`_lagrange4`); all y > 0."""
    return y0 * math.exp(w1 * math.log(y1 / y0) + w2 * math.log(y2 / y0) + w3 * math.log(y3 / y0))


@njit(**LEAF)
def loglog_cell(a, b, t):
    """Log-log interpolation between node values a (t=0) and b (t=1); linear if either <= 0."""
    if a > 0.0 and b > 0.0:
        return a * math.exp(t * math.log(b / a))
    return a + t * (b - a)


@njit(cache=True)
def _inside(row, lnE0, dlnE, lnx, x):
    """Log-log cubic interpolation of a row at ln(E/M) = lnx, grid coordinate 0 <= x <= n-1."""
    n = row.shape[0]
    i = min(int(x), n - 2)
    s = _stencil(lnE0, dlnE, n, lnx, x)
    if s >= 0:
        y0 = row[s]
        y1 = row[s + 1]
        y2 = row[s + 2]
        y3 = row[s + 3]
        if y0 > 0.0 and y1 > 0.0 and y2 > 0.0 and y3 > 0.0:
            w1, w2, w3 = _lagrange4(x - s)
            return _cubic4(y0, y1, y2, y3, w1, w2, w3)
    return loglog_cell(row[i], row[i + 1], x - i)


@njit(cache=True)
def loglog(row, lnE0, dlnE, lnx):
    """Interpolate a stopping row at ln(E/M) = lnx (E/M in MeV/u); O(1) index arithmetic.

    Inside the table: log-log cubic (module docstring).
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
    if x > n - 1:
        return loglog_cell(row[n - 2], row[n - 1], x - (n - 2))
    return _inside(row, lnE0, dlnE, lnx, x)


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
    return _inside(row, lnE0, dlnE, lnx, x)


@njit(cache=True)
def compound_stopping(E_MeV, mass_u, S_p, frac, lnE0, dlnE):
    """Stopping of a particle in a mixture by Bragg's rule, eV/(1e15 atoms/cm2).

    S = sum_j frac_j S_j(E/M) (Bragg & Kleeman, Phil. Mag. 10 (1905) 318), each S_j looked up as
    in :func:`loglog` (the stencil and its weights are shared by all elements). ``S_p``
    (n_el, n_grid) holds the particle's rows for each element, ``frac`` (n_el,) the atomic
    fractions (they may carry per-element stopping factors). Returns 0.0 for E <= 0.
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
    if x > n - 1:
        t = x - (n - 2)
        for j in range(S_p.shape[0]):
            fj = frac[j]
            if fj != 0.0:
                s += fj * loglog_cell(S_p[j, n - 2], S_p[j, n - 1], t)
        return s
    i = min(int(x), n - 2)
    t = x - i
    k = _stencil(lnE0, dlnE, n, lnx, x)
    w1 = w2 = w3 = 0.0
    if k >= 0:
        w1, w2, w3 = _lagrange4(x - k)
    for j in range(S_p.shape[0]):
        fj = frac[j]
        if fj != 0.0:
            if k >= 0:
                y0 = S_p[j, k]
                y1 = S_p[j, k + 1]
                y2 = S_p[j, k + 2]
                y3 = S_p[j, k + 3]
                if y0 > 0.0 and y1 > 0.0 and y2 > 0.0 and y3 > 0.0:
                    s += fj * _cubic4(y0, y1, y2, y3, w1, w2, w3)
                    continue
            s += fj * loglog_cell(S_p[j, i], S_p[j, i + 1], t)
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


def zbl_nuclear_stopping(E_MeV, Z1, M1_u, Z2, M2_u):
    """ZBL universal nuclear stopping, eV/(1e15 atoms/cm2), at the ion energy E (MeV), a number
    or an array of them (E <= 0 gives 0).

    Ziegler, Biersack, Littmark, *The Stopping and Range of Ions in Solids* (Pergamon 1985),
    ch. 2: reduced energy eps = 32.53 M2 E[keV] / (Z1 Z2 (M1+M2) (Z1^0.23 + Z2^0.23));
    S_n(eps) = ln(1 + 1.1383 eps) / (2 (eps + 0.01321 eps^0.21226 + 0.19593 eps^0.5)) for
    eps <= 30, ln(eps)/(2 eps) above; S_n[eV/(1e15 at/cm2)] = 8.462 Z1 Z2 M1 S_n(eps) /
    ((M1 + M2)(Z1^0.23 + Z2^0.23)).

    Plain numpy: it builds tables (:func:`zbl_nuclear_row`), which the kernels read.
    """
    e = np.asarray(E_MeV, dtype=float)
    zz = Z1 ** 0.23 + Z2 ** 0.23
    eps = np.where(e > 0.0, e, 1.0) * 1000.0 * 32.53 * M2_u / (Z1 * Z2 * (M1_u + M2_u) * zz)
    low = np.minimum(eps, 30.0)  # each branch on its own range: no overflow, no log of 0
    high = np.maximum(eps, 30.0)
    sn = np.where(eps <= 30.0,
                  np.log(1.0 + 1.1383 * low) / (2.0 * (low + 0.01321 * low ** 0.21226 + 0.19593 * np.sqrt(low))),
                  np.log(high) / (2.0 * high))
    return np.where(e > 0.0, sn * 8.462 * Z1 * Z2 * M1_u / ((M1_u + M2_u) * zz), 0.0)[()]


def zbl_nuclear_row(lnE0, dlnE, n, Z1, M1_u, Z2, M2_u):
    """ZBL nuclear stopping of ion (Z1, M1) in element (Z2, M2) at the n grid nodes (E = M1 E/M)."""
    return zbl_nuclear_stopping(M1_u * np.exp(lnE0 + np.arange(n) * dlnE), Z1, M1_u, Z2, M2_u)
