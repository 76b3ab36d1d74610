"""Potku polygon cuts: ``.sel`` selection files and ``.cut`` event lists.

File formats (taken from the Potku sources, JYU-IBA/potku, ``modules/selection.py`` and
``modules/cut_file.py``, and checked on the sample measurement Ecaart-11-mini):
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

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from ..errors import RecoilsimError
from .files import MiB, decode_utf8, input_path, iter_chunks, iter_lines, read_head
from .potku_events import event_arrays, iter_int_table

__all__ = ["Selection", "read_sel", "CutFile", "read_cut", "read_cuts", "selection_mask", "select_events",
           "check_isotope"]

# ----------------------------------------------------------------------------------------------
# .sel polygons
# ----------------------------------------------------------------------------------------------

_ELEM_RE = re.compile(r"^(?P<A>\d+)?(?P<sym>[A-Z][a-z]?)$")


def check_isotope(symbol: str, A: int | None, field: str) -> None:
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
    sels: list[Selection] = []
    seen: dict[str, int] = {}
    p = input_path(path, "selection file (.sel)")
    for lineno, raw in iter_lines(p, "selection file (.sel)", max_bytes=16 * MiB):
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
        check_isotope(sym, A, f"{src} (element)")
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
            check_isotope(scat, None, f"{src} (scatter element)")
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
    check_isotope(sym, A, f"cut file name {name} (element)")
    return sym, A, digits[0], (digits[1] if len(digits) == 2 else None)


_CUT_KEYS = {"Count": int, "Type": str, "Weight Factor": float, "Energy": float, "Detector Angle": float,
             "Scatter Element": str, "Element losses": str, "Split count": int}


def read_cut(path: os.PathLike | str) -> CutFile:
    """Read one Potku ``.cut`` file (header, blank line, column title, ``TOF E event`` rows).

    Validates the header values, that ``Count`` equals the number of rows, that the element in
    the file name (and the scatter element) is known, and that the event numbers are positive
    and unique.
    """
    what = "cut file (.cut)"
    p, buf = read_head(path, what)  # header and title: a few hundred bytes; the rows stream
    sym, A, index, split = _parse_cut_name(p)
    src = str(p)
    # header: lines up to the first blank line; then the title line
    pos = 0
    lineno = 0
    header: dict[str, str] = {}
    n = len(buf)
    while True:
        if pos >= n:
            raise RecoilsimError(src, f"end of file (or of its first {len(buf)} bytes) in the header",
                                 "'Key: value' header lines, a blank line, a column title, then 'TOF E event' rows")
        end = buf.find(b"\n", pos)
        end = n if end < 0 else end
        raw = buf[pos:end]
        lineno += 1
        pos = end + 1
        line = decode_utf8(raw, f"{src} line {lineno}").strip()
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
        check_isotope(m.group("sym"), int(m.group("A")) if m.group("A") else None, f"{src} (Scatter Element)")
    # title line
    if pos >= n:
        raise RecoilsimError(src, "end of file after header", "a column title line 'ToF, Energy, Event number'")
    end = buf.find(b"\n", pos)
    end = n if end < 0 else end
    title = decode_utf8(buf[pos:end], f"{src} line {lineno + 1}").strip()
    lineno += 1
    if not title or title[0].isdigit():
        raise RecoilsimError(f"{src} line {lineno}", title[:60], "the column title 'ToF, Energy, Event number'")
    pos = end + 1
    parts = list(iter_int_table(iter_chunks(p, what, start=pos), 3, src, line_offset=lineno,
                                what="TOF E event_number"))
    table = np.concatenate(parts) if parts else np.zeros((0, 3), dtype=np.int64)
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
    if isinstance(directory, bool) or not isinstance(directory, (str, os.PathLike)):
        raise RecoilsimError("cut directory", directory, "a folder path (str or os.PathLike)")
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



def selection_mask(events: xr.Dataset, selection: Selection) -> np.ndarray:
    """Boolean mask (per event) of the events that Potku would put in this selection's cut."""
    tof, en, _ = event_arrays(events)
    return selection.contains(tof, en)


def select_events(events: xr.Dataset, selection: Selection) -> xr.Dataset:
    """The events inside ``selection`` (same variables as ``events``, in file order)."""
    m = selection_mask(events, selection)
    out = events.isel(event=np.flatnonzero(m))
    out.attrs = dict(events.attrs, selection=selection.label)
    return out

