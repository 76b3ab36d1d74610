"""A Potku list-mode measurement from events to a fitted film, in one call.

:func:`run` reads an experiment file (TOML) whose ``[spectra]`` section points at Potku data
(``.asc`` events, ``.sel`` polygons, ``.cut`` files) and whose ``[fit]`` section says what to
fit (``method = "film"``: :func:`recoilsim.fitting.film.fit_film`; ``method = "profiles"``: every
element's depth profile, :func:`recoilsim.workflows.potku_profiles.run_profiles`, whose outputs
that module lists), and for the film fit writes into an output folder:

* ``tofe.png`` -- the TOF-E histogram with the polygon cuts;
* ``spectra.png``, ``measured_spectra.nc`` -- the element TOF spectra (cuts merged per element,
  rebinned) and the simulation at the start values;
* ``fit.png``, ``fit.nc``, ``simulation.nc`` -- data, fitted model and deviance residuals per
  element; the fit's parameters, covariance and spectra; the full simulation at the fitted values
  (with depth, energy and time per channel);
* ``summary.json``, ``summary.txt`` -- composition with uncertainties, thickness, Q*Omega,
  goodness of fit, event counts per cut, runtime.

It never writes over its inputs. The worked example is ``examples/potku_ecaart.toml``
(``docs/worked_example_potku.md``).

``[spectra]`` keys: ``format = "potku"``, ``data_dir`` (relative to the TOML file), ``asc``,
``sel``, ``cuts`` (relative to ``data_dir``), ``[spectra.elements]`` element -> isotope labels of
the polygons (the fit's recoils). ``[fit]`` keys: ``method = "film"``, ``layer``, ``fast``,
``ratios``, ``interface``, ``mix_element``, ``fit_calibration_offset``, ``fit_timing_tail``, ``rebin``, ``max_iter``,
``background`` ("constant", the default: a level per element window fitted with the film;
"linear"; or "none"), ``[fit.windows]`` element -> [first, last] raw TOF channel; for ``method = "profiles"``:
``nodes`` (default 30), ``depth_max`` (1e15 at/cm2), ``breaks``, ``fit_calibration_offset``
(default true there), ``rebin``, ``windows``, ``background`` ("constant" or "none").
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import xarray as xr

from ..errors import RecoilsimError

__all__ = ["PotkuCase", "load_case", "fit_case", "run"]

SPECTRA_KEYS = {"format", "data_dir", "asc", "sel", "cuts", "elements"}
#: [fit] keys of each method (rebin, windows, background and fit_calibration_offset serve both)
FILM_KEYS = {"method", "layer", "fast", "ratios", "interface", "mix_element", "fit_calibration_offset",
             "fit_timing_tail", "rebin", "windows", "max_iter", "tol", "background"}
PROFILE_KEYS = {"method", "fit_calibration_offset", "rebin", "windows", "background", "nodes", "depth_max", "breaks"}
FIT_KEYS = FILM_KEYS | PROFILE_KEYS
METHODS = {"film": FILM_KEYS, "profiles": PROFILE_KEYS}


@dataclass
class PotkuCase:
    """Everything read for one Potku measurement.

    experiment : the fit's experiment: the file's experiment with recoils = the spectra's elements and
        the detector rebinned (``rebin`` raw channels per bin, :func:`recoilsim.analysis.element_spectra.rebin_calibration`).
    measured : element spectra (counts per bin) from the polygons, :func:`~recoilsim.analysis.element_spectra.element_spectra`.
    windows : fit windows in bins; fit : the raw ``[fit]`` settings.
    """

    path: Path
    experiment: object
    file_experiment: object
    events: xr.Dataset
    selections: list
    cuts: dict
    elements: dict
    rebin: int
    measured: xr.Dataset
    windows: dict
    fit: dict
    inputs: list = field(default_factory=list)


def _need(d: dict, key: str, where: str, allowed: str):
    if key not in d:
        raise RecoilsimError(f"{where}.{key}", None, allowed)
    return d[key]


def load_case(path: os.PathLike | str, data_dir: os.PathLike | str | None = None) -> PotkuCase:
    """Read the experiment file, the events, the polygons and the cut files; build the element spectra.

    ``data_dir`` overrides ``[spectra] data_dir`` (e.g. where the Potku folder lies elsewhere).
    """
    from ..io.experiment_file import load_file
    from ..analysis.element_spectra import element_spectra, rebin_calibration
    from ..io.potku_events import read_asc
    from ..io.potku_selections import read_cuts, read_sel

    ef = load_file(path)
    sp, fs = ef.spectra, ef.fit
    if not isinstance(sp, dict) or sp.get("format") != "potku":
        raise RecoilsimError("spectra.format", sp.get("format") if isinstance(sp, dict) else sp,
                             "'potku' with asc, sel, cuts and [spectra.elements]")
    if not isinstance(fs, dict) or fs.get("method") not in METHODS:
        raise RecoilsimError("fit.method", fs.get("method") if isinstance(fs, dict) else fs,
                             "'film' (fit_film) or 'profiles' (fit_profiles)")
    for name, d, keys in (("spectra", sp, SPECTRA_KEYS), ("fit", fs, METHODS[fs["method"]])):
        extra = sorted(set(d) - keys)
        if extra:
            raise RecoilsimError(f"{name}.{extra[0]}", extra[0], f"one of {sorted(keys)}"
                                 + (f" (method '{fs['method']}')" if name == "fit" else ""))
    base = Path(data_dir) if data_dir is not None else ef.resolve(sp.get("data_dir", "."))
    asc = base / _need(sp, "asc", "spectra", "the list-mode file (.asc)")
    sel = base / _need(sp, "sel", "spectra", "the selection file (.sel)")
    cutdir = base / _need(sp, "cuts", "spectra", "the folder of .cut files")
    if not asc.is_file():
        raise RecoilsimError("spectra.asc", str(asc), "an existing Potku .asc file (is the data folder there?)")
    elements = _need(sp, "elements", "spectra", "a table element -> isotope labels, e.g. Li = [\"6Li\", \"7Li\"]")
    if not isinstance(elements, dict) or not elements:
        raise RecoilsimError("spectra.elements", elements, "a table element -> list of isotope labels")
    events = read_asc(asc)
    selections = read_sel(sel)
    cuts = read_cuts(cutdir)
    exp0 = ef.experiment
    rebin = int(fs.get("rebin", 1))
    det = exp0.detector
    if rebin < 1 or det.n_channels % rebin:
        raise RecoilsimError("fit.rebin", fs.get("rebin"), f"a divisor of detector.n_channels ({det.n_channels})")
    cal = (det.calibration_a_ns, det.calibration_b_ns)
    measured = element_spectra(events, selections, elements, det.n_channels, rebin, calibration=cal)
    a_ns, b_ns = rebin_calibration(*cal, rebin)
    exp = dataclasses.replace(exp0, recoils=list(elements),
                              detector=dataclasses.replace(det, calibration_a_ns=a_ns, calibration_b_ns=b_ns,
                                                           n_channels=det.n_channels // rebin))
    wins = {}
    for el, w in dict(fs.get("windows", {})).items():
        if el not in elements:
            raise RecoilsimError(f"fit.windows.{el}", el, f"an element of [spectra.elements] ({', '.join(elements)})")
        if not (isinstance(w, list) and len(w) == 2 and all(isinstance(v, int) for v in w) and 0 <= w[0] < w[1]):
            raise RecoilsimError(f"fit.windows.{el}", w, "[first, last] raw TOF channels (integers, first < last)")
        wins[el] = (w[0] // rebin, min(w[1], det.n_channels - 1) // rebin)
    return PotkuCase(Path(path), exp, exp0, events, selections, cuts, dict(elements), rebin, measured, wins, dict(fs),
                     [str(asc), str(sel), str(Path(path))] + [str(c.path) for c in cuts.values()])


def load_case_for_output(path: os.PathLike | str, out_dir: os.PathLike | str, names, data_dir=None,
                         overwrite: bool = False) -> tuple[PotkuCase, Path]:
    """The case of an experiment file and its checked output folder: the folder is checked before
    the data are read (cheap failures first), and again against every input once they are known;
    it may not lie inside the data folder."""
    from ..io.outputs import check_output_dir

    out = check_output_dir(out_dir, names, inputs=[path], overwrite=overwrite)
    case = load_case(path, data_dir)
    data_root = Path(case.inputs[0]).resolve().parent
    if out.resolve() == data_root or data_root in out.resolve().parents:
        raise RecoilsimError("output folder", str(out), f"a folder outside the input data ({data_root})")
    check_output_dir(out, names, inputs=case.inputs, overwrite=overwrite)
    return case, out


def background_option(fs: dict) -> str | None:
    """The ``[fit] background`` setting as FitParameters.background ("constant" unless given)."""
    bg = fs.get("background", "constant")
    if bg not in ("constant", "linear", "none"):
        raise RecoilsimError("fit.background", bg, "'constant' (default), 'linear' or 'none'")
    return None if bg == "none" else bg


def fit_case(case: PotkuCase, progress: Callable[[str], None] | None = None):
    """Run :func:`recoilsim.fitting.film.fit_film` with the file's ``[fit]`` settings."""
    from ..fitting.film import fit_film

    fs = case.fit
    meas = {e: case.measured["counts"].sel(element=e).values.astype(float) for e in case.elements}
    return fit_film(case.experiment, meas, layer=fs.get("layer", 0), fast=fs.get("fast", "Li"),
                    background=background_option(fs),
                    ratios=tuple(fs.get("ratios", ("Mn",))), interface=fs.get("interface"),
                    mix_element=fs.get("mix_element", "Si"), windows=case.windows,
                    fit_b=bool(fs.get("fit_calibration_offset", False)), max_iter=int(fs.get("max_iter", 20)),
                    tol=float(fs.get("tol", 0.1)), timing_tail=bool(fs.get("fit_timing_tail", False)), progress=progress)


# ------------------------------------------------------------------------------ plots

def _figure(nrows, ncols, size):
    from ..plots.save import new_figure
    fig = new_figure(size, dpi=110)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _save(fig, path, inputs):
    from ..plots.save import save_figure
    fig.tight_layout()
    return save_figure(fig, path, inputs=inputs, fmt="png")


def plot_spectra(case: PotkuCase, sim: xr.Dataset, path, title: str):
    """Measured element spectra (counts per bin against time of flight) with a simulation."""
    els = list(case.elements)
    fig, axs = _figure(1, len(els), (3.3 * len(els), 3.4))
    t = case.measured["time_ns"].values
    for ax, el in zip(axs[0], els):
        d = case.measured["counts"].sel(element=el).values
        lo, hi = case.windows.get(el, (int(np.argmax(d > 0)), len(d) - 1 - int(np.argmax(d[::-1] > 0))))
        sl = slice(max(lo - 10, 0), hi + 10)
        ax.step(t[sl], d[sl], where="mid", color="k", lw=0.7, label=f"data ({int(d.sum())} ev)")
        ax.plot(t[sl], sim["counts"].sel(element=el).values[sl], color="C0", lw=1.1, label="simulation")
        ax.set_title(f"{el}: cuts {case.measured['cuts'].sel(element=el).item()}", fontsize=9)
        ax.set_xlabel("time of flight (ns)")
        ax.legend(fontsize=7)
    axs[0, 0].set_ylabel(f"counts per {case.rebin} channels")
    fig.suptitle(title, fontsize=10)
    return _save(fig, path, case.inputs)


def plot_fit(case: PotkuCase, result, path):
    """Data, fitted model and deviance residuals per element, with the composition in the title."""
    ds = result.fit.dataset
    els = [e for e in case.elements if np.isfinite(ds["fitted"].sel(measurement=0, element=e).values).any()]
    fig, axs = _figure(2, len(els), (3.4 * len(els), 5.2))
    t = case.measured["time_ns"].values
    for k, el in enumerate(els):
        f = ds["fitted"].sel(measurement=0, element=el).values
        d = ds["measured"].sel(measurement=0, element=el).values
        r = ds["residual"].sel(measurement=0, element=el).values
        w = np.nonzero(np.isfinite(f))[0]
        ax = axs[0, k]
        ax.step(t[w], d[w], where="mid", color="k", lw=0.7, label="data")
        ax.plot(t[w], f[w], color="C3", lw=1.2, label="fit")
        g = result.summary["goodness"]["per_element"].get(el, {})
        ax.set_title(f"{el}: deviance {g.get('deviance', float('nan')):.0f} / {g.get('n', 0)} bins", fontsize=9)
        axs[1, k].plot(t[w], r[w], ".", ms=2.5, color="C0")
        axs[1, k].axhline(0, color="k", lw=0.5)
        axs[1, k].set_xlabel("time of flight (ns)")
    axs[0, 0].set_ylabel(f"counts per {case.rebin} channels")
    axs[1, 0].set_ylabel("deviance residual")
    axs[0, 0].legend(fontsize=7)
    s = result.summary
    fr = ", ".join(f"{e} {v['fraction']:.3f}" for e, v in s["film"].items())
    fig.suptitle(f"film: {fr} (atomic fractions); {s['thickness']['areal_density_1e15']:.0f}e15 at/cm2; "
                 f"deviance/dof = {s['goodness']['reduced_deviance']:.2f}", fontsize=9)
    return _save(fig, path, case.inputs)


# ------------------------------------------------------------------------------ run

def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


OUTPUT_NAMES = ("tofe.png", "measured_spectra.nc", "spectra.png", "fit.png", "fit.nc", "simulation.nc",
                "summary.json", "summary.txt")


def run(path: os.PathLike | str, out_dir: os.PathLike | str, data_dir: os.PathLike | str | None = None,
        progress: Callable[[str], None] | None = None, overwrite: bool = False) -> dict:
    """Read, cut, plot, simulate, fit and write everything (see the module docstring).

    The output folder is checked before anything is read or fitted and created only then
    (:func:`recoilsim.io.outputs.check_output_dir`; ``overwrite`` allows replacing an earlier
    run's outputs); while it is written it holds a file ``INCOMPLETE``, which stays if the run is
    interrupted.

    Returns the summary dict (also written as ``summary.json``); its ``status`` is the film
    fit's status and ``files`` lists what was written.
    """
    from ..io.experiment_file import load_file
    from ..io.outputs import writing

    t0 = time.perf_counter()
    say = progress or (lambda s: None)
    fs = load_file(path).fit
    if isinstance(fs, dict) and fs.get("method") == "profiles":
        from .potku_profiles import run_profiles
        summary = run_profiles(path, out_dir, data_dir, overwrite=overwrite)
        say(summary["text"])
        for f in summary["files"]:
            say(f"wrote {f}")
        return summary
    case, out = load_case_for_output(path, out_dir, OUTPUT_NAMES, data_dir, overwrite)
    with writing(out, "fit") as out:
        return _fit_and_write(case, out, say, t0)


def _fit_and_write(case: PotkuCase, out: Path, say: Callable[[str], None], t0: float) -> dict:
    from ..io.atomic import atomic_write, write_netcdf
    from ..analysis.element_spectra import tof_e_histogram
    from ..plots.tof_e import plot_tof_e
    from ..forward.simulate import simulate

    files = []
    counts = {lab: int(c.tof.size) for lab, c in case.cuts.items()}
    say(f"read {case.events.sizes['event']} events, {len(case.selections)} polygons, {len(case.cuts)} cut files")
    for el in case.elements:
        m = case.measured.sel(element=el)
        say(f"  {el} ({m['cuts'].item()}): {int(m['n_events'])} events, {int(m['n_in_range'])} below channel "
            f"{case.measured.attrs['n_channels_raw']}")
    hist = tof_e_histogram(case.events, tof_bin=16, energy_bin=16)
    files.append(plot_tof_e(hist, case.selections, out / "tofe.png", inputs=case.inputs,
                            title=f"{case.experiment.name}: TOF-E with the Potku cuts"))
    files.append(write_netcdf(case.measured, out / "measured_spectra.nc", inputs=case.inputs))
    sim0 = simulate(case.experiment)
    files.append(plot_spectra(case, sim0, out / "spectra.png", "measured spectra and the simulation at the start values"))
    say("fitting (re-nominalised film fits until nothing moves by 0.1 sigma) ...")
    res = fit_case(case, progress=lambda s: say("  " + s))
    if res.fit is None or res.fit.dataset is None:
        raise RecoilsimError("fit", res.status, f"a fit that produced a result ({res.message})")
    files.append(plot_fit(case, res, out / "fit.png"))
    fitds = res.fit.dataset.copy()
    fitds = fitds.merge(res.composition.rename({k: f"film_{k}" for k in res.composition.data_vars}), compat="override")
    fitds.attrs.update(res.composition.attrs)
    files.append(write_netcdf(fitds, out / "fit.nc", inputs=case.inputs))
    files.append(write_netcdf(simulate(res.experiment), out / "simulation.nc", inputs=case.inputs))
    summary = dict(res.summary)
    summary.update(
        experiment_file=str(case.path), data=case.inputs[:2], rebin=case.rebin,
        windows_bins={e: list(w) for e, w in case.windows.items()},
        events_total=int(case.events.sizes["event"]), cut_file_events=counts,
        element_events={e: int(case.measured["n_events"].sel(element=e)) for e in case.elements},
        iterations_detail=res.iterations, total_runtime_s=time.perf_counter() - t0)
    text = res.table()
    summary["files"] = [str(f) for f in files] + [str(out / "summary.json"), str(out / "summary.txt")]
    for name, body in (("summary.json", json.dumps(summary, indent=1, default=_json_default)),
                       ("summary.txt", text + "\n")):
        with atomic_write(out / name) as f:
            f.write(body)
    say(text)
    say(f"wrote {len(summary['files'])} files to {out} in {summary['total_runtime_s']:.1f} s")
    return summary
