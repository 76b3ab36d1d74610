"""Writing IBA Data Format (IDF) files: measured and simulated TOF spectra with the sample,
beam, geometry and time calibration, read back by :func:`recoilsim.io.idf.read_idf` (layout in
that module's docstring). Numbers are written with Python's shortest round-trip repr, so
write -> read returns identical floats; the file is written atomically, never over an input.
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import xarray as xr

from ..errors import RecoilsimError
from .atomic import atomic_write, refuse_overwrite_inputs
from .idf import IDF_NS

__all__ = ["write_idf"]

def _q(tag: str) -> str:
    return f"{{{IDF_NS}}}{tag}"


def _sub(parent: ET.Element, tag: str, text=None, **attrs) -> ET.Element:
    el = ET.SubElement(parent, _q(tag), {k: str(v) for k, v in attrs.items()})
    if text is not None:
        el.text = text if isinstance(text, str) else _f(text)
    return el


def _f(v) -> str:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))
    return repr(float(v))


def _xml_text(s: str, what: str) -> str:
    s = str(s)
    if re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", s):
        raise RecoilsimError(what, s[:40], "text without control characters")
    return s


def _layer_rows(sample, max_sublayer_1e15: float):
    """(name, areal density, {element or isotope: fraction}) rows; graded layers are sliced."""
    rows = []
    for li, layer in enumerate(sample.layers):
        iso_split = {}
        for sym, enr in layer.enrichment.items():
            iso_split[sym] = enr
        els = layer.elements()
        name = layer.name or f"layer {li + 1}"
        if not layer.profiles:
            edges = np.array([0.0, layer.areal_density_1e15])
        else:
            t = layer.areal_density_1e15
            bps = np.concatenate([[0.0], layer.profile_breakpoints_1e15(), [t]])
            edges = [0.0]
            for a, b in zip(bps[:-1], bps[1:]):
                ends = layer.fractions_at(np.array([a, b]), els)
                flat = np.allclose(ends[0], ends[1], rtol=0, atol=1e-12)
                n = 1 if flat else max(1, int(math.ceil((b - a) / max_sublayer_1e15)))
                edges.extend(np.linspace(a, b, n + 1)[1:])
            edges = np.asarray(edges)
        for k in range(edges.size - 1):
            mid = 0.5 * (edges[k] + edges[k + 1])
            fr = layer.fractions_at(np.array([mid]), els)[0]
            comp = {}
            for e, f in zip(els, fr):
                if f <= 0:
                    continue
                if e in iso_split:
                    for A, a in iso_split[e].items():
                        if a > 0:
                            comp[f"{A}{e}"] = f * a
                else:
                    comp[e] = f
            rows.append((name if edges.size == 2 else f"{name} [{k + 1}]", float(edges[k + 1] - edges[k]), comp))
    return rows


def _as_spectra(spectrum) -> list[tuple[str, xr.DataArray]]:
    if spectrum is None:
        return []
    if isinstance(spectrum, xr.Dataset):
        if "counts" not in spectrum:
            raise RecoilsimError("spectrum", list(spectrum.data_vars), "a Dataset with a 'counts' variable")
        return _as_spectra(spectrum["counts"])
    if isinstance(spectrum, Mapping):
        items = list(spectrum.items())
    elif isinstance(spectrum, xr.DataArray):
        if spectrum.ndim == 1:
            items = [(str(spectrum.attrs.get("recoil", spectrum.name or "")), spectrum)]
        elif spectrum.ndim == 2 and "channel" in spectrum.dims:
            other = [d for d in spectrum.dims if d != "channel"][0]
            items = [(str(v), spectrum.sel({other: v})) for v in spectrum[other].values]
        else:
            raise RecoilsimError("spectrum", spectrum.dims, "dims ('channel',) or (label, 'channel')")
    else:
        raise RecoilsimError("spectrum", type(spectrum).__name__, "an xarray DataArray/Dataset or a dict of them")
    out = []
    for label, da in items:
        if not isinstance(da, xr.DataArray) or da.dims != ("channel",):
            raise RecoilsimError(f"spectrum[{label}]", getattr(da, "dims", type(da).__name__), "a DataArray with dim 'channel'")
        v = np.asarray(da.values, dtype=float)
        if not np.all(np.isfinite(v)) or np.any(v < 0):
            raise RecoilsimError(f"spectrum[{label}]", "negative or non-finite values", "finite counts >= 0")
        out.append((label, da))
    return out


def write_idf(path: os.PathLike | str, spectrum=None, sample=None, *, simulation=None, experiment=None,
              beam=None, geometry=None, calibration_ns: tuple[float, float] | None = None,
              solid_angle_msr: float | None = None, technique: str = "ERDA", description: str = "",
              notes: Sequence[str] = (), inputs: Iterable[os.PathLike | str] = (),
              max_sublayer_1e15: float = 10.0) -> Path:
    """Write spectra (measured and/or simulated/fitted) with their sample to an IDF file, atomically.

    Parameters
    ----------
    path : output file (``.xml``/``.idf``/``.xnra``)
    spectrum : DataArray (dim ``channel``), 2-D DataArray (label, ``channel``), Dataset with
        ``counts``, or dict label -> DataArray. Written as ``<data>`` of one ``<spectrum>`` each.
    sample : recoilsim Sample (default: ``experiment.sample``). Graded layers are written as
        uniform sublayers of at most ``max_sublayer_1e15``.
    simulation : same forms as ``spectrum``; written as ``process/simulations/simulation``
        (type ``total``) of the spectrum with the same label (or position).
    experiment : recoilsim Experiment supplying beam, geometry, calibration, solid angle, sample.
    beam, geometry : recoilsim Beam / Geometry (override ``experiment``'s).
    calibration_ns : (slope, offset) of t = slope * channel + offset.
    inputs : paths the output must not overwrite.
    """
    if experiment is not None:
        sample = sample if sample is not None else experiment.sample
        beam = beam if beam is not None else experiment.beam
        geometry = geometry if geometry is not None else experiment.geometry
        det = experiment.detector
        if calibration_ns is None:
            calibration_ns = (det.calibration_a_ns, det.calibration_b_ns)
        if solid_angle_msr is None:
            solid_angle_msr = det.solid_angle_msr
    data = _as_spectra(spectrum)
    sims = _as_spectra(simulation)
    if not data and not sims and sample is None:
        raise RecoilsimError("write_idf", "nothing to write", "a spectrum, a simulation or a sample")
    out = Path(path)
    refuse_overwrite_inputs(out, inputs)
    root = ET.Element(_q("idf"))
    attrs = _sub(root, "attributes")
    _sub(attrs, "idfversion", "1.01")
    _sub(attrs, "filename", _xml_text(out.name, "path"))
    from .. import __version__
    allnotes = [f"written by recoilsim {__version__}", *map(str, notes)]
    ne = _sub(root, "notes")
    for n in allnotes:
        _sub(ne, "note", _xml_text(n, "notes"))
    smp = _sub(root, "sample")
    if description:
        _sub(smp, "description", _xml_text(description, "description"))
    if sample is not None:
        from ..model.sample import Sample

        if not isinstance(sample, Sample):
            raise RecoilsimError("sample", type(sample).__name__, "a recoilsim Sample")
        layers_el = _sub(_sub(_sub(smp, "structure"), "layeredstructure"), "layers")
        for name, t, comp in _layer_rows(sample, max_sublayer_1e15):
            le = _sub(layers_el, "layer")
            _sub(le, "layername", _xml_text(name, "layer name"))
            _sub(le, "layerthickness", t, units="1e15at/cm2")
            les = _sub(le, "layerelements")
            for e, f in comp.items():
                el = _sub(les, "layerelement")
                _sub(el, "name", e)
                _sub(el, "concentration", f, units="fraction")
    n_spec = max(len(data), len(sims))
    if n_spec:
        spectra_el = _sub(smp, "spectra")
    sim_by_label = {lbl: da for lbl, da in sims}
    for k in range(n_spec):
        label, da = data[k] if k < len(data) else (sims[k][0], None)
        sim = sim_by_label.get(label) if label in sim_by_label else (sims[k][1] if k < len(sims) else None)
        sp = _sub(spectra_el, "spectrum")
        if beam is not None:
            b = _sub(sp, "beam")
            _sub(b, "beamparticle", beam.isotope.name)
            _sub(b, "beamZ", int(beam.isotope.Z))
            _sub(b, "beammass", beam.isotope.mass_u, units="amu")
            _sub(b, "beamenergy", beam.energy_MeV * 1000.0, units="keV")
            _sub(b, "beamfluence", beam.fluence, units="#particles")
        if geometry is not None:
            g = _sub(sp, "geometry")
            _sub(g, "geometrytype", "general")
            _sub(g, "incidenceangle", geometry.incidence_deg, units="degree")
            _sub(g, "scatteringangle", geometry.recoil_deg, units="degree")
            _sub(g, "exitangle", geometry.exit_deg, units="degree")
        if solid_angle_msr is not None:
            _sub(_sub(_sub(sp, "detection"), "detector"), "solidangle", float(solid_angle_msr), units="msr")
        if calibration_ns is not None:
            a, b0 = (float(v) for v in calibration_ns)
            if not (math.isfinite(a) and math.isfinite(b0)) or a == 0:
                raise RecoilsimError("calibration_ns", calibration_ns, "finite (slope != 0, offset) in ns")
            cal = _sub(_sub(_sub(sp, "calibrations"), "energycalibrations"), "energycalibration")
            _sub(cal, "calibrationmode", "time")
            cps = _sub(cal, "calibrationparameters")
            _sub(cps, "calibrationparameter", b0, units="ns")
            _sub(cps, "calibrationparameter", a, units="ns/channel")
        r = _sub(sp, "reactions")
        _sub(r, "technique", _xml_text(technique, "technique"))
        recoil = label.split(".")[0] if label else ""
        if recoil and re.fullmatch(r"\d*[A-Z][a-z]?", recoil):
            _sub(_sub(r, "reaction"), "exitparticle", recoil)
        if da is not None:
            _simpledata(_sub(sp, "data"), da)
        if sim is not None:
            s = _sub(_sub(_sub(sp, "process"), "simulations"), "simulation")
            _sub(s, "simulationtype", "total")
            _simpledata(s, sim)
    tree = ET.ElementTree(root)
    ET.register_namespace("", IDF_NS)
    ET.indent(tree, space="  ")
    with atomic_write(out, "wb") as f:
        tree.write(f, encoding="utf-8", xml_declaration=True, default_namespace=None)
    return out


def _simpledata(node: ET.Element, da: xr.DataArray) -> None:
    _sub(node, "datamode", "simple")
    _sub(node, "channelmode", "left")
    sd = _sub(node, "simpledata")
    xa = _sub(sd, "xaxis")
    _sub(xa, "axisname", "channel")
    _sub(xa, "axisunit", "#")
    ya = _sub(sd, "yaxis")
    _sub(ya, "axisname", "yield")
    _sub(ya, "axisunit", "counts")
    ch = da["channel"].values if "channel" in da.coords else np.arange(da.size)
    _sub(sd, "x", " ".join(str(int(c)) for c in ch))
    _sub(sd, "y", " ".join(_f(v) for v in np.asarray(da.values)))
