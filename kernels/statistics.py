"""Per-bin Poisson statistics: the one place where the deviance of a bin is computed.

:func:`poisson_bin_py` is plain Python, written once and compiled twice: with ``numba.njit``
here (:func:`poisson_bin`, used by the CPU screening kernels and by the fit's vector functions
below) and with ``numba.cuda.jit(device=True)`` by :mod:`recoilsim.kernels.cuda_batch`.

Per bin, with ``n`` measured counts and ``mu`` expected counts:

* Poisson deviance ``2 [m - n + n ln(n / m)]`` (``2 m`` for n = 0), Baker & Cousins,
  Nucl. Instrum. Methods 221 (1984) 437, eq. (13); the likelihood-ratio statistic of the bin
  against the saturated model (m = n).
* Neyman's chi-square ``(n - mu)^2 / max(n, 1)`` (measured counts as variance, 1 for empty bins
  so it stays finite), the screening kernels' second ranking statistic.

**The floor.** ``m = max(mu, FLOOR)`` with ``FLOOR = 1e-9`` counts: a model that expects no
counts where some were measured gets a large but finite deviance (n = 3: 2 (3 ln(3e9) - 3) =
125), and the deviance residual and its derivative stay finite, so a least-squares solver can
move away from such a point. Below 1e-9 expected counts a bin carries no information anyway.

Plain numpy arrays in and out; no checks inside the loops.
"""

import math

from numba import njit

#: counts: floor of the expected counts in the deviance (module docstring)
FLOOR = 1e-9


def poisson_bin_py(mu, n):
    """Deviance and Neyman chi-square terms of one bin (see the module docstring).

    Parameters
    ----------
    mu : float
        Expected counts (floored at ``FLOOR`` for the deviance).
    n : float
        Measured counts (>= 0).

    Returns
    -------
    (float, float)
        ``2 [m - n + n ln(n/m)]`` and ``(n - mu)^2 / max(n, 1)``.
    """
    m = mu if mu > FLOOR else FLOOR
    if n > 0.0:
        d = 2.0 * (m - n + n * math.log(n / m))
        if n > 1.0:
            x2 = (n - mu) * (n - mu) / n
        else:
            x2 = (n - mu) * (n - mu)
    else:
        d = 2.0 * m
        x2 = mu * mu
    return d, x2


poisson_bin = njit(cache=True)(poisson_bin_py)


@njit(cache=True)
def deviance_sum(n, mu):
    """Sum of the deviance terms of :func:`poisson_bin` over 1-D arrays ``n``, ``mu``."""
    s = 0.0
    for i in range(n.shape[0]):
        s += poisson_bin(mu[i], n[i])[0]
    return s


@njit(cache=True)
def deviance_rows(n, mu, out):
    """Deviance of every row of ``mu`` (n_rows, n_bins) against ``n`` (n_bins); ``out`` (n_rows) written."""
    for k in range(mu.shape[0]):
        s = 0.0
        for i in range(n.shape[0]):
            s += poisson_bin(mu[k, i], n[i])[0]
        out[k] = s


@njit(cache=True)
def deviance_residuals(n, mu, r, dr):
    """Signed deviance residuals and their derivative with respect to the model.

    ``r = sign(n - m) sqrt(D_i)`` (so that ``sum r^2`` is the deviance) and
    ``dr/dmu = -|m - n| / (m sqrt(D_i))``; where ``D_i`` is below ``2e-10 max(m, 1)`` (the model
    equals the data) the limit ``-1 / sqrt(m)``. ``r``, ``dr`` (same shape as ``n``) written.
    """
    for i in range(n.shape[0]):
        m = mu[i] if mu[i] > FLOOR else FLOOR
        d = poisson_bin(mu[i], n[i])[0]
        if d < 0.0:
            d = 0.0
        s = math.sqrt(d)
        if n[i] > m:
            r[i] = s
        elif n[i] < m:
            r[i] = -s
        else:
            r[i] = 0.0
        if d < 2e-10 * max(m, 1.0):
            dr[i] = -1.0 / math.sqrt(m)
        else:
            dr[i] = -abs(m - n[i]) / (m * s)


@njit(cache=True)
def deviance_moments(mu, mean, var):
    """Mean and variance of the deviance term of each bin when its counts are Poisson(mu).

    Exact sums over n (the Poisson probabilities by recursion) up to
    ``mu + 12 sqrt(mu) + 25`` for ``mu <= 200``; above, the large-mean expansion
    ``E = 1 + 1/(6 mu)``, ``Var = 2`` (McCullagh & Nelder, Generalized Linear Models, 2nd ed.
    (1989), section 6.2: the deviance of a Poisson bin tends to chi-square with one degree of
    freedom). ``mean``, ``var`` (same shape as ``mu``) written.
    """
    for i in range(mu.shape[0]):
        m = mu[i] if mu[i] > FLOOR else FLOOR
        if m > 200.0:
            mean[i] = 1.0 + 1.0 / (6.0 * m)
            var[i] = 2.0
            continue
        p = math.exp(-m)
        s1 = 0.0
        s2 = 0.0
        top = int(m + 12.0 * math.sqrt(m) + 25.0)
        for k in range(top + 1):
            d = poisson_bin(m, float(k))[0]
            s1 += p * d
            s2 += p * d * d
            p *= m / (k + 1.0)
        mean[i] = s1
        var[i] = max(s2 - s1 * s1, 0.0)

