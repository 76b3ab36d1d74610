"""Instrument model: beam, scattering geometry, TOF telescope and detector.

API units: MeV, degrees, m, ns, ps, msr, keV, 1e15 atoms/cm2 (or ug/cm2 for foils).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from .constants import AVOGADRO_PER_MOL as N_A, ELEMENTARY_CHARGE_C as E_CHARGE

from .composition import composition as _composition
from .composition import molar_mass_g
from .elements import Isotope, element, isotope
from ..errors import RecoilsimError, require_finite, require_positive, require_range


@dataclass
class Beam:
    """Incident ion beam.

    Parameters
    ----------
    ion : str
        Isotope, e.g. ``'63Cu'`` (an element alone means its most abundant isotope).
    energy_MeV : float
        Kinetic energy in MeV.
    fluence : float
        Number of incident ions Q (> 0).
    charge_state : int, optional
        Charge state of the ions (metadata; used by :meth:`from_charge`).
    """

    ion: str
    energy_MeV: float
    fluence: float = 1e12
    charge_state: int | None = None

    def __post_init__(self):
        self.isotope: Isotope = isotope(self.ion)
        self.ion = self.isotope.name
        self.energy_MeV = require_positive("beam.energy_MeV", self.energy_MeV)
        self.fluence = require_positive("beam.fluence", self.fluence)
        if self.charge_state is not None:
            if int(self.charge_state) != self.charge_state or not 1 <= self.charge_state <= self.isotope.Z:
                raise RecoilsimError("beam.charge_state", self.charge_state, f"an integer from 1 to Z = {self.isotope.Z}")
            self.charge_state = int(self.charge_state)

    @classmethod
    def from_charge(cls, ion: str, energy_MeV: float, charge_uC: float, charge_state: int) -> "Beam":
        """Beam whose fluence is the collected charge (uC) divided by charge_state * e."""
        q = require_positive("beam.charge_uC", charge_uC)
        if int(charge_state) != charge_state or charge_state < 1:
            raise RecoilsimError("beam.charge_state", charge_state, "an integer >= 1")
        return cls(ion, energy_MeV, q * 1e-6 / (charge_state * E_CHARGE), int(charge_state))


#: Rounding allowed in alpha + beta + phi >= 180 deg (degrees).
GEOMETRY_TOLERANCE_DEG = 1e-9


@dataclass
class Geometry:
    """Scattering geometry.

    Parameters
    ----------
    incidence_deg : float
        Angle alpha between beam and sample normal, [0, 90).
    exit_deg : float
        Angle beta between the direction to the detector and the sample normal, [0, 90).
    recoil_deg : float
        Recoil (detector) angle phi from the beam direction, (0, 90). With the beam arriving at
        alpha from the inward normal and the detector at beta from the outward normal, the
        angle between beam and detector directions is phi = 180 - alpha - beta when both lie in
        one plane with the normal (in-plane reflection geometry, as :meth:`from_target_detector`)
        and lies between 180 - alpha - beta and 180 - |alpha - beta| otherwise (detector out of
        that plane): cos(phi) = -cos(alpha) cos(beta) + sin(alpha) sin(beta) cos(dpsi), dpsi the
        azimuth between the two directions. So alpha + beta + phi >= 180 is required.
    beam_divergence_deg : float
        FWHM of the beam's angular divergence (geometric spread), >= 0.
    detector_aperture_deg : float
        Full angular width of the detector aperture in the scattering plane, seen from the
        beam spot (beam spot size and detector aperture together), >= 0.
    """

    incidence_deg: float
    exit_deg: float
    recoil_deg: float
    beam_divergence_deg: float = 0.0
    detector_aperture_deg: float = 0.0

    def __post_init__(self):
        self.incidence_deg = require_range("geometry.incidence_deg", self.incidence_deg, 0.0, 90.0, hi_open=True)
        self.exit_deg = require_range("geometry.exit_deg", self.exit_deg, 0.0, 90.0, hi_open=True)
        self.recoil_deg = require_range("geometry.recoil_deg", self.recoil_deg, 0.0, 90.0, lo_open=True, hi_open=True)
        self.beam_divergence_deg = require_range("geometry.beam_divergence_deg", self.beam_divergence_deg, 0.0, 10.0)
        self.detector_aperture_deg = require_range("geometry.detector_aperture_deg", self.detector_aperture_deg, 0.0, 10.0)
        lowest = 180.0 - self.incidence_deg - self.exit_deg
        if self.recoil_deg < lowest - GEOMETRY_TOLERANCE_DEG:
            raise RecoilsimError("geometry.recoil_deg", self.recoil_deg,
                                 f"at least 180 - incidence - exit = {lowest:.6g} deg for incidence "
                                 f"{self.incidence_deg} deg and exit {self.exit_deg} deg (equal in the in-plane "
                                 "reflection geometry; a smaller angle between beam and detector is impossible)")

    @classmethod
    def from_target_detector(cls, target_angle_deg: float, detector_angle_deg: float, **kw) -> "Geometry":
        """Potku's form: target angle (beam to sample surface) and detector angle (from the beam).

        In-plane reflection geometry: incidence from the normal alpha = 90 - target angle;
        exit from the normal beta = 90 - (detector angle - target angle).
        """
        ta = require_range("geometry.target_angle_deg", target_angle_deg, 0.0, 90.0, lo_open=True)
        da = require_range("geometry.detector_angle_deg", detector_angle_deg, 0.0, 90.0, lo_open=True, hi_open=True)
        if da <= ta:
            raise RecoilsimError("geometry.detector_angle_deg", detector_angle_deg,
                                 f"larger than the target angle {ta} deg (else the detector looks behind the sample surface)")
        return cls(90.0 - ta, 90.0 - (da - ta), da, **kw)


@dataclass
class Foil:
    """A foil or window in the particle path (e.g. the T1 carbon timing foil).

    Give either ``areal_density_1e15`` (1e15 atoms/cm2) or ``thickness_ug_cm2``.
    """

    composition: str | Mapping[str, float]
    areal_density_1e15: float | None = None
    thickness_ug_cm2: float | None = None
    name: str = "foil"

    def __post_init__(self):
        self.fractions = _composition(self.composition, f"{self.name}.composition")
        if (self.areal_density_1e15 is None) == (self.thickness_ug_cm2 is None):
            raise RecoilsimError(f"{self.name}.thickness", (self.areal_density_1e15, self.thickness_ug_cm2),
                                 "exactly one of areal_density_1e15 or thickness_ug_cm2, > 0")
        if self.thickness_ug_cm2 is not None:
            t = require_positive(f"{self.name}.thickness_ug_cm2", self.thickness_ug_cm2)
            self.areal_density_1e15 = t * 1e-6 * N_A / molar_mass_g(self.fractions) / 1e15
        else:
            self.areal_density_1e15 = require_positive(f"{self.name}.areal_density_1e15", self.areal_density_1e15)


@dataclass
class Detector:
    """TOF-E telescope: two timing detectors T1, T2 a flight length apart, then an energy detector.

    Parameters
    ----------
    flight_length_m : float
        Distance T1 -> T2 in m.
    solid_angle_msr : float
        Solid angle of the telescope in msr.
    calibration_a_ns : float
        Slope of t = a * channel + b, ns per channel (either sign, not 0).
    calibration_b_ns : float
        Offset of the calibration, ns.
    n_channels : int
        Number of TOF channels.
    timing_resolution_ps : float
        FWHM of the timing resolution in ps (a Gaussian in time), >= 0.
    foils : list of Foil
        Foils crossed before the flight (the T1 timing foil, windows).
    energy_foils : list of Foil
        Foils crossed after the flight, before the energy detector (the T2 foil).
    energy_resolution_keV : float
        FWHM of the energy detector in keV, >= 0.
    efficiency : mapping, optional
        Element -> (energies_MeV, efficiency) curve (linear interpolation, clipped to [0, 1]);
        elements not named have efficiency 1.
    timing_tail_ns : float
        Decay time (ns) of an exponential tail of the timing response (exponentially modified
        Gaussian, Grushka 1972; :mod:`recoilsim.kernels.timing_tail`): > 0 towards later times,
        < 0 towards earlier times; 0 (default) none.
    timing_tail_fraction : float
        Fraction of the counts in the tail, in [0, 1] (default 0).
    """

    flight_length_m: float
    solid_angle_msr: float
    calibration_a_ns: float
    calibration_b_ns: float
    n_channels: int = 1024
    timing_resolution_ps: float = 0.0
    foils: list[Foil] = field(default_factory=list)
    energy_foils: list[Foil] = field(default_factory=list)
    energy_resolution_keV: float = 0.0
    efficiency: Mapping[str, tuple[Sequence[float], Sequence[float]]] = field(default_factory=dict)
    timing_tail_ns: float = 0.0
    timing_tail_fraction: float = 0.0

    def __post_init__(self):
        self.flight_length_m = require_range("detector.flight_length_m", self.flight_length_m, 0.0, 100.0, lo_open=True)
        self.solid_angle_msr = require_range("detector.solid_angle_msr", self.solid_angle_msr, 0.0, 4000.0 * math.pi,
                                             lo_open=True)  # a solid angle is at most 4 pi sr
        self.calibration_a_ns = require_finite("detector.calibration_a_ns", self.calibration_a_ns)
        if self.calibration_a_ns == 0:
            raise RecoilsimError("detector.calibration_a_ns", 0, "a non-zero slope (ns per channel)")
        self.calibration_b_ns = require_finite("detector.calibration_b_ns", self.calibration_b_ns)
        if isinstance(self.n_channels, bool) or int(self.n_channels) != self.n_channels or not 2 <= self.n_channels <= 2**20:
            raise RecoilsimError("detector.n_channels", self.n_channels, "an integer from 2 to 1048576")
        self.n_channels = int(self.n_channels)
        self.timing_resolution_ps = require_range("detector.timing_resolution_ps", self.timing_resolution_ps, 0.0, 1e5)
        self.energy_resolution_keV = require_range("detector.energy_resolution_keV", self.energy_resolution_keV, 0.0, 1e5)
        self.timing_tail_ns = require_range("detector.timing_tail_ns", self.timing_tail_ns, -1e4, 1e4)
        self.timing_tail_fraction = require_range("detector.timing_tail_fraction", self.timing_tail_fraction, 0.0, 1.0)
        for f in list(self.foils) + list(self.energy_foils):
            if not isinstance(f, Foil):
                raise RecoilsimError("detector.foils", f, "Foil objects")
        eff = {}
        for k, v in dict(self.efficiency).items():
            try:
                e_, y_ = (np.asarray(x, dtype=float) for x in v)
            except (TypeError, ValueError):
                raise RecoilsimError(f"detector.efficiency[{k}]", v, "a pair (energies_MeV, efficiencies)") from None
            if e_.ndim != 1 or e_.shape != y_.shape or e_.size < 1 or not np.all(np.isfinite(e_)) \
                    or not np.all(np.isfinite(y_)) or np.any(np.diff(e_) <= 0) or np.any(y_ < 0) or np.any(y_ > 1):
                raise RecoilsimError(f"detector.efficiency[{k}]", v,
                                     "equal-length arrays, energies increasing, efficiencies in [0, 1]")
            eff[element(k).symbol] = (e_, y_)
        self.efficiency = eff

    @property
    def solid_angle_sr(self) -> float:
        """Solid angle in sr."""
        return self.solid_angle_msr * 1e-3

    def channel_times_ns(self) -> np.ndarray:
        """Time of flight at each channel centre, ns."""
        return self.calibration_a_ns * np.arange(self.n_channels) + self.calibration_b_ns

    def channel_edges_ns(self) -> np.ndarray:
        """Times at the channel edges (n_channels + 1), ns, in channel order."""
        return self.calibration_a_ns * (np.arange(self.n_channels + 1) - 0.5) + self.calibration_b_ns


def fwhm_to_sigma(fwhm: float) -> float:
    """Gaussian sigma from a FWHM: sigma = FWHM / (2 sqrt(2 ln 2))."""
    return fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
