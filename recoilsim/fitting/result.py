"""The outcome of :func:`recoilsim.fitting.driver.fit`: :class:`FitResult`.

Its parameter table and summary, values by key (:meth:`FitResult.parameter`), the plot
(:mod:`recoilsim.plots.fit`), the experiment at the fitted values
(:meth:`FitResult.fitted_experiment`) and the second uncertainty estimate by MCMC of the
posterior (:meth:`FitResult.sample_posterior`, :mod:`recoilsim.fitting.mcmc`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

import copy

from ..errors import RecoilsimError
from ..model.experiment import Experiment
from .full_model import experiment_at

__all__ = ["FitResult"]


class FitResult:
    """Outcome of :func:`fit`.

    Attributes
    ----------
    status : str -- 'success', 'poor_fit' (converged, but the deviance lies far above what Poisson
        noise allows: the model does not describe the data; the message names the worst windows),
        'not_converged', 'no_counts', 'no_effect', 'degenerate' (Fisher matrix singular),
        'correlated' (two free parameters with |rho| > 0.99, at least one not a profile value:
        the message names them, a RuntimeWarning says the same; the dataset is complete and
        ``attrs['strong_correlations']`` lists the pairs)
    success : bool -- status 'success' only
    converged : bool -- 'success' or 'poor_fit': the minimum was found (whether or not the model fits)
    message : str
    dataset : xarray.Dataset -- profile(measurement, depth) with sigma / bootstrap sigma, every
        parameter with error, measured / fitted spectra and deviance residuals per
        (measurement, element, channel) (NaN outside the windows), covariance and correlation;
        goodness of fit in attrs.
    """

    def __init__(self, status, message, dataset=None, problem=None):
        self.status = status
        self.success = status == "success"
        self.converged = status in ("success", "poor_fit")
        self.message = message
        self.dataset = dataset
        self.problem = problem

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
            if a.get("resolution_warning"):
                con.print("warning: " + a["resolution_warning"])
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
        if not 0 <= i < self.problem.M:
            raise RecoilsimError("fitted_experiment.i", i, f"a measurement index 0..{self.problem.M - 1}")
        return copy.deepcopy(experiment_at(self.problem, self.dataset["value"].values, i))

    def parameter(self, quantity: tuple, measurement: int | None = None) -> tuple[float, float]:
        """(value, sigma) of the fitted quantity, by key.

        Parameters
        ----------
        quantity : tuple
            A :mod:`recoilsim.fitting.registry` key of a slow parameter (e.g. ``("thickness", 0)``,
            ``("ratio", 0, "Mn")``), ``("calibration_a",)``, ``("calibration_b",)``, ``("scale",)``
            or ``("profile", k)`` (node k of the profile).
        measurement : int, optional
            For per-measurement values (profiles, 'each' calibration or scale); shared ones answer
            for any measurement.
        """
        if self.dataset is None:
            raise RecoilsimError("parameter", self.status, "a fit result with a dataset")
        j = self.problem.vec.index(quantity, measurement)
        return float(self.dataset["value"].values[j]), float(self.dataset["sigma"].values[j])

    def profile_covariance(self, i: int = 0):
        """Covariance (n_nodes, n_nodes) of measurement i's profile values."""
        if self.dataset is None:
            raise RecoilsimError("profile_covariance", self.status, "a fit result with a dataset")
        ip = self.problem.vec.i_prof[i]
        return self.dataset["covariance"].values[np.ix_(ip, ip)]

    def sample_posterior(self, n_steps: int = 3000, n_burn: int = 1000, n_walkers: int | None = None,
                         seed: int | None = 0, progress: bool = False) -> xr.Dataset:
        """A second uncertainty estimate: MCMC of the Poisson posterior around the fit
        (:func:`recoilsim.fitting.mcmc.sample_posterior`, whose docstring says what it adds to
        the dataset)."""
        from .mcmc import sample_posterior
        if self.dataset is None:
            raise RecoilsimError("sample_posterior", self.status, "a fit result with a dataset")
        return sample_posterior(self, n_steps, n_burn, n_walkers, seed, progress)

    def plot(self, path):
        """Data, model and residuals per spectrum; profile(s) with the 1-sigma band."""
        from ..plots.fit import plot_fit
        return plot_fit(self, path)

