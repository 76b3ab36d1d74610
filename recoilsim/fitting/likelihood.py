"""The Poisson likelihood of the fits: deviance, deviance residuals, Pearson chi-square, log-likelihood.

Every statistic here is built on the one per-bin function
:func:`recoilsim.kernels.statistics.poisson_bin` (also used by the screening kernels, CPU and
CUDA): the Poisson deviance of a bin, ``2 [m - n + n ln(n/m)]`` (``2 m`` for n = 0), Baker &
Cousins, Nucl. Instrum. Methods 221 (1984) 437, with the expected counts floored at
:data:`FLOOR` = 1e-9 (the kernel module says why).

* :func:`deviance` -- the sum over bins; the fits minimise it.
* :func:`deviance_residuals` -- signed residuals (``sum r^2 = D``) and dr/dm, for least squares.
* :func:`log_likelihood` -- ``sum(n ln m - m)`` (the log Poisson probability without the
  constant ``-sum ln n!``), written as ``-D/2 + sum(n ln n - n)``.
* :func:`pearson_chi2` -- ``sum (n - m)^2 / m`` over the bins where the model expects at least one
  count (in a bin with m << 1 one count adds 1/m: there only the deviance is meaningful).
* :func:`goodness_verdict` -- whether a deviance lies above what Poisson noise allows.
"""

from __future__ import annotations

import math

import numpy as np

from ..kernels import statistics as _kst

__all__ = ["FLOOR", "deviance", "deviance_expectation", "deviance_residuals", "goodness_verdict", "log_likelihood",
           "pearson_chi2"]

#: counts: floor of the expected counts in every deviance (recoilsim.kernels.statistics)
FLOOR = _kst.FLOOR

#: a fit is 'poor_fit' when its deviance lies this many standard deviations above its expectation
POOR_FIT_SIGMAS = 5.0


def _f64(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


def deviance(n, mu) -> float:
    """Poisson deviance ``2 sum(m - n + n ln(n/m))`` of measured counts ``n`` against the model ``mu``.

    Parameters
    ----------
    n, mu : array_like
        Measured and expected counts per bin (same shape; mu floored at :data:`FLOOR`).
    """
    return float(_kst.deviance_sum(_f64(n).ravel(), _f64(mu).ravel()))


def deviance_residuals(n, mu) -> tuple[np.ndarray, np.ndarray]:
    """Signed deviance residuals ``r`` (``sum r^2`` = the deviance) and ``dr/dmu``, shaped as ``n``."""
    nn, mm = _f64(n), _f64(mu)
    r = np.empty(nn.size)
    dr = np.empty(nn.size)
    _kst.deviance_residuals(nn.ravel(), mm.ravel(), r, dr)
    return r.reshape(nn.shape), dr.reshape(nn.shape)


def log_likelihood(n, mu) -> np.ndarray:
    """Poisson log-likelihood ``sum(n ln mu - mu)`` over the last axis (``-inf`` where any mu <= 0).

    ``mu`` may hold several models as rows (n_models, n_bins): one value per row.
    """
    nn = _f64(n)
    mm = np.atleast_2d(_f64(mu))
    dev = np.empty(mm.shape[0])
    _kst.deviance_rows(nn, mm, dev)
    pos = nn > 0
    sat = float(np.sum(nn[pos] * np.log(nn[pos]) - nn[pos]))
    ll = np.where(np.all(mm > 0, axis=1), sat - 0.5 * dev, -np.inf)
    return ll if np.ndim(mu) > 1 else ll[0]


def pearson_chi2(n, mu, min_model: float = 1.0) -> tuple[float, int]:
    """Pearson's ``sum (n - m)^2 / m`` over the bins with ``m >= min_model``, and how many bins that is."""
    nn, mm = _f64(n), _f64(mu)
    big = mm >= min_model
    return float(np.sum((nn[big] - mm[big]) ** 2 / mm[big])), int(big.sum())


def deviance_expectation(mu) -> tuple[float, float]:
    """Mean and variance of the deviance of Poisson counts drawn from ``mu`` (bins independent).

    For well-filled bins (mu >~ 10) each bin adds about 1 and 2 (chi-square with one degree of
    freedom); for mu ~ 1 the mean is 1.15, for mu -> 0 it tends to 0. Exact Poisson sums
    (:func:`recoilsim.kernels.statistics.deviance_moments`).
    """
    mm = _f64(mu).ravel()
    mean = np.empty(mm.size)
    var = np.empty(mm.size)
    _kst.deviance_moments(mm, mean, var)
    return float(mean.sum()), float(var.sum())


def goodness_verdict(n, mu, p_eff: float) -> tuple[bool, float, float]:
    """Does the deviance lie far above what Poisson noise allows?

    With dof = n_bins - p_eff, a correct model's deviance is about chi-square(dof): mean dof,
    variance 2 dof. The fit is poor when ``D > dof + 5 sqrt(2 dof)``, i.e.
    ``D / dof > 1 + 5 sqrt(2 / dof)``. Sparse bins (mu ~ 1) expect more than 1 each (1.15 at
    mu = 1): where the exact Poisson mean and variance (:func:`deviance_expectation`, minus
    p_eff for the mean) are larger, they are used instead, so that a correct model of a sparse
    spectrum is not flagged.

    Returns
    -------
    (poor, D, limit)
    """
    d = deviance(n, mu)
    dof = max(np.size(n) - p_eff, 1.0)
    mean, var = deviance_expectation(mu)
    limit = max(mean - p_eff, dof) + POOR_FIT_SIGMAS * math.sqrt(max(var, 2.0 * dof))
    return d > limit, d, limit
