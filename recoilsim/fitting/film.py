"""Composition and thickness of a film from several recoil spectra at once.

:func:`fit_film` answers "what is this film made of, how thick is it, and what Q*Omega does that
need" from the TOF spectra of the film's elements (and of the substrate), with the Poisson
likelihood of :func:`recoilsim.fitting.driver.fit`. The film's composition is depth-constant:

* one element (``fast``, e.g. Li) is the fit's linear parameter: a one-node ``'ratio'`` profile;
* each element in ``ratios`` (e.g. Mn) is a slow ``'ratio'`` parameter
  (:class:`~recoilsim.fitting.driver.SlowParameter`); the remaining elements (O) share what is left in their
  nominal proportions, so the atomic fractions always sum to 1;
* the film thickness (nm at the stated density; the spectra measure the areal density) is a
  slow ``'thickness'`` parameter; Q*Omega the fit's scale;
* optionally one or more interface layers under the film: the film material mixed with a
  substrate element (``mix_element``, e.g. Si: interdiffusion or a rough interface both look
  like this in ERDA), each with its thickness and mix fraction as slow parameters (several
  layers make a stepwise gradient); their film part follows the film's fitted composition.

Why a driver around :func:`~recoilsim.fitting.driver.fit`: that fit linearises the other elements' spectra
at the nominal amount of the fast element (:class:`~recoilsim.forward.linear_model.LinearModel`) and the slow
parameters by finite differences around their start. When the composition found is far from the
nominal one (Li at a quarter of LiMn2O4's), one fit ends on a linearisation that no longer equals
the full model (its ``full_model_max_rel_diff`` shows it). :func:`fit_film` therefore
*re-nominalises*: the fitted atomic fractions become the layer's composition, at the same areal
density (the same sample, so the same spectra), and it fits again from there, until no parameter
moves by more than ``tol`` of its standard error and the fitted model equals a full
:func:`~recoilsim.forward.simulate.simulate` to ``max_model_diff``. At that fixed point the ratios are 1,
where every linearisation is exact. A fit that has moved its slow parameters by half of
``tol`` standard errors or more stops its outer loop once its last re-linearisation moved them
by a fifth of that (``FitParameters.inexact_outer``): it then reports 'not_converged', so the
re-nominalised fit goes on from there; the last fit, moving less, runs to the full criterion.

Uncertainties: the Fisher covariance of the last fit (``sigma``), propagated to the fractions,
atomic ratios and areal densities with the Jacobian of the composition rule (central
differences); ``sigma_scaled`` multiplies it by sqrt(deviance/dof) when that exceeds 1, the usual
allowance for a model that does not describe the data to within counting statistics (it is not
a substitute for a better model).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from ..errors import RecoilsimError
from ..model.experiment import Experiment
from .driver import FitParameters, FitResult, Parameter, SlowParameter, fit
from .likelihood import deviance
from .registry import layer_index as _index
from ..model.sample import Layer, Profile

__all__ = ["FilmResult", "fit_film", "renominalise"]


def _fractions(layer: Layer) -> dict[str, float]:
    """Atomic fractions of a layer whose profiles are depth-constant (at its middle)."""
    els = layer.elements()
    f = layer.fractions_at(np.array([0.5 * layer.areal_density_1e15]), els)[0]
    return {e: float(v) for e, v in zip(els, f) if v > 0}


def _n_density(fr: Mapping[str, float], rho: float) -> float:
    """Atoms per cm3 of a composition at mass density rho (for volume-additive mixing)."""
    return Layer(dict(fr), areal_density_1e15=1.0, density_g_cm3=rho).atomic_density_cm3


def renominalise(exp: Experiment, film: int, interfaces: Sequence[int] = (), mix_element: str | None = None,
                 film_fractions: Mapping[str, float] | None = None) -> Experiment:
    """The same sample with the film's (and interfaces') constant profiles folded into their compositions.

    Each layer keeps its areal density (1e15 at/cm2); the film keeps its mass density, so its
    thickness in nm follows from the new composition. An interface layer becomes
    ``(1 - x) * film + x * mix_element`` with ``x`` its current ``mix_element`` fraction; its mass
    density assumes volume additivity of the film and of the pure substrate element's layer below
    (only used to quote nm).
    """
    layers = list(exp.sample.layers)
    lf = layers[film]
    ff = dict(film_fractions) if film_fractions is not None else _fractions(lf)
    layers[film] = Layer(ff, areal_density_1e15=lf.areal_density_1e15, density_g_cm3=lf.density_g_cm3,
                         name=lf.name, enrichment=lf.enrichment, stopping_factors=lf.stopping_factors)
    for interface in interfaces:
        li = layers[interface]
        x = _fractions(li).get(mix_element, 0.0)
        comp = {el: (1.0 - x) * v for el, v in ff.items()}
        comp[mix_element] = comp.get(mix_element, 0.0) + x
        rho = li.density_g_cm3
        sub = next((l for l in layers[interface + 1:] if set(l.fractions) == {mix_element}), None)
        if sub is not None and lf.density_g_cm3 and sub.density_g_cm3:
            n = 1.0 / ((1.0 - x) / _n_density(ff, lf.density_g_cm3) + x / sub.atomic_density_cm3)
            probe = Layer(comp, areal_density_1e15=1.0, density_g_cm3=1.0)
            rho = n / probe.atomic_density_cm3  # mass density that gives atomic density n
        layers[interface] = Layer(comp, areal_density_1e15=li.areal_density_1e15, density_g_cm3=rho, name=li.name,
                                  enrichment=li.enrichment, stopping_factors=li.stopping_factors)
    return dataclasses.replace(exp, sample=dataclasses.replace(exp.sample, layers=layers))


@dataclass
class FilmResult:
    """Outcome of :func:`fit_film`.

    Attributes
    ----------
    status : 'success', 'not_converged' (the re-nominalisation did not settle within ``max_iter``
        or the model differs from the full simulation), or a failure status of the last fit.
    fit : FitResult of the last fit (spectra, residuals, covariance, goodness of fit).
    experiment : the experiment at the fitted values (composition folded in, fluence scaled,
        calibration as fitted): ``simulate(result.experiment)`` reproduces the fitted model.
    composition : xarray.Dataset -- per film element: ``fraction``, ``areal_density_1e15`` and
        ``ratio`` (to ``ratio_to``) with ``*_sigma`` and ``*_sigma_scaled``; scalars in attrs.
    summary : dict -- every number of the result, JSON-ready.
    iterations : list of dict -- parameter values and deviance per re-nominalisation.
    """

    status: str
    message: str
    fit: FitResult | None
    experiment: Experiment | None
    composition: xr.Dataset | None = None
    summary: dict = field(default_factory=dict)
    iterations: list = field(default_factory=list)

    @property
    def success(self) -> bool:
        return self.status == "success"

    def table(self) -> str:
        """A plain-text table of the composition and the goodness of fit."""
        s = self.summary
        if not s:
            return f"fit_film: {self.status}: {self.message}"
        lines = [f"film fit: {self.status} ({s['iterations']} fits, {s['runtime_s']:.1f} s)",
                 f"{'element':<8}{'atomic fraction':>24}{'areal density 1e15/cm2':>28}{'ratio to ' + s['ratio_to']:>24}"]
        for el, d in s["film"].items():
            lines.append(f"{el:<8}{_pm(d['fraction'], d['fraction_sigma']):>24}"
                         f"{_pm(d['areal_density_1e15'], d['areal_density_1e15_sigma']):>28}"
                         f"{_pm(d['ratio'], d['ratio_sigma']):>24}")
        t = s["thickness"]
        lines.append(f"film: {_pm(t['areal_density_1e15'], t['areal_density_1e15_sigma'])} 1e15 at/cm2 = "
                     f"{_pm(t['nm'], t['nm_sigma'])} nm at {t['density_g_cm3']} g/cm3")
        for i in s.get("interfaces", []):
            lines.append(f"{i['layer']}: {_pm(i['areal_density_1e15'], i['areal_density_1e15_sigma'])} 1e15 at/cm2 "
                         f"(~{i['nm']:.1f} nm), {i['mix_element']} fraction {_pm(i['mix_fraction'], i['mix_fraction_sigma'])}")
        q = s["q_omega"]
        b_note = f" (fitted, +-{s['calibration_b_ns_sigma']:.2g})" if s["calibration_b_ns_sigma"] else " (fixed)"
        lines.append(f"Q*Omega = {_pm(q['ions_sr'], q['ions_sr_sigma'])} ions*sr; "
                     f"TOF offset b = {s['calibration_b_ns']:.4f} ns{b_note}")
        if s.get("background"):
            lines.append("background, counts per bin (linear: first -> last bin of the window): " + ", ".join(
                f"{e} {_pm(v['counts_per_channel'], v['sigma'])}"
                + (f" -> {_pm(v['end_counts_per_channel'], v['end_sigma'])}" if "end_sigma" in v else "")
                for e, v in s["background"].items()))
        g = s["goodness"]
        lines.append(f"Poisson deviance {g['deviance']:.1f} / dof {g['dof']:.1f} = {g['reduced_deviance']:.2f} "
                     f"(p = {g['p_deviance']:.2g}); per spectrum deviance / bins: "
                     + ", ".join(f"{e} {v['deviance']:.0f}/{v['n']}" for e, v in g["per_element"].items()))
        lines.append("sigma: Fisher (counting statistics); scaled: x sqrt(deviance/dof) = "
                     f"x {s['error_scale']:.2f} for the model misfit")
        return "\n".join(lines)


def _pm(v, s) -> str:
    """'v +- s' with two significant digits of s (a common power of ten for large values)."""
    if s is None or not np.isfinite(s) or s <= 0:
        return f"{v:.4g}"
    if abs(v) >= 1e5:
        k = int(math.floor(math.log10(abs(v))))
        return f"({_pm(v / 10 ** k, s / 10 ** k)})e{k}"
    d = max(0, 1 - math.floor(math.log10(s)))
    return f"{v:.{d}f} +- {s:.{d}f}"


def _parameters(exp, fi, fast, ratios, iis, mix_element, windows, fit_b, b_bounds, bounds, background,
                timing_tail=False, tol=None):
    slow = [SlowParameter("thickness", fi, bounds=bounds.get("thickness", (1.0, 5000.0)))]
    if timing_tail:  # the detector's tail: decay time keeps the sign of its start (towards earlier or later times)
        tau = exp.detector.timing_tail_ns
        slow.append(SlowParameter("timing_tail_ns", bounds=bounds.get("timing_tail_ns", tuple(sorted((np.sign(tau) * 0.02,
                                                                                                   np.sign(tau) * 20.0))))))
        slow.append(SlowParameter("timing_tail_fraction", bounds=bounds.get("timing_tail_fraction", (0.0, 0.9))))
    for el in ratios:
        f0 = exp.sample.layers[fi].fractions[el]
        slow.append(SlowParameter("ratio", fi, el, bounds=bounds.get(el, (0.05, min(20.0, 0.999 / f0)))))
    for ii in iis:
        slow.append(SlowParameter("thickness", ii, bounds=bounds.get("interface_thickness", (0.5, 5000.0))))
        # FD step at least 0.01: 2 % of a small fraction (0.0027 at 0.13) is 0.4 sigma, whose
        # deviance change drowns in the full model's +-0.5 noise, and the fraction crawled
        x0 = exp.sample.layers[ii].fractions.get(mix_element, 0.0)
        # the model is built at value +- h: keep value + h a fraction (h <= 0.02, so the bound 0.979
        # leaves room; a start above it, from an earlier fit, gets a step within 1 - value)
        h = min(max(0.02 * x0, 0.01), 0.5 * (1.0 - x0)) if x0 < 1.0 else 0.01
        lo, hi = bounds.get("mix_fraction", (0.01, 0.99))
        slow.append(SlowParameter("fraction", ii, mix_element, bounds=(lo, min(hi, 0.979)), step=h))
    f0 = exp.sample.layers[fi].fractions[fast]
    return FitParameters(element=fast, layer=fi, depth_nm=[0.0], profile_value=1.0,
                         profile_bounds=bounds.get(fast, (0.0, 0.999 / f0)), regularization=0.0,
                         a=Parameter(fixed=True), b=Parameter(bounds=b_bounds, fixed=not fit_b), scale=Parameter(1.0, (0.0, np.inf)),
                         slow=slow, windows=dict(windows), relinearize=True, background=background,
                         inexact_outer=0.5 * tol if tol and tol > 0 else None)


def _film_layer(nominal: Layer, values: Mapping[str, float], fast: str, ratios: Sequence[str], t_nm: float) -> Layer:
    """The film at given parameter values, built as fit() builds it (slow ratios, then the fast element)."""
    profs = [Profile(el, [0.0], [values[el]], kind="ratio", depth_unit="1e15") for el in ratios]
    profs.append(Profile(fast, [0.0], [values[fast]], kind="ratio", depth_unit="1e15"))
    return Layer(dict(nominal.fractions), thickness_nm=t_nm, density_g_cm3=nominal.density_g_cm3, profiles=profs)


def _derived(nominal: Layer, x: Mapping[str, float], fast, ratios, ratio_to, els) -> np.ndarray:
    lay = _film_layer(nominal, x, fast, ratios, x["thickness"])
    f = lay.fractions_at(np.array([0.0]), els)[0]
    T = lay.areal_density_1e15
    ref = f[els.index(ratio_to)]
    return np.concatenate([f, f * T, f / ref, [T]])


def fit_film(experiment: Experiment, measured, *, layer=0, fast: str = "Li", ratios: Sequence[str] = ("Mn",),
             interface=(), mix_element: str = "Si", windows: Mapping | None = None, fit_b: bool = False,
             b_range_ns: float = 2.0,
             bounds: Mapping | None = None, ratio_to: str | None = None, max_iter: int = 20, tol: float = 0.1,
             max_model_diff: float = 0.01, background: str | None = "constant", timing_tail: bool = False,
             inexact: bool = True, progress=None) -> FilmResult:
    """Fit a film's composition, thickness and Q*Omega to several element spectra at once.

    Parameters
    ----------
    experiment : Experiment
        Beam, geometry, detector, sample (the film layer with a start composition, e.g.
        ``'LiMn2O4'``, and a start thickness; optionally interface layers holding
        ``mix_element``; the substrate) and the recoils whose spectra are given.
    measured : {element: counts} (the experiment's channels) or a Dataset/DataArray as fit() takes.
    layer : index or name of the film; interface : index or name of an interface layer, or a
        list of them (top first), or None / () for none.
    fast : the element fitted linearly (one-node ratio profile); ratios : slow-ratio elements.
        Every other element of the film shares the remainder in its nominal proportion.
    windows : {element: (lo, hi)} fit windows in channels (inclusive), as fit() takes them.
    fit_b : also fit the TOF offset (ns), within ``b_range_ns`` of the experiment's value (a
        calibration is not off by more; unbounded, a misfit edge can drag it far).
    bounds : optional {element | 'thickness' | 'interface_thickness' | 'mix_fraction' |
        'timing_tail_ns' | 'timing_tail_fraction': (lo, hi)}.
    timing_tail : also fit the detector's timing tail (decay time and weight, slow parameters
        started at the experiment's ``detector.timing_tail_ns`` (not 0: its sign says towards
        earlier or later times) and ``timing_tail_fraction``).
    ratio_to : element the atomic ratios are quoted against (default: the first of ``ratios``).
    max_iter, tol, max_model_diff : re-nominalisation stops when every free parameter moved by
        less than ``tol`` standard errors and the fitted model equals the full simulation to
        ``max_model_diff`` (relative to each spectrum's maximum).
    background : the background under each element window, fitted with the film
        (``FitParameters.background``): 'constant' (default: measured spectra hold random
        coincidences), 'linear', or None.
    inexact : stop the outer loop of a fit that moved by ``tol / 2`` standard errors or more once
        its last re-linearisation moved by a fifth of that (the next fit goes on from there;
        ``FitParameters.inexact_outer``); False: every fit runs to the full criterion.
    progress : optional callable(str) for one line per iteration.

    Returns
    -------
    FilmResult
    """
    t0 = time.perf_counter()
    if not isinstance(experiment, Experiment):
        raise RecoilsimError("experiment", type(experiment).__name__, "an Experiment")
    fi = _index(experiment, layer)
    if interface is None:
        interface = ()
    iis = [_index(experiment, l) for l in ([interface] if isinstance(interface, (str, int)) else interface)]
    if fi in iis or len(set(iis)) != len(iis):
        raise RecoilsimError("interface", interface, "distinct layers other than the film")
    film0 = experiment.sample.layers[fi]
    ratios = list(ratios)
    for el in [fast] + ratios:
        if el not in film0.fractions:
            raise RecoilsimError("film element", el, f"an element of the film layer ({', '.join(film0.fractions)})")
    if fast in ratios or len(set(ratios)) != len(ratios):
        raise RecoilsimError("ratios", ratios, f"distinct elements other than the fast one ({fast})")
    if len(ratios) + 1 >= len(film0.fractions):
        raise RecoilsimError("ratios", ratios, "fewer elements than the film has minus one (one element takes the remainder)")
    ratio_to = ratio_to or (ratios[0] if ratios else fast)
    if film0.density_g_cm3 is None:
        raise RecoilsimError("film density_g_cm3", None, "a density (the thickness is fitted in nm)")
    bounds = dict(bounds or {})
    if timing_tail and experiment.detector.timing_tail_ns == 0.0:
        raise RecoilsimError("detector.timing_tail_ns", 0.0, "a start decay time != 0 when timing_tail is fitted "
                             "(< 0: a tail towards earlier times, > 0: later)")
    exp = renominalise(experiment, fi, iis, mix_element)
    b0 = experiment.detector.calibration_b_ns
    b_bounds = (b0 - float(b_range_ns), b0 + float(b_range_ns))
    iterations = []
    res = None
    status, message = "not_converged", f"no fixed point within {max_iter} fits"
    for it in range(max_iter):
        par = _parameters(exp, fi, fast, ratios, iis, mix_element, windows or {}, fit_b, b_bounds, bounds, background,
                          timing_tail, tol if inexact else None)
        start = {fast: 1.0, "thickness": exp.sample.layers[fi].thickness_nm, "scale": 1.0,
                 "b": exp.detector.calibration_b_ns, **{el: 1.0 for el in ratios},
                 "timing_tail_ns": exp.detector.timing_tail_ns, "timing_tail_fraction": exp.detector.timing_tail_fraction}
        for ii in iis:
            start[f"interface_thickness[{ii}]"] = exp.sample.layers[ii].thickness_nm
            start[f"mix_fraction[{ii}]"] = exp.sample.layers[ii].fractions.get(mix_element, 0.0)
        res = fit(exp, measured, par)
        if res.dataset is None:
            return FilmResult(res.status, res.message, res, None, iterations=iterations)
        ds = res.dataset
        vals = _named(res, par, fi, iis, mix_element, fast, ratios)
        moved = max((abs(vals[k][0] - start[k]) / vals[k][1] for k in vals if vals[k][1] > 0), default=np.inf)
        diff = float(ds.attrs.get("full_model_max_rel_diff", np.nan))
        early = "inexact" in res.problem.outer  # stopped early: the next fit goes on from here
        iterations.append({"iteration": it, "status": res.status, "stopped_early": early, "moved_sigma": moved,
                           "model_diff": diff,
                           "reduced_deviance": float(ds.attrs["reduced_deviance"]),
                           **{k: v[0] for k, v in vals.items()}})
        if progress is not None:
            progress(f"fit {it + 1}: {'stopped early (inexact outer loop)' if early else res.status}, largest move {moved:.3g} sigma, deviance/dof "
                     f"{ds.attrs['reduced_deviance']:.3f}, model vs full simulation {diff:.2g}")
        nominal = exp
        exp = renominalise(res.fitted_experiment(0), fi, iis, mix_element)
        if res.converged and moved < tol and diff < max_model_diff:
            status, message = res.status, f"converged after {it + 1} fits (last move {moved:.2g} sigma)"
            if res.status == "poor_fit":
                message += "; " + res.message
            break
    else:
        if res is not None and res.status not in ("success", "poor_fit", "not_converged"):
            status, message = res.status, res.message
    comp, summary = _report(res, par, nominal, exp, fi, iis, mix_element, fast, ratios, ratio_to)
    summary.update(status=status, message=message, iterations=len(iterations), runtime_s=time.perf_counter() - t0)
    comp.attrs.update(status=status, runtime_s=summary["runtime_s"])
    return FilmResult(status, message, res, exp, comp, summary, iterations)


def _keys(par, fi, iis, mix_element, fast, ratios) -> dict[str, tuple]:
    """{short name: parameter key} of the free parameters of one film fit."""
    out = {fast: ("profile", 0), "thickness": ("thickness", fi), "scale": ("scale",),
           **{el: ("ratio", fi, el) for el in ratios}}
    kinds = [sp.kind for sp in par.slow]
    for kind in ("timing_tail_ns", "timing_tail_fraction"):
        if kind in kinds:
            out[kind] = (kind,)
    for ii in iis:
        out[f"interface_thickness[{ii}]"] = ("thickness", ii)
        out[f"mix_fraction[{ii}]"] = ("fraction", ii, mix_element)
    if not par.b.fixed:
        out["b"] = ("calibration_b",)
    return out


def _named(res: FitResult, par, fi, iis, mix_element, fast, ratios) -> dict[str, tuple[float, float]]:
    """{short name: (value, sigma)} of the free parameters of one fit."""
    return {k: res.parameter(key, 0) for k, key in _keys(par, fi, iis, mix_element, fast, ratios).items()}


def _report(res: FitResult, par, nominal: Experiment, fitted: Experiment, fi, iis, mix_element, fast, ratios, ratio_to):
    ds = res.dataset
    names = ds["parameter"].values.tolist()
    keys = _keys(par, fi, iis, mix_element, fast, ratios)
    vec = res.problem.vec
    key = {k: keys[k] for k in [fast, "thickness", *ratios]}
    idx = [vec.index(key[k], 0) for k in key]
    C = ds["covariance"].values[np.ix_(idx, idx)]
    x0 = {k: float(ds["value"].values[i]) for k, i in zip(key, idx)}
    named = _named(res, par, fi, iis, mix_element, fast, ratios)
    nom = nominal.sample.layers[fi]
    els = list(nom.fractions)
    if ratio_to not in els:
        raise RecoilsimError("ratio_to", ratio_to, f"an element of the film ({', '.join(els)})")
    y0 = _derived(nom, x0, fast, ratios, ratio_to, els)
    J = np.zeros((y0.size, len(key)))
    for j, k in enumerate(key):
        h = 1e-6 * max(abs(x0[k]), 1e-3)
        xp, xm = dict(x0), dict(x0)
        xp[k] += h
        xm[k] -= h
        J[:, j] = (_derived(nom, xp, fast, ratios, ratio_to, els) - _derived(nom, xm, fast, ratios, ratio_to, els)) / (2 * h)
    sy = np.sqrt(np.maximum(np.diag(J @ C @ J.T), 0.0))
    a = ds.attrs
    scale_err = math.sqrt(max(a["reduced_deviance"], 1.0))
    n = len(els)
    comp = xr.Dataset(
        {"fraction": ("film_element", y0[:n]), "fraction_sigma": ("film_element", sy[:n]),
         "areal_density_1e15": ("film_element", y0[n:2 * n]), "areal_density_1e15_sigma": ("film_element", sy[n:2 * n]),
         "ratio": ("film_element", y0[2 * n:3 * n]), "ratio_sigma": ("film_element", sy[2 * n:3 * n])},
        coords={"film_element": els})
    for v in ("fraction", "areal_density_1e15", "ratio"):
        comp[f"{v}_sigma_scaled"] = comp[f"{v}_sigma"] * scale_err
    comp["ratio"].attrs["long_name"] = f"atomic ratio to {ratio_to}"
    comp["areal_density_1e15"].attrs["units"] = "1e15 atoms/cm2"
    sig = dict(zip(names, ds["sigma"].values))
    val = dict(zip(names, ds["value"].values))
    lf = fitted.sample.layers[fi]
    T, sT = float(y0[-1]), float(sy[-1])
    t_nm, s_nm = named["thickness"]
    det = fitted.detector
    q = fitted.beam.fluence * det.solid_angle_sr
    summary = {
        "film_layer": lf.name, "ratio_to": ratio_to,
        "film": {el: {"fraction": float(y0[i]), "fraction_sigma": float(sy[i]),
                      "areal_density_1e15": float(y0[n + i]), "areal_density_1e15_sigma": float(sy[n + i]),
                      "ratio": float(y0[2 * n + i]), "ratio_sigma": float(sy[2 * n + i])} for i, el in enumerate(els)},
        "thickness": {"areal_density_1e15": T, "areal_density_1e15_sigma": sT, "nm": t_nm, "nm_sigma": s_nm,
                      "density_g_cm3": lf.density_g_cm3},
        "q_omega": {"ions_sr": q, "ions_sr_sigma": q * named["scale"][1] / named["scale"][0],
                    "fluence_at_stated_solid_angle": fitted.beam.fluence, "solid_angle_msr": det.solid_angle_msr},
        "calibration_a_ns": det.calibration_a_ns, "calibration_b_ns": det.calibration_b_ns,
        "calibration_b_ns_sigma": named["b"][1] if not par.b.fixed else 0.0,
        "error_scale": scale_err,
        "goodness": _goodness(ds),
        "fit_status": res.status, "fit_message": res.message,
        "parameters": {str(nm): {"value": float(val[nm]), "sigma": float(sig[nm])} for nm in names},
    }
    vec = res.problem.vec
    summary["background"] = {e: {"counts_per_channel": float(ds["value"].values[il]),
                                 "sigma": float(ds["sigma"].values[il]),
                                 **({} if il2 is None else {"end_counts_per_channel": float(ds["value"].values[il2]),
                                                            "end_sigma": float(ds["sigma"].values[il2])})}
                             for e, (il, il2) in (vec.i_bg[0].items() if vec.i_bg else ())}
    summary["interfaces"] = []
    for ii in iis:
        li = fitted.sample.layers[ii]
        (t, st), (x, sx) = named[f"interface_thickness[{ii}]"], named[f"mix_fraction[{ii}]"]
        conv = nominal.sample.layers[ii].nm_to_1e15
        summary["interfaces"].append({
            "layer": li.name, "mix_element": mix_element, "mix_fraction": x, "mix_fraction_sigma": sx,
            "areal_density_1e15": t * conv, "areal_density_1e15_sigma": st * conv, "nm": t, "nm_sigma": st,
            "density_g_cm3": li.density_g_cm3})
    comp.attrs.update({"thickness_1e15": T, "thickness_1e15_sigma": sT, "thickness_nm": t_nm, "thickness_nm_sigma": s_nm,
                       "q_omega_ions_sr": q, "reduced_deviance": float(a["reduced_deviance"]), "error_scale": scale_err})
    return comp, summary


def _goodness(ds) -> dict:
    a = ds.attrs
    per = {}
    for e in ds["element"].values:
        f = ds["fitted"].sel(measurement=0, element=e).values
        w = np.isfinite(f)
        if not w.any():
            continue
        d = ds["measured"].sel(measurement=0, element=e).values[w]
        per[str(e)] = {"deviance": deviance(d, f[w]), "n": int(w.sum()), "counts": float(d.sum()),
                       "model": float(f[w].sum())}
    return {"deviance": float(a["deviance"]), "dof": float(a["dof"]), "reduced_deviance": float(a["reduced_deviance"]),
            "p_deviance": float(a["p_deviance"]), "pearson_chi2": float(a["pearson_chi2"]),
            "n_data": int(a["n_data"]), "per_element": per,
            "full_model_max_rel_diff": float(a.get("full_model_max_rel_diff", np.nan))}
