"""Output folders: checked before any work, created just before the first write, marked
incomplete while they are written.

A command calls :func:`check_output_dir` first (before it reads big inputs or fits), so that a
file where the folder should be, a folder it cannot write, an output that would replace one of
its inputs, or earlier outputs it would replace without ``--overwrite`` stop it at once, and
nothing is created yet. It then writes inside :func:`writing`, which creates the folder and puts
a marker file :data:`MARKER` in it until every output is written: a run that is interrupted
(an error, Ctrl-C, SIGTERM) leaves the marker next to its partial outputs.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import RecoilsimError
from .atomic import atomic_write, refuse_overwrite_inputs

__all__ = ["MARKER", "check_output_dir", "writing"]

MARKER = "INCOMPLETE"


def _nearest_existing(p: Path) -> Path:
    p = Path(os.path.abspath(p))
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_output_dir(out: os.PathLike | str, names: Iterable[str], inputs: Iterable[os.PathLike | str] = (),
                     overwrite: bool = False, field: str = "--out") -> Path:
    """Check an output folder without creating it.

    Parameters
    ----------
    out : path-like
        The folder (it may not exist yet).
    names : file names the command will write into it.
    inputs : the command's input files: no output may replace one, ``overwrite`` or not.
    overwrite : bool
        Allow replacing outputs of an earlier run.
    field : str
        The option named in the message.

    Returns
    -------
    Path

    Raises
    ------
    RecoilsimError
        ``out`` is a file, lies below a file, cannot be written, an output would replace an
        input, or (without ``overwrite``) outputs of an earlier run are there.
    """
    if isinstance(out, bool) or not isinstance(out, (str, os.PathLike)):
        raise RecoilsimError(field, out, "a folder path")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RecoilsimError(field, str(out), "a folder (a file of that name exists)")
    base = _nearest_existing(out)
    if not base.is_dir():
        raise RecoilsimError(field, str(out), f"a folder path ({base} is a file, not a folder)")
    try:
        with tempfile.TemporaryFile(dir=base):
            pass
    except OSError as exc:
        raise RecoilsimError(field, str(out), f"a folder that can be written ({base}: {exc.strerror})") from None
    targets = [out / n for n in names]
    inputs = [i for i in inputs if i is not None]
    for t in targets:
        refuse_overwrite_inputs(t, inputs)
    if not overwrite:
        earlier = [t for t in [*targets, out / MARKER] if t.exists()]
        if earlier:
            raise RecoilsimError(field, str(out), f"a folder without earlier outputs ({earlier[0].name} is there); "
                                                  "pass --overwrite to replace them")
    return out


@contextlib.contextmanager
def writing(out: os.PathLike | str, command: str) -> Iterator[Path]:
    """Create ``out`` (and parents) with the marker file :data:`MARKER` in it, yield it, and
    remove the marker once the block has written everything. On an exception (or an interrupt)
    the marker stays and says that the folder holds partial outputs."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecoilsimError("output folder", str(out), f"a folder that can be created ({exc.strerror})") from None
    with atomic_write(out / MARKER) as f:
        f.write(f"recoilsim {command} started writing this folder at {time.strftime('%Y-%m-%d %H:%M:%S')}.\n"
                "While this file is here the run has not finished (or was interrupted): the other files\n"
                "may be partial or left from an earlier run.\n")
    yield out
    (out / MARKER).unlink(missing_ok=True)
