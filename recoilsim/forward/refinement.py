"""Prepared inputs with finer numerics: the yardstick of the brick kernel's tabulation.

:func:`refined` returns :class:`~recoilsim.forward.engine.EngineInputs` of the same physical
model (stopping and straggling log-log between the tables' nodes, the same blocks of uniform
composition) computed more finely: the energy grid cut m times (the kernel's exit tables G, D,
V and the multiple-scattering half widths are then interpolated over cells m times narrower),
every block cut into k sub-blocks of identical composition, and bricks q times narrower. As
m grows the spectra converge to the untabulated model (benchmarks/convergence.py,
benchmarks/README.md "Session 9, kernel"; tests/test_tabulation_convergence.py).

For a compound the kernel interpolates the mixture's stopping log-log between nodes; the
refined grid's new nodes take every element's table log-log instead, a model that differs at
second order in the cell (Bragg's rule and log-log interpolation do not commute).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import RecoilsimError
from .engine import EngineInputs


def loglog_refined(table: np.ndarray, m: int) -> np.ndarray:
    """Rows of a table on energy nodes (last axis) with every cell cut into m, the new nodes
    log-log interpolated between the old ones (linearly where a node is not positive)."""
    n = table.shape[-1]
    x = np.arange((n - 1) * m + 1) / m
    k = np.minimum(x.astype(np.int64), n - 2)
    f = x - k
    lo, hi = table[..., k], table[..., k + 1]
    pos = (lo > 0) & (hi > 0)
    ll = np.exp(np.log(np.where(pos, lo, 1.0)) * (1 - f) + np.log(np.where(pos, hi, 1.0)) * f)
    return np.ascontiguousarray(np.where(pos, ll, lo + f * (hi - lo)))


def refined(inputs: EngineInputs, grid: int = 1, blocks: int = 1, bricks: int = 1) -> EngineInputs:
    """``inputs`` with the energy grid refined ``grid`` times, every block cut into ``blocks``
    sub-blocks of identical composition and bricks ``bricks`` times narrower (``max_dt`` and
    ``sig_frac`` divided by it, the brick budget multiplied). ``blocks`` > 1 is refused for a stack
    with blocks of varying composition."""
    for name, v in (("grid", grid), ("blocks", blocks), ("bricks", bricks)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise RecoilsimError(name, v, "a whole number >= 1")
    p = inputs.particles
    if grid > 1:
        p = p._replace(S=loglog_refined(p.S, grid), W=loglog_refined(p.W, grid), dlnE=p.dlnE / grid,
                       klo=p.klo * grid, khi=p.khi * grid)
    st, sp = inputs.stack, inputs.outgoing
    if blocks > 1:
        if np.any(np.diff(st.prof_start) > 0):
            raise RecoilsimError("blocks", blocks, "1 for a stack with blocks of varying composition (a profile with "
                                 "options.profile_model 'perturbation'; 'blocks' makes its steps blocks)")
        top = st.top
        sub = (top[:-1, None] + (top[1:] - top[:-1])[:, None] * (np.arange(blocks) / blocks)[None, :]).ravel()
        st = st._replace(top=np.append(sub, top[-1]),
                         fracS=np.ascontiguousarray(np.repeat(st.fracS, blocks, axis=0)),
                         fracW=np.ascontiguousarray(np.repeat(st.fracW, blocks, axis=0)),
                         prof_start=np.zeros(len(sub) + 1, dtype=np.int64))
        sp = sp._replace(density=np.ascontiguousarray(np.repeat(sp.density, blocks, axis=1)))
    opt = inputs.options
    opt = opt._replace(max_dt=opt.max_dt / bricks, sig_frac=opt.sig_frac / bricks, max_bricks=opt.max_bricks * bricks)
    return dataclasses.replace(inputs, particles=p, stack=st, outgoing=sp, options=opt)
