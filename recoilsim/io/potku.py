"""Potku list-mode TOF-E data: ``.asc`` events, ``.sel`` polygon cuts, ``.cut`` event lists, ``.ini``.

File formats (taken from the Potku sources, JYU-IBA/potku, ``modules/selection.py`` and
``modules/cut_file.py``, and checked on the sample measurement Ecaart-11-mini):

``.asc``
    One coincidence event per line, ``TOF_channel E_channel`` (non-negative integers,
    whitespace separated). Event numbers as written in ``.cut`` files count the events from 1.
``.sel``
    One polygon a line, seven fields separated by four spaces:
    ``type  element  isotope  weight_factor  scatter_element  colour  x1,x2,...;y1,y2,...``
    (type ``ERD`` or ``RBS``; isotope and scatter element may be empty; x is the TOF channel,
    y the energy channel).
``.cut``
    ``Key: value`` header lines (Count, Type, Weight Factor, Energy, Detector Angle,
    Scatter Element, Element losses, Split count), a blank line, a column title line
    (``ToF, Energy, Event number``), then ``TOF E event_number`` rows. The file name is
    ``<measurement>.<element>.<index>.cut`` (older Potku) or
    ``<measurement>.<element>.<ERD|RBS_X>.<index>[.<split>].cut`` (newer Potku).

Inclusion rule (Potku ``Selection.point_inside``): an event (x, y) is inside a polygon when it
lies within the closed bounding box of the polygon's vertices and a crossing-number test
toggles an odd number of times, where the edge from p1 to p2 toggles when
``min(p1y, p2y) < y <= max(p1y, p2y)`` and ``x <= max(p1x, p2x)`` and
(``p1x == p2x`` or ``x <= xinters``), ``xinters = (y - p1y) * (p2x - p1x) / (p2y - p1y) + p1x``
evaluated in double precision. Reproducing this exactly (not merely "a" point-in-polygon test)
is what makes the selected events identical to Potku's ``.cut`` files, including events on
polygon edges and vertices.
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import xarray as xr

from ..errors import RecoilsimError
from .atomic import atomic_write, refuse_overwrite_inputs
from .files import read_bytes

__all__ = [
    "read_asc", "Selection", "read_sel", "CutFile", "read_cut", "read_cuts",
    "selection_mask", "select_events", "tof_spectra", "spectra_from_cuts",
    "tof_e_histogram", "plot_tof_e", "read_potku_settings", "parse_int_table", "potku_experiment",
    "element_spectra", "rebin_calibration",
]

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


def parse_int_table(buf: bytes, ncols: int, source: str, line_offset: int = 0,
                    what: str = "columns") -> np.ndarray:
    """Parse whitespace-separated non-negative integers, ``ncols`` per non-blank line.

    Fully vectorised (numpy on the raw bytes, in 8 MiB chunks); blank lines are skipped. Any
    byte other than digits and whitespace (text, signs, decimal points, NaN, non-UTF-8), a
    line with the wrong number of columns or a number of more than 9 digits raises
    :class:`RecoilsimError` naming ``source``, the line (``+ line_offset``) and the content.

    Returns
    -------
    numpy.ndarray of int64, shape (n_rows, ncols)
    """
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise RecoilsimError(f"{source}", type(buf).__name__, "bytes")
    buf = bytes(buf)
    out: list[np.ndarray] = []
    start = 0
    n = len(buf)
    lines_before = 0
    while start < n:
        stop = n if n - start <= _CHUNK else buf.find(b"\n", start + _CHUNK)
        stop = n if stop < 0 else stop + 1
        chunk = buf[start:stop]
        try:
            out.append(_parse_chunk(chunk, ncols, source, line_offset + lines_before, what))
        except _ChunkError as exc:
            raise _bad_char(source, chunk, exc.pos, line_offset + lines_before, what) from None
        lines_before += chunk.count(b"\n")
        start = stop
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


def _decode(buf: bytes, source: str) -> str:
    try:
        return buf.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(buf, exc.start)
        raise RecoilsimError(f"{source} line {line} column {col}", buf[exc.start:exc.start + 4],
                             "UTF-8 text") from None


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
    p, buf = read_bytes(path, "list-mode file (.asc)")
    table = parse_int_table(buf, 2, str(p), what="TOF_channel E_channel")
    if table.shape[0] == 0:
        raise RecoilsimError(str(p), "no events", "a list-mode file with at least one 'TOF E' line")
    tof = table[:, 0].astype(np.int32)
    energy = table[:, 1].astype(np.int32)
    del table
    n = tof.size
    return xr.Dataset(
        {"tof": ("event", tof, {"units": "channel", "long_name": "time-of-flight channel"}),
         "energy": ("event", energy, {"units": "channel", "long_name": "energy channel"})},
        coords={"event_number": ("event", np.arange(1, n + 1, dtype=np.int32))},
        attrs={"source": str(p), "n_events": n},
    )


# ----------------------------------------------------------------------------------------------
# .sel polygons
# ----------------------------------------------------------------------------------------------

_ELEM_RE = re.compile(r"^(?P<A>\d+)?(?P<sym>[A-Z][a-z]?)$")


def _check_element(symbol: str, A: int | None, field: str) -> None:
    from ..model.elements import element, isotope

    try:
        element(symbol)
        if A is not None:
            isotope(f"{A}{symbol}")
    except RecoilsimError as exc:
        raise RecoilsimError(field, f"{A or ''}{symbol}", f"a known element/isotope ({exc.allowed})") from None
    except Exception:  # noqa: BLE001 - never leak lookup errors
        raise RecoilsimError(field, f"{A or ''}{symbol}", "a known element/isotope") from None


@dataclass(frozen=True, eq=False)
class Selection:
    """One Potku polygon cut.

    Attributes
    ----------
    type : 'ERD' or 'RBS'
    element : str
        Element symbol (for RBS: the scattered beam ion's element).
    mass_number : int or None
        Isotope mass number, None for the natural element.
    weight_factor : float
    scatter_element : str or None
        RBS only: the element the beam scattered from.
    color : str
    x, y : numpy int64 arrays
        Vertices: x = TOF channel, y = energy channel (at least three).
    label : str
        Potku's cut-file name part, e.g. ``'7Li.0'``, ``'Mn.0'``, ``'1H.1'``.
    """

    type: str
    element: str
    mass_number: int | None
    weight_factor: float
    scatter_element: str | None
    color: str
    x: np.ndarray
    y: np.ndarray
    label: str = ""

    @property
    def isotope_label(self) -> str:
        """``'7Li'`` or ``'Mn'`` (the element part of Potku's cut-file name)."""
        return f"{self.mass_number}{self.element}" if self.mass_number else self.element

    def contains(self, tof, energy) -> np.ndarray:
        """Boolean mask of events inside this polygon, with Potku's exact inclusion rule."""
        return _potku_inside(np.asarray(tof), np.asarray(energy), self.x, self.y)


def _potku_inside(x: np.ndarray, y: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Potku's bounding-box + crossing-number test, vectorised over events (see module doc)."""
    mask = np.zeros(x.shape, dtype=bool)
    box = (x >= px.min()) & (x <= px.max()) & (y >= py.min()) & (y <= py.max())
    idx = np.flatnonzero(box)
    if idx.size == 0:
        return mask
    xs = x[idx].astype(np.int64)
    ys = y[idx].astype(np.int64)
    inside = np.zeros(idx.size, dtype=bool)
    n = px.size
    for i in range(n):
        p1x, p1y = int(px[i - 1]), int(py[i - 1])  # i = 0 pairs the last vertex with the first
        p2x, p2y = int(px[i]), int(py[i])
        if p1y == p2y:
            continue  # a horizontal edge never satisfies min < y <= max
        lo, hi = (p1y, p2y) if p1y < p2y else (p2y, p1y)
        cand = (ys > lo) & (ys <= hi) & (xs <= max(p1x, p2x))
        if p1x != p2x:
            xinters = (ys - p1y) * (p2x - p1x) / float(p2y - p1y) + p1x
            cand &= xs <= xinters
        inside ^= cand
    mask[idx] = inside
    return mask


def _parse_points(text: str, field: str) -> tuple[np.ndarray, np.ndarray]:
    parts = text.split(";")
    if len(parts) != 2:
        raise RecoilsimError(field, text[:60], "'x1,x2,...;y1,y2,...' (one ';' between x and y lists)")
    vals = []
    for axis, part in zip("xy", parts):
        items = part.split(",")
        arr = []
        for it in items:
            s = it.strip()
            if not re.fullmatch(r"-?\d{1,9}", s):
                raise RecoilsimError(f"{field} ({axis} list)", it[:30], "integer channel numbers (|value| < 1e9)")
            arr.append(int(s))
        vals.append(np.asarray(arr, dtype=np.int64))
    x, y = vals
    if x.size != y.size:
        raise RecoilsimError(field, f"{x.size} x values, {y.size} y values", "as many x values as y values")
    if x.size < 3:
        raise RecoilsimError(field, f"{x.size} points", "a polygon with at least 3 points")
    return x, y


def read_sel(path: os.PathLike | str) -> list[Selection]:
    """Read a Potku ``.sel`` selection file into :class:`Selection` polygons (file order).

    Labels follow Potku's cut-file naming: element string plus a running index among
    selections with the same element string (``'1H.0'``, ``'1H.1'``, ``'7Li.0'``).
    """
    p, buf = read_bytes(path, "selection file (.sel)")
    text = _decode(buf, str(p))
    sels: list[Selection] = []
    seen: dict[str, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        src = f"{p} line {lineno}"
        fields = line.split("\t") if ("\t" in line and "    " not in line) else line.split("    ")
        fields = [f.strip() for f in fields]
        if len(fields) != 7:
            raise RecoilsimError(src, line[:60], "7 fields separated by four spaces: type, element, isotope, "
                                 f"weight factor, scatter element, colour, points (found {len(fields)})")
        typ, sym, iso, wf, scat, color, pts = fields
        if typ not in ("ERD", "RBS"):
            raise RecoilsimError(f"{src} (type)", typ, "'ERD' or 'RBS'")
        if not re.fullmatch(r"[A-Z][a-z]?", sym):
            raise RecoilsimError(f"{src} (element)", sym, "an element symbol such as 'Li'")
        if iso == "":
            A = None
        elif re.fullmatch(r"\d{1,3}", iso):
            A = int(iso)
        else:
            raise RecoilsimError(f"{src} (isotope)", iso, "a mass number (integer) or empty")
        _check_element(sym, A, f"{src} (element)")
        try:
            w = float(wf)
        except ValueError:
            raise RecoilsimError(f"{src} (weight factor)", wf, "a positive finite number") from None
        if not np.isfinite(w) or w <= 0:
            raise RecoilsimError(f"{src} (weight factor)", wf, "a positive finite number")
        if scat == "":
            scat_v = None
        else:
            if not re.fullmatch(r"[A-Z][a-z]?", scat):
                raise RecoilsimError(f"{src} (scatter element)", scat, "an element symbol or empty")
            _check_element(scat, None, f"{src} (scatter element)")
            scat_v = scat
        if typ == "RBS" and scat_v is None:
            raise RecoilsimError(f"{src} (scatter element)", scat, "an element symbol for an RBS selection")
        x, y = _parse_points(pts, f"{src} (points)")
        name = f"{A}{sym}" if A else sym
        k = seen.get(name, 0)
        seen[name] = k + 1
        sels.append(Selection(typ, sym, A, w, scat_v, color, x, y, f"{name}.{k}"))
    if not sels:
        raise RecoilsimError(str(p), "no selections", "at least one polygon line")
    return sels


# ----------------------------------------------------------------------------------------------
# .cut event lists
# ----------------------------------------------------------------------------------------------

@dataclass(eq=False)
class CutFile:
    """A Potku ``.cut`` file: header and the selected events.

    Attributes
    ----------
    path : Path
    element : str
    mass_number : int or None
    index : int
        Running index among cuts of the same element (``12C.0``, ``12C.1``).
    split : int or None
        Element-losses split number, if the file is a split.
    header : dict[str, str]
    tof, energy, event_number : numpy int64 arrays
    """

    path: Path
    element: str
    mass_number: int | None
    index: int
    split: int | None
    header: dict = field(default_factory=dict)
    tof: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    energy: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    event_number: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def isotope_label(self) -> str:
        return f"{self.mass_number}{self.element}" if self.mass_number else self.element

    @property
    def label(self) -> str:
        return f"{self.isotope_label}.{self.index}"

    @property
    def type(self) -> str:
        return self.header.get("Type", "ERD")

    @property
    def weight_factor(self) -> float:
        return float(self.header.get("Weight Factor", 1.0))


def _parse_cut_name(p: Path) -> tuple[str, int | None, int, int | None]:
    name = p.name
    stem = name[:-4] if name.lower().endswith(".cut") else name
    parts = stem.split(".")
    digits = []
    while parts and parts[-1].isdigit():
        digits.insert(0, int(parts.pop()))
    if parts and (parts[-1] == "ERD" or parts[-1].startswith("RBS_")):
        parts.pop()
    if len(parts) < 2 or not digits or len(digits) > 2:
        raise RecoilsimError("cut file name", name,
                             "'<measurement>.<element>.<index>.cut' or '<measurement>.<element>.<ERD|RBS_X>.<index>[.<split>].cut'")
    m = _ELEM_RE.match(parts[-1])
    if not m:
        raise RecoilsimError(f"cut file name {name} (element)", parts[-1], "an element such as 'Mn' or '7Li'")
    sym = m.group("sym")
    A = int(m.group("A")) if m.group("A") else None
    _check_element(sym, A, f"cut file name {name} (element)")
    return sym, A, digits[0], (digits[1] if len(digits) == 2 else None)


_CUT_KEYS = {"Count": int, "Type": str, "Weight Factor": float, "Energy": float, "Detector Angle": float,
             "Scatter Element": str, "Element losses": str, "Split count": int}


def read_cut(path: os.PathLike | str) -> CutFile:
    """Read one Potku ``.cut`` file (header, blank line, column title, ``TOF E event`` rows).

    Validates the header values, that ``Count`` equals the number of rows, that the element in
    the file name (and the scatter element) is known, and that the event numbers are positive
    and unique.
    """
    p, buf = read_bytes(path, "cut file (.cut)")
    sym, A, index, split = _parse_cut_name(p)
    src = str(p)
    # header: lines up to the first blank line; then the title line
    pos = 0
    lineno = 0
    header: dict[str, str] = {}
    n = len(buf)
    while True:
        if pos >= n:
            raise RecoilsimError(src, "end of file in header",
                                 "'Key: value' header lines, a blank line, a column title, then 'TOF E event' rows")
        end = buf.find(b"\n", pos)
        end = n if end < 0 else end
        raw = buf[pos:end]
        lineno += 1
        pos = end + 1
        line = _decode(raw, f"{src} line {lineno}").strip()
        if line == "":
            break
        if ":" not in line:
            raise RecoilsimError(f"{src} line {lineno}", line[:60], "a 'Key: value' header line or a blank line")
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key in header:
            raise RecoilsimError(f"{src} line {lineno}", key, "each header key once")
        conv = _CUT_KEYS.get(key)
        if conv is not None and conv is not str:
            try:
                v = conv(value)
            except ValueError:
                raise RecoilsimError(f"{src} line {lineno} ({key})", value, f"a {conv.__name__}") from None
            if conv is float and not np.isfinite(v):
                raise RecoilsimError(f"{src} line {lineno} ({key})", value, "a finite number")
            if key == "Count" and v < 0:
                raise RecoilsimError(f"{src} line {lineno} ({key})", value, "a non-negative integer")
        header[key] = value
        if lineno > 1000:
            raise RecoilsimError(src, "no blank line after the header", "a blank line ending the header")
    if "Count" not in header:
        raise RecoilsimError(f"{src} (header)", sorted(header), "a 'Count: N' header line")
    if header.get("Type", "ERD") not in ("ERD", "RBS"):
        raise RecoilsimError(f"{src} (Type)", header.get("Type"), "'ERD' or 'RBS'")
    if header.get("Scatter Element"):
        m = _ELEM_RE.match(header["Scatter Element"])
        if not m:
            raise RecoilsimError(f"{src} (Scatter Element)", header["Scatter Element"], "an element symbol or empty")
        _check_element(m.group("sym"), int(m.group("A")) if m.group("A") else None, f"{src} (Scatter Element)")
    # title line
    if pos >= n:
        raise RecoilsimError(src, "end of file after header", "a column title line 'ToF, Energy, Event number'")
    end = buf.find(b"\n", pos)
    end = n if end < 0 else end
    title = _decode(buf[pos:end], f"{src} line {lineno + 1}").strip()
    lineno += 1
    if not title or title[0].isdigit():
        raise RecoilsimError(f"{src} line {lineno}", title[:60], "the column title 'ToF, Energy, Event number'")
    pos = end + 1
    table = parse_int_table(buf[pos:], 3, src, line_offset=lineno, what="TOF E event_number")
    count = int(header["Count"])
    if table.shape[0] != count:
        raise RecoilsimError(f"{src} (Count)", count,
                             f"the number of event rows in the file ({table.shape[0]}); truncated or edited file?")
    ev = table[:, 2]
    if ev.size and ev.min() < 1:
        raise RecoilsimError(f"{src} (event number)", int(ev.min()), "event numbers >= 1")
    if np.unique(ev).size != ev.size:
        raise RecoilsimError(f"{src} (event number)", "duplicate event numbers", "each event once")
    return CutFile(p, sym, A, index, split, header, table[:, 0].copy(), table[:, 1].copy(), ev.copy())


def read_cuts(directory: os.PathLike | str, pattern: str = "*.cut") -> dict[str, CutFile]:
    """Read every ``.cut`` file in ``directory``; keys are labels such as ``'7Li.0'``.

    Element-losses splits are keyed ``'7Li.0.3'``.
    """
    d = Path(directory)
    if not d.is_dir():
        raise RecoilsimError("cut directory", str(d), "an existing directory")
    out: dict[str, CutFile] = {}
    for f in sorted(d.glob(pattern)):
        c = read_cut(f)
        key = c.label if c.split is None else f"{c.label}.{c.split}"
        if key in out:
            raise RecoilsimError("cut file", str(f), f"one file per cut label ({key!r} also in {out[key].path.name})")
        out[key] = c
    if not out:
        raise RecoilsimError("cut directory", str(d), f"a directory containing {pattern} files")
    return out


# ----------------------------------------------------------------------------------------------
# applying cuts, spectra, histograms
# ----------------------------------------------------------------------------------------------

def _events_xy(events) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if isinstance(events, xr.Dataset):
        for k in ("tof", "energy"):
            if k not in events:
                raise RecoilsimError("events", sorted(events.data_vars), "a Dataset with 'tof' and 'energy' (read_asc)")
        tof = events["tof"].values
        en = events["energy"].values
        num = events["event_number"].values if "event_number" in events.coords else np.arange(1, tof.size + 1)
        return tof, en, num
    raise RecoilsimError("events", type(events).__name__, "an xarray.Dataset from read_asc")


def selection_mask(events: xr.Dataset, selection: Selection) -> np.ndarray:
    """Boolean mask (per event) of the events that Potku would put in this selection's cut."""
    tof, en, _ = _events_xy(events)
    return selection.contains(tof, en)


def select_events(events: xr.Dataset, selection: Selection) -> xr.Dataset:
    """The events inside ``selection`` (same variables as ``events``, in file order)."""
    m = selection_mask(events, selection)
    out = events.isel(event=np.flatnonzero(m))
    out.attrs = dict(events.attrs, selection=selection.label)
    return out


def _calibration_time_ns(channel: np.ndarray, calibration) -> np.ndarray | None:
    if calibration is None:
        return None
    slope, offset = _calibration_pair(calibration)
    return slope * channel + offset


def _calibration_pair(calibration) -> tuple[float, float]:
    """(slope_ns, offset_ns) from a pair or a dict (``slope_ns``/``offset_ns`` or Potku's s)."""
    if isinstance(calibration, Mapping):
        slope = calibration.get("slope_ns")
        offset = calibration.get("offset_ns")
        if slope is None and "slope" in calibration:
            slope = float(calibration["slope"]) * 1e9
            offset = float(calibration.get("offset", 0.0)) * 1e9
    else:
        try:
            slope, offset = calibration
        except (TypeError, ValueError):
            raise RecoilsimError("calibration", calibration, "(slope_ns, offset_ns) or a dict with slope_ns/offset_ns") from None
    slope = float(slope)
    offset = float(offset)
    if not (np.isfinite(slope) and np.isfinite(offset)) or slope == 0:
        raise RecoilsimError("calibration", (slope, offset), "finite slope (non-zero) and offset in ns")
    return slope, offset


def tof_spectra(events: xr.Dataset, selections: Sequence[Selection], n_channels: int | None = None,
                by: str = "cut", calibration=None, apply_weight: bool = False) -> xr.Dataset:
    """Per-cut (or per-isotope) TOF spectra from list-mode events and Potku polygons.

    Parameters
    ----------
    events : Dataset from :func:`read_asc`
    selections : list of :class:`Selection` (e.g. from :func:`read_sel`)
    n_channels : int, optional
        Length of the channel axis (default: largest TOF channel in the data + 1).
    by : {'cut', 'isotope'}
        ``'cut'``: one spectrum per polygon (labels ``'7Li.0'``); ``'isotope'``: polygons of the
        same element string merged (an event inside two of them counted once), labels ``'7Li'``.
    calibration : (slope_ns, offset_ns) or dict, optional
        Adds a ``time_ns`` coordinate, t = slope * channel + offset. A dict from
        :func:`read_potku_settings` (``calibration`` entry) works directly.
    apply_weight : bool
        Multiply counts by Potku's weight factor (float counts) instead of raw integer counts.

    Returns
    -------
    xarray.Dataset
        ``counts`` (cut, channel); coords ``cut``, ``channel``, ``element``, ``mass_number``
        (0 = natural), ``isotope``, ``type``, ``weight_factor`` and ``n_events`` per cut;
        ``time_ns`` if calibrated.
    """
    tof, en, _ = _events_xy(events)
    if not selections:
        raise RecoilsimError("selections", "[]", "at least one Selection")
    if by not in ("cut", "isotope"):
        raise RecoilsimError("by", by, "'cut' or 'isotope'")
    if n_channels is None:
        n_channels = int(tof.max()) + 1 if tof.size else 1
    if isinstance(n_channels, bool) or not isinstance(n_channels, (int, np.integer)) or n_channels < 1:
        raise RecoilsimError("n_channels", n_channels, "a positive integer")
    n_channels = int(n_channels)
    groups: dict[str, list[Selection]] = {}
    for s in selections:
        if not isinstance(s, Selection):
            raise RecoilsimError("selections", type(s).__name__, "Selection objects (read_sel)")
        key = s.label if by == "cut" else s.isotope_label
        groups.setdefault(key, []).append(s)
    labels = list(groups)
    counts = np.zeros((len(labels), n_channels), dtype=np.float64 if apply_weight else np.int64)
    nev = np.zeros(len(labels), dtype=np.int64)
    for i, key in enumerate(labels):
        m = np.zeros(tof.shape, dtype=bool)
        for s in groups[key]:
            m |= s.contains(tof, en)
        t = tof[m]
        nev[i] = t.size
        t = t[t < n_channels]
        h = np.bincount(t, minlength=n_channels)[:n_channels]
        counts[i] = h * groups[key][0].weight_factor if apply_weight else h
    first = [groups[k][0] for k in labels]
    channel = np.arange(n_channels)
    coords = {
        "cut": labels,
        "channel": channel,
        "element": ("cut", [s.element for s in first]),
        "mass_number": ("cut", np.array([s.mass_number or 0 for s in first], dtype=np.int64)),
        "isotope": ("cut", [s.isotope_label for s in first]),
        "type": ("cut", [s.type for s in first]),
        "weight_factor": ("cut", np.array([s.weight_factor for s in first])),
        "n_events": ("cut", nev),
    }
    tns = _calibration_time_ns(channel.astype(float), calibration)
    if tns is not None:
        coords["time_ns"] = ("channel", tns, {"units": "ns"})
    ds = xr.Dataset({"counts": (("cut", "channel"), counts, {"units": "counts"})}, coords=coords,
                    attrs={"source": events.attrs.get("source", ""), "by": by,
                           "weighted": int(apply_weight), "n_events_total": int(tof.size)})
    return ds


def spectra_from_cuts(cuts: Mapping[str, CutFile] | Sequence[CutFile], n_channels: int,
                      calibration=None) -> xr.Dataset:
    """TOF spectra built directly from ``.cut`` files (one spectrum per cut label)."""
    items = list(cuts.values()) if isinstance(cuts, Mapping) else list(cuts)
    if not items:
        raise RecoilsimError("cuts", "[]", "at least one CutFile")
    n_channels = int(n_channels)
    if n_channels < 1:
        raise RecoilsimError("n_channels", n_channels, "a positive integer")
    counts = np.zeros((len(items), n_channels), dtype=np.int64)
    for i, c in enumerate(items):
        t = c.tof[c.tof < n_channels]
        counts[i] = np.bincount(t, minlength=n_channels)[:n_channels]
    channel = np.arange(n_channels)
    coords = {
        "cut": [c.label if c.split is None else f"{c.label}.{c.split}" for c in items],
        "channel": channel,
        "element": ("cut", [c.element for c in items]),
        "mass_number": ("cut", np.array([c.mass_number or 0 for c in items], dtype=np.int64)),
        "isotope": ("cut", [c.isotope_label for c in items]),
        "type": ("cut", [c.type for c in items]),
        "weight_factor": ("cut", np.array([c.weight_factor for c in items])),
        "n_events": ("cut", np.array([c.tof.size for c in items], dtype=np.int64)),
    }
    tns = _calibration_time_ns(channel.astype(float), calibration)
    if tns is not None:
        coords["time_ns"] = ("channel", tns, {"units": "ns"})
    return xr.Dataset({"counts": (("cut", "channel"), counts, {"units": "counts"})}, coords=coords,
                      attrs={"source": "cut files"})


def rebin_calibration(slope_ns: float, offset_ns: float, rebin: int) -> tuple[float, float]:
    """TOF calibration of ``rebin``-channel bins: bin j holds channels rebin*j .. rebin*j + rebin - 1.

    With t = slope * channel + offset at channel centres (channel edges at +-0.5), bin j is
    centred on channel rebin*j + (rebin - 1)/2, so t = (rebin * slope) * j + offset +
    slope * (rebin - 1) / 2, and the bin edges are exactly the original channel edges.
    """
    if isinstance(rebin, bool) or not isinstance(rebin, (int, np.integer)) or rebin < 1:
        raise RecoilsimError("rebin", rebin, "a positive integer number of channels per bin")
    return float(slope_ns) * rebin, float(offset_ns) + float(slope_ns) * (rebin - 1) / 2.0


def element_spectra(events: xr.Dataset, selections: Sequence[Selection], elements: Mapping[str, Sequence[str]],
                    n_channels: int, rebin: int = 1, calibration=None) -> xr.Dataset:
    """TOF spectra per simulated element from Potku polygons, optionally rebinned.

    Parameters
    ----------
    events : Dataset from :func:`read_asc`
    selections : the polygons (:func:`read_sel`)
    elements : {element: [isotope labels]}, e.g. ``{'Li': ['6Li', '7Li'], 'O': ['16O'], 'Mn': ['Mn']}``;
        an element's spectrum counts every event inside any of its polygons once.
    n_channels : number of TOF channels kept (0 .. n_channels - 1, before rebinning; a multiple
        of ``rebin``); events at later channels are counted in ``n_events`` only.
    rebin : channels per bin.
    calibration : (slope_ns, offset_ns) or dict as :func:`tof_spectra`; gives ``time_ns`` per bin
        (:func:`rebin_calibration`).

    Returns
    -------
    xarray.Dataset
        ``counts`` (element, channel) with channel = bin index; coordinates ``n_events`` (all
        events in the element's polygons), ``n_in_range`` (those below ``n_channels``), ``cuts``
        (the isotope labels, comma separated) and ``time_ns`` if calibrated; attrs ``rebin``,
        ``n_channels_raw``.
    """
    tof, en, _ = _events_xy(events)
    if not isinstance(elements, Mapping) or not elements:
        raise RecoilsimError("elements", elements, "a mapping element -> list of isotope labels, e.g. {'Li': ['6Li', '7Li']}")
    if isinstance(n_channels, bool) or not isinstance(n_channels, (int, np.integer)) or n_channels < 1:
        raise RecoilsimError("n_channels", n_channels, "a positive integer")
    rebin_calibration(1.0, 0.0, rebin)  # validates rebin
    if n_channels % rebin:
        raise RecoilsimError("n_channels", n_channels, f"a multiple of rebin ({rebin})")
    have = {s.isotope_label for s in selections}
    nb = int(n_channels) // int(rebin)
    counts = np.zeros((len(elements), nb), dtype=np.int64)
    nev = np.zeros(len(elements), dtype=np.int64)
    nin = np.zeros(len(elements), dtype=np.int64)
    for i, (el, labels) in enumerate(elements.items()):
        labels = [labels] if isinstance(labels, str) else list(labels)
        missing = [lab for lab in labels if lab not in have]
        if not labels or missing:
            raise RecoilsimError(f"elements[{el}]", missing or labels,
                                 f"isotope labels of the selections ({', '.join(sorted(have))})")
        m = np.zeros(tof.shape, dtype=bool)
        for sel in selections:
            if sel.isotope_label in labels:
                m |= sel.contains(tof, en)
        t = tof[m]
        nev[i] = t.size
        t = t[t < n_channels]
        nin[i] = t.size
        counts[i] = np.bincount(t // rebin, minlength=nb)[:nb]
    coords = {"element": list(elements), "channel": np.arange(nb), "n_events": ("element", nev),
              "n_in_range": ("element", nin),
              "cuts": ("element", [",".join([v] if isinstance(v, str) else v) for v in elements.values()])}
    if calibration is not None:
        slope, offset = _calibration_pair(calibration)
        a, b = rebin_calibration(slope, offset, rebin)
        coords["time_ns"] = ("channel", a * np.arange(nb) + b, {"units": "ns"})
    return xr.Dataset({"counts": (("element", "channel"), counts, {"units": "counts"})}, coords=coords,
                      attrs={"source": events.attrs.get("source", ""), "rebin": int(rebin),
                             "n_channels_raw": int(n_channels)})


def tof_e_histogram(events: xr.Dataset, tof_bin: int = 8, energy_bin: int = 8,
                    tof_max: int | None = None, energy_max: int | None = None) -> xr.DataArray:
    """2-D TOF-E histogram (counts per ``tof_bin`` x ``energy_bin`` channels).

    Returns a DataArray with dims ``('energy', 'tof')`` whose coordinates are the lower channel
    edge of each bin (attrs give the bin widths). Vectorised with one ``bincount``.
    """
    tof, en, _ = _events_xy(events)
    for name, v in (("tof_bin", tof_bin), ("energy_bin", energy_bin)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise RecoilsimError(name, v, "a positive integer number of channels")
    tmax = int(tof.max()) + 1 if tof_max is None else int(tof_max)
    emax = int(en.max()) + 1 if energy_max is None else int(energy_max)
    if tmax < 1 or emax < 1:
        raise RecoilsimError("tof_max/energy_max", (tof_max, energy_max), "positive channel limits")
    nt = -(-tmax // tof_bin)
    ne = -(-emax // energy_bin)
    keep = (tof < tmax) & (en < emax)
    if keep.all():
        idx = (en // energy_bin).astype(np.int64) * nt + tof // tof_bin
    else:
        idx = (en[keep] // energy_bin).astype(np.int64) * nt + tof[keep] // tof_bin
    h = np.bincount(idx, minlength=nt * ne).reshape(ne, nt)
    return xr.DataArray(h, dims=("energy", "tof"),
                        coords={"energy": np.arange(ne) * energy_bin, "tof": np.arange(nt) * tof_bin},
                        name="counts",
                        attrs={"tof_bin": int(tof_bin), "energy_bin": int(energy_bin), "units": "counts",
                               "source": events.attrs.get("source", "")})


def plot_tof_e(hist: xr.DataArray, selections: Sequence[Selection] = (), path: os.PathLike | str | None = None,
               inputs: Iterable[os.PathLike | str] = (), title: str | None = None, fmt: str | None = None):
    """Plot a TOF-E histogram (log colour scale) with the polygon cuts drawn on it.

    If ``path`` is given the figure is written atomically (temp file + rename; ``inputs`` are
    protected from being overwritten) and closed; otherwise the Figure is returned.
    """
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    if not isinstance(hist, xr.DataArray) or set(hist.dims) != {"energy", "tof"}:
        raise RecoilsimError("hist", type(hist).__name__, "a DataArray with dims ('energy', 'tof') from tof_e_histogram")
    fig = Figure(figsize=(7, 6), dpi=120)
    ax = fig.add_subplot(111)
    h = hist.transpose("energy", "tof")
    tb = h.attrs.get("tof_bin", 1)
    eb = h.attrs.get("energy_bin", 1)
    t_edges = np.append(h["tof"].values, h["tof"].values[-1] + tb)
    e_edges = np.append(h["energy"].values, h["energy"].values[-1] + eb)
    data = np.ma.masked_less_equal(h.values, 0)
    vmax = max(float(data.max()) if data.count() else 1.0, 1.0)
    mesh = ax.pcolormesh(t_edges, e_edges, data, norm=LogNorm(vmin=1, vmax=vmax), cmap="viridis", shading="flat")
    fig.colorbar(mesh, ax=ax, label="counts per bin")
    for s in selections:
        xs = np.append(s.x, s.x[0])
        ys = np.append(s.y, s.y[0])
        col = s.color if re.fullmatch(r"#[0-9a-fA-F]{6}", s.color or "") else "red"
        ax.plot(xs, ys, "-", color=col, lw=1.2)
        ax.text(float(np.mean(s.x)), float(np.mean(s.y)), s.label, color=col, fontsize=8,
                ha="center", va="center", bbox=dict(fc="white", alpha=0.6, lw=0, pad=1))
    ax.set_xlabel("TOF channel")
    ax.set_ylabel("energy channel")
    ax.set_title(title or f"TOF-E ({Path(str(h.attrs.get('source', ''))).name})")
    if path is None:
        return fig
    out = Path(path)
    refuse_overwrite_inputs(out, list(inputs) + ([h.attrs["source"]] if h.attrs.get("source") else []))
    fmt = fmt or (out.suffix.lstrip(".").lower() or "png")
    if fmt not in ("png", "svg", "pdf"):
        raise RecoilsimError("plot path", str(out), "a .png, .svg or .pdf file")
    with atomic_write(out, "wb") as f:
        fig.savefig(f, format=fmt)
    return out


# ----------------------------------------------------------------------------------------------
# .ini settings
# ----------------------------------------------------------------------------------------------

def _read_ini(path: Path) -> configparser.ConfigParser | None:
    if not path.is_file():
        return None
    cp = configparser.ConfigParser(interpolation=None)
    try:
        text = path.read_bytes().decode("utf-8")
        cp.read_string(text, source=str(path))
    except UnicodeDecodeError as exc:
        raise RecoilsimError(str(path), f"byte {exc.start}", "UTF-8 text") from None
    except configparser.Error as exc:
        raise RecoilsimError(str(path), type(exc).__name__, f"a valid .ini file ({str(exc).splitlines()[0]})") from None
    return cp


def _ini_float(cp, section, key, path, required=True):
    try:
        raw = cp.get(section, key)
    except (configparser.NoSectionError, configparser.NoOptionError):
        if required:
            raise RecoilsimError(f"{path} [{section}] {key}", None, "a number (key missing)") from None
        return None
    try:
        v = float(raw)
    except ValueError:
        raise RecoilsimError(f"{path} [{section}] {key}", raw, "a number") from None
    if not np.isfinite(v):
        raise RecoilsimError(f"{path} [{section}] {key}", raw, "a finite number")
    return v


def read_potku_settings(path: os.PathLike | str, measurement: str | None = None) -> dict:
    """Read Potku's settings (``measuring_unit_settings.ini``, ``calibration_settings.ini``,
    ``depth_profile_settings.ini``) for a project or a measurement.

    ``path`` is a project folder, a ``.proj`` file, or a measurement folder (whose parent holds
    the project's .ini files). A measurement-level file overrides the project's unless its
    ``[default] use_settings`` is ``REQUEST``/``PROJECT`` (use the project's); a measurement
    calibration with slope 0 counts as "not set" (Potku writes zeros there).

    Returns
    -------
    dict
        ``beam`` {ion, element, mass_number, energy_MeV}, ``geometry`` {target_angle_deg
        (beam to sample surface), detector_angle_deg (recoil angle from the beam),
        incidence_angle_deg (from the normal), exit_angle_deg (from the normal)},
        ``detector`` {tof_length_m, carbon_foil_ug_cm2}, ``calibration`` {slope_s, offset_s,
        slope_ns, offset_ns}, ``target_density_g_cm3``, ``depth_profile`` (raw),
        ``project_name``, ``sources`` (files used).
    """
    p = Path(path)
    if p.is_file() and p.suffix == ".proj":
        proj_dir = p.parent
        meas_dir = None
    elif p.is_dir():
        if list(p.glob("*.proj")):
            proj_dir = p
            meas_dir = p / measurement if measurement else None
        elif (p.parent / "measuring_unit_settings.ini").is_file() or list(p.parent.glob("*.proj")):
            proj_dir, meas_dir = p.parent, p
        else:
            proj_dir, meas_dir = p, None
    else:
        raise RecoilsimError("Potku settings path", str(p), "a Potku project folder, .proj file or measurement folder")
    out: dict = {"sources": []}
    proj_files = list(proj_dir.glob("*.proj"))
    if proj_files:
        cp = _read_ini(proj_files[0])
        out["project_name"] = cp.get("meta", "project_name", fallback=proj_files[0].stem) if cp else proj_files[0].stem
        out["sources"].append(str(proj_files[0]))

    def pick(name):
        """(config, path) to use for one settings file, measurement overriding project."""
        proj = _read_ini(proj_dir / name)
        meas = _read_ini(meas_dir / name) if meas_dir is not None else None
        chosen = [(proj, proj_dir / name)] if proj else []
        if meas is not None:
            use = meas.get("default", "use_settings", fallback="").strip().upper()
            if use not in ("REQUEST", "PROJECT"):
                chosen.append((meas, meas_dir / name))
        return chosen

    mu = pick("measuring_unit_settings.ini")
    if not mu:
        raise RecoilsimError("measuring_unit_settings.ini", str(proj_dir), "a Potku folder with measuring_unit_settings.ini")
    cp, f = mu[-1]
    out["sources"].append(str(f))
    try:
        sym = cp.get("beam", "element").strip()
        iso = cp.get("beam", "isotope", fallback="").strip()
    except (configparser.NoSectionError, configparser.NoOptionError):
        raise RecoilsimError(f"{f} [beam] element", None, "the beam element (key missing)") from None
    A = None
    if iso:
        if not iso.isdigit():
            raise RecoilsimError(f"{f} [beam] isotope", iso, "a mass number")
        A = int(iso)
    _check_element(sym, A, f"{f} [beam] element")
    energy = _ini_float(cp, "beam", "energy", f)
    if energy <= 0:
        raise RecoilsimError(f"{f} [beam] energy", energy, "a positive energy in MeV")
    target_angle = _ini_float(cp, "measuring_unit", "target_angle", f)
    det_angle = _ini_float(cp, "measuring_unit", "detector_angle", f)
    # Potku spells it 'lenght'; accept the corrected spelling too
    tof_len = _ini_float(cp, "measuring_unit", "time_of_flight_lenght", f, required=False)
    if tof_len is None:
        tof_len = _ini_float(cp, "measuring_unit", "time_of_flight_length", f)
    foil = _ini_float(cp, "measuring_unit", "carbon_foil_thickness", f, required=False)
    density = _ini_float(cp, "measuring_unit", "target_density", f, required=False)
    if not 0 < target_angle < 90:
        raise RecoilsimError(f"{f} [measuring_unit] target_angle", target_angle, "an angle in (0, 90) degrees")
    if not 0 < det_angle < 90:
        raise RecoilsimError(f"{f} [measuring_unit] detector_angle", det_angle, "an angle in (0, 90) degrees")
    if tof_len <= 0:
        raise RecoilsimError(f"{f} [measuring_unit] time_of_flight_lenght", tof_len, "a positive length in m")
    out["beam"] = {"ion": f"{A}{sym}" if A else sym, "element": sym, "mass_number": A, "energy_MeV": energy}
    # Potku's target angle is measured between the beam and the sample surface; the recoil
    # leaves at (detector_angle - target_angle) above the surface.
    out["geometry"] = {
        "target_angle_deg": target_angle,
        "detector_angle_deg": det_angle,
        "incidence_angle_deg": 90.0 - target_angle,
        "exit_angle_deg": 90.0 - (det_angle - target_angle),
    }
    out["detector"] = {"tof_length_m": tof_len, "carbon_foil_ug_cm2": foil}
    out["target_density_g_cm3"] = density
    cal = None
    for cp_c, fc in reversed(pick("calibration_settings.ini")):
        slope = _ini_float(cp_c, "parameters", "slope", fc, required=False)
        offset = _ini_float(cp_c, "parameters", "offset", fc, required=False)
        if slope is not None and slope != 0:
            cal = {"slope_s": slope, "offset_s": offset or 0.0, "slope_ns": slope * 1e9,
                   "offset_ns": (offset or 0.0) * 1e9, "source": str(fc)}
            out["sources"].append(str(fc))
            break
    out["calibration"] = cal
    dp = pick("depth_profile_settings.ini")
    if dp:
        cp_d, fd = dp[-1]
        out["depth_profile"] = dict(cp_d.items("depth_profile_settings")) if cp_d.has_section("depth_profile_settings") else {}
    return out


# ----------------------------------------------------------------------------------------------
# settings -> Experiment
# ----------------------------------------------------------------------------------------------

def potku_experiment(settings, sample, recoils, solid_angle_msr: float, n_channels: int = 8192,
                     fluence: float = 1e12, timing_resolution_ps: float = 0.0,
                     energy_resolution_keV: float = 0.0, options=None, name: str | None = None):
    """Build a :class:`recoilsim.model.experiment.Experiment` from Potku settings.

    Parameters
    ----------
    settings : dict from :func:`read_potku_settings`, or a path passed to it
    sample : recoilsim Sample (Potku's .ini files carry no sample)
    recoils : elements/isotopes to simulate, e.g. ``['7Li', 'O', 'Mn']``
    solid_angle_msr : telescope solid angle (not in Potku's measuring-unit settings)
    n_channels, fluence, timing_resolution_ps, energy_resolution_keV, options
        Passed to Detector / Beam / Experiment.

    Beam ion and energy, target and detector angles (converted with
    :meth:`recoilsim.model.instrument.Geometry.from_target_detector`), flight length, the T1 carbon
    foil (ug/cm2) and the TOF calibration (Potku's s -> ns) come from the settings.
    """
    from ..model.experiment import Experiment, Options
    from ..model.instrument import Beam, Detector, Foil, Geometry

    st = settings if isinstance(settings, Mapping) else read_potku_settings(settings)
    for key in ("beam", "geometry", "detector"):
        if key not in st:
            raise RecoilsimError("settings", sorted(st), f"a dict from read_potku_settings (missing {key!r})")
    cal = st.get("calibration")
    if not cal:
        raise RecoilsimError("settings.calibration", cal, "a TOF calibration with non-zero slope (calibration_settings.ini)")
    beam = Beam(st["beam"]["ion"], st["beam"]["energy_MeV"], fluence=fluence)
    geo = Geometry.from_target_detector(st["geometry"]["target_angle_deg"], st["geometry"]["detector_angle_deg"])
    foils = []
    foil = st["detector"].get("carbon_foil_ug_cm2")
    if foil:
        foils.append(Foil("C", thickness_ug_cm2=foil, name="T1 carbon foil"))
    det = Detector(flight_length_m=st["detector"]["tof_length_m"], solid_angle_msr=solid_angle_msr,
                   calibration_a_ns=cal["slope_ns"], calibration_b_ns=cal["offset_ns"], n_channels=n_channels,
                   timing_resolution_ps=timing_resolution_ps, foils=foils,
                   energy_resolution_keV=energy_resolution_keV)
    return Experiment(beam=beam, geometry=geo, detector=det, sample=sample, recoils=list(recoils),
                      options=options if options is not None else Options(),
                      name=name or st.get("project_name", "potku"))
