"""``recoilsim fit experiment.toml spectra...``: measured spectra files -> depth profile fit -> files.

Each spectra file is one measurement, read through the package's readers:

* netCDF written by ``recoilsim simulate`` (variable ``counts`` with dims element, channel;
  :func:`recoilsim.io.atomic.read_netcdf`);
* the CSV written by ``recoilsim simulate`` (``channel, time_ns, <element>..., <element>_depth_nm``):
  every column named after a recoil of the experiment is that element's spectrum;
* a ``channel,counts`` text or CSV table of the fitted element (header optional;
  :func:`recoilsim.io.spectra.read_spectrum`).

Channels must be integers in 0 .. ``detector.n_channels - 1``; channels not in the file count 0.
The output folder is checked before anything is fitted (:func:`recoilsim.io.outputs.check_output_dir`)
and written with a marker while it is incomplete; every file is written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import RecoilsimError

__all__ = ["OUTPUT_NAMES", "read_measurement", "run"]

OUTPUT_NAMES = ("summary.txt", "fit.nc", "fit.png")
_NETCDF = (".nc", ".nc4", ".netcdf", ".cdf")


def _from_netcdf(path: Path, exp):
    from ..io.atomic import read_netcdf

    ds = read_netcdf(path, finite=("counts",))
    if "counts" not in ds or set(ds["counts"].dims) != {"element", "channel"}:
        raise RecoilsimError(f"spectra file {path}", sorted(map(str, ds.data_vars)),
                             "a netCDF written by recoilsim simulate (variable counts with dims element, channel)")
    counts = ds["counts"].transpose("element", "channel")
    n = exp.detector.n_channels
    if counts.sizes["channel"] != n:
        raise RecoilsimError(f"spectra file {path} (channels)", counts.sizes["channel"],
                             f"detector.n_channels = {n} channels, as in the experiment file")
    if float(counts.min()) < 0:
        raise RecoilsimError(f"spectra file {path} (counts)", float(counts.min()), "counts >= 0")
    return counts


def _into_channels(path: Path, spectrum, n: int, column: str) -> np.ndarray:
    ch = spectrum["channel"].values
    if ch.size and int(ch.max()) >= n:
        raise RecoilsimError(f"spectra file {path} (channel)", int(ch.max()),
                             f"a channel in 0 .. {n - 1} (detector.n_channels = {n})")
    out = np.zeros(n)
    out[ch] = np.asarray(spectrum.values, dtype=float)
    return out


def read_measurement(path: os.PathLike | str, exp, element: str = "Li"):
    """One measurement's spectra from a file (see the module docstring).

    Returns
    -------
    xarray.DataArray (element, channel) from a netCDF, or {element: counts per channel}.
    """
    from ..io.files import input_path, read_head
    from ..io.spectra import read_spectrum

    p = input_path(path, "spectra file")
    if p.suffix.lower() in _NETCDF:
        return _from_netcdf(p, exp)
    n = exp.detector.n_channels
    _, head = read_head(p, "spectra file", n=4096)
    first = next((ln for ln in head.decode("utf-8", "replace").splitlines()
                  if ln.strip() and not ln.lstrip().startswith(("#", "%", "!", "//"))), "")
    names = [t.strip() for t in first.replace(";", ",").replace("\t", ",").split(",")] if "," in first or \
        ";" in first or "\t" in first else first.split()
    recoils = {iso.symbol for iso in exp.recoil_isotopes()}
    columns = [c for c in names if c in recoils]
    if "channel" in names and columns:  # the CSV that simulate writes
        return {c: _into_channels(p, read_spectrum(p, counts_column=c, channel_column="channel"), n, c)
                for c in columns}
    if len(names) < 2:
        raise RecoilsimError(f"spectra file {p}", first[:60] or "no data",
                             "two columns channel,counts (or the .csv/.nc that recoilsim simulate writes)")
    return {element: _into_channels(p, read_spectrum(p), n, "counts")}


def run(experiment_path: os.PathLike | str, spectra_paths: Sequence[os.PathLike | str], out_dir: os.PathLike | str,
        element: str = "Li", layer: int | str = 1, depth_max_nm: float = 60.0, n_nodes: int = 50,
        n_bootstrap: int = 0, overwrite: bool = False, progress: bool = True, background: str | None = "constant"):
    """Load the experiment and the spectra, check the output folder, fit, write ``summary.txt``,
    ``fit.nc`` and ``fit.png`` (see :func:`recoilsim.fitting.driver.fit`).

    ``background``: a background level per element window is fitted by default ("constant"; or
    "linear", or None): these are measured spectra.

    Returns
    -------
    FitResult
    """
    from ..fitting.driver import fit
    from ..fitting.parameters import FitParameters
    from ..io.atomic import atomic_write, write_netcdf
    from ..io.experiment_file import load_experiment
    from ..io.outputs import check_output_dir, writing

    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise RecoilsimError("--bootstrap", n_bootstrap, "a number of resamples >= 0")
    if not spectra_paths:
        raise RecoilsimError("spectra", "none given", "pass a spectra file per measurement")
    inputs = [experiment_path, *spectra_paths]
    out = check_output_dir(out_dir, OUTPUT_NAMES, inputs=inputs, overwrite=overwrite)
    exp = load_experiment(experiment_path)
    meas = [read_measurement(sp, exp, element) for sp in spectra_paths]
    par = FitParameters(element=element, layer=layer, depth_nm=np.linspace(0, depth_max_nm, n_nodes),
                        background=background)
    res = fit(exp, meas, par, n_bootstrap=int(n_bootstrap), progress=progress)
    with writing(out, "fit") as out:
        with atomic_write(out / "summary.txt") as f:
            f.write(res.summary(print_it=progress))
        if res.dataset is not None:
            write_netcdf(res.dataset, out / "fit.nc", inputs=inputs)
            res.plot(out / "fit.png")
    return res
