"""Plain spectra: text/CSV tables of ``channel, counts[, more columns]``.

Reads one-, two- or multi-column text with or without a header line, with comment lines
(``#``, ``%``, ``!``, ``//``) and blank lines, delimiter sniffed among ``;``, ``,``, tab and
whitespace (a ``;``-delimited file may use decimal commas). A one-column file is counts only
(channels 0, 1, 2, ...). Every defect raises :class:`RecoilsimError` naming file, line and
column: text where numbers belong, NaN/inf, negative counts, non-integer or negative channels,
duplicate channels, ragged rows, empty files, numbers too large.

The writer produces CSV (``channel,<name>...``) through :func:`recoilsim.io.atomic.atomic_write`.
"""

from __future__ import annotations

import math
import os
from array import array
from pathlib import Path
from typing import Iterable

import numpy as np
import xarray as xr

from ..errors import RecoilsimError
from .atomic import atomic_write, refuse_overwrite_inputs
from .files import MiB, input_path, iter_lines

__all__ = ["read_spectrum", "read_spectra", "write_spectrum"]

_COMMENTS = ("#", "%", "!", "//")
_MAX_CHANNEL = 10_000_000
_MAX_VALUE = 1e15
_MAX_ROWS = 1 << 21  # channels in a file: spectra have up to tens of thousands
_MAX_BYTES = 128 * MiB  # 2**21 rows of a few columns


def _sniff(line: str) -> str | None:
    if ";" in line:
        return ";"
    if "," in line:
        return ","
    if "\t" in line:
        return "\t"
    return None  # any whitespace


def _split(line: str, delim: str | None) -> list[str]:
    if delim is None:
        return line.split()
    return [t.strip() for t in line.split(delim)]


def _number(tok: str, decimal_comma: bool) -> float | None:
    t = tok.replace(",", ".") if decimal_comma else tok
    try:
        return float(t)
    except ValueError:
        return None


def _table(path) -> tuple[Path, list[str] | None, np.ndarray, list[int]]:
    what = "spectrum file"
    p = input_path(path, what)
    delim: str | None = None
    decimal_comma = False
    header: list[str] | None = None
    flat = array("d")  # the table, row after row: 8 bytes a value
    linenos = array("q")
    ncols: int | None = None
    sniffed = False
    for lineno, line in iter_lines(p, what, max_bytes=_MAX_BYTES):
        s = line.strip()
        if not s or s.startswith(_COMMENTS):
            continue
        if not sniffed:
            delim = _sniff(s)
            decimal_comma = delim == ";"
            sniffed = True
        toks = _split(s, delim)
        if delim is not None and toks and toks[-1] == "" and (ncols is None or len(toks) > ncols):
            toks = toks[:-1]  # trailing delimiter (not an empty last cell of a row as long as the header)
        vals = [math.nan if t == "" else _number(t, decimal_comma) for t in toks]  # empty cell: NaN
        if not linenos and header is None and any(v is None for v in vals):
            if all(v is None for v in vals) and all(t for t in toks):
                header = toks
                ncols = len(toks)
                continue
        if any(v is None for v in vals):
            k = next(i for i, v in enumerate(vals) if v is None)
            raise RecoilsimError(f"{p} line {lineno} column {k + 1}", toks[k][:40], "a number")
        if ncols is None:
            ncols = len(vals)
        if len(vals) != ncols:
            raise RecoilsimError(f"{p} line {lineno}", s[:60],
                                 f"{ncols} columns like the {'header' if header else 'first data line'} (found {len(vals)})")
        for k, v in enumerate(vals):
            if not math.isfinite(v) and toks[k] != "":
                raise RecoilsimError(f"{p} line {lineno} column {k + 1}", toks[k], "a finite number (no NaN/inf)")
            if abs(v) > _MAX_VALUE:
                raise RecoilsimError(f"{p} line {lineno} column {k + 1}", toks[k], f"a number of magnitude <= {_MAX_VALUE:g}")
        if len(linenos) >= _MAX_ROWS:
            raise RecoilsimError(f"{p} line {lineno}", "too many rows", f"at most {_MAX_ROWS} channels")
        flat.extend(vals)
        linenos.append(lineno)
    if not linenos:
        raise RecoilsimError(str(p), "no data rows", "at least one line of numbers (channel, counts)")
    return p, header, np.frombuffer(flat, dtype=np.float64).reshape(len(linenos), ncols), linenos


def _filled(p: Path, col: np.ndarray, linenos, k: int, name: str) -> np.ndarray:
    """``col`` if it has no empty cell (NaN in the table), else the error naming the first."""
    empty = np.isnan(col)
    if empty.any():
        i = int(np.argmax(empty))
        raise RecoilsimError(f"{p} line {linenos[i]} column {k + 1} ({name})", "empty cell", "a number")
    return col


def _channels(p: Path, table: np.ndarray, linenos: list[int], channel_column: int | None) -> np.ndarray:
    if channel_column is None:
        return np.arange(table.shape[0], dtype=np.int64)
    ch = _filled(p, table[:, channel_column], linenos, channel_column, "channel")
    bad = (ch != np.round(ch)) | (ch < 0) | (ch > _MAX_CHANNEL)
    if bad.any():
        i = int(np.argmax(bad))
        raise RecoilsimError(f"{p} line {linenos[i]} column {channel_column + 1} (channel)", float(ch[i]),
                             f"a non-negative integer channel <= {_MAX_CHANNEL}")
    chi = ch.astype(np.int64)
    order = np.argsort(chi, kind="stable")
    dup = np.flatnonzero(np.diff(chi[order]) == 0)
    if dup.size:
        i = int(order[dup[0] + 1])
        raise RecoilsimError(f"{p} line {linenos[i]} (channel)", int(chi[i]), "each channel once (duplicate channel)")
    return chi


def _column_index(spec, header, ncols, p, what) -> int:
    if isinstance(spec, str):
        if header is None or spec not in header:
            raise RecoilsimError(what, spec, f"a column name from the header {header}" if header else "a column index (file has no header)")
        return header.index(spec)
    if isinstance(spec, bool) or not isinstance(spec, (int, np.integer)) or not -ncols <= spec < ncols:
        raise RecoilsimError(what, spec, f"a column index in [0, {ncols - 1}] for {p.name}")
    return int(spec) % ncols


def read_spectra(path: os.PathLike | str, channel_column: int | str | None = 0) -> xr.Dataset:
    """Read every column of a spectrum table into a Dataset along dim ``channel``.

    Columns other than the channel column become variables named from the header (or
    ``counts``, ``col2``, ``col3``...). Counts columns must be non-negative; pass
    ``channel_column=None`` for files without a channel column (a one-column file has none).
    """
    p, header, table, linenos = _table(path)
    ncols = table.shape[1]
    if ncols == 1:
        channel_column = None
    cc = None if channel_column is None else _column_index(channel_column, header, ncols, p, "channel_column")
    ch = _channels(p, table, linenos, cc)
    order = np.argsort(ch, kind="stable")
    data_vars = {}
    for k in range(ncols):
        if k == cc:
            continue
        if header is not None:
            name = header[k]
        else:
            name = "counts" if not data_vars else f"col{k + 1}"
        col = _filled(p, table[:, k], linenos, k, name)
        neg = col < 0
        if neg.any():
            i = int(np.argmax(neg))
            raise RecoilsimError(f"{p} line {linenos[i]} column {k + 1} ({name})", float(col[i]), "counts >= 0")
        col = col[order]
        if np.all(col == np.round(col)):
            col = col.astype(np.int64)
        if name in data_vars or name == "channel":
            name = f"{name}_{k + 1}"
        data_vars[name] = ("channel", col)
    return xr.Dataset(data_vars, coords={"channel": ch[order]},
                      attrs={"source": str(p), "header": ",".join(header) if header else ""})


def read_spectrum(path: os.PathLike | str, counts_column: int | str = 1,
                  channel_column: int | str | None = 0) -> xr.DataArray:
    """Read one spectrum (``channel, counts``) as a DataArray with dim ``channel``.

    ``counts_column`` / ``channel_column`` select columns by index or header name. Counts are
    int64 when every value is integral, else float64. attrs: ``source``, ``column``.
    """
    p, header, table, linenos = _table(path)
    ncols = table.shape[1]
    if ncols == 1:
        channel_column, counts_column = None, 0
    cc = None if channel_column is None else _column_index(channel_column, header, ncols, p, "channel_column")
    k = _column_index(counts_column, header, ncols, p, "counts_column")
    if cc is not None and k == cc:
        raise RecoilsimError("counts_column", counts_column, "a column other than the channel column")
    ch = _channels(p, table, linenos, cc)
    col = _filled(p, table[:, k], linenos, k, "counts")
    neg = col < 0
    if neg.any():
        i = int(np.argmax(neg))
        raise RecoilsimError(f"{p} line {linenos[i]} column {k + 1} (counts)", float(col[i]), "counts >= 0")
    order = np.argsort(ch, kind="stable")
    col = col[order]
    if np.all(col == np.round(col)):
        col = col.astype(np.int64)
    name = header[k] if header else "counts"
    return xr.DataArray(col, dims="channel", coords={"channel": ch[order]}, name="counts",
                        attrs={"source": str(p), "column": name, "units": "counts"})


def _fmt(v) -> str:
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    f = float(v)
    if f == int(f) and abs(f) < 1e15:
        return str(int(f))
    return repr(f)


def write_spectrum(spec: xr.DataArray | xr.Dataset, path: os.PathLike | str,
                   inputs: Iterable[os.PathLike | str] = (), comment: str | None = None) -> Path:
    """Write a spectrum (DataArray with dim ``channel``) or a Dataset of such to CSV, atomically.

    Columns: ``channel`` then the data variable(s); ``comment`` lines are written first with
    ``#``. Refuses to overwrite any path in ``inputs``.
    """
    if isinstance(spec, xr.DataArray):
        ds = spec.to_dataset(name=spec.name or "counts")
    elif isinstance(spec, xr.Dataset):
        ds = spec
    else:
        raise RecoilsimError("spectrum", type(spec).__name__, "an xarray DataArray or Dataset with dim 'channel'")
    names = [n for n in ds.data_vars if ds[n].dims == ("channel",)]
    if "channel" not in ds.dims or not names:
        raise RecoilsimError("spectrum", list(ds.dims), "data with the single dim 'channel'")
    for n in names:
        v = np.asarray(ds[n].values, dtype=float)
        if not np.all(np.isfinite(v)):
            raise RecoilsimError(f"spectrum {n}", "NaN/inf", "finite values")
        if any(c in str(n) for c in ",\n\r"):
            raise RecoilsimError("spectrum variable name", n, "a name without commas or newlines")
    ch = ds["channel"].values if "channel" in ds.coords else np.arange(ds.sizes["channel"])
    out = Path(path)
    refuse_overwrite_inputs(out, inputs)
    cols = [np.asarray(ds[n].values) for n in names]
    with atomic_write(out, "w", newline="\n") as f:
        if comment:
            for line in str(comment).splitlines():
                f.write(f"# {line}\n")
        f.write(",".join(["channel", *map(str, names)]) + "\n")
        for i in range(len(ch)):
            f.write(",".join([_fmt(ch[i]), *(_fmt(c[i]) for c in cols)]) + "\n")
    return out
