"""Writing experiment files: an :class:`~recoilsim.model.experiment.Experiment` (or an
:class:`~recoilsim.io.experiment_file.ExperimentFile`) as TOML that
:func:`~recoilsim.io.experiment_file.load_file` reads back, written atomically and never over the
file it was loaded from."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

from ..errors import RecoilsimError
from ..model.experiment import Experiment
from .experiment_dict import experiment_to_dict
from .experiment_file import ExperimentFile

__all__ = ["dump_experiment", "dump_file", "dumps_toml"]

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k) -> str:
    k = str(k)
    return k if _BARE.match(k) else _str(k)


def _str(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _val(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        r = repr(v)
        return r if any(c in r for c in ".en") else r + ".0"
    if isinstance(v, str):
        return _str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_val(x) for x in v if x is not None) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_key(k)} = {_val(x)}" for k, x in v.items() if x is not None) + "}"
    try:  # numpy scalars
        import numpy as np
        if isinstance(v, np.generic):
            return _val(v.item())
        if isinstance(v, np.ndarray):
            return _val(v.tolist())
    except ImportError:  # pragma: no cover
        pass
    raise RecoilsimError("TOML value", v, "a string, number, bool, list or table")


def _is_tables(v) -> bool:
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(x, Mapping) for x in v)


def _emit(d: Mapping, path: list[str], lines: list[str]) -> None:
    """Scalars and inline tables first, then arrays of tables under this table."""
    for k, v in d.items():
        if v is None or _is_tables(v):
            continue
        lines.append(f"{_key(k)} = {_val(v)}")
    for k, v in d.items():
        if v is not None and _is_tables(v):
            for item in v:
                lines.append("")
                lines.append("[[" + ".".join(_key(x) for x in path + [k]) + "]]")
                _emit(item, path + [k], lines)


def dumps_toml(d: Mapping[str, Any]) -> str:
    """TOML text for a dict: top-level tables as ``[section]``, arrays of tables as ``[[...]]``,
    deeper tables inline. ``None`` values are left out (TOML has no null)."""
    lines: list[str] = []
    for k, v in d.items():
        if v is None or isinstance(v, Mapping) or _is_tables(v):
            continue
        lines.append(f"{_key(k)} = {_val(v)}")
    for k, v in d.items():
        if isinstance(v, Mapping):
            lines.append("")
            lines.append(f"[{_key(k)}]")
            _emit(v, [str(k)], lines)
        elif _is_tables(v):
            for item in v:
                lines.append("")
                lines.append(f"[[{_key(k)}]]")
                _emit(item, [str(k)], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _write(text: str, path: os.PathLike | str, inputs, overwrite: bool) -> Path:
    from .atomic import atomic_write, refuse_overwrite_inputs

    out = Path(path)
    refuse_overwrite_inputs(out, [i for i in inputs if i])
    if out.exists() and not overwrite:
        raise RecoilsimError("output path", str(out), "a path that does not exist yet (or overwrite=True)")
    with atomic_write(out, "w") as f:
        f.write(text)
    return out


def dump_experiment(experiment: Experiment, path: os.PathLike | str, *, inputs=(), overwrite: bool = False,
                    header: str | None = None) -> Path:
    """Write an experiment as a TOML experiment file (atomically: temp file + rename).

    Never writes over the file the experiment was loaded from, nor over ``inputs``; an existing
    file is replaced only with ``overwrite=True``.
    """
    if not isinstance(experiment, Experiment):
        raise RecoilsimError("experiment", type(experiment).__name__, "an Experiment")
    text = dumps_toml(experiment_to_dict(experiment))
    if header:
        text = "".join(f"# {h}\n" for h in header.splitlines()) + "\n" + text
    src = experiment.source
    return _write(text, path, list(inputs) + [src], overwrite)


def dump_file(ef: ExperimentFile, path: os.PathLike | str, *, inputs=(), overwrite: bool = False) -> Path:
    """Write an :class:`ExperimentFile` (experiment plus ``[spectra]`` and ``[fit]``) as TOML."""
    d = experiment_to_dict(ef.experiment)
    if ef.spectra:
        d["spectra"] = ef.spectra
    if ef.fit:
        d["fit"] = ef.fit
    src = [ef.path, ef.experiment.source]
    return _write(dumps_toml(d), path, list(inputs) + src, overwrite)
