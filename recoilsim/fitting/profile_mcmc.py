"""MCMC cross-check of the depth-profile bands of :func:`recoilsim.fitting.depth_profiles.fit_profiles`.

The bands of the profile fit come from the Laplace approximation: a Gaussian in the log-ratio
coordinates at the posterior maximum of each smoothing strength lambda, pushed through the
softmax by draws (:mod:`recoilsim.fitting.laplace`). :func:`sample_profile_posterior` samples the
same posterior without that approximation: emcee's affine-invariant ensemble sampler
(Foreman-Mackey et al., PASP 125 (2013) 306) on

    ln p(x | d, lambda) = sum(d ln m(x) - m(x)) - (x - x0)^T P_lambda (x - x0) / 2

with m(x) the fit's own model at its last linearisation (:class:`~recoilsim.fitting.profile_model.ProfileModel`:
softmax fractions, Q*Omega, offset and background, exact at that stopping) and the prior of
lambda (:meth:`ProfileModel.prior`), at one lambda (default: the one of largest evidence). It
returns the posterior sd of every fraction by MCMC beside the Laplace sd at the same lambda.
Cost: walkers x steps model evaluations (about 50 us each for a few nodes): seconds for a few
nodes and two or three elements, too slow for the 30-node fits of the worked example.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import RecoilsimError
from .likelihood import log_likelihood

__all__ = ["sample_profile_posterior"]


def sample_profile_posterior(result, lam: float | None = None, n_steps: int = 2000, n_burn: int = 500,
                             n_walkers: int | None = None, n_laplace: int = 4000, seed: int = 0) -> xr.Dataset:
    """Posterior sd of every fraction by MCMC and by the Laplace approximation, at one lambda.

    Parameters
    ----------
    result : ProfileResult of :func:`~recoilsim.fitting.depth_profiles.fit_profiles`.
    lam : the smoothing strength (one of ``result.dataset['lam']``); default: largest evidence.
    n_steps, n_burn, n_walkers : emcee chain length, discarded start and walkers (default
        max(2 n_dim + 2, 32)).
    n_laplace : draws from the Laplace Gaussian for its sd in fraction space.

    Returns
    -------
    xarray.Dataset
        ``sigma_mcmc``, ``sigma_laplace``, ``mean_mcmc``, ``mean_laplace`` (element, depth); attrs
        ``lambda``, ``acceptance``, ``autocorr_steps`` (emcee's largest integrated
        autocorrelation time), ``samples``.
    """
    import emcee

    model, posts = result.model, result.posteriors
    if model is None or not posts:
        raise RecoilsimError("result", result.status, "a fit_profiles result that holds its model and posteriors")
    lams = np.asarray(result.dataset["lam"].values, float)
    k = int(np.argmax(result.dataset["weight"].values)) if lam is None else int(np.argmin(np.abs(lams - lam)))
    if lam is not None and not np.isclose(lams[k], lam):
        raise RecoilsimError("lam", lam, f"one of the fit's smoothing strengths {list(lams)}")
    post = posts[k]
    x0, P = model.prior(lams[k])
    d = model.d
    ndim = post.x.size

    def log_prob(x):
        m, _ = model(x)
        r = x - x0
        return float(log_likelihood(d, m)) - 0.5 * float(r @ P @ r)

    rng = np.random.default_rng(seed)
    C = post.covariance()
    nw = n_walkers or max(2 * ndim + 2, 32)
    nw += nw % 2
    start = rng.multivariate_normal(post.x, C, size=nw, method="eigh")
    sampler = emcee.EnsembleSampler(nw, ndim, log_prob)
    sampler.random_state = np.random.RandomState(seed).get_state()
    sampler.run_mcmc(start, n_steps, progress=False)
    chain = sampler.get_chain(discard=n_burn, flat=True)
    F_mc = np.array([model.fractions(x) for x in chain])
    F_la = np.array([model.fractions(x) for x in rng.multivariate_normal(post.x, C, size=n_laplace, method="eigh")])
    try:
        tau = float(np.max(sampler.get_autocorr_time(discard=n_burn, quiet=True)))
    except Exception:  # noqa: BLE001 - emcee raises its own error type for short chains
        tau = float("nan")
    ds = result.dataset
    dims = ("element", "depth")
    out = xr.Dataset({"sigma_mcmc": (dims, F_mc.std(axis=0)), "sigma_laplace": (dims, F_la.std(axis=0)),
                      "mean_mcmc": (dims, F_mc.mean(axis=0)), "mean_laplace": (dims, F_la.mean(axis=0))},
                     coords={"element": ds["element"].values, "depth_1e15": ("depth", ds["depth_1e15"].values)})
    out.attrs.update({"lambda": float(lams[k]), "acceptance": float(np.mean(sampler.acceptance_fraction)),
                      "autocorr_steps": tau, "samples": int(chain.shape[0]), "walkers": int(nw),
                      "method": "emcee ensemble sampler on the profile fit's Poisson posterior at one lambda"})
    return out
