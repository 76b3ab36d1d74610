"""Second uncertainty method: MCMC (emcee) of the Poisson posterior against the Jacobian band.

A well-determined case (7 nodes, Li + P + O + N of the reference case, a, b and Q*Omega free,
no smoothing): the posterior's 16-84 % half-width should match the Fisher sigma (the Laplace
approximation) within 30 % at every node, and its median should lie near the maximum.
"""

import numpy as np

from test_fit import EXCESS, NODES, _draw, _exp, _mean

from recoilsim.fitting.driver import FitParameters, fit


def test_mcmc_band_matches_jacobian_band():
    mu = _mean(NODES, EXCESS, ("Li", "P", "O", "N"))
    r = fit(_exp(), _draw(mu, 21), FitParameters(depth_nm=NODES, regularization=0.0), verify=False)
    assert r.success, r.message
    ds = r.sample_posterior(n_steps=1500, n_burn=500, seed=3)
    s_j = ds.profile_sigma.values[0]
    s_m = ds.profile_sigma_mcmc.values[0]
    print("Jacobian sigma", np.round(s_j, 4), "MCMC sigma", np.round(s_m, 4), "ratio", np.round(s_m / s_j, 3),
          "acceptance", ds.attrs["mcmc_acceptance"], "tau", ds.attrs["mcmc_autocorr_steps"])
    assert 0.15 < ds.attrs["mcmc_acceptance"] < 0.8
    assert np.all(np.abs(s_m / s_j - 1) < 0.3)
    assert np.all(np.abs(ds.profile_mcmc_median.values[0] - ds.profile.values[0]) < 0.3 * s_j)
    free = ds.free.values
    sj, sm = ds.sigma.values[free], ds.sigma_mcmc.values[free]
    assert np.all(np.abs(sm / sj - 1) < 0.3)  # a, b and Q*Omega too


def test_mcmc_band_in_the_plot(tmp_path):
    mu = _mean(NODES, EXCESS, ("Li", "P"))
    r = fit(_exp(), _draw(mu, 22), FitParameters(depth_nm=NODES, regularization=0.0), verify=False)
    r.sample_posterior(n_steps=200, n_burn=100, seed=1)
    assert "profile_sigma_mcmc" in r.dataset and r.plot(tmp_path / "fit.png").exists()
    r.dataset.to_netcdf(tmp_path / "fit.nc")
