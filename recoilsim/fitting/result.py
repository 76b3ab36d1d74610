"""The outcome of :func:`recoilsim.fitting.driver.fit`: :class:`FitResult`.

Its parameter table and summary, the plot (:mod:`recoilsim.plots.fit`), the experiment at the
fitted values (:meth:`FitResult.fitted_experiment`) and the second uncertainty estimate by MCMC
of the posterior (:meth:`FitResult.sample_posterior`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..errors import RecoilsimError
from ..model.experiment import Experiment
from .problem import fitted_experiment as _fitted_experiment

__all__ = ["FitResult"]


class FitResult:
    """Outcome of :func:`fit`.

    Attributes
    ----------
    status : str -- 'success', 'not_converged', 'no_counts', 'no_effect', 'degenerate' (Fisher matrix
        singular), 'correlated' (two free parameters with |rho| > 0.99, at least one not a profile
        value: the message names them, a RuntimeWarning says the same; the dataset is complete
        and ``attrs['strong_correlations']`` lists the pairs)
    success : bool
    message : str
    dataset : xarray.Dataset -- profile(measurement, depth) with sigma / bootstrap sigma, every
        parameter with error, measured / fitted spectra and deviance residuals per
        (measurement, element, channel) (NaN outside the windows), covariance and correlation;
        goodness of fit in attrs.
    """

    def __init__(self, status, message, dataset=None, problem=None):
        self.status = status
        self.success = status == "success"
        self.message = message
        self.dataset = dataset
        self._problem = problem

    def __repr__(self):
        return f"FitResult(status={self.status!r}, message={self.message!r})"

    @property
    def profile(self):
        return None if self.dataset is None else self.dataset["profile"]

    def table_rows(self) -> list[tuple]:
        ds = self.dataset
        rows = []
        for n, v, s in zip(ds["parameter"].values, ds["value"].values, ds["sigma"].values):
            rows.append((str(n), float(v), float(s)))
        return rows

    def summary(self, print_it: bool = True, max_rows: int = 40) -> str:
        """A table of the parameters and the goodness of fit (printed with rich)."""
        from rich.console import Console
        from rich.table import Table
        t = Table(title=f"recoilsim fit: {self.status}")
        for c in ("parameter", "value", "sigma", "free"):
            t.add_column(c)
        if self.dataset is not None:
            ds = self.dataset
            for i, (n, v, s) in enumerate(self.table_rows()):
                if i >= max_rows:
                    t.add_row("...", "", "", "")
                    break
                t.add_row(n, f"{v:.6g}", f"{s:.3g}", str(bool(ds["free"].values[i])))
        con = Console(record=True, width=100)
        con.print(t)
        con.print(self.message)
        if self.dataset is not None:
            a = self.dataset.attrs
            con.print(f"deviance {a['deviance']:.2f} / dof {a['dof']:.1f} = {a['deviance'] / max(a['dof'], 1):.3f} "
                      f"(p = {a['p_deviance']:.3g}); Pearson chi2 {a['pearson_chi2']:.2f} over {a['pearson_bins']} bins "
                      f"with model >= 1 (p = {a['p_pearson']:.3g}); "
                      f"lambda = {a['lambda']:.3g} ({a['lambda_criterion']})")
        text = con.export_text()
        if print_it:
            print(text)
        return text

    def fitted_experiment(self, i: int = 0) -> Experiment:
        """The experiment of one measurement at the fitted values.

        Parameters
        ----------
        i : int
            Index of the measurement.

        Returns
        -------
        Experiment
            A copy with the fitted profile, slow parameters (thickness, stopping, composition),
            TOF calibration and Q*Omega (as the fluence): :func:`~recoilsim.forward.simulate.simulate`
            of it is the full model at the solution.
        """
        if self.dataset is None:
            raise RecoilsimError("fitted_experiment", self.status, "a fit result with a dataset")
        if not 0 <= i < self._problem.M:
            raise RecoilsimError("fitted_experiment.i", i, f"a measurement index 0..{self._problem.M - 1}")
        return _fitted_experiment(self._problem, self.dataset["value"].values, i)

    def plot(self, path):
        """Data, model and residuals per spectrum; profile(s) with the 1-sigma band."""
        from ..plots.fit import plot_fit
        return plot_fit(self, path)

    def sample_posterior(self, n_steps: int = 3000, n_burn: int = 1000, n_walkers: int | None = None,
                         seed: int | None = 0, progress: bool = False) -> xr.Dataset:
        """A second uncertainty estimate: MCMC (emcee's affine-invariant ensemble sampler,
        Foreman-Mackey et al., PASP 125 (2013) 306) of the Poisson posterior around the fit.

        Log-posterior: the Poisson log-likelihood sum(d ln m - m) of the fitted model, minus
        the smoothness penalty / 2, flat within the parameter bounds. The model is the fit's
        final one: linear in the profile values (exact for the LinearModel at the fitted
        composition), exact in Q*Omega (m = s u), first order in the calibration and the slow
        parameters (their columns at the solution) -- so each step costs one matrix product
        and the sampler tests what the Jacobian band assumes (Gaussian likelihood, no bounds),
        not the non-linearity in a, b or thicknesses.

        Adds to the dataset (and returns it): ``profile_mcmc_median``, ``profile_mcmc_lo`` /
        ``_hi`` (15.87 / 84.13 % quantiles), ``profile_sigma_mcmc`` (half their distance),
        ``sigma_mcmc`` per parameter; attrs ``mcmc_acceptance``, ``mcmc_autocorr_steps`` (the
        largest integrated autocorrelation time, emcee's estimate), ``mcmc_samples``.
        Cost grows as walkers x data x free parameters per step: seconds for tens of free
        parameters; slow for 150.
        """
        import emcee

        if self.dataset is None:
            raise RecoilsimError("sample_posterior", self.status, "a fit result with a dataset")
        prob = self._problem
        ds = self.dataset
        p0 = ds["value"].values.astype(float)
        fr = prob.free.copy()
        d = prob.dvec()
        J, m0 = prob.jac_model(p0)
        # per-row scale parameter
        s_idx = np.concatenate([np.full(w.size, prob.i_s[mi]) for mi in range(prob.M) for w in prob.win[mi].values()])
        is_scale = np.zeros(p0.size, bool)
        is_scale[list(set(prob.i_s))] = True
        s0 = p0[s_idx]
        u0 = m0 / s0
        Ju = (J / s0[:, None])[:, fr & ~is_scale]  # du/dp for the non-scale free parameters
        cols = np.nonzero(fr & ~is_scale)[0]
        P = prob.penalty_matrix()
        lo, hi = prob.lo[fr], prob.hi[fr]
        ndim = int(fr.sum())
        nw = n_walkers or max(2 * ndim + 2, 32)
        nw += nw % 2

        def log_prob(X):
            X = np.atleast_2d(X)
            full = np.repeat(p0[None, :], X.shape[0], axis=0)
            full[:, fr] = X
            u = u0[None, :] + (full[:, cols] - p0[cols]) @ Ju.T
            m = full[:, s_idx] * u
            ok = np.all((X >= lo) & (X <= hi), axis=1) & np.all(m > 0, axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                ll = np.sum(d * np.log(np.where(m > 0, m, 1.0)) - m, axis=1)
                pen = 0.5 * np.einsum("ij,jk,ik->i", full, P, full)
            return np.where(ok, ll - pen, -np.inf)

        C = ds["covariance"].values[np.ix_(fr, fr)]
        rng = np.random.default_rng(seed)
        try:
            start = rng.multivariate_normal(p0[fr], C, size=nw, method="eigh")
        except (np.linalg.LinAlgError, ValueError):
            start = p0[fr] + 1e-3 * rng.standard_normal((nw, ndim)) * np.maximum(np.abs(p0[fr]), 1e-3)
        span = 1e-9 * np.where(np.isfinite(hi - lo), hi - lo, 1.0)
        start = np.clip(start, lo + span, hi - span)
        for _ in range(50):  # every walker must start where the posterior is > 0
            bad = ~np.isfinite(log_prob(start))
            if not bad.any():
                break
            start[bad] = p0[fr] + 0.5 * (start[bad] - p0[fr])
        sampler = emcee.EnsembleSampler(nw, ndim, log_prob, vectorize=True)
        sampler.random_state = np.random.RandomState(seed).get_state()  # reproducible moves
        sampler.run_mcmc(start, n_steps, progress=progress)
        chain = sampler.get_chain(discard=n_burn, flat=True)
        full = np.repeat(p0[None, :], chain.shape[0], axis=0)
        full[:, fr] = chain
        q = np.percentile(full, [15.87, 50.0, 84.13], axis=0)
        try:
            tau = float(np.max(sampler.get_autocorr_time(discard=n_burn, quiet=True)))
        except Exception:  # noqa: BLE001 - emcee raises its own error type for short chains
            tau = float("nan")
        ds["profile_mcmc_median"] = (("measurement", "depth"), np.array([q[1][ip] for ip in prob.i_prof]))
        ds["profile_mcmc_lo"] = (("measurement", "depth"), np.array([q[0][ip] for ip in prob.i_prof]))
        ds["profile_mcmc_hi"] = (("measurement", "depth"), np.array([q[2][ip] for ip in prob.i_prof]))
        ds["profile_sigma_mcmc"] = (("measurement", "depth"), 0.5 * (ds["profile_mcmc_hi"].values - ds["profile_mcmc_lo"].values))
        ds["sigma_mcmc"] = ("parameter", np.where(prob.free, 0.5 * (q[2] - q[0]), 0.0))
        ds.attrs.update(mcmc_acceptance=float(np.mean(sampler.acceptance_fraction)), mcmc_autocorr_steps=tau,
                        mcmc_samples=int(chain.shape[0]), mcmc_walkers=int(nw),
                        mcmc_method="emcee ensemble sampler on the fit's linearised Poisson posterior")
        return ds
