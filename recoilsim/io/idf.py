"""IBA Data Format (IDF) and SIMNRA ``.xnra`` XML: read spectra, beam, geometry, sample
(writing: :mod:`recoilsim.io.idf_write`).

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

import numpy as np
import xarray as xr

from ..errors import RecoilsimError
from .files import MiB, read_bytes

__all__ = ["IDF_NS", "SIMNRA_NS", "IdfSpectrum", "IdfDocument", "read_idf"]

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
