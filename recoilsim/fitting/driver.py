"""Fitting TOF-ERDA spectra: depth profile of one element (Li first) plus nuisance parameters.

:func:`fit` is the entry point: it checks the inputs, reports the plain failures (no counts,
parameters without effect), runs the solver's outer loop and turns the solution into a
:class:`FitResult`; the CLI's file handling is :mod:`recoilsim.workflows.fit_spectra`. The fit
package, one topic per module:

* :mod:`~recoilsim.fitting.parameters` -- what to fit (:class:`FitParameters`, :class:`Parameter`,
  :class:`SlowParameter`, :class:`ProfileShape`);
* :mod:`~recoilsim.fitting.registry` -- keyed getters/setters of any fittable quantity of an
  Experiment (``("thickness", layer)``, ``("ratio", layer, element)``, ...);
* :mod:`~recoilsim.fitting.likelihood` -- Poisson deviance, residuals, Pearson chi2,
  log-likelihood, the goodness-of-fit verdict;
* :mod:`~recoilsim.fitting.vector` -- the parameter vector; :mod:`~recoilsim.fitting.windows` --
  measured spectra and fit windows; :mod:`~recoilsim.fitting.linearised` -- model groups, the
  linearised model and its Jacobian; :mod:`~recoilsim.fitting.stopping_correction`;
  :mod:`~recoilsim.fitting.full_model` -- the full simulation at a parameter vector;
  :mod:`~recoilsim.fitting.problem` -- the pieces held together;
* :mod:`~recoilsim.fitting.solver` -- least squares, smoothing strength (GCV), outer loop;
  :mod:`~recoilsim.fitting.smoothing_evidence` -- smoothing strength by the evidence (default)
  and the band mixed over strengths;
* :mod:`~recoilsim.fitting.outcome` -- covariance, status and verdict, the result dataset;
  :mod:`~recoilsim.fitting.result` -- :class:`FitResult`; :mod:`~recoilsim.fitting.mcmc`.

Uncertainties
-------------
Covariance from the Fisher information of the Poisson model with the penalty as a Gaussian
smoothness prior, ``C = (F + P)^-1``, and the sandwich ``(F+P)^-1 F (F+P)^-1``
(:mod:`~recoilsim.fitting.outcome`). With the default ``regularization='evidence'`` the strength
is the one of largest Laplace evidence and ``C`` is replaced by the evidence-weighted mixture of
the strengths' posteriors (:mod:`~recoilsim.fitting.smoothing_evidence`). Measured
(benchmarks/coverage_fit.py shapes, 50 nodes, 20 seeds, multiple scattering off; table in
docs/depth_profiles.md): 1-sigma / 2-sigma coverage 0.61 / 0.88 (buried bump), 0.68 / 0.93
(dip), 0.70 / 0.95 (ramp) with the evidence, 0.62 / 0.89, 0.66 / 0.91, 0.63 / 0.91 with GCV;
the misses sit at sharp features, where the smoothing bias is not in the band. With GCV on the
interface excess (benchmarks/coverage_fit.py gcv, 50 seeds): 0.62 (Bayesian) / 0.58 (sandwich),
2-sigma 0.90 / 0.87. Without smoothing on a grid the data resolve (7 nodes), the joint
three-potential fit with free calibration, Q*Omega and Cu thickness covers at 0.66 (1 sigma) and
0.93 (2 sigma) over 60 seeds x 21 nodes. Second methods: parametric bootstrap (Poisson resamples
of the fitted model, each refitted in full from the solution) and MCMC of the posterior
(:meth:`FitResult.sample_posterior`).
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import RecoilsimError
from ..model.experiment import Experiment
from .blas_threads import one_blas_thread
from .depth_resolution import annotate_fit
from .likelihood import FLOOR, deviance
from .outcome import finish
from .parameters import FitParameters, Parameter, ProfileShape, SlowParameter
from .problem import Problem
from .result import FitResult
from .smoothing_evidence import apply_mixture, evidence_mixture
from .solver import outer_loop, solve
from .windows import as_spectra, describe_windows

__all__ = ["FitParameters", "FitResult", "Parameter", "ProfileShape", "SlowParameter", "deviance", "fit"]


def _fail(status, msg, problem=None):
    return FitResult(status, msg, None, problem)


def fit(experiment, measured, parameters: FitParameters | None = None, n_bootstrap: int = 0,
        seed: int | None = 0, progress: bool = False, verify: bool = True) -> FitResult:
    """Fit measured spectra.

    Parameters
    ----------
    experiment : Experiment or list of Experiment
        One experiment for all measurements, or one per measurement (same instrument and
        layer structure; profiles of the fitted element are ignored: they are what is fitted).
    measured : spectra of one measurement or a list of them
        Each: {element: counts}, an xarray DataArray (dims element, channel or channel with an
        element name) or a Dataset with ``counts`` (as :func:`simulate` returns).
    parameters : FitParameters
    n_bootstrap : int
        Parametric bootstrap resamples (full refits) for the second uncertainty estimate.
    verify : bool
        Run a full :func:`simulate` with the fitted profile and store the largest relative
        difference to the fitted model in the windows (``attrs['full_model_max_rel_diff']``).

    Returns
    -------
    FitResult
        Status 'success', 'poor_fit' (converged, model outside counting statistics), or a failure
        status (:class:`FitResult`). BLAS is held to one thread while the fit runs. The dataset
        holds the depth resolution at the nodes (``depth_resolution_nm``; a
        :class:`~recoilsim.fitting.depth_resolution.NodeSpacingWarning` when the nodes lie closer
        than a quarter of it, :mod:`recoilsim.fitting.depth_resolution`).
    """
    with one_blas_thread():
        res = _fit(experiment, measured, parameters, n_bootstrap, seed, progress, verify)
    annotate_fit(res)  # depth resolution at the nodes; warns when the nodes are much finer
    return res


def _fit(experiment, measured, parameters: FitParameters | None = None, n_bootstrap: int = 0,
         seed: int | None = 0, progress: bool = False, verify: bool = True) -> FitResult:
    """The fit (:func:`fit` without the BLAS thread limit)."""
    t_start = time.perf_counter()
    par = parameters or FitParameters()
    if isinstance(measured, (list, tuple)):
        meas = list(measured)
    else:
        meas = [measured]
    if not meas:
        raise RecoilsimError("measured", measured, "at least one spectrum")
    exps = list(experiment) if isinstance(experiment, (list, tuple)) else [experiment] * len(meas)
    if len(exps) != len(meas):
        raise RecoilsimError("experiment", f"{len(exps)} experiments", f"one per measurement ({len(meas)})")
    for e in exps:
        if not isinstance(e, Experiment):
            raise RecoilsimError("experiment", type(e).__name__, "an Experiment")
    reg = par.regularization
    if not (reg in ("gcv", "evidence") or (isinstance(reg, (int, float)) and reg >= 0)):
        raise RecoilsimError("regularization", reg, "'evidence', 'gcv' or a number >= 0")
    for sp in par.slow:
        if sp.kind in ("ratio", "fraction") and sp.element == par.element:
            raise RecoilsimError(f"slow[{sp.name}]", sp.element,
                                 f"an element other than the profiled one ({par.element}: fit it with the profile)")
    n_ch = exps[0].detector.n_channels
    els = list(exps[0].recoils)
    data = [as_spectra(m, els, n_ch, i) for i, m in enumerate(meas)]
    for i, dm in enumerate(data):
        if not dm:
            raise RecoilsimError(f"measured[{i}]", dm, "at least one element spectrum")
    if par.shape is not None:
        if not isinstance(par.shape, ProfileShape):
            raise RecoilsimError("shape", type(par.shape).__name__, "a ProfileShape or None")
        reg = 0.0  # the shape is the smoothness
    lam0 = 1e-9 if reg in ("gcv", "evidence") else float(reg)
    prob = Problem(exps, data, par, lam0)
    d = prob.dvec()
    # -- plain failures before fitting
    if d.sum() <= 0:
        return _fail("no_counts", f"no counts in the fit windows ({describe_windows(prob.win)}); nothing to fit", prob)
    for mi in range(prob.M):
        if prob.el in prob.win[mi] and data[mi][prob.el][prob.win[mi][prob.el]].sum() <= 0:
            return _fail("no_counts", f"measurement {mi}: no {prob.el} counts in its window; the profile cannot be fitted",
                         prob)
    J0, m0 = prob.jac_model(prob.p)
    colnorm = np.sqrt((J0 ** 2 / np.maximum(m0, FLOOR)[:, None]).sum(0))
    ref = np.median(colnorm[prob.free & (colnorm > 0)]) if np.any(prob.free & (colnorm > 0)) else 1.0
    dead = [prob.names[j] for j in np.nonzero(prob.free)[0] if colnorm[j] <= 1e-10 * ref]
    if dead:
        return _fail("no_effect", f"{len(dead)} free parameter(s) have no effect on the spectra in the windows "
                     f"(zero Jacobian column): {', '.join(dead[:8])}{' ...' if len(dead) > 8 else ''}; "
                     "fix them, move the depth nodes into the probed range or widen the windows", prob)
    if reg != "evidence":
        sol, criterion = outer_loop(prob, d, gcv=reg == "gcv")
        return finish(prob, d, sol, criterion, n_bootstrap, seed, progress, verify, t_start)
    # evidence: the strength of largest evidence on the linearisation at an almost unregularised
    # solution, the fit there, and the band mixed over strengths at the solution
    # (recoilsim.fitting.smoothing_evidence)
    _, p0 = solve(prob, d)
    prob.lam = evidence_mixture(prob, d, p0).best
    sol, _ = outer_loop(prob, d, gcv=False)
    mix = evidence_mixture(prob, d, prob.p)
    res = finish(prob, d, sol, "evidence (Laplace), band mixed over lambda", n_bootstrap, seed, progress, verify,
                 t_start)
    if res.dataset is not None:
        apply_mixture(res.dataset, prob, mix)
    return res
