"""Bricks of the slab simulation: the kernel that walks the sample in depth steps (Numba).

Between two depths x_a < x_b inside one block, the yield
Y = Q Omega sigma n (x_b - x_a) / cos(alpha) (slab method; SIMNRA user's guide, "calculation of
spectra"; Mayer, AIP Conf. Proc. 475 (1999) 541) is spread uniformly over the time interval
between the flight times of particles made at x_a and at x_b (:mod:`spreading`), then convolved
with a Gaussian in time whose variance (the brick's ``sig_t``) adds straggling (in and out
paths, foil), first-order geometric spread and the timing resolution. Each brick also carries
its energy at the energy detector and that energy's sigma (for the TOF-E map, :mod:`tofe_map`).

The depth step adapts so that no species' brick is wider in time than ``max_dt`` (or a
fraction ``sig_frac`` of its own time sigma). Energy loss inside a block uses the block range
tables (:mod:`range_tables`); the way out through all blocks above uses the exit tables
(:mod:`exit_tables`); work per depth step is proportional to the number of outgoing species
that can yield: a species whose target isotope is in no block the beam reaches (e.g. the beam
scattered by an element below the depth where the beam stops) makes no counts, and the kernel
skips it (:func:`_active_species`), so it does not set the depth step either.

Brick sigmas: :func:`_state` gathers each species' energy variance at creation (beam
straggling, recoil-angle and incidence-angle spread), on the way out (straggling, exit-angle
spread) and, with ``options.multiple_scattering``, from multiple scattering of the beam and of
the outgoing particle (:mod:`multiple_scattering`: the beam's projected half width and its walk
moments are carried from block to block, the outgoing particle's half width in an exit table
beside G, D, V).

Units: MeV, u, 1e15 atoms/cm2, ns, radians; cross sections mb/sr.
"""

import math

import numpy as np
from numba import njit

from .cross_section import cross_section_at
from .exit_tables import exit_cell, exit_tables_down, exit_tables_surface
from .jit_options import INTERNAL, LEAF
from .kinematics import flight_time_ns, U_MEV
from .multiple_scattering import (HWHM_TO_SIGMA, combined_half_width, ms_block_constants, ms_constants,
                                  ms_energy_variance, ms_exit_tables_down, walk_half_width, walk_half_widths,
                                  walk_moments)
from .brick_types import Bricks
from .profile_blocks import ROW_CUM, SPC_TAU, block_ratios, profile_state
from .range_tables import cross_cell, cross_path, fill_tables, new_tables, table_cell


@njit(**LEAF)
def _dt_dE(t, E, mass):
    """d(time)/d(energy) (ns/MeV) of the relativistic flight time: -t / (beta^2 gamma^3 m c^2)."""
    mc2 = mass * U_MEV
    g = 1.0 + E / mc2
    b2 = 1.0 - 1.0 / (g * g)
    return -t / (b2 * g * g * g * mc2)


@njit(cache=True, error_model="numpy")
def simulate_bricks(particles, stack, beam, species, geometry, detector, options):
    """Brick list of every outgoing species.

    Parameters
    ----------
    particles : brick_types.Particles
        Stopping and straggling tables of the beam and every outgoing particle.
    stack : brick_types.Stack
        The sample's blocks of uniform composition.
    beam : brick_types.Beam
        The incident ion (its index in ``particles``, Z, mass, energy).
    species : brick_types.Species
        Outgoing species: particle, kind, target, density per block, exit table, efficiency.
    geometry : brick_types.Geometry
        Incidence and exit cosines, recoil angle, angular spreads.
    detector : brick_types.Detector
        Foils, flight length, timing sigma, yield factor.
    options : brick_types.Options
        Relativistic flag and screening; ``t_stop`` (time beyond which a species no longer
        needs bricks, once its bricks' Gaussian spread, 6 sigma of :func:`_sig_time`, no longer
        reaches back to it either), ``max_dt`` (largest brick width in time), ``sig_frac`` (a
        species' brick may also be as wide as ``sig_frac`` times its own time sigma at the
        brick top, 0 disables: a box much narrower than the Gaussian it is convolved with gains
        nothing from being split further, the error of the box shape being of order
        (width/sigma)^2 times the yield's relative change across the brick) and ``max_bricks``
        (the output arrays grow up to it as needed).

    Returns
    -------
    brick_types.Bricks
        ``n`` bricks: boundary times ta, tb (ns), yield Y (counts), time sigma sig_t (ns), mid
        depth x_mid (1e15 at/cm2), energy at the energy detector e_det (MeV) and its sigma
        sig_e (MeV), each (n_sp, n); ``overflow`` is True if max_bricks was reached before the
        analysed depth ended.
    """
    S, W, lnE0, dlnE, p_mass, p_klo, p_khi = particles
    blk_top, blk_fracS, blk_fracW, el_Z = stack.top, stack.fracS, stack.fracW, stack.el_Z
    ms_on = options.multiple_scattering
    efoil_path, yield_factor = detector.efoil_path, detector.yield_factor
    sp_p, sp_out, sp_dens = species.particle, species.exit_table, species.density
    eff_E, eff_v, eff_n = species.eff_E, species.eff_v, species.eff_n
    cos_in, cos_out = geometry.cos_in, geometry.cos_out
    t_stop, max_dt, sig_frac, max_bricks = options.t_stop, options.max_dt, options.sig_frac, options.max_bricks
    relativistic, screening = options.relativistic, options.screening
    L_m, sig_timing = detector.flight_length_m, detector.sig_timing
    n_p = S.shape[0]
    n_grid = S.shape[2]
    step = math.exp(dlnE)  # ratio of neighbouring table energies
    n_b = blk_fracS.shape[0]
    n_sp = sp_p.shape[0]
    n_out = 0
    for s in range(n_sp):
        if sp_out[s] + 1 > n_out:
            n_out = sp_out[s] + 1
    # (arrays are copied by explicit loops throughout: a slice assignment makes Numba compile its
    # shape-mismatch error message, string formatting included, ~3 s of a cold start)
    Sv, Rt, Qt = new_tables(n_p, n_grid, lnE0, dlnE)  # block tables: stopping, range, straggling integral
    G, D, V = _zeros3(n_out, n_grid)  # exit tables at the current block top
    G2, D2, V2 = _zeros3(n_out, n_grid)  # ... and at its bottom
    A = np.zeros((n_out, n_grid))  # multiple-scattering half width of the way out, block top
    # multiple-scattering constants in the current block (:func:`multiple_scattering.ms_block_constants`)
    msb = np.empty((3 * n_out + 4, el_Z.shape[0]))
    i_beam = 3 * n_out
    ww = np.zeros((9, n_sp))  # the outgoing particles' walks of a state (:func:`multiple_scattering.walk_half_widths`)
    ww1 = np.zeros((9, 1))  # ... one walk (:func:`multiple_scattering.walk_half_width`)
    Se, Re, Qe = new_tables(n_p, n_grid, lnE0, dlnE)  # foils in front of the energy detector
    # the surface exit tables, the energy-detector foil tables and what the way out needs per block
    out_p, x_th, ms_c, out_emax, p_emin, A2, cell, ww_k = _surface_tables(particles, stack, beam, species, detector,
                                                                          G, D, V, Se, Re, Qe)
    # outputs
    # bricks[q, s, i]: q = 0 ta, 1 tb, 2 Y, 3 sig_t, 4 x_mid, 5 e_det, 6 sig_e (see Returns);
    # grows by doubling up to max_bricks (a few hundred kB for the reference case, not MBs)
    cap = min(512, max_bricks)
    bricks = np.empty((7, n_sp, cap))
    # state at the current depth and at the trial depth: rows t, var_t, e_det, var_e, sigma
    cur = np.zeros((N_STATE_ROWS + 1, n_sp))
    new = np.zeros((N_STATE_ROWS + 1, n_sp))
    bp = beam.particle
    mb = p_mass[bp]
    Eb_top = beam.energy_MeV
    vb_top = 0.0
    E0 = beam.energy_MeV
    wb_top = 0.0  # the beam's multiple-scattering half width (rad) at the block top
    wm1 = 0.0  # ... and its walk moments int L dA, int L^2 dA (:func:`walk_moments`)
    wm2 = 0.0
    # the walk moments' origin (row 0: half width, beam energy, wm1, wm2 at the block top, or in a block of
    # varying composition at the last state, which extends them brick by brick) and at the state of
    # :func:`_variances` (row 1)
    wm = np.zeros((2, 4))
    nbr = np.int64(0)  # bricks so far (not the literal 0: Numba would compile _grown for Literal[int](0) too)
    overflow = False
    done = False
    tan_in = math.sqrt(1.0 - cos_in * cos_in) / cos_in
    tan_out = math.sqrt(1.0 - cos_out * cos_out) / cos_out
    act = _active_species(particles, stack, beam, sp_dens, cos_in, Sv, Rt, Qt)
    p_act = np.zeros(n_p, dtype=np.bool_)  # particles whose tables are needed: the beam, active species'
    p_act[bp] = True
    for s in range(n_sp):
        if act[s]:
            p_act[sp_p[s]] = True
    spc = _species_constants(particles, species, act, p_emin)
    prof_start, prof_x, prof_dS, prof_cum = stack.prof_start, stack.prof_x, stack.prof_dS, species.cum
    g_prof = np.zeros((blk_fracS.shape[1], n_sp + 1))  # stopping ratios in a block of varying composition
    for b in range(n_b):
        if done:
            break
        for s in range(n_sp):  # the block's rows of spc
            spc[SPC_X_TH, s] = x_th[sp_out[s]]
            spc[SPC_DENS, s] = sp_dens[s, b]
            spc[SPC_TAU, s] = 0.0
            cur[ROW_CUM, s] = 0.0
        # a block of varying composition (:mod:`profile_blocks`): its points pa .. pz - 1
        pa = prof_start[b] if prof_start.shape[0] > b + 1 else 0
        pz = prof_start[b + 1] if prof_start.shape[0] > b + 1 else 0
        varying = pz - pa > 1
        if varying:
            block_ratios(S, lnE0, dlnE, p_mass, p_klo, p_khi, blk_fracS, b, bp, sp_p, species.K, act, Eb_top, g_prof)
        for p in range(n_p):
            if p_act[p]:
                fill_tables(S, W, p, blk_fracS, blk_fracW, b, p_mass[p], lnE0, dlnE, p_klo[p], p_khi[p], Sv, Rt, Qt)
        if ms_on:
            ms_block_constants(ms_c, blk_fracW, b, msb)
            if varying:  # the walks cross the mixture's elements in symmetric order
                msb[msb.shape[0] - 1, 1] = 1.0
        thick = blk_top[b + 1] - blk_top[b]
        # state at the block top
        Eb = _state(0.0, Eb_top, vb_top, lnE0, dlnE, bp, mb, p_klo[bp], p_khi[bp], E0, geometry, L_m, relativistic,
                    spc, Sv, Rt, Qt, G, D, V, tan_in, tan_out, cur)
        wm[0, 0], wm[0, 1], wm[0, 2], wm[0, 3] = wb_top, Eb_top, wm1, wm2
        _variances(0.0, Eb_top, Eb, lnE0, dlnE, E0, geometry, sig_timing, efoil_path, screening, ms_on, spc, Se, Re,
                   Qe, tan_in, tan_out, wb_top, wm, A, msb, ww, ww1, cur)
        if varying:  # the next origin: this state
            for q in range(4):
                wm[0, q] = wm[1, q]
        d = 0.0
        dx = thick
        dx_max = thick  # the widest brick in depth
        if varying:
            dx_max = stack.prof_dx[b]
        while d < thick:
            if dx > dx_max:
                dx = dx_max
            if dx > thick - d:
                dx = thick - d
            dn = d + dx
            db = dn  # the beam's (effective) offset, and the species' (spc row SPC_TAU)
            if varying:
                db = profile_state(dn, prof_x, prof_dS, prof_cum, pa, pz, g_prof, spc, new)
            else:
                for s in range(n_sp):
                    spc[SPC_TAU, s] = dn
            Eb = _state(db, Eb_top, vb_top, lnE0, dlnE, bp, mb, p_klo[bp], p_khi[bp], E0, geometry, L_m, relativistic,
                        spc, Sv, Rt, Qt, G, D, V, tan_in, tan_out, new)
            # largest time step among species still inside the window
            # (a species lost within the step counts as an infinite step until the step is tiny)
            # (relative to the species' allowed width: max_dt or sig_frac x its time sigma)
            worst = 0.0
            for s in range(n_sp):
                t_c = cur[0, s]
                sg = _sig_time(t_c, cur[1, s])
                if t_c > 0.0 and t_c < t_stop + 6.0 * sg:
                    if new[0, s] > 0.0:
                        # beyond t_stop only the Gaussian tail reaches the window
                        allow = max(max_dt, (sig_frac if t_c < t_stop else max(sig_frac, 0.5)) * sg)
                        dtt = abs(new[0, s] - t_c) / allow
                    else:
                        dtt = 1e30
                    if dtt > worst:
                        worst = dtt
            if worst > 1.0 and dx > 1e-7 * (thick + 1.0):
                dx *= max(0.1, 0.8 / worst)
                continue
            if worst > 1e29:
                worst = 0.0
            # the step is taken: the variances and cross sections of the new state
            _variances(db, Eb_top, Eb, lnE0, dlnE, E0, geometry, sig_timing, efoil_path, screening, ms_on, spc, Se,
                       Re, Qe, tan_in, tan_out, wb_top, wm, A, msb, ww, ww1, new)
            if nbr >= max_bricks:
                overflow = True
                done = True
                break
            if nbr >= cap:
                cap = min(2 * cap, max_bricks)
                bricks = _grown(bricks, nbr, cap)
            # record the brick
            x_a = blk_top[b] + d
            alive = False
            for s in range(n_sp):
                t_c = cur[0, s]
                t_n = new[0, s]
                if t_c > 0.0 and t_n > 0.0:
                    if varying:  # the density integrated over the brick
                        yl = 0.5 * (cur[4, s] + new[4, s]) * (new[ROW_CUM, s] - cur[ROW_CUM, s]) * yield_factor
                    else:
                        yl = 0.5 * (cur[4, s] + new[4, s]) * sp_dens[s, b] * dx * yield_factor
                    em = 0.5 * (cur[2, s] + new[2, s])
                    if eff_n[s] > 0:
                        yl *= _interp_clip(eff_E, eff_v, s, eff_n[s], em)
                    bricks[0, s, nbr] = t_c
                    bricks[1, s, nbr] = t_n
                    bricks[2, s, nbr] = yl
                    bricks[3, s, nbr] = _sig_time(0.5 * (t_c + t_n), 0.5 * (cur[1, s] + new[1, s]))
                    bricks[4, s, nbr] = x_a + 0.5 * dx
                    bricks[5, s, nbr] = em
                    bricks[6, s, nbr] = math.sqrt(0.5 * (cur[3, s] + new[3, s]))
                    if t_c < t_stop + 6.0 * _sig_time(t_c, cur[1, s]):
                        alive = True
                else:  # no brick of this species here
                    for q in range(7):
                        bricks[q, s, nbr] = 0.0
            nbr += 1
            cur, new = new, cur
            if varying:
                for q in range(4):
                    wm[0, q] = wm[1, q]
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
        Eb_new, vb_new = cross_path(Sv, Rt, Qt, bp, lnE0, dlnE, step, mb, p_klo[bp], p_khi[bp], Eb_top, vb_top,
                                    thick / cos_in)
        if Eb_new <= 0.0:
            break
        if ms_on:
            wb_new = walk_half_width(wb_top, Eb_top, Eb_new, msb, i_beam, thick / cos_in, ww1)[0]
            # (in a block of varying composition from the last state, at the block bottom)
            wm1, wm2 = walk_moments(wm[0, 0], wb_new, E0 - wm[0, 1], E0 - Eb_new, wm[0, 2], wm[0, 3])
            wb_top = wb_new
        Eb_top = Eb_new
        vb_top = vb_new
        for o in range(n_out):
            p = out_p[o]
            if not p_act[p]:
                continue
            x_th[o] = exit_tables_down(G, D, V, o, x_th[o], p_emin[p], Sv, Rt, Qt, p, thick / cos_out, lnE0, dlnE,
                                       p_mass[p], p_klo[p], p_khi[p], G2, D2, V2, cell)
            if ms_on and out_emax[o] > 0.0:
                k_to = int((math.log(out_emax[o] / p_mass[p]) - lnE0) / dlnE) + 2
                ms_exit_tables_down(A, o, cell, thick / cos_out, lnE0, dlnE, p_mass[p], max(p_klo[p], int(x_th[o])),
                                    min(p_khi[p], k_to), msb, 3 * o, A2, ww_k)
                for k in range(p_klo[p], p_khi[p] + 1):  # (copied: nodes it does not fill keep their last values;
                    A[o, k] = A2[o, k]  # nodes outside the particle's klo..khi are never read)
        # the tables at the block bottom become those at the next block's top
        G, G2 = G2, G
        D, D2 = D2, D
        V, V2 = V2, V
    out = bricks[:, :, :nbr].copy()
    return Bricks(nbr, out[0], out[1], out[2], out[3], out[4], out[5], out[6], overflow)


@njit(**INTERNAL)
def _surface_tables(particles, stack, beam, species, detector, G, D, V, Se, Re, Qe):
    """What :func:`simulate_bricks` needs before its first block that its depth steps do not use.

    Fills the exit tables G, D, V of each exit table at the sample surface, behind the T1 foil
    (:func:`exit_tables.exit_tables_surface`), and the energy-detector foil tables Se, Re, Qe
    (:func:`range_tables.fill_tables`). Returns each exit table's particle out_p (int64) and loss
    threshold x_th (node coordinate); the multiple-scattering constants ms_c of each exit
    table's particle (rows 2o, 2o + 1) and of the beam (last two rows) in each element
    (:func:`multiple_scattering.ms_constants`); the highest energy out_emax each exit table's
    particle is made with (MeV; multiple-scattering tables stop there); each particle's lowest
    table energy p_emin (MeV); and the work arrays A2 (n_out, n_grid), cell (4, n_grid) and ww_k
    (10, n_grid) of the way out (:func:`exit_tables.exit_tables_down`,
    :func:`multiple_scattering.ms_exit_tables_down`). A callee, so that this part of the kernel
    (and its numpy allocations) is compiled beside the kernel on a cold start (the arrays the
    depth steps use stay allocated in the kernel: benchmarks/README.md, "Session 8, cold compile").
    """
    S, W, lnE0, dlnE, p_mass, p_klo, p_khi = particles
    el_Z = stack.el_Z
    foil_fracS, foil_fracW, foil_path, efoil_fracS, efoil_fracW, efoil_path, _, _, _ = detector
    sp_p, sp_kind, sp_Z2, sp_out = species.particle, species.kind, species.Z2, species.exit_table
    n_p = S.shape[0]
    n_grid = S.shape[2]
    n_out = G.shape[0]
    x_th = np.zeros(n_out)  # loss threshold of each exit table (node coordinate)
    # out-particle of each exit table and its atomic number
    out_p = np.zeros(n_out, dtype=np.int64)
    out_Z = np.zeros(n_out)
    for s in range(sp_p.shape[0]):
        out_p[sp_out[s]] = sp_p[s]
        out_Z[sp_out[s]] = sp_Z2[s] if sp_kind[s] == 0 else beam.Z
    ms_c = np.empty((2 * n_out + 2, el_Z.shape[0]))
    for o in range(n_out + 1):
        lnc, tc = ms_constants(out_Z[o] if o < n_out else float(beam.Z), el_Z)
        for j in range(el_Z.shape[0]):
            ms_c[2 * o, j] = lnc[j]
            ms_c[2 * o + 1, j] = tc[j]
    Sf, Rf, Qf = new_tables(n_p, n_grid, lnE0, dlnE)  # T1 foil
    foil_S = _rows2(foil_fracS, efoil_fracS)  # row 0: T1 foil, row 1: energy-detector foils
    foil_W = _rows2(foil_fracW, efoil_fracW)
    for o in range(n_out):
        p = out_p[o]
        m = p_mass[p]
        for f in range(2):  # (a loop: a literal row index would make Numba compile fill_tables once per value)
            if (foil_path if f == 0 else efoil_path) > 0.0:
                fill_tables(S, W, p, foil_S, foil_W, f, m, lnE0, dlnE, p_klo[p], p_khi[p], Sf if f == 0 else Se,
                            Rf if f == 0 else Re, Qf if f == 0 else Qe)
        x_th[o] = exit_tables_surface(Sf, Rf, Qf, p, foil_path, lnE0, dlnE, m, p_klo[p], p_khi[p], G, D, V, o)
    out_emax = np.zeros(n_out)
    for s in range(sp_out.shape[0]):
        out_emax[sp_out[s]] = max(out_emax[sp_out[s]], species.K[s] * beam.energy_MeV)
    p_emin = np.empty(n_p)
    for p in range(n_p):
        p_emin[p] = p_mass[p] * math.exp(lnE0 + p_klo[p] * dlnE)
    return out_p, x_th, ms_c, out_emax, p_emin, np.zeros((n_out, n_grid)), np.zeros((4, n_grid)), np.zeros((10, n_grid))


@njit(**INTERNAL)
def _grown(bricks, nbr, cap):
    """A (7, n_sp, cap) brick output holding the first nbr bricks of ``bricks``."""
    grown = np.empty((7, bricks.shape[1], cap))
    for q in range(7):
        for s in range(bricks.shape[1]):
            for i in range(nbr):
                grown[q, s, i] = bricks[q, s, i]
    return grown


SIG_T_MAX_FRACTION = 0.05


@njit(**LEAF)
def _sig_time(t, var_t):
    """Time sigma (ns) of a brick, capped at SIG_T_MAX_FRACTION (5 %) of its flight time t.

    The Gaussian in time is the first-order image of the energy spread, sigma_t = |dt/dE|
    sigma_E, valid while sigma_E << E; 5 % in time is 10 % in energy (t ~ E^-1/2). Near the end
    of their range, particles' first-order spread grows without bound and an uncapped Gaussian
    would put their counts at arbitrary (even unreachable) times; capped, they stay near their
    mean arrival time and the total is unchanged.
    """
    return min(math.sqrt(var_t), SIG_T_MAX_FRACTION * t)


@njit(cache=True, inline="always")
def _zeros3(n, m):
    """Three zeroed (n, m) tables (inlined: called with n_out, whose first definition is the
    literal 0, Numba compiled it a second time for Literal[int](0))."""
    return np.zeros((n, m)), np.zeros((n, m)), np.zeros((n, m))


@njit(**INTERNAL)
def _rows2(a, b):
    """A (2, n) array of two length-n rows (copied by loops, see simulate_bricks)."""
    out = np.empty((2, a.shape[0]))
    for j in range(a.shape[0]):
        out[0, j] = a[j]
        out[1, j] = b[j]
    return out


@njit(**LEAF)
def _interp_clip(xs, ys, s, n, x):
    """Linear interpolation on the first n points of row s, clipped to the end values and to [0, 1]."""
    if x <= xs[s, 0]:
        v = ys[s, 0]
    elif x >= xs[s, n - 1]:
        v = ys[s, n - 1]
    else:
        i = 0
        while xs[s, i + 1] < x:
            i += 1
        v = ys[s, i] + (ys[s, i + 1] - ys[s, i]) * (x - xs[s, i]) / (xs[s, i + 1] - xs[s, i])
    return min(1.0, max(0.0, v))


@njit(**INTERNAL)
def _active_species(particles, stack, beam, sp_dens, cos_in, Sv, Rt, Qt):
    """active[s]: species s has a non-zero density in a block the beam reaches (the kernel stops
    where the beam leaves its tables). A species that is not active yields nothing anywhere
    (e.g. the beam scattered by an element of a layer the beam never reaches): the kernel skips
    it (no state, no brick, no say in the depth step). Sv, Rt, Qt: work tables (the beam's rows
    are written)."""
    S, W, lnE0, dlnE, p_mass, p_klo, p_khi = particles
    top, fracS, fracW = stack.top, stack.fracS, stack.fracW
    n_sp, n_b = sp_dens.shape
    bp = beam.particle
    reach = n_b  # blocks the beam enters
    E = beam.energy_MeV
    v = 0.0
    for b in range(n_b - 1):
        fill_tables(S, W, bp, fracS, fracW, b, p_mass[bp], lnE0, dlnE, p_klo[bp], p_khi[bp], Sv, Rt, Qt)
        E, v = cross_path(Sv, Rt, Qt, bp, lnE0, dlnE, math.exp(dlnE), p_mass[bp], p_klo[bp], p_khi[bp], E, v,
                          (top[b + 1] - top[b]) / cos_in)
        if E <= 0.0:
            reach = b + 1
            break
    active = np.zeros(n_sp, dtype=np.bool_)
    for s in range(n_sp):
        for b in range(reach):
            if sp_dens[s, b] != 0.0:
                active[s] = True
    return active


# rows of the per-species constants of :func:`_state` and :func:`_variances` (one array: every array argument
# of a function costs a Numba reference-count pair per call, and these two run once per depth step)
# SPC_TAU: the species' offset below the block top for its way out (set per state: the depth, or in a block of
# varying composition its effective thickness, :mod:`profile_blocks`)
# (SPC_TAU = 11 is fixed in :mod:`profile_blocks`, which writes it)
SPC_K, SPC_DK, SPC_P, SPC_O, SPC_M, SPC_KLO, SPC_KHI, SPC_EMIN, SPC_ACT, SPC_X_TH, SPC_DENS = range(SPC_TAU)
SPC_XS = SPC_TAU + 1
N_SPC_ROWS = SPC_XS + 3


@njit(**INTERNAL)
def _species_constants(particles, species, act, p_emin):
    """(N_SPC_ROWS, n_sp) per-species constants: K, dK/dphi, particle, exit table, mass, the particle's first
    and last table node and lowest energy, active (1/0, :func:`_active_species`), the loss threshold of its exit
    table and its density in the current block (both set per block), the cross-section coefficients (3 rows).
    Integers are stored as floats (exact)."""
    sp_p = species.particle
    n_sp = sp_p.shape[0]
    spc = np.zeros((N_SPC_ROWS, n_sp))
    for s in range(n_sp):
        p = sp_p[s]
        spc[SPC_K, s] = species.K[s]
        spc[SPC_DK, s] = species.dK_dphi[s]
        spc[SPC_P, s] = p
        spc[SPC_O, s] = species.exit_table[s]
        spc[SPC_M, s] = particles.mass[p]
        spc[SPC_KLO, s] = particles.klo[p]
        spc[SPC_KHI, s] = particles.khi[p]
        spc[SPC_EMIN, s] = p_emin[p]
        spc[SPC_ACT, s] = 1.0 if act[s] else 0.0
        for i in range(3):
            spc[SPC_XS + i, s] = species.xs[s, i]
    return spc


# rows of a state (:func:`_state`, :func:`_variances`): 0 t, 1 var_t, 2 e_det, 3 var_e, 4 sigma;
# kept for _variances: 5 recoil energy Er, 6 its energy E1 at the block top, 7 and 8 E1's table
# cell k1 and fraction t1, 9 jt, 10 g, 11 the energy variance at the detector without multiple scattering;
# ROW_CUM (not reset by _state): the cumulative density from the block top in a block of varying composition
# (ROW_CUM = N_STATE_ROWS is fixed in :mod:`profile_blocks`, which writes it)
N_STATE_ROWS = ROW_CUM


@njit(**LEAF)
def _state(d, Eb_top, vb_top, lnE0, dlnE, bp, mb, klo_b, khi_b, E0, geometry, L_m, relativistic, spc, Sv, Rt, Qt,
           G, D, V, tan_in, tan_out, out):
    """Flight time of every species made at offset d below the top of the current block (0 time = lost;
    d is the beam's path offset, each species' way out is spc[SPC_TAU, s]: both the depth, or in a block of
    varying composition their effective thicknesses, :mod:`profile_blocks`),
    and what :func:`_variances` needs to complete the state (rows of ``out``: N_STATE_ROWS);
    returns the beam energy at d. The depth-step control needs the flight times only, so the
    variances and cross sections are computed for the steps taken (one state in five or six
    is a rejected trial).

    Sv, Rt, Qt are the block's tables (row per particle), G, D, V the exit tables at its top (row
    per exit table); the beam (particle bp, mass mb, table nodes klo_b..khi_b, energy E0 at the
    surface) and flight (L_m, relativistic) as scalars; the per-species constants (kinematic
    factors, particle, exit table and its loss threshold, whether the species is active:
    :func:`_active_species`, the others get no state: time 0, as if lost) in ``spc``
    (:func:`_species_constants`). (Tables are passed whole with row indices, and few arrays: in the
    kernel, which Numba compiles with reference counting, a row view or a tuple of arrays costs a
    count pair per call; this function has none, :data:`jit_options.LEAF`.)

    Energy variance of a species (the brick sigmas): at creation K^2 times the beam's
    straggling, the recoil-angle and incidence-angle spread (first order in the angles); on
    the way out the straggling and the exit-angle spread (here); with
    ``options.multiple_scattering`` the spread from multiple scattering (:func:`_variances`).
    """
    cos_in, cos_out = geometry.cos_in, geometry.cos_out
    sig_ang_in, sig_ang_out = geometry.sig_ang_in, geometry.sig_ang_out
    step = math.exp(dlnE)
    Eb, vb = cross_path(Sv, Rt, Qt, bp, lnE0, dlnE, step, mb, klo_b, khi_b, Eb_top, vb_top, d / cos_in)
    n_sp = spc.shape[1]
    for s in range(n_sp):
        for q in range(N_STATE_ROWS):
            out[q, s] = 0.0
        K = spc[SPC_K, s]
        if Eb <= 0.0 or K <= 0.0 or spc[SPC_ACT, s] == 0.0:
            continue
        p = int(spc[SPC_P, s])
        m = spc[SPC_M, s]
        klo = int(spc[SPC_KLO, s])
        khi = int(spc[SPC_KHI, s])
        Er = K * Eb
        k, t = table_cell(lnE0, dlnE, m, klo, khi, Er)
        if k + t <= klo:
            continue
        # variance at creation: beam straggling, recoil-angle spread, incidence-angle spread
        var_r = K * K * vb
        dE_ang = Eb * spc[SPC_DK, s]
        var_r += dE_ang * dE_ang * (sig_ang_in * sig_ang_in + sig_ang_out * sig_ang_out)
        dEin = K * (E0 - Eb) * tan_in * sig_ang_in
        var_r += dEin * dEin
        E1, v1, k1, t1, s_r, s_1 = cross_cell(Sv, Rt, Qt, p, lnE0, dlnE, step, m, klo, khi, k, t, var_r,
                                              spc[SPC_TAU, s] / cos_out)
        if E1 <= 0.0:
            continue
        out[5, s] = Er  # (rows 9-11 hold S(Er), S(E1) and E1's variance until the second pass)
        out[6, s] = E1
        out[7, s] = k1
        out[8, s] = t1
        out[9, s] = s_r
        out[10, s] = s_1
        out[11, s] = v1
    # second pass, the way out from the block top: the same arithmetic as in one loop, but two short loop bodies
    # let the processor overlap one species' long dependent chain with the next species' (as in
    # exit_tables.exit_tables_down)
    for s in range(n_sp):
        E1 = out[6, s]
        if E1 <= 0.0:
            continue
        Er, k1, t1, s_r, s_1, v1 = out[5, s], int(out[7, s]), out[8, s], out[9, s], out[10, s], out[11, s]
        m = spc[SPC_M, s]
        e_min = spc[SPC_EMIN, s]
        g, dg, v = exit_cell(G, D, V, int(spc[SPC_O, s]), spc[SPC_X_TH, s], e_min, dlnE, int(spc[SPC_KHI, s]), k1, t1)
        j = dg / E1  # dG/dE (dg = dG/dlnE)
        if g <= e_min:  # stopped on the way out, or below the particle's tables: lost
            for q in range(5, N_STATE_ROWS):
                out[q, s] = 0.0
            continue
        var_det = j * j * v1 + v
        # first-order exit-angle spread: energy lost on the way out scales with 1/cos(beta)
        jt = j * s_1 / s_r
        dEout = (jt * Er - g) * tan_out * sig_ang_out
        if dEout > 0.0:
            var_det += dEout * dEout
        out[0, s] = flight_time_ns(g, m, L_m, relativistic)
        out[9, s] = jt
        out[10, s] = g
        out[11, s] = var_det
    return Eb


@njit(**LEAF)
def _variances(d, Eb_top, Eb, lnE0, dlnE, E0, geometry, sig_timing, efoil_path, screening, ms_on, spc, Se, Re, Qe,
               tan_in, tan_out, wb_top, wm, A, msb, ww, ww1, out):
    """Complete a state of :func:`_state` (beam energy Eb at offset d below the top of the current block):
    the flight-time variance, the energy at the energy detector and its variance, and the cross
    section (rows 1-4 of ``out``).

    Se, Re, Qe are the energy-detector foil tables (path efoil_path); with ``ms_on`` the
    spread from multiple scattering is added (:func:`multiple_scattering.ms_energy_variance`):
    the beam's half width wb_top at the block top, its walk moments at a state above (wm[0]: half width, beam
    energy, the moments wm1, wm2; the block top, or in a block of varying composition the last state) extended to
    here (written into wm[1] with the beam's half width and energy here, the next origin in such a block), the
    half-width exit
    tables A and the block's constants msb of :func:`multiple_scattering.walk_half_width` (beam in
    rows i_beam = msb.shape[0] - 4 .. - 2; ww, ww1: work rows of :func:`multiple_scattering.walk_half_widths` and
    :func:`multiple_scattering.walk_half_width`). No cross section
    where the species' density in the block is 0 (the per-species constants, cross-section
    coefficients and density in the block included, come with ``spc``, :func:`_species_constants`).
    """
    cos_in, cos_out = geometry.cos_in, geometry.cos_out
    n_sp = spc.shape[1]
    step = math.exp(dlnE)
    i_beam = msb.shape[0] - 4
    wb = 0.0  # the beam's projected half width here (rad), its local stable index
    nu_b = 2.0
    cov_in = 0.0  # ... and the moments of its walk (:func:`multiple_scattering.ms_energy_variance`)
    var_int_in = 0.0
    m1, m2 = wm[0, 2], wm[0, 3]
    if ms_on and Eb > 0.0:
        wb, nu_b = walk_half_width(wb_top, Eb_top, Eb, msb, i_beam, d / cos_in, ww1)
        m1, m2 = walk_moments(wm[0, 0], wb, E0 - wm[0, 1], E0 - Eb, m1, m2)
        L = E0 - Eb
        A_b = wb * wb * HWHM_TO_SIGMA * HWHM_TO_SIGMA
        cov_in = max(L * A_b - m1, 0.0)
        var_int_in = max(L * L * A_b - 2.0 * L * m1 + m2, 0.0)
    if ms_on:  # the outgoing particles' walks, from the exit tables at the block top down to d
        for s in range(n_sp):
            ww[0, s] = -1.0
            if out[0, s] > 0.0:
                o = int(spc[SPC_O, s])
                k1, t1 = int(out[7, s]), out[8, s]
                ww[0, s] = A[o, k1] + t1 * (A[o, k1 + 1] - A[o, k1])
                ww[1, s] = 1.0  # (the stable index is wanted)
                ww[2, s] = out[6, s]
                ww[3, s] = out[5, s]
                ww[4, s] = 3 * o
        walk_half_widths(ww, n_sp, msb, d / cos_out)
    for s in range(n_sp):
        t = out[0, s]
        if t <= 0.0:
            continue
        Er, jt, g, var_det = out[5, s], out[9, s], out[10, s], out[11, s]
        if ms_on:
            wr, nu_r = ww[0, s], ww[1, s]
            wa = combined_half_width(wb, nu_b, wr, nu_r)
            h2 = HWHM_TO_SIGMA * HWHM_TO_SIGMA
            var_det += ms_energy_variance(wa * wa * h2, -Eb * spc[SPC_DK, s], jt, spc[SPC_K, s] * tan_in, cov_in,
                                          var_int_in, wr * wr * h2, max(jt * Er - g, 0.0) * tan_out)
        dtde = _dt_dE(t, g, spc[SPC_M, s])
        out[1, s] = dtde * dtde * var_det + sig_timing * sig_timing
        out[3, s] = var_det
    # the energy detector behind the T2 foil, then the cross sections: loops of their own, so that the processor
    # overlaps one species' dependent chain with the next species' (as in :func:`_state`)
    for s in range(n_sp):
        if out[0, s] <= 0.0:
            continue
        g = out[10, s]
        out[2, s] = g
        if efoil_path > 0.0:
            out[2, s], out[3, s] = cross_path(Se, Re, Qe, int(spc[SPC_P, s]), lnE0, dlnE, step, spc[SPC_M, s],
                                              int(spc[SPC_KLO, s]), int(spc[SPC_KHI, s]), g, out[3, s], efoil_path)
    for s in range(n_sp):
        if out[0, s] <= 0.0 or spc[SPC_DENS, s] == 0.0:
            continue  # no yield in this block: the cross section is not needed
        out[4, s] = cross_section_at(spc[SPC_XS, s], spc[SPC_XS + 1, s], spc[SPC_XS + 2, s], screening, Eb)
    wm[1, 0], wm[1, 1], wm[1, 2], wm[1, 3] = wb, Eb, m1, m2
