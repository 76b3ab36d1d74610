"""Blocks of varying composition: a depth profile as a first-order perturbation of one block.

A block whose composition varies with depth x, c(x) = c0 + dc(x), keeps the range and exit
tables of its mean composition c0. Bragg's rule is linear in the composition (Bragg & Kleeman,
Phil. Mag. 10 (1905) 318): S_p(E, x) = S0_p(E) + sum_e S_pe(E) dc_e(x), with S_pe the stopping
of particle p in element e (times its stopping factor). A particle crossing [x1, x2] then loses
the energy the mean composition would over the effective thickness

    tau_p = (x2 - x1) + sum_e g_pe(E) (D_e(x2) - D_e(x1)),   g_pe(E) = S_pe(E) / S0_p(E),

with D_e(x) = int_0^x dc_e dx' (piecewise linear in x, exact for the profile's steps). The
dropped term is second order: g_pe changes along the path with the energy (here evaluated at
the block top's beam energy and at each species' recoil energy made there) and dS/S is small
(a block is at most as deep as the beam loses a set fraction of its energy over, and ends where
neighbouring steps differ steeply, :func:`recoilsim.forward.stack.perturbation_groups`).
The straggling integral and the multiple-scattering walks use the same effective thickness
(first order too). With c0 the block's areal-density-weighted mean, D_e at the block bottom
is 0: the beam's crossing of the whole block and the exit tables below it are those of c0.

Units: 1e15 atoms/cm2 (depths, D_e), MeV; stopping ratios are dimensionless.
"""

import math

from numba import njit

from .jit_options import LEAF


#: the row of the brick kernel's per-species constants that holds each species' offset for its way out
#: (:func:`profile_state` writes it; ``bricks.SPC_TAU``), and the row of its states that holds each species'
#: cumulative density from the block top (``bricks.ROW_CUM``): fixed here so that no row index is an argument
SPC_TAU = 11
ROW_CUM = 12


@njit(**LEAF)
def block_ratios(S, lnE0, dlnE, mass, klo, khi, fracS, b, bp, sp_p, K, act, E_beam, g):
    """The stopping ratios g[e, col] = S_pe(E) / S0_p(E) of block b for every element e: particle p's
    stopping in element e (table rows S[p, e], linear between nodes) over its stopping in the block's
    mean composition fracS[b] (Bragg's rule; module docstring), 0 where S0 is not positive. Column s:
    species s (particle sp_p[s]) at its energy K[s] E_beam as made at the block top (active species
    with K > 0 only, :func:`bricks._active_species`); the last column: the beam (particle bp) at E_beam.
    S, lnE0, dlnE, mass, klo, khi: the fields of :class:`brick_types.Particles` (passed one by one: a
    NamedTuple argument makes Numba type every field). (One function for all: each compiled function
    costs a cold start ~0.1 s.)"""
    n_sp = sp_p.shape[0]
    n_el = S.shape[1]
    for col in range(n_sp + 1):
        p = bp if col == n_sp else sp_p[col]
        E = E_beam if col == n_sp else K[col] * E_beam
        if col < n_sp and not (act[col] and K[col] > 0.0):
            continue
        x = (math.log(E / mass[p]) - lnE0) / dlnE
        k = min(max(int(math.floor(x)), klo[p]), khi[p] - 1)
        t = min(max(x - k, 0.0), 1.0)
        s0 = 0.0
        for e in range(n_el):
            se = S[p, e, k] + t * (S[p, e, k + 1] - S[p, e, k])
            g[e, col] = se
            s0 += fracS[b, e] * se
        for e in range(n_el):
            g[e, col] = g[e, col] / s0 if s0 > 0.0 else 0.0


@njit(**LEAF)
def profile_state(d, prof_x, prof_dS, cum, pa, pz, g, spc, out):
    """Effective thicknesses and cumulative densities at offset d below the top of a block of
    varying composition (its points pa .. pz - 1 of prof_x, prof_dS, cum; module docstring).

    Writes every species s's effective thickness of its way out, d + sum_e g[e, s] D_e(d), into
    spc[SPC_TAU, s] and its cumulative density int_0^d n_s dx into out[ROW_CUM, s]; returns the
    beam's effective thickness d + sum_e g[e, n_sp] D_e(d) (column n_sp of g: the beam's ratios).
    """
    n_sp = spc.shape[1]
    lo = pa
    hi = pz - 1
    while hi - lo > 1:  # bisection: prof_x[lo] <= d < prof_x[hi]
        mid = (lo + hi) // 2
        if prof_x[mid] <= d:
            lo = mid
        else:
            hi = mid
    f = (d - prof_x[lo]) / (prof_x[hi] - prof_x[lo])
    f = min(max(f, 0.0), 1.0)
    tau_b = d
    for s in range(n_sp):
        spc[SPC_TAU, s] = d
        out[ROW_CUM, s] = cum[s, lo] + f * (cum[s, hi] - cum[s, lo])
    for e in range(prof_dS.shape[1]):  # D_e(d) once, added to every column in element order
        D_e = prof_dS[lo, e] + f * (prof_dS[hi, e] - prof_dS[lo, e])
        tau_b += g[e, n_sp] * D_e
        for s in range(n_sp):
            spc[SPC_TAU, s] += g[e, s] * D_e
    return tau_b
