"""What ``recoilsim demo`` and ``recoilsim simulate`` import while a cold start waits.

A warm ``recoilsim demo`` is almost all imports (numpy, numba, xarray and pandas, matplotlib,
netCDF4; benchmarks/README.md, "Session 7, cold and warm demo"). :data:`OUTPUT_MODULES` /
:func:`import_output_modules`: what writing a simulation's outputs imports (netCDF4, matplotlib's
Agg canvas and figure, the plot modules), imported while a cold start waits for its worker
(:func:`recoilsim.forward.cold_start.compile_ahead`'s ``chores``) rather than after the compile.
"""

from __future__ import annotations

import importlib

#: Modules the outputs of ``demo``/``simulate`` need (netCDF, CSV and PNG writers).
OUTPUT_MODULES = ("netCDF4", "xarray.backends.netCDF4_", "matplotlib.figure", "matplotlib.backends.backend_agg",
                  "matplotlib.ticker", "recoilsim.io.atomic", "recoilsim.plots.spectra", "recoilsim.plots.views")


def import_output_modules() -> None:
    """Import :data:`OUTPUT_MODULES` (those that are installed)."""
    for name in OUTPUT_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
