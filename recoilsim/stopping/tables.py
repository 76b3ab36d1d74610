"""Stopping powers, energy loss and energy straggling (Python layer).

Sources
-------
* Electronic stopping: SRIM-2013 (J.F. Ziegler, M.D. Ziegler, J.P. Biersack, NIM B 268 (2010)
  1818), tabulated for every ion Z1 = 1..92 in every element Z2 = 1..92 by
  ``stopping_data/generate.py`` from ``lunasrim`` 1.0.0 (see ``stopping_data/PROVENANCE.md``).
  Per-element values are SRIM's solid-phase values (O, N, H, ... carry SRIM's low-velocity
  phase factor, as inside a solid compound).
* Nuclear stopping: ZBL universal (Ziegler, Biersack, Littmark 1985), closed form.
* Compounds: Bragg's rule over atomic fractions, optionally with per-element stopping factors
  (SIMNRA's "correction factor" per layer and element).
* User tables (override per (ion Z, target Z) pair), combined in a :class:`StoppingSource`;
  the files they come from (SRIM "SR Module" output, JIBAL GSTO, plain two-column tables) are
  read by :mod:`recoilsim.io.stopping_files`.
* Straggling: Bohr, Chu, Yang et al. (NIM B 61 (1991) 149) with effective charge. Default
  ``"yang"``: Yang with the SRIM effective charge for Z1 > 2 (plain Bohr overestimates the
  straggling of a 9 MeV Cu beam several times, since the ion is far from fully stripped),
  and Chu for Z1 <= 2 (light ions are nearly bare at MeV energies; Chu's correction is
  then the accepted refinement of Bohr).

Units: MeV, u, 1e15 atoms/cm2, eV/(1e15 atoms/cm2), MeV^2.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from typing import Iterable, Mapping, NamedTuple, Sequence

import numpy as np

from .. import stopping_data as _stopping_data
from ..model.composition import composition as _composition
from ..model.constants import AVOGADRO_PER_MOL
from ..model.elements import element as _element
from ..model.elements import isotope as _isotope
from ..errors import RecoilsimError, require_finite, require_positive, require_range
from ..kernels.stopping import compound_stopping, zbl_nuclear_row
from ..kernels.straggling import bohr_variance_per_1e15, straggling_row
from ..kernels.transport import energy_variance_after

__all__ = [
    "ParticleTables", "particle_tables", "straggling_ratio_table", "StoppingTable", "StoppingSource", "ion_z_mass", "stopping",
    "energy_loss", "EnergyLoss", "atom_density",
    "nm_to_1e15", "e15_to_nm", "to_keV_per_nm", "from_keV_per_nm", "grid", "STRAGGLING_MODELS",
]

STRAGGLING_MODELS = ("bohr", "chu", "yang", "none")
_MODEL_CODE = {"none": 0, "bohr": 1, "chu": 2, "yang": 3}
_DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(_stopping_data.__file__)), "srim2013_electronic.npz")
AVOGADRO = AVOGADRO_PER_MOL


# --------------------------------------------------------------------------- shipped tables
@functools.lru_cache(maxsize=1)
def _encoded():
    """(lnE0, dlnE, qscale, d2lnS_q (92, 92, n) int32) from the shipped npz, read once; each
    ion's rows are decoded when first used (:func:`_ion_rows`)."""
    try:
        with np.load(_DATA_FILE) as d:
            return float(d["lnE0"]), float(d["dlnE"]), float(d["qscale"]), d["d2lnS_q"]
    except (OSError, KeyError) as exc:  # pragma: no cover - broken install
        raise RecoilsimError("stopping_data", _DATA_FILE,
                             f"the shipped stopping table could not be read ({exc}); reinstall recoilsim") from None


@functools.lru_cache(maxsize=None)
def _ion_rows(z1: int) -> np.ndarray:
    """S_e (92, n) of ion z1 in every element, decoded (stopping_data/PROVENANCE.md, Storage)."""
    _, _, qscale, d2 = _encoded()
    return np.exp(np.cumsum(np.cumsum(d2[z1 - 1].astype(np.int64), axis=-1), axis=-1) / qscale)


def _shipped():
    """(lnE0, dlnE, S_e (92, 92, n) float64): the whole shipped table, decoded."""
    lnE0, dlnE, _, d2 = _encoded()
    return lnE0, dlnE, np.stack([_ion_rows(z1) for z1 in range(1, d2.shape[0] + 1)])


def grid():
    """(lnE0, dlnE, n): the stopping grid, ln of the first node energy per mass in MeV/u."""
    lnE0, dlnE, _, d2 = _encoded()
    return lnE0, dlnE, d2.shape[-1]


def _e_max_per_u() -> float:
    lnE0, dlnE, n = grid()
    return math.exp(lnE0 + (n - 1) * dlnE)


# --------------------------------------------------------------------------- user tables
@dataclass(frozen=True)
class StoppingTable:
    """Electronic stopping of ion Z1 in element Z2 from a user source.

    Attributes: ``z1``, ``z2``, ``e_per_u`` (MeV/u, increasing), ``S`` (eV/(1e15 atoms/cm2)),
    ``source`` (text: file name and format).
    """

    z1: int
    z2: int
    e_per_u: np.ndarray
    S: np.ndarray
    source: str = ""

    def __post_init__(self):
        e = np.asarray(self.e_per_u, dtype=float)
        s = np.asarray(self.S, dtype=float)
        if e.ndim != 1 or e.shape != s.shape or e.size < 2:
            raise RecoilsimError("stopping table", self.source or "table",
                                 "at least two (energy, stopping) points of equal count")
        if not (np.all(np.isfinite(e)) and np.all(np.isfinite(s)) and np.all(e > 0) and np.all(s > 0)):
            raise RecoilsimError("stopping table", self.source or "table",
                                 "finite energies and stopping values, all > 0")
        order = np.argsort(e)
        e, s = e[order], s[order]
        if np.any(np.diff(e) <= 0):
            raise RecoilsimError("stopping table", self.source or "table", "distinct energies")
        for z, name in ((self.z1, "ion Z"), (self.z2, "target Z")):
            if not (isinstance(z, (int, np.integer)) and 1 <= int(z) <= 92):
                raise RecoilsimError(name, z, "an atomic number 1-92")
        object.__setattr__(self, "z1", int(self.z1))
        object.__setattr__(self, "z2", int(self.z2))
        object.__setattr__(self, "e_per_u", e)
        object.__setattr__(self, "S", s)

    def on_grid(self, lnE0: float, dlnE: float, n: int, base_row: np.ndarray | None) -> np.ndarray:
        """Resample onto the grid: log-log inside the table; outside it the shipped SRIM row
        scaled to join the user table continuously at its end (or, without a base row,
        S ~ sqrt(E) below and constant log-log slope above)."""
        lnx = lnE0 + dlnE * np.arange(n)
        le, ls = np.log(self.e_per_u), np.log(self.S)
        out = np.interp(lnx, le, ls)
        lo, hi = lnx < le[0], lnx > le[-1]
        if base_row is not None:
            lb = np.log(base_row)
            lb_lo = np.interp(le[0], lnx, lb)
            lb_hi = np.interp(le[-1], lnx, lb)
            out[lo] = lb[lo] + (ls[0] - lb_lo)
            out[hi] = lb[hi] + (ls[-1] - lb_hi)
        else:
            out[lo] = ls[0] + 0.5 * (lnx[lo] - le[0])
            slope = (ls[-1] - ls[-2]) / (le[-1] - le[-2])
            out[hi] = ls[-1] + slope * (lnx[hi] - le[-1])
        return np.exp(out)


class StoppingSource:
    """The shipped SRIM-2013 tables with user tables overriding specific (ion Z, target Z) pairs.

    >>> src = StoppingSource([read_srim_table("Li in Cu.txt")])  # recoilsim.io.stopping_files   # doctest: +SKIP
    >>> tables = particle_tables([(3, 7.016)], [29, 8], source=src)   # doctest: +SKIP
    """

    def __init__(self, tables: Iterable[StoppingTable] = (), name: str = "user"):
        self.name = name
        self._over: dict[tuple[int, int], StoppingTable] = {}
        for t in tables:
            self.add(t)

    def add(self, table: StoppingTable) -> "StoppingSource":
        """Add (or replace) the override for ``(table.z1, table.z2)``."""
        if not isinstance(table, StoppingTable):
            raise RecoilsimError("table", table, "a StoppingTable (see recoilsim.io.stopping_files)")
        self._over[(table.z1, table.z2)] = table
        return self

    def extend(self, tables: Iterable[StoppingTable]) -> "StoppingSource":
        for t in tables:
            self.add(t)
        return self

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """(ion Z, target Z) pairs overridden by user tables."""
        return sorted(self._over)

    def electronic_row(self, z1: int, z2: int) -> np.ndarray:
        """Electronic stopping of ion z1 in element z2 on the shipped grid (eV/(1e15 at/cm2))."""
        base = _ion_rows(z1)[z2 - 1]
        t = self._over.get((z1, z2))
        if t is None:
            return base
        return t.on_grid(*grid(), base)

    def __repr__(self):
        return f"StoppingSource({self.name!r}, overrides={self.pairs})"


def _electronic_row(source, z1, z2):
    if source is None:
        return _ion_rows(z1)[z2 - 1]
    if not isinstance(source, StoppingSource):
        raise RecoilsimError("source", source, "None (shipped SRIM-2013 tables) or a StoppingSource")
    return source.electronic_row(z1, z2)


# --------------------------------------------------------------------------- contract
@dataclass(frozen=True)
class ParticleTables:
    """Stopping and straggling rows for a set of particles in a set of elements.

    lnE0, dlnE: grid, node k at E/M = exp(lnE0 + k dlnE) MeV/u. S: (n_particles, n_elements,
    n_grid) electronic + ZBL nuclear stopping, eV/(1e15 atoms/cm2). W: same shape, straggling
    variance per areal density, MeV^2 per 1e15 atoms/cm2. e_max_per_u: MeV/u upper end.
    """

    lnE0: float
    dlnE: float
    S: np.ndarray
    W: np.ndarray
    e_max_per_u: float
    straggling: str = "yang"
    particles: tuple = field(default=())
    elements: tuple = field(default=())


def _check_particle(p, i):
    try:
        z, m = p
    except (TypeError, ValueError):
        raise RecoilsimError(f"particles[{i}]", p, "a pair (Z, mass in u)") from None
    if isinstance(z, bool) or not isinstance(z, (int, np.integer)) or not 1 <= int(z) <= 92:
        raise RecoilsimError(f"particles[{i}].Z", z, "an atomic number 1-92")
    m = require_positive(f"particles[{i}].mass_u", m)
    return int(z), float(m)


def _check_element_z(z, i):
    if isinstance(z, (int, np.integer)) and not isinstance(z, bool):
        if 1 <= int(z) <= 92:
            return int(z)
        raise RecoilsimError(f"elements[{i}]", z, "an atomic number 1-92")
    return int(_element(z).number)


def straggling_ratio_table(tables, z1: int, z2: int):
    """The table of ``tables`` that applies to ion z1 in element z2: an exact (Z1, Z2) match
    first, then one for any ion (z1 None), then any target (z2 None), then any pair; None if
    none applies. A table is any object with ``z1``, ``z2`` (int or None) and ``ratio(E/u)``,
    e.g. :class:`recoilsim.io.stopping_files.StragglingTable`."""
    for want in ((z1, z2), (None, z2), (z1, None), (None, None)):
        for t in tables:
            if (t.z1, t.z2) == want:
                return t
    return None


def particle_tables(particles: Sequence[tuple[int, float]], elements: Sequence[int],
                    straggling: str = "yang", source: StoppingSource | None = None,
                    straggling_tables: Sequence = ()) -> ParticleTables:
    """Build stopping (S) and straggling (W) rows for every particle in every element.

    particles: sequence of (Z, mass_u); elements: sequence of target Z (or symbols).
    straggling: "bohr", "chu", "yang" (default: Yang with effective charge for Z1 > 2, Chu for
    Z1 <= 2) or "none". source: None for the shipped SRIM-2013 tables, or a
    :class:`StoppingSource` with user tables overriding (ion, target) pairs.

    The effective-charge fraction for Yang is gamma^2 = S_e(ion)/(Z1^2 S_e(H)) at equal velocity
    in the same element, from the same tables (capped at 1).

    straggling_tables: straggling as a multiple of Bohr's variance (JIBAL ``.stg`` rows, see
    :func:`straggling_ratio_table`); for the (Z1, Z2) pairs they cover they replace the model:
    W = ratio(E/u) x Bohr's variance 4 pi e^4 Z1^2 Z2 per atom (N. Bohr, Mat. Fys. Medd. Dan.
    Vid. Selsk. 18 (1948) no. 8; :func:`recoilsim.kernels.straggling.bohr_variance_per_1e15`).
    """
    if straggling not in _MODEL_CODE:
        raise RecoilsimError("straggling", straggling, "one of 'bohr', 'chu', 'yang', 'none'")
    parts = [_check_particle(p, i) for i, p in enumerate(particles)]
    els = [_check_element_z(z, i) for i, z in enumerate(elements)]
    if not parts:
        raise RecoilsimError("particles", particles, "at least one (Z, mass_u) pair")
    if not els:
        raise RecoilsimError("elements", elements, "at least one target element")
    lnE0, dlnE, n = grid()
    S = np.empty((len(parts), len(els), n))
    W = np.empty((len(parts), len(els), n))
    neg = np.full(n, -1.0)
    for p, (z1, m1) in enumerate(parts):
        for j, z2 in enumerate(els):
            se = _electronic_row(source, z1, z2)
            m2 = float(_element(z2).mass)
            S[p, j] = se + zbl_nuclear_row(lnE0, dlnE, n, z1, m1, z2, m2)
            model = _MODEL_CODE[straggling]
            if model == 3 and z1 <= 2:
                model = 2
            g2 = neg
            if model == 3:
                g2 = np.minimum(se / (z1 * z1 * _electronic_row(source, 1, z2)), 1.0)
            ratio = straggling_ratio_table(straggling_tables, z1, z2)
            if ratio is not None:
                W[p, j] = bohr_variance_per_1e15(z1, z2) * ratio.ratio(np.exp(lnE0 + dlnE * np.arange(n)))
            else:
                W[p, j] = straggling_row(model, lnE0, dlnE, n, z1, m1, z2, g2)
    return ParticleTables(lnE0, dlnE, S, W, _e_max_per_u(), straggling, tuple(parts), tuple(els))


# --------------------------------------------------------------------------- user level
def ion_z_mass(ion) -> tuple[int, float]:
    """(Z, mass_u) from '7Li', 'Li' (most abundant isotope), Z, an Isotope, or (Z, mass)."""
    if isinstance(ion, tuple) and len(ion) == 2:
        return _check_particle(ion, 0)
    if hasattr(ion, "Z") and hasattr(ion, "mass_u"):
        return int(ion.Z), float(ion.mass_u)
    try:
        iso = _isotope(ion)
    except RecoilsimError:
        raise RecoilsimError("ion", ion, "an isotope ('7Li', '63Cu'), element ('Cu') or (Z, mass_u)") from None
    return iso.Z, iso.mass_u


def _target(target) -> dict[str, float]:
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        return {_element(int(target)).symbol: 1.0}
    return _composition(target, field="target")


def _frac_vector(comp: Mapping[str, float], factors: Mapping[str, float] | None):
    syms = list(comp)
    zs = [int(_element(s).number) for s in syms]
    f = np.array([comp[s] for s in syms], dtype=float)
    if factors:
        if not isinstance(factors, Mapping):
            raise RecoilsimError("factors", factors, "a mapping element -> stopping factor")
        for k, v in factors.items():
            sym = _element(k).symbol
            if sym not in comp:
                raise RecoilsimError(f"factors[{k}]", v, f"an element of the target ({', '.join(syms)})")
            f[syms.index(sym)] *= require_positive(f"factors[{k}]", v)
    return zs, f


def _check_energy_range(E, mass, field_name="energy_MeV"):
    e = require_finite(field_name, E)
    if e <= 0:
        raise RecoilsimError(field_name, E, "must be > 0 MeV")
    emax = _e_max_per_u() * mass
    if e > emax * (1 + 1e-12):
        raise RecoilsimError(field_name, E, f"at most {emax:.6g} MeV for this ion "
                                            f"({_e_max_per_u():.4g} MeV/u, the end of the stopping tables)")
    return e


def stopping(ion, target, energy_MeV, factors: Mapping[str, float] | None = None,
             source: StoppingSource | None = None, nuclear: bool = True):
    """Stopping of ``ion`` in ``target`` at ``energy_MeV``, eV/(1e15 atoms/cm2), Bragg's rule.

    ion: '7Li', 'Cu' (most abundant isotope), (Z, mass_u) or an Isotope. target: formula
    ('Li2.0PO2.6N0.9'), element ('Cu' or 29) or mapping of atomic fractions. energy_MeV: scalar
    or array. factors: per-element stopping factors, e.g. {'O': 0.95}. nuclear: include ZBL
    nuclear stopping (default True). Returns a float for scalar input, else an array.
    """
    z1, m1 = ion_z_mass(ion)
    comp = _target(target)
    zs, f = _frac_vector(comp, factors)
    t = particle_tables([(z1, m1)], zs, straggling="none", source=source)
    Sp = t.S[0]
    if not nuclear:
        Sp = np.stack([_electronic_row(source, z1, z) for z in zs])
    E = np.asarray(energy_MeV, dtype=float)
    flat = E.reshape(-1)
    out = np.empty_like(flat)
    for i, e in enumerate(flat):
        e = _check_energy_range(e, m1)
        out[i] = compound_stopping(e, m1, Sp, f, t.lnE0, t.dlnE)
    return float(out[0]) if E.ndim == 0 else out.reshape(E.shape)


class EnergyLoss(NamedTuple):
    """Result of :func:`energy_loss`: mean exit energy (MeV; 0.0 if stopped), straggling sigma
    (MeV; 0.0 if stopped), path areal density (1e15 atoms/cm2) and whether the ion stopped."""

    energy_out: float
    sigma: float
    path_1e15: float
    stopped: bool


def energy_loss(ion, target, thickness_1e15, energy_MeV, angle_deg: float = 0.0,
                straggling: str = "yang", factors: Mapping[str, float] | None = None,
                source: StoppingSource | None = None, sigma_in: float = 0.0) -> EnergyLoss:
    """Energy after crossing a layer and the energy-straggling sigma.

    thickness_1e15: layer areal density (1e15 atoms/cm2); angle_deg: angle of the path to the
    layer normal (path = thickness / cos(angle)), in [0, 90). sigma_in: incoming energy spread
    (MeV), propagated by the (S_out/S_in)^2 rule. A particle that stops gives
    EnergyLoss(0.0, 0.0, path, True).
    """
    z1, m1 = ion_z_mass(ion)
    comp = _target(target)
    zs, f = _frac_vector(comp, factors)
    E = _check_energy_range(energy_MeV, m1)
    thick = require_finite("thickness_1e15", thickness_1e15)
    if thick < 0:
        raise RecoilsimError("thickness_1e15", thickness_1e15, "must be >= 0")
    a = require_range("angle_deg", angle_deg, 0.0, 90.0, hi_open=True)
    s_in = require_finite("sigma_in", sigma_in)
    if s_in < 0:
        raise RecoilsimError("sigma_in", sigma_in, "must be >= 0 MeV")
    path = thick / math.cos(math.radians(a))
    t = particle_tables([(z1, m1)], zs, straggling=straggling, source=source)
    e_out, var = energy_variance_after(E, m1, t.S[0], t.W[0], f, t.lnE0, t.dlnE, path, s_in * s_in)
    if e_out <= 0.0:
        return EnergyLoss(0.0, 0.0, path, True)
    return EnergyLoss(float(e_out), math.sqrt(max(var, 0.0)), path, False)


# --------------------------------------------------------------------------- unit helpers
def atom_density(target, density_g_cm3) -> float:
    """Atoms per cm3 of ``target`` (formula/element) at mass density ``density_g_cm3``."""
    rho = require_positive("density_g_cm3", density_g_cm3)
    comp = _target(target)
    mean_mass = sum(float(_element(s).mass) * x for s, x in comp.items())
    return rho * AVOGADRO / mean_mass


def nm_to_1e15(thickness_nm, target, density_g_cm3):
    """Thickness in nm -> areal density in 1e15 atoms/cm2."""
    return np.asarray(thickness_nm, dtype=float) * 1e-7 * atom_density(target, density_g_cm3) / 1e15


def e15_to_nm(areal_1e15, target, density_g_cm3):
    """Areal density in 1e15 atoms/cm2 -> thickness in nm."""
    return np.asarray(areal_1e15, dtype=float) * 1e15 / (atom_density(target, density_g_cm3) * 1e-7)


def to_keV_per_nm(S_eV_1e15, target, density_g_cm3):
    """Stopping eV/(1e15 atoms/cm2) -> keV/nm at the given density."""
    return np.asarray(S_eV_1e15, dtype=float) * atom_density(target, density_g_cm3) * 1e-25


def from_keV_per_nm(S_keV_nm, target, density_g_cm3):
    """Stopping keV/nm -> eV/(1e15 atoms/cm2) at the given density."""
    return np.asarray(S_keV_nm, dtype=float) / (atom_density(target, density_g_cm3) * 1e-25)
