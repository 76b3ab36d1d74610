"""Exit tables of the slab ("brick") simulation (Numba kernels).

The outgoing particles' passage through all blocks above the current one, and through the T1
timing foil, is carried by *exit tables* on the energy grid: G(E) (energy after the foil of a
particle with energy E at the top of the current block), D(E) = dG/dlnE and V(E) (straggling
variance gathered on the way out), plus the loss threshold below which a particle does not get
out. Going one block down, G_(b+1)(E) = G_b(E'), D_(b+1)(E) = D_b(E') S_b(E')/S_b(E) E/E',
V_(b+1)(E) = V_b(E') + (dG_b/dE(E'))^2 S_b(E')^2 [Q_b(E) - Q_b(E')], with E' the energy after
crossing block b and Q_b the straggling integral of :mod:`range_tables` (variance propagation:
Szilagyi et al., NIM B 100 (1995) 103, eq. 8). G is evaluated between nodes as a cubic Hermite
interpolant in ln E (:func:`exit_cell`), so that resampling it at every block boundary does
not accumulate: splitting a layer into 250 blocks moves flight times by < 0.01 channel
(tests/test_second_method.py); V as a cubic too (central-difference slopes), and the
straggling integral Q inside a cell as the integral of its log-linear integrand
(:func:`range_tables.q_at`): with Q and V linear in the cell the spectra were up to 1.6e-4 of
their peak from the same tables on a 16 times finer energy grid, now < 2e-5
(benchmarks/README.md, "Session 9, kernel"). Work per block is proportional to the table size.

Units: MeV, 1e15 atoms/cm2, MeV^2 (variances).
"""

import math

from numba import njit

from .jit_options import LEAF
from .range_tables import cross_cell, q_at, range_at, range_cell, t_of_range
from .stopping import loglog_cell


@njit(cache=True, inline="always")
def exit_cell(G, D, V, o, x_th, g_th, dlnE, khi, k, t):
    """Exit tables o (rows o of G, D, V; nodes up to khi) at table cell (k, t) (node coordinate
    x = k + t): energy after the foil G, its derivative D = dG/dlnE and the gathered variance V;
    G = 0 below the loss threshold x_th.

    G is a cubic Hermite interpolant in ln E through the node values and derivatives (error
    ~h^4 per cell, so resampling it at every block boundary does not accumulate: linear
    log-log resampling moved 7Li by a channel over 250 blocks). V is a cubic Hermite too, its
    node derivatives by central differences (Catmull-Rom; exact for quadratics): a thin block
    shifts the energies by a small fraction of a cell, and linear resampling at every block
    boundary acted as a numerical diffusion of V, O(h) in the cell size, that a profile cut into
    31 one-nanometre blocks accumulated to 1e-4 of a spectrum's peak (benchmarks/README.md,
    "Session 9, kernel"). V is linear in a cell whose neighbours reach the threshold or the last
    node, and never negative. The cell holding the threshold is interpolated linearly from
    (x_th, g_th) to the node above.
    """
    x = k + t
    if x < x_th:
        return 0.0, 0.0, 0.0
    if x_th > k:  # the threshold lies inside this cell
        f = (x - x_th) / (k + 1.0 - x_th)
        g = g_th + f * (G[o, k + 1] - g_th)
        return g, (G[o, k + 1] - g_th) / ((k + 1.0 - x_th) * dlnE), V[o, k + 1]
    t2 = t * t
    t3 = t2 * t
    h01 = 3.0 * t2 - 2.0 * t3
    h10 = t3 - 2.0 * t2 + t
    h11 = t3 - t2
    g = (1.0 - h01) * G[o, k] + h10 * dlnE * D[o, k] + h01 * G[o, k + 1] + h11 * dlnE * D[o, k + 1]
    d = ((6.0 * t2 - 6.0 * t) * (G[o, k] - G[o, k + 1]) / dlnE + (3.0 * t2 - 4.0 * t + 1.0) * D[o, k]
         + (3.0 * t2 - 2.0 * t) * D[o, k + 1])
    v0 = V[o, k]
    v1 = V[o, k + 1]
    if k - 1 >= x_th and k + 2 <= khi:
        v = (1.0 - h01) * v0 + h10 * 0.5 * (v1 - V[o, k - 1]) + h01 * v1 + h11 * 0.5 * (V[o, k + 2] - v0)
        return g, d, max(v, 0.0)
    return g, d, v0 + t * (v1 - v0)


@njit(**LEAF)
def exit_tables_surface(Sf, Rf, Qf, p, foil_path, lnE0, dlnE, mass, klo, khi, G, D, V, o):
    """Exit tables o (rows o of G, D, V) of particle p (rows p of the foil tables) at the sample
    surface: through the foil (or identity without foil).

    Returns the loss threshold (node coordinate): below it a particle leaves the foil below
    the table (lost); there G = E_klo.
    """
    for k in range(klo, khi + 1):
        E = mass * math.exp(lnE0 + k * dlnE)
        if foil_path <= 0.0:
            G[o, k] = E
            D[o, k] = E
            V[o, k] = 0.0
            continue
        k1 = min(k, khi - 1)  # the last node is the end (t = 1) of the last cell
        t1 = float(k - k1)
        E2, v2, k2, t2, s1, s2 = cross_cell(Sf, Rf, Qf, p, lnE0, dlnE, math.exp(dlnE), mass, klo, khi, k1, t1,
                                             0.0, foil_path)
        if E2 <= 0.0:
            G[o, k] = 0.0
            D[o, k] = 0.0
            V[o, k] = 0.0
        else:
            G[o, k] = E2
            D[o, k] = E * s2 / s1  # dG/dlnE = E dG/dE, dG/dE = S(E2)/S(E)
            V[o, k] = v2
    if foil_path <= 0.0:
        return float(klo)
    j, t, _, _ = range_cell(Sf, Rf, p, math.exp(dlnE), dlnE, klo, khi, Rf[p, klo] + foil_path)
    if j < 0:
        return float(klo)
    return j + t


@njit(**LEAF)
def exit_tables_down(G, D, V, o, x_th, g_th, Sv, R, Q, p, path, lnE0, dlnE, mass, klo, khi, G2, D2, V2, cell):
    """Exit tables o at the bottom of a block (rows o of G2, D2, V2) from those at its top (rows o
    of G, D, V; particle p's block tables: rows p of Sv, R, Q; recursion in module doc); returns
    the new loss threshold (node coordinate; > khi: everything is lost).

    Works on table nodes: the range after the path, R(E_k) - path, rises with k, so the cell
    of the energy after the path is found by walking forward (amortised O(1) per node).
    D2 = D(E1) (S(E1)/S(E)) (E/E1) with E1 the energy after the path. The cell (j, t) of E1,
    E1 itself and S(E1) are left in rows 0-3 of ``cell`` for every node from the new threshold's
    up (j = -1: the particle stops in the block); rows 0-2 for
    :func:`multiple_scattering.ms_exit_tables_down`.
    """
    # threshold: the energy at the block bottom that reaches the top at the old threshold
    step = math.exp(dlnE)
    kt = min(int(x_th), khi - 1)
    tt = x_th - kt
    r_th = range_at(R[p, kt], R[p, kt + 1], Sv[p, kt], Sv[p, kt + 1], step, dlnE, tt,
                    loglog_cell(Sv[p, kt], Sv[p, kt + 1], tt)) + path
    if r_th >= R[p, khi]:
        x_new = khi + 1.0
    else:
        jt, t_th, _, _ = range_cell(Sv, R, p, step, dlnE, klo, khi, r_th)
        x_new = jt + t_th
    j = klo
    E_lo = mass * math.exp(lnE0 + klo * dlnE)  # node klo's energy
    E_j = E_lo  # node energy of the walking cell j
    k_cell = int(x_new)  # the first node whose cell is recorded
    # two passes over the nodes, the crossings (cell rows 0-3) and then the tables: the same arithmetic, but each
    # loop's body is short enough for the processor to overlap the long dependent chain (two logarithms, an
    # exponential, divisions) of one node with the next nodes' (one loop over both took ~0.7 ms of the
    # reference's 3.1 ms kernel, benchmarks/README.md "Session 10, kernel")
    for k in range(klo, khi + 1):
        r = R[p, k] - path
        cell[0, k] = -1.0
        if k < k_cell or r <= R[p, klo]:
            continue
        while j < khi - 1 and R[p, j + 1] <= r:
            j += 1
            E_j *= step
        t, s2, e_r = t_of_range(R[p, j], R[p, j + 1], Sv[p, j], Sv[p, j + 1], step, dlnE, r)
        cell[0, k] = j
        cell[1, k] = t
        cell[2, k] = E_j * e_r
        cell[3, k] = s2
    E_k = E_lo / step
    for k in range(klo, khi + 1):
        E_k *= step
        if k < x_new or cell[0, k] < 0.0:
            G2[o, k] = 0.0
            D2[o, k] = 0.0
            V2[o, k] = 0.0
            continue
        jc = int(cell[0, k])
        t = cell[1, k]
        e1 = cell[2, k]
        s2 = cell[3, k]
        dq = Q[p, k] - q_at(Q, p, jc, t)
        if dq < 0.0:
            dq = 0.0
        g, d, v = exit_cell(G, D, V, o, x_th, g_th, dlnE, khi, jc, t)
        e_ratio = E_k / e1  # E_k / E1
        jj = d * e_ratio / E_k  # dG/dE at E1
        G2[o, k] = g
        D2[o, k] = d * s2 / Sv[p, k] * e_ratio
        V2[o, k] = v + jj * jj * s2 * s2 * dq
    return x_new
