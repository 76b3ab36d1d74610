"""What the commands import (recoilsim/workflows/startup.py): no dask.array for a simulation."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("dask")


def _run(code: str, tmp_path) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True,
                         cwd=tmp_path, env=dict(os.environ, RECOILSIM_COLD_START="0"), timeout=600)
    return out.stdout


def test_demo_does_not_import_dask_array(tmp_path):
    """xarray would import dask.array (and scipy.fftpack) for its first Variable; the demo's
    outputs (netCDF, CSV, PNG) are written all the same."""
    out = _run("""
        import sys
        from recoilsim.cli import app
        try:
            app(["demo", "--out", "d"])
        except SystemExit as e:
            assert not e.code, e.code
        print(sorted(m for m in ("dask", "dask.array", "scipy.fftpack", "dask.distributed") if m in sys.modules))
    """, tmp_path)
    assert out.strip().splitlines()[-1] == "[]", out
    assert {p.name for p in (tmp_path / "d").iterdir()} >= {"reference_spectra.nc", "reference_spectra.csv",
                                                           "reference_spectra.png", "reference_views.png"}


def test_dask_arrays_are_still_dask_arrays_to_xarray(tmp_path):
    """After defer_dask, a dask array imported later is recognised and stays lazy."""
    out = _run("""
        import sys
        import numpy as np
        import xarray as xr
        from recoilsim.workflows.startup import LazyDaskArray, defer_dask
        assert defer_dask() and "dask.array" not in sys.modules
        assert not isinstance(np.ones(3), LazyDaskArray)
        v = xr.DataArray(np.arange(4.0), dims="x")  # a Variable built without dask.array
        assert "dask" not in sys.modules and "dask.array" not in sys.modules
        import dask.array as da
        a = da.arange(6.0, chunks=2)
        assert isinstance(a, LazyDaskArray) and issubclass(type(a), LazyDaskArray)
        x = xr.DataArray(a, dims="x") * 2
        assert x.chunks == ((2, 2, 2),) and isinstance(x.data, da.Array)
        from xarray.namedarray.utils import is_duck_dask_array
        assert is_duck_dask_array(a) and not is_duck_dask_array(np.ones(2))
        from xarray.namedarray import pycompat
        import dask
        assert pycompat.array_type("dask") == (LazyDaskArray,) and pycompat.mod_version("dask").public == dask.__version__
        assert pycompat._get_cached_duck_array_module("dask").module is dask
        print(x.compute().values.tolist(), defer_dask())
    """, tmp_path)
    assert out.strip() == "[0.0, 2.0, 4.0, 6.0, 8.0, 10.0] False"
