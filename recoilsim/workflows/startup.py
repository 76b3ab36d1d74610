"""What a command imports, and when: the start-up of ``recoilsim demo`` and ``recoilsim simulate``.

A warm ``recoilsim demo`` is almost all imports (numpy, numba, xarray and pandas, matplotlib,
netCDF4; benchmarks/README.md, "Session 7, cold and warm demo"). Two things here:

* :func:`defer_dask`: with dask installed, xarray imports ``dask`` and ``dask.array`` (and
  through its ``fft`` module ``scipy.fftpack``; ~0.15-0.25 s) the first time it builds a
  Variable, only to test whether the data is a dask array. No command of the CLI gives xarray
  dask arrays; the test stays exact without the import (an object can only be a dask array, or
  a dask collection, once dask is imported).
* :data:`OUTPUT_MODULES` / :func:`import_output_modules`: what writing a simulation's outputs
  imports (netCDF4, matplotlib's Agg canvas and figure, the plot modules), to be imported while
  a cold start waits for its worker (:func:`recoilsim.forward.cold_start.compile_ahead`'s
  ``chores``) rather than after the compile.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

#: Modules the outputs of ``demo``/``simulate`` need (netCDF, CSV and PNG writers).
OUTPUT_MODULES = ("netCDF4", "xarray.backends.netCDF4_", "matplotlib.figure", "matplotlib.backends.backend_agg",
                  "matplotlib.ticker", "recoilsim.io.atomic", "recoilsim.plots.spectra", "recoilsim.plots.views")


class _DaskArrayType(type):
    """``isinstance(x, LazyDaskArray)`` is ``isinstance(x, dask.array.Array)`` once ``dask.array``
    is imported, and False before (no object can be a dask array then)."""

    def __instancecheck__(cls, obj) -> bool:
        mod = sys.modules.get("dask.array")
        return mod is not None and isinstance(obj, mod.Array)

    def __subclasscheck__(cls, sub) -> bool:
        mod = sys.modules.get("dask.array")
        return mod is not None and issubclass(sub, mod.Array)


class LazyDaskArray(metaclass=_DaskArrayType):
    """Stands for ``dask.array.Array`` in xarray's type tests without importing ``dask.array``."""


def defer_dask() -> bool:
    """Let xarray test for dask arrays without importing ``dask.array`` (see the module).

    xarray (2023.x to at least 2026.9) looks the type up once per process through
    ``xarray.namedarray.pycompat`` (``array_type("dask")``, cached in
    ``_cached_duck_array_modules``); this fills that cache entry with dask's version (from its
    package metadata), its module (imported when read) and :class:`LazyDaskArray` as the type.
    And ``xarray.namedarray.utils.is_dask_collection``, which imports ``dask`` (with ``psutil``
    and ``jinja2``, ~0.08 s) to test every array, answers False while ``dask`` is not imported. Nothing is changed (False) when dask is not
    installed, ``dask.array`` is imported already, xarray looked the type up already, or
    xarray's internals are not the expected ones: then xarray imports ``dask.array`` as usual.
    Imports xarray.

    Returns
    -------
    bool
        True if the entry was filled.
    """
    if "dask.array" in sys.modules or importlib.util.find_spec("dask") is None:
        return False
    try:
        from importlib.metadata import version

        from packaging.version import Version
        from xarray.namedarray import pycompat

        class LazyDaskModule(pycompat.DuckArrayModule):
            """xarray's entry for dask, without importing dask (``module`` imports it when read)."""

            def __init__(self):
                self.version = Version(version("dask"))
                self.type = (LazyDaskArray,)
                self.available = True

            @property
            def module(self):
                return importlib.import_module("dask")

        from xarray.namedarray import utils

        cache = pycompat._cached_duck_array_modules
        entry = LazyDaskModule()
        xarray_test = utils.is_dask_collection
    except (ImportError, AttributeError, TypeError, ValueError):
        return False
    if not isinstance(cache, dict) or "dask" in cache:
        return False
    cache["dask"] = entry

    def is_dask_collection(x) -> bool:
        # no object is a dask collection while dask is not imported
        return "dask" in sys.modules and xarray_test(x)

    utils.is_dask_collection = is_dask_collection
    return True


def import_output_modules() -> None:
    """Import :data:`OUTPUT_MODULES` (those that are installed)."""
    for name in OUTPUT_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
