"""An :class:`~recoilsim.model.experiment.Experiment` in the experiment file's shape: the dict that
:func:`recoilsim.io.experiment_file.experiment_from_dict` reads back and
:mod:`recoilsim.io.experiment_dump` writes as TOML."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..model.experiment import Experiment

__all__ = ["experiment_to_dict"]


def _comp(obj) -> Any:
    c = getattr(obj, "composition", None)
    if isinstance(c, str):
        return c
    return {k: float(v) for k, v in obj.fractions.items()}


def experiment_to_dict(exp: Experiment) -> dict:
    """The experiment in the file's shape (what :func:`experiment_from_dict` reads back)."""
    b = exp.beam
    beam = {"ion": b.ion, "energy_MeV": float(b.energy_MeV), "fluence": float(b.fluence)}
    if b.charge_state is not None:
        beam["charge_state"] = int(b.charge_state)
    g = exp.geometry
    geometry = {k: float(getattr(g, k)) for k in ("incidence_deg", "exit_deg", "recoil_deg",
                                                  "beam_divergence_deg", "detector_aperture_deg")}
    det = exp.detector
    detector = {"flight_length_m": float(det.flight_length_m), "solid_angle_msr": float(det.solid_angle_msr),
                "calibration_a_ns": float(det.calibration_a_ns), "calibration_b_ns": float(det.calibration_b_ns),
                "n_channels": int(det.n_channels), "timing_resolution_ps": float(det.timing_resolution_ps),
                "energy_resolution_keV": float(det.energy_resolution_keV),
                "timing_tail_ns": float(det.timing_tail_ns), "timing_tail_fraction": float(det.timing_tail_fraction)}
    for key, foils in (("foils", det.foils), ("energy_foils", det.energy_foils)):
        if foils:
            detector[key] = [{"name": f.name, "composition": _comp(f),
                              "areal_density_1e15": float(f.areal_density_1e15)} for f in foils]
    if det.efficiency:
        detector["efficiency"] = {k: {"energy_MeV": [float(x) for x in v[0]], "efficiency": [float(x) for x in v[1]]}
                                  for k, v in det.efficiency.items()}
    layers = []
    for l in exp.sample.layers:
        ld: dict[str, Any] = {"name": l.name, "composition": _comp(l)}
        if l.density_g_cm3 is not None and l.thickness_nm is not None:
            ld["thickness_nm"] = float(l.thickness_nm)
            ld["density_g_cm3"] = float(l.density_g_cm3)
        else:
            ld["areal_density_1e15"] = float(l.areal_density_1e15)
        if l.enrichment:
            ld["enrichment"] = {k: {str(a): float(f) for a, f in v.items()} for k, v in l.enrichment.items()}
        if l.stopping_factors:
            ld["stopping_factors"] = {k: float(v) for k, v in l.stopping_factors.items()}
        if l.stopping is not None:
            ld["stopping"] = l.stopping
        if l.profiles:
            ld["profiles"] = [{"element": p.element, "depth": [float(x) for x in p.depth],
                               "values": [float(x) for x in p.values], "kind": p.kind, "depth_unit": p.depth_unit}
                              for p in l.profiles]
        layers.append(ld)
    return {"name": exp.name, "recoils": [str(r) for r in exp.recoils], "beam": beam, "geometry": geometry,
            "detector": detector, "sample": {"layers": layers}, "options": dataclasses.asdict(exp.options)}
