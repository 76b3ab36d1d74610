"""The user's stopping choice (``options.stopping``) as a stopping source: ``"srim2013"`` (the
shipped tables), ``"catima"`` (:class:`recoilsim.stopping.sources.CatimaSource`), or a file or
folder of stopping tables (SRIM output, JIBAL GSTO) read by :mod:`recoilsim.io.stopping_files`.

Here in ``io`` because a path means reading files; the stopping package itself reads none.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

from ..errors import RecoilsimError
from ..stopping.sources import KEYWORDS, CatimaSource
from ..stopping.tables import StoppingSource, StoppingTable
from .stopping_files import StragglingTable, read_gsto, read_srim_table, read_stg


def _read_table_file(path: Path) -> list[StoppingTable]:
    with open(path, "r", encoding="latin-1") as fh:
        head = fh.read(4096)
    if "==END-OF-HEADER==" in head or any(ln.strip().lower().startswith(("z1", "x-unit", "sto-unit"))
                                          for ln in head.splitlines()[:20]):
        return read_gsto(path)
    return [read_srim_table(path)]


def user_tables(path: os.PathLike | str) -> StoppingSource:
    """A :class:`StoppingSource` from a file or a folder of SRIM output / JIBAL GSTO files."""
    p = Path(path).expanduser()
    if not p.exists():
        raise RecoilsimError("options.stopping", str(path),
                             f"one of {', '.join(KEYWORDS)}, or an existing file or folder of stopping tables "
                             "(SRIM SR Module output, JIBAL GSTO)")
    files = sorted(q for q in p.iterdir() if q.is_file() and not q.name.startswith(".")) if p.is_dir() else [p]
    if not files:
        raise RecoilsimError("options.stopping", str(path), "a folder holding at least one stopping-table file")
    src = StoppingSource(name=f"user tables {p}")
    for f in files:
        src.extend(_read_table_file(f))
    return src


@functools.lru_cache(maxsize=16)
def _cached_source(spec: str, stamp: float) -> StoppingSource | None:
    if spec == "srim2013":
        return None
    if spec == "catima":
        return CatimaSource()
    return user_tables(spec)


def stopping_source(spec: str | os.PathLike | StoppingSource | None) -> StoppingSource | None:
    """The source named by ``options.stopping``: None for SRIM-2013 (the shipped tables), a
    :class:`CatimaSource` for ``"catima"``, user tables for a path. Sources are built once per
    name (and file modification time) per process."""
    if spec is None or isinstance(spec, StoppingSource):
        return spec
    s = os.fspath(spec)
    key = s.strip().lower()
    if key in KEYWORDS:
        return _cached_source(key, 0.0)
    p = Path(s).expanduser()
    stamp = p.stat().st_mtime if p.exists() else math.nan
    return _cached_source(str(p.resolve()) if p.exists() else s, stamp)


@functools.lru_cache(maxsize=8)
def _cached_stg(path: str, stamp: float) -> tuple[StragglingTable, ...]:
    return tuple(read_stg(path))


def straggling_tables(path: str | os.PathLike) -> tuple[StragglingTable, ...]:
    """The rows of the JIBAL ``.stg`` file named by ``options.straggling_table`` (``''``: none),
    read once per path and modification time per process."""
    s = os.fspath(path)
    if not s.strip():
        return ()
    p = Path(s).expanduser()
    if not p.is_file():
        raise RecoilsimError("options.straggling_table", s, "an existing JIBAL .stg straggling file, or '' for none")
    return _cached_stg(str(p.resolve()), p.stat().st_mtime)


def straggling_label(model: str, path: str | os.PathLike) -> str:
    """Text recorded with every result: the straggling model and the .stg rows replacing it."""
    tabs = straggling_tables(path)
    if not tabs:
        return model
    pairs = ", ".join(f"({'any' if t.z1 is None else t.z1}, {'any' if t.z2 is None else t.z2})" for t in tabs)
    return f"{model}; JIBAL .stg rows x Bohr's variance for (Z1, Z2) = {pairs} ({os.fspath(path)})"
