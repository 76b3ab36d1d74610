"""Experiment files in TOML: read and validate (the keys: :mod:`recoilsim.io.experiment_schema`;
writing: :mod:`recoilsim.io.experiment_dump`).

A file describes one :class:`~recoilsim.model.experiment.Experiment` (beam, geometry, detector,
sample, recoils, options) and, optionally, what spectra to read and what to fit. Example::

    name = "my run"
    recoils = ["Li", "O", "Mn"]

    [beam]
    ion = "35Cl"
    energy_MeV = 8.515
    fluence = 1e12            # or: charge_uC = 2.0 and charge_state = 5

    [geometry]                # or: target_angle_deg + detector_angle_deg (Potku's form)
    incidence_deg = 70.0
    exit_deg = 70.0
    recoil_deg = 40.0

    [detector]
    flight_length_m = 0.623
    solid_angle_msr = 0.1
    calibration_a_ns = 0.0570569323644
    calibration_b_ns = 1.66381574853
    n_channels = 8192
    [[detector.foils]]
    composition = "C"
    thickness_ug_cm2 = 3.1

    [[sample.layers]]
    name = "film"
    composition = "LiMn2O4"   # or a table of atomic fractions {Li = 0.14, Mn = 0.29, O = 0.57}
    thickness_nm = 100.0
    density_g_cm3 = 4.2       # or areal_density_1e15 = ...
    [[sample.layers.profiles]]
    element = "Li"
    depth = [0.0, 30.0]
    values = [1.25, 1.0]
    kind = "scale"

    [options]
    screening = "andersen"

``reference = true`` at the top level (or ``[base] reference = true``) starts from the built-in
:func:`~recoilsim.model.experiment.reference_experiment` and overrides what the file gives: keys of
``[beam]``, ``[geometry]``, ``[detector]`` and ``[options]`` one by one; ``[[sample.layers]]``
tables whose ``name`` is a reference layer (Cu, LiPON, LATP) update that layer (e.g. only add a
Li profile to LiPON); ``[sample] replace = true`` replaces the whole stack instead.

``[spectra]`` and ``[fit]`` are kept as raw data on :class:`ExperimentFile` for the readers and
the fit to interpret.

Every problem raises :class:`~recoilsim.errors.RecoilsimError` whose field is the full key path
(``detector.flight_lenght_m``, ``sample.layers[1].density_g_cm3``) and whose message lists what
is allowed; TOML syntax errors carry the line and column from the parser.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..model.elements import element as _element
from ..errors import RecoilsimError
from ..model.experiment import Experiment, Options, reference_experiment
from ..model.instrument import Beam, Detector, Foil, Geometry
from ..model.sample import Layer, Profile, Sample
from .experiment_schema import (BASE_KEYS, BEAM_KEYS, DETECTOR_KEYS, EFFICIENCY_KEYS, FOIL_KEYS, GEOMETRY_KEYS,
                                LAYER_KEYS, OPTION_KEYS, PROFILE_KEYS, SAMPLE_KEYS, SCHEMA, TOP_KEYS, check_table,
                                is_number, required, rethrow)
from .experiment_dict import experiment_to_dict

__all__ = ["SCHEMA", "ExperimentFile", "load_file", "load_experiment", "experiment_from_dict", "experiment_to_dict"]

# ----------------------------------------------------------------------------------------------
# dict -> models
# ----------------------------------------------------------------------------------------------

def _beam(d: dict) -> Beam:
    check_table(d, BEAM_KEYS, "beam")
    ion = required(d, "ion", "beam", "the beam isotope, e.g. '63Cu'")
    e = required(d, "energy_MeV", "beam", "the beam energy in MeV")
    try:
        if "charge_uC" in d:
            if "fluence" in d:
                raise RecoilsimError("beam.fluence", d["fluence"], "give either fluence or charge_uC (+ charge_state), not both")
            if "charge_state" not in d:
                raise RecoilsimError("beam.charge_state", None, "required with charge_uC (fluence = charge / (q e))")
            return Beam.from_charge(ion, e, d["charge_uC"], d["charge_state"])
        kw = {k: d[k] for k in ("fluence", "charge_state") if k in d}
        return Beam(ion, e, **kw)
    except RecoilsimError as exc:
        raise rethrow(exc, "beam") from None


def _geometry(d: dict) -> Geometry:
    check_table(d, GEOMETRY_KEYS, "geometry")
    extra = {k: d[k] for k in ("beam_divergence_deg", "detector_aperture_deg") if k in d}
    potku = [k for k in ("target_angle_deg", "detector_angle_deg") if k in d]
    plain = [k for k in ("incidence_deg", "exit_deg", "recoil_deg") if k in d]
    try:
        if potku:
            if plain:
                raise RecoilsimError(f"geometry.{plain[0]}", d[plain[0]],
                                     "not together with target_angle_deg/detector_angle_deg (give one form)")
            for k in ("target_angle_deg", "detector_angle_deg"):
                required(d, k, "geometry", "target_angle_deg and detector_angle_deg together")
            return Geometry.from_target_detector(d["target_angle_deg"], d["detector_angle_deg"], **extra)
        for k in ("incidence_deg", "exit_deg", "recoil_deg"):
            required(d, k, "geometry", "incidence_deg, exit_deg and recoil_deg, or target_angle_deg and "
                                        "detector_angle_deg")
        return Geometry(d["incidence_deg"], d["exit_deg"], d["recoil_deg"], **extra)
    except RecoilsimError as exc:
        if exc.field.startswith("geometry."):
            raise
        raise rethrow(exc, "geometry") from None


def _foil(d: dict, path: str) -> Foil:
    check_table(d, FOIL_KEYS, path)
    comp = required(d, "composition", path, "a formula such as 'C' or a table of atomic fractions")
    name = d.get("name", "foil")
    try:
        return Foil(comp, areal_density_1e15=d.get("areal_density_1e15"),
                    thickness_ug_cm2=d.get("thickness_ug_cm2"), name=name)
    except RecoilsimError as exc:
        raise rethrow(exc, path, (name,)) from None


def _detector(d: dict) -> Detector:
    check_table(d, DETECTOR_KEYS, "detector")
    for k in ("flight_length_m", "solid_angle_msr", "calibration_a_ns", "calibration_b_ns"):
        required(d, k, "detector", {"flight_length_m": "the flight length in m",
                                     "solid_angle_msr": "the solid angle in msr",
                                     "calibration_a_ns": "the TOF slope in ns/channel",
                                     "calibration_b_ns": "the TOF offset in ns"}[k])
    foils = [_foil(f, f"detector.foils[{i}]") for i, f in enumerate(d.get("foils", []))]
    efoils = [_foil(f, f"detector.energy_foils[{i}]") for i, f in enumerate(d.get("energy_foils", []))]
    eff = {}
    for el, curve in d.get("efficiency", {}).items():
        p = f"detector.efficiency.{el}"
        check_table(curve, EFFICIENCY_KEYS, p, "a table {energy_MeV = [...], efficiency = [...]}")
        eff[el] = (required(curve, "energy_MeV", p, "a list of energies (MeV)"),
                   required(curve, "efficiency", p, "a list of efficiencies in [0, 1]"))
    kw = {k: d[k] for k in ("flight_length_m", "solid_angle_msr", "calibration_a_ns", "calibration_b_ns",
                            "n_channels", "timing_resolution_ps", "energy_resolution_keV",
                            "timing_tail_ns", "timing_tail_fraction") if k in d}
    try:
        return Detector(foils=foils, energy_foils=efoils, efficiency=eff, **kw)
    except RecoilsimError as exc:
        f = str(exc.field)
        m = re.match(r"detector\.efficiency\[([^\]]*)\]", f)
        if m:
            raise RecoilsimError(f"detector.efficiency.{m.group(1)}", exc.value, exc.allowed) from None
        if f.startswith("detector."):
            raise
        raise rethrow(exc, "detector") from None


def _profile(d: dict, path: str) -> Profile:
    check_table(d, PROFILE_KEYS, path)
    el = required(d, "element", path, "an element symbol, e.g. 'Li'")
    dep = required(d, "depth", path, "a list of depths from the layer top")
    val = required(d, "values", path, "a list of values, one per depth")
    kw = {k: d[k] for k in ("kind", "depth_unit") if k in d}
    try:
        return Profile(el, dep, val, **kw)
    except RecoilsimError as exc:
        raise rethrow(exc, path) from None


def _layer(d: dict, path: str) -> Layer:
    check_table(d, LAYER_KEYS, path)
    comp = required(d, "composition", path, "a formula such as 'Li2.0PO2.6N0.9' or a table of atomic fractions")
    profiles = [_profile(p, f"{path}.profiles[{i}]") for i, p in enumerate(d.get("profiles", []))]
    enr = {}
    for el, t in d.get("enrichment", {}).items():
        p = f"{path}.enrichment.{el}"
        if not isinstance(t, dict) or not all(is_number(v) for v in t.values()):
            raise RecoilsimError(p, t, "a table mass number -> fraction, e.g. {\"6\" = 0.95, \"7\" = 0.05}")
        try:
            enr[el] = {int(a): float(v) for a, v in t.items()}
        except ValueError:
            raise RecoilsimError(p, t, "mass numbers (integers) as keys, e.g. {\"6\" = 0.95}") from None
    sf = d.get("stopping_factors", {})
    for el, v in sf.items():
        if not is_number(v):
            raise RecoilsimError(f"{path}.stopping_factors.{el}", v, "a number > 0")
    for key, table in (("enrichment", enr), ("stopping_factors", sf)):
        for el in table:
            try:
                _element(el)
            except RecoilsimError as exc:
                raise RecoilsimError(f"{path}.{key}.{el}", el, f"an element symbol as key ({exc.allowed})") from None
    kw = {k: d[k] for k in ("thickness_nm", "density_g_cm3", "areal_density_1e15", "name", "stopping") if k in d}
    try:
        return Layer(comp, profiles=profiles, enrichment=enr, stopping_factors=dict(sf), **kw)
    except RecoilsimError as exc:
        f = str(exc.field)
        m = re.search(r"stopping_factors\[([^\]]*)\]", f)
        if m:
            raise RecoilsimError(f"{path}.stopping_factors.{m.group(1)}", exc.value, exc.allowed) from None
        m = re.search(r"profiles\[([^\]]*)\]\.(.*)$", f)
        if m:
            idx = next((i for i, p in enumerate(profiles) if p.element == m.group(1)), 0)
            raise RecoilsimError(f"{path}.profiles[{idx}].{m.group(2)}", exc.value, exc.allowed) from None
        if f in ("element", "formula") or f.startswith("layer") and f.endswith(".composition"):
            raise RecoilsimError(f"{path}.composition", exc.value, exc.allowed) from None
        if f == "enrichment" or f.startswith("enrichment"):
            raise RecoilsimError(f"{path}.enrichment", exc.value, exc.allowed) from None
        raise rethrow(exc, path) from None


def _sample(d: dict) -> Sample:
    check_table(d, SAMPLE_KEYS, "sample")
    layers = required(d, "layers", "sample", "an array of [[sample.layers]] tables, surface first")
    if not layers:
        raise RecoilsimError("sample.layers", layers, "at least one [[sample.layers]] table")
    return Sample([_layer(l, f"sample.layers[{i}]") for i, l in enumerate(layers)])


def _options(d: dict) -> Options:
    check_table(d, OPTION_KEYS, "options")
    try:
        return Options(**d)
    except RecoilsimError as exc:
        if str(exc.field).startswith("options."):
            raise
        raise rethrow(exc, "options") from None


def _from_file(spec: str | None, path: Path) -> str | None:
    """A stopping or straggling choice with a relative path made relative to the file's folder."""
    if not spec or spec.strip().lower() in ("srim2013", "catima") or Path(spec).expanduser().is_absolute():
        return spec
    return str(path.parent / spec)


def _is_reference(d: dict) -> bool:
    return bool(d.get("reference", False)) or bool(d.get("base", {}).get("reference", False))


def _merge_tables(base: dict, over: dict, groups: tuple[tuple[str, ...], ...] = ()) -> dict:
    """Key-by-key override; keys of one alternative group given in ``over`` drop the others from base."""
    out = dict(base)
    for g in groups:
        if any(k in over for k in g):
            for k in g:
                out.pop(k, None)
    out.update(over)
    return out


_GEOM_GROUPS = (("incidence_deg", "exit_deg", "recoil_deg", "target_angle_deg", "detector_angle_deg"),)
_BEAM_GROUPS = (("fluence", "charge_uC"),)
_LAYER_GROUPS = (("thickness_nm", "areal_density_1e15"),)


def _apply_reference(d: dict) -> dict:
    base = experiment_to_dict(reference_experiment())
    out = dict(base)
    for k, v in d.items():
        if k in ("reference", "base"):
            continue
        if k == "beam":
            out[k] = _merge_tables(base["beam"], check_table(v, BEAM_KEYS, "beam"), _BEAM_GROUPS)
        elif k == "geometry":
            out[k] = _merge_tables(base["geometry"], check_table(v, GEOMETRY_KEYS, "geometry"), _GEOM_GROUPS)
        elif k == "detector":
            out[k] = _merge_tables(base["detector"], check_table(v, DETECTOR_KEYS, "detector"))
        elif k == "options":
            out[k] = _merge_tables(base.get("options", {}), check_table(v, OPTION_KEYS, "options"))
        elif k == "sample":
            check_table(v, SAMPLE_KEYS, "sample")
            if v.get("replace", False):
                out[k] = {kk: vv for kk, vv in v.items() if kk != "replace"}
                continue
            layers = [dict(l) for l in base["sample"]["layers"]]
            names = [l["name"] for l in layers]
            for i, l in enumerate(v.get("layers", [])):
                p = f"sample.layers[{i}]"
                check_table(l, LAYER_KEYS, p)
                nm = l.get("name")
                if nm not in names:
                    raise RecoilsimError(f"{p}.name", nm, f"with reference = true, the name of a reference layer "
                                                         f"({', '.join(names)}) to update, or [sample] replace = true "
                                                         "to give a whole new stack")
                j = names.index(nm)
                layers[j] = _merge_tables(layers[j], l, _LAYER_GROUPS)
            out[k] = {"layers": layers}
        else:
            out[k] = v
    return out


def experiment_from_dict(d: Mapping[str, Any], source: str = "<dict>") -> Experiment:
    """Build and validate an :class:`Experiment` from a (TOML-shaped) dict.

    ``source`` names where the dict came from; it is added to error messages.
    """
    return _ef_from_dict(d, source).experiment


def _ef_from_dict(d: Mapping[str, Any], source: str, path: Path | None = None) -> "ExperimentFile":
    try:
        d = check_table(copy.deepcopy(dict(d)) if isinstance(d, Mapping) else d, TOP_KEYS, "")
        if "base" in d:
            check_table(d["base"], BASE_KEYS, "base")
        spectra = d.get("spectra", {})
        fit = d.get("fit", {})
        if _is_reference(d):
            d = _apply_reference(d)
        for k in ("beam", "geometry", "detector", "sample"):
            if k not in d:
                raise RecoilsimError(k, None, f"a [{k}] section (or reference = true to start from the "
                                               "built-in reference experiment)")
        beam = _beam(d["beam"])
        geom = _geometry(d["geometry"])
        det = _detector(d["detector"])
        if path is not None and isinstance(d["sample"], dict):
            for l in d["sample"].get("layers", []):
                if isinstance(l, dict) and isinstance(l.get("stopping"), str):
                    l["stopping"] = _from_file(l["stopping"], path)
        sample = _sample(d["sample"])
        options = _options(d.get("options", {}))
        if path is not None:  # stopping-table and straggling-table paths are relative to the file
            options = dataclasses.replace(options, stopping=_from_file(options.stopping, path),
                                          straggling_table=_from_file(options.straggling_table, path))
        recoils = d.get("recoils")
        if recoils is None:
            recoils = sample.elements()
        try:
            exp = Experiment(beam=beam, geometry=geom, detector=det, sample=sample, recoils=list(recoils),
                             options=options, name=d.get("name", Path(source).stem if path else "experiment"))
        except RecoilsimError as exc:
            f = str(exc.field)
            if f in ("isotope", "element"):
                f = "recoils"
            raise RecoilsimError(f if "." in f or f in ("recoils",) else f"experiment.{f}", exc.value,
                                 exc.allowed) from None
    except RecoilsimError as exc:
        if source and source != "<dict>":
            raise RecoilsimError(exc.field, exc.value, f"{exc.allowed} (in {source})") from None
        raise
    return ExperimentFile(exp, spectra, fit, path)


# ----------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------

@dataclass
class ExperimentFile:
    """An experiment file: the experiment and the raw ``[spectra]`` and ``[fit]`` sections.

    Attributes
    ----------
    experiment : Experiment
    spectra : dict or list
        The ``[spectra]`` section as parsed (empty dict if absent).
    fit : dict or list
        The ``[fit]`` section as parsed (empty dict if absent).
    path : Path or None
        The file it was read from.
    """

    experiment: Experiment
    spectra: Any = field(default_factory=dict)
    fit: Any = field(default_factory=dict)
    path: Path | None = None

    def resolve(self, p: os.PathLike | str) -> Path:
        """A path given in the file, relative to the file's folder (absolute paths unchanged)."""
        q = Path(p).expanduser()
        if q.is_absolute() or self.path is None:
            return q
        return self.path.parent / q


def _read_toml(path: os.PathLike | str) -> tuple[Path, dict]:
    from .files import MiB, input_path, read_bytes

    p = input_path(path, "experiment file")
    p, raw = read_bytes(p, "experiment file", max_bytes=16 * MiB)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise RecoilsimError("experiment file", str(p), f"UTF-8 text (undecodable byte at line {line})") from None
    try:
        return p, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RecoilsimError(f"{p}", "TOML syntax", f"valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per level of nested arrays/tables
        raise RecoilsimError(f"{p}", "deeply nested arrays or tables", "TOML nested at most a few levels deep") from None


def load_file(path: os.PathLike | str) -> ExperimentFile:
    """Read an experiment file: the validated Experiment plus raw ``[spectra]``/``[fit]``."""
    p, d = _read_toml(path)
    ef = _ef_from_dict(d, str(p), p)
    # the source file, so that dump_experiment never overwrites it
    return dataclasses.replace(ef, experiment=dataclasses.replace(ef.experiment, source=str(p)))


def load_experiment(path: os.PathLike | str) -> Experiment:
    """Read and validate an experiment file (TOML); returns the :class:`Experiment`."""
    return load_file(path).experiment
