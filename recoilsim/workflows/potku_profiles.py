"""Depth profiles of every element of a Potku measurement (``recoilsim profiles FILE.toml``).

Reads the measurement as :func:`recoilsim.workflows.potku.load_case` does (the same TOML: beam,
geometry, detector, start sample, ``[spectra]``, fit windows and rebinning of ``[fit]``), fits
every element's profile with :func:`recoilsim.fitting.depth_profiles.fit_profiles` (start
composition from the file's sample; Q*Omega, TOF offset and a background per spectrum free; the
``[fit]`` keys of ``method = "profiles"`` set nodes, depth_max, breaks, ...) and
writes ``profiles.csv``, ``profiles.nc``, ``profiles.png`` (linear at.%), ``profiles_log.png``,
``profiles_fit.png`` (spectra and model) and ``profiles_summary.txt``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import RecoilsimError
from .potku import PotkuCase, load_case_for_output


def profile_settings(fs: dict, n_nodes: int | None = None, depth_max_1e15: float | None = None,
                     breaks: bool | None = None) -> dict:
    """fit_profiles keywords from the file's ``[fit]`` section (``method = "profiles"``: nodes,
    depth_max, breaks, fit_calibration_offset, background), the arguments given here first."""
    if fs.get("method", "profiles") != "profiles":  # a film file run by `recoilsim profiles`: its keys are the film's
        fs = {k: fs[k] for k in ("fit_calibration_offset",) if k in fs}
    nodes = fs.get("nodes", 30) if n_nodes is None else n_nodes
    if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 3:
        raise RecoilsimError("fit.nodes", nodes, "an integer >= 3")
    zmax = fs.get("depth_max") if depth_max_1e15 is None else depth_max_1e15
    if zmax is not None and (isinstance(zmax, bool) or not isinstance(zmax, (int, float)) or zmax <= 0):
        raise RecoilsimError("fit.depth_max", zmax, "a depth > 0 in 1e15 atoms/cm2")
    out = {"n_nodes": nodes, "depth_max_1e15": None if zmax is None else float(zmax)}
    for key, name, default in (("breaks", "breaks", False), ("fit_b", "fit_calibration_offset", True)):
        v = fs.get(name, default) if key != "breaks" or breaks is None else breaks
        if not isinstance(v, bool):
            raise RecoilsimError(f"fit.{name}", v, "true or false")
        out[key] = v
    bg = fs.get("background", "constant")
    if bg not in ("constant", "none"):
        raise RecoilsimError("fit.background", bg, "'constant' (default) or 'none' for method 'profiles'")
    out["background"] = bg == "constant"
    return out


def fit_case_profiles(case: PotkuCase, n_nodes: int | None = None, depth_max_1e15: float | None = None,
                      breaks: bool | None = None, **kwargs):
    """:func:`~recoilsim.fitting.depth_profiles.fit_profiles` on a Potku case's spectra and windows,
    with the settings of its ``[fit]`` section (:func:`profile_settings`; the arguments override them)."""
    from ..fitting.depth_profiles import fit_profiles
    meas = {e: case.measured["counts"].sel(element=e).values.astype(float) for e in case.elements}
    settings = profile_settings(case.fit, n_nodes, depth_max_1e15, breaks)
    settings.update(kwargs)
    return fit_profiles(case.experiment, meas, windows=case.windows, **settings)


def plot_profile_fit(case: PotkuCase, result, path) -> Path:
    """Measured spectra and the profile fit's model (the lambda of largest evidence) per element."""
    from ..plots.save import new_figure, save_figure
    ds = result.dataset
    els = [str(e) for e in ds["spectrum"].values]
    fig = new_figure(figsize=(3.3 * len(els), 3.4), dpi=110)
    axs = fig.subplots(1, len(els), squeeze=False)[0]
    t = case.measured["time_ns"].values
    for ax, e in zip(axs, els):
        f = ds["fitted"].sel(spectrum=e).values
        w = np.nonzero(np.isfinite(f))[0]
        ax.step(t[w], ds["measured"].sel(spectrum=e).values[w], where="mid", color="k", lw=0.7, label="data")
        ax.plot(t[w], f[w], color="C3", lw=1.1, label="profile fit")
        ax.set_title(e, fontsize=9)
        ax.set_xlabel("time of flight (ns)")
    axs[0].set_ylabel(f"counts per {case.rebin} channels")
    axs[0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, inputs=case.inputs)


OUTPUT_NAMES = ("profiles.nc", "profiles.csv", "profiles.png", "profiles_log.png", "profiles_fit.png",
                "profiles_summary.txt")


def run_profiles(path: os.PathLike | str, out_dir: os.PathLike | str, data_dir: os.PathLike | str | None = None,
                 n_nodes: int | None = None, depth_max_1e15: float | None = None, breaks: bool | None = None,
                 overwrite: bool = False) -> dict:
    """Read the measurement, fit every element's depth profile, write the files; returns a summary dict.

    ``n_nodes``, ``depth_max_1e15``, ``breaks``: None takes the file's ``[fit]`` value (``nodes``,
    ``depth_max``, ``breaks`` with ``method = "profiles"``), else 30 nodes, the depth the windows
    see, no breaks.

    The output folder is checked before anything is read (:func:`recoilsim.io.outputs.check_output_dir`;
    ``overwrite`` replaces an earlier run's outputs) and marked ``INCOMPLETE`` while it is written.
    """
    from ..io.atomic import atomic_write, write_netcdf
    from ..io.outputs import writing
    from ..plots.profiles import plot_profiles
    case, out = load_case_for_output(path, out_dir, OUTPUT_NAMES, data_dir, overwrite)
    res = fit_case_profiles(case, n_nodes=n_nodes, depth_max_1e15=depth_max_1e15, breaks=breaks)
    with writing(out, "profiles") as out:
        files = [write_netcdf(res.dataset, out / "profiles.nc", inputs=case.inputs)]
        res.to_csv(out / "profiles.csv")
        files.append(out / "profiles.csv")
        files.append(plot_profiles(res.dataset, out / "profiles.png", title=f"{case.experiment.name}: depth profiles",
                                   inputs=case.inputs))
        files.append(plot_profiles(res.dataset, out / "profiles_log.png", log=True,
                                   title=f"{case.experiment.name}: depth profiles (log)", inputs=case.inputs))
        files.append(plot_profile_fit(case, res, out / "profiles_fit.png"))
        text = res.table()
        with atomic_write(out / "profiles_summary.txt") as f:
            f.write(text + "\n")
        files.append(out / "profiles_summary.txt")
    return {"status": res.status, "message": res.message, "text": text, "files": [str(f) for f in files],
            "runtime_s": res.dataset.attrs["runtime_s"]}
