"""Depth profiles of every element at once, with bands from the smoothness posterior.

:func:`fit_profiles` fits the atomic fraction of every measured element on depth nodes
(:class:`~recoilsim.model.depth_grid.DepthGrid`: 1e15 atoms/cm2 from the surface, the start
sample's layers only give the start composition unless ``breaks``), from all element spectra at
once, together with Q*Omega, the TOF offset and a constant background per spectrum
(:mod:`recoilsim.fitting.profile_model`). The fractions are log-ratio (softmax) coordinates, so
they are positive and sum to one at every node.

Stopping: the spectra are linear in the fractions at a fixed stopping medium
(:class:`~recoilsim.forward.node_response.NodeResponse`). The fit re-linearises: it simulates with
the fitted composition, builds the response there and fits again, until the lambdas' posterior maxima,
each move weighted by the lambda's evidence weight, move no fraction by more than ``relin_tol`` of
its posterior sd (the evidence-weighted posterior maxima are the linearisation point) (at that fixed point the response equals the full
simulation of the fitted sample; ``attrs['full_model_max_rel_diff']`` checks it).

Smoothing and bands: a second-difference Gaussian prior on every element's log-ratio profile,
strength lambda. For each lambda of a grid the posterior maximum and its Laplace evidence
(:mod:`recoilsim.fitting.laplace`); the reported profile and band are those of the
evidence-weighted mixture of the Gaussian posteriors (``integrate=True``, default; otherwise the
single lambda of largest evidence; the plateau of the largest lambdas, one and the same
posterior, counts once: :func:`~recoilsim.fitting.laplace.plateau_end`; lambdas of negligible
weight leave the scans once the composition has nearly settled), pushed through the softmax by sampling: ``fraction`` is the
posterior mean (it sums to one), ``lo1/hi1`` and ``lo2/hi2`` the central 68.3 % and 95.4 %
intervals, ``sigma`` the posterior sd. The band is the posterior's, not the sandwich of a
smoothed estimator: it holds the smoothing bias to the extent that the prior describes the
profile (measured in benchmarks/coverage_profiles.py, table in docs/depth_profiles.md).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ..errors import RecoilsimError
from ..forward.node_response import NodeResponse
from ..model.depth_grid import DepthGrid
from ..model.experiment import Experiment
from .blas_threads import one_blas_thread
from .depth_resolution import annotate_profiles
from .laplace import evidence_weights, mixture_samples, plateau_end, scan_lambdas
from .likelihood import deviance, goodness_verdict
from .profile_model import ProfileModel

__all__ = ["ProfileResult", "fit_profiles"]

LAMBDAS = np.logspace(-1.0, 7.0, 9)  # smoothing strengths (per unit second difference of theta)
MAP_ITER = 100  # Fisher-scoring steps per posterior maximum (weakly determined deep nodes converge slowly)
KEEP = 1e-4  # once the composition has nearly settled only lambdas of at least this evidence weight are re-fitted
SETTLED = 1.0  # move (posterior sd) below which the weights are those of the final stopping (pruning allowed)


@dataclass
class ProfileResult:
    """Outcome of :func:`fit_profiles`.

    status : 'success', 'poor_fit' (settled, but the deviance lies far above what Poisson noise
        allows, :func:`recoilsim.fitting.likelihood.goodness_verdict`: the message names the
        windows with the largest deviance per bin) or 'not_converged' (re-linearisation or a
        posterior maximum did not settle).
    dataset : ``fraction(element, depth)`` with ``sigma``, ``lo1``/``hi1``, ``lo2``/``hi2``;
        ``areal_density_1e15(element)`` (down to the last node) with sigma; ``measured`` and
        ``fitted(element, channel)`` (NaN outside the windows); ``log_evidence(lam)`` and
        ``weight(lam)``; scalars (Q*Omega scale, offset, deviance) in attrs.
    model, posteriors : the :class:`~recoilsim.fitting.profile_model.ProfileModel` of the last
        linearisation and the Laplace posterior of each lambda there (for
        :func:`recoilsim.fitting.profile_mcmc.sample_profile_posterior`).
    """

    status: str
    message: str
    dataset: xr.Dataset
    experiment: Experiment
    summary: dict = field(default_factory=dict)
    model: object = None
    posteriors: list = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.status == "success"

    @property
    def converged(self) -> bool:
        """'success' or 'poor_fit': the posterior settled (whether or not the model fits)."""
        return self.status in ("success", "poor_fit")

    def to_csv(self, path) -> None:
        """Write the profiles as CSV (one row per node; see :func:`recoilsim.io.profiles_csv.write_profiles_csv`)."""
        from ..io.profiles_csv import write_profiles_csv
        write_profiles_csv(self.dataset, path)

    def plot(self, path, log: bool = False):
        """Potku-style depth profile (at.% against depth, bands); see :func:`recoilsim.plots.profiles.plot_profiles`."""
        from ..plots.profiles import plot_profiles
        return plot_profiles(self.dataset, path, log=log)

    def table(self) -> str:
        """Areal densities per element and the goodness of fit, as text."""
        ds = self.dataset
        a = ds.attrs
        lines = [f"depth profiles: {self.status} ({a['relinearisations']} linearisations, {a['runtime_s']:.2f} s)",
                 f"{'element':<8}{'areal density (1e15 at/cm2, 0..' + format(a['depth_max_1e15'], '.0f') + ')':>44}"]
        for e in ds["element"].values:
            lines.append(f"{e:<8}{ds['areal_density_1e15'].sel(element=e).item():>30.1f} +- "
                         f"{ds['areal_density_1e15_sigma'].sel(element=e).item():.1f}")
        lines.append(f"Q*Omega scale {a['scale']:.4f} +- {a['scale_sigma']:.4f}; TOF offset {a['offset_ns']:.4f} ns; "
                     f"lambda of largest evidence {a['lambda_best']:.3g}")
        lines.append(f"Poisson deviance {a['deviance']:.1f} / dof {a['dof']:.1f} = {a['deviance'] / a['dof']:.2f}"
                     + (f" (poor fit: above the Poisson limit {a['deviance_limit']:.1f})" if a["poor_fit"] else ""))
        if a.get("resolution_warning"):
            lines.append("warning: " + a["resolution_warning"])
        return "\n".join(lines)


def _default_windows(sim: xr.Dataset, elements) -> dict:
    out = {}
    for e in elements:
        s = sim["counts"].sel(element=e).values
        idx = np.nonzero(s > 1e-3 * max(s.max(), 1e-300))[0]
        if idx.size == 0:
            raise RecoilsimError(f"windows[{e}]", None, f"a channel window: the start model has no {e} counts")
        out[e] = (int(idx.min()), int(idx.max()))
    return out


def _default_depth(sim: xr.Dataset, windows, bottom: float) -> float:
    """Deepest depth that at least two spectra's windows see (one spectrum alone leaves the other
    elements' fractions there to the prior), at most 0.9 of the sample."""
    deep = []
    for e, (lo, hi) in windows.items():
        z = sim["depth_1e15"].sel(element=e).values[lo:hi + 1]
        deep.append(float(np.nanmax(z)) if np.any(np.isfinite(z)) else 0.0)
    deep = sorted(deep)[-2] if len(deep) > 1 else deep[0]
    return min(deep, 0.9 * bottom) if deep > 0 else 0.5 * bottom


def _as_counts(measured, n_ch) -> dict:
    if isinstance(measured, xr.Dataset):
        measured = measured["counts"]
    if isinstance(measured, xr.DataArray):
        measured = {str(e): measured.sel(element=e).values for e in measured["element"].values}
    if not isinstance(measured, Mapping) or not measured:
        raise RecoilsimError("measured", type(measured).__name__, "{element: counts}, or a DataArray/Dataset with an element dim")
    out = {}
    for e, v in measured.items():
        v = np.asarray(v, float)
        if v.shape != (n_ch,) or not np.all(np.isfinite(v)) or np.any(v < 0):
            raise RecoilsimError(f"measured[{e}]", v.shape, f"{n_ch} finite counts >= 0")
        out[str(e)] = v
    return out


def fit_profiles(experiment: Experiment, measured, *, elements: Sequence[str] | None = None,
                 nodes_1e15: Sequence[float] | None = None, n_nodes: int = 30, depth_max_1e15: float | None = None,
                 breaks: bool = False, windows: Mapping | None = None, fit_b: bool = True, b_sd_ns: float = 1.0,
                 background: bool = True, lambdas: Sequence[float] | None = None, integrate: bool = True,
                 n_samples: int = 2000, max_relin: int = 15, relin_tol: float = 0.2, seed: int = 0,
                 verify: bool = True) -> ProfileResult:
    """Fit the depth profile of every measured element at once.

    Parameters
    ----------
    experiment : Experiment
        Instrument, recoils and a start sample (its composition at each node starts the fit;
        a film on a substrate is enough).
    measured : {element: counts} over the experiment's channels (or a DataArray / Dataset
        with ``counts(element, channel)``).
    elements : the profiled elements (default: the measured ones); other elements of the start
        sample keep their start fraction at every depth.
    nodes_1e15 : node depths (1e15 at/cm2, from 0); default ``n_nodes`` evenly from 0 to
        ``depth_max_1e15`` (default: the deepest depth that at least two spectra's windows see, from a
        start simulation).
    breaks : let the profiles jump at the start sample's layer boundaries.
    windows : {element: (lo, hi)} inclusive channels (default: where the start model has counts).
    fit_b, b_sd_ns : fit the TOF offset with a Gaussian prior of this sd (ns) around the experiment's.
    background : fit a constant background per spectrum.
    lambdas : smoothing strengths to scan (default ``LAMBDAS``); integrate : evidence-weighted
        mixture over them (else the one of largest evidence).
    n_samples : posterior draws for the bands; max_relin, relin_tol : re-linearisation loop.
    verify : compare the final response with a full simulation of the fitted sample.

    Returns
    -------
    ProfileResult
        Its dataset holds the depth resolution at the nodes (``depth_resolution_nm(element,
        depth)``; a :class:`~recoilsim.fitting.depth_resolution.NodeSpacingWarning` when the
        nodes lie closer than a quarter of it).
    """
    with one_blas_thread():  # small matrices: BLAS threads only spin against other processes
        res = _fit_profiles(experiment, measured, elements, nodes_1e15, n_nodes, depth_max_1e15, breaks, windows,
                            fit_b, b_sd_ns, background, lambdas, integrate, n_samples, max_relin, relin_tol, seed,
                            verify)
    annotate_profiles(res)  # depth resolution at the nodes; warns when the nodes are much finer
    return res


def _fit_profiles(experiment, measured, elements, nodes_1e15, n_nodes, depth_max_1e15, breaks, windows, fit_b,
                  b_sd_ns, background, lambdas, integrate, n_samples, max_relin, relin_tol, seed, verify):
    t0 = time.perf_counter()
    from ..forward.simulate import simulate
    if not isinstance(experiment, Experiment):
        raise RecoilsimError("experiment", type(experiment).__name__, "an Experiment")
    n_ch = experiment.detector.n_channels
    data = _as_counts(measured, n_ch)
    for e in data:
        if e not in experiment.recoils:
            raise RecoilsimError(f"measured[{e}]", e, f"an element among the experiment's recoils ({experiment.recoils})")
    els = list(elements) if elements is not None else list(data)
    sim0 = simulate(experiment)
    wins = dict(windows) if windows else _default_windows(sim0, data)
    for e in data:
        if e not in wins:
            wins[e] = _default_windows(sim0, [e])[e]
        lo, hi = wins[e]
        if not (0 <= int(lo) < int(hi) < n_ch):
            raise RecoilsimError(f"windows[{e}]", wins[e], f"(lo, hi) with 0 <= lo < hi < {n_ch}")
    if nodes_1e15 is None:
        if int(n_nodes) < 3:
            raise RecoilsimError("n_nodes", n_nodes, "an integer >= 3")
        zmax = depth_max_1e15 or _default_depth(sim0, wins, experiment.sample.total_areal_density_1e15)
        nodes_1e15 = np.linspace(0.0, float(zmax), int(n_nodes))
    grid = DepthGrid(experiment.sample, els, nodes_1e15, breaks=breaks)
    lams = np.asarray(LAMBDAS if lambdas is None else lambdas, float)
    if lams.ndim != 1 or lams.size < 1 or np.any(lams <= 0):
        raise RecoilsimError("lambdas", lambdas, "one or more smoothing strengths > 0")
    rng = np.random.default_rng(seed)
    F = grid.start_profile()
    starts = [None] * lams.size
    moves = []
    prev = None
    b_cur = None
    pruned = False
    status, message = "not_converged", f"the composition still moved after {max_relin} linearisations"
    for it in range(1, int(max_relin) + 1):
        resp = NodeResponse(experiment, grid, F)
        model = ProfileModel(resp, data, wins, fit_b=fit_b, background=background, b_sd=b_sd_ns)
        if it > 1 and not pruned and moves[-1] < SETTLED:
            # the other lambdas carry no weight: drop them from the next scans. Not after the first
            # linearisation: at the start composition's stopping the data call for wiggles that the
            # fitted stopping does not need (with multiple scattering on, at 100 times the measured
            # counts, the first scan gave lambda <= 1e3 all the weight and the settled one 1e4:
            # pruned after the first, the band came out twice too wide, sd of z 0.6-0.7)
            pruned = True
            keep = w >= KEEP
            lams = lams[keep]
            starts = [s for s, k in zip(starts, keep) if k]
            prev = [c for c, k in zip(prev, keep) if k]
        posts = scan_lambdas(model, model.d, lams, model.prior, model.start(F, b_cur), starts, max_iter=MAP_ITER)
        # the plateau of the largest strengths (the same posterior) counts once (laplace.plateau_end)
        n = plateau_end(posts, [model.prior(lam)[1] for lam in lams])
        lz = np.array([p.log_evidence for p in posts[:n]])
        w = np.zeros(lams.size)
        w[:n] = evidence_weights(lz) if integrate else (np.arange(n) == int(np.argmax(lz)))
        xs = mixture_samples(posts, w, n_samples, rng)
        Fs = np.array([model.fractions(x) for x in xs])
        sd = Fs.std(axis=0)
        comp = np.array([model.fractions(p.x) for p in posts])
        F_map = np.tensordot(w, comp, axes=1)  # deterministic
        # settled when the lambdas' own maxima stopped moving, each move weighted by the lambda's
        # evidence weight (a lambda of weight 0.03 whose weakly determined surface nodes wander
        # moves the mixture by 0.03 of that); the weights themselves may still shift by the
        # evidence's noise; the stopping then changes by less than the spread
        ref = np.array([F] * len(posts)) if prev is None else np.asarray(prev)
        move = float(np.max(np.tensordot(w, np.abs(comp - ref), axes=1) / np.maximum(sd, 1e-12)))
        prev = comp
        moves.append(move)
        starts = [p.x for p in posts]
        b_cur = float(np.sum(w * [model.offset(p.x) for p in posts]))
        if move < relin_tol:
            status, message = "success", f"composition settled after {it} linearisations (move {move:.3g} sd)"
            break
        # next linearisation point; halfway when the last step overshot (moves that grow)
        F = F_map if len(moves) < 2 or move < moves[-2] else 0.5 * (F + F_map)
    if status == "success" and not all(p.converged for p, wi in zip(posts, w) if wi > 1e-3):
        status, message = "not_converged", "a posterior maximum with weight > 1e-3 did not converge"
    ds = _dataset(grid, model, posts, w, lams, xs, Fs, data, wins)
    best = posts[int(np.argmax(w))]
    fitted_exp = dataclasses.replace(
        experiment, sample=grid.sample(F),
        beam=dataclasses.replace(experiment.beam, fluence=experiment.beam.fluence * float(np.exp(best.x[model.i_s]))),
        detector=dataclasses.replace(experiment.detector, calibration_b_ns=model.offset(best.x)))
    if verify:
        full = simulate(fitted_exp)
        mod = NodeResponse(fitted_exp, grid, F).counts()
        worst = 0.0
        for e, (lo, hi) in wins.items():
            f = full["counts"].sel(element=e).values[lo:hi + 1]
            worst = max(worst, float(np.max(np.abs(f - mod[e][lo:hi + 1])) / max(np.max(f), 1.0)))
        ds.attrs["full_model_max_rel_diff"] = worst
    if status == "success" and ds.attrs["poor_fit"]:
        a = ds.attrs
        status = "poor_fit"
        message += (f"; but the model does not describe the data within counting statistics: deviance "
                    f"{a['deviance']:.4g} / dof {a['dof']:.1f} = {a['deviance'] / a['dof']:.3g}, above the "
                    f"{a['deviance_limit']:.4g} Poisson noise allows (5 sigma); worst windows: {a['worst_windows']}")
    ds.attrs.update(status=status, relinearisations=it, runtime_s=time.perf_counter() - t0, moves_sd=moves)
    return ProfileResult(status, message, ds, fitted_exp, model=model, posteriors=list(posts))


def _dataset(grid, model, posts, w, lams, xs, Fs, data, wins) -> xr.Dataset:
    z = grid.depth_1e15
    q = np.percentile(Fs, [2.275, 15.865, 84.135, 97.725], axis=0)
    # areal density down to the last node: trapezoid of the piecewise-linear profile
    dz = np.diff(z)
    ad = np.sum(0.5 * (Fs[:, :, 1:] + Fs[:, :, :-1]) * dz, axis=2)  # (n, n_el)
    best = posts[int(np.argmax(w))]
    m_best = model.counts(best.x)
    n_ch = next(iter(data.values())).size
    els = list(grid.elements)
    spec_els = list(model.spectra)
    meas = np.full((len(spec_els), n_ch), np.nan)
    fitm = np.full_like(meas, np.nan)
    for k, e in enumerate(spec_els):
        meas[k] = data[e]
        lo, hi = wins[e]
        fitm[k, lo:hi + 1] = m_best[e]
    # goodness of fit at the best posterior maximum: p_eff = tr(H^-1 F)
    m, J = model(best.x)
    Fi = (J.T * (1.0 / np.maximum(m, 1e-9))) @ J
    p_eff = float(np.trace(np.linalg.solve(best.H, Fi)))
    poor, dev, limit = goodness_verdict(model.d, m, p_eff)
    worst, row = [], 0
    for e in spec_els:
        n = model.win[e].size
        dev_e = deviance(model.d[row:row + n], m[row:row + n])
        worst.append((dev_e / n, f"{e} channels {model.win[e][0]}-{model.win[e][-1]}: deviance/bins = "
                                 f"{dev_e:.4g}/{n} = {dev_e / n:.3g}"))
        row += n
    s = np.exp(xs[:, model.i_s])
    ds = xr.Dataset(
        {
            "fraction": (("element", "depth"), Fs.mean(axis=0)),
            "sigma": (("element", "depth"), Fs.std(axis=0)),
            "lo2": (("element", "depth"), q[0]), "lo1": (("element", "depth"), q[1]),
            "hi1": (("element", "depth"), q[2]), "hi2": (("element", "depth"), q[3]),
            "map_fraction": (("element", "depth"), model.fractions(best.x)),
            "areal_density_1e15": ("element", ad.mean(axis=0)),
            "areal_density_1e15_sigma": ("element", ad.std(axis=0)),
            "measured": (("spectrum", "channel"), meas),
            "fitted": (("spectrum", "channel"), fitm),
            "log_evidence": ("lam", [p.log_evidence for p in posts]),
            "weight": ("lam", np.asarray(w, float)),
            "offset_ns_map": ("lam", [model.offset(p.x) for p in posts]),
        },
        coords={"element": els, "depth_1e15": ("depth", z), "depth_nm": ("depth", grid.depth_nm()),
                "segment": ("depth", grid.segment), "lam": lams, "spectrum": spec_els, "channel": np.arange(n_ch)},
        attrs={"scale": float(s.mean()), "scale_sigma": float(s.std()),
               "offset_ns": float(np.mean([model.offset(x) for x in xs])),
               "offset_ns_sigma": float(np.std([model.offset(x) for x in xs])) if model.fit_b else 0.0,
               "lambda_best": float(lams[int(np.argmax(w))]), "deviance": dev, "p_eff": p_eff,
               "dof": float(max(model.d.size - p_eff, 1.0)), "n_bins": int(model.d.size),
               "poor_fit": int(poor), "deviance_limit": float(limit),
               "worst_windows": "; ".join(t for _, t in sorted(worst, key=lambda r: -r[0])[:3]),
               "depth_max_1e15": float(z[-1]), "n_samples": int(xs.shape[0]),
               "band": "posterior under the second-difference prior on log-ratio profiles, "
                       "evidence-weighted over lambda (Laplace approximation)"},
    )
    if model.background:
        ds["background"] = ("spectrum", np.exp(xs[:, model.i_bg]).mean(axis=0))
        ds["background_sigma"] = ("spectrum", np.exp(xs[:, model.i_bg]).std(axis=0))
    ds["fraction"].attrs.update(long_name="atomic fraction (posterior mean)", units="1")
    ds["depth_1e15"].attrs.update(units="1e15 atoms/cm2", long_name="depth from the surface")
    ds["depth_nm"].attrs.update(units="nm", long_name="depth at the start sample's densities")
    return ds
