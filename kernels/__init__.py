"""Numba-jitted numerical core of recoilsim (installed as ``recoilsim.kernels``).

Plain numpy arrays and scalars in and out; no Python objects, no I/O, no xarray, and no
import of ``recoilsim`` itself: the dependency arrow points from recoilsim to the kernels only.

Importing this package first drops Numba's on-disk cache of the kernels if any kernel source
changed since it was written (:func:`drop_stale_numba_cache`): the only file access here.

Internal units: energies in MeV, areal densities in 1e15 atoms/cm2, stopping in
eV/(1e15 atoms/cm2), masses in u, times in ns, lengths in m, angles in radians.
"""

import hashlib
import os
import tempfile
from pathlib import Path


def drop_stale_numba_cache(kernel_dir: Path) -> bool:
    """Delete Numba's on-disk cache of the kernels when any kernel source has changed.

    Numba's ``cache=True`` keys a cached function on its own source file only: a kernel that
    calls a function from another kernel module keeps running the old compiled code after that
    module changes (seen in this project). So a SHA-256 of every ``*.py`` in ``kernel_dir`` is kept
    beside the cache (``__pycache__/recoilsim-kernels.sha256``); when it differs, the cached
    ``*.nbi``/``*.nbc`` files there are deleted and everything recompiles once. Where the folder
    is read-only (an installed package; Numba then caches in the user-wide folder) nothing is done.

    Returns True if the cache was dropped.
    """
    digest = hashlib.sha256()
    for src in sorted(kernel_dir.glob("*.py")):
        digest.update(src.name.encode() + b"\0" + src.read_bytes())
    digest = digest.hexdigest()
    cache = kernel_dir / "__pycache__"
    stamp = cache / "recoilsim-kernels.sha256"
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    try:
        cache.mkdir(exist_ok=True)
        for f in list(cache.glob("*.nbi")) + list(cache.glob("*.nbc")):
            f.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache, prefix=".stamp-")
        with os.fdopen(fd, "w") as fh:
            fh.write(digest)
        os.replace(tmp, stamp)
    except OSError:
        return False
    return True


drop_stale_numba_cache(Path(__file__).parent)
