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

__all__ = ["atomic_write", "refuse_overwrite_inputs", "write_netcdf", "read_netcdf", "terminate_on_sigterm"]


def _write_error(target: Path, exc: BaseException) -> RecoilsimError:
    """The error a failed write raises: it names the target, never the hidden temp file."""
    why = getattr(exc, "strerror", None) or f"{type(exc).__name__}: {exc}"
    return RecoilsimError("output file", str(target), f"a file that can be written ({why}; nothing was "
                                                      "written there)")


def _tmp_path(target: Path) -> tuple[int, Path]:
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(target.parent))
    except OSError as exc:
        raise _write_error(target, exc) from None
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
    except OSError as exc:  # full disk, quota, I/O error
        tmp.unlink(missing_ok=True)
        raise _write_error(target, exc) from None
    except BaseException:  # also KeyboardInterrupt and SystemExit (SIGTERM: terminate_on_sigterm)
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
        _to_netcdf4(ds, tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        _publish(tmp, target)
    except (OSError, RuntimeError) as exc:  # netCDF4/HDF5 report a full disk as RuntimeError
        tmp.unlink(missing_ok=True)
        raise _write_error(target, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _to_netcdf4(ds, path: Path) -> None:
    """Write ``ds`` to a new netCDF4 file at ``path`` through xarray's netCDF4 store.

    The same file as ``ds.to_netcdf(path)`` (engine netCDF4, every variable encoded by xarray's
    CF conventions) without asking dask which scheduler is active: ``to_netcdf`` asks (to pick
    a per-file lock and for datasets with dask chunks), and when dask is installed the question
    imports ``dask.distributed``, 0.1-0.5 s of a ``recoilsim demo``. The store gets the lock
    xarray itself takes around the netCDF4/HDF5 library (not thread-safe); the file is a new
    temporary one that no other writer knows, so it needs no lock of its own. The lock's name is
    not public xarray API: where it is missing, ``ds.to_netcdf`` writes the same file.
    """
    try:
        from xarray.backends import NetCDF4DataStore
        from xarray.backends.netCDF4_ import NETCDF4_PYTHON_LOCK
    except ImportError:
        ds.to_netcdf(path, engine="netcdf4")
        return

    if any(v.chunks is not None for v in ds.variables.values()):
        ds = ds.load()
    store = NetCDF4DataStore.open(path, mode="w", lock=NETCDF4_PYTHON_LOCK)
    try:
        ds.dump_to_store(store)
    finally:
        store.close()


def read_netcdf(path: os.PathLike | str, finite: Iterable[str] | None = None):
    """Read a netCDF file written by :func:`write_netcdf` fully into memory (file closed).

    Parameters
    ----------
    path : path-like
    finite : names of the variables that must hold only finite numbers; None (default): every
        numeric data variable (a fit result marks unfitted channels NaN: pass ``()`` or the
        names to check).

    Raises
    ------
    RecoilsimError
        Not a file, not netCDF, or NaN/inf in a variable that must be finite.
    """
    import numpy as np
    import xarray as xr

    from .files import input_path

    p = input_path(path, "netCDF file")
    try:
        with open(p, "rb") as f:
            magic = f.read(8)
    except OSError as exc:
        raise RecoilsimError("netCDF file", str(p), f"a readable file ({exc.strerror})") from None
    if not (magic.startswith(b"CDF") or magic.startswith(b"\x89HDF")):
        raise RecoilsimError("netCDF file", str(p), "a netCDF file (it starts with neither 'CDF' nor HDF5's signature)")
    try:
        with xr.open_dataset(p) as ds:
            ds = ds.load()
    except Exception as exc:  # netCDF4/HDF5 raise many types
        raise RecoilsimError(f"netCDF file {p}", type(exc).__name__, f"a readable netCDF file ({exc})") from None
    names = [n for n in ds.data_vars if ds[n].dtype.kind in "fc"] if finite is None else list(finite)
    for n in names:
        if n not in ds:
            raise RecoilsimError(f"netCDF file {p}", n, f"a variable of the file ({', '.join(map(str, ds.data_vars))})")
        v = np.asarray(ds[n].values)
        if v.dtype.kind in "fc" and not np.all(np.isfinite(v)):
            raise RecoilsimError(f"netCDF file {p} variable {n}", "NaN/inf", "finite numbers")
    return ds


def terminate_on_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit(143)`` so that ``finally`` blocks and :func:`atomic_write`
    remove their temporary files (Python's default SIGTERM ends the process without unwinding).
    Call it from the main thread of a program (the CLI does)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def _raise(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _raise)


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
