"""Potku settings (``measuring_unit_settings.ini``, ``calibration_settings.ini``,
``depth_profile_settings.ini``) and the :class:`~recoilsim.model.experiment.Experiment` they
describe.
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import RecoilsimError
from .files import MiB, decode_utf8, read_bytes
from .potku_selections import check_isotope

__all__ = ["read_potku_settings", "potku_experiment"]

def _read_ini(path: Path) -> configparser.ConfigParser | None:
    if not path.is_file():
        return None
    cp = configparser.ConfigParser(interpolation=None)
    _, raw = read_bytes(path, "Potku settings file (.ini)", max_bytes=MiB)
    try:
        cp.read_string(decode_utf8(raw, str(path)), source=str(path))
    except configparser.Error as exc:
        raise RecoilsimError(str(path), type(exc).__name__, f"a valid .ini file ({str(exc).splitlines()[0]})") from None
    return cp


def _ini_float(cp, section, key, path, required=True):
    try:
        raw = cp.get(section, key)
    except (configparser.NoSectionError, configparser.NoOptionError):
        if required:
            raise RecoilsimError(f"{path} [{section}] {key}", None, "a number (key missing)") from None
        return None
    try:
        v = float(raw)
    except ValueError:
        raise RecoilsimError(f"{path} [{section}] {key}", raw, "a number") from None
    if not np.isfinite(v):
        raise RecoilsimError(f"{path} [{section}] {key}", raw, "a finite number")
    return v


def read_potku_settings(path: os.PathLike | str, measurement: str | None = None) -> dict:
    """Read Potku's settings (``measuring_unit_settings.ini``, ``calibration_settings.ini``,
    ``depth_profile_settings.ini``) for a project or a measurement.

    ``path`` is a project folder, a ``.proj`` file, or a measurement folder (whose parent holds
    the project's .ini files). A measurement-level file overrides the project's unless its
    ``[default] use_settings`` is ``REQUEST``/``PROJECT`` (use the project's); a measurement
    calibration with slope 0 counts as "not set" (Potku writes zeros there).

    Returns
    -------
    dict
        ``beam`` {ion, element, mass_number, energy_MeV}, ``geometry`` {target_angle_deg
        (beam to sample surface), detector_angle_deg (recoil angle from the beam),
        incidence_angle_deg (from the normal), exit_angle_deg (from the normal)},
        ``detector`` {tof_length_m, carbon_foil_ug_cm2}, ``calibration`` {slope_s, offset_s,
        slope_ns, offset_ns}, ``target_density_g_cm3``, ``depth_profile`` (raw),
        ``project_name``, ``sources`` (files used).
    """
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise RecoilsimError("Potku settings path", path, "a Potku project folder, .proj file or measurement folder")
    p = Path(path)
    if p.is_file() and p.suffix == ".proj":
        proj_dir = p.parent
        meas_dir = None
    elif p.is_dir():
        if list(p.glob("*.proj")):
            proj_dir = p
            meas_dir = p / measurement if measurement else None
        elif (p.parent / "measuring_unit_settings.ini").is_file() or list(p.parent.glob("*.proj")):
            proj_dir, meas_dir = p.parent, p
        else:
            proj_dir, meas_dir = p, None
    else:
        raise RecoilsimError("Potku settings path", str(p), "a Potku project folder, .proj file or measurement folder")
    out: dict = {"sources": []}
    proj_files = list(proj_dir.glob("*.proj"))
    if proj_files:
        cp = _read_ini(proj_files[0])
        out["project_name"] = cp.get("meta", "project_name", fallback=proj_files[0].stem) if cp else proj_files[0].stem
        out["sources"].append(str(proj_files[0]))

    def pick(name):
        """(config, path) to use for one settings file, measurement overriding project."""
        proj = _read_ini(proj_dir / name)
        meas = _read_ini(meas_dir / name) if meas_dir is not None else None
        chosen = [(proj, proj_dir / name)] if proj else []
        if meas is not None:
            use = meas.get("default", "use_settings", fallback="").strip().upper()
            if use not in ("REQUEST", "PROJECT"):
                chosen.append((meas, meas_dir / name))
        return chosen

    mu = pick("measuring_unit_settings.ini")
    if not mu:
        raise RecoilsimError("measuring_unit_settings.ini", str(proj_dir), "a Potku folder with measuring_unit_settings.ini")
    cp, f = mu[-1]
    out["sources"].append(str(f))
    try:
        sym = cp.get("beam", "element").strip()
        iso = cp.get("beam", "isotope", fallback="").strip()
    except (configparser.NoSectionError, configparser.NoOptionError):
        raise RecoilsimError(f"{f} [beam] element", None, "the beam element (key missing)") from None
    A = None
    if iso:
        if not iso.isdigit():
            raise RecoilsimError(f"{f} [beam] isotope", iso, "a mass number")
        A = int(iso)
    check_isotope(sym, A, f"{f} [beam] element")
    energy = _ini_float(cp, "beam", "energy", f)
    if energy <= 0:
        raise RecoilsimError(f"{f} [beam] energy", energy, "a positive energy in MeV")
    target_angle = _ini_float(cp, "measuring_unit", "target_angle", f)
    det_angle = _ini_float(cp, "measuring_unit", "detector_angle", f)
    # Potku spells it 'lenght'; accept the corrected spelling too
    tof_len = _ini_float(cp, "measuring_unit", "time_of_flight_lenght", f, required=False)
    if tof_len is None:
        tof_len = _ini_float(cp, "measuring_unit", "time_of_flight_length", f)
    foil = _ini_float(cp, "measuring_unit", "carbon_foil_thickness", f, required=False)
    density = _ini_float(cp, "measuring_unit", "target_density", f, required=False)
    if not 0 < target_angle < 90:
        raise RecoilsimError(f"{f} [measuring_unit] target_angle", target_angle, "an angle in (0, 90) degrees")
    if not 0 < det_angle < 90:
        raise RecoilsimError(f"{f} [measuring_unit] detector_angle", det_angle, "an angle in (0, 90) degrees")
    if tof_len <= 0:
        raise RecoilsimError(f"{f} [measuring_unit] time_of_flight_lenght", tof_len, "a positive length in m")
    out["beam"] = {"ion": f"{A}{sym}" if A else sym, "element": sym, "mass_number": A, "energy_MeV": energy}
    # Potku's target angle is measured between the beam and the sample surface; the recoil
    # leaves at (detector_angle - target_angle) above the surface.
    out["geometry"] = {
        "target_angle_deg": target_angle,
        "detector_angle_deg": det_angle,
        "incidence_angle_deg": 90.0 - target_angle,
        "exit_angle_deg": 90.0 - (det_angle - target_angle),
    }
    out["detector"] = {"tof_length_m": tof_len, "carbon_foil_ug_cm2": foil}
    out["target_density_g_cm3"] = density
    cal = None
    for cp_c, fc in reversed(pick("calibration_settings.ini")):
        slope = _ini_float(cp_c, "parameters", "slope", fc, required=False)
        offset = _ini_float(cp_c, "parameters", "offset", fc, required=False)
        if slope is not None and slope != 0:
            cal = {"slope_s": slope, "offset_s": offset or 0.0, "slope_ns": slope * 1e9,
                   "offset_ns": (offset or 0.0) * 1e9, "source": str(fc)}
            out["sources"].append(str(fc))
            break
    out["calibration"] = cal
    dp = pick("depth_profile_settings.ini")
    if dp:
        cp_d, fd = dp[-1]
        out["depth_profile"] = dict(cp_d.items("depth_profile_settings")) if cp_d.has_section("depth_profile_settings") else {}
    return out


# ----------------------------------------------------------------------------------------------
# settings -> Experiment
# ----------------------------------------------------------------------------------------------

def potku_experiment(settings, sample, recoils, solid_angle_msr: float, n_channels: int = 8192,
                     fluence: float = 1e12, timing_resolution_ps: float = 0.0,
                     energy_resolution_keV: float = 0.0, options=None, name: str | None = None):
    """Build a :class:`recoilsim.model.experiment.Experiment` from Potku settings.

    Parameters
    ----------
    settings : dict from :func:`read_potku_settings`, or a path passed to it
    sample : recoilsim Sample (Potku's .ini files carry no sample)
    recoils : elements/isotopes to simulate, e.g. ``['7Li', 'O', 'Mn']``
    solid_angle_msr : telescope solid angle (not in Potku's measuring-unit settings)
    n_channels, fluence, timing_resolution_ps, energy_resolution_keV, options
        Passed to Detector / Beam / Experiment.

    Beam ion and energy, target and detector angles (converted with
    :meth:`recoilsim.model.instrument.Geometry.from_target_detector`), flight length, the T1 carbon
    foil (ug/cm2) and the TOF calibration (Potku's s -> ns) come from the settings.
    """
    from ..model.experiment import Experiment, Options
    from ..model.instrument import Beam, Detector, Foil, Geometry

    st = settings if isinstance(settings, Mapping) else read_potku_settings(settings)
    for key in ("beam", "geometry", "detector"):
        if key not in st:
            raise RecoilsimError("settings", sorted(st), f"a dict from read_potku_settings (missing {key!r})")
    cal = st.get("calibration")
    if not cal:
        raise RecoilsimError("settings.calibration", cal, "a TOF calibration with non-zero slope (calibration_settings.ini)")
    beam = Beam(st["beam"]["ion"], st["beam"]["energy_MeV"], fluence=fluence)
    geo = Geometry.from_target_detector(st["geometry"]["target_angle_deg"], st["geometry"]["detector_angle_deg"])
    foils = []
    foil = st["detector"].get("carbon_foil_ug_cm2")
    if foil:
        foils.append(Foil("C", thickness_ug_cm2=foil, name="T1 carbon foil"))
    det = Detector(flight_length_m=st["detector"]["tof_length_m"], solid_angle_msr=solid_angle_msr,
                   calibration_a_ns=cal["slope_ns"], calibration_b_ns=cal["offset_ns"], n_channels=n_channels,
                   timing_resolution_ps=timing_resolution_ps, foils=foils,
                   energy_resolution_keV=energy_resolution_keV)
    return Experiment(beam=beam, geometry=geo, detector=det, sample=sample, recoils=list(recoils),
                      options=options if options is not None else Options(),
                      name=name or st.get("project_name", "potku"))
