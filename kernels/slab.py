"""Slab ("brick") simulation of TOF-ERDA spectra (Numba kernels).

The sample is a stack of *blocks* of uniform composition (the Python layer splits layers where
a depth profile changes). Inside each block the energy of every particle follows from range
tables R(E) = int dE / S(E), so crossing any part of a block is E_out = R^-1(R(E_in) - path)
whatever its thickness (DESIGN.md section 2, "energy loss along a path"). Between table nodes S
is log-log interpolated and R is its exact integral (:func:`_range_at`), so dR/dE = 1/S holds
inside every cell too. The outgoing particles' passage through all blocks above, and through
the T1 timing foil, is carried by *exit tables* on the energy grid: G(E) (energy after the foil
of a particle with energy E at the top of the current block), D(E) = dG/dlnE and V(E)
(straggling variance gathered on the way out), plus the loss threshold below which a particle
does not get out. Going one block down, G_(b+1)(E) = G_b(E'), D_(b+1)(E) = D_b(E')
S_b(E')/S_b(E) E/E', V_(b+1)(E) = V_b(E') + (dG_b/dE(E'))^2 S_b(E')^2 [Q_b(E) - Q_b(E')], with
E' the energy after crossing block b and Q_b(E) = int W/S^3 dE the straggling integral, so that
the variance after a homogeneous path is S(E_out)^2 [var_in/S(E_in)^2 + Q(E_in) - Q(E_out)] (the
(S_out/S_in)^2 propagation rule; Szilagyi et al., NIM B 100 (1995) 103, eq. 8). G is evaluated
between nodes as a cubic Hermite interpolant in ln E (:func:`_exit_cell`), so that resampling
it at every block boundary does not accumulate: splitting a layer into 250 blocks moves flight
times by < 0.01 channel (tests/test_second_method.py). Work per block is proportional to the
table size, and per depth step to the number of outgoing species.

Bricks: between two depths x_a < x_b inside one block, the yield
Y = Q Omega sigma n (x_b - x_a) / cos(alpha) (DESIGN.md section 2, slab method; SIMNRA user's
guide) is spread uniformly over the time interval between the flight times of particles made at
x_a and at x_b, then convolved with a Gaussian in time whose variance adds straggling (in and
out paths, foil), first-order geometric spread and the timing resolution.

Units: MeV, u, 1e15 atoms/cm2, ns, radians; stopping tables in eV/(1e15 atoms/cm2),
straggling tables in MeV^2 per 1e15 atoms/cm2, cross sections mb/sr.
"""

import math

import numpy as np
from numba import njit

from .cross_section import recoil_cross_section_at, recoil_cross_section_coeffs, scatter_cross_section
from .kinematics import flight_time_ns, recoil_factor, scatter_factor, U_MEV
from .stopping import _loglog_cell

EV = 1e-6  # MeV per eV


# ------------------------------------------------------------------ block tables

@njit(cache=True)
def _logmean(a, b):
    """Logarithmic mean (b - a)/ln(b/a): the exact integral of a log-linear segment / h."""
    if a <= 0.0 or b <= 0.0:
        return 0.5 * (a + b)
    m = 0.5 * (a + b)
    x = (b - a) / (b + a)
    x2 = x * x
    if x2 < 0.01:
        # ln(b/a) = 2 artanh(x): (b - a)/ln(b/a) = m x/artanh(x) = m (1 - x^2/3 - 4x^4/45 - ...),
        # next term 44x^6/945 < 5e-8 for |x| < 0.1 (cells of the tables have |x| < 0.03)
        return m * (1.0 - x2 * (1.0 / 3.0 + x2 * (4.0 / 45.0)))
    return (b - a) / math.log(b / a)


@njit(cache=True)
def fill_tables(S_p, W_p, frac_S, frac_W, mass, lnE0, dlnE, klo, khi, Sv, R, Q):
    """Stopping Sv (MeV per 1e15 at/cm2), range R (1e15 at/cm2) and straggling integral Q of
    one particle in one composition, on table nodes klo..khi (Bragg's rule over elements).

    R and Q are integrated exactly for the log-log interpolated S and W. R(E_klo) = 2 E/S,
    the range under velocity-proportional stopping below the node (Lindhard).
    """
    n_el = frac_S.shape[0]
    for k in range(klo, khi + 1):
        s = 0.0
        w = 0.0
        for j in range(n_el):
            s += frac_S[j] * S_p[j, k]
            w += frac_W[j] * W_p[j, k]
        Sv[k] = s * EV
        Q[k] = w  # temporarily the straggling rate
    h = dlnE
    step = math.exp(h)
    E = mass * math.exp(lnE0 + klo * h)
    g_prev = E / Sv[klo]
    q_prev = Q[klo] * E / Sv[klo] ** 3
    R[klo] = 2.0 * g_prev
    Q[klo] = 0.0
    for k in range(klo + 1, khi + 1):
        E *= step
        g = E / Sv[k]
        q = Q[k] * E / Sv[k] ** 3
        R[k] = R[k - 1] + h * _logmean(g_prev, g)
        Q[k] = Q[k - 1] + h * _logmean(q_prev, q)
        g_prev = g
        q_prev = q


@njit(cache=True)
def _cell(lnE0, dlnE, mass, klo, khi, E):
    """Cell index k (klo <= k < khi) and fraction t of energy E on the particle's grid."""
    x = (math.log(E / mass) - lnE0) / dlnE
    k = int(math.floor(x))
    if k < klo:
        k = klo
    elif k > khi - 1:
        k = khi - 1
    return k, x - k


@njit(cache=True)
def _range_at(R, Sv, step, dlnE, k, t, s_t):
    """R at cell (k, t), consistent with the stopping: inside a cell g = E/S is log-linear in
    ln E (S log-log interpolated), R = int g dlnE, so R - R_k is proportional to g - g_k:
    R(t) = R_k + (R_(k+1) - R_k) (g(t)/g_k - 1)/(g_(k+1)/g_k - 1), g(t)/g_k = e^(t h) S_k/S(t).
    (Interpolating R itself log-log would make dR/dE disagree with 1/S by up to +-0.4 % inside
    each cell: a ripple in the spectrum with the period of the table.) s_t = S at (k, t);
    step = e^h, h = dlnE.
    """
    rho_m1 = step * Sv[k] / Sv[k + 1] - 1.0
    if abs(rho_m1) < 1e-12:
        return R[k] + t * (R[k + 1] - R[k])
    return R[k] + (R[k + 1] - R[k]) * (math.exp(t * dlnE) * Sv[k] / s_t - 1.0) / rho_m1


@njit(cache=True)
def _t_of_range(R, Sv, step, dlnE, j, r):
    """Inverse of :func:`_range_at` in cell j: (t, S(t), E(t)/E_j) where the range equals r.

    g(t)/g_j = 1 + f (rho - 1) with f = (r - R_j)/(R_(j+1) - R_j) and rho = g_(j+1)/g_j, so
    t = ln(1 + f (rho - 1))/ln(rho); then E(t)/E_j = e^(t h) and S(t) = S_j e^(t h) g_j/g(t).
    """
    f = (r - R[j]) / (R[j + 1] - R[j])
    rho = step * Sv[j] / Sv[j + 1]
    gr = 1.0 + f * (rho - 1.0)
    if abs(rho - 1.0) < 1e-12 or gr <= 0.0:
        t = f
        e_r = math.exp(t * dlnE)
        return t, _loglog_cell(Sv[j], Sv[j + 1], t), e_r
    t = math.log(gr) / math.log(rho)
    e_r = math.exp(t * dlnE)
    return t, Sv[j] * e_r / gr, e_r


@njit(cache=True)
def _range_cell(Sv, R, step, dlnE, klo, khi, r):
    """Cell (j, t) where the range reaches r (binary search), S there and E/E_j;
    j = -1 if r is below the table (the particle is lost). Above the table t > 1 extrapolates."""
    if r <= R[klo]:
        return -1, 0.0, 0.0, 0.0
    lo = klo
    hi = khi
    if r >= R[khi]:
        lo = khi - 1
    else:
        while hi - lo > 1:
            mid = (lo + hi) >> 1
            if R[mid] <= r:
                lo = mid
            else:
                hi = mid
    t, s_t, e_r = _t_of_range(R, Sv, step, dlnE, lo, r)
    return lo, t, s_t, e_r


@njit(cache=True)
def _lin(arr, k, t):
    return arr[k] + t * (arr[k + 1] - arr[k])


@njit(cache=True)
def _cross_cell(Sv, R, Q, lnE0, dlnE, step, mass, klo, khi, k, t, var, path):
    """Path of a particle at table cell (k, t) through one block (see :func:`cross_path`).

    Returns (E_out, var_out, k_out, t_out, S_in, S_out): the cell of the exit energy and the
    stopping at both ends are returned so that callers need not look them up again.
    E_out = 0 if the particle stops (or leaves the table).
    """
    s1 = _loglog_cell(Sv[k], Sv[k + 1], t)
    if path <= 0.0:
        return mass * math.exp(lnE0 + (k + t) * dlnE), var, k, t, s1, s1
    r = _range_at(R, Sv, step, dlnE, k, t, s1) - path
    j, t2, s2, e_r = _range_cell(Sv, R, step, dlnE, klo, khi, r)
    if j < 0:
        return 0.0, 0.0, k, t, s1, 0.0
    dq = _lin(Q, k, t) - _lin(Q, j, t2)
    if dq < 0.0:
        dq = 0.0
    return mass * math.exp(lnE0 + j * dlnE) * e_r, s2 * s2 * (var / (s1 * s1) + dq), j, t2, s1, s2


@njit(cache=True)
def cross_path(Sv, R, Q, lnE0, dlnE, mass, klo, khi, E, var, path):
    """Energy and variance after a straight path (1e15 at/cm2) in one block.

    Returns (E_out, var_out); E_out = 0 if the particle stops (or leaves the table).
    """
    if path <= 0.0:
        return E, var
    if E <= 0.0:
        return 0.0, 0.0
    k, t = _cell(lnE0, dlnE, mass, klo, khi, E)
    E2, v2, _, _, _, _ = _cross_cell(Sv, R, Q, lnE0, dlnE, math.exp(dlnE), mass, klo, khi, k, t, var, path)
    if E2 <= 0.0:
        return 0.0, 0.0
    return E2, v2


@njit(cache=True, inline="always")
def _exit_cell(G, D, V, x_th, g_th, dlnE, k, t):
    """Exit tables at table cell (k, t) (node coordinate x = k + t): energy after the foil G,
    its derivative D = dG/dlnE and the gathered variance V; G = 0 below the loss threshold x_th.

    G is a cubic Hermite interpolant in ln E through the node values and derivatives (error
    ~h^4 per cell, so resampling it at every block boundary does not accumulate: linear
    log-log resampling moved 7Li by a channel over 250 blocks). The cell holding the threshold
    is interpolated linearly from (x_th, g_th) to the node above; V is linear.
    """
    x = k + t
    if x < x_th:
        return 0.0, 0.0, 0.0
    if x_th > k:  # the threshold lies inside this cell
        f = (x - x_th) / (k + 1.0 - x_th)
        g = g_th + f * (G[k + 1] - g_th)
        return g, (G[k + 1] - g_th) / ((k + 1.0 - x_th) * dlnE), V[k + 1]
    t2 = t * t
    t3 = t2 * t
    g = ((2.0 * t3 - 3.0 * t2 + 1.0) * G[k] + (t3 - 2.0 * t2 + t) * dlnE * D[k]
         + (3.0 * t2 - 2.0 * t3) * G[k + 1] + (t3 - t2) * dlnE * D[k + 1])
    d = ((6.0 * t2 - 6.0 * t) * (G[k] - G[k + 1]) / dlnE + (3.0 * t2 - 4.0 * t + 1.0) * D[k]
         + (3.0 * t2 - 2.0 * t) * D[k + 1])
    return g, d, _lin(V, k, t)


@njit(cache=True)
def exit_tables_surface(Sf, Rf, Qf, foil_path, lnE0, dlnE, mass, klo, khi, G, D, V):
    """Exit tables at the sample surface: through the foil (or identity without foil).

    Returns the loss threshold (node coordinate): below it a particle leaves the foil below
    the table (lost); there G = E_klo.
    """
    for k in range(klo, khi + 1):
        E = mass * math.exp(lnE0 + k * dlnE)
        if foil_path <= 0.0:
            G[k] = E
            D[k] = E
            V[k] = 0.0
            continue
        k1 = min(k, khi - 1)  # the last node is the end (t = 1) of the last cell
        t1 = float(k - k1)
        E2, v2, k2, t2, s1, s2 = _cross_cell(Sf, Rf, Qf, lnE0, dlnE, math.exp(dlnE), mass, klo, khi, k1, t1, 0.0,
                                             foil_path)
        if E2 <= 0.0:
            G[k] = 0.0
            D[k] = 0.0
            V[k] = 0.0
        else:
            G[k] = E2
            D[k] = E * s2 / s1  # dG/dlnE = E dG/dE, dG/dE = S(E2)/S(E)
            V[k] = v2
    if foil_path <= 0.0:
        return float(klo)
    j, t, _, _ = _range_cell(Sf, Rf, math.exp(dlnE), dlnE, klo, khi, Rf[klo] + foil_path)
    if j < 0:
        return float(klo)
    return j + t


@njit(cache=True)
def exit_tables_down(G, D, V, x_th, g_th, Sv, R, Q, path, lnE0, dlnE, mass, klo, khi, G2, D2, V2):
    """Exit tables at the bottom of a block from those at its top (recursion in module doc);
    returns the new loss threshold (node coordinate; > khi: everything is lost).

    Works on table nodes: the range after the path, R(E_k) - path, rises with k, so the cell
    of the energy after the path is found by walking forward (amortised O(1) per node).
    D2 = D(E1) (S(E1)/S(E)) (E/E1) with E1 the energy after the path.
    """
    # threshold: the energy at the block bottom that reaches the top at the old threshold
    step = math.exp(dlnE)
    kt = min(int(x_th), khi - 1)
    tt = x_th - kt
    r_th = _range_at(R, Sv, step, dlnE, kt, tt, _loglog_cell(Sv[kt], Sv[kt + 1], tt)) + path
    if r_th >= R[khi]:
        x_new = khi + 1.0
    else:
        jt, t_th, _, _ = _range_cell(Sv, R, step, dlnE, klo, khi, r_th)
        x_new = jt + t_th
    j = klo
    E_j = mass * math.exp(lnE0 + klo * dlnE)  # node energy of the walking cell j
    E_k = E_j / step
    for k in range(klo, khi + 1):
        E_k *= step
        r = R[k] - path
        if k < x_new or r <= R[klo]:
            G2[k] = 0.0
            D2[k] = 0.0
            V2[k] = 0.0
            continue
        while j < khi - 1 and R[j + 1] <= r:
            j += 1
            E_j *= step
        t, s2, e_r = _t_of_range(R, Sv, step, dlnE, j, r)
        dq = Q[k] - _lin(Q, j, t)
        if dq < 0.0:
            dq = 0.0
        g, d, v = _exit_cell(G, D, V, x_th, g_th, dlnE, j, t)
        e_ratio = E_k / (E_j * e_r)  # E_k / E1
        jj = d * e_ratio / E_k  # dG/dE at E1
        G2[k] = g
        D2[k] = d * s2 / Sv[k] * e_ratio
        V2[k] = v + jj * jj * s2 * s2 * dq
    return x_new


# ------------------------------------------------------------------ main kernel

@njit(cache=True)
def _dt_dE(t, E, mass):
    """d(time)/d(energy) (ns/MeV) of the relativistic flight time: -t / (beta^2 gamma^3 m c^2)."""
    mc2 = mass * U_MEV
    g = 1.0 + E / mc2
    b2 = 1.0 - 1.0 / (g * g)
    return -t / (b2 * g * g * g * mc2)


@njit(cache=True)
def simulate_bricks(S, W, lnE0, dlnE, p_mass, p_klo, p_khi,
                    blk_top, blk_fracS, blk_fracW, foil_fracS, foil_fracW, foil_path,
                    efoil_fracS, efoil_fracW, efoil_path,
                    beam_p, Z1, M1, E0,
                    sp_p, sp_kind, sp_Z2, sp_M2, sp_dens, sp_out,
                    eff_E, eff_v, eff_n,
                    cos_in, cos_out, phi, sig_ang_in, sig_ang_out,
                    L_m, relativistic, sig_timing, screening, yield_factor,
                    t_stop, max_dt, sig_frac, max_bricks):
    """Brick list of every outgoing species.

    Parameters (arrays are float64 unless noted)
    ----------
    S, W : (n_p, n_el, n_grid)
        Stopping (eV/1e15) and straggling (MeV^2/1e15) of each particle in each element.
    lnE0, dlnE : float
        Table grid, ln(E/M [MeV/u]).
    p_mass : (n_p,) ; p_klo, p_khi : (n_p,) int64
        Particle masses (u) and their node ranges.
    blk_top : (n_b + 1,)
        Block boundaries from the surface, 1e15 at/cm2.
    blk_fracS, blk_fracW : (n_b, n_el)
        Atomic fractions for stopping (times stopping factors) and for straggling.
    foil_fracS, foil_fracW, foil_path
        T1 foil (before the flight) composition and areal density (1e15 at/cm2).
    efoil_fracS, efoil_fracW, efoil_path
        Foils between the flight and the energy detector.
    beam_p : int
        Particle index of the beam; Z1, M1, E0 its charge, mass (u) and energy (MeV).
    sp_p, sp_kind, sp_Z2 : (n_sp,) int64 ; sp_M2 : (n_sp,)
        Per outgoing species: particle index, kind (0 recoil, +1/-1 scattered beam root),
        target Z and mass.
    sp_dens : (n_sp, n_b)
        Atomic fraction of the target isotope in each block.
    sp_out : (n_sp,) int64
        Index of the species' exit tables (one per distinct outgoing particle).
    eff_E, eff_v : (n_sp, n_pts) ; eff_n : (n_sp,) int64
        Detection efficiency curve against energy after the foil (eff_n = 0: efficiency 1).
    cos_in, cos_out, phi
        Cosines of incidence and exit angles (from the normal) and the recoil/scattering angle.
    sig_ang_in, sig_ang_out : float
        Gaussian sigma (rad) of the incidence and detection angles (geometric spread).
    L_m, relativistic, sig_timing
        Flight length (m), relativistic flag, timing resolution sigma (ns).
    screening : int
        0 none, 1 Andersen, 2 L'Ecuyer.
    yield_factor : float
        Q * Omega[sr] * 1e-27 (mb -> cm2) * 1e15 (areal density unit) / cos(alpha).
    t_stop : float
        Time (ns) beyond which a species no longer needs bricks, once its bricks' Gaussian
        spread (6 sigma, :func:`_sig_time`) no longer reaches back to it either.
    max_dt : float
        Largest allowed brick width in time (ns), whatever the resolution.
    sig_frac : float
        A species' brick may also be as wide as ``sig_frac`` times its own time sigma at the
        brick top (0 disables): a box much narrower than the Gaussian it is convolved with
        gains nothing from being split further (the error of the box shape is of order
        (width/sigma)^2 times the yield's relative change across the brick).
    max_bricks : int
        Largest number of bricks (the output arrays grow up to it as needed).

    Returns
    -------
    n_bricks : int
    ta, tb, Y, sig_t, x_mid, e_det, sig_e : (n_sp, n_bricks)
        Boundary times (ns), yield (counts), time sigma (ns), mid depth (1e15 at/cm2), energy
        at the energy detector (MeV) and its sigma (MeV).
    overflow : bool
        True if max_bricks was reached before the analysed depth ended.
    """
    n_p = S.shape[0]
    n_grid = S.shape[2]
    n_b = blk_fracS.shape[0]
    n_sp = sp_p.shape[0]
    n_out = 0
    for s in range(n_sp):
        if sp_out[s] + 1 > n_out:
            n_out = sp_out[s] + 1
    Sv, Rt, Qt = _zeros3(n_p, n_grid)  # block tables: stopping, range, straggling integral
    G, D, V = _zeros3(n_out, n_grid)  # exit tables at the current block top
    G2, D2, V2 = _zeros3(n_out, n_grid)  # ... and at its bottom
    x_th = np.zeros(n_out)  # loss threshold of each exit table (node coordinate)
    # out-particle of each exit table
    out_p = np.zeros(n_out, dtype=np.int64)
    for s in range(n_sp):
        out_p[sp_out[s]] = sp_p[s]
    # foil tables and surface exit tables
    Sf, Rf, Qf = _zeros3(n_p, n_grid)  # T1 foil
    Se, Re, Qe = _zeros3(n_p, n_grid)  # foils in front of the energy detector
    for o in range(n_out):
        p = out_p[o]
        m = p_mass[p]
        if foil_path > 0.0:
            fill_tables(S[p], W[p], foil_fracS, foil_fracW, m, lnE0, dlnE, p_klo[p], p_khi[p], Sf[p], Rf[p], Qf[p])
        if efoil_path > 0.0:
            fill_tables(S[p], W[p], efoil_fracS, efoil_fracW, m, lnE0, dlnE, p_klo[p], p_khi[p], Se[p], Re[p], Qe[p])
        x_th[o] = exit_tables_surface(Sf[p], Rf[p], Qf[p], foil_path, lnE0, dlnE, m, p_klo[p], p_khi[p],
                                      G[o], D[o], V[o])
    # recoil cross sections: the energy-independent parts once per species
    xs_c = np.zeros(n_sp)
    xs_w = np.zeros(n_sp)
    xs_q = np.zeros(n_sp)
    for s in range(n_sp):
        if sp_kind[s] == 0:
            xs_c[s], xs_w[s], xs_q[s] = recoil_cross_section_coeffs(Z1, M1, sp_Z2[s], sp_M2[s], phi, screening)
    # kinematic factors
    K = np.zeros(n_sp)
    dKdphi = np.zeros(n_sp)
    h = 1e-6
    for s in range(n_sp):
        if sp_kind[s] == 0:
            K[s] = recoil_factor(M1, sp_M2[s], phi)
            dKdphi[s] = (recoil_factor(M1, sp_M2[s], phi + h) - recoil_factor(M1, sp_M2[s], phi - h)) / (2 * h)
        else:
            K[s] = scatter_factor(M1, sp_M2[s], phi, sp_kind[s])
            kp = scatter_factor(M1, sp_M2[s], phi + h, sp_kind[s])
            km = scatter_factor(M1, sp_M2[s], phi - h, sp_kind[s])
            dKdphi[s] = (kp - km) / (2 * h) if (kp > 0 and km > 0) else 0.0
    # outputs
    # bricks[q, s, i]: q = 0 ta, 1 tb, 2 Y, 3 sig_t, 4 x_mid, 5 e_det, 6 sig_e (see Returns);
    # grows by doubling up to max_bricks (a few hundred kB for the reference case, not MBs)
    cap = min(512, max_bricks)
    bricks = np.empty((7, n_sp, cap))
    # state at the current depth
    t_cur = np.zeros(n_sp)
    v_cur = np.zeros(n_sp)
    e_cur = np.zeros(n_sp)
    ve_cur = np.zeros(n_sp)
    sg_cur = np.zeros(n_sp)
    t_new = np.zeros(n_sp)
    v_new = np.zeros(n_sp)
    e_new = np.zeros(n_sp)
    ve_new = np.zeros(n_sp)
    sg_new = np.zeros(n_sp)
    p_emin = np.empty(n_p)  # lowest energy on each particle's tables (MeV)
    for p in range(n_p):
        p_emin[p] = p_mass[p] * math.exp(lnE0 + p_klo[p] * dlnE)
    bp = beam_p
    mb = p_mass[bp]
    Eb_top = E0
    vb_top = 0.0
    nbr = 0
    overflow = False
    done = False
    tan_in = math.sqrt(1.0 - cos_in * cos_in) / cos_in
    tan_out = math.sqrt(1.0 - cos_out * cos_out) / cos_out
    for b in range(n_b):
        if done:
            break
        for p in range(n_p):
            fill_tables(S[p], W[p], blk_fracS[b], blk_fracW[b], p_mass[p], lnE0, dlnE,
                        p_klo[p], p_khi[p], Sv[p], Rt[p], Qt[p])
        thick = blk_top[b + 1] - blk_top[b]
        # state at the block top
        _state(0.0, Eb_top, vb_top, bp, mb, Sv, Rt, Qt, lnE0, dlnE, p_klo, p_khi, p_mass,
               G, D, V, x_th, Se, Re, Qe, efoil_path, p_emin, sp_p, sp_kind, sp_out, sp_M2, sp_Z2, K, dKdphi,
               xs_c, xs_w, xs_q, Z1, M1, E0, cos_in, cos_out, tan_in, tan_out, phi, sig_ang_in, sig_ang_out,
               L_m, relativistic, sig_timing, screening, t_cur, v_cur, e_cur, ve_cur, sg_cur)
        d = 0.0
        dx = thick
        while d < thick:
            if dx > thick - d:
                dx = thick - d
            dn = d + dx
            _state(dn, Eb_top, vb_top, bp, mb, Sv, Rt, Qt, lnE0, dlnE, p_klo, p_khi, p_mass,
                   G, D, V, x_th, Se, Re, Qe, efoil_path, p_emin, sp_p, sp_kind, sp_out, sp_M2, sp_Z2, K, dKdphi,
                   xs_c, xs_w, xs_q, Z1, M1, E0, cos_in, cos_out, tan_in, tan_out, phi, sig_ang_in, sig_ang_out,
                   L_m, relativistic, sig_timing, screening, t_new, v_new, e_new, ve_new, sg_new)
            # largest time step among species still inside the window
            # (a species lost within the step counts as an infinite step until the step is tiny)
            # (relative to the species' allowed width: max_dt or sig_frac x its time sigma)
            worst = 0.0
            for s in range(n_sp):
                sg = _sig_time(t_cur[s], v_cur[s])
                if t_cur[s] > 0.0 and t_cur[s] < t_stop + 6.0 * sg:
                    if t_new[s] > 0.0:
                        # beyond t_stop only the Gaussian tail reaches the window
                        allow = max(max_dt, (sig_frac if t_cur[s] < t_stop else max(sig_frac, 0.5)) * sg)
                        dtt = abs(t_new[s] - t_cur[s]) / allow
                    else:
                        dtt = 1e30
                    if dtt > worst:
                        worst = dtt
            if worst > 1.0 and dx > 1e-7 * (thick + 1.0):
                dx *= max(0.1, 0.8 / worst)
                continue
            if worst > 1e29:
                worst = 0.0
            if nbr >= max_bricks:
                overflow = True
                done = True
                break
            if nbr >= cap:
                cap = min(2 * cap, max_bricks)
                grown = np.empty((7, n_sp, cap))
                grown[:, :, :nbr] = bricks[:, :, :nbr]
                bricks = grown
            # record the brick
            x_a = blk_top[b] + d
            alive = False
            for s in range(n_sp):
                if t_cur[s] > 0.0 and t_new[s] > 0.0:
                    dens = sp_dens[s, b]
                    yl = 0.5 * (sg_cur[s] + sg_new[s]) * dens * dx * yield_factor
                    em = 0.5 * (e_cur[s] + e_new[s])
                    if eff_n[s] > 0:
                        yl *= _interp_clip(eff_E[s], eff_v[s], eff_n[s], em)
                    bricks[0, s, nbr] = t_cur[s]
                    bricks[1, s, nbr] = t_new[s]
                    bricks[2, s, nbr] = yl
                    bricks[3, s, nbr] = _sig_time(0.5 * (t_cur[s] + t_new[s]), 0.5 * (v_cur[s] + v_new[s]))
                    bricks[4, s, nbr] = x_a + 0.5 * dx
                    bricks[5, s, nbr] = em
                    bricks[6, s, nbr] = math.sqrt(0.5 * (ve_cur[s] + ve_new[s]))
                    if t_cur[s] < t_stop + 6.0 * _sig_time(t_cur[s], v_cur[s]):
                        alive = True
                else:  # no brick of this species here
                    bricks[:, s, nbr] = 0.0
            nbr += 1
            for s in range(n_sp):
                t_cur[s] = t_new[s]
                v_cur[s] = v_new[s]
                e_cur[s] = e_new[s]
                ve_cur[s] = ve_new[s]
                sg_cur[s] = sg_new[s]
            d = dn
            if worst > 0.0:
                dx = dx * min(2.0, 0.9 / worst)
            else:
                dx = 2.0 * dx
            if not alive:
                done = True
                break
        if done:
            break
        # beam and exit tables to the next block
        Eb_new, vb_new = cross_path(Sv[bp], Rt[bp], Qt[bp], lnE0, dlnE, mb, p_klo[bp], p_khi[bp],
                                    Eb_top, vb_top, thick / cos_in)
        if Eb_new <= 0.0:
            break
        Eb_top = Eb_new
        vb_top = vb_new
        for o in range(n_out):
            p = out_p[o]
            x_th[o] = exit_tables_down(G[o], D[o], V[o], x_th[o], p_emin[p], Sv[p], Rt[p], Qt[p],
                                       thick / cos_out, lnE0, dlnE, p_mass[p], p_klo[p], p_khi[p],
                                       G2[o], D2[o], V2[o])
            G[o, :] = G2[o]
            D[o, :] = D2[o]
            V[o, :] = V2[o]
    out = bricks[:, :, :nbr].copy()
    return nbr, out[0], out[1], out[2], out[3], out[4], out[5], out[6], overflow


SIG_T_MAX_FRACTION = 0.05


@njit(cache=True)
def _sig_time(t, var_t):
    """Time sigma (ns) of a brick, capped at SIG_T_MAX_FRACTION (5 %) of its flight time t.

    The Gaussian in time is the first-order image of the energy spread, sigma_t = |dt/dE|
    sigma_E, valid while sigma_E << E; 5 % in time is 10 % in energy (t ~ E^-1/2). Near the end
    of their range, particles' first-order spread grows without bound and an uncapped Gaussian
    would put their counts at arbitrary (even unreachable) times; capped, they stay near their
    mean arrival time and the total is unchanged.
    """
    return min(math.sqrt(var_t), SIG_T_MAX_FRACTION * t)


@njit(cache=True)
def _zeros3(n, m):
    """Three zeroed (n, m) tables."""
    return np.zeros((n, m)), np.zeros((n, m)), np.zeros((n, m))


@njit(cache=True)
def _interp_clip(xs, ys, n, x):
    """Linear interpolation on the first n points, clipped to the end values and to [0, 1]."""
    if x <= xs[0]:
        v = ys[0]
    elif x >= xs[n - 1]:
        v = ys[n - 1]
    else:
        i = 0
        while xs[i + 1] < x:
            i += 1
        v = ys[i] + (ys[i + 1] - ys[i]) * (x - xs[i]) / (xs[i + 1] - xs[i])
    return min(1.0, max(0.0, v))


@njit(cache=True)
def _state(d, Eb_top, vb_top, bp, mb, Sv, Rt, Qt, lnE0, dlnE, p_klo, p_khi, p_mass,
           G, D, V, x_th, Se, Re, Qe, efoil_path, p_emin, sp_p, sp_kind, sp_out, sp_M2, sp_Z2, K, dKdphi,
           xs_c, xs_w, xs_q, Z1, M1, E0, cos_in, cos_out, tan_in, tan_out, phi, sig_ang_in, sig_ang_out,
           L_m, relativistic, sig_timing, screening, t_o, v_o, e_o, ve_o, sg_o):
    """Flight time, its variance, detector energy and variance and cross section of every
    species made at offset d below the current block top (0 time = lost)."""
    Eb, vb = cross_path(Sv[bp], Rt[bp], Qt[bp], lnE0, dlnE, mb, p_klo[bp], p_khi[bp],
                        Eb_top, vb_top, d / cos_in)
    n_sp = sp_p.shape[0]
    step = math.exp(dlnE)
    for s in range(n_sp):
        t_o[s] = 0.0
        v_o[s] = 0.0
        e_o[s] = 0.0
        ve_o[s] = 0.0
        sg_o[s] = 0.0
        if Eb <= 0.0 or K[s] <= 0.0:
            continue
        p = sp_p[s]
        m = p_mass[p]
        o = sp_out[s]
        Er = K[s] * Eb
        k, t = _cell(lnE0, dlnE, m, p_klo[p], p_khi[p], Er)
        if k + t <= p_klo[p]:
            continue
        # variance at creation: beam straggling, recoil-angle spread, incidence-angle spread
        var_r = K[s] * K[s] * vb
        dE_ang = Eb * dKdphi[s]
        var_r += dE_ang * dE_ang * (sig_ang_in * sig_ang_in + sig_ang_out * sig_ang_out)
        dEin = K[s] * (E0 - Eb) * tan_in * sig_ang_in
        var_r += dEin * dEin
        E1, v1, k1, t1, s_r, s_1 = _cross_cell(Sv[p], Rt[p], Qt[p], lnE0, dlnE, step, m, p_klo[p], p_khi[p],
                                               k, t, var_r, d / cos_out)
        if E1 <= 0.0:
            continue
        g, dg, v = _exit_cell(G[o], D[o], V[o], x_th[o], p_emin[p], dlnE, k1, t1)
        j = dg / E1  # dG/dE (dg = dG/dlnE)
        if g <= p_emin[p]:
            continue  # stopped on the way out, or below the particle's tables: lost
        var_det = j * j * v1 + v
        # first-order exit-angle spread: energy lost on the way out scales with 1/cos(beta)
        jt = j * s_1 / s_r
        dEout = (jt * Er - g) * tan_out * sig_ang_out
        if dEout > 0.0:
            var_det += dEout * dEout
        t = flight_time_ns(g, m, L_m, relativistic)
        dtde = _dt_dE(t, g, m)
        t_o[s] = t
        v_o[s] = dtde * dtde * var_det + sig_timing * sig_timing
        # energy detector behind the T2 foil
        if efoil_path > 0.0:
            ee, ve = cross_path(Se[p], Re[p], Qe[p], lnE0, dlnE, m, p_klo[p], p_khi[p], g, var_det, efoil_path)
        else:
            ee, ve = g, var_det
        e_o[s] = ee
        ve_o[s] = ve
        if sp_kind[s] == 0:
            sg_o[s] = recoil_cross_section_at(xs_c[s], xs_w[s], xs_q[s], screening, Eb)
        else:
            sg_o[s] = scatter_cross_section(Z1, M1, sp_Z2[s], sp_M2[s], Eb, phi, sp_kind[s], screening)


# ------------------------------------------------------------------ spectrum formation

@njit(cache=True)
def _Phi(z):
    """Normal CDF."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


_HZ_MAX = 8.0  # |z| beyond which H(z) = max(z, 0) to 1e-16
_H_PER_UNIT = 32  # table nodes per unit of z
_HZ = np.linspace(-_HZ_MAX, _HZ_MAX, int(2 * _HZ_MAX * _H_PER_UNIT) + 1)
_PHI_TAB = np.array([_Phi.py_func(z) for z in _HZ])
_H_TAB = _HZ * _PHI_TAB + np.exp(-0.5 * _HZ * _HZ) / math.sqrt(2.0 * math.pi)  # H = z Phi(z) + phi(z)


@njit(cache=True)
def _H_tab(z):
    """H(z) by cubic Hermite interpolation of a table of H and of its derivative Phi (step 1/32).

    Hermite error bound: h^4/384 times the maximum of the fourth derivative of H, which is
    (z^2 - 1) phi(z), at most 0.4: below 1.1e-9 absolute, at a third of the cost of erfc + exp
    (tests/test_slab_numerics.py compares it with the closed form).
    """
    x = (z + _HZ_MAX) * _H_PER_UNIT
    if x <= 0.0:
        return 0.0
    if x >= _H_TAB.shape[0] - 1:
        return z
    i = int(x)
    s = x - i
    s2 = s * s
    s3 = s2 * s
    h = 1.0 / _H_PER_UNIT
    return ((2.0 * s3 - 3.0 * s2 + 1.0) * _H_TAB[i] + (s3 - 2.0 * s2 + s) * h * _PHI_TAB[i]
            + (3.0 * s2 - 2.0 * s3) * _H_TAB[i + 1] + (s3 - s2) * h * _PHI_TAB[i + 1])


@njit(cache=True)
def spread_bricks(ta, tb, Y, sig_t, n_bricks, a, b, n_ch, resolution, out):
    """Add bricks to channel spectra: uniform in time between ta and tb, convolved with a
    Gaussian of sigma sig_t, integrated over each channel [c - 1/2, c + 1/2] with
    t = a * c + b. ``out`` is (n_sp, n_ch) and is added to.

    Box (width w) convolved with a Gaussian and integrated over [e0, e1] equals
    sigma/w [H((e1-lo)/sigma) - H((e1-hi)/sigma) - H((e0-lo)/sigma) + H((e0-hi)/sigma)],
    H(z) = z Phi(z) + phi(z) (closed form of the integral of the normal CDF).
    """
    n_sp = ta.shape[0]
    aa = abs(a)
    for s in range(n_sp):
        for i in range(n_bricks):
            y = Y[s, i]
            if y <= 0.0:
                continue
            c1 = (ta[s, i] - b) / a
            c2 = (tb[s, i] - b) / a
            lo = min(c1, c2)
            hi = max(c1, c2)
            sg = sig_t[s, i] / aa if resolution else 0.0
            w = hi - lo
            if sg < 1e-3 * max(w, 1e-3):
                # bare box: exact overlap with the channels
                k0 = int(math.floor(lo + 0.5))
                k1 = int(math.floor(hi + 0.5))
                if k1 < 0 or k0 > n_ch - 1:
                    continue
                if w <= 0.0:
                    if 0 <= k0 < n_ch:
                        out[s, k0] += y
                    continue
                for k in range(max(k0, 0), min(k1, n_ch - 1) + 1):
                    e0 = max(lo, k - 0.5)
                    e1 = min(hi, k + 0.5)
                    if e1 > e0:
                        out[s, k] += y * (e1 - e0) / w
                continue
            k0 = int(math.floor(lo - 6.0 * sg + 0.5))
            k1 = int(math.floor(hi + 6.0 * sg + 0.5))
            if k1 < 0 or k0 > n_ch - 1:
                continue
            k0 = max(k0, 0)
            k1 = min(k1, n_ch - 1)
            if w < 1e-6 * sg:
                prev = _Phi((k0 - 0.5 - lo) / sg)
                for k in range(k0, k1 + 1):
                    cur = _Phi((k + 0.5 - lo) / sg)
                    out[s, k] += y * (cur - prev)
                    prev = cur
            else:
                f = y * sg / w
                e = k0 - 0.5
                prev = _H_tab((e - lo) / sg) - _H_tab((e - hi) / sg)
                for k in range(k0, k1 + 1):
                    e = k + 0.5
                    cur = _H_tab((e - lo) / sg) - _H_tab((e - hi) / sg)
                    out[s, k] += f * (cur - prev)
                    prev = cur


@njit(cache=True)
def tofe_map(ta, tb, Y, sig_t, e_det, sig_e, sig_edet, n_bricks, a, b, n_ch, e_edges, out):
    """TOF-E coincidence map: bricks spread in time (as :func:`spread_bricks`, one channel
    weight per brick at its mid time) and in detected energy (Gaussian, straggling plus the
    detector's own sigma ``sig_edet``). ``out`` is (n_sp, n_ch, n_e) and is added to."""
    n_sp = ta.shape[0]
    n_e = e_edges.shape[0] - 1
    aa = abs(a)
    tmp = np.zeros(n_ch)
    for s in range(n_sp):
        for i in range(n_bricks):
            y = Y[s, i]
            if y <= 0.0:
                continue
            lo = min((ta[s, i] - b) / a, (tb[s, i] - b) / a)
            hi = max((ta[s, i] - b) / a, (tb[s, i] - b) / a)
            sg = max(sig_t[s, i] / aa, 0.3)
            c = 0.5 * (lo + hi)
            sgc = math.sqrt(sg * sg + (hi - lo) ** 2 / 12.0)
            k0 = max(0, int(math.floor(c - 6 * sgc)))
            k1 = min(n_ch - 1, int(math.ceil(c + 6 * sgc)))
            if k1 < k0:
                continue
            se = math.sqrt(sig_e[s, i] ** 2 + sig_edet * sig_edet)
            em = e_det[s, i]
            for k in range(k0, k1 + 1):
                tmp[k] = _Phi((k + 0.5 - c) / sgc) - _Phi((k - 0.5 - c) / sgc)
            for m in range(n_e):
                if se > 0:
                    we = _Phi((e_edges[m + 1] - em) / se) - _Phi((e_edges[m] - em) / se)
                else:
                    we = 1.0 if (e_edges[m] <= em < e_edges[m + 1]) else 0.0
                if we < 1e-12:
                    continue
                for k in range(k0, k1 + 1):
                    out[s, k, m] += y * we * tmp[k]
