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


def sample_blocks(exp: Experiment, elements: list[str]):
    """Split the sample into blocks of uniform composition.

    Profiles are discretised into steps of at most ``options.profile_step_nm`` (nm, or the same
    number in 1e15 at/cm2 in a layer without density) over the range of their depth grid, plus
    one step beyond; the composition of each block is taken at its middle.

    Returns
    -------
    tops : (n_b + 1,) block boundaries, 1e15 at/cm2
    fracS, fracW : (n_b, n_el) atomic fractions times stopping factors, and atomic fractions
    layer_of : (n_b,) layer index of each block
    """
    step_nm = exp.options.profile_step_nm
    tops = []
    fracS = []
    fracW = []
    layer_of = []
    x0 = 0.0
    for li, layer in enumerate(exp.sample.layers):
        T = layer.areal_density_1e15
        if layer.profiles:
            conv = layer.nm_to_1e15 if layer.density_g_cm3 is not None else 1.0
            step = step_nm * conv
            lo, hi = T, 0.0
            for p in layer.profiles:
                d = p.depth * (conv if p.depth_unit == "nm" else 1.0)
                lo = min(lo, float(d[0]))
                hi = max(hi, float(d[-1]))
            hi = min(T, hi + step)
            lo = max(0.0, min(lo, hi))
            pts = [0.0, lo]
            n = max(1, int(math.ceil((hi - lo) / step - 1e-9)))
            pts.extend(np.linspace(lo, hi, n + 1)[1:])
            pts.append(T)
            pts = np.unique(np.clip(np.asarray(pts), 0.0, T))
        else:
            pts = np.array([0.0, T])
        mids = 0.5 * (pts[:-1] + pts[1:])
        fr = layer.fractions_at(mids, elements)
        sf = np.array([layer.stopping_factors.get(e, 1.0) for e in elements])
        for k in range(len(mids)):
            tops.append(x0 + pts[k])
            fracS.append(fr[k] * sf)
            fracW.append(fr[k])
            layer_of.append(li)
        x0 += T
    tops.append(x0)
    return np.asarray(tops), np.asarray(fracS), np.asarray(fracW), np.asarray(layer_of)


def to_columns(frac: np.ndarray, layer_of: np.ndarray, col_of: np.ndarray, n_cols: int) -> np.ndarray:
    """Spread per-element fractions (n_b, n_el) over composition columns: block b's fraction of
    element j goes to column ``col_of[layer_of[b], j]`` (the column of that element with the
    block's layer's stopping source); (n_b, n_cols)."""
    out = np.zeros((frac.shape[0], n_cols))
    for b in range(frac.shape[0]):
        out[b, col_of[layer_of[b]]] = frac[b]
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


def cut_blocks(tops: np.ndarray, fracS: np.ndarray, fracW: np.ndarray, layer_of: np.ndarray, depth: float):
    """The blocks above ``depth`` (1e15 at/cm2), the last one ending there; unchanged when the
    stack is not deeper."""
    if tops[-1] <= depth:
        return tops, fracS, fracW, layer_of
    n = max(1, int(np.searchsorted(tops, depth, side="left")))
    tops = np.append(tops[:n], depth)
    return tops, fracS[:n], fracW[:n], layer_of[:n]
