"""One BLAS thread while a fit runs.

The fits' matrices are small (a few thousand rows, < 200 columns): OpenBLAS threads gain nothing
there and, on a shared 2-core machine, spin against the other processes. Measured on the reference
fit benchmark (session 2): 0.14 s with one thread; 0.25-0.37 s with two while another process
ran, and 0.5-4.8 s (median 2.9 s) under heavier load.
"""

from __future__ import annotations

import contextlib

__all__ = ["one_blas_thread"]

_controller = None


def one_blas_thread() -> contextlib.AbstractContextManager:
    """Context that holds the BLAS libraries to one thread (threadpoolctl; a no-op without it).

    ``threadpoolctl.threadpool_limits`` scans the process's loaded libraries on every call
    (~1 ms, 1-2 % of the reference fit); the scan is done once and its controller kept. By the
    first call numpy and scipy.linalg, whose BLAS libraries are the ones that matter, are loaded.
    """
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover
            return contextlib.nullcontext()
        import scipy.linalg  # noqa: F401  (its BLAS must be loaded before the scan)
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")
