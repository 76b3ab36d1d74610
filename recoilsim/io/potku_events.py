"""Potku list-mode events (``.asc``) and the validated integer-table parser they (and ``.cut``
files) are read with.

``.asc`` (format from the Potku sources, JYU-IBA/potku): one coincidence event per line,
``TOF_channel E_channel`` (non-negative integers, whitespace separated). Event numbers as written
in ``.cut`` files count the events from 1.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator

import numpy as np
import xarray as xr

from ..errors import RecoilsimError
from .files import input_path, iter_chunks

__all__ = ["read_asc", "parse_int_table", "iter_int_table", "event_arrays"]

# ----------------------------------------------------------------------------------------------
# vectorised, validated integer-table parser
# ----------------------------------------------------------------------------------------------

_MAX_DIGITS = 9  # values < 1e9: ample for ADC channels and event numbers, and fits int32
_POW10 = 10 ** np.arange(_MAX_DIGITS + 1, dtype=np.int64)
# byte classes: 0 = not allowed, 1 = digit, 2 = blank (space, tab, CR), 3 = newline
_CLASS = np.zeros(256, dtype=np.uint8)
_CLASS[ord("0"):ord("9") + 1] = 1
_CLASS[[ord(" "), ord("\t"), ord("\r")]] = 2
_CLASS[ord("\n")] = 3
_CHUNK = 1 << 23  # 8 MiB of text per vectorised pass keeps temporaries small


def _line_col(buf: bytes, pos: int) -> tuple[int, int]:
    """1-based line and column of byte offset ``pos`` in ``buf``."""
    line = buf.count(b"\n", 0, pos) + 1
    col = pos - (buf.rfind(b"\n", 0, pos) + 1) + 1
    return line, col


def _nth_newline(buf: bytes, k: int) -> int:
    """Byte offset of the k-th (1-based) newline in ``buf``."""
    pos = -1
    for _ in range(k):
        pos = buf.find(b"\n", pos + 1)
    return pos


def _line_text(buf: bytes, pos: int, limit: int = 60) -> str:
    start = buf.rfind(b"\n", 0, pos) + 1
    end = buf.find(b"\n", pos)
    if end < 0:
        end = len(buf)
    return buf[start:min(end, start + limit)].decode("utf-8", errors="replace").rstrip("\r")


def _bad_char(source: str, buf: bytes, pos: int, line_offset: int, what: str) -> RecoilsimError:
    line, col = _line_col(buf, pos)
    ch = buf[pos:pos + 1]
    text = _line_text(buf, pos)
    if ch == b"-":
        allowed = f"{what}: non-negative integers only (negative value)"
    elif ch in (b".", b"e", b"E", b"+"):
        allowed = f"{what}: integers only"
    else:
        allowed = f"{what}: whitespace-separated non-negative integers (found byte {ch!r})"
    return RecoilsimError(f"{source} line {line + line_offset} column {col}", text, allowed)


def iter_int_table(chunks: Iterable[bytes], ncols: int, source: str, line_offset: int = 0,
                   what: str = "columns") -> Iterator[np.ndarray]:
    """Parse whitespace-separated non-negative integers, ``ncols`` per non-blank line, from
    chunks of text that end at line ends (:func:`recoilsim.io.files.iter_chunks`), one array
    per chunk, so that a file is checked as it streams and garbage fails in its first chunk.

    Vectorised (numpy on the raw bytes); blank lines are skipped. Any byte other than digits
    and whitespace (text, signs, decimal points, NaN, NUL, non-UTF-8), a line with the wrong
    number of columns or a number of more than 9 digits raises :class:`RecoilsimError` naming
    ``source``, the line (``+ line_offset``) and the content.

    Yields
    ------
    numpy.ndarray of int64, shape (n_rows, ncols)
    """
    lines_before = 0
    for chunk in chunks:
        try:
            yield _parse_chunk(chunk, ncols, source, line_offset + lines_before, what)
        except _ChunkError as exc:
            raise _bad_char(source, chunk, exc.pos, line_offset + lines_before, what) from None
        lines_before += chunk.count(b"\n")


def parse_int_table(buf: bytes, ncols: int, source: str, line_offset: int = 0,
                    what: str = "columns") -> np.ndarray:
    """:func:`iter_int_table` on bytes in memory (8 MiB at a time), concatenated.

    Returns
    -------
    numpy.ndarray of int64, shape (n_rows, ncols)
    """
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise RecoilsimError(f"{source}", type(buf).__name__, "bytes")
    buf = bytes(buf)

    def chunks():
        start, n = 0, len(buf)
        while start < n:
            stop = n if n - start <= _CHUNK else buf.find(b"\n", start + _CHUNK)
            stop = n if stop < 0 else stop + 1
            yield buf[start:stop]
            start = stop

    out = list(iter_int_table(chunks(), ncols, source, line_offset, what))
    if not out:
        return np.zeros((0, ncols), dtype=np.int64)
    return np.concatenate(out, axis=0)


class _ChunkError(Exception):
    def __init__(self, pos):
        self.pos = pos


def _parse_chunk(chunk: bytes, ncols: int, source: str, line_offset: int, what: str) -> np.ndarray:
    a = np.frombuffer(chunk, dtype=np.uint8)
    cls = _CLASS[a]
    bad = cls == 0
    if bad.any():
        raise _ChunkError(int(np.argmax(bad)))
    dig = cls == 1
    del cls, bad
    starts = dig.copy()
    starts[1:] &= ~dig[:-1]
    ends = dig.copy()
    ends[:-1] &= ~dig[1:]
    sidx = np.flatnonzero(starts)
    eidx = np.flatnonzero(ends)
    del ends
    ntok = sidx.size
    if ntok == 0:
        return np.zeros((0, ncols), dtype=np.int64)
    lens = eidx - sidx + 1
    if lens.max() > _MAX_DIGITS:
        k = int(np.argmax(lens > _MAX_DIGITS))
        line, col = _line_col(chunk, int(sidx[k]))
        raise RecoilsimError(f"{source} line {line + line_offset} column {col}",
                             chunk[sidx[k]:eidx[k] + 1].decode()[:40],
                             f"{what}: integers below 1e9 (number too large)")
    nl = a == 10
    n_lines = int(np.count_nonzero(nl)) + 1
    tok_line = np.cumsum(nl, dtype=np.int32)[sidx]  # 0-based line index of each token
    del nl
    counts = np.bincount(tok_line, minlength=n_lines)
    wrong = (counts != 0) & (counts != ncols)
    if wrong.any():
        li = int(np.argmax(wrong))
        pos = 0 if li == 0 else _nth_newline(chunk, li) + 1
        raise RecoilsimError(f"{source} line {li + 1 + line_offset}", _line_text(chunk, pos),
                             f"{what}: exactly {ncols} whitespace-separated integers per line "
                             f"(found {int(counts[li])})")
    del dig
    # numpy's C text parser on input already validated to be digits and whitespace only;
    # the manual digit sum below is the fallback should the token counts ever disagree
    vals = np.fromstring(chunk, dtype=np.int64, sep=" ")
    if vals.size != ntok:  # pragma: no cover - defensive
        vals = _digit_values(a, starts, eidx)
    return vals.reshape(-1, ncols)


def _digit_values(a: np.ndarray, starts: np.ndarray, eidx: np.ndarray) -> np.ndarray:
    """Value of each digit run: sum of digit * 10**(distance to the run's last digit)."""
    dp = np.flatnonzero(_CLASS[a] == 1)
    tid = np.cumsum(starts, dtype=np.int64)[dp] - 1
    first = np.flatnonzero(starts[dp])
    w = (a[dp].astype(np.int64) - 48) * _POW10[eidx[tid] - dp]
    return np.add.reduceat(w, first)


# ----------------------------------------------------------------------------------------------
# .asc list-mode events
# ----------------------------------------------------------------------------------------------

def read_asc(path: os.PathLike | str) -> xr.Dataset:
    """Read Potku list-mode events (``TOF_channel E_channel`` per line).

    Returns
    -------
    xarray.Dataset
        Variables ``tof`` and ``energy`` (int32 channels) along dim ``event``; coordinate
        ``event_number`` (1-based, as Potku's ``.cut`` files number events). attrs: ``source``.

    Raises
    ------
    RecoilsimError
        Empty file, wrong column count, text, signs, decimals, NaN, numbers >= 1e9 (the
        message names the file and line).
    """
    what = "list-mode file (.asc)"
    p = input_path(path, what)
    tofs, energies = [], []
    for table in iter_int_table(iter_chunks(p, what, chunk_bytes=_CHUNK), 2, str(p), what="TOF_channel E_channel"):
        tofs.append(table[:, 0].astype(np.int32))
        energies.append(table[:, 1].astype(np.int32))
    n = sum(t.size for t in tofs)
    if n == 0:
        raise RecoilsimError(str(p), "no events", "a list-mode file with at least one 'TOF E' line")
    tof = np.concatenate(tofs)
    energy = np.concatenate(energies)
    del tofs, energies
    return xr.Dataset(
        {"tof": ("event", tof, {"units": "channel", "long_name": "time-of-flight channel"}),
         "energy": ("event", energy, {"units": "channel", "long_name": "energy channel"})},
        coords={"event_number": ("event", np.arange(1, n + 1, dtype=np.int32))},
        attrs={"source": str(p), "n_events": n},
    )


def event_arrays(events) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tof, energy, event_number) arrays of a Dataset from :func:`read_asc`."""
    if isinstance(events, xr.Dataset):
        for k in ("tof", "energy"):
            if k not in events:
                raise RecoilsimError("events", sorted(events.data_vars), "a Dataset with 'tof' and 'energy' (read_asc)")
        tof = events["tof"].values
        en = events["energy"].values
        num = events["event_number"].values if "event_number" in events.coords else np.arange(1, tof.size + 1)
        return tof, en, num
    raise RecoilsimError("events", type(events).__name__, "an xarray.Dataset from read_asc")

