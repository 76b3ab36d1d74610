"""Numba-jitted numerical core of recoilsim (installed as ``recoilsim.kernels``).

Plain numpy arrays and scalars in and out; no Python objects, no I/O, no xarray, and no
import of ``recoilsim`` itself: the dependency arrow points from recoilsim to the kernels only.

Importing this package first drops Numba's on-disk cache of the kernels if any kernel source
changed since it was written (:func:`drop_stale_numba_cache`, in the folder Numba caches in,
``NUMBA_CACHE_DIR`` included): the only file access here. Where no cache folder can be written
the kernels compile without a cache, with a warning (:func:`compile_without_cache`).

Internal units: energies in MeV, areal densities in 1e15 atoms/cm2, stopping in
eV/(1e15 atoms/cm2), masses in u, times in ns, lengths in m, angles in radians.
"""

import hashlib
import os
import tempfile
import warnings
from pathlib import Path


def numba_cache_dirs(kernel_dir: Path) -> list[Path]:
    """Where Numba's ``cache=True`` would cache the kernels, in Numba's order of preference:
    ``NUMBA_CACHE_DIR`` (``numba.config.CACHE_DIR``) if set, the kernels' ``__pycache__``,
    the user-wide cache folder (numba.core.caching: UserProvided, InTree, UserWide locators)."""
    from numba.core import config
    from numba.core.caching import UserProvidedCacheLocator
    from numba.misc.appdirs import AppDirs

    sub = UserProvidedCacheLocator.get_suitable_cache_subpath(str(kernel_dir / "__init__.py"))
    dirs = [Path(config.CACHE_DIR) / sub] if config.CACHE_DIR else []
    dirs.append(kernel_dir / "__pycache__")
    dirs.append(Path(AppDirs(appname="numba", appauthor=False).user_cache_dir) / sub)
    return dirs


def _writable(directory: Path) -> bool:
    """Numba's own test of a cache folder: create it, then a temporary file in it."""
    try:
        os.makedirs(directory, exist_ok=True)
        tempfile.TemporaryFile(dir=directory).close()
    except OSError:
        return False
    return True


def numba_cache_dir(kernel_dir: Path) -> Path | None:
    """The folder Numba will cache the kernels in, or None if no candidate can be written."""
    return next((d for d in numba_cache_dirs(kernel_dir) if _writable(d)), None)


def drop_stale_numba_cache(kernel_dir: Path, cache: Path | None = None) -> bool:
    """Delete Numba's on-disk cache of the kernels when any kernel source has changed.

    Numba's ``cache=True`` keys a cached function on its own source file only: a kernel that
    calls a function from another kernel module keeps running the old compiled code after that
    module changes (seen in this project). So a SHA-256 of every ``*.py`` in ``kernel_dir`` is kept
    beside the cache (``recoilsim-kernels.sha256`` in ``cache``, by default the folder Numba
    uses: :func:`numba_cache_dir`, which honours ``NUMBA_CACHE_DIR``); when it differs, the
    cached ``*.nbi``/``*.nbc`` files there are deleted and everything recompiles once. Nothing is
    done where no cache folder can be written.

    Returns True if the cache was dropped.
    """
    if cache is None:
        cache = numba_cache_dir(kernel_dir)
        if cache is None:
            return False
    digest = hashlib.sha256()
    for src in sorted(kernel_dir.glob("*.py")):
        digest.update(src.name.encode() + b"\0" + src.read_bytes())
    digest = digest.hexdigest()
    stamp = cache / "recoilsim-kernels.sha256"
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    try:
        cache.mkdir(parents=True, exist_ok=True)
        for f in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            f.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache, prefix=".stamp-")
        with os.fdopen(fd, "w") as fh:
            fh.write(digest)
        os.replace(tmp, stamp)
    except OSError:
        return False
    return True


def compile_without_cache() -> None:
    """Make the kernels' ``cache=True`` a no-op (Numba's NullCache) instead of Numba's
    "cannot cache function ...: no locator available" error, for the kernels of this package
    only; used when no cache folder can be written."""
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    numba_enable = Dispatcher.enable_caching
    if getattr(numba_enable, "recoilsim_fallback", False):
        return

    def enable_caching(self):
        if getattr(self.py_func, "__module__", "").startswith(__name__ + "."):
            self._cache = NullCache()
        else:
            numba_enable(self)

    enable_caching.recoilsim_fallback = True
    Dispatcher.enable_caching = enable_caching


_KERNEL_DIR = Path(__file__).parent
_CACHE = numba_cache_dir(_KERNEL_DIR)
if _CACHE is None:
    warnings.warn("no writable Numba cache folder (NUMBA_CACHE_DIR, the kernels' __pycache__, the user cache): "
                  "the kernels compile without an on-disk cache, on every run", RuntimeWarning, stacklevel=2)
    compile_without_cache()
else:
    drop_stale_numba_cache(_KERNEL_DIR, _CACHE)
