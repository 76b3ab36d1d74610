"""Smoothing strength of :func:`recoilsim.fit` by the evidence, and its posterior mixed over strengths.

The fit's penalty ``lambda ||L v||^2`` on the profile values v (second differences) is a Gaussian
smoothness prior of precision ``lambda L^T L``. On the fit's own linearisation at a solution p
(expected counts ``m(p + dx) = m(p) + J dx``, J from :meth:`Problem.jac_model`, so the stopping
correction columns are in it) the Poisson posterior of every strength of a grid is maximised and
its marginal likelihood (evidence) computed by the Laplace approximation
(:func:`recoilsim.fitting.laplace.map_estimate`; MacKay, Neural Comput. 4 (1992) 415), as
:func:`recoilsim.fitting.depth_profiles.fit_profiles` does. Unlike GCV (Craven & Wahba 1979), which
only scores the prediction of the data, the evidence weighs the prior's own probability of the
profile, and the posterior covariance ``(F + lambda L^T L)^-1`` is the band of that prior (Wahba,
J. R. Stat. Soc. B 45 (1983) 133; Nychka, J. Am. Stat. Assoc. 83 (1988) 1134: such Bayesian bands
cover near their nominal rate averaged over the profile).

The band reported is that of the evidence-weighted mixture of the strengths' Gaussian posteriors
(Bayesian model averaging, Hoeting et al., Stat. Sci. 14 (1999) 382), as its second moment about
the reported solution p: ``C = sum_l w_l [C_l + (x_l - p)(x_l - p)^T]`` (x_l, C_l: maximum and
covariance at strength l). It holds the spread of the maxima between plausible strengths, which a
single strength's band lacks.

Along the penalty's null space (level and slope of each profile) and for the parameters without a
prior (calibration, Q*Omega, slow parameters) the prior is flat, the same for every strength: the
evidence is then defined up to a constant common to all strengths (ln of the pseudo-determinant
of ``lambda L^T L``, ``rank * ln lambda`` plus a constant; MacKay 1992, sec. 4), which cancels
from the weights. Beside this the log determinants are taken on Jacobi-scaled matrices
(:func:`recoilsim.fitting.laplace.log_det_spd`): with a plain ``slogdet`` of the prior precision
(strengths up to 1e11, a weak ridge along the null space) rounding moved ln Z by +-1.5 between
neighbouring strengths where the maximum no longer changed, and gave the largest strengths
most of the weight.

The grid ends at the first strength whose posterior has reached the limit of infinite smoothing
(:func:`recoilsim.fitting.laplace.plateau_end`: the effective number of parameters changes by
less than 0.05 from one strength to the next): beyond it the evidence is flat (the same linear
profile) and a uniform prior over ln lambda would give that one model a weight proportional to
how far the grid happens to extend (measured: 8 of 21 strengths on the plateau, half the weight).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .laplace import evidence_weights, plateau_end, scan_lambdas
from .likelihood import FLOOR
from .problem import Problem

__all__ = ["GRID", "LambdaMixture", "evidence_mixture"]

#: strengths scanned, relative to tr(F) / tr(L^T L) (the range of the GCV grid, 1e-6 ... 1e4)
GRID = np.logspace(-6.0, 4.0, 21)


@dataclass
class LambdaMixture:
    """Posteriors of the linearised fit over smoothing strengths.

    lambdas : (n_l,) strengths; log_evidence, weights : (n_l,); shifts : (n_l, n_free) posterior
    maxima minus the linearisation point p; covariances : (n_l, n_free, n_free).
    """

    lambdas: np.ndarray
    log_evidence: np.ndarray
    weights: np.ndarray
    shifts: np.ndarray
    covariances: np.ndarray

    @property
    def best(self) -> float:
        """The strength of largest evidence."""
        return float(self.lambdas[int(np.argmax(self.weights))])

    def mean_shift(self) -> np.ndarray:
        """Posterior mean of the mixture minus p (free parameters)."""
        return self.weights @ self.shifts

    def covariance(self) -> np.ndarray:
        """Second moment of the mixture about the linearisation point p (free parameters)."""
        w = self.weights
        return np.einsum("l,lij->ij", w, self.covariances) + np.einsum("l,li,lj->ij", w, self.shifts, self.shifts)


def evidence_mixture(prob: Problem, d: np.ndarray, p: np.ndarray, grid: np.ndarray = GRID) -> LambdaMixture:
    """Evidence of every smoothing strength on the linearisation of ``prob`` at p (module docstring).

    Parameters
    ----------
    prob : the fit's problem (its models linearised near p); d : the counts in the windows;
    p : full parameter vector (the solution, or an almost unregularised one for the choice);
    grid : strengths relative to tr(F) / tr(L^T L).
    """
    fr = prob.free
    J, m0 = prob.jac_model(p)
    Jf = J[:, fr]
    m0 = np.maximum(m0, FLOOR)
    F = (Jf.T / m0) @ Jf
    P1 = prob.penalty_matrix(1.0)[np.ix_(fr, fr)]
    x = p[fr]
    lambdas = np.asarray(grid, float) * np.trace(F) / max(np.trace(P1), 1e-300)
    rank = np.linalg.matrix_rank(P1)

    def prior(lam):  # lam (x + dx)^T P1 (x + dx): centre -x in dx
        return -x, lam * P1

    def model(dx):
        return m0 + Jf @ dx, Jf

    posts = scan_lambdas(model, d, lambdas, prior, np.zeros(x.size), log_det_prior=lambda lam: rank * np.log(lam))
    n = plateau_end(posts, [lam * P1 for lam in lambdas])
    posts, lambdas = posts[:n], lambdas[:n]
    log_z = np.array([q.log_evidence for q in posts])
    log_z[~np.isfinite(log_z)] = -np.inf  # a singular posterior precision: no weight
    return LambdaMixture(lambdas, log_z, evidence_weights(log_z), np.array([q.x for q in posts]),
                         np.array([q.covariance() for q in posts]))


def apply_mixture(ds, prob: Problem, mix: LambdaMixture) -> None:
    """Replace the band of a fit's result dataset (covariance, sigma, correlation, profile_sigma)
    by the mixture's (:meth:`LambdaMixture.covariance`) and store the strengths and weights."""
    fr = prob.free
    cov = np.zeros((fr.size, fr.size))
    cov[np.ix_(fr, fr)] = mix.covariance()
    sig = np.sqrt(np.maximum(np.diag(cov), 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sig, sig)
    ds["covariance"].values[:] = cov
    ds["correlation"].values[:] = corr
    ds["sigma"].values[:] = sig
    ds["profile_sigma"].values[:] = np.array([sig[i] for i in prob.i_prof])
    mean = np.zeros(fr.size)
    mean[fr] = mix.mean_shift()
    mean += ds["value"].values
    # the mixture's posterior mean and its sd about the mean (the band above is about the solution)
    var_mean = np.maximum(np.diag(cov) - (mean - ds["value"].values) ** 2, 0.0)
    ds["profile_posterior_mean"] = (("measurement", "depth"), np.array([mean[i] for i in prob.i_prof]))
    ds["profile_posterior_sd"] = (("measurement", "depth"), np.array([np.sqrt(var_mean[i]) for i in prob.i_prof]))
    ds["lambda_grid"] = ("lam", mix.lambdas)
    ds["lambda_log_evidence"] = ("lam", mix.log_evidence)
    ds["lambda_weight"] = ("lam", mix.weights)
    ds.attrs["uncertainty"] = (
        "sigma: evidence-weighted mixture over the smoothing strengths lambda_grid of the Gaussian posteriors "
        "(F + lambda L^T L)^-1 on the linearisation at the solution, second moment about the solution; "
        "sigma_sandwich: (F+P)^-1 F (F+P)^-1 at the chosen lambda (frequentist, excludes regularisation bias)")
