"""Reading input files: one place for the checks every reader makes before it parses."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import RecoilsimError


def read_bytes(path: os.PathLike | str, what: str) -> tuple[Path, bytes]:
    """The whole content of an input file, or a :class:`RecoilsimError` naming ``what``.

    Parameters
    ----------
    path : path-like
        The file.
    what : str
        What the file is, for the message (e.g. ``'cut file (.cut)'``).

    Returns
    -------
    (Path, bytes)
    """
    p = Path(path)
    if not p.is_file():
        raise RecoilsimError(what, str(p), "an existing readable file")
    try:
        return p, p.read_bytes()
    except OSError as exc:
        raise RecoilsimError(what, str(p), f"a readable file ({exc.strerror})") from None
