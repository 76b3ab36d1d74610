"""Depth of origin at every channel time: brick edges interpolated linearly in time (Numba kernel).

A species' bricks are contiguous in depth; inside a brick the depth of origin is linear in the
flight time between the brick's edges. :func:`depth_rows` fills the rows of every species in one
call, walking the channels and each species' brick edges together: ``numpy.interp`` searches for
every channel, and a kernel call per species and depth scale, with the edges gathered and sorted
in numpy, cost ~7 us of Python per row (benchmarks/README.md, sessions 6 and 7).
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
            t0 = ta[i, j]  # the edges from brick j's top down: t0 (depth y0) to t1 (y1)
            y0 = y[j]
            while c < n_ch and t_up[c] < t0:
                row[c] = np.nan
                c += 1
            in_order = True
            while True:
                k = j + 1  # the next edge: the next brick's top, else brick j's bottom
                while k < n and not ta[i, k] > 0.0:
                    k += 1
                t1 = ta[i, k] if k < n else tb[i, j]
                y1 = y[k] if k < n else y[j + 1]
                if t1 < t0:
                    in_order = False
                    break
                slope = (y1 - y0) / (t1 - t0)  # not used where no channel lies in [t0, t1)
                while c < n_ch and t_up[c] < t1:
                    t = t_up[c]
                    if t == t0:
                        v = y0
                    else:  # numpy.interp's arithmetic, and its second try where that gives NaN
                        v = slope * (t - t0) + y0
                        if math.isnan(v):
                            v = slope * (t - t1) + y1
                            if math.isnan(v) and y0 == y1:
                                v = y0
                    row[c] = v
                    c += 1
                if k >= n:
                    break
                t0, y0, j = t1, y1, k
            if not in_order:
                continue
            while c < n_ch and t_up[c] <= t1:
                row[c] = y1
                c += 1
        for p in range(c, n_ch):
            row[p] = np.nan
        done[i] = True
