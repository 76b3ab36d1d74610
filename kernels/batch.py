"""Batch forward model of many candidate profiles with a linear model (Numba, CPU).

The spectrum of one candidate is ``s = c + A @ v`` (``A`` the (n_channels, n_nodes) response
of the profile nodes, ``c`` the part that does not depend on them, ``v`` the candidate's node
values). A batch evaluates many ``v`` at once, in parallel over candidates (``prange``), and
ranks them against a measured spectrum in the same pass.

Only the channels ``lo <= k < hi`` where some column of ``A`` is non-zero depend on the
candidate; each row k only on nodes ``jlo[k] <= j < jhi[k]`` (``A`` is banded: a depth node
feeds a window of channels). The caller handles the channels outside ``[lo, hi)`` once (they are
the same for every candidate) and passes their deviance and chi-square as constants.

Ranking statistics, per candidate, over the channels where ``use[k]`` is true: the Poisson
deviance and Neyman's chi-square of :func:`recoilsim.kernels.statistics.poisson_bin` (the one
per-bin implementation, with its documented floor of the expected counts).

Plain numpy arrays in and out; no checks inside the loops.
"""

import numpy as np
from numba import njit, prange

from .statistics import poisson_bin


@njit(cache=True)
def band(A, c, tol):
    """Row range and per-row node range of the non-zero part of ``A``.

    Returns ``(lo, hi, jlo, jhi)``: rows ``lo <= k < hi`` hold every entry with ``|A| > tol``;
    row ``k`` has its non-zero entries in ``jlo[k] <= j < jhi[k]`` (empty: jlo == jhi == 0).
    """
    n_ch, n_nodes = A.shape
    jlo = np.zeros(n_ch, dtype=np.int64)
    jhi = np.zeros(n_ch, dtype=np.int64)
    lo = n_ch
    hi = 0
    for k in range(n_ch):
        a = -1
        b = -1
        for j in range(n_nodes):
            if abs(A[k, j]) > tol:
                if a < 0:
                    a = j
                b = j
        if a >= 0:
            jlo[k] = a
            jhi[k] = b + 1
            if k < lo:
                lo = k
            hi = k + 1
    if hi <= lo:
        lo = 0
        hi = 0
    return lo, hi, jlo, jhi


@njit(cache=True)
def fixed_stats(c, meas, use, lo, hi):
    """Deviance and chi-square of the channels outside ``[lo, hi)`` (independent of the
    candidate: the spectrum there is ``c``)."""
    d = 0.0
    x2 = 0.0
    for k in range(c.shape[0]):
        if (lo <= k < hi) or not use[k]:
            continue
        dk, xk = poisson_bin(c[k], meas[k])
        d += dk
        x2 += xk
    return d, x2


@njit(parallel=True, cache=True)
def batch_spectra(A, c, lo, hi, jlo, jhi, V, out):
    """Spectra of every candidate: ``out[i] = c + A @ V[i]``.

    A (n_ch, n_nodes), c (n_ch), V (n_cand, n_nodes), out (n_cand, n_ch), written.
    """
    n_cand = V.shape[0]
    n_ch = c.shape[0]
    for i in prange(n_cand):
        for k in range(0, lo):
            out[i, k] = c[k]
        for k in range(hi, n_ch):
            out[i, k] = c[k]
        for k in range(lo, hi):
            s = 0.0
            for j in range(jlo[k], jhi[k]):
                s += A[k, j] * V[i, j]
            out[i, k] = c[k] + s


@njit(parallel=True, cache=True)
def batch_rank(A, c, lo, hi, jlo, jhi, V, meas, use, dev0, chi0, dev, chi2, want_spec, out):
    """Deviance and chi-square of every candidate against ``meas`` (and, when ``want_spec``,
    its spectrum in ``out`` as :func:`batch_spectra`).

    ``dev0``/``chi0``: the constant contribution of the channels outside ``[lo, hi)``
    (:func:`fixed_stats`). dev, chi2 (n_cand) written; ``out`` (n_cand, n_ch) written only when
    want_spec (pass a (1, 1) array otherwise).
    """
    n_cand = V.shape[0]
    n_ch = c.shape[0]
    for i in prange(n_cand):
        d = dev0
        x2 = chi0
        for k in range(lo, hi):
            s = 0.0
            for j in range(jlo[k], jhi[k]):
                s += A[k, j] * V[i, j]
            mu = c[k] + s
            if want_spec:
                out[i, k] = mu
            if use[k]:
                dk, xk = poisson_bin(mu, meas[k])
                d += dk
                x2 += xk
        dev[i] = d
        chi2[i] = x2
        if want_spec:
            for k in range(0, lo):
                out[i, k] = c[k]
            for k in range(hi, n_ch):
                out[i, k] = c[k]
