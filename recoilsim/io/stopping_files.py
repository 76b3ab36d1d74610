"""Stopping and straggling table files: SRIM "SR Module" output, JIBAL GSTO stopping files and
``.stg`` straggling tables, plain two-column tables.

GSTO format (JYU-IBA/jibal, ``jibal/gsto.c``: the reader and the writer): ``key=value`` header
lines ending with a line ``==END-OF-HEADER==`` or with an empty line (what JIBAL's own writer
emits, e.g. its ``data/chu.stg``); keys ``type`` (``stop``/electronic or ``stragg``), ``source``,
``z1``/``z1-min``/``z1-max``, ``z2``/``z2-min``/``z2-max`` (``-1``: any Z), ``x-unit`` (m/s,
keV/u, MeV/u, J/kg), ``x-min``, ``x-max``, ``x-points``, ``x-scale`` (linear, log10, arb: then
the x values come first, one per line), ``sto-unit`` (eV/(1e15 atoms/cm2)), ``stragg-unit``
(``bohr``: straggling variance as a multiple of Bohr's), ``format`` (ascii). Then ``x-points``
values per (Z1, Z2), Z2 varying fastest.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ..errors import RecoilsimError, require_positive
from ..model.elements import element as _element
from ..stopping.tables import AVOGADRO, StoppingTable, ion_z_mass
from .files import MiB, read_bytes

__all__ = ["read_srim_table", "read_gsto", "read_stg", "read_plain_table", "StragglingTable"]

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_E_UNITS = {"ev": 1e-6, "kev": 1e-3, "mev": 1.0, "gev": 1e3}
_U_KG = 1.66053906660e-27  # atomic mass unit (CODATA 2018)
_MEV_J = 1.602176634e-13  # MeV in J (exact, SI 2019)
_MAX_BYTES = 256 * MiB
_ANY_Z = -1  # JIBAL_ANY_Z


def _read_text(path) -> tuple[str, list[str]]:
    """(name, lines) of a text file or a file-like object (latin-1: SRIM writes Windows text)."""
    if hasattr(path, "read"):
        name = getattr(path, "name", "stream")
        try:
            text = path.read(_MAX_BYTES + 1)
        except OSError as exc:
            raise RecoilsimError("file", name, f"a readable file ({exc.strerror})") from None
        if len(text) > _MAX_BYTES:
            raise RecoilsimError("file", name, f"at most {_MAX_BYTES // MiB} MiB")
    else:
        p, text = read_bytes(path, "stopping file", max_bytes=_MAX_BYTES)
        name = os.fspath(p)
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return name, text.splitlines()


def read_srim_table(path, target: str | int | None = None) -> StoppingTable:
    """Read an SRIM "Stopping and Range Tables" (SR Module / SRModule.exe) output file.

    Uses the ion line (``Ion = Lithium [3] , Mass = 7.016 amu``), the target composition (one
    element; compound tables cannot override an element pair), the stopping-unit conversion
    table at the bottom (row ``eV/(1E15 atoms/cm2)``), and the electronic stopping column. Ion
    energies (eV/keV/MeV/GeV) are divided by the ion mass of the header. Decimal commas are
    accepted. ``target`` may name the element if the composition block is missing.
    """
    name, lines = _read_text(path)
    z1 = m1 = None
    comp = []
    factor = None
    unit_line = None
    rows = []
    in_comp = False
    for ln in lines:
        s = ln.replace(",", ".") if re.search(r"\d,\d", ln) else ln
        m = re.search(r"Ion\s*=\s*\S+\s*\[\s*(\d+)\s*\]\s*[,.]?\s*Mass\s*=\s*(" + _NUM + r")\s*amu", s)
        if m:
            z1, m1 = int(m.group(1)), float(m.group(2))
            continue
        if re.match(r"\s*----\s+----", s):
            in_comp = True
            continue
        if in_comp:
            m = re.match(r"\s*([A-Z][a-z]?)\s+(\d+)\s+(" + _NUM + r")\s+(" + _NUM + r")\s*$", s)
            if m:
                comp.append((int(m.group(2)), float(m.group(3))))
                continue
            in_comp = False
        if "Stopping Units" in s and "=" in s:
            unit_line = s.split("=", 1)[1].strip()
            continue
        m = re.match(r"\s*(" + _NUM + r")\s+eV\s*/\s*\(1E15 atoms/cm2\)", s, re.I)
        if m:
            factor = float(m.group(1))
            continue
        m = re.match(r"\s*(" + _NUM + r")\s*(eV|keV|MeV|GeV)\s+(" + _NUM + r")\s+(" + _NUM + r")", s)
        if m:
            rows.append((float(m.group(1)) * _E_UNITS[m.group(2).lower()], float(m.group(3))))
    if z1 is None or not m1:
        raise RecoilsimError("SRIM file", name, "an SRIM stopping table with a line 'Ion = ... [Z] , Mass = ... amu'")
    if not rows:
        raise RecoilsimError("SRIM file", name, "an SRIM stopping table with rows '<energy> <unit> <Se> <Sn> ...'")
    if len(comp) > 1 and sum(1 for _, p in comp if p > 0) > 1:
        raise RecoilsimError("SRIM file", name, "a single-element target (compound tables cannot override "
                                                "one (ion, element) pair; give elemental tables)")
    if comp:
        z2 = comp[0][0]
    elif target is not None:
        z2 = int(_element(target).number)
    else:
        raise RecoilsimError("SRIM file", name, "a target composition block or the target argument")
    if factor is None:
        if unit_line and re.sub(r"\s", "", unit_line).lower().startswith("ev/(1e15atoms/cm2)"):
            factor = 1.0
        else:
            raise RecoilsimError("SRIM file", name, "stopping in eV/(1E15 atoms/cm2) or the SRIM unit-conversion "
                                                    "table at the end of the file")
    e = np.array([r[0] for r in rows]) / m1
    S = np.array([r[1] for r in rows]) * factor
    return StoppingTable(z1, z2, e, S, f"{name} (SRIM SR Module output)")


_GSTO_XUNITS = ("m/s", "kev/u", "mev/u", "j/kg")


@dataclass(frozen=True)
class _Gsto:
    """A parsed GSTO file: header, the energy grid (MeV/u) and the values per (Z1, Z2)."""

    name: str
    header: dict
    energy_MeV_u: np.ndarray
    values: dict  # (z1, z2) -> array (z = -1: any)


def _gsto_header(name: str, lines: list[str]) -> tuple[dict, int]:
    hdr: dict[str, str] = {}
    for i, ln in enumerate(lines):
        if ln.startswith("==END-OF-HEADER=="):
            return hdr, i + 1
        if not ln.strip():
            if hdr:  # JIBAL ends the header with an empty line
                return hdr, i + 1
            continue
        if ln.startswith("#"):
            continue
        if "=" not in ln:
            raise RecoilsimError("GSTO file", name, "header lines key=value ending with an empty line or "
                                                    f"'==END-OF-HEADER==' (line {i + 1}: {ln[:60]!r})")
        k, v = ln.split("=", 1)
        hdr[k.strip().lower()] = v.strip()
    raise RecoilsimError("GSTO file", name, "a header ending with an empty line or '==END-OF-HEADER=='")


def _read_gsto_file(path) -> _Gsto:
    name, lines = _read_text(path)
    hdr, start = _gsto_header(name, lines)

    def geti(*keys):
        for k in keys:
            if k in hdr:
                try:
                    return int(hdr[k])
                except ValueError:
                    raise RecoilsimError(f"GSTO {k}", hdr[k], "an integer") from None
        return None

    z1min, z1max = geti("z1-min", "z1"), geti("z1-max", "z1")
    z2min, z2max = geti("z2-min", "z2"), geti("z2-max", "z2")
    npts = geti("x-points")
    if None in (z1min, z1max, z2min, z2max, npts) or npts < 2 or z1max < z1min or z2max < z2min:
        raise RecoilsimError("GSTO file", name, "z1(-min/-max), z2(-min/-max) and x-points >= 2 in the header")
    if max(z1max, z2max) > 120 or min(z1min, z2min) < _ANY_Z or 0 in (z1min, z2min) or npts > 10**6:
        raise RecoilsimError("GSTO file", name, "Z between 1 and 120 (or -1: any) and at most 1e6 x-points")
    if hdr.get("format", "ascii").lower() != "ascii":
        raise RecoilsimError("GSTO format", hdr.get("format"), "ascii (binary GSTO files are not supported)")
    xunit = hdr.get("x-unit", "").lower()
    if xunit not in _GSTO_XUNITS:
        raise RecoilsimError("GSTO x-unit", hdr.get("x-unit"), "one of m/s, keV/u, MeV/u, J/kg")
    xscale = hdr.get("x-scale", "").lower()
    vals = []
    for j, ln in enumerate(lines[start:], start=start + 1):
        s = ln.strip()
        if not s or s.startswith("#"):
            continue
        try:
            vals.append(float(s.split()[0]))
        except ValueError:
            raise RecoilsimError("GSTO file", name, f"one number per data line (line {j}: {ln[:60]!r})") from None
    vals = np.array(vals)
    if not np.all(np.isfinite(vals)):
        raise RecoilsimError("GSTO file", name, "finite numbers (no NaN/inf)")
    if xscale == "arb":
        x = vals[:npts]
        vals = vals[npts:]
    elif xscale in ("log10", "linear"):
        try:
            xmin, xmax = float(hdr["x-min"]), float(hdr["x-max"])
        except (KeyError, ValueError):
            raise RecoilsimError("GSTO file", name, "numeric x-min and x-max in the header") from None
        if xscale == "log10":
            if not (xmin > 0 and xmax > xmin):
                raise RecoilsimError("GSTO x-min/x-max", (xmin, xmax), "0 < x-min < x-max for x-scale=log10")
            x = xmin * (xmax / xmin) ** (np.arange(npts) / (npts - 1))
        else:
            x = xmin + (xmax - xmin) * np.arange(npts) / (npts - 1)
    else:
        raise RecoilsimError("GSTO x-scale", hdr.get("x-scale"), "one of log10, linear, arb")
    z1s = [_ANY_Z] if z1min == _ANY_Z else list(range(z1min, z1max + 1))
    z2s = [_ANY_Z] if z2min == _ANY_Z else list(range(z2min, z2max + 1))
    ncomb = len(z1s) * len(z2s)
    if vals.size != ncomb * npts:
        raise RecoilsimError("GSTO file", name, f"{ncomb * npts} values for {ncomb} pairs x {npts} "
                                                f"points (found {vals.size})")
    if xunit == "m/s":
        e = 0.5 * x * x * _U_KG / _MEV_J
    elif xunit == "j/kg":
        e = x * _U_KG / _MEV_J
    elif xunit == "kev/u":
        e = x * 1e-3
    else:
        e = x
    data = vals.reshape(len(z1s), len(z2s), npts)
    values = {(a, b): data[i, k] for i, a in enumerate(z1s) for k, b in enumerate(z2s)}
    return _Gsto(name, hdr, e, values)


def _wanted(pairs):
    return None if pairs is None else {(int(a), int(b)) for a, b in pairs}


def read_gsto(path, pairs: Iterable[tuple[int, int]] | None = None) -> list[StoppingTable]:
    """Read a JIBAL GSTO electronic stopping file (the format JaBS, Potku and MCERD read).

    The header ends with ``==END-OF-HEADER==`` or with an empty line (JIBAL's own files); see
    the module docstring for the keys. ``sto-unit`` must be eV/(1e15 atoms/cm2) and ``type``
    electronic stopping (nuclear stopping is added by recoilsim: ZBL). Returns one
    StoppingTable per (Z1, Z2) pair (only ``pairs`` if given).
    """
    g = _read_gsto_file(path)
    typ = g.header.get("type", "electronic").lower()
    if typ != "electronic":
        raise RecoilsimError("GSTO type", typ, "electronic stopping (.stg straggling files: read_stg; nuclear "
                                               "stopping is added by recoilsim: ZBL)")
    sto = re.sub(r"\s", "", g.header.get("sto-unit", "eV/(1e15 atoms/cm2)")).lower()
    if sto != "ev/(1e15atoms/cm2)":
        raise RecoilsimError("GSTO sto-unit", g.header.get("sto-unit"), "eV/(1e15 atoms/cm2)")
    if _ANY_Z in {z for pair in g.values for z in pair}:
        raise RecoilsimError("GSTO z1/z2", -1, "explicit Z ranges in a stopping file")
    want = _wanted(pairs)
    src = g.header.get("source", "")
    return [StoppingTable(a, b, g.energy_MeV_u, v, f"{g.name} (GSTO{', source=' + src if src else ''})")
            for (a, b), v in g.values.items() if want is None or (a, b) in want]


@dataclass(frozen=True)
class StragglingTable:
    """Energy-loss straggling of ion ``z1`` in element ``z2`` as a multiple of Bohr's
    straggling variance, tabulated against energy (JIBAL ``.stg``, ``stragg-unit=bohr``).

    Attributes
    ----------
    z1, z2 : int or None
        Ion and target atomic numbers; None: the table holds for any Z (JIBAL's ``-1``; e.g.
        Chu's correction depends on Z2 and E/u only).
    energy_MeV_u : numpy.ndarray
        Ion energy per nucleon (MeV/u), increasing.
    bohr_ratio : numpy.ndarray
        Straggling variance / Bohr straggling variance at those energies.
    source : str
    """

    z1: int | None
    z2: int | None
    energy_MeV_u: np.ndarray
    bohr_ratio: np.ndarray
    source: str

    def ratio(self, energy_MeV_u) -> np.ndarray:
        """Ratio to Bohr at the given energies (MeV/u): linear interpolation in energy, as JIBAL
        does, held constant outside the table."""
        return np.interp(np.asarray(energy_MeV_u, dtype=float), self.energy_MeV_u, self.bohr_ratio)


def read_stg(path, pairs: Iterable[tuple[int, int]] | None = None) -> list[StragglingTable]:
    """Read a JIBAL ``.stg`` straggling file (GSTO format with ``type=stragg``,
    ``stragg-unit=bohr``), e.g. JIBAL's ``data/chu.stg`` (Chu's correction to Bohr straggling).

    Returns one :class:`StragglingTable` per (Z1, Z2) of the file (Z = -1 in the file: None,
    any); ``pairs`` keeps the tables that apply to the given (Z1, Z2) pairs.
    """
    g = _read_gsto_file(path)
    typ = g.header.get("type", "").lower()
    if typ != "stragg":
        raise RecoilsimError("GSTO type", g.header.get("type"), "stragg in a straggling (.stg) file")
    unit = g.header.get("stragg-unit", "").lower()
    if unit != "bohr":
        raise RecoilsimError("GSTO stragg-unit", g.header.get("stragg-unit"), "bohr (variance / Bohr's variance)")
    if np.any(np.diff(g.energy_MeV_u) <= 0):
        raise RecoilsimError("GSTO x values", g.name, "strictly increasing energies")
    want = _wanted(pairs)
    src = g.header.get("source", "")
    out = []
    for (a, b), v in g.values.items():
        if np.any(v < 0):
            raise RecoilsimError("GSTO straggling", g.name, "ratios to Bohr >= 0")
        if want is not None and not any(a in (_ANY_Z, w1) and b in (_ANY_Z, w2) for w1, w2 in want):
            continue
        out.append(StragglingTable(None if a == _ANY_Z else a, None if b == _ANY_Z else b, g.energy_MeV_u,
                                   np.asarray(v, dtype=float), f"{g.name} (GSTO stragg{', source=' + src if src else ''})"))
    return out


_PLAIN_E = {"mev": (1.0, False), "kev": (1e-3, False), "ev": (1e-6, False),
            "mev/u": (1.0, True), "kev/u": (1e-3, True)}


def read_plain_table(path, ion, target, energy_unit: str = "MeV", units: str = "eV/(1e15 atoms/cm2)",
                     density_g_cm3: float | None = None) -> StoppingTable:
    """Read a plain two-column table: energy, electronic stopping (whitespace or comma separated,
    '#' comments).

    ion: isotope/element/(Z, mass) (the mass converts energies to MeV/u); target: one element.
    energy_unit: 'MeV', 'keV', 'eV', 'MeV/u', 'keV/u'. units: 'eV/(1e15 atoms/cm2)',
    'keV/nm', 'eV/nm', 'eV/A', 'keV/um', 'MeV/(mg/cm2)', 'keV/(ug/cm2)' (the length units need
    ``density_g_cm3``).
    """
    name, lines = _read_text(path)
    z1, m1 = ion_z_mass(ion)
    el = _element(target)
    eu = re.sub(r"\s", "", str(energy_unit)).lower()
    if eu not in _PLAIN_E:
        raise RecoilsimError("energy_unit", energy_unit, "one of MeV, keV, eV, MeV/u, keV/u")
    su = re.sub(r"[\s()]", "", str(units)).lower().replace("Å", "a")
    m2 = float(el.mass)
    if su in ("ev/1e15atoms/cm2", "ev/1e15at/cm2", "ev/1e15/cm2"):
        fac = 1.0
    elif su in ("mev/mg/cm2", "kev/ug/cm2"):
        # MeV/(mg/cm2) -> eV/(1e15 at/cm2): S * 1e6 eV/MeV * (mass of 1e15 atoms in mg)
        fac = 1e6 * (1e15 * m2 / AVOGADRO * 1e3)
        if su == "kev/ug/cm2":
            fac = 1e3 * (1e15 * m2 / AVOGADRO * 1e6)
    elif su in ("kev/nm", "ev/nm", "ev/a", "kev/um"):
        if density_g_cm3 is None:
            raise RecoilsimError("density_g_cm3", density_g_cm3, f"a density (g/cm3) to convert {units}")
        n = require_positive("density_g_cm3", density_g_cm3) * AVOGADRO / m2  # atoms/cm3
        ev_per_cm = {"kev/nm": 1e3 * 1e7, "ev/nm": 1e7, "ev/a": 1e8, "kev/um": 1e3 * 1e4}[su]
        fac = ev_per_cm / n * 1e15
    else:
        raise RecoilsimError("units", units, "one of eV/(1e15 atoms/cm2), keV/nm, eV/nm, eV/A, keV/um, "
                                             "MeV/(mg/cm2), keV/(ug/cm2)")
    rows = []
    for j, ln in enumerate(lines, start=1):
        s = ln.split("#", 1)[0].strip()
        if not s:
            continue
        parts = re.split(r"[\s,;]+", s)
        try:
            rows.append((float(parts[0]), float(parts[1])))
        except (ValueError, IndexError):
            raise RecoilsimError("plain table", name, f"two numbers per line: energy, stopping (line {j}: {ln!r})") from None
    if len(rows) < 2:
        raise RecoilsimError("plain table", name, "at least two rows energy, stopping")
    scale, per_u = _PLAIN_E[eu]
    e = np.array([r[0] for r in rows]) * scale
    if not per_u:
        e = e / m1
    S = np.array([r[1] for r in rows]) * fac
    return StoppingTable(z1, int(el.number), e, S, f"{name} (plain table, {energy_unit}, {units})")
