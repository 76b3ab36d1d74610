"""Spectrum formation: bricks spread into time channels (Numba kernels).

Each brick is a box uniform in time between its two flight times, convolved with a Gaussian
of sigma ``sig_t`` (the brick's time spread, :mod:`bricks`) and integrated over each channel.
Closed form: a box of width w convolved with a Gaussian and integrated over [e0, e1] equals
sigma/w [H((e1-lo)/sigma) - H((e1-hi)/sigma) - H((e0-lo)/sigma) + H((e0-hi)/sigma)], with
H(z) = z Phi(z) + phi(z) the integral of the normal CDF Phi (Abramowitz & Stegun 26.2;
the integral follows from d/dz [z Phi(z) + phi(z)] = Phi(z)). H is evaluated from a table
(:func:`box_gauss_h`).

This module holds only the spreading algorithm: it takes brick arrays and adds to a spectrum
array, so it can be replaced (e.g. by a faster scheme) without touching the brick kernel.
"""

import math

import numpy as np
from numba import njit


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


@njit(cache=True)
def spread_bricks(ta, tb, Y, sig_t, n_bricks, a, b, n_ch, resolution, out):
    """Add bricks to channel spectra: uniform in time between ta and tb, convolved with a
    Gaussian of sigma sig_t, integrated over each channel [c - 1/2, c + 1/2] with
    t = a * c + b. ``out`` is (n_sp, n_ch) and is added to.

    Box (width w) convolved with a Gaussian and integrated over [e0, e1] equals
    sigma/w [H((e1-lo)/sigma) - H((e1-hi)/sigma) - H((e0-lo)/sigma) + H((e0-hi)/sigma)],
    H(z) = z Phi(z) + phi(z) (closed form of the integral of the normal CDF).
    """
    n_sp = ta.shape[0]
    aa = abs(a)
    for s in range(n_sp):
        for i in range(n_bricks):
            y = Y[s, i]
            if y <= 0.0:
                continue
            c1 = (ta[s, i] - b) / a
            c2 = (tb[s, i] - b) / a
            lo = min(c1, c2)
            hi = max(c1, c2)
            sg = sig_t[s, i] / aa if resolution else 0.0
            w = hi - lo
            if sg < 1e-3 * max(w, 1e-3):
                # bare box: exact overlap with the channels
                k0 = int(math.floor(lo + 0.5))
                k1 = int(math.floor(hi + 0.5))
                if k1 < 0 or k0 > n_ch - 1:
                    continue
                if w <= 0.0:
                    if 0 <= k0 < n_ch:
                        out[s, k0] += y
                    continue
                for k in range(max(k0, 0), min(k1, n_ch - 1) + 1):
                    e0 = max(lo, k - 0.5)
                    e1 = min(hi, k + 0.5)
                    if e1 > e0:
                        out[s, k] += y * (e1 - e0) / w
                continue
            k0 = int(math.floor(lo - 6.0 * sg + 0.5))
            k1 = int(math.floor(hi + 6.0 * sg + 0.5))
            if k1 < 0 or k0 > n_ch - 1:
                continue
            k0 = max(k0, 0)
            k1 = min(k1, n_ch - 1)
            if w < 1e-6 * sg:
                prev = normal_cdf((k0 - 0.5 - lo) / sg)
                for k in range(k0, k1 + 1):
                    cur = normal_cdf((k + 0.5 - lo) / sg)
                    out[s, k] += y * (cur - prev)
                    prev = cur
            else:
                f = y * sg / w
                e = k0 - 0.5
                prev = box_gauss_h((e - lo) / sg) - box_gauss_h((e - hi) / sg)
                for k in range(k0, k1 + 1):
                    e = k + 0.5
                    cur = box_gauss_h((e - lo) / sg) - box_gauss_h((e - hi) / sg)
                    out[s, k] += f * (cur - prev)
                    prev = cur
