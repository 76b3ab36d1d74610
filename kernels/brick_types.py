"""Typed inputs and output of the brick kernel (:func:`bricks.simulate_bricks`).

NamedTuples of numpy arrays and scalars, which Numba accepts as arguments and builds as results.
Each groups one part of the problem; the Python layer (``recoilsim.forward.engine``) fills them
from an Experiment. Array dtypes are float64 unless noted; integers are int64.

Units: MeV, u, 1e15 atoms/cm2, ns, m, radians; stopping tables in eV/(1e15 atoms/cm2),
straggling tables in MeV^2 per 1e15 atoms/cm2, cross sections mb/sr.
"""

from typing import NamedTuple

import numpy as np


class Particles(NamedTuple):
    """Stopping and straggling tables of every particle (the beam and each outgoing particle)."""

    S: np.ndarray  #: (n_p, n_el, n_grid) stopping of each particle in each element, eV/1e15
    W: np.ndarray  #: (n_p, n_el, n_grid) straggling rate, MeV^2/1e15
    lnE0: float  #: ln(E/M [MeV/u]) of the first grid node
    dlnE: float  #: grid step in ln E
    mass: np.ndarray  #: (n_p,) masses, u
    klo: np.ndarray  #: (n_p,) int64, first table node each particle needs
    khi: np.ndarray  #: (n_p,) int64, last table node each particle needs


class Stack(NamedTuple):
    """The sample as blocks of uniform composition."""

    top: np.ndarray  #: (n_b + 1,) block boundaries from the surface, 1e15 at/cm2
    fracS: np.ndarray  #: (n_b, n_el) atomic fractions times stopping factors (for the stopping)
    fracW: np.ndarray  #: (n_b, n_el) atomic fractions (for the straggling)
    el_Z: np.ndarray = np.zeros(0)  #: (n_el,) atomic numbers of the elements (for multiple scattering)
    #: (n_b + 1,) int64: block b's points in prof_x, prof_dS and Species.cum are prof_start[b] ..
    #: prof_start[b + 1] - 1 (none: uniform composition; else a block of varying composition,
    #: :mod:`profile_blocks`); empty: every block uniform
    prof_start: np.ndarray = np.zeros(0, dtype=np.int64)
    prof_x: np.ndarray = np.zeros(0)  #: (n_pts,) offsets of a varying block's points from its top, 1e15 at/cm2
    #: (n_pts, n_el) int_0^x (fracS(x) - fracS_block) dx at each point, 1e15 at/cm2
    prof_dS: np.ndarray = np.zeros((0, 0))
    prof_dx: np.ndarray = np.zeros(0)  #: (n_b,) the widest brick (depth) in a block of varying composition


class Beam(NamedTuple):
    """The incident ion."""

    particle: int  #: index of the beam in :class:`Particles`
    Z: int  #: charge number
    mass_u: float  #: mass, u
    energy_MeV: float  #: energy at the surface, MeV


class Species(NamedTuple):
    """Every outgoing species (a recoiling isotope, or the beam scattered by one isotope)."""

    particle: np.ndarray  #: (n_sp,) int64, index of the detected particle in :class:`Particles`
    kind: np.ndarray  #: (n_sp,) int64, 0 recoil, +1/-1 scattered beam (root of the kinematics)
    Z2: np.ndarray  #: (n_sp,) int64, target charge number
    M2: np.ndarray  #: (n_sp,) target mass, u
    density: np.ndarray  #: (n_sp, n_b) atomic fraction of the target isotope in each block
    exit_table: np.ndarray  #: (n_sp,) int64, index of the species' exit tables (one per particle)
    eff_E: np.ndarray  #: (n_sp, n_pts) efficiency curve: energy after the foil, MeV
    eff_v: np.ndarray  #: (n_sp, n_pts) efficiency values
    eff_n: np.ndarray  #: (n_sp,) int64, points of the curve (0: efficiency 1)
    K: np.ndarray  #: (n_sp,) kinematic factor (energy of the species / beam energy; <= 0: none)
    dK_dphi: np.ndarray  #: (n_sp,) its derivative with the recoil / scattering angle, per rad
    xs: np.ndarray  #: (n_sp, 3) cross-section coefficients c, w, q (:func:`cross_section.cross_section_at`)
    #: (n_sp, n_pts) int_0^x density dx at the points of Stack.prof_x (blocks of varying composition)
    cum: np.ndarray = np.zeros((0, 0))


class Geometry(NamedTuple):
    """Scattering geometry and its angular spread."""

    cos_in: float  #: cosine of the incidence angle (from the normal)
    cos_out: float  #: cosine of the exit angle (from the normal)
    phi: float  #: recoil / scattering angle, rad
    sig_ang_in: float  #: Gaussian sigma of the incidence direction, rad
    sig_ang_out: float  #: Gaussian sigma of the detection direction, rad


class Detector(NamedTuple):
    """TOF-E telescope: foils, flight length, timing, and the yield per unit cross section."""

    foil_fracS: np.ndarray  #: (n_el,) T1 foil composition (before the flight)
    foil_fracW: np.ndarray  #: (n_el,)
    foil_path: float  #: T1 foil areal density, 1e15 at/cm2
    efoil_fracS: np.ndarray  #: (n_el,) foils between the flight and the energy detector
    efoil_fracW: np.ndarray  #: (n_el,)
    efoil_path: float  #: their areal density, 1e15 at/cm2
    flight_length_m: float  #: flight length T1 -> T2, m
    sig_timing: float  #: timing resolution sigma, ns
    yield_factor: float  #: Q Omega[sr] 1e-27 (mb -> cm2) 1e15 (areal unit) / cos(alpha)


class Options(NamedTuple):
    """Physics switches and the depth-step control of the kernel."""

    relativistic: bool  #: relativistic flight times
    screening: int  #: 0 none, 1 Andersen, 2 L'Ecuyer
    t_stop: float  #: time (ns) beyond which a species needs no more bricks
    max_dt: float  #: largest brick width in time, ns
    sig_frac: float  #: a brick may also be this fraction of its own time sigma wide (0: off)
    max_bricks: int  #: largest number of bricks
    multiple_scattering: bool = False  #: add multiple scattering to the brick sigmas (needs Stack.el_Z)


class Bricks(NamedTuple):
    """The kernel's result: ``n`` bricks per species, arrays (n_sp, >= n)."""

    n: int  #: number of bricks
    ta: np.ndarray  #: flight time of particles made at the brick top, ns (0: no brick)
    tb: np.ndarray  #: ... and at its bottom, ns
    Y: np.ndarray  #: yield, counts
    sig_t: np.ndarray  #: Gaussian time sigma, ns
    x_mid: np.ndarray  #: mid depth, 1e15 at/cm2
    e_det: np.ndarray  #: energy at the energy detector, MeV
    sig_e: np.ndarray  #: its sigma, MeV
    overflow: bool  #: max_bricks reached before the analysed depth ended
