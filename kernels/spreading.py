"""Spectrum formation: bricks spread into time channels (Numba kernels).

Each brick is a box uniform in time between its two flight times, convolved with a Gaussian
of sigma ``sig_t`` (the brick's time spread, :mod:`bricks`) and integrated over each channel.
Closed form: a box of width w convolved with a Gaussian and integrated over [e0, e1] equals
sigma/w [H((e1-lo)/sigma) - H((e1-hi)/sigma) - H((e0-lo)/sigma) + H((e0-hi)/sigma)], with
H(z) = z Phi(z) + phi(z) the integral of the normal CDF Phi (Abramowitz & Stegun 26.2;
the integral follows from d/dz [z Phi(z) + phi(z)] = Phi(z)). H is evaluated from a table
(:func:`box_gauss_h`).

That closed form costs one evaluation per channel within +-6 sigma of every brick: deep
bricks spread over hundreds of channels, and at 15,300 channels of 0.1 ns it took 0.2 s.
:func:`spread_bricks` keeps it for narrow bricks only; bricks wider than a few channels are
sampled on a pyramid of coarser grids (a few dozen samples each, whatever their width) and
the grids are refined to the channels once per species (see its docstring).

This module holds only the spreading algorithm: it takes brick arrays and adds to a spectrum
array, so it can be replaced without touching the brick kernel.
"""

import math

import numpy as np
from numba import njit

from .jit_options import INTERNAL


@njit(cache=True)
def normal_cdf(z):
    """Normal CDF."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


_HZ_MAX = 8.0  # |z| beyond which H(z) = max(z, 0) to 1e-16
_H_PER_UNIT = 32  # table nodes per unit of z
_HZ = np.linspace(-_HZ_MAX, _HZ_MAX, int(2 * _HZ_MAX * _H_PER_UNIT) + 1)
_PHI_TAB = 0.5 * np.array([math.erfc(-z / math.sqrt(2.0)) for z in _HZ])  # normal_cdf at the nodes
_H_TAB = _HZ * _PHI_TAB + np.exp(-0.5 * _HZ * _HZ) / math.sqrt(2.0 * math.pi)  # H = z Phi(z) + phi(z)


@njit(cache=True)
def box_gauss_h(z):
    """H(z) by cubic Hermite interpolation of a table of H and of its derivative Phi (step 1/32).

    Hermite error bound: h^4/384 times the maximum of the fourth derivative of H, which is
    (z^2 - 1) phi(z), at most 0.4: below 1.1e-9 absolute, at a third of the cost of erfc + exp
    (tests/test_kernel_numerics.py compares it with the closed form).
    """
    x = (z + _HZ_MAX) * _H_PER_UNIT
    if x <= 0.0:
        return 0.0
    if x >= _H_TAB.shape[0] - 1:
        return z
    i = int(x)
    s = x - i
    s2 = s * s
    s3 = s2 * s
    h = 1.0 / _H_PER_UNIT
    return ((2.0 * s3 - 3.0 * s2 + 1.0) * _H_TAB[i] + (s3 - 2.0 * s2 + s) * h * _PHI_TAB[i]
            + (3.0 * s2 - 2.0 * s3) * _H_TAB[i + 1] + (s3 - s2) * h * _PHI_TAB[i + 1])


# Gaussian pyramid (see spread_bricks): a brick whose total time spread tau (channels) is at
# least GAUSS_MIN_CH and whose box is at most BOX_MAX_TAU x tau wide is spread as its Edgeworth
# series (a Gaussian with the box's variance and fourth cumulant) sampled on a grid of step
# 2^q channels with tau / 2^q in [LEVEL_MIN_TAU, 2 LEVEL_MIN_TAU) (q = 0 from GAUSS_MIN_CH).
GAUSS_MIN_CH = 2.5
LEVEL_MIN_TAU = 4.0
BOX_MAX_TAU = 0.7
REACH = 6.0  # Gaussians are sampled to +-REACH tau (relative density there 1.5e-8)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@njit(**INTERNAL)
def _box_exact(y, lo, hi, sg, n_ch, row):
    """Add one brick to ``row`` in closed form: a box [lo, hi] (channel units) convolved with a
    Gaussian of sigma sg (channels), integrated over every channel within +-6 sigma.
    A bare box (sg ~ 0) is added as its exact overlap with the channels."""
    w = hi - lo
    if sg < 1e-3 * max(w, 1e-3):
        k0 = int(math.floor(lo + 0.5))
        k1 = int(math.floor(hi + 0.5))
        if k1 < 0 or k0 > n_ch - 1:
            return
        if w <= 0.0:
            if 0 <= k0 < n_ch:
                row[k0] += y
            return
        for k in range(max(k0, 0), min(k1, n_ch - 1) + 1):
            e0 = max(lo, k - 0.5)
            e1 = min(hi, k + 0.5)
            if e1 > e0:
                row[k] += y * (e1 - e0) / w
        return
    k0 = int(math.floor(lo - 6.0 * sg + 0.5))
    k1 = int(math.floor(hi + 6.0 * sg + 0.5))
    if k1 < 0 or k0 > n_ch - 1:
        return
    k0 = max(k0, 0)
    k1 = min(k1, n_ch - 1)
    if w < 1e-6 * sg:
        prev = normal_cdf((k0 - 0.5 - lo) / sg)
        for k in range(k0, k1 + 1):
            cur = normal_cdf((k + 0.5 - lo) / sg)
            row[k] += y * (cur - prev)
            prev = cur
    else:
        f = y * sg / w
        e = k0 - 0.5
        prev = box_gauss_h((e - lo) / sg) - box_gauss_h((e - hi) / sg)
        for k in range(k0, k1 + 1):
            e = k + 0.5
            cur = box_gauss_h((e - lo) / sg) - box_gauss_h((e - hi) / sg)
            row[k] += f * (cur - prev)
            prev = cur


@njit(**INTERNAL)
def _deposit(buf, start, first, last, H, y, m, tau, c4):
    """Add the density y g(x) (1 + c4 He4(z)) of a Gaussian (mean m, sigma tau; z = (x - m)/tau,
    channel units) at the grid nodes x = j H, j in [first, last] within +-REACH tau of m;
    node j is buf[start + j - first]. Returns the touched node range (lo > hi: none).

    exp(-z^2/2) by the ratio recurrence g(z + d)/g(z) = exp(-z d - d^2/2): three exponentials
    per brick, two products per node.
    """
    jlo = max(first, int(math.ceil((m - REACH * tau) / H)))
    jhi = min(last, int(math.floor((m + REACH * tau) / H)))
    if jlo > jhi:
        return jlo, jhi
    j0 = min(max(int(math.floor(m / H + 0.5)), jlo), jhi)
    d = H / tau
    z0 = (j0 * H - m) / tau
    a0 = y * _INV_SQRT_2PI / tau
    g0 = a0 * math.exp(-0.5 * z0 * z0)
    qd = math.exp(-d * d)
    z = z0
    g = g0
    r = math.exp(-z0 * d - 0.5 * d * d)
    for j in range(j0, jhi + 1):
        z2 = z * z
        buf[start + j - first] += g * (1.0 + c4 * (z2 * (z2 - 6.0) + 3.0))
        g *= r
        r *= qd
        z += d
    z = z0 - d
    g = g0 * math.exp(z0 * d - 0.5 * d * d)
    r = math.exp(z0 * d - 1.5 * d * d)
    for j in range(j0 - 1, jlo - 1, -1):
        z2 = z * z
        buf[start + j - first] += g * (1.0 + c4 * (z2 * (z2 - 6.0) + 3.0))
        g *= r
        r *= qd
        z -= d
    return jlo, jhi


def spread_bricks(ta, tb, Y, sig_t, n_bricks, a, b, n_ch, resolution, out):
    """Add bricks to channel spectra: uniform in time between ta and tb, convolved with a
    Gaussian of sigma sig_t, integrated over each channel [c - 1/2, c + 1/2] with
    t = a * c + b. ``out`` is (n_sp, n_ch) and is added to.

    Narrow bricks (total spread tau = sqrt(sigma^2 + w^2/12) below GAUSS_MIN_CH channels, or a
    box wider than BOX_MAX_TAU tau) are added in closed form (:func:`_box_exact`). The others
    are smooth on the scale of a channel: each is sampled, as the Edgeworth series of a box
    (width w) convolved with a Gaussian -- a Gaussian of variance tau^2 times
    (1 + kappa4/(24 tau^4) He4(z)), kappa4 = -w^4/120 (Kendall & Stuart, The Advanced Theory of
    Statistics I, 6.17; the box's cumulants kappa_2r = B_2r w^2r/(2r)) -- on a grid of step
    H = 2^q channels with tau/H in [4, 8) (q = 0: tau in [2.5, 8)), within +-6 tau. Each grid is
    refined to the next finer one by 6-point Lagrange interpolation at the midpoints, and the
    channel grid's samples are integrated over each channel by the 5-point rule exact for
    quartics (level 1's refinement and that rule in one stencil, :func:`_to_channels`). Cost: per brick, at most ~100 samples whatever the channel width; per species, a
    few operations per channel and level. Error (tests/test_spreading.py): the next Edgeworth term
    (w <= 0.7 tau: < 1e-5 of the brick's peak), the interpolation (< 2e-5 at tau = 4 H) and the
    channel rule (2e-5 at tau = 2.5): within 1e-4 of the peak of the closed form.

    A Python function: the grid levels and the work buffers are set up in numpy, and only the
    loops are compiled (:func:`spread_levels`, or :func:`spread_boxes` without resolution), so
    that a first run compiles ~0.5 s less (no array allocation, no unused branch).
    """
    if not resolution:
        spread_boxes(ta, tb, Y, n_bricks, a, b, n_ch, out)
        return
    aa = abs(a)
    live = Y[:, :n_bricks] > 0.0
    if not live.any():
        return
    tau2 = (sig_t[:, :n_bricks] / aa) ** 2 + ((tb[:, :n_bricks] - ta[:, :n_bricks]) / aa) ** 2 / 12.0
    first, last, start = _levels(math.sqrt(float(tau2[live].max())), n_ch)
    n_lev = first.size
    spread_levels(ta, tb, Y, sig_t, n_bricks, a, b, n_ch, out, first, last, start, np.zeros(start[n_lev]),
                  np.empty(n_lev, dtype=np.int64), np.empty(n_lev, dtype=np.int64))


@njit(cache=True)
def spread_boxes(ta, tb, Y, n_bricks, a, b, n_ch, out):
    """Add the bricks to ``out`` as bare boxes (no Gaussian): :func:`spread_bricks` without
    resolution."""
    for s in range(ta.shape[0]):
        for i in range(n_bricks):
            y = Y[s, i]
            if y > 0.0:
                c1 = (ta[s, i] - b) / a
                c2 = (tb[s, i] - b) / a
                _box_exact(y, min(c1, c2), max(c1, c2), 0.0, n_ch, out[s])


@njit(cache=True)
def spread_levels(ta, tb, Y, sig_t, n_bricks, a, b, n_ch, out, first, last, start, buf, lo_t, hi_t):
    """The loops of :func:`spread_bricks` with resolution, on the grid levels ``first``,
    ``last``, ``start`` of :func:`_levels` and zeroed work arrays: ``buf`` (start[-1] nodes),
    ``lo_t`` and ``hi_t`` (one per level)."""
    n_sp = ta.shape[0]
    aa = abs(a)
    n_lev = first.shape[0]
    for s in range(n_sp):
        row = out[s]
        for q in range(n_lev):
            lo_t[q] = last[q] + 1
            hi_t[q] = first[q] - 1
        for i in range(n_bricks):
            y = Y[s, i]
            if y <= 0.0:
                continue
            c1 = (ta[s, i] - b) / a
            c2 = (tb[s, i] - b) / a
            lo = min(c1, c2)
            hi = max(c1, c2)
            w = hi - lo
            sg = sig_t[s, i] / aa
            tau = math.sqrt(sg * sg + w * w / 12.0)
            if tau < GAUSS_MIN_CH or w > BOX_MAX_TAU * tau:
                _box_exact(y, lo, hi, sg, n_ch, row)
                continue
            q = 0
            while tau >= 2.0 * LEVEL_MIN_TAU * (1 << q):
                q += 1
            r2 = (w * w) / (tau * tau)
            c4 = -r2 * r2 / 2880.0  # kappa4/(24 tau^4)
            j0, j1 = _deposit(buf, start[q], first[q], last[q], float(1 << q), y, 0.5 * (lo + hi), tau, c4)
            if j0 <= j1:
                lo_t[q] = min(lo_t[q], j0)
                hi_t[q] = max(hi_t[q], j1)
        # refine from the coarsest level down to level 1, then integrate levels 0 and 1 over the channels
        for q in range(n_lev - 1, 1, -1):
            if lo_t[q] <= hi_t[q]:
                j0, j1 = _refine(buf, start[q] - first[q], start[q - 1] - first[q - 1], lo_t[q], hi_t[q],
                                 first[q - 1], last[q - 1])
                lo_t[q - 1] = min(lo_t[q - 1], 2 * j0)
                hi_t[q - 1] = max(hi_t[q - 1], 2 * j1 + 1)
        if lo_t[0] <= hi_t[0] or lo_t[1] <= hi_t[1]:
            _to_channels(buf, start[0] - first[0], lo_t[0], hi_t[0], start[1] - first[1], lo_t[1], hi_t[1], row)


def _levels(tau_max, n_ch):
    """Grid levels q = 0 (the channels) .. n_lev - 1 (step 2^q channels) for spreads up to
    tau_max: node index ranges [first[q], last[q]] (node j at channel coordinate j 2^q) that
    cover what the finer level's interpolation (and, for q = 0 and 1, the channel stage) reads, and
    each level's offset ``start[q]`` in one buffer (int64 arrays; start has n_lev + 1 entries)."""
    n_lev = 2  # level 1 always: :func:`_to_channels` reads it
    while tau_max >= 2.0 * LEVEL_MIN_TAU * (1 << (n_lev - 1)):
        n_lev += 1
    first = [-2]
    last = [n_ch + 1 + (n_ch & 1)]  # odd: every level holds whole (even, odd) node pairs
    for q in range(1, n_lev):
        lo = (first[q - 1] >> 1) - 3  # the finer level's interpolation reads 3 nodes beyond
        hi = ((last[q - 1] - 1) >> 1) + 3
        first.append(lo - (lo & 1))
        last.append(hi + 1 - (hi & 1))
    start = [0]
    for q in range(n_lev):
        start.append(start[q] + last[q] - first[q] + 1)
    return np.array(first, dtype=np.int64), np.array(last, dtype=np.int64), np.array(start, dtype=np.int64)


@njit(**INTERNAL)
def _refine(buf, cs, fs, c0, c1, f_first, f_last):
    """Add the coarse nodes c0..c1 (buf[cs + j]) to the finer level (buf[fs + i]): fine node 2j
    is coarse node j, fine node 2j + 1 the 6-point Lagrange midpoint of coarse nodes j - 2 ..
    j + 3 (weights 3, -25, 150, 150, -25, 3 over 256); the coarse nodes are zeroed. Returns the
    range of j whose fine nodes were written."""
    j0 = max(c0 - 3, f_first >> 1)
    j1 = min(c1 + 2, (f_last - 1) >> 1)
    for j in range(j0, j1 + 1):
        p = cs + j
        f = fs + 2 * j
        buf[f] += buf[p]
        buf[f + 1] += (0.01171875 * (buf[p - 2] + buf[p + 3]) - 0.09765625 * (buf[p - 1] + buf[p + 2])
                       + 0.5859375 * (buf[p] + buf[p + 1]))
    for j in range(c0, c1 + 1):
        buf[cs + j] = 0.0
    return j0, j1


# The channel rule on the channel grid: (-17, 308, 5178, 308, -17)/5760, exact for quartics.
_W0, _W1, _W2 = 5178.0 / 5760.0, 308.0 / 5760.0, -17.0 / 5760.0
# The same rule applied to level 1 refined by _refine's midpoints, as one stencil on the level-1
# nodes c[j + u] (exact fractions of the composition): channel 2j (u = 0, +-1, +-2, +-3) and
# channel 2j + 1 (u = 0 and 1, -1 and 2, -2 and 3, -3 and 4).
_A0, _A1, _A2, _A3 = 9847.0 / 10240.0, 8537.0 / 368640.0, -847.0 / 184320.0, 77.0 / 122880.0
_B0, _B1, _B2, _B3 = 853423.0 / 1474560.0, -44017.0 / 491520.0, 15959.0 / 1474560.0, -17.0 / 491520.0


@njit(**INTERNAL)
def _to_channels(buf, fs, c0, c1, cs, j0, j1, row):
    """Add the integral over each channel k of the density sampled at the channel centres (level
    0: nodes c0..c1 at buf[fs + k]) and at every second channel centre (level 1: nodes j0..j1 at
    buf[cs + j], channel 2j), zero around them: the 5-point rule exact for quartics,
    (-17, 308, 5178, 308, -17)/5760, on level 0 plus level 1 refined to the channels by
    :func:`_refine`'s midpoints, both in one stencil (no refined level-1 nodes written and read
    again). Negative sums (interpolation ripple in far tails, < 1e-5 of the peak) are dropped;
    the nodes are zeroed."""
    n_ch = row.shape[0]
    k_lo = n_ch
    k_hi = -1
    if c0 <= c1:
        k_lo = c0 - 2
        k_hi = c1 + 2
    if j0 <= j1:  # node j reaches channels 2j - 7 .. 2j + 7
        k_lo = min(k_lo, 2 * j0 - 7)
        k_hi = max(k_hi, 2 * j1 + 7)
    k_lo = max(k_lo, 0)
    k_hi = min(k_hi, n_ch - 1)
    for j in range(k_lo >> 1, (k_hi >> 1) + 1):  # channels 2j and 2j + 1
        c = cs + j
        even = _A0 * buf[c] + _A1 * (buf[c - 1] + buf[c + 1]) + _A2 * (buf[c - 2] + buf[c + 2]) + _A3 * (
            buf[c - 3] + buf[c + 3])
        odd = _B0 * (buf[c] + buf[c + 1]) + _B1 * (buf[c - 1] + buf[c + 2]) + _B2 * (buf[c - 2] + buf[c + 3]) + _B3 * (
            buf[c - 3] + buf[c + 4])
        k = 2 * j
        if c0 - 3 <= k <= c1 + 2:  # level 0 reaches these channels (elsewhere its nodes are zero)
            p = fs + k
            even += _W0 * buf[p] + _W1 * (buf[p - 1] + buf[p + 1]) + _W2 * (buf[p - 2] + buf[p + 2])
            odd += _W0 * buf[p + 1] + _W1 * (buf[p] + buf[p + 2]) + _W2 * (buf[p - 1] + buf[p + 3])
        if k >= k_lo and even > 0.0:
            row[k] += even
        if k + 1 <= k_hi and odd > 0.0:
            row[k + 1] += odd
    for k in range(c0, c1 + 1):
        buf[fs + k] = 0.0
    for j in range(j0, j1 + 1):
        buf[cs + j] = 0.0
