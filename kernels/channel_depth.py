"""Depth of origin at every channel time: brick edges interpolated linearly in time (Numba kernel).

A species' bricks are contiguous in depth; inside a brick the depth of origin is linear in the
flight time between the brick's edges. :func:`depth_rows` fills the rows of every species and
every depth scale in one call, walking the channels and each species' brick edges together once
for all scales (a brick's channel range is found once, then each scale's values are written):
``numpy.interp`` searches for every channel, and a kernel call per species and depth scale, with
the edges gathered and sorted in numpy, cost ~7 us of Python per row (benchmarks/README.md,
sessions 6, 7 and 10).
"""

import math

import numpy as np
from numba import njit

from .jit_options import INTERNAL


@njit(cache=True, error_model="numpy")
def depth_rows(t_up, ta, tb, n, y, rows, done):
    """Fill ``rows[s, i]`` (n_scales, n_sp, n_channels) with the depth of origin of species i at
    every channel on depth scale s (``y[s]``: the n + 1 brick edges' depths); ``done[s, i]``
    (bool) says which rows are filled.

    The edges of species i are the tops (``ta[i, j]``, depth ``y[s, j]``) of its bricks with
    ``ta[i, j] > 0`` (j < n) and the bottom of the last (``tb``, depth ``y[s, j + 1]``), in depth
    order. Where they are in time order too (every case met so far), the row gets
    ``numpy.interp(times, t_e, y_e, left=nan, right=nan)`` bit for bit, with the arithmetic of
    numpy's ``arr_interp`` (numpy/_core/src/multiarray/compiled_base.c): a channel at t in
    [t_j, t_(j+1)) gets y_j where t = t_j, else slope (y_(j+1) - y_j)/(t_(j+1) - t_j) times
    (t - t_j), plus y_j; where that is NaN, slope times (t - t_(j+1)) plus y_(j+1), and where that
    is NaN too and y_j = y_(j+1), y_j; one at the last edge exactly gets y there; NaN before the
    first edge and after the last. Between two NaN depths that arithmetic gives y_(j+1)'s NaN,
    written at once. A species none of whose edges has a depth on a scale gets NaN there (in any
    edge order). Otherwise (no bricks, edges out of time order) ``done[s, i]`` is False and the
    row is unfinished: the caller sorts the edges and calls numpy.interp. ``t_up`` are the
    channel times in ascending order, and the rows are written in that order.
    """
    n_ch = t_up.shape[0]
    n_sc = y.shape[0]
    walk = np.empty(n_sc, dtype=np.bool_)  # the scales whose values are computed on the walk
    for i in range(ta.shape[0]):
        for s in range(n_sc):
            done[s, i] = False
        j = 0  # the first brick
        while j < n and not ta[i, j] > 0.0:
            j += 1
        if j == n:
            continue
        last = j
        for k in range(j, n):
            if ta[i, k] > 0.0:
                last = k
        any_walk = False
        for s in range(n_sc):  # whether any edge has a depth on scale s
            depth = not math.isnan(y[s, last + 1])
            k = j
            while not depth and k <= last:
                depth = ta[i, k] > 0.0 and not math.isnan(y[s, k])
                k += 1
            walk[s] = depth
            any_walk = any_walk or depth
            if not depth:
                rows[s, i, :] = np.nan
                done[s, i] = True
        if not any_walk:
            continue
        t0 = ta[i, j]  # the edges from brick j's top down: t0 (depth y[s, j0]) to t1 (y[s, j1])
        j0 = j
        c = _first_not_below(t_up, 0, t0)  # channels done
        for s in range(n_sc):
            if walk[s]:
                rows[s, i, :c] = np.nan
        in_order = True
        while True:
            k = j + 1  # the next edge: the next brick's top, else brick j's bottom
            while k < n and not ta[i, k] > 0.0:
                k += 1
            t1 = ta[i, k] if k < n else tb[i, j]
            j1 = k if k < n else j + 1
            if t1 < t0:
                in_order = False
                break
            c_end = _first_not_below(t_up, c, t1)  # the channels in [t0, t1)
            if c_end > c:
                for s in range(n_sc):
                    if walk[s]:
                        _segment(t_up, c, c_end, t0, t1, y[s, j0], y[s, j1], rows[s, i])
            c = c_end
            if k >= n:
                break
            t0, j0, j = t1, j1, k
        if not in_order:
            continue
        c_end = c
        while c_end < n_ch and t_up[c_end] <= t1:
            c_end += 1
        for s in range(n_sc):
            if walk[s]:
                row = rows[s, i]
                row[c:c_end] = y[s, j1]
                row[c_end:] = np.nan
                done[s, i] = True


@njit(**INTERNAL)
def _first_not_below(t_up, c, t):
    """The first index p >= c with not t_up[p] < t (len(t_up) if none), for ascending ``t_up``:
    the end of a linear walk from c, found by doubling steps, then bisection."""
    n = t_up.shape[0]
    lo = c  # t_up[c .. lo - 1] < t
    step = 1
    hi = min(lo + step, n)
    while hi > lo and t_up[hi - 1] < t:
        lo = hi
        step *= 2
        hi = min(lo + step, n)
    while lo < hi:  # the end is in [lo, hi]
        mid = (lo + hi) // 2
        if t_up[mid] < t:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(**INTERNAL)
def _segment(t_up, c, c_end, t0, t1, y0, y1, row):
    """numpy.interp's values on the channels c .. c_end - 1 (times in [t0, t1)) between the edges
    (t0, y0) and (t1, y1): see :func:`depth_rows`. Both tries are computed for every channel and
    one is selected (no branch: the loop is vectorised)."""
    while c < c_end and t_up[c] == t0:
        row[c] = y0
        c += 1
    if math.isnan(y0) and math.isnan(y1):  # the formula's NaN: y1's
        row[c:c_end] = y1
        return
    slope = (y1 - y0) / (t1 - t0)
    ts = t_up[c:c_end]  # (indices from 0: no wraparound of negative ones, plain vector loads)
    out = row[c:c_end]
    for p in range(ts.shape[0]):
        t = ts[p]
        v = slope * (t - t0) + y0
        w = slope * (t - t1) + y1  # numpy.interp's second try, where v is NaN
        w = y0 if math.isnan(w) and y0 == y1 else w
        out[p] = w if math.isnan(v) else v
