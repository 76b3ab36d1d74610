"""From a solved :class:`~recoilsim.fitting.problem.Problem` to a :class:`~recoilsim.fitting.result.FitResult`.

Covariance from the Fisher information of the Poisson model, F = J^T diag(1/m) J (J = dm/dp),
with the penalty added as a Gaussian smoothness prior: ``C = (F + P)^-1`` (the Bayesian
posterior covariance; with lambda = 0 the inverse Fisher matrix); also the frequentist sandwich
``(F+P)^-1 F (F+P)^-1``. Goodness of fit: D / dof over all fitted bins, dof = n - p_eff with
p_eff = tr((F + P)^-1 F), and Pearson's chi2 over the bins where the model expects at least one
count, both with chi2 p-values.

Status, in order: 'degenerate' (Fisher matrix singular or condition > 1e12), 'not_converged'
(the minimiser or the outer loop), 'correlated' (two free parameters with |rho| > 0.99, at least
one not a profile value, not the calibration pair), 'poor_fit' (the deviance lies far above what
Poisson noise allows, :func:`recoilsim.fitting.likelihood.goodness_verdict`; the message names
the windows that contribute most), else 'success'.
"""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import xarray as xr
from scipy import stats

from ..forward.reporting import reporter
from .full_model import max_model_difference
from .likelihood import deviance, deviance_residuals, goodness_verdict, pearson_chi2
from .problem import Problem
from .result import FitResult
from .solver import fisher, solve, weighted_jacobian

__all__ = ["RHO_MAX", "finish"]

RHO_MAX = 0.99  # |correlation| above which two parameters count as not separable
CONDITION_MAX = 1e12


def strong_correlations(prob: Problem, C, fr) -> list:
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
    quantity = np.array([k[0][0] for k, f in zip(prob.vec.keys, fr) if f], dtype=object)
    prof = prob.vec.profile_mask()[fr]
    qa, qb = quantity == "calibration_a", quantity == "calibration_b"
    i, j = np.triu_indices(R.shape[0], 1)  # every pair i < j, row by row
    calib = (qa[i] & qb[j]) | (qb[i] & qa[j])
    hit = (np.abs(R[i, j]) > RHO_MAX) & ~(prof[i] & prof[j]) & ~calib
    out = [(str(names[a]), str(names[b]), float(R[a, b])) for a, b in zip(i[hit], j[hit])]
    return sorted(out, key=lambda t: -abs(t[2]))


def worst_windows(prob: Problem, d, m, n: int = 3) -> str:
    """The ``n`` windows with the largest deviance per bin, as 'measurement m element e channels
    lo-hi: D/bins = x' (for the poor_fit message)."""
    rows, row = [], 0
    for mi in range(prob.M):
        for e, w in prob.win[mi].items():
            sl = slice(row, row + w.size)
            row += w.size
            if w.size:
                dev = deviance(d[sl], m[sl])
                rows.append((dev / w.size, f"measurement {mi} {e} channels {w[0]}-{w[-1]}: deviance/bins = "
                             f"{dev:.4g}/{w.size} = {dev / w.size:.3g}"))
    return "; ".join(t for _, t in sorted(rows, key=lambda r: -r[0])[:n])


def _status(prob, sol, H, C):
    """Status and message from the conditioning, the minimiser and the outer loop."""
    Hn = H / np.sqrt(np.outer(np.diag(H), np.diag(H)) + 1e-300)
    ev, V = np.linalg.eigh(Hn)
    cond = ev[-1] / max(ev[0], 1e-300)
    if cond > CONDITION_MAX or not np.all(np.isfinite(C)):
        names = np.array(prob.names)[prob.free][np.argsort(-np.abs(V[:, 0]))[:4]]
        return "degenerate", ("the free parameters are not all identifiable from these spectra (Fisher matrix "
                              f"condition {cond:.3g}); the combination involves {', '.join(names)}; fix one of them "
                              "or add spectra (e.g. other elements to pin Q*Omega)"), cond
    if not sol.success or sol.status == 0:
        return "not_converged", f"the minimiser did not converge ({sol.message}; {sol.nfev} evaluations)", cond
    if "inexact" in prob.outer:
        x = prob.outer["inexact"]
        return "not_converged", (f"stopped early as asked (inexact_outer): the slow parameters moved "
                                 f"{x['moved_sigma']:.3g} sigma, the last solve {x['last_sigma']:.3g} sigma; "
                                 "re-linearise from here"), cond
    if not prob.outer["converged"]:
        return "not_converged", (f"the slow parameters were still moving after {prob.outer['iterations']} "
                                 "re-simulations (max_outer): the result is not at the linearisation point; "
                                 "raise max_outer or start closer"), cond
    return "success", sol.message, cond


def finish(prob: Problem, d, sol, criterion: str, n_bootstrap: int, seed, progress: bool, verify: bool,
           t_start: float) -> FitResult:
    """Covariance, goodness of fit, status, optional bootstrap and the result dataset."""
    p = prob.p
    fr = prob.free
    J, m = prob.jac_model(p)
    Jw = weighted_jacobian(J, m, fr)
    F = fisher(prob, Jw)
    H = F + prob.penalty_matrix()[np.ix_(fr, fr)]
    try:
        C = np.linalg.inv(H)
        Csand = C @ F @ C
    except np.linalg.LinAlgError:
        C = np.full_like(H, np.nan)
        Csand = C
    status, msg, cond = _status(prob, sol, H, C)
    pairs = strong_correlations(prob, C, fr) if status != "degenerate" else []
    if pairs:
        txt = "; ".join(f"{a} ~ {b} (rho = {r:+.4f})" for a, b, r in pairs[:4])
        msg = (f"{len(pairs)} pair(s) of free parameters are almost perfectly correlated (|rho| > {RHO_MAX}): {txt}. "
               "The data fix only their combination; their separate values and sigmas mean little: fix one of each "
               "pair (e.g. a known thickness) or add data that separate them"
               + (f" (the fit did not settle either: {msg})" if status == "not_converged" else ""))
        status = "correlated"
        warnings.warn(msg, RuntimeWarning, stacklevel=4)
    p_eff = float(np.trace(np.linalg.solve(H, F))) if status != "degenerate" else float(fr.sum())
    dof = max(d.size - p_eff, 1.0)
    poor, dev, limit = goodness_verdict(d, m, p_eff)
    if status == "success":
        msg = f"converged ({sol.message.strip()})"
        if poor:
            status = "poor_fit"
            msg = (f"converged, but the model does not describe the data within counting statistics: deviance "
                   f"{dev:.4g} / dof {dof:.1f} = {dev / dof:.3g}, above the {limit:.4g} Poisson noise allows "
                   f"(5 sigma); worst windows: {worst_windows(prob, d, m)}")
    pearson, bins = pearson_chi2(d, m)
    boot = _bootstrap(prob, d, m, n_bootstrap, seed, progress) if n_bootstrap and status in ("success", "poor_fit") \
        else None
    ds = result_dataset(prob, p, C, Csand, boot)
    ds.attrs.update(
        status=status, message=str(msg), deviance=dev, pearson_chi2=pearson, dof=dof, p_eff=p_eff,
        n_data=int(d.size), p_deviance=float(stats.chi2.sf(dev, dof)), pearson_bins=bins,
        p_pearson=float(stats.chi2.sf(pearson, max(bins - p_eff, 1.0))), poor_fit_limit=limit,
        reduced_deviance=dev / dof, **{"lambda": prob.lam}, lambda_criterion=criterion, nfev=int(sol.nfev),
        fisher_condition=float(cond), strong_correlations=json.dumps(pairs),
        uncertainty="sigma: sqrt(diag((F + P)^-1)), F = J^T diag(1/m) J Poisson Fisher information, P = lambda L^T L "
                    "smoothness prior; sigma_sandwich: (F+P)^-1 F (F+P)^-1 (frequentist, excludes regularisation bias)",
        likelihood="Poisson deviance 2 sum(m - d + d ln(d/m)) (Baker & Cousins 1984), scipy least_squares on signed "
                   "deviance residuals",
    )
    if verify and status in ("success", "poor_fit", "correlated"):
        ds.attrs["full_model_max_rel_diff"] = max_model_difference(prob, p)
    ds.attrs["fit_time_s"] = time.perf_counter() - t_start
    return FitResult(status, str(msg), ds, prob)


def _bootstrap(prob, d, m, n_bootstrap, seed, progress):
    """Parametric bootstrap: Poisson resamples of the fitted model, each refitted from the solution."""
    rng = np.random.default_rng(seed)
    boot = np.zeros((n_bootstrap, prob.p.size))
    saved = prob.p.copy()
    with reporter(progress, n_bootstrap, "bootstrap") as step:  # progress: bool or f(done, total)
        for k in range(n_bootstrap):
            dk = rng.poisson(m).astype(float)
            _, pk = solve(prob, dk, saved[prob.free].copy(), max_nfev=30)
            boot[k] = pk
            prob.p = saved
            step(k + 1)
    return boot


def result_dataset(prob: Problem, p, C, Csand, boot) -> xr.Dataset:
    """Profiles, parameters, covariance, spectra and residuals of a fit as one Dataset."""
    fr = prob.free
    n_full = p.size
    cov = np.zeros((n_full, n_full))
    cov[np.ix_(fr, fr)] = C
    covs = np.zeros((n_full, n_full))
    covs[np.ix_(fr, fr)] = Csand
    if prob.vec.i_shape:  # profile values derived from the shape: propagate (delta method)
        T = prob.vec.shape_map(p)
        cov, covs = T @ cov @ T.T, T @ covs @ T.T
    sig = np.sqrt(np.maximum(np.diag(cov), 0))
    sigs = np.sqrt(np.maximum(np.diag(covs), 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sig, sig)
    n_ch = prob.exps[0].detector.n_channels
    els = sorted({e for w in prob.win for e in w}, key=lambda e: (e != prob.el, e))
    meas = np.full((prob.M, len(els), n_ch), np.nan)
    fitm = np.full_like(meas, np.nan)
    mod = prob.model(p)
    for mi in range(prob.M):
        for e, w in prob.win[mi].items():
            meas[mi, els.index(e)] = prob.data[mi][e]
            fitm[mi, els.index(e), w] = mod[mi][e]
    r, _ = deviance_residuals(np.nan_to_num(meas), np.nan_to_num(fitm, nan=1.0))
    ip = prob.i_prof
    ds = xr.Dataset(
        {
            "profile": (("measurement", "depth"), np.array([p[i] for i in ip])),
            "profile_sigma": (("measurement", "depth"), np.array([sig[i] for i in ip])),
            "profile_sigma_sandwich": (("measurement", "depth"), np.array([sigs[i] for i in ip])),
            "value": ("parameter", p),
            "sigma": ("parameter", sig),
            "sigma_sandwich": ("parameter", sigs),
            "free": ("parameter", fr),
            "lower": ("parameter", prob.vec.lo),
            "upper": ("parameter", prob.vec.hi),
            "covariance": (("parameter", "parameter2"), cov),
            "correlation": (("parameter", "parameter2"), corr),
            "measured": (("measurement", "element", "channel"), meas),
            "fitted": (("measurement", "element", "channel"), fitm),
            "residual": (("measurement", "element", "channel"), np.where(np.isnan(fitm), np.nan, r)),
        },
        coords={"measurement": np.arange(prob.M), "depth_nm": ("depth", prob.nodes), "parameter": prob.names,
                "parameter2": prob.names, "element": els, "channel": np.arange(n_ch)},
    )
    ds["profile"].attrs.update(long_name=f"{prob.el} ratio to the nominal atomic fraction", units="1")
    ds["residual"].attrs.update(long_name="signed Poisson deviance residual")
    if boot is not None:
        ds["profile_sigma_bootstrap"] = (("measurement", "depth"), np.array([boot[:, i].std(0, ddof=1) for i in ip]))
        ds["profile_bootstrap_lo"] = (("measurement", "depth"), np.array([np.percentile(boot[:, i], 15.87, 0) for i in ip]))
        ds["profile_bootstrap_hi"] = (("measurement", "depth"), np.array([np.percentile(boot[:, i], 84.13, 0) for i in ip]))
        ds["sigma_bootstrap"] = ("parameter", boot.std(0, ddof=1))
        ds.attrs["n_bootstrap"] = int(boot.shape[0])
    return ds
