"""Poisson posterior under a Gaussian prior: maximum (MAP), Laplace evidence and a mixture over priors.

For counts d with model m(x) and a Gaussian prior of precision P around x0 the negative log
posterior is (up to constants)

    Phi(x) = sum(m - d ln m) + (x - x0)^T P (x - x0) / 2.

:func:`map_estimate` minimises it by Fisher scoring (Newton steps with the expected Hessian
``H = J^T diag(1/m) J + P``, J = dm/dx) with a backtracking line search. The Laplace
approximation of the marginal likelihood (evidence) of the prior is (MacKay, Neural Comput. 4
(1992) 415, eq. 2.8; Bishop, *Pattern Recognition and Machine Learning* (2006), eq. 4.137)

    ln Z = sum(d ln m - m - ln d!) - (x - x0)^T P (x - x0) / 2 + ln det P / 2 - ln det H / 2

at the maximum x; it chooses the strength of a smoothness prior (Gull 1989; MacKay 1992) without
GCV's blindness to the bias, and :func:`mixture_samples` integrates over several strengths: draws
from the mixture of their Gaussian posteriors weighted by evidence (Bayesian model averaging,
Hoeting et al., Stat. Sci. 14 (1999) 382), whose spread holds both the noise and the
uncertainty of the smoothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from .likelihood import FLOOR as TINY  # counts: floor of a model value (d ln m stays finite)


@dataclass
class Posterior:
    """A Gaussian (Laplace) posterior: mode, precision, evidence."""

    x: np.ndarray
    H: np.ndarray
    log_evidence: float
    n_iter: int
    converged: bool

    def covariance(self) -> np.ndarray:
        return np.linalg.inv(self.H)


def _objective(d, m, x, x0, P):
    m = np.maximum(m, TINY)
    r = x - x0
    return float(np.sum(m - d * np.log(m)) + 0.5 * r @ P @ r)


def log_det_spd(A: np.ndarray) -> float:
    """ln det of a symmetric positive (semi)definite matrix, on its Jacobi-scaled form (unit
    diagonal) so that parameters of very different scales lose no precision."""
    s = 1.0 / np.sqrt(np.maximum(np.diag(A), 1e-300))
    return float(np.linalg.slogdet(A * np.outer(s, s))[1] - 2.0 * np.sum(np.log(s)))


def map_estimate(model: Callable, d: np.ndarray, x_start: np.ndarray, x0: np.ndarray, P: np.ndarray,
                 max_iter: int = 40, tol: float = 1e-4, log_det_prior: float | None = None) -> Posterior:
    """Maximum of the Poisson posterior and its Laplace evidence.

    Parameters
    ----------
    model : callable x -> (m, J)
        Expected counts (n_data,) and their Jacobian (n_data, n_x).
    d : counts (n_data,); x_start : start; x0, P : prior centre and precision (n_x, n_x).
    max_iter, tol : Fisher-scoring steps; stop when the Newton decrement g^T H^-1 g / 2 < tol.
    log_det_prior : ln det P where P is singular (a prior improper along its null space, flat there:
        then ln of its pseudo-determinant, up to a constant common to the priors compared); default
        ln det P.
    """
    x = np.asarray(x_start, float).copy()
    m, J = model(x)
    f = _objective(d, m, x, x0, P)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        mm = np.maximum(m, TINY)
        g = J.T @ (1.0 - d / mm) + P @ (x - x0)
        H = (J.T * (1.0 / mm)) @ J + P
        try:
            step = -np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            step = -g / np.maximum(np.diag(H), 1e-300)
        dec = -0.5 * float(g @ step)
        if dec < tol:
            converged = True
            break
        t = 1.0
        for _ in range(30):
            xn = x + t * step
            with np.errstate(over="ignore", invalid="ignore"):
                mn, Jn = model(xn)
                fn = _objective(d, mn, xn, x0, P)
            if np.isfinite(fn) and fn <= f + 1e-4 * t * float(g @ step):
                break
            t *= 0.5
        else:
            break  # no descent along the Newton direction: at the numerical optimum
        x, m, J, f = xn, mn, Jn, fn
    mm = np.maximum(m, TINY)
    H = (J.T * (1.0 / mm)) @ J + P
    ld_h = log_det_spd(H)
    ld_p = log_det_spd(P) if log_det_prior is None else float(log_det_prior)
    r = x - x0
    loglik = float(np.sum(d * np.log(mm) - mm - gammaln(d + 1.0)))
    log_z = loglik - 0.5 * float(r @ P @ r) + 0.5 * ld_p - 0.5 * ld_h
    return Posterior(x, H, float(log_z), it, converged)


def scan_lambdas(model: Callable, d: np.ndarray, lambdas, prior: Callable, x_start: np.ndarray,
                 starts: list | None = None, max_iter: int = 40, log_det_prior: Callable | None = None
                 ) -> list[Posterior]:
    """Posterior maximum and Laplace evidence for every smoothing strength of ``lambdas``.

    ``prior(lam)`` gives (x0, P); each maximisation starts from its own previous maximum
    (``starts[i]``) or, without one, from the previous strength's (the first from ``x_start``):
    neighbouring strengths have neighbouring maxima, so a scan costs a few steps per strength.
    ``log_det_prior(lam)``, if given, is passed to :func:`map_estimate` (improper priors).
    """
    posts: list[Posterior] = []
    for i, lam in enumerate(lambdas):
        x0, P = prior(lam)
        start = starts[i] if starts is not None and starts[i] is not None else (posts[-1].x if posts else x_start)
        posts.append(map_estimate(model, d, start, x0, P, max_iter=max_iter,
                                  log_det_prior=None if log_det_prior is None else log_det_prior(lam)))
    return posts


PLATEAU = 0.05  # change of the effective number of parameters between neighbouring strengths: the plateau


def plateau_end(posts: list[Posterior], precisions: list[np.ndarray], tol: float = PLATEAU) -> int:
    """How many strengths of a scan (in increasing order) to keep: the plateau of the largest ones,
    whose effective number of parameters ``n_x - tr(H^-1 P)`` (P: that strength's prior
    precision; MacKay 1992, eq. 4.9) falls by less than ``tol`` from one strength to the next, is
    cut after its first member. There the prior has fixed every curvature mode (the limit of
    infinite smoothing): the evidence is flat, one and the same posterior, and a uniform prior
    over ln lambda would give that one model a weight proportional to how far the grid happens to
    extend."""
    p_eff = [q.x.size - float(np.trace(np.linalg.solve(q.H, P))) for q, P in zip(posts, precisions)]
    k = len(p_eff) - 1
    while k > 0 and p_eff[k - 1] - p_eff[k] < tol:
        k -= 1
    return min(k + 2, len(posts))


def evidence_weights(log_z: np.ndarray) -> np.ndarray:
    """Normalised weights exp(ln Z_i) / sum (a uniform prior over the listed priors)."""
    lz = np.asarray(log_z, float)
    w = np.exp(lz - lz.max())
    return w / w.sum()


def mixture_samples(posts: list[Posterior], weights: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, n_x) draws from the evidence-weighted mixture of Gaussian posteriors."""
    weights = np.asarray(weights, float)
    counts = rng.multinomial(n, weights / weights.sum())
    out = []
    for post, k in zip(posts, counts):
        if k == 0:
            continue
        Lc = np.linalg.cholesky(post.H)  # H = L L^T  ->  x = mode + L^-T z has covariance H^-1
        z = rng.standard_normal((post.x.size, k))
        out.append(post.x[None, :] + np.linalg.solve(Lc.T, z).T)
    return np.concatenate(out, axis=0)
