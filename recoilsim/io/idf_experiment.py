"""An ERDA/TOF experiment described by an IDF or SIMNRA ``.xnra`` file (``recoilsim simulate
file.xnra``).

From the file (:func:`~recoilsim.io.idf.read_idf`): beam (ion, energy, fluence), geometry
(incidence, exit, scattering = recoil angle), the layered sample, the solid angle, a time
calibration (``calibrationmode`` time, ns and ns/channel), the number of channels (the length of
the spectrum) and the recoil (``exitparticle``). IDF has no element for what a TOF telescope
adds: the flight length, the timing foils and the timing resolution. recoilsim writes them as
notes (``recoilsim detector.flight_length_m = 0.6``, see :func:`instrument_notes`); for other
files give them as arguments. What recoilsim cannot represent is refused with a message that
says so: an energy calibration (an energy detector, not TOF), a backscattering geometry, a
technique other than ERDA.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import RecoilsimError
from ..model.experiment import Experiment
from ..model.instrument import Detector, Foil
from .idf import read_idf
from .idf_write import write_idf

__all__ = ["experiment_from_idf", "instrument_notes", "write_experiment_idf", "IDF_SUFFIXES"]

IDF_SUFFIXES = (".xnra", ".idf", ".xml")
_NOTE = re.compile(r"^recoilsim\s+((?:detector|geometry)\.\w+|foil)\s*=\s*(.+?)\s*$")
_NUMERIC = ("flight_length_m", "timing_resolution_ps", "energy_resolution_keV")
_GEOMETRY = ("beam_divergence_deg", "detector_aperture_deg")


def instrument_notes(exp: Experiment) -> list[str]:
    """IDF notes carrying the TOF values IDF has no element for (read back by
    :func:`experiment_from_idf`). Foils: ``recoilsim foil = <name>; <formula or fractions>;
    <1e15 at/cm2>``."""
    det = exp.detector
    notes = [f"recoilsim detector.{k} = {getattr(det, k)!r}" for k in _NUMERIC]
    notes += [f"recoilsim geometry.{k} = {getattr(exp.geometry, k)!r}" for k in _GEOMETRY]
    for f in det.foils:
        comp = ",".join(f"{e}:{v!r}" for e, v in f.fractions.items())
        notes.append(f"recoilsim foil = {f.name}; {comp}; {f.areal_density_1e15!r}")
    return notes


def write_experiment_idf(exp: Experiment, path: os.PathLike | str, spectrum=None, simulation=None,
                         inputs=()) -> Path:
    """:func:`~recoilsim.io.idf_write.write_idf` with the experiment and its TOF notes."""
    return write_idf(path, spectrum, experiment=exp, simulation=simulation, notes=instrument_notes(exp),
                     technique="ERDA", inputs=inputs)


def _from_notes(notes) -> tuple[dict, list[Foil]]:
    vals: dict = {}
    foils: list[Foil] = []
    for n in notes:
        m = _NOTE.match(n)
        if not m:
            continue
        key, raw = m.groups()
        if key == "foil":
            parts = [p.strip() for p in raw.split(";")]
            if len(parts) != 3:
                raise RecoilsimError("IDF note", n, "'recoilsim foil = <name>; <El:fraction,...>; <1e15 at/cm2>'")
            try:
                comp = {e: float(v) for e, v in (kv.split(":") for kv in parts[1].split(","))}
                foils.append(Foil(comp, areal_density_1e15=float(parts[2]), name=parts[0]))
            except ValueError:
                raise RecoilsimError("IDF note", n, "foil fractions and areal density as numbers") from None
            continue
        name = key.split(".", 1)[1]
        if name not in _NUMERIC + _GEOMETRY:
            raise RecoilsimError("IDF note", n, f"one of {', '.join('detector.' + k for k in _NUMERIC)}, "
                                                f"{', '.join('geometry.' + k for k in _GEOMETRY)} or foil")
        try:
            vals[name] = float(raw)
        except ValueError:
            raise RecoilsimError("IDF note", n, "a number after '='") from None
    return vals, foils


def experiment_from_idf(path: os.PathLike | str, spectrum: int = 0, flight_length_m: float | None = None,
                        timing_resolution_ps: float | None = None, solid_angle_msr: float | None = None,
                        n_channels: int | None = None) -> Experiment:
    """The ERDA/TOF experiment of one ``<spectrum>`` of an IDF/.xnra file (beam, geometry,
    calibration of that spectrum; the recoils of every spectrum, else every sample element).

    Arguments override the file (and its recoilsim notes); the flight length must come from
    one of them."""
    doc = read_idf(path)
    src = str(doc.path or path)
    if doc.sample is None:
        raise RecoilsimError(f"IDF file {src}", "no layered sample", "a <layeredstructure> with layers")
    if not doc.spectra:
        raise RecoilsimError(f"IDF file {src}", "no <spectrum>", "a spectrum with beam, geometry and calibration")
    if not 0 <= spectrum < len(doc.spectra):
        raise RecoilsimError("spectrum", spectrum, f"an index 0..{len(doc.spectra) - 1}")
    sp = doc.spectra[spectrum]
    tech = (sp.technique or "ERDA").upper()
    if tech not in ("ERDA", "ERD", "TOF-ERDA", "TOF-ERD"):
        raise RecoilsimError(f"IDF spectrum {spectrum} technique", sp.technique,
                             "ERDA (recoilsim simulates TOF-ERDA spectra, not RBS, NRA or PIXE)")
    cal = sp.calibration
    if "slope_ns" not in cal:
        raise RecoilsimError(f"IDF spectrum {spectrum} calibration", cal.get("mode", "none"),
                             "a time calibration (calibrationmode 'time', parameters in ns and ns/channel): "
                             "recoilsim simulates time-of-flight spectra and cannot represent an energy detector")
    beam = doc.beam(spectrum)
    vals, foils = _from_notes(doc.notes)
    g = doc.geometry(spectrum)
    geometry = type(g)(g.incidence_deg, g.exit_deg, g.recoil_deg, **{k: vals[k] for k in _GEOMETRY if k in vals})
    for k, v in (("flight_length_m", flight_length_m), ("timing_resolution_ps", timing_resolution_ps)):
        if v is not None:
            vals[k] = v
    if "flight_length_m" not in vals:
        raise RecoilsimError("flight_length_m", None,
                             "the TOF flight length in m: IDF has no element for it; give --flight-length (or a "
                             "note 'recoilsim detector.flight_length_m = 0.6' in the file)")
    omega = solid_angle_msr if solid_angle_msr is not None else sp.solid_angle_msr
    if omega is None:
        raise RecoilsimError(f"IDF spectrum {spectrum} solidangle", None, "detection/detector/solidangle in msr")
    if n_channels is None:
        da = sp.data if sp.data is not None else next(iter(sp.simulations.values()), None)
        n_channels = int(da["channel"].values.max()) + 1 if da is not None else 1024
    det = Detector(flight_length_m=vals["flight_length_m"], solid_angle_msr=omega, calibration_a_ns=cal["slope_ns"],
                   calibration_b_ns=cal["offset_ns"], n_channels=max(n_channels, 2),
                   timing_resolution_ps=vals.get("timing_resolution_ps", 0.0),
                   energy_resolution_keV=vals.get("energy_resolution_keV", 0.0), foils=foils)
    named = list(dict.fromkeys(s.recoil for s in doc.spectra if s.recoil))  # every spectrum's recoil
    recoils = [r for r in named if r != beam.isotope.symbol] or doc.sample.elements()
    name = doc.description or Path(src).stem
    return Experiment(beam=beam, geometry=geometry, detector=det, sample=doc.sample, recoils=recoils, name=name)
