"""The sample and the detector foils as the brick kernel sees them: blocks of uniform composition.

Layers are split where a depth profile changes (:func:`sample_blocks`); foils are merged into one
effective foil (:func:`merge_foils`); the stack is cut below the deepest point the beam can
reach (:func:`beam_depth_bound`, :func:`cut_blocks`).

Units: 1e15 atoms/cm2, MeV, stopping in eV/(1e15 atoms/cm2).
"""

from __future__ import annotations

import math

import numpy as np

from ..model.experiment import Experiment

EV = 1e-6  # MeV per eV


def merge_foils(foils, elements: list[str]) -> tuple[np.ndarray, float]:
    """One effective foil: summed areal density, areal-density-weighted composition."""
    frac = np.zeros(len(elements))
    total = 0.0
    for f in foils:
        for e, x in f.fractions.items():
            frac[elements.index(e)] += x * f.areal_density_1e15
        total += f.areal_density_1e15
    if total > 0:
        frac /= total
    return frac, total


def sample_blocks(exp: Experiment, elements: list[str], substeps: int = 1):
    """Split the sample into blocks of uniform composition.

    Profiles are discretised into steps of at most ``options.profile_step_nm`` (nm, or the same
    number in 1e15 at/cm2 in a layer without density; cut into ``substeps``) over the range of
    their depth grid, plus one step beyond; the composition of each block is taken at its middle.

    Returns
    -------
    tops : (n_b + 1,) block boundaries, 1e15 at/cm2
    fracS, fracW : (n_b, n_el) atomic fractions times stopping factors, and atomic fractions
    layer_of : (n_b,) layer index of each block
    in_profile : (n_b,) bool, the block is a step inside a profile's depth range
    """
    step_nm = exp.options.profile_step_nm
    tops = []
    fracS = []
    fracW = []
    layer_of = []
    in_profile = []
    x0 = 0.0
    for li, layer in enumerate(exp.sample.layers):
        T = layer.areal_density_1e15
        if layer.profiles:
            conv = layer.nm_to_1e15 if layer.density_g_cm3 is not None else 1.0
            step = step_nm * conv / substeps
            lo, hi = T, 0.0
            for p in layer.profiles:
                d = p.depth * (conv if p.depth_unit == "nm" else 1.0)
                lo = min(lo, float(d[0]))
                hi = max(hi, float(d[-1]))
            hi = min(T, hi + step * substeps)
            lo = max(0.0, min(lo, hi))
            pts = [0.0, lo]
            n = max(1, int(math.ceil((hi - lo) / step - 1e-9)))
            pts.extend(np.linspace(lo, hi, n + 1)[1:])
            pts.append(T)
            pts = np.unique(np.clip(np.asarray(pts), 0.0, T))
        else:
            pts = np.array([0.0, T])
            lo = hi = 0.0
        mids = 0.5 * (pts[:-1] + pts[1:])
        fr = layer.fractions_at(mids, elements)
        sf = np.array([layer.stopping_factors.get(e, 1.0) for e in elements])
        tops.append(x0 + pts[:-1])
        fracS.append(fr * sf)
        fracW.append(fr)
        layer_of.append(np.full(len(mids), li))
        in_profile.append((pts[:-1] >= lo) & (pts[1:] <= hi) & (hi > lo))
        x0 += T
    tops.append(np.array([x0]))
    return (np.concatenate(tops), np.concatenate(fracS), np.concatenate(fracW), np.concatenate(layer_of),
            np.concatenate(in_profile))


#: A block of varying composition (:func:`perturbation_groups`) is at most as deep as the beam loses this
#: fraction of its incident energy over (at incidence, in the layer's composition without its profiles): the
#: stopping ratios of :func:`recoilsim.kernels.profile_blocks.block_ratios` are taken at the block top's energies
PERTURBATION_MAX_LOSS = 0.08
#: ... and ends between two neighbouring steps whose atomic fractions differ by more than this (a steep
#: feature: its place is the profile's, so it does not slide as the values move; smooth profiles stay below)
PERTURBATION_MAX_STEP_JUMP = 0.025
#: ... and is one of the fewest near-equal groups of its piece (between steep steps) in which the piece's range of
#: each atomic fraction (max - min), shared out evenly, stays below this: the first-order treatment drops a term
#: quadratic in the departure from the block's mean (a 40 nm Cu/LiPON interdiffusion, Cu 0.9 -> 0, as one block:
#: 9.7e-3 of peak from the refined block model; in groups of range 0.1: 1.4e-3, like 1 nm blocks; 0.03 was no
#: closer anywhere and cut the reference's profile, range 0.05, in two: benchmarks/README.md, "range rule")
PERTURBATION_MAX_RANGE = 0.1


def loss_bound_thickness(S_beam: np.ndarray, frac_nominal: np.ndarray, lnE0: float, dlnE: float, mass_u: float,
                         energy_MeV: float, cos_in: float, loss: float | None = None) -> np.ndarray:
    """Per layer, the depth (1e15 at/cm2, along the normal) over which the beam, at its incident energy in the
    layer's composition without profiles ``frac_nominal`` (n_layers, n_cols), loses the fraction ``loss`` of
    that energy: loss E0 cos_in / S(E0) (S from the table node nearest E0, eV/1e15 -> MeV); ``loss`` None:
    :data:`PERTURBATION_MAX_LOSS`."""
    loss = PERTURBATION_MAX_LOSS if loss is None else loss
    k = int(round((math.log(energy_MeV / mass_u) - lnE0) / dlnE))
    k = min(max(k, 0), S_beam.shape[1] - 1)
    s = (frac_nominal @ S_beam[:, k]) * EV
    return np.where(s > 0, loss * energy_MeV * cos_in / np.where(s > 0, s, 1.0), np.inf)


def perturbation_groups(tops: np.ndarray, fracW: np.ndarray, layer_of: np.ndarray, in_profile: np.ndarray,
                        max_thick: np.ndarray, jump: float | None = None,
                        max_range: float | None = None) -> np.ndarray:
    """Group consecutive profile steps of one layer into blocks for the perturbation model.

    A run of profile steps of one layer is cut between neighbouring steps whose atomic fractions ``fracW``
    differ by more than ``jump`` (None: :data:`PERTURBATION_MAX_STEP_JUMP`; the steps are ``profile_step_nm``
    / 4, 0.25 nm by default), and each piece into the fewest near-equal groups of steps no deeper than
    ``max_thick[layer]`` (1e15 at/cm2, :func:`loss_bound_thickness`) and at least (range of any atomic fraction
    over the piece) / ``max_range`` of them (None: :data:`PERTURBATION_MAX_RANGE`); a block outside a
    profile is a group of its own. No boundary slides as a fitted value moves (a grouping by the departure
    from a block's mean did, moving the spectra by up to 1.3e-4 of peak each time, benchmarks/README.md,
    "Session 11, follow-up"); boundaries change only where a neighbouring steps' difference crosses ``jump``
    or a piece's range crosses a multiple of ``max_range`` (then all of that piece's groups move).
    Returns the (n_groups + 1,) indices of each group's first step (and the end).
    """
    jump = PERTURBATION_MAX_STEP_JUMP if jump is None else jump
    max_range = PERTURBATION_MAX_RANGE if max_range is None else max_range
    # (plain Python lists and floats for the scalar work: a prepare per fit model, ~20 blocks)
    inp, lay, top = in_profile.tolist(), layer_of.tolist(), tops.tolist()
    n = len(lay)
    starts = [0]
    i = 0
    while i < n:
        if not inp[i]:
            starts.append(i + 1)
            i += 1
            continue
        run = i + 1
        while run < n and inp[run] and lay[run] == lay[i]:
            run += 1
        steep = (i + 1 + np.flatnonzero(np.abs(np.diff(fracW[i:run], axis=0)).max(axis=1, initial=0.0) > jump)).tolist() \
            if run - i > 1 else []
        thick_max = float(max_thick[lay[i]])
        for a, z in zip([i] + steep, steep + [run]):
            spread = float((fracW[a:z].max(axis=0) - fracW[a:z].min(axis=0)).max()) if z - a > 1 else 0.0
            m = max(1, int(math.ceil((top[z] - top[a]) / thick_max - 1e-9)), int(math.ceil(spread / max_range - 1e-9)))
            qs = [z] if m == 1 else np.unique(a + np.round(np.arange(1, m + 1) * (z - a) / m).astype(np.int64)).tolist()
            for q in qs:
                if q > starts[-1]:
                    starts.append(q)
        i = run
    return np.asarray(starts, dtype=np.int64)


def perturbation_blocks(starts: np.ndarray, tops: np.ndarray, fracS: np.ndarray, fracW: np.ndarray,
                        density: np.ndarray, brick_steps: float):
    """The blocks of :func:`perturbation_groups` and what the kernel needs inside them.

    Each group of steps becomes one block with the areal-density-weighted mean composition
    (a group of one step keeps its own arrays unchanged). Inside a group of several steps
    (piecewise-constant compositions), for the effective thickness of
    :func:`recoilsim.kernels.profile_blocks.profile_state`: the step boundaries as offsets from
    the block top ``x``, the cumulative composition difference from the block's mean
    ``dS[i, e] = int_0^x_i (fracS_e(x) - fracS0_e) dx`` and each species' cumulative density
    ``cum[s, i] = int_0^x_i n_s(x) dx`` (exact for the steps; 1e15 at/cm2 units).

    Parameters
    ----------
    starts : (n_groups + 1,) of :func:`perturbation_groups`
    tops : (n_steps + 1,) step boundaries, 1e15 at/cm2
    fracS, fracW : (n_steps, n_cols) compositions of the steps
    density : (n_sp, n_steps) each species' target density in every step
    brick_steps : the widest brick inside a group, in its widest steps

    Returns
    -------
    tops, fracS, fracW, density of the blocks; prof_start (n_groups + 1,) int64, the first of
    each block's points in x, dS and cum (no points: a block of uniform composition); x
    (n_pts,), dS (n_pts, n_cols), cum (n_sp, n_pts); dx (n_groups,) the widest brick in each
    block (its thickness where uniform)
    """
    ng = len(starts) - 1
    thick = np.diff(tops)
    b_top = tops[starts]
    b_S = np.empty((ng, fracS.shape[1]))
    b_W = np.empty((ng, fracW.shape[1]))
    b_dens = np.empty((density.shape[0], ng))
    prof_start = np.zeros(ng + 1, dtype=np.int64)
    b_dx = tops[starts[1:]] - tops[starts[:-1]]
    xs, dSs, cums = [], [], []
    for g in range(ng):
        i, j = starts[g], starts[g + 1]
        if j - i == 1:
            b_S[g], b_W[g], b_dens[:, g] = fracS[i], fracW[i], density[:, i]
            prof_start[g + 1] = prof_start[g]
            continue
        w = thick[i:j]
        T = w.sum()
        b_dx[g] = min(T, brick_steps * w.max())
        b_S[g] = (w @ fracS[i:j]) / T
        b_W[g] = (w @ fracW[i:j]) / T
        cum = np.concatenate([np.zeros((density.shape[0], 1)), np.cumsum(density[:, i:j] * w, axis=1)], axis=1)
        b_dens[:, g] = cum[:, -1] / T
        xs.append(tops[i:j + 1] - tops[i])
        dSs.append(np.concatenate([np.zeros((1, fracS.shape[1])), np.cumsum((fracS[i:j] - b_S[g]) * w[:, None],
                                                                            axis=0)]))
        cums.append(cum)
        prof_start[g + 1] = prof_start[g] + j - i + 1
    n_cols = fracS.shape[1]
    x = np.concatenate(xs) if xs else np.zeros(0)
    dS = np.ascontiguousarray(np.concatenate(dSs)) if dSs else np.zeros((0, n_cols))
    cum = np.ascontiguousarray(np.concatenate(cums, axis=1)) if cums else np.zeros((density.shape[0], 0))
    return b_top, b_S, b_W, b_dens, prof_start, x, dS, cum, b_dx


def to_columns(frac: np.ndarray, layer_of: np.ndarray, col_of: np.ndarray, n_cols: int) -> np.ndarray:
    """Spread per-element fractions (n_b, n_el) over composition columns: block b's fraction of
    element j goes to column ``col_of[layer_of[b], j]`` (the column of that element with the
    block's layer's stopping source); (n_b, n_cols)."""
    out = np.zeros((frac.shape[0], n_cols))
    out[np.arange(frac.shape[0])[:, None], col_of[layer_of]] = frac
    return out


def beam_depth_bound(S_beam: np.ndarray, fracS: np.ndarray, lnE0: float, dlnE: float, mass_u: float,
                     energy_MeV: float, cos_in: float) -> float:
    """Upper bound of the depth (1e15 at/cm2, along the normal) the beam reaches in the stack.

    Whatever the order of the blocks, the path to rest is at most the range in a medium whose
    stopping is, at each energy, the lowest of all blocks: R = int_0^E0 dE / min_b S_b(E). Below
    the first table node E_0 the range is that of velocity-proportional stopping, 2 E_0/S(E_0)
    (Lindhard; the brick kernel's range tables use the same rule); above it E/S is integrated
    over ln E by the trapezoid rule. No recoil comes from deeper than cos(alpha) R.

    Parameters
    ----------
    S_beam : (n_el, n_grid) the beam's stopping in each element, eV/1e15
    fracS : (n_b, n_el) block compositions (times stopping factors)
    """
    k_top = int(math.ceil((math.log(energy_MeV / mass_u) - lnE0) / dlnE))
    k_top = min(max(k_top, 1), S_beam.shape[1] - 1)
    s_min = (fracS @ S_beam[:, :k_top + 1]).min(axis=0) * EV
    E = mass_u * np.exp(lnE0 + dlnE * np.arange(k_top + 1))
    g = E / s_min
    return cos_in * (2.0 * g[0] + dlnE * float(np.sum(0.5 * (g[1:] + g[:-1]))))


def cut_blocks(tops: np.ndarray, fracS: np.ndarray, fracW: np.ndarray, layer_of: np.ndarray,
               in_profile: np.ndarray, depth: float):
    """The blocks above ``depth`` (1e15 at/cm2), the last one ending there; unchanged when the
    stack is not deeper."""
    if tops[-1] <= depth:
        return tops, fracS, fracW, layer_of, in_profile
    n = max(1, int(np.searchsorted(tops, depth, side="left")))
    tops = np.append(tops[:n], depth)
    return tops, fracS[:n], fracW[:n], layer_of[:n], in_profile[:n]
