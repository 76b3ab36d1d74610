"""Reading input files: one place for the checks every reader makes before it parses.

Every reader names what the file is (``what``) and gets a :class:`RecoilsimError` naming that,
the path and what is allowed when the path is not a path (None, an int), not an existing
regular file, larger than the reader's limit, or starts with bytes no text file holds (NUL).
The checks look at the size and the first :data:`HEAD_BYTES` before anything is loaded, so a
reader pointed at gigabytes of garbage fails at once and small. Readers of large files
(list-mode events) stream them in chunks (:func:`iter_chunks`); line readers use
:func:`iter_lines`, which never holds more than one chunk and refuses over-long lines.
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import Iterator

from ..errors import RecoilsimError

__all__ = ["MiB", "HEAD_BYTES", "input_path", "read_bytes", "read_head", "iter_chunks", "iter_lines",
           "decode_utf8"]

MiB = 1 << 20
HEAD_BYTES = 1 << 16
CHUNK_BYTES = 8 * MiB
MAX_LINE_BYTES = MiB


def input_path(path: os.PathLike | str, what: str) -> Path:
    """``path`` as a Path to an existing regular file, or a :class:`RecoilsimError` naming ``what``."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)):
        raise RecoilsimError(what, path, "a file path (str or os.PathLike)")
    try:
        p = Path(path)
        ok = p.is_file()
    except (OSError, ValueError) as exc:  # embedded NUL, name too long
        raise RecoilsimError(what, str(path), f"a valid file path ({exc})") from None
    if not ok:
        if p.is_dir():
            raise RecoilsimError(what, str(p), "a file, not a directory")
        raise RecoilsimError(what, str(p), "an existing readable file")
    return p


def _size(p: Path, what: str) -> int:
    try:
        return p.stat().st_size
    except OSError as exc:
        raise RecoilsimError(what, str(p), f"a readable file ({exc.strerror})") from None


def _open(p: Path, what: str):
    try:
        return open(p, "rb")
    except OSError as exc:
        raise RecoilsimError(what, str(p), f"a readable file ({exc.strerror})") from None


def _check_text_head(p: Path, head: bytes, what: str) -> None:
    k = head.find(b"\0")
    if k >= 0:
        line = head.count(b"\n", 0, k) + 1
        raise RecoilsimError(f"{what} {p} line {line}", "NUL byte", "a text file (no NUL bytes)")


def read_head(path: os.PathLike | str, what: str, n: int = HEAD_BYTES, text: bool = True) -> tuple[Path, bytes]:
    """The first ``n`` bytes of an input file (checked for NUL bytes when ``text``)."""
    p = input_path(path, what)
    with _open(p, what) as f:
        head = f.read(n)
    if text:
        _check_text_head(p, head, what)
    return p, head


def read_bytes(path: os.PathLike | str, what: str, max_bytes: int = 64 * MiB, text: bool = True) -> tuple[Path, bytes]:
    """The whole content of an input file of at most ``max_bytes``.

    Parameters
    ----------
    path : path-like
        The file.
    what : str
        What the file is, for the message (e.g. ``'cut file (.cut)'``).
    max_bytes : int
        Largest size accepted; a larger file is refused before anything is read.
    text : bool
        Refuse a file whose first :data:`HEAD_BYTES` hold a NUL byte.

    Returns
    -------
    (Path, bytes)
    """
    p = input_path(path, what)
    size = _size(p, what)
    with _open(p, what) as f:
        head = f.read(HEAD_BYTES)
        if text:
            _check_text_head(p, head, what)
        if size > max_bytes:
            raise RecoilsimError(what, str(p), f"a file of at most {max_bytes / MiB:.4g} MiB "
                                               f"(this one has {size / MiB:.4g} MiB)")
        try:
            rest = f.read(max_bytes + 1 - len(head))
        except OSError as exc:
            raise RecoilsimError(what, str(p), f"a readable file ({exc.strerror})") from None
    data = head + rest
    if len(data) > max_bytes:  # grew while we read it
        raise RecoilsimError(what, str(p), f"a file of at most {max_bytes / MiB:.4g} MiB")
    return p, data


def iter_chunks(path: os.PathLike | str, what: str, start: int = 0,
                chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Stream an input file from byte ``start`` in chunks of about ``chunk_bytes`` that end at a
    newline (the last chunk ends where the file does). A line longer than ``chunk_bytes`` is
    refused."""
    p = input_path(path, what)
    with _open(p, what) as f:
        f.seek(start)
        carry = b""
        while True:
            block = f.read(chunk_bytes)
            if not block:
                if carry:
                    yield carry
                return
            buf = carry + block
            cut = buf.rfind(b"\n")
            if cut < 0:
                if len(buf) > chunk_bytes:
                    raise RecoilsimError(what, str(p), f"lines shorter than {chunk_bytes / MiB:.4g} MiB")
                carry = buf
                continue
            yield buf[:cut + 1]
            carry = buf[cut + 1:]


def iter_lines(path: os.PathLike | str, what: str, max_bytes: int = 256 * MiB,
               max_line: int = MAX_LINE_BYTES) -> Iterator[tuple[int, str]]:
    """Stream the lines of a UTF-8 text file as ``(line number, text)`` (BOM and line ends
    stripped), checking size, NUL bytes, UTF-8 and line length as it goes."""
    p = input_path(path, what)
    size = _size(p, what)
    if size > max_bytes:
        raise RecoilsimError(what, str(p), f"a file of at most {max_bytes / MiB:.4g} MiB "
                                           f"(this one has {size / MiB:.4g} MiB)")
    dec = codecs.getincrementaldecoder("utf-8-sig")()
    lineno = 0
    pending = ""
    for chunk in iter_chunks(p, what, chunk_bytes=max(max_line, 1 << 16)):
        if b"\0" in chunk:
            at = lineno + chunk.count(b"\n", 0, chunk.index(b"\0")) + 1
            raise RecoilsimError(f"{what} {p} line {at}", "NUL byte", "a text file (no NUL bytes)")
        try:
            text = pending + dec.decode(chunk)
        except UnicodeDecodeError as exc:
            at = lineno + chunk.count(b"\n", 0, exc.start) + 1
            raise RecoilsimError(f"{what} {p} line {at}", chunk[exc.start:exc.start + 4], "UTF-8 text") from None
        lines = text.split("\n")
        pending = lines.pop()
        for line in lines:
            lineno += 1
            if len(line) > max_line:
                raise RecoilsimError(f"{what} {p} line {lineno}", line[:40] + "...",
                                     f"lines of at most {max_line} characters")
            yield lineno, line.rstrip("\r")
    if pending:
        yield lineno + 1, pending.rstrip("\r")


def decode_utf8(buf: bytes, source: str) -> str:
    """``buf`` decoded as UTF-8, or a :class:`RecoilsimError` naming ``source``, line and column."""
    try:
        return buf.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = buf.count(b"\n", 0, exc.start) + 1
        col = exc.start - (buf.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RecoilsimError(f"{source} line {line} column {col}", buf[exc.start:exc.start + 4],
                             "UTF-8 text") from None
