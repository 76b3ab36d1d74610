"""Crash-safe writing: temp file in the target's directory, fsync, then ``os.replace``.

Every writer in recoilsim goes through :func:`atomic_write` (or :func:`write_netcdf`) so that an
interrupted write (exception, Ctrl-C, full disk) never leaves a half-written file at the target
path: the target either keeps its old content or gets the complete new content.
:func:`refuse_overwrite_inputs` stops a command from writing over one of its own input files.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterable, Iterator

from ..errors import RecoilsimError

__all__ = ["atomic_write", "refuse_overwrite_inputs", "write_netcdf", "read_netcdf"]


def _tmp_path(target: Path) -> tuple[int, Path]:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(target.parent))
    return fd, Path(name)


def _publish(tmp: Path, target: Path) -> None:
    """Give the finished temp file the permissions an ordinary open() would (mkstemp makes
    0600), rename it onto the target and fsync the directory."""
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    except OSError:
        pass
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def _fsync_dir(directory: Path) -> None:
    try:
        dfd = os.open(str(directory), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def _check_target(path: os.PathLike | str) -> Path:
    target = Path(path)
    if target.is_dir():
        raise RecoilsimError("output path", str(target), "a file path, not an existing directory")
    if not target.parent.is_dir():
        raise RecoilsimError("output path", str(target), "a path inside an existing directory")
    return target


@contextlib.contextmanager
def atomic_write(path: os.PathLike | str, mode: str = "w", encoding: str | None = "utf-8",
                 newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file next to ``path`` for writing; on success move it onto ``path``.

    The temporary file is created in the same directory (so the final ``os.replace`` is an
    atomic rename on POSIX and Windows), flushed and fsync'ed before the rename. On any
    exception inside the ``with`` block the temporary file is removed and the target is left
    untouched; the exception propagates.

    Parameters
    ----------
    path : path-like
        Target file.
    mode : {'w', 'wb', 'wt'}
        Text or binary write mode (append/read modes are refused).
    encoding, newline
        Passed to :func:`open` in text mode.
    """
    if mode not in ("w", "wt", "wb", "w+", "wb+", "w+b"):
        raise RecoilsimError("mode", mode, "one of 'w', 'wt', 'wb' (atomic writes replace the whole file)")
    target = _check_target(path)
    fd, tmp = _tmp_path(target)
    binary = "b" in mode
    try:
        if binary:
            f = os.fdopen(fd, mode)
        else:
            f = os.fdopen(fd, mode, encoding=encoding, newline=newline)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    try:
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _publish(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _resolved(p: os.PathLike | str) -> Path:
    try:
        return Path(p).expanduser().resolve(strict=False)
    except (OSError, RuntimeError):
        return Path(os.path.abspath(os.fspath(p)))


def refuse_overwrite_inputs(out_path: os.PathLike | str, input_paths: Iterable[os.PathLike | str]) -> None:
    """Raise :class:`RecoilsimError` if ``out_path`` is (after resolving symlinks) one of the inputs.

    Hard links to the same inode are caught too (``os.path.samefile``).
    """
    out = _resolved(out_path)
    for inp in input_paths:
        if inp is None:
            continue
        src = _resolved(inp)
        same = out == src
        if not same and out.exists() and src.exists():
            try:
                same = os.path.samefile(out, src)
            except OSError:
                same = False
        if same:
            raise RecoilsimError("output path", str(out_path),
                                 f"must not overwrite the input file {str(inp)!r}; choose another output path")


def write_netcdf(ds, path: os.PathLike | str, inputs: Iterable[os.PathLike | str] = ()) -> Path:
    """Write an xarray Dataset/DataArray to netCDF via a temporary file and an atomic rename.

    Attributes that netCDF cannot hold (None, bool, dicts, nested lists) are converted to
    strings so that any result the package produces can be saved.
    """
    import xarray as xr

    target = _check_target(path)
    refuse_overwrite_inputs(target, inputs)
    if isinstance(ds, xr.DataArray):
        ds = ds.to_dataset(name=ds.name if ds.name is not None else "data")
    ds = _netcdf_safe(ds)
    fd, tmp = _tmp_path(target)
    os.close(fd)
    try:
        ds.to_netcdf(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        _publish(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def read_netcdf(path: os.PathLike | str):
    """Read a netCDF file written by :func:`write_netcdf` fully into memory (file closed)."""
    import xarray as xr

    p = Path(path)
    if not p.is_file():
        raise RecoilsimError("netCDF path", str(p), "an existing file")
    try:
        with xr.open_dataset(p) as ds:
            return ds.load()
    except RecoilsimError:
        raise
    except Exception as exc:  # netCDF4/HDF5 raise many types
        raise RecoilsimError(f"netCDF file {p}", type(exc).__name__, f"a readable netCDF file ({exc})") from None


def _safe_attr(v):
    import numpy as np

    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if v is None:
        return "None"
    if isinstance(v, (str, int, float, np.integer, np.floating)):
        return v
    if isinstance(v, np.ndarray) and v.dtype.kind in "iuf" and v.ndim == 1:
        return v
    if isinstance(v, (list, tuple)) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) and v:
        return np.asarray(v)
    return repr(v)


def _netcdf_safe(ds):
    ds = ds.copy(deep=False)
    ds.attrs = {str(k): _safe_attr(v) for k, v in ds.attrs.items()}
    for name in list(ds.variables):
        var = ds.variables[name]
        var.attrs = {str(k): _safe_attr(v) for k, v in var.attrs.items()}
    return ds
