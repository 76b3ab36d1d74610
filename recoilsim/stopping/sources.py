"""Stopping sources chosen by name: SRIM-2013 (shipped), CATIMA (pycatima) or user tables.

An experiment names its source in ``options.stopping``:

* ``"srim2013"`` (default): the shipped SRIM-2013 electronic tables (Ziegler, Ziegler, Biersack,
  NIM B 268 (2010) 1818).
* ``"catima"``: CATIMA (A. Prochazka, https://github.com/hrosiak/catima; ATIMA-based electronic
  stopping, Lindhard-Soerensen at high energy, SRIM-85 fit below 10 MeV/u) through the
  ``pycatima`` package (install the ``catima`` extra). CATIMA's ``dedx`` is total stopping
  (electronic + ZBL nuclear); the electronic row kept here is CATIMA's total minus recoilsim's
  own ZBL nuclear stopping for the same ion mass, so that electronic + ZBL equals CATIMA's
  ``dedx``. Rows are computed once per (ion Z, target Z) on the shipped energy grid and cached
  on disk (see :func:`cache_dir`).
* a path: a file or a folder of user tables (SRIM "SR Module" output, JIBAL GSTO), each
  overriding its (ion Z, target Z) pair over SRIM-2013; pairs not in the files keep SRIM-2013.

Units: stopping in eV/(1e15 atoms/cm2), energies per mass in MeV/u.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import RecoilsimError
from ..kernels.stopping import zbl_nuclear_row
from ..model.constants import AVOGADRO_PER_MOL
from ..model.elements import element, natural_isotopes
from .tables import StoppingSource, grid

__all__ = ["KEYWORDS", "CatimaSource", "source_label", "cache_dir"]

#: names of the built-in sources (anything else in ``options.stopping`` is a path)
KEYWORDS = ("srim2013", "catima")
SRIM_LABEL = "SRIM-2013 electronic (Ziegler et al., NIM B 268 (2010) 1818) + ZBL nuclear, Bragg's rule"


def cache_dir() -> Path:
    """Folder for computed stopping tables: ``$RECOILSIM_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/recoilsim``, else ``~/.cache/recoilsim``."""
    env = os.environ.get("RECOILSIM_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "recoilsim"


def _pycatima():
    try:
        import pycatima
    except ImportError:
        raise RecoilsimError("options.stopping", "catima",
                             "the pycatima package installed (pip install 'recoilsim[catima]')") from None
    return pycatima


def _catima_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pycatima")
    except PackageNotFoundError:  # pragma: no cover - imported but not installed as a distribution
        return "unknown"


def _ion_mass_u(z1: int) -> float:
    """Mass (u) of the most abundant natural isotope of element z1 (the CATIMA projectile)."""
    return float(max(natural_isotopes(z1), key=lambda i: i.abundance).mass_u)


class CatimaSource(StoppingSource):
    """CATIMA electronic stopping on the shipped grid, user tables still overriding pairs.

    Parameters
    ----------
    cache : bool
        Keep computed rows on disk in ``cache_dir()/catima-<pycatima version>``.
    """

    def __init__(self, tables=(), cache: bool = True):
        super().__init__(tables, name="CATIMA")
        self._pc = _pycatima()
        self.version = _catima_version()
        self._cache = cache
        self._rows: dict[tuple[int, int], np.ndarray] = {}

    def _path(self, z1: int, z2: int) -> Path:
        lnE0, dlnE, n = grid()
        return cache_dir() / f"catima-{self.version}" / f"se_{z1}_{z2}_{lnE0:.6f}_{dlnE:.8f}_{n}.npy"

    def total_stopping(self, z1: int, mass_u: float, z2: int, e_per_u: np.ndarray) -> np.ndarray:
        """CATIMA's own ``dedx`` (electronic + nuclear) of ion (z1, mass_u) in element z2,
        converted from MeV/(g/cm2) to eV/(1e15 atoms/cm2) with CATIMA's molar mass."""
        pc = self._pc
        mat = pc.Material([[0, int(z2), 1]])
        fac = mat.molar_mass() / AVOGADRO_PER_MOL * 1e21  # MeV cm2/g -> eV per 1e15 atoms/cm2
        p = pc.Projectile(float(mass_u), int(z1))
        out = np.empty(len(e_per_u))
        for k, t in enumerate(e_per_u):
            p.T(float(t))
            out[k] = pc.dedx(p, mat) * fac
        return out

    def _compute(self, z1: int, z2: int) -> np.ndarray:
        lnE0, dlnE, n = grid()
        m1 = _ion_mass_u(z1)
        tot = self.total_stopping(z1, m1, z2, np.exp(lnE0 + dlnE * np.arange(n)))
        se = tot - zbl_nuclear_row(lnE0, dlnE, n, z1, m1, z2, float(element(z2).mass))
        if not np.all(np.isfinite(tot)):
            raise RecoilsimError("options.stopping", "catima", f"finite CATIMA stopping for Z1={z1} in Z2={z2}")
        return np.maximum(se, 1e-6 * tot)  # the ZBL difference may exceed S_e far below 1 keV/u

    def electronic_row(self, z1: int, z2: int) -> np.ndarray:
        """CATIMA electronic stopping of ion z1 in element z2 on the grid (user tables first)."""
        if (z1, z2) in self._over:
            return super().electronic_row(z1, z2)
        row = self._rows.get((z1, z2))
        if row is None:
            row = self._load_or_compute(z1, z2)
            self._rows[(z1, z2)] = row
        return row

    def _load_or_compute(self, z1: int, z2: int) -> np.ndarray:
        path = self._path(z1, z2)
        n = grid()[2]
        if self._cache and path.is_file():
            try:
                row = np.load(path)
                if row.shape == (n,) and np.all(np.isfinite(row)) and np.all(row > 0):
                    return row
            except (OSError, ValueError):
                pass  # a damaged cache file is recomputed and replaced
        row = self._compute(z1, z2)
        if self._cache:
            _save_quietly(path, row)
        return row

    def __repr__(self):
        return f"CatimaSource(pycatima {self.version}, overrides={self.pairs})"


def _save_quietly(path: Path, row: np.ndarray) -> None:
    """Write a cache file atomically (temp file + rename); an unwritable cache is skipped."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, row)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        pass


def source_label(source: StoppingSource | None) -> str:
    """Text recorded with every result: which electronic stopping was used."""
    if source is None:
        return SRIM_LABEL
    over = ""
    if source.pairs:
        over = f"; user tables for (Z1, Z2) = {', '.join(f'({a}, {b})' for a, b in source.pairs)}"
    if isinstance(source, CatimaSource):
        return (f"CATIMA electronic (pycatima {source.version}; total dedx minus ZBL nuclear) + ZBL nuclear, "
                f"Bragg's rule{over}")
    return f"{SRIM_LABEL}{over} ({source.name})"
