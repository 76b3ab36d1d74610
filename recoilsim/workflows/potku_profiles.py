"""Depth profiles of every element of a Potku measurement (``recoilsim profiles FILE.toml``).

Reads the measurement as :func:`recoilsim.workflows.potku.load_case` does (the same TOML: beam,
geometry, detector, start sample, ``[spectra]``, fit windows and rebinning of ``[fit]``), fits
every element's profile with :func:`recoilsim.fitting.depth_profiles.fit_profiles` (start
composition from the file's sample; Q*Omega, TOF offset and a background per spectrum free) and
writes ``profiles.csv``, ``profiles.nc``, ``profiles.png`` (linear at.%), ``profiles_log.png``,
``profiles_fit.png`` (spectra and model) and ``profiles_summary.txt``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import RecoilsimError
from .potku import PotkuCase, load_case


def fit_case_profiles(case: PotkuCase, n_nodes: int = 30, depth_max_1e15: float | None = None, breaks: bool = False,
                      **kwargs):
    """:func:`~recoilsim.fitting.depth_profiles.fit_profiles` on a Potku case's spectra and windows."""
    from ..fitting.depth_profiles import fit_profiles
    meas = {e: case.measured["counts"].sel(element=e).values.astype(float) for e in case.elements}
    return fit_profiles(case.experiment, meas, windows=case.windows, n_nodes=n_nodes, depth_max_1e15=depth_max_1e15,
                        breaks=breaks, **kwargs)


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
                 n_nodes: int = 30, depth_max_1e15: float | None = None, breaks: bool = False,
                 overwrite: bool = False) -> dict:
    """Read the measurement, fit every element's depth profile, write the files; returns a summary dict.

    The output folder is checked before anything is read (:func:`recoilsim.io.outputs.check_output_dir`;
    ``overwrite`` replaces an earlier run's outputs) and marked ``INCOMPLETE`` while it is written.
    """
    from ..io.atomic import atomic_write, write_netcdf
    from ..io.outputs import check_output_dir, writing
    from ..plots.profiles import plot_profiles
    out = check_output_dir(out_dir, OUTPUT_NAMES, inputs=[path], overwrite=overwrite)
    case = load_case(path, data_dir)
    data_root = Path(case.inputs[0]).resolve().parent
    if out.resolve() == data_root or data_root in out.resolve().parents:
        raise RecoilsimError("output folder", str(out), f"a folder outside the input data ({data_root})")
    check_output_dir(out, OUTPUT_NAMES, inputs=case.inputs, overwrite=overwrite)
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
