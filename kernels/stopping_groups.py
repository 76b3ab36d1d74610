"""Stopping groups: neighbouring blocks that share one set of transport tables (Numba).

A depth profile on a fine grid cuts a layer into many thin blocks (the reference's Li profile:
31 blocks of 1 nm) whose compositions differ little from one block to the next. The brick kernel
builds range tables, exit tables and multiple-scattering exit tables per block; with stopping
groups it builds them once per *group* of neighbouring blocks, from the group's mean composition
(areal-density weighted), while each block keeps its own composition for the yield (its bricks
end at its boundaries and take its own densities). Bragg's rule makes the stopping linear in the
composition, so the energy lost across a whole group is that of its blocks to first order in the
composition differences inside the group (Bragg & Kleeman, Phil. Mag. 10 (1905) 318; the mean
of a linear function is the function of the mean); inside the group the energy at a depth differs
from the block-by-block one by at most the group's composition spread times the stopping's
sensitivity to it, integrated over the path (``recoilsim.forward.stack.stopping_groups`` bounds
the spread).

``group[b]`` is the first block of block b's group; an array of another length than the number
of blocks (a stack built without groups, or with its blocks replaced) means one group per block.

Both functions keep Python wrappers (tests call them); the kernel calls each once per run.

Units: 1e15 atoms/cm2 (block boundaries); compositions as in ``brick_types.Stack``.
"""

import numpy as np
from numba import njit



@njit(cache=True)
def valid_groups(group, n_b):
    """``group`` when it has one entry per block, each a block at or above its own whose group
    runs without gaps; else one group per block (0, 1, ..., n_b - 1)."""
    ok = group.shape[0] == n_b
    if ok:
        for b in range(n_b):
            g = group[b]
            if g < 0 or g > b or (b > 0 and g != b and g != group[b - 1]):
                ok = False
                break
    if ok:
        return group
    own = np.empty(n_b, dtype=np.int64)
    for b in range(n_b):
        own[b] = b
    return own


@njit(cache=True)
def group_compositions(top, fracS, fracW, group):
    """(n_b, n_el) compositions for the transport tables: each block's row is the areal-density
    weighted mean of its group's rows (fracS and fracW alike); a block alone in its group keeps
    its own row unchanged (copied, bit for bit)."""
    n_b, n_el = fracS.shape
    outS = np.empty((n_b, n_el))
    outW = np.empty((n_b, n_el))
    b = 0
    while b < n_b:
        e = b + 1  # the group is blocks b..e-1
        while e < n_b and group[e] == b:
            e += 1
        w = top[e] - top[b]
        if e == b + 1 or not w > 0.0:
            for i in range(b, e):
                for j in range(n_el):
                    outS[i, j] = fracS[i, j]
                    outW[i, j] = fracW[i, j]
        else:
            for j in range(n_el):
                sS = 0.0
                sW = 0.0
                for i in range(b, e):
                    sS += (top[i + 1] - top[i]) * fracS[i, j]
                    sW += (top[i + 1] - top[i]) * fracW[i, j]
                for i in range(b, e):
                    outS[i, j] = sS / w
                    outW[i, j] = sW / w
        b = e
    return outS, outW
