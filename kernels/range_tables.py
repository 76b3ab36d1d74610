"""Block range tables of the slab ("brick") simulation (Numba kernels).

The sample is a stack of *blocks* of uniform composition (the Python layer splits layers where
a depth profile changes). Inside each block the energy of every particle follows from range
tables R(E) = int dE / S(E), so crossing any part of a block is E_out = R^-1(R(E_in) - path)
whatever its thickness (energy loss along a path by the range of the particle: SIMNRA user's
guide, "energy loss"; Szilagyi et al., NIM B 100 (1995) 103). Between table nodes S is log-log
interpolated and R is its exact integral (:func:`range_at`), so dR/dE = 1/S holds inside every
cell too. The straggling integral Q(E) = int W/S^3 dE carries the energy variance along a path:
after a homogeneous path var_out = S(E_out)^2 [var_in/S(E_in)^2 + Q(E_in) - Q(E_out)] (the
(S_out/S_in)^2 propagation rule; Szilagyi et al. 1995, eq. 8). Its integrand per ln E,
q = W E/S^3, is log-linear in each cell (W and S log-log), and Q is its exact integral inside
the cells too, to second order in the cell (:func:`q_at`; Q taken linear in each cell made the
straggling rate of a short path wrong by up to half the cell's change of q, a ripple of the
brick sigmas with the period of the table: 1.3e-4 of a spectrum's peak in the reference case,
benchmarks/README.md, "Session 9, kernel"). The Q table holds two rows per particle and the
node energies (:func:`new_tables`).

Units: MeV, u, 1e15 atoms/cm2; stopping tables in eV/(1e15 atoms/cm2), straggling tables in
MeV^2 per 1e15 atoms/cm2.
"""

import math

import numpy as np
from numba import njit

from .jit_options import INTERNAL, LEAF
from .stopping import loglog_cell

EV = 1e-6  # MeV per eV


@njit(cache=True)
def logmean(a, b):
    """Logarithmic mean (b - a)/ln(b/a): the exact integral of a log-linear segment / h."""
    return logmean_x(a, b)[0]


@njit(**LEAF)
def logmean_x(a, b):
    """:func:`logmean` of a and b and x = (b - a)/(b + a) = tanh(ln(b/a)/2) (0 where a or b is not
    positive, where the mean is the arithmetic one)."""
    if a <= 0.0 or b <= 0.0:
        return 0.5 * (a + b), 0.0
    m = 0.5 * (a + b)
    x = (b - a) / (b + a)
    x2 = x * x
    if x2 < 0.01:
        # ln(b/a) = 2 artanh(x): (b - a)/ln(b/a) = m x/artanh(x) = m (1 - x^2/3 - 4x^4/45 - ...),
        # next term 44x^6/945 < 5e-8 for |x| < 0.1 (cells of the tables have |x| < 0.03)
        return m * (1.0 - x2 * (1.0 / 3.0 + x2 * (4.0 / 45.0))), x
    return (b - a) / math.log(b / a), x


@njit(**LEAF)
def fill_tables(S, W, p, frac_S, frac_W, b, mass, lnE0, dlnE, klo, khi, Sv, R, Q):
    """Stopping Sv[p] (MeV per 1e15 at/cm2), range R[p] (1e15 at/cm2) and straggling integral
    Q[p] (and its cell rows, :func:`new_tables`) of particle p (tables S[p], W[p]) in composition b (rows b of frac_S, frac_W), on table
    nodes klo..khi (Bragg's rule over elements).

    R and Q are integrated exactly for the log-log interpolated S and W. R(E_klo) = 2 E/S,
    the range under velocity-proportional stopping below the node (Lindhard).
    (Tables are passed whole with their row indices, as in the brick kernel.)
    """
    for k in range(klo, khi + 1):
        Sv[p, k] = 0.0
        Q[p, k] = 0.0  # temporarily the straggling rate
    for j in range(frac_S.shape[1]):  # (element by element: the inner loop runs along the table; absent elements skipped)
        fs = frac_S[b, j]
        fw = frac_W[b, j]
        if fs == 0.0 and fw == 0.0:
            continue
        for k in range(klo, khi + 1):
            Sv[p, k] += fs * S[p, j, k]
            Q[p, k] += fw * W[p, j, k]
    for k in range(klo, khi + 1):
        Sv[p, k] *= EV
    h = dlnE
    step = math.exp(h)
    n_p = Q.shape[0] // 2
    E = mass * math.exp(lnE0 + klo * h)
    g_prev = E / Sv[p, klo]
    q_prev = Q[p, klo] * E / Sv[p, klo] ** 3
    R[p, klo] = 2.0 * g_prev
    Q[p, klo] = 0.0
    for k in range(klo + 1, khi + 1):
        E *= step
        g = E / Sv[p, k]
        q = Q[p, k] * E / Sv[p, k] ** 3
        R[p, k] = R[p, k - 1] + h * logmean(g_prev, g)
        # the cell's increment and its curvature for :func:`q_at`: tanh(L/2) = (q_(k+1) - q_k)/(q_(k+1) + q_k), L the
        # log slope of q
        lm, x = logmean_x(q_prev, q)
        Q[p, k] = Q[p, k - 1] + h * lm
        Q[n_p + p, k - 1] = x
        g_prev = g
        q_prev = q
    Q[n_p + p, khi] = 0.0


@njit(cache=True, inline="always")
def new_tables(n_p, n_grid, lnE0, dlnE):
    """Zeroed block tables of n_p particles: stopping (n_p, n_grid), range (n_p, n_grid) and the
    straggling integral (2 n_p + 1, n_grid): row p Q, row n_p + p the curvature c_k of :func:`q_at` in
    cell k, the last row each node's energy per mass exp(lnE0 + k dlnE) (MeV/u; :func:`cross_cell`
    reads it instead of an exponential per crossing; the same arithmetic, so the same values).
    (Inlined, as the kernel's other allocations: a literal size would compile it once per value.)"""
    Q = np.zeros((2 * n_p + 1, n_grid))
    for k in range(n_grid):
        Q[2 * n_p, k] = math.exp(lnE0 + k * dlnE)
    return np.zeros((n_p, n_grid)), np.zeros((n_p, n_grid)), Q


@njit(inline="always", **INTERNAL)
def q_at(Q, p, k, t):
    """Straggling integral Q of particle p at fraction t of cell k (rows of :func:`new_tables`).

    The integrand per ln E, q, is log-linear in the cell (log slope L), so the exact integral is
    Q_k + (Q_(k+1) - Q_k) f(t), f(t) = (e^(tL) - 1)/(e^L - 1) = t + (L/2) t(t - 1)
    + L^2 t(t - 1)(2t - 1)/12 + O(L^3). Taken as t + c t(t - 1) with c = tanh(L/2) =
    (q_(k+1) - q_k)/(q_(k+1) + q_k) (:func:`fill_tables`): within 0.008 L^2 of the cell's
    increment (|L| < 0.1 in the tables: 1e-4 of it, where Q linear in t was off by up to L/8
    and its rate by L/2).
    """
    n_p = Q.shape[0] // 2
    return Q[p, k] + (Q[p, k + 1] - Q[p, k]) * t * (1.0 + Q[n_p + p, k] * (t - 1.0))


@njit(**LEAF)
def table_cell(lnE0, dlnE, mass, klo, khi, E):
    """Cell index k (klo <= k < khi) and fraction t of energy E on the particle's grid."""
    x = (math.log(E / mass) - lnE0) / dlnE
    k = int(math.floor(x))
    if k < klo:
        k = klo
    elif k > khi - 1:
        k = khi - 1
    return k, x - k


@njit(**LEAF)
def range_at(R_k, R_k1, S_k, S_k1, step, dlnE, t, s_t):
    """R at fraction t of the cell between nodes k and k + 1 (R_k, R_k1: R there; S_k, S_k1: the
    stopping), consistent with the stopping: inside a cell g = E/S is log-linear in
    ln E (S log-log interpolated), R = int g dlnE, so R - R_k is proportional to g - g_k:
    R(t) = R_k + (R_(k+1) - R_k) (g(t)/g_k - 1)/(g_(k+1)/g_k - 1), g(t)/g_k = e^(t h) S_k/S(t).
    (Interpolating R itself log-log would make dR/dE disagree with 1/S by up to +-0.4 % inside
    each cell: a ripple in the spectrum with the period of the table.) s_t = S at t;
    step = e^h, h = dlnE.
    """
    rho_m1 = step * S_k / S_k1 - 1.0
    if abs(rho_m1) < 1e-12:
        return R_k + t * (R_k1 - R_k)
    return R_k + (R_k1 - R_k) * (math.exp(t * dlnE) * S_k / s_t - 1.0) / rho_m1


@njit(**LEAF)
def t_of_range(R_j, R_j1, S_j, S_j1, step, dlnE, r):
    """Inverse of :func:`range_at` in the cell between nodes j and j + 1: (t, S(t), E(t)/E_j)
    where the range equals r.

    g(t)/g_j = 1 + f (rho - 1) with f = (r - R_j)/(R_(j+1) - R_j) and rho = g_(j+1)/g_j, so
    t = ln(1 + f (rho - 1))/ln(rho); then E(t)/E_j = e^(t h) and S(t) = S_j e^(t h) g_j/g(t).
    """
    f = (r - R_j) / (R_j1 - R_j)
    rho = step * S_j / S_j1
    gr = 1.0 + f * (rho - 1.0)
    if abs(rho - 1.0) < 1e-12 or gr <= 0.0:
        t = f
        e_r = math.exp(t * dlnE)
        return t, loglog_cell(S_j, S_j1, t), e_r
    t = math.log(gr) / math.log(rho)
    e_r = math.exp(t * dlnE)
    return t, S_j * e_r / gr, e_r


@njit(**LEAF)
def range_cell(Sv, R, p, step, dlnE, klo, khi, r):
    """Cell (j, t) where the range reaches r (binary search), S there and E/E_j;
    j = -1 if r is below the table (the particle is lost). Above the table t > 1 extrapolates."""
    if r <= R[p, klo]:
        return -1, 0.0, 0.0, 0.0
    lo = klo
    hi = khi
    if r >= R[p, khi]:
        lo = khi - 1
    else:
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if R[p, mid] <= r:
                lo = mid
            else:
                hi = mid
    t, s_t, e_r = t_of_range(R[p, lo], R[p, lo + 1], Sv[p, lo], Sv[p, lo + 1], step, dlnE, r)
    return lo, t, s_t, e_r


@njit(**LEAF)
def cross_cell(Sv, R, Q, p, lnE0, dlnE, step, mass, klo, khi, k, t, var, path):
    """Path of particle p (rows p of the tables) at table cell (k, t) through one block (see
    :func:`cross_path`).

    Returns (E_out, var_out, k_out, t_out, S_in, S_out): the cell of the exit energy and the
    stopping at both ends are returned so that callers need not look them up again.
    E_out = 0 if the particle stops (or leaves the table). The exit cell's node energy per mass is
    read from the last row of Q (:func:`new_tables`).
    """
    s1 = loglog_cell(Sv[p, k], Sv[p, k + 1], t)
    if path <= 0.0:
        return mass * math.exp(lnE0 + (k + t) * dlnE), var, k, t, s1, s1
    r = range_at(R[p, k], R[p, k + 1], Sv[p, k], Sv[p, k + 1], step, dlnE, t, s1) - path
    j, t2, s2, e_r = range_cell(Sv, R, p, step, dlnE, klo, khi, r)
    if j < 0:
        return 0.0, 0.0, k, t, s1, 0.0
    dq = q_at(Q, p, k, t) - q_at(Q, p, j, t2)
    if dq < 0.0:
        dq = 0.0
    return mass * Q[Q.shape[0] - 1, j] * e_r, s2 * s2 * (var / (s1 * s1) + dq), j, t2, s1, s2


@njit(**LEAF)
def cross_path(Sv, R, Q, p, lnE0, dlnE, step, mass, klo, khi, E, var, path):
    """Energy and variance of particle p after a straight path (1e15 at/cm2) in one block
    (step = e^dlnE, passed in: the callers run it once per species and depth step).

    Returns (E_out, var_out); E_out = 0 if the particle stops (or leaves the table).
    """
    if path <= 0.0:
        return E, var
    if E <= 0.0:
        return 0.0, 0.0
    k, t = table_cell(lnE0, dlnE, mass, klo, khi, E)
    E2, v2, _, _, _, _ = cross_cell(Sv, R, Q, p, lnE0, dlnE, step, mass, klo, khi, k, t, var, path)
    if E2 <= 0.0:
        return 0.0, 0.0
    return E2, v2
