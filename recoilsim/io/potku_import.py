"""Potku measurement -> recoilsim experiment file (``recoilsim import potku``).

Reads a Potku measurement (its folder, its project folder or one of its ``.ini`` files) with
the existing readers (:func:`~recoilsim.io.potku_settings.read_potku_settings`,
:func:`~recoilsim.io.potku_settings.potku_experiment`, :func:`~recoilsim.io.potku_selections.read_sel`) and writes an
experiment TOML: beam, geometry (Potku's target/detector angles), flight length, T1 carbon foil,
TOF calibration, and a ``[spectra]`` section naming the list-mode file, the selection file, the
cut folder and which cuts make each element's spectrum. Potku keeps no sample description and
no solid angle: the file gets a placeholder layer of the cut elements (equal atomic fractions,
Potku's target density, the depth range of its depth-profile settings) and an assumed solid
angle, both marked in comments, so that it simulates as it is and is ready to be edited.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import RecoilsimError
from ..model.experiment import Options
from ..model.sample import Layer, Sample
from .experiment_dump import dumps_toml
from .experiment_dict import experiment_to_dict
from .experiment_file import experiment_from_dict
from .potku_selections import read_sel
from .potku_settings import potku_experiment, read_potku_settings

__all__ = ["potku_measurement", "potku_to_dict", "import_potku"]

#: placeholder thickness when the depth-profile settings give none (1e15 atoms/cm2)
DEFAULT_AREAL_1E15 = 1000.0
#: placeholder density when measuring_unit_settings.ini gives none (g/cm3)
DEFAULT_DENSITY = 3.0


def potku_measurement(path: os.PathLike | str) -> tuple[Path, Path | None]:
    """(folder the settings are read from, measurement folder holding a .sel file or None).

    ``path``: a measurement folder, a project folder (its only measurement is used), a ``.proj``
    file or one of the ``.ini`` files of either."""
    p = Path(path).expanduser()
    if not p.exists():
        raise RecoilsimError("Potku path", str(p), "an existing Potku measurement folder, project folder or .ini file")
    if p.is_file():
        if p.suffix.lower() not in (".ini", ".proj"):
            raise RecoilsimError("Potku path", str(p), "a folder, a .proj file or a Potku .ini settings file")
        p = p.parent
    if list(p.glob("*.sel")):
        return p, p
    meas = sorted(q for q in p.iterdir() if q.is_dir() and list(q.glob("*.sel")))
    if len(meas) > 1:
        raise RecoilsimError("Potku path", str(p), "one measurement folder (this project holds "
                                                   f"{', '.join(q.name for q in meas)}: give one of them)")
    return (meas[0], meas[0]) if meas else (p, None)


def _asc_file(meas: Path) -> Path | None:
    for folder in (meas, meas.parent):
        for cand in (folder / f"{meas.name}.asc", *sorted(folder.glob("*.asc"))):
            if cand.is_file():
                return cand
    return None


def _cut_elements(meas: Path) -> tuple[dict[str, list[str]], list[str], Path]:
    """ERD selections grouped by element -> isotope labels; RBS (scattered beam) labels apart."""
    sel = sorted(meas.glob("*.sel"))[0]
    elements: dict[str, list[str]] = {}
    rbs: list[str] = []
    for s in read_sel(sel):
        if s.type.upper() == "RBS":
            rbs.append(s.isotope_label)
            continue
        labels = elements.setdefault(s.element, [])
        if s.isotope_label not in labels:
            labels.append(s.isotope_label)
    return elements, rbs, sel


def _rel(target: Path, start: Path) -> str:
    try:
        return os.path.relpath(target, start)
    except ValueError:  # other drive on Windows
        return str(target)


def potku_to_dict(path: os.PathLike | str, out_dir: os.PathLike | str = ".", solid_angle_msr: float = 1.0,
                  n_channels: int = 8192) -> tuple[dict, list[str]]:
    """The experiment-file dict for a Potku measurement and the comment lines for its header.

    ``out_dir`` is where the TOML will lie (paths in ``[spectra]`` are written relative to it)."""
    folder, meas = potku_measurement(path)
    st = read_potku_settings(folder)
    elements, rbs, sel = _cut_elements(meas) if meas is not None else ({}, [], None)
    beam_el = st["beam"]["element"]
    els = [e for e in elements if e != beam_el] or ["Si"]
    dp = st.get("depth_profile", {}) or {}
    try:
        areal = float(dp.get("depths_for_concentration_to", DEFAULT_AREAL_1E15))
    except ValueError:
        areal = DEFAULT_AREAL_1E15
    areal = areal if areal > 0 else DEFAULT_AREAL_1E15
    layer = Layer({e: 1.0 / len(els) for e in els}, areal_density_1e15=areal,
                  name="sample (placeholder: edit)")
    exp = potku_experiment(st, Sample([layer]), els, solid_angle_msr=solid_angle_msr, n_channels=n_channels,
                           options=Options(), name=st.get("project_name", folder.name) + (
                               f" / {meas.name}" if meas is not None else ""))
    d = experiment_to_dict(exp)
    # Potku's own form of the geometry, as in its files
    d["geometry"] = {"target_angle_deg": st["geometry"]["target_angle_deg"],
                     "detector_angle_deg": st["geometry"]["detector_angle_deg"]}
    for f in d["detector"].get("foils", []):  # the foil as Potku gives it (ug/cm2)
        f.pop("areal_density_1e15", None)
        f["thickness_ug_cm2"] = st["detector"]["carbon_foil_ug_cm2"]
    notes = [f"Imported from Potku: {', '.join(st['sources'])}",
             "From the files: beam, target and detector angles, flight length, T1 carbon foil, TOF calibration.",
             f"ASSUMED (Potku keeps no sample and no solid angle): solid_angle_msr = {solid_angle_msr}, "
             f"the sample layer (equal fractions of the cut elements, {areal:g} x 1e15 at/cm2), "
             "timing and energy resolution 0."]
    asc = _asc_file(meas) if meas is not None else None
    if meas is not None and elements:
        base = Path(out_dir)
        d["spectra"] = {"format": "potku", "data_dir": _rel(meas.parent.resolve(), base.resolve()),
                        "asc": _rel(asc.resolve(), meas.parent.resolve()) if asc else "",
                        "sel": _rel(sel.resolve(), meas.parent.resolve()),
                        "cuts": _rel((meas / "cuts").resolve(), meas.parent.resolve()),
                        "elements": {e: elements[e] for e in els if e in elements}}
        if rbs:
            notes.append(f"RBS cuts (scattered beam) not mapped to a sample element: {', '.join(rbs)}")
    density = st.get("target_density_g_cm3")
    if density:
        notes.append(f"Potku's target density: {density} g/cm3 (used by Potku for depth in nm)")
    experiment_from_dict(d)  # what is written must read back
    return d, notes


def import_potku(path: os.PathLike | str, out: os.PathLike | str, solid_angle_msr: float = 1.0,
                 n_channels: int = 8192, overwrite: bool = False) -> Path:
    """Write the experiment TOML of a Potku measurement to ``out``; returns its path."""
    from .atomic import atomic_write

    out = Path(out)
    if out.exists() and not overwrite:
        raise RecoilsimError("output path", str(out), "a path that does not exist yet (or --overwrite)")
    d, notes = potku_to_dict(path, out.parent, solid_angle_msr, n_channels)
    text = "".join(f"# {n}\n" for n in notes) + "\n" + dumps_toml(d)
    with atomic_write(out, "w") as fh:
        fh.write(text)
    return out
