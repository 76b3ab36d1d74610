"""An experiment: beam, geometry, detector, sample, the recoils to simulate, and options.

Also holds the built-in reference experiment of Kurihara et al., J. Solid State Electrochem.
(2024), doi:10.1007/s10008-024-05865-y (9 MeV 63Cu on Cu / LiPON / LATP).
"""

from __future__ import annotations

from dataclasses import dataclass, field, asdict
from typing import Sequence

import numpy as np

from .elements import Isotope, element, isotope, natural_isotopes
from ..errors import RecoilsimError
from .instrument import Beam, Detector, Foil, Geometry
from ..kernels.kinematics import recoil_factor
from .sample import Layer, Profile, Sample

SCREENING = {"none": 0, "andersen": 1, "lecuyer": 2}
STRAGGLING = ("yang", "chu", "bohr", "none")
PROFILE_MODELS = ("perturbation", "blocks")


@dataclass
class Options:
    """Physics and numerics options of a simulation.

    Parameters
    ----------
    screening : {'andersen', 'lecuyer', 'none'}
        Screening correction of the Rutherford cross section (Andersen is the default;
        L'Ecuyer is derived for backscattering angles).
    straggling : {'yang', 'chu', 'bohr', 'none'}
        Energy-straggling model (Yang et al. 1991 with effective charge by default).
    relativistic : bool
        Relativistic flight time (default) or classical.
    scattered_beam : bool
        Also simulate the beam ions scattered by heavy sample elements into the detector.
    resolution : bool
        Apply the Gaussian spread (straggling, geometry, timing); False gives the bare
        brick spectrum (total counts unchanged).
    max_channel_fraction : float
        Upper bound of a sublayer's width in channels (adaptive sublayering).
    max_sigma_fraction : float
        With ``resolution`` on, a species' sublayer may instead be as wide as this fraction of
        its own time spread (sigma), when that is wider: deep in the sample, where straggling
        spreads a sublayer over many channels, finer sublayers change nothing (0 disables).
    profile_step_nm : float
        Upper bound of the sublayer thickness (nm, or 1e15 at/cm2 in layers without density)
        inside the depth range of a profile.
    profile_model : {'perturbation', 'blocks'}
        How the kernel treats a layer's depth profile. ``'perturbation'`` (default): the
        profile's steps are grouped into a few blocks (cut at steep steps, at most 8 % of the
        beam's energy lost across one, and each smooth piece into near-equal blocks over
        which no atomic fraction ranges by more than 0.1: ``forward/stack.py``); each such
        block has the stopping tables of its mean composition, and the composition difference
        along depth is carried to first order as an effective thickness (Bragg's rule is linear
        in the composition), the yields integrated over each brick. ``'blocks'``: every step a
        block of uniform composition (tables per step, brick boundaries at every step).
    multiple_scattering : bool
        Add small-angle multiple scattering of the beam and of the recoils to the spread
        (default on; needs ``resolution``): Sigmund-Winterbon widths, their effect on the recoil
        angle and on the path lengths, as a Gaussian of the same half width
        (:mod:`recoilsim.kernels.multiple_scattering`, docs/multiple_scattering.md). The real
        shape also has a low-energy (late-time) tail that is not modelled.
    stopping : str
        Electronic stopping source: ``'srim2013'`` (shipped, default), ``'catima'`` (needs the
        pycatima package) or the path of a file or folder of stopping tables (SRIM output,
        JIBAL GSTO) overriding SRIM-2013 for the pairs they hold. A layer may name its own
        (``Layer.stopping``); this one holds for the others and for the detector foils.
    straggling_table : str
        Path of a JIBAL ``.stg`` straggling file (straggling as a multiple of Bohr's variance per
        (Z1, Z2) and energy): its rows replace the ``straggling`` model for the pairs it covers;
        ``''`` (default): none.
    """

    screening: str = "andersen"
    straggling: str = "yang"
    relativistic: bool = True
    scattered_beam: bool = False
    resolution: bool = True
    max_channel_fraction: float = 0.8
    max_sigma_fraction: float = 0.5
    profile_step_nm: float = 1.0
    profile_model: str = "perturbation"
    multiple_scattering: bool = True
    stopping: str = "srim2013"
    straggling_table: str = ""

    def __post_init__(self):
        if self.screening not in SCREENING:
            raise RecoilsimError("options.screening", self.screening, f"one of {sorted(SCREENING)}")
        if self.straggling not in STRAGGLING:
            raise RecoilsimError("options.straggling", self.straggling, f"one of {list(STRAGGLING)}")
        if not (0.01 <= float(self.max_channel_fraction) <= 5.0):
            raise RecoilsimError("options.max_channel_fraction", self.max_channel_fraction, "a number in [0.01, 5]")
        if not (0.0 <= float(self.max_sigma_fraction) <= 2.0):
            raise RecoilsimError("options.max_sigma_fraction", self.max_sigma_fraction, "a number in [0, 2]")
        if not isinstance(self.multiple_scattering, (bool, np.bool_)):
            raise RecoilsimError("options.multiple_scattering", self.multiple_scattering, "true or false")
        if not (0.01 <= float(self.profile_step_nm) <= 1000.0):
            raise RecoilsimError("options.profile_step_nm", self.profile_step_nm, "a number in [0.01, 1000]")
        if self.profile_model not in PROFILE_MODELS:
            raise RecoilsimError("options.profile_model", self.profile_model, f"one of {list(PROFILE_MODELS)}")
        if not isinstance(self.stopping, str) or not self.stopping.strip():
            raise RecoilsimError("options.stopping", self.stopping,
                                 "'srim2013', 'catima' or the path of a stopping-table file or folder")
        if self.stopping.strip().lower() in ("srim2013", "catima"):
            self.stopping = self.stopping.strip().lower()
        if not isinstance(self.straggling_table, str):
            raise RecoilsimError("options.straggling_table", self.straggling_table,
                                 "the path of a JIBAL .stg straggling file, or '' for none")


@dataclass
class Experiment:
    """Everything a simulation needs.

    Parameters
    ----------
    beam, geometry, detector, sample
        The instrument and the sample.
    recoils : sequence of str
        Elements (``'Li'``: all its isotopes present) or single isotopes (``'7Li'``) to simulate.
    options : Options
        Physics and numerics options.
    name : str
        Label stored with the results.
    source : str, optional
        The file the experiment was read from (set by the file readers; writers never write
        over it). Not part of the physics: ignored by comparisons.
    """

    beam: Beam
    geometry: Geometry
    detector: Detector
    sample: Sample
    recoils: Sequence[str]
    options: Options = field(default_factory=Options)
    name: str = "experiment"
    source: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        for f, t in (("beam", Beam), ("geometry", Geometry), ("detector", Detector), ("sample", Sample),
                     ("options", Options)):
            if not isinstance(getattr(self, f), t):
                raise RecoilsimError(f, getattr(self, f), f"a {t.__name__}")
        if isinstance(self.recoils, str):
            self.recoils = [self.recoils]
        if not self.recoils:
            raise RecoilsimError("recoils", self.recoils, "at least one element or isotope")
        present = self.sample.elements()
        for r in self.recoils:
            iso = _parse_recoil(r)
            sym = iso.symbol if isinstance(iso, Isotope) else iso
            if sym not in present:
                raise RecoilsimError("recoils", r, f"an element present in the sample ({', '.join(present)})")
        phi = np.radians(self.geometry.recoil_deg)
        for iso in self.recoil_isotopes():
            if recoil_factor(self.beam.isotope.mass_u, iso.mass_u, phi) <= 0:
                raise RecoilsimError("geometry.recoil_deg", self.geometry.recoil_deg, "< 90 deg")

    def recoil_isotopes(self) -> list[Isotope]:
        """The isotopes to simulate, each once, in the order the recoils were given.

        An element expands to every isotope present in any layer (natural abundance or the
        layer's enrichment).
        """
        out: list[Isotope] = []
        seen = set()  # (Z, A) in out
        for r in self.recoils:
            p = _parse_recoil(r)
            if isinstance(p, Isotope):
                cands = [p]
            else:
                cands = {}  # A -> the first layer's isotope of that mass number
                for layer in self.sample.layers:
                    if p in layer.elements():
                        for i in natural_isotopes(p, layer.enrichment.get(p)):
                            cands.setdefault(i.A, i)
                cands = list(cands.values())
            for c in sorted(cands, key=lambda x: x.A):
                if (c.Z, c.A) not in seen:
                    seen.add((c.Z, c.A))
                    out.append(c)
        return out

    def describe(self) -> dict:
        """A flat, JSON-friendly record of every input (for result attrs)."""
        layers = []
        for l in self.sample.layers:
            layers.append({
                "name": l.name, "composition": l.formula or dict(l.fractions),
                "areal_density_1e15": l.areal_density_1e15, "thickness_nm": l.thickness_nm,
                "density_g_cm3": l.density_g_cm3,
                "profiles": [{"element": p.element, "depth": list(map(float, p.depth)),
                              "values": list(map(float, p.values)), "kind": p.kind, "depth_unit": p.depth_unit}
                             for p in l.profiles],
                "enrichment": {k: dict(v) for k, v in l.enrichment.items()},
                "stopping_factors": dict(l.stopping_factors), "stopping": l.stopping or self.options.stopping,
            })
        det = self.detector
        return {
            "name": self.name,
            "beam": {"ion": self.beam.ion, "energy_MeV": self.beam.energy_MeV, "fluence": self.beam.fluence,
                     "charge_state": self.beam.charge_state},
            "geometry": asdict(self.geometry),
            "detector": {
                "flight_length_m": det.flight_length_m, "solid_angle_msr": det.solid_angle_msr,
                "calibration_a_ns": det.calibration_a_ns, "calibration_b_ns": det.calibration_b_ns,
                "n_channels": det.n_channels, "timing_resolution_ps": det.timing_resolution_ps,
                "energy_resolution_keV": det.energy_resolution_keV,
                "foils": [{"name": f.name, "composition": f.fractions, "areal_density_1e15": f.areal_density_1e15}
                          for f in det.foils],
                "energy_foils": [{"name": f.name, "composition": f.fractions,
                                  "areal_density_1e15": f.areal_density_1e15} for f in det.energy_foils],
                "efficiency": {k: [list(map(float, v[0])), list(map(float, v[1]))] for k, v in det.efficiency.items()},
            },
            "sample": layers,
            "recoils": list(self.recoils),
            "options": asdict(self.options),
        }


def _parse_recoil(r: str):
    """'Li' -> 'Li' (element); '7Li' / 'Li-7' -> Isotope."""
    if not isinstance(r, str) or not r.strip():
        raise RecoilsimError("recoils", r, "element symbols ('Li') or isotopes ('7Li')")
    s = r.strip()
    if any(ch.isdigit() for ch in s):
        return isotope(s)
    return element(s).symbol


# --- the reference experiment -------------------------------------------------------------

#: Assumptions for the reference experiment where the paper is silent (documented in README).
REFERENCE_ASSUMPTIONS = {
    "geometry": "recoil angle 40 deg, incidence and exit 70 deg from the normal (symmetric)",
    "flight_length_m": "0.600 m",
    "solid_angle_msr": "0.1 msr (gives a few thousand Li counts over the first 30 nm of LiPON)",
    "t1_foil": "carbon, 3.0 ug/cm2",
    "timing_resolution_ps": "150 ps FWHM",
    "energy_resolution_keV": "40 keV FWHM",
    "densities": "Cu 8.96 g/cm3 (bulk), LiPON 2.5 g/cm3, LATP 2.9 g/cm3",
    "calibration": "a = 0.1039 ns/ch, b = 29.08 ns: chosen so that 7Li from the Cu surface lies at channel "
                   "520 and 30 nm of Cu spans 50 channels (the paper's Cu surface at 520 and Cu/LiPON "
                   "interface at 570); 30 nm of LiPON then spans 35.5 channels (paper: about 35)",
    "fluence": "2.3e13 ions/cm2 over 4 mm2 = 9.2e11 ions (paper: 20 pA, 10 h, Cu5+)",
    "beam_divergence_deg": "0.05 deg FWHM",
    "detector_aperture_deg": "0.3 deg full width",
}

# TOF calibration of the reference case (ns/channel, ns); see REFERENCE_ASSUMPTIONS.
REFERENCE_CALIBRATION_NS = (0.1039, 29.08)


def reference_sample(li_profile: Profile | None = None, lipon_thickness_nm: float = 2500.0) -> Sample:
    """Cu (30 nm) / LiPON Li2.0PO2.6N0.9 (2.5 um) / LATP Li1.3Al0.3Ti1.7(PO4)3 (150 um).

    ``li_profile`` (optional) is a depth profile of Li inside the LiPON layer, depth from the
    Cu/LiPON interface.
    """
    return Sample([
        Layer("Cu", thickness_nm=30.0, density_g_cm3=8.96, name="Cu"),
        Layer("Li2.0PO2.6N0.9", thickness_nm=lipon_thickness_nm, density_g_cm3=2.5, name="LiPON",
              profiles=[li_profile] if li_profile is not None else []),
        Layer("Li1.3Al0.3Ti1.7(PO4)3", thickness_nm=150e3, density_g_cm3=2.9, name="LATP"),
    ])


def reference_experiment(li_profile: Profile | None = None, recoils: Sequence[str] = ("Li", "P", "O", "N", "C"),
                         **option_kw) -> Experiment:
    """The reference experiment of the paper (9 MeV 63Cu, Cu/LiPON/LATP), as a named default.

    The paper gives beam, sample and fluence; the instrument values it does not give are the
    assumptions in :data:`REFERENCE_ASSUMPTIONS`. Carbon is a recoil of the reference case; the
    sample carries no carbon unless a profile or layer adds it, so ``'C'`` is simulated only when
    present (a trace of 0.5 at.% C is added to the Cu top as surface contamination here).
    """
    sample = reference_sample(li_profile)
    sample.layers[0] = Layer({"Cu": 0.995, "C": 0.005}, thickness_nm=30.0, density_g_cm3=8.96, name="Cu")
    a, b = REFERENCE_CALIBRATION_NS
    det = Detector(
        flight_length_m=0.600, solid_angle_msr=0.1, calibration_a_ns=a, calibration_b_ns=b,
        n_channels=1024, timing_resolution_ps=150.0,
        foils=[Foil("C", thickness_ug_cm2=3.0, name="T1 foil")],
        energy_foils=[Foil("C", thickness_ug_cm2=3.0, name="T2 foil")],
        energy_resolution_keV=40.0,
    )
    return Experiment(
        beam=Beam("63Cu", 9.0, fluence=2.3e13 * 0.04, charge_state=5),
        geometry=Geometry(70.0, 70.0, 40.0, beam_divergence_deg=0.05, detector_aperture_deg=0.3),
        detector=det, sample=sample, recoils=list(recoils), options=Options(**option_kw),
        name="Kurihara2024-reference",
    )
