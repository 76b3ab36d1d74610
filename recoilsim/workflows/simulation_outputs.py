"""What the simulate, demo and kinematics commands report and write besides the spectra files:
the spectra as CSV, the per-element summary (surface and layer channels), the kinematics table,
measured spectra for an overlay, and an experiment from a TOML or IDF file."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import RecoilsimError

__all__ = ["channel_at", "depth_element", "kinematics_rows", "load_any_experiment", "read_measured",
           "spectra_summary", "write_spectra_csv"]


def depth_element(ds, wanted: str | None) -> str | None:
    elements = [str(e) for e in ds["element"].values] if "element" in ds.dims else []
    if wanted and wanted in elements:
        return wanted
    if wanted and wanted != "Li":
        raise RecoilsimError("--depth-for", wanted, f"an element of the spectra ({', '.join(elements)})")
    return elements[0] if elements else None


def write_spectra_csv(ds, path, depth_for: str | None = "Li", inputs: Iterable = ()) -> Path:
    """CSV of the spectra: ``channel, time_ns``, one counts column per element, then
    ``<depth_for>_depth_nm`` (mean depth of origin, empty where none). Written atomically."""
    from ..io.atomic import atomic_write, refuse_overwrite_inputs

    path = Path(path)
    refuse_overwrite_inputs(path, list(inputs))
    elements = [str(e) for e in ds["element"].values]
    depth_for = depth_element(ds, depth_for)
    cols = [np.asarray(ds["channel"].values), np.asarray(ds["time_ns"].values, dtype=float)]
    header = ["channel", "time_ns"] + elements
    cols += [np.asarray(ds["counts"].sel(element=e).values, dtype=float) for e in elements]
    if depth_for is not None and "depth_nm" in ds.coords:
        header.append(f"{depth_for}_depth_nm")
        cols.append(np.asarray(ds["depth_nm"].sel(element=depth_for).values, dtype=float))

    def fmt(v):
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        return "" if not np.isfinite(v) else f"{float(v):.10g}"

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for i in range(len(cols[0])):
        w.writerow([fmt(c[i]) for c in cols])
    with atomic_write(path, "w", newline="") as f:
        f.write(buf.getvalue())
    return path


def channel_at(ds, element: str, depth_nm: float) -> float:
    from ..plots.spectra import channel_depth_mapping

    m = channel_depth_mapping(ds, element)
    if m is None:
        return math.nan
    return float(m[1](np.array([depth_nm]))[0])


def spectra_summary(ds, exp) -> list[dict]:
    """Per element: total counts, the channel of the surface (depth 0), and the first layer that
    holds the element with the channel of that layer's top (the top layer: depth 0)."""
    rows = []
    tops = np.concatenate([[0.0], np.cumsum([l.thickness_nm if l.thickness_nm is not None else np.nan
                                             for l in exp.sample.layers])])
    for e in [str(x) for x in ds["element"].values]:
        first = next((i for i, l in enumerate(exp.sample.layers) if e in l.elements()), None)
        row = {"element": e, "counts": float(ds["counts"].sel(element=e).sum()),
               "surface_channel": channel_at(ds, e, 0.0), "first_layer": None, "first_layer_channel": math.nan}
        if first is not None and np.isfinite(tops[first]):
            row["first_layer"] = exp.sample.layers[first].name or f"layer {first}"
            row["first_layer_top_nm"] = float(tops[first])
            row["first_layer_channel"] = channel_at(ds, e, float(tops[first]))
        rows.append(row)
    return rows


def kinematics_rows(exp) -> list[dict]:
    """Per recoil isotope: K, energy at the surface (MeV), flight time over the flight length
    (ns, before any foil loss) and the screened recoil cross section (mb/sr)."""
    from ..model.experiment import SCREENING
    from ..kernels.cross_section import recoil_cross_section
    from ..kernels.kinematics import flight_time_ns, recoil_factor

    b = exp.beam
    phi = math.radians(exp.geometry.recoil_deg)
    code = SCREENING[exp.options.screening]
    rows = []
    for iso in exp.recoil_isotopes():
        k = recoil_factor(b.isotope.mass_u, iso.mass_u, phi)
        e2 = k * b.energy_MeV
        t = flight_time_ns(e2, iso.mass_u, exp.detector.flight_length_m, exp.options.relativistic)
        s = recoil_cross_section(b.isotope.Z, b.isotope.mass_u, iso.Z, iso.mass_u, b.energy_MeV, phi, code)
        rows.append({"isotope": iso.name, "K": float(k), "energy_MeV": float(e2), "flight_time_ns": float(t),
                     "cross_section_mb_sr": float(s)})
    return rows


def read_measured(path: Path):
    """Measured spectra for an overlay: a netCDF from simulate, or a text/CSV table whose
    columns are named by element (read with the package's readers)."""
    from ..io.atomic import read_netcdf
    from ..io.spectra import read_spectra

    return read_netcdf(path) if Path(path).suffix.lower() == ".nc" else read_spectra(path)


def load_any_experiment(path: Path, flight_length_m: float | None = None):
    """An experiment from a TOML file, or from an IDF/.xnra file (ERDA/TOF) by its suffix."""
    from ..io.idf_experiment import IDF_SUFFIXES, experiment_from_idf

    if Path(path).suffix.lower() in IDF_SUFFIXES:
        return experiment_from_idf(path, flight_length_m=flight_length_m)
    if flight_length_m is not None:
        raise RecoilsimError("--flight-length", flight_length_m, "only with IDF/.xnra files (a TOML file gives "
                                                                 "detector.flight_length_m)")
    from ..io.experiment_file import load_experiment

    return load_experiment(path)
