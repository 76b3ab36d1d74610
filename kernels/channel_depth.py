"""Depth of origin at every channel time: brick edges interpolated linearly in time (Numba kernel).

A species' bricks are contiguous in depth; inside a brick the depth of origin is linear in the
flight time between the brick's edges. :func:`depth_row` fills a row of tens of thousands of
channels in one pass, walking the channels and the time-sorted edges together: ``numpy.interp``
searches for every channel, and building the rows with ``numpy.repeat`` took several passes and
a few numpy calls per species (benchmarks/README.md, session 6).
"""

import math

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def depth_row(times, t_e, y, row, copy):
    """Fill ``row`` (and ``copy``, which may be ``row`` itself) with the depths ``y`` of the
    edges at times ``t_e`` (both ascending, finite), interpolated linearly at the channel
    ``times`` (ascending); NaN before the first edge and after the last.

    The values are ``numpy.interp(times, t_e, y, left=nan, right=nan)`` bit for bit: a channel
    at t in [t_j, t_(j+1)) gets slope (y_(j+1) - y_j)/(t_(j+1) - t_j) times (t - t_j), plus
    y_j; one at the last edge exactly gets y at that edge. Returns False, the row unfinished,
    where a slope that some channel needs is not finite (numpy.interp's own rules then apply).
    """
    n_ch = times.shape[0]
    m = t_e.shape[0]
    c = 0
    while c < n_ch and times[c] < t_e[0]:
        row[c] = copy[c] = np.nan
        c += 1
    for j in range(m - 1):
        slope = (y[j + 1] - y[j]) / (t_e[j + 1] - t_e[j])  # not used where no channel lies in [t_j, t_(j+1))
        while c < n_ch and times[c] < t_e[j + 1]:
            if not math.isfinite(slope):
                return False
            row[c] = copy[c] = slope * (times[c] - t_e[j]) + y[j]
            c += 1
    while c < n_ch and times[c] <= t_e[m - 1]:
        row[c] = copy[c] = y[m - 1]
        c += 1
    while c < n_ch:
        row[c] = copy[c] = np.nan
        c += 1
    return True
