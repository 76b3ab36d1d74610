"""Fitting TOF-ERDA spectra: depth profile of one element (Li first) plus nuisance parameters.

:func:`fit` is the driver: it checks the inputs, runs the outer loop (slow parameters,
re-linearisation, trust region), chooses the regularisation and turns the solution into a
:class:`FitResult` (covariance, goodness of fit, optional bootstrap); the CLI's file handling is
:mod:`recoilsim.workflows.fit_spectra`. The pieces live in :mod:`recoilsim.fitting.parameters` (what to fit),
:mod:`recoilsim.fitting.problem` (the model, its Jacobian and the least-squares solve; notes on the
model and the likelihood there) and :mod:`recoilsim.fitting.result` (the result: table, plot, MCMC);
their public names are re-exported here.

Statistics
----------
Poisson likelihood, minimised as the deviance (:mod:`recoilsim.fitting.problem`). Goodness of fit:
D / dof over all fitted bins, dof = n - p_eff with p_eff = tr((F + P)^-1 F) the effective number
of parameters, and Pearson chi2 = sum (d - m)^2 / m over the bins where the model expects at
least one count (``pearson_bins`` of them, dof = pearson_bins - p_eff), both with chi2 p-values:
in a bin with m << 1 a single count adds 1/m to Pearson's sum (a real spectrum with a few events
where the model has none gave 2e9), so there only the deviance is meaningful.

Regularisation
--------------
Second-difference penalty ``lambda * sum_m ||L v_m||^2`` on each profile. The strength is
chosen by generalised cross-validation (Wahba 1977; Craven & Wahba 1979) on the
Poisson-weighted linearisation at an almost unregularised fit:
``GCV(lambda) = n D(lambda) / (n - p_eff(lambda))^2``; or given as a number (0: none).

Uncertainties
-------------
Covariance from the Fisher information of the Poisson model, F = J^T diag(1/m) J (J = dm/dp),
with the penalty added as a Gaussian smoothness prior: ``C = (F + P)^-1`` (the Bayesian
posterior covariance; with lambda = 0 it is the usual inverse Fisher matrix). With
regularisation the estimate is biased towards smooth profiles; C is wider than the frequentist
sandwich ``(F+P)^-1 F (F+P)^-1`` (also stored, ``sigma_sandwich``) and partly covers that bias,
but not fully. Measured (benchmarks/coverage_fit.py, 50 seeds, 50 nodes, interface excess, GCV):
1-sigma coverage 0.62 (Bayesian) / 0.58 (sandwich), 2-sigma 0.90 / 0.87; the smoothing flattens
the interface peak (mean z -2.0 at 0 nm, +0.6 at 15-25 nm). Without smoothing on a grid the
data resolve (7 nodes), the joint three-potential fit with free calibration, Q*Omega and Cu
thickness covers at 0.66 (1 sigma) and 0.93 (2 sigma) over 60 seeds x 21 nodes.
Second methods: parametric bootstrap (Poisson resamples of the fitted model, each refitted in
full from the solution) and MCMC of the posterior (:meth:`FitResult.sample_posterior`).
"""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import xarray as xr
from scipy import stats

from ..errors import RecoilsimError
from ..model.experiment import Experiment
from .parameters import FitParameters, Parameter, ProfileShape, SlowParameter
from .problem import (
    TINY,
    _as_spectra,
    _dev_res,
    _Problem,
    deviance,
    fitted_experiment,
)
from .result import FitResult

__all__ = ["FitParameters", "FitResult", "Parameter", "ProfileShape", "SlowParameter", "deviance", "fit"]


RHO_MAX = 0.99  # |correlation| above which two parameters count as not separable


def _strong_correlations(prob, C, fr) -> list:
    """Pairs of free parameters with |rho| > RHO_MAX, at least one of them not a profile value
    (neighbouring profile values are correlated by design; the smoothing prior handles them),
    and not the calibration pair a, b (offset and gain are anticorrelated ~ -0.99 by their
    parametrisation t = a ch + b with ch ~ 500-1000, while the times they give are well fixed)."""
    if not np.all(np.isfinite(C)):
        return []
    sd = np.sqrt(np.maximum(np.diag(C), 1e-300))
    with np.errstate(over="ignore", invalid="ignore"):
        R = C / np.outer(sd, sd)
    names = np.array(prob.names)[fr]
    prof = np.zeros(prob.p.size, bool)
    for ip in prob.i_prof:
        prof[ip] = True
    prof = prof[fr]
    out = []
    for i in range(R.shape[0]):
        for j in range(i + 1, R.shape[0]):
            calib = {names[i].split("[")[0], names[j].split("[")[0]} == {"a_ns", "b_ns"}
            if abs(R[i, j]) > RHO_MAX and not (prof[i] and prof[j]) and not calib:
                out.append((str(names[i]), str(names[j]), float(R[i, j])))
    return sorted(out, key=lambda t: -abs(t[2]))


def _fail(status, msg, problem=None):
    return FitResult(status, msg, None, problem)


def _choose_lambda(prob: _Problem, d, p0, J, m):
    """GCV on the Poisson-weighted linearisation at an (almost) unregularised solution p0."""
    fr = prob.free
    Jw = (J / np.sqrt(np.maximum(m, TINY))[:, None])[:, fr]
    F = Jw.T @ Jw
    P1 = np.zeros((prob.p.size, prob.p.size))
    for ip in prob.i_prof:
        P1[np.ix_(ip, ip)] += prob.L.T @ prob.L
    P1 = P1[np.ix_(fr, fr)]
    x0 = p0[fr]
    r0 = (d - m) / np.sqrt(np.maximum(m, TINY))
    n = d.size
    scale = np.trace(F) / max(np.trace(P1), 1e-300)
    best = (np.inf, 0.0)
    grid = scale * np.logspace(-6, 4, 41)
    for lam in grid:
        Hm = F + lam * P1
        try:
            dx = np.linalg.solve(Hm, Jw.T @ r0 - lam * P1 @ x0)
            tr = np.trace(np.linalg.solve(Hm, F))
        except np.linalg.LinAlgError:
            continue
        rss = np.sum((r0 - Jw @ dx) ** 2)
        g = n * rss / max(n - tr, 1.0) ** 2
        if g < best[0]:
            best = (g, lam)
    return best[1]


def _one_blas_thread():
    """Context that holds BLAS to one thread (threadpoolctl; a no-op without it).

    The fit's matrices are small (a few thousand rows, < 200 columns): OpenBLAS threads gain
    nothing there and, on a shared 2-core machine, spin against the other processes. Measured on
    the reference fit benchmark: 0.14 s with one thread; 0.25-0.37 s with two while another
    process ran, and 0.5-4.8 s (median 2.9 s, the old benchmark figure) under heavier load.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def fit(experiment, measured, parameters: FitParameters | None = None, n_bootstrap: int = 0,
        seed: int | None = 0, progress: bool = False, verify: bool = True) -> FitResult:
    """Fit measured spectra (see :func:`_fit`; BLAS held to one thread while it runs)."""
    with _one_blas_thread():
        return _fit(experiment, measured, parameters, n_bootstrap, seed, progress, verify)


def _fit(experiment, measured, parameters: FitParameters | None = None, n_bootstrap: int = 0,
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
    """
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
    if not (reg == "gcv" or (isinstance(reg, (int, float)) and reg >= 0)):
        raise RecoilsimError("regularization", reg, "'gcv' or a number >= 0")
    for sp in par.slow:
        if sp.kind in ("ratio", "fraction") and sp.element == par.element:
            raise RecoilsimError(f"slow[{sp.name}]", sp.element,
                                 f"an element other than the profiled one ({par.element}: fit it with the profile)")
    n_ch = exps[0].detector.n_channels
    els = list(exps[0].recoils)
    data = [_as_spectra(m, els, n_ch, i) for i, m in enumerate(meas)]
    for i, dm in enumerate(data):
        if not dm:
            raise RecoilsimError(f"measured[{i}]", dm, "at least one element spectrum")
    if par.shape is not None:
        if not isinstance(par.shape, ProfileShape):
            raise RecoilsimError("shape", type(par.shape).__name__, "a ProfileShape or None")
        reg = 0.0  # the shape is the smoothness
    lam0 = 1e-9 if reg == "gcv" else float(reg)
    prob = _Problem(exps, data, par, lam0)
    d = prob.dvec()
    # -- plain failures before fitting
    if d.sum() <= 0:
        wins = ", ".join(f"{m}:{e}[{w[0]}..{w[-1]}]" if w.size else f"{m}:{e}[empty]"
                         for m in range(prob.M) for e, w in prob.win[m].items())
        return _fail("no_counts", f"no counts in the fit windows ({wins}); nothing to fit", prob)
    for mi in range(prob.M):
        if prob.el in prob.win[mi] and data[mi][prob.el][prob.win[mi][prob.el]].sum() <= 0:
            return _fail("no_counts", f"measurement {mi}: no {prob.el} counts in its window; the profile cannot be fitted",
                         prob)
    J0, m0 = prob.jac_model(prob.p)
    colnorm = np.sqrt((J0 ** 2 / np.maximum(m0, TINY)[:, None]).sum(0))
    ref = np.median(colnorm[prob.free & (colnorm > 0)]) if np.any(prob.free & (colnorm > 0)) else 1.0
    dead = [prob.names[j] for j in np.nonzero(prob.free)[0] if colnorm[j] <= 1e-10 * ref]
    if dead:
        return _fail("no_effect", f"{len(dead)} free parameter(s) have no effect on the spectra in the windows "
                     f"(zero Jacobian column): {', '.join(dead[:8])}{' ...' if len(dead) > 8 else ''}; "
                     "fix them, move the depth nodes into the probed range or widen the windows", prob)
    # -- fit (outer loop: slow parameters and re-linearisation). With free slow parameters the
    # outer loop is a trust-region method on the full model: a solve may move each slow
    # parameter by prob.radius steps; the step is kept only if the full simulation's objective
    # went down (else the radius shrinks 4x), and the radius doubles (up to 10) when a step
    # reached it. This keeps strongly coupled slow parameters (film thickness and composition)
    # from swinging between the bounds of the quadratic model.
    criterion = "given"
    sol = None
    outer_ok = True
    slow_free = any(prob.free[i] for i in prob.i_slow)
    f_acc = None
    if slow_free and par.relinearize and par.stopping_jacobian:
        # the stopping correction from the start: without it the first solve moves the profile
        # (Li + 16 % on the Potku film) and, through it, the slow parameters along a direction
        # the full model rejects; the trust radius then collapses and the slow parameters crawl
        prob.stopping_columns(prob.p)
    for it in range(par.max_outer):
        sol, p = prob.solve(d, None)
        if it == 0 and reg == "gcv":
            J, m = prob.jac_model(p)
            prob.lam = _choose_lambda(prob, d, p, J, m)
            criterion = "generalized cross-validation"
            sol, p = prob.solve(d, None)
        if slow_free:
            if f_acc is None:
                f_acc = prob.full_objective(d, prob.p)
            f_new = prob.full_objective(d, p)
            if f_new > f_acc + 0.5 and prob.radius > 0.05:  # 0.5: the full model's own noise (thin
                # films re-grid their bricks as the thickness moves: +-0.5 in the deviance)
                prob.radius /= 4.0  # rejected: same centre, smaller region
                outer_ok = False
                continue
            x = max(abs(p[i] - s0) / h for i, s0, h in zip(prob.i_slow, prob.slow0, prob.slow_h))
            if x >= 0.99 * prob.radius:
                prob.radius = min(2.0 * prob.radius, 10.0)
            f_acc = f_new
        prob.p = p
        # rebuild the models where the solution left the linearisation point: a slow parameter
        # moved by more than 5 % of its step, or a profile value by more than relinearize_tol.
        # Once the full model's noise has rejected a step (radius < 10), a move below 20 % of
        # the parameter's sigma also counts as settled (a thin film's re-gridded bricks make
        # +-0.5 of deviance noise that no smaller move can beat).
        moves = [abs(p[i] - s0) / h for i, s0, h in zip(prob.i_slow, prob.slow0, prob.slow_h)]
        if prob.radius < 10.0 and moves:
            moves = [min(x, 0.25 * abs(p[i] - s0) / sg)
                     for x, i, s0, sg in zip(moves, prob.i_slow, prob.slow0, prob.slow_sigma(d, p))]
        moved = max(moves, default=0.0)
        rebase = par.relinearize and prob.relinearize(p, par.relinearize_tol)
        outer_ok = moved <= 0.05
        if outer_ok and not rebase:
            break
        if it == par.max_outer - 1:
            if not outer_ok:  # centre the models at the last solution: the covariance (and the
                prob.build_models()  # correlations that explain the wandering) are then local
            break
        prob.build_models()
        if par.relinearize and par.stopping_jacobian:
            # at every re-centring: the correction lives on channels, and a moved thickness or
            # calibration moves the features under it (stale, it made the fit creep)
            prob.stopping_columns(p)
    prob.outer = {"iterations": int(it + 1), "converged": bool(outer_ok)}
    return _finish(prob, d, sol, criterion, n_bootstrap, seed, progress, verify, t_start)


def _finish(prob, d, sol, criterion, n_bootstrap, seed, progress, verify, t_start):
    p = prob.p
    fr = prob.free
    J, m = prob.jac_model(p)
    Jw = (J / np.sqrt(np.maximum(m, TINY))[:, None])[:, fr]
    F = Jw.T @ Jw
    P = prob.penalty_matrix()[np.ix_(fr, fr)]
    H = F + P
    status, msg = "success", sol.message
    ev = np.linalg.eigvalsh(H / np.sqrt(np.outer(np.diag(H), np.diag(H)) + 1e-300))
    cond = ev[-1] / max(ev[0], 1e-300)
    try:
        C = np.linalg.inv(H)
        Csand = C @ F @ C
    except np.linalg.LinAlgError:
        C = np.full_like(H, np.nan)
        Csand = C
    if cond > 1e12 or not np.all(np.isfinite(C)):
        _w, V = np.linalg.eigh(H / np.sqrt(np.outer(np.diag(H), np.diag(H)) + 1e-300))
        null = V[:, 0]
        names = np.array(prob.names)[fr][np.argsort(-np.abs(null))[:4]]
        status = "degenerate"
        msg = ("the free parameters are not all identifiable from these spectra (Fisher matrix condition "
               f"{cond:.3g}); the combination involves {', '.join(names)}; fix one of them or add spectra "
               "(e.g. other elements to pin Q*Omega)")
    elif not sol.success or sol.status == 0:
        status = "not_converged"
        msg = f"the minimiser did not converge ({sol.message}; {sol.nfev} evaluations)"
    elif not getattr(prob, "outer", {}).get("converged", True):
        status = "not_converged"
        msg = (f"the slow parameters were still moving after {prob.outer['iterations']} re-simulations "
               "(max_outer): the result is not at the linearisation point; raise max_outer or start closer")
    pairs = _strong_correlations(prob, C, fr) if status != "degenerate" else []
    if pairs and status in ("success", "not_converged"):
        txt = "; ".join(f"{a} ~ {b} (rho = {r:+.4f})" for a, b, r in pairs[:4])
        msg = (f"{len(pairs)} pair(s) of free parameters are almost perfectly correlated (|rho| > {RHO_MAX}): {txt}. "
               "The data fix only their combination; their separate values and sigmas mean little: fix one of each "
               "pair (e.g. a known thickness) or add data that separate them"
               + (f" (the fit did not settle either: {msg})" if status == "not_converged" else ""))
        status = "correlated"
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
    dev = deviance(d, m)
    p_eff = float(np.trace(np.linalg.solve(H, F))) if status != "degenerate" else float(fr.sum())
    dof = max(d.size - p_eff, 1.0)
    big = m >= 1.0  # Pearson's chi2 only where the model expects a count or more (module docstring)
    pearson = float(np.sum((d[big] - m[big]) ** 2 / m[big]))
    dof_pearson = max(int(big.sum()) - p_eff, 1.0)
    # bootstrap
    boot = None
    if n_bootstrap and status == "success":
        rng = np.random.default_rng(seed)
        boot = np.zeros((n_bootstrap, p.size))
        it = range(n_bootstrap)
        if progress:
            from rich.progress import track
            it = track(it, description="bootstrap")
        saved = p.copy()
        for k in it:
            dk = rng.poisson(m).astype(float)
            _, pk = prob.solve(dk, saved[fr].copy(), max_nfev=30)
            boot[k] = pk
            prob.p = saved
    ds = _dataset(prob, d, p, C, Csand, fr, boot)
    ds.attrs.update(
        status=status, message=str(msg), deviance=dev, pearson_chi2=pearson, dof=dof, p_eff=p_eff,
        n_data=int(d.size), p_deviance=float(stats.chi2.sf(dev, dof)), pearson_bins=int(big.sum()),
        p_pearson=float(stats.chi2.sf(pearson, dof_pearson)),
        reduced_deviance=dev / dof, **{"lambda": prob.lam}, lambda_criterion=criterion, nfev=int(sol.nfev),
        fisher_condition=float(cond),
        strong_correlations=json.dumps(pairs),
        uncertainty="sigma: sqrt(diag((F + P)^-1)), F = J^T diag(1/m) J Poisson Fisher information, P = lambda L^T L "
                    "smoothness prior; sigma_sandwich: (F+P)^-1 F (F+P)^-1 (frequentist, excludes regularisation bias)",
        likelihood="Poisson deviance 2 sum(m - d + d ln(d/m)) (Baker & Cousins 1984), scipy least_squares on signed "
                   "deviance residuals",
    )
    if verify and status == "success":
        ds.attrs["full_model_max_rel_diff"] = _verify(prob, p)
    ds.attrs["fit_time_s"] = time.perf_counter() - t_start
    if status == "success":
        msg = f"converged ({sol.message.strip()})"
    if verify and status == "correlated":
        ds.attrs["full_model_max_rel_diff"] = _verify(prob, p)
    return FitResult(status, str(msg), ds, prob)


def _verify(prob, p) -> float:
    """Largest |full simulation - fitted model| / max(fitted model, 1) over the windows."""
    from ..forward.simulate import simulate
    worst = 0.0
    mod = prob.model(p)
    for mi in range(prob.M):
        ds = simulate(fitted_experiment(prob, p, mi))
        for e, w in prob.win[mi].items():
            full = ds["counts"].sel(element=e).values[w]
            dm = np.abs(full - mod[mi][e]) / np.maximum(np.abs(mod[mi][e]).max(), 1.0)
            worst = max(worst, float(dm.max()) if dm.size else 0.0)
    return worst


def _dataset(prob, d, p, C, Csand, fr, boot):
    n_full = p.size
    cov = np.zeros((n_full, n_full))
    cov[np.ix_(fr, fr)] = C
    covs = np.zeros((n_full, n_full))
    covs[np.ix_(fr, fr)] = Csand
    if prob.i_shape:  # profile values derived from the shape: propagate (delta method)
        T = prob.shape_map(p)
        cov, covs = T @ cov @ T.T, T @ covs @ T.T
    sig = np.sqrt(np.maximum(np.diag(cov), 0))
    sigs = np.sqrt(np.maximum(np.diag(covs), 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sig, sig)
    prof = np.array([p[ip] for ip in prob.i_prof])
    psig = np.array([sig[ip] for ip in prob.i_prof])
    psigs = np.array([sigs[ip] for ip in prob.i_prof])
    n_ch = prob.exps[0].detector.n_channels
    els = sorted({e for w in prob.win for e in w}, key=lambda e: (e != prob.el, e))
    meas = np.full((prob.M, len(els), n_ch), np.nan)
    fitm = np.full_like(meas, np.nan)
    mod = prob.model(p)
    for mi in range(prob.M):
        for e, w in prob.win[mi].items():
            k = els.index(e)
            meas[mi, k] = prob.data[mi][e]
            fitm[mi, k, w] = mod[mi][e]
    with np.errstate(invalid="ignore", divide="ignore"):
        r, _ = _dev_res(np.nan_to_num(meas), np.nan_to_num(fitm, nan=1.0))
    resid = np.where(np.isnan(fitm), np.nan, r)
    ds = xr.Dataset(
        {
            "profile": (("measurement", "depth"), prof),
            "profile_sigma": (("measurement", "depth"), psig),
            "profile_sigma_sandwich": (("measurement", "depth"), psigs),
            "value": ("parameter", p),
            "sigma": ("parameter", sig),
            "sigma_sandwich": ("parameter", sigs),
            "free": ("parameter", fr),
            "lower": ("parameter", prob.lo),
            "upper": ("parameter", prob.hi),
            "covariance": (("parameter", "parameter2"), cov),
            "correlation": (("parameter", "parameter2"), corr),
            "measured": (("measurement", "element", "channel"), meas),
            "fitted": (("measurement", "element", "channel"), fitm),
            "residual": (("measurement", "element", "channel"), resid),
        },
        coords={"measurement": np.arange(prob.M), "depth_nm": ("depth", prob.nodes), "parameter": prob.names,
                "parameter2": prob.names, "element": els, "channel": np.arange(n_ch)},
    )
    ds["profile"].attrs.update(long_name=f"{prob.el} ratio to the nominal atomic fraction", units="1")
    ds["residual"].attrs.update(long_name="signed Poisson deviance residual")
    if boot is not None:
        ds["profile_sigma_bootstrap"] = (("measurement", "depth"), np.array([boot[:, ip].std(0, ddof=1) for ip in prob.i_prof]))
        ds["profile_bootstrap_lo"] = (("measurement", "depth"), np.array([np.percentile(boot[:, ip], 15.87, 0) for ip in prob.i_prof]))
        ds["profile_bootstrap_hi"] = (("measurement", "depth"), np.array([np.percentile(boot[:, ip], 84.13, 0) for ip in prob.i_prof]))
        ds["sigma_bootstrap"] = ("parameter", boot.std(0, ddof=1))
        ds.attrs["n_bootstrap"] = int(boot.shape[0])
    return ds
