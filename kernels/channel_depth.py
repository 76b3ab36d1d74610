"""Depth of origin at every channel time: brick edges interpolated linearly in time (Numba kernel).

A species' bricks are contiguous in depth; inside a brick the depth of origin is linear in the
flight time between the brick's edges. :func:`depth_rows` fills the rows of every species in one
call, walking each species' brick edges in order and finding each brick's channels by bisection
(then computed in a vectorised loop): ``numpy.interp`` searches for every channel, and a kernel
call per species and depth scale, with the edges gathered and sorted in numpy, cost ~7 us of
Python per row (benchmarks/README.md, sessions 6, 7 and 10).
"""

import math

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def depth_rows(t_up, ta, tb, n, y, rows, done):
    """Fill ``rows[i]`` (n_sp, n_channels) with the depth of origin of species i at every channel;
    ``done[i]`` (bool) says which rows are filled.

    The edges of species i are the tops (``ta[i, j]``, depth ``y[j]``) of its bricks with
    ``ta[i, j] > 0`` (j < n) and the bottom of the last (``tb``, depth ``y[j + 1]``), in depth
    order. Where they are in time order too (every case met so far), the row gets
    ``numpy.interp(times, t_e, y_e, left=nan, right=nan)`` bit for bit, with the arithmetic of
    numpy's ``arr_interp`` (numpy/_core/src/multiarray/compiled_base.c): a channel at t in
    [t_j, t_(j+1)) gets y_j where t = t_j, else slope (y_(j+1) - y_j)/(t_(j+1) - t_j) times
    (t - t_j), plus y_j; where that is NaN, slope times (t - t_(j+1)) plus y_(j+1), and where that
    is NaN too and y_j = y_(j+1), y_j; one at the last edge exactly gets y there; NaN before the
    first edge and after the last. A species none of whose edges has a depth gets NaN (in any
    edge order). Otherwise (no bricks, edges out of time order) ``done[i]`` is False and the row
    is unfinished: the caller sorts the edges and calls numpy.interp. ``t_up`` are the channel
    times in ascending order, and the rows are written in that order.
    """
    n_ch = t_up.shape[0]
    for i in range(ta.shape[0]):
        row = rows[i]
        done[i] = False
        j = 0  # the first brick
        while j < n and not ta[i, j] > 0.0:
            j += 1
        if j == n:
            continue
        depth = False  # whether any edge has a depth
        last = j
        for k in range(j, n):
            if ta[i, k] > 0.0:
                depth = depth or not math.isnan(y[k])
                last = k
        c = 0  # channels done
        if depth or not math.isnan(y[last + 1]):
            # the edges from brick j's top down, from (t0, y0) to (t1, y1); the first step, from
            # t0 = -inf with NaN depths, gives the channels before the first edge NaN
            t0, y0 = -np.inf, np.nan
            t1, y1 = ta[i, j], np.nan
            k = j  # t1 is brick k's top (k < n), else brick j's bottom
            first = True
            in_order = True
            while True:
                # c_end: the first channel from c not below t1 (for ascending times, where a walk
                # from c ends), by doubling steps, then bisection
                lo, hi, step = c, min(c + 1, n_ch), 1
                while hi > lo and t_up[hi - 1] < t1:
                    lo = hi
                    step *= 2
                    hi = min(lo + step, n_ch)
                while lo < hi:
                    mid = (lo + hi) // 2
                    if t_up[mid] < t1:
                        lo = mid + 1
                    else:
                        hi = mid
                slope = (y1 - y0) / (t1 - t0)
                ts = t_up[c:lo]  # the channels in [t0, t1), indexed from 0 (no wraparound: vectorised)
                out = row[c:lo]
                for p in range(ts.shape[0]):
                    t = ts[p]  # numpy.interp's arithmetic, and its second try where that gives NaN
                    v = slope * (t - t0) + y0
                    w = slope * (t - t1) + y1
                    w = y0 if math.isnan(w) and y0 == y1 else w
                    v = w if math.isnan(v) else v
                    out[p] = y0 if t == t0 else v
                c = lo
                if k >= n:
                    break
                if first:
                    t0, y0, first = t1, y[j], False
                else:
                    t0, y0, j = t1, y1, k
                k = j + 1  # the next edge: the next brick's top, else brick j's bottom
                while k < n and not ta[i, k] > 0.0:
                    k += 1
                t1 = ta[i, k] if k < n else tb[i, j]
                y1 = y[k] if k < n else y[j + 1]
                if t1 < t0:
                    in_order = False
                    break
            if not in_order:
                continue
            while c < n_ch and t_up[c] <= t1:
                row[c] = y1
                c += 1
        tail = row[c:]  # (indexed from 0: vectorised)
        for p in range(tail.shape[0]):
            tail[p] = np.nan
        done[i] = True
