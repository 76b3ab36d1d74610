"""A second uncertainty estimate of a fit: MCMC of its Poisson posterior.

emcee's affine-invariant ensemble sampler (Foreman-Mackey et al., PASP 125 (2013) 306).
Log-posterior: the Poisson log-likelihood sum(d ln m - m) of the fitted model
(:func:`recoilsim.fitting.likelihood.log_likelihood`), minus the smoothness penalty / 2, flat
within the parameter bounds. The model is the fit's final one: linear in the profile values
(exact for the LinearModel at the fitted composition), exact in Q*Omega and the background
(m = s u + background), first order in
the calibration and the slow parameters (their columns at the solution) -- so each step costs
one matrix product and the sampler tests what the Jacobian band assumes (Gaussian likelihood, no
bounds), not the non-linearity in a, b or thicknesses.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..forward.reporting import reporter
from .likelihood import log_likelihood

__all__ = ["sample_posterior"]


def _start(p0, C, lo, hi, nw, seed, log_prob):
    """Walker starts: draws from the fit's covariance, pulled towards p0 until every one has posterior > 0."""
    ndim = p0.size
    rng = np.random.default_rng(seed)
    try:
        start = rng.multivariate_normal(p0, C, size=nw, method="eigh")
    except (np.linalg.LinAlgError, ValueError):
        start = p0 + 1e-3 * rng.standard_normal((nw, ndim)) * np.maximum(np.abs(p0), 1e-3)
    span = 1e-9 * np.where(np.isfinite(hi - lo), hi - lo, 1.0)
    start = np.clip(start, lo + span, hi - span)
    for _ in range(50):
        bad = ~np.isfinite(log_prob(start))
        if not bad.any():
            break
        start[bad] = p0 + 0.5 * (start[bad] - p0)
    return start


def sample_posterior(result, n_steps: int = 3000, n_burn: int = 1000, n_walkers: int | None = None,
                     seed: int | None = 0, progress: bool = False) -> xr.Dataset:
    """Sample the posterior of a :class:`~recoilsim.fitting.result.FitResult` (module docstring).

    Adds to the result's dataset (and returns it): ``profile_mcmc_median``, ``profile_mcmc_lo`` /
    ``_hi`` (15.87 / 84.13 % quantiles), ``profile_sigma_mcmc`` (half their distance),
    ``sigma_mcmc`` per parameter; attrs ``mcmc_acceptance``, ``mcmc_autocorr_steps`` (the
    largest integrated autocorrelation time, emcee's estimate), ``mcmc_samples``.
    Cost grows as walkers x data x free parameters per step: seconds for tens of free
    parameters; slow for 150. ``progress``: True for a rich progress bar, or a callable
    ``f(done, n_steps)`` called after every step.
    """
    import emcee

    prob = result.problem
    ds = result.dataset
    p0 = ds["value"].values.astype(float)
    fr = prob.free.copy()
    d = prob.dvec()
    J, m0 = prob.jac_model(p0)
    s_idx = np.concatenate([np.full(w.size, prob.i_s[mi]) for mi in range(prob.M) for w in prob.win[mi].values()])
    is_scale = np.zeros(p0.size, bool)
    is_scale[list(set(prob.i_s))] = True
    is_bg = prob.vec.background_mask()
    B = np.where(is_bg[None, :], J, 0.0)  # the background: m = s u + B p, linear in its parameters
    s0 = p0[s_idx]
    u0 = (m0 - B @ p0) / s0
    Ju = (J / s0[:, None])[:, fr & ~is_scale & ~is_bg]  # du/dp for the other free parameters
    cols = np.nonzero(fr & ~is_scale & ~is_bg)[0]
    P = prob.penalty_matrix()
    lo, hi = prob.vec.lo[fr], prob.vec.hi[fr]
    ndim = int(fr.sum())
    nw = n_walkers or max(2 * ndim + 2, 32)
    nw += nw % 2

    def log_prob(X):
        X = np.atleast_2d(X)
        full = np.repeat(p0[None, :], X.shape[0], axis=0)
        full[:, fr] = X
        m = full[:, s_idx] * (u0[None, :] + (full[:, cols] - p0[cols]) @ Ju.T) + full @ B.T
        inside = np.all((X >= lo) & (X <= hi), axis=1)
        pen = 0.5 * np.einsum("ij,jk,ik->i", full, P, full)
        return np.where(inside, log_likelihood(d, m) - pen, -np.inf)

    start = _start(p0[fr], ds["covariance"].values[np.ix_(fr, fr)], lo, hi, nw, seed, log_prob)
    sampler = emcee.EnsembleSampler(nw, ndim, log_prob, vectorize=True)
    sampler.random_state = np.random.RandomState(seed).get_state()  # reproducible moves
    with reporter(progress, n_steps, "MCMC") as step:  # progress: bool or f(done, total)
        for k, _ in enumerate(sampler.sample(start, iterations=n_steps)):  # as run_mcmc, step by step
            step(k + 1)
    chain = sampler.get_chain(discard=n_burn, flat=True)
    full = np.repeat(p0[None, :], chain.shape[0], axis=0)
    full[:, fr] = chain
    q = np.percentile(full, [15.87, 50.0, 84.13], axis=0)
    try:
        tau = float(np.max(sampler.get_autocorr_time(discard=n_burn, quiet=True)))
    except Exception:  # noqa: BLE001 - emcee raises its own error type for short chains
        tau = float("nan")
    ip = prob.i_prof
    ds["profile_mcmc_median"] = (("measurement", "depth"), np.array([q[1][i] for i in ip]))
    ds["profile_mcmc_lo"] = (("measurement", "depth"), np.array([q[0][i] for i in ip]))
    ds["profile_mcmc_hi"] = (("measurement", "depth"), np.array([q[2][i] for i in ip]))
    ds["profile_sigma_mcmc"] = (("measurement", "depth"), 0.5 * (ds["profile_mcmc_hi"].values - ds["profile_mcmc_lo"].values))
    ds["sigma_mcmc"] = ("parameter", np.where(prob.free, 0.5 * (q[2] - q[0]), 0.0))
    ds.attrs.update(mcmc_acceptance=float(np.mean(sampler.acceptance_fraction)), mcmc_autocorr_steps=tau,
                    mcmc_samples=int(chain.shape[0]), mcmc_walkers=int(nw),
                    mcmc_method="emcee ensemble sampler on the fit's linearised Poisson posterior")
    return ds
