"""IBA Data Format (IDF) and SIMNRA ``.xnra`` XML: read spectra, beam, geometry, sample; write them.

IDF is the XML format of Barradas et al. (IAEA IBA intercomparison, namespace
``http://idf.schemas.itn.pt``); SIMNRA's ``.xnra`` is IDF plus elements in the
``http://www.simnra.com/simnra`` namespace, which are ignored here. The parts used:

``idf/sample/structure/layeredstructure/layers/layer``
    ``layerthickness`` (units ``1e15at/cm2``), ``layerelements/layerelement`` with ``name``
    (``Li``, ``6Li``) and ``concentration`` (atomic fraction).
``idf/sample/spectra/spectrum``
    ``beam`` (``beamparticle``, ``beamZ``, ``beammass`` amu, ``beamenergy`` keV/MeV,
    ``beamfluence`` #particles), ``geometry`` (``geometrytype``, ``incidenceangle``,
    ``scatteringangle``, ``exitangle``, degrees, incidence/exit from the normal),
    ``detection/detector/solidangle`` (msr), ``calibrations/energycalibrations/energycalibration``
    (``calibrationmode`` and ``calibrationparameters`` in IDF order offset, slope[, quadratic]),
    ``reactions/technique``, ``data/simpledata/x`` and ``y`` (channel numbers and counts) and
    ``process/simulations/simulation`` (simulated spectra, same layout).

recoilsim writes TOF spectra with ``calibrationmode`` ``time`` and parameters in ``ns`` and
``ns/channel``; numbers are written with Python's shortest round-trip repr, so write -> read
returns identical floats. Any parse failure, a root element other than ``{IDF}idf``, or a DTD
with entity declarations raises :class:`RecoilsimError`.
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import xarray as xr

from ..errors import RecoilsimError
from .atomic import atomic_write, refuse_overwrite_inputs
from .files import MiB, read_bytes

__all__ = ["IDF_NS", "SIMNRA_NS", "IdfSpectrum", "IdfDocument", "read_idf", "write_idf"]

IDF_NS = "http://idf.schemas.itn.pt"
SIMNRA_NS = "http://www.simnra.com/simnra"
_NS = {"i": IDF_NS, "s": SIMNRA_NS}
_NUCLIDE = re.compile(r"^\s*(\d*)\s*([A-Z][a-z]?)\s*$")

_UNIT = {  # (unit written, lower-case) -> (canonical, factor)
    "kev": ("keV", 1.0), "mev": ("keV", 1e3), "ev": ("keV", 1e-3),
    "degree": ("degree", 1.0), "deg": ("degree", 1.0), "degrees": ("degree", 1.0), "rad": ("degree", 180 / math.pi),
    "msr": ("msr", 1.0), "sr": ("msr", 1e3),
    "amu": ("amu", 1.0), "u": ("amu", 1.0),
    "1e15at/cm2": ("1e15at/cm2", 1.0), "at/cm2": ("1e15at/cm2", 1e-15), "1e15 at/cm2": ("1e15at/cm2", 1.0),
    "#particles": ("#particles", 1.0), "particles": ("#particles", 1.0),
    "fraction": ("fraction", 1.0), "at.%": ("fraction", 0.01), "%": ("fraction", 0.01),
    "ns": ("ns", 1.0), "ps": ("ns", 1e-3), "s": ("ns", 1e9),
    "ns/channel": ("ns/channel", 1.0), "ps/channel": ("ns/channel", 1e-3), "s/channel": ("ns/channel", 1e9),
    "kev/channel": ("keV/channel", 1.0), "kev/channel^2": ("keV/channel^2", 1.0),
    "ns/channel^2": ("ns/channel^2", 1.0),
}


@dataclass
class IdfSpectrum:
    """One ``<spectrum>``: data, simulations and the metadata that belongs to it."""

    data: xr.DataArray | None
    simulations: dict[str, xr.DataArray] = field(default_factory=dict)
    beam: dict = field(default_factory=dict)
    geometry: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)
    solid_angle_msr: float | None = None
    technique: str = ""
    recoil: str = ""


@dataclass
class IdfDocument:
    """What :func:`read_idf` found.

    ``sample`` is a :class:`recoilsim.model.sample.Sample` (None if the file has no layered
    structure); ``spectra`` the ``<spectrum>`` entries in file order; ``notes`` free text.
    """

    sample: object | None
    spectra: list[IdfSpectrum]
    notes: list[str] = field(default_factory=list)
    description: str = ""
    path: Path | None = None

    def beam(self, i: int = 0):
        """The spectrum's beam as :class:`recoilsim.model.instrument.Beam`."""
        from ..model.instrument import Beam

        b = self.spectra[i].beam
        if not b.get("ion") or not b.get("energy_MeV"):
            raise RecoilsimError(f"IDF spectrum {i} beam", b, "beamparticle (or beamZ + beammass) and beamenergy")
        kw = {"fluence": b["fluence"]} if b.get("fluence") else {}
        return Beam(b["ion"], b["energy_MeV"], **kw)

    def geometry(self, i: int = 0):
        """The spectrum's geometry as :class:`recoilsim.model.instrument.Geometry` (recoil angle =
        IDF scattering angle, which must lie in (0, 90) deg for ERDA)."""
        from ..model.instrument import Geometry

        g = self.spectra[i].geometry
        need = ("incidence_deg", "exit_deg", "scattering_deg")
        if any(g.get(k) is None for k in need):
            raise RecoilsimError(f"IDF spectrum {i} geometry", g, "incidenceangle, exitangle and scatteringangle")
        return Geometry(g["incidence_deg"], g["exit_deg"], g["scattering_deg"])


# ------------------------------------------------------------------------------------ reading

def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _where(el: ET.Element, path: str) -> str:
    return f"<{_local(el.tag)}>/{path.replace('i:', '').replace('s:', 'simnra:')}"


def _text(parent: ET.Element, path: str, default: str = "") -> str:
    el = parent.find(path, _NS)
    if el is None or el.text is None:
        return default
    return el.text.strip()


def _num(el: ET.Element, unit: str, where: str) -> float:
    raw = (el.text or "").strip()
    try:
        v = float(raw)
    except ValueError:
        raise RecoilsimError(where, raw[:40], "a number") from None
    if not math.isfinite(v):
        raise RecoilsimError(where, raw[:40], "a finite number")
    written = el.get("units")
    if written is None or written == unit:
        return v
    conv = _UNIT.get(written.strip().lower())
    if conv is None or conv[0] != unit:
        raise RecoilsimError(f"{where} units", written, f"a unit convertible to {unit}")
    return v * conv[1]


def _opt(parent: ET.Element, path: str, unit: str) -> float | None:
    el = parent.find(path, _NS)
    if el is None or not (el.text or "").strip():
        return None
    return _num(el, unit, _where(parent, path))


def _numbers(text: str, where: str) -> np.ndarray:
    toks = text.split()
    if not toks:
        return np.zeros(0)
    try:
        arr = np.array([float(t) for t in toks], dtype=float)
    except ValueError:
        bad = next(t for t in toks if not _isfloat(t))
        raise RecoilsimError(where, bad[:40], "whitespace-separated numbers") from None
    if not np.all(np.isfinite(arr)):
        raise RecoilsimError(where, "NaN/inf", "finite numbers")
    return arr


def _isfloat(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


def _channel_data(node: ET.Element | None, where: str, attrs: dict) -> xr.DataArray | None:
    if node is None:
        return None
    sd = node.find("i:simpledata", _NS)
    if sd is None:
        return None
    x = _numbers(_text(sd, "i:x"), f"{where}/simpledata/x")
    y = _numbers(_text(sd, "i:y"), f"{where}/simpledata/y")
    if y.size == 0:
        return None
    if x.size == 0:
        x = np.arange(y.size, dtype=float)
    if x.size != y.size:
        raise RecoilsimError(f"{where}/simpledata", f"{x.size} x values, {y.size} y values", "as many x values as y values")
    if np.any(x != np.round(x)) or np.any(x < 0) or np.any(x > 1e7):
        raise RecoilsimError(f"{where}/simpledata/x", "non-integer or negative channel", "channel numbers 0..1e7")
    ch = x.astype(np.int64)
    if np.unique(ch).size != ch.size:
        raise RecoilsimError(f"{where}/simpledata/x", "duplicate channels", "each channel once")
    if np.any(y < 0):
        raise RecoilsimError(f"{where}/simpledata/y", float(y[y < 0][0]), "counts >= 0")
    order = np.argsort(ch)
    y = y[order]
    vals = y.astype(np.int64) if np.all(y == np.round(y)) and np.all(np.abs(y) < 2**53) else y
    return xr.DataArray(vals, dims="channel", coords={"channel": ch[order]}, name="counts", attrs=dict(attrs))


def _parse_beam(sp: ET.Element, where: str) -> dict:
    from ..model.elements import element, isotope

    b = sp.find("i:beam", _NS)
    if b is None:
        return {}
    out: dict = {}
    particle = _text(b, "i:beamparticle")
    Z = _opt(b, "i:beamZ", "")
    mass = _opt(b, "i:beammass", "amu")
    ion = ""
    if particle:
        m = _NUCLIDE.match(particle)
        if not m:
            raise RecoilsimError(f"{where}/beam/beamparticle", particle, "a nuclide such as '35Cl' or 'Cl'")
        A, sym = m.groups()
        if sym == "D":
            A, sym = "2", "H"
        if not A and mass is not None:
            A = str(int(round(mass)))
        ion = f"{A}{sym}" if A else sym
    elif Z is not None and mass is not None:
        ion = f"{int(round(mass))}{element(int(Z)).symbol}"
    if ion:
        try:
            iso = isotope(ion)
        except RecoilsimError as exc:
            raise RecoilsimError(f"{where}/beam/beamparticle", ion, exc.allowed) from None
        out["ion"] = iso.name
    e = _opt(b, "i:beamenergy", "keV")
    if e is not None:
        if e <= 0:
            raise RecoilsimError(f"{where}/beam/beamenergy", e, "a positive energy")
        out["energy_MeV"] = e / 1000.0
    fl = _opt(b, "i:beamfluence", "#particles")
    if fl is not None:
        if fl < 0:
            raise RecoilsimError(f"{where}/beam/beamfluence", fl, "a fluence >= 0")
        out["fluence"] = fl
    return out


def _parse_calibration(sp: ET.Element, where: str) -> dict:
    cal = sp.find("i:calibrations/i:energycalibrations/i:energycalibration", _NS)
    if cal is None:
        return {}
    mode = _text(cal, "i:calibrationmode", "energy").lower()
    params = cal.findall("i:calibrationparameters/i:calibrationparameter", _NS)
    vals = []
    for k, p in enumerate(params):
        u = (p.get("units") or "").strip()
        canon = _UNIT.get(u.lower(), (u, 1.0))
        raw = (p.text or "").strip()
        try:
            v = float(raw)
        except ValueError:
            raise RecoilsimError(f"{where}/calibrationparameter[{k}]", raw[:40], "a number") from None
        if not math.isfinite(v):
            raise RecoilsimError(f"{where}/calibrationparameter[{k}]", raw[:40], "a finite number")
        vals.append((canon[0], v * canon[1]))
    out = {"mode": mode, "parameters": [v for _, v in vals], "units": [u for u, _ in vals]}
    units = [u for u, _ in vals]
    if mode == "time" or "ns/channel" in units:
        d = dict((u, v) for u, v in vals)
        if "ns/channel" in d:
            out["slope_ns"] = d["ns/channel"]
            out["offset_ns"] = d.get("ns", 0.0)
        elif len(vals) >= 2:
            out["offset_ns"], out["slope_ns"] = vals[0][1], vals[1][1]
    return out


def _parse_sample(sample_el: ET.Element, where: str):
    from ..model.elements import element, isotope
    from ..model.sample import Layer, Sample

    layers_el = sample_el.findall("i:structure/i:layeredstructure/i:layers/i:layer", _NS)
    if not layers_el:
        return None
    layers = []
    for n, lay in enumerate(layers_el, start=1):
        lw = f"{where}/layer[{n}]"
        t_el = lay.find("i:layerthickness", _NS)
        if t_el is None:
            raise RecoilsimError(f"{lw}/layerthickness", None, "a layer thickness in 1e15at/cm2")
        t = _num(t_el, "1e15at/cm2", f"{lw}/layerthickness")
        if t < 0:
            raise RecoilsimError(f"{lw}/layerthickness", t, "a thickness >= 0 (1e15 at/cm2)")
        if t == 0:
            continue  # SIMNRA writes empty layers with zero thickness
        amounts: dict[str, float] = {}
        iso_amounts: dict[str, dict[int, float]] = {}
        natural: set[str] = set()
        for k, le in enumerate(lay.findall("i:layerelements/i:layerelement", _NS), start=1):
            name = _text(le, "i:name")
            m = _NUCLIDE.match(name)
            if not m:
                raise RecoilsimError(f"{lw}/layerelement[{k}]/name", name, "an element such as 'Li' or '6Li'")
            A, sym = m.groups()
            if sym in ("D", "T"):
                A, sym = ("2" if sym == "D" else "3"), "H"
            try:
                element(sym)
                if A:
                    isotope(f"{A}{sym}")
            except RecoilsimError as exc:
                raise RecoilsimError(f"{lw}/layerelement[{k}]/name", name, exc.allowed) from None
            c_el = le.find("i:concentration", _NS)
            if c_el is None:
                raise RecoilsimError(f"{lw}/layerelement[{k}]/concentration", None, "an atomic fraction")
            c = _num(c_el, "fraction", f"{lw}/layerelement[{k}]/concentration")
            if c < 0 or c > 1.0 + 1e-9:
                raise RecoilsimError(f"{lw}/layerelement[{k}]/concentration", c, "an atomic fraction in [0, 1]")
            if c == 0:
                continue
            amounts[sym] = amounts.get(sym, 0.0) + c
            if A:
                iso_amounts.setdefault(sym, {})
                iso_amounts[sym][int(A)] = iso_amounts[sym].get(int(A), 0.0) + c
            else:
                natural.add(sym)
        if not amounts:
            raise RecoilsimError(f"{lw}/layerelements", "no elements", "at least one element with concentration > 0")
        enrichment = {}
        for sym, d in iso_amounts.items():
            if sym in natural:
                raise RecoilsimError(f"{lw}/layerelements", sym,
                                     "an element given either as natural or as isotopes, not both in one layer")
            tot = sum(d.values())
            enrichment[sym] = {a: v / tot for a, v in d.items()}
        total = sum(amounts.values())
        if abs(total - 1.0) > 0.02:
            raise RecoilsimError(f"{lw}/layerelements", f"sum {total:.6g}", "concentrations summing to 1 (within 2 %)")
        fractions = {k: v / total for k, v in amounts.items()}
        name = _text(lay, "i:layername") or _text(lay, "s:layername") or f"layer {n}"
        layers.append(Layer(fractions, areal_density_1e15=t, name=name, enrichment=enrichment))
    if not layers:
        return None
    return Sample(layers)


def read_idf(path: os.PathLike | str) -> IdfDocument:
    """Read an IDF or SIMNRA ``.xnra`` file.

    Returns
    -------
    IdfDocument
        ``sample`` (recoilsim Sample or None), ``spectra`` (list of :class:`IdfSpectrum`:
        ``data`` DataArray with dim ``channel``, ``simulations`` by type, beam/geometry/
        calibration dicts), ``notes``. :meth:`IdfDocument.beam` / :meth:`IdfDocument.geometry`
        build recoilsim objects.
    """
    p, blob = read_bytes(path, "IDF file", max_bytes=256 * MiB)
    if not blob.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        raise RecoilsimError(f"IDF file {p}", blob[:20], "an XML document starting with '<'")
    if b"<!ENTITY" in blob or b"<!entity" in blob:
        raise RecoilsimError(f"IDF file {p}", "<!ENTITY ...>", "XML without entity declarations")
    try:
        root = ET.fromstring(blob)
    except ET.ParseError as exc:
        raise RecoilsimError(f"IDF file {p} line {exc.position[0]} column {exc.position[1] + 1}",
                             str(exc).split(":")[0], "well-formed XML") from None
    except (ValueError, LookupError, RecursionError, UnicodeError) as exc:  # e.g. an unknown encoding declared
        raise RecoilsimError(f"IDF file {p}", type(exc).__name__, "well-formed XML") from None
    if root.tag != f"{{{IDF_NS}}}idf":
        raise RecoilsimError(f"IDF file {p} root element", root.tag, f"<idf> in the namespace {IDF_NS}")
    src = str(p)
    notes = [n.text.strip() for n in root.findall("i:notes/i:note", _NS) if n.text and n.text.strip()]
    samples = root.findall("i:sample", _NS)
    if not samples:
        raise RecoilsimError(f"IDF file {p}", "no <sample>", "an IDF file with a <sample> element")
    sample_el = samples[0]
    sample = _parse_sample(sample_el, f"{src}: sample")
    spectra = []
    for k, sp in enumerate(sample_el.findall("i:spectra/i:spectrum", _NS)):
        where = f"{src}: spectrum[{k}]"
        beam = _parse_beam(sp, where)
        geo = {}
        g = sp.find("i:geometry", _NS)
        if g is not None:
            geo = {"type": _text(g, "i:geometrytype"),
                   "incidence_deg": _opt(g, "i:incidenceangle", "degree"),
                   "scattering_deg": _opt(g, "i:scatteringangle", "degree"),
                   "exit_deg": _opt(g, "i:exitangle", "degree")}
        cal = _parse_calibration(sp, where)
        omega = _opt(sp, "i:detection/i:detector/i:solidangle", "msr")
        technique = _text(sp, "i:reactions/i:technique")
        recoil = _text(sp, "i:reactions/i:reaction/i:exitparticle")
        attrs = {"source": src, "technique": technique}
        if recoil:
            attrs["recoil"] = recoil
        data = _channel_data(sp.find("i:data", _NS), f"{where}/data", attrs)
        sims = {}
        for j, s in enumerate(sp.findall("i:process/i:simulations/i:simulation", _NS)):
            typ = _text(s, "i:simulationtype", "total") or "total"
            da = _channel_data(s, f"{where}/simulation[{j}]", dict(attrs, simulationtype=typ))
            if da is not None:
                key = typ if typ not in sims else f"{typ}_{j}"
                sims[key] = da
        for da in [data, *sims.values()]:
            if da is not None and "slope_ns" in cal:
                da.coords["time_ns"] = ("channel", cal["slope_ns"] * da["channel"].values + cal["offset_ns"],
                                        {"units": "ns"})
        spectra.append(IdfSpectrum(data, sims, beam, geo, cal, omega, technique, recoil))
    return IdfDocument(sample, spectra, notes, _text(sample_el, "i:description"), p)


# ------------------------------------------------------------------------------------ writing

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
