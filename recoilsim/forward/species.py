"""Outgoing species of an experiment: every recoiling isotope, and the scattered beam."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import RecoilsimError
from ..kernels.kinematics import scatter_factor
from ..model.elements import element, natural_isotopes
from ..model.experiment import Experiment


@dataclass
class Species:
    """One outgoing contribution: a recoiling isotope or the beam scattered by one isotope."""

    label: str  # '7Li' or '63Cu-scattered(+)'
    element: str  # element of the detected particle
    Z: int  # detected particle
    mass_u: float
    target_Z: int
    target_mass_u: float
    target_symbol: str
    target_A: int
    kind: int  # 0 recoil, +1/-1 scattered beam root


def build_species(exp: Experiment) -> list[Species]:
    """Outgoing species: every recoil isotope, plus the scattered beam when asked for."""
    out = [Species(i.name, i.symbol, i.Z, i.mass_u, i.Z, i.mass_u, i.symbol, i.A, 0)
           for i in exp.recoil_isotopes()]
    if exp.options.scattered_beam:
        b = exp.beam.isotope
        phi = math.radians(exp.geometry.recoil_deg)
        found = False
        for sym in exp.sample.elements():
            isos = set()
            for layer in exp.sample.layers:
                if sym in layer.elements():
                    isos.update((i.A, i.mass_u) for i in natural_isotopes(sym, layer.enrichment.get(sym)))
            for A, m in sorted(isos):
                for root in (1, -1):
                    if scatter_factor(b.mass_u, m, phi, root) > 0:
                        found = True
                        tag = "" if root > 0 else "-low"
                        out.append(Species(f"{b.name}-scattered-{A}{sym}{tag}", b.symbol, b.Z, b.mass_u,
                                           element(sym).number, m, sym, A, root))
        if not found:
            raise RecoilsimError("options.scattered_beam", True,
                                 f"a sample element heavy enough to scatter {b.name} to "
                                 f"{exp.geometry.recoil_deg} deg (needs sin(angle) < M2/M1)")
    return out
