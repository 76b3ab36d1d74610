"""The guard that drops Numba's on-disk cache when a kernel source changes (kernels/__init__)."""

import shutil

import pytest
from pathlib import Path

import recoilsim.kernels as kernels
from recoilsim.kernels import drop_stale_numba_cache


def _copy_kernels(tmp_path: Path) -> Path:
    src = Path(kernels.__file__).parent
    dst = tmp_path / "kernels"
    dst.mkdir()
    for f in src.glob("*.py"):
        shutil.copy(f, dst / f.name)
    return dst


def test_cache_dropped_only_when_a_source_changes(tmp_path):
    d = _copy_kernels(tmp_path)
    cache = d / "__pycache__"
    cache.mkdir()
    (cache / "bricks.simulate_bricks-1.py311.nbi").write_bytes(b"old index")
    (cache / "bricks.simulate_bricks-1.py311.1.nbc").write_bytes(b"old code")
    (cache / "bricks.cpython-311.pyc").write_bytes(b"python bytecode")
    assert drop_stale_numba_cache(d, cache)  # no stamp yet: dropped
    assert not list(cache.glob("*.nb*")) and (cache / "bricks.cpython-311.pyc").exists()
    (cache / "bricks.simulate_bricks-1.py311.nbi").write_bytes(b"new index")
    assert not drop_stale_numba_cache(d, cache)  # sources unchanged: kept
    assert (cache / "bricks.simulate_bricks-1.py311.nbi").exists()
    # a change in a module the cached function only calls into
    with open(d / "cross_section.py", "a") as fh:
        fh.write("\n# edited\n")
    assert drop_stale_numba_cache(d, cache)
    assert not (cache / "bricks.simulate_bricks-1.py311.nbi").exists()


def test_read_only_cache_folder_is_left_alone(tmp_path):
    d = _copy_kernels(tmp_path)
    cache = d / "__pycache__"
    cache.write_text("not a folder")  # makes every write fail
    assert drop_stale_numba_cache(d, cache) is False


def test_stale_cache_cleanup_honours_numba_cache_dir(tmp_path, monkeypatch):
    """With NUMBA_CACHE_DIR set Numba caches there, so the stamp and the cleanup go there too."""
    from numba.core import config

    d = _copy_kernels(tmp_path)
    user = tmp_path / "numba-cache"
    monkeypatch.setattr(config, "CACHE_DIR", str(user))
    cache = kernels.numba_cache_dir(d)
    assert cache is not None and user in cache.parents  # <user>/<kernels folder>_<hash of its path>
    cache.mkdir(parents=True, exist_ok=True)
    stale = cache / "bricks.simulate_bricks-1.py311.nbi"
    stale.write_bytes(b"old index")
    assert drop_stale_numba_cache(d)  # default: the folder Numba uses
    assert not stale.exists() and (cache / "recoilsim-kernels.sha256").is_file()
    assert not (d / "__pycache__" / "recoilsim-kernels.sha256").exists()


def _package_copy(tmp_path: Path) -> Path:
    """recoilsim with its kernels in a tree whose kernel __pycache__ is a file (not writable)."""
    root = Path(kernels.__file__).resolve().parents[1]
    pkg = tmp_path / "site" / "recoilsim"
    shutil.copytree(root / "recoilsim", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(root / "kernels", pkg / "kernels", ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "kernels" / "__pycache__").write_text("not a folder")
    return tmp_path / "site"


def test_no_writable_cache_location_compiles_without_cache(tmp_path):
    """Numba used to die with "cannot cache function ...: no locator available"."""
    import os
    import subprocess
    import sys

    site = _package_copy(tmp_path)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    env = dict(os.environ, PYTHONPATH=str(site), NUMBA_CACHE_DIR=str(blocker / "numba"),
               XDG_CACHE_HOME=str(blocker / "xdg"), HOME=str(blocker))
    code = ("import warnings, math\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    import recoilsim.kernels as k\n"
            "    from recoilsim.kernels.kinematics import flight_time_ns\n"
            "assert k.__file__.startswith(%r), k.__file__\n"
            "print([str(x.message) for x in w])\n"
            "print(flight_time_ns(9.0, 63.0, 0.6, False))\n" % str(site))
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    warned, value = res.stdout.strip().splitlines()
    assert "no writable Numba cache folder" in warned
    # classical time of flight t = L / v, v = sqrt(2 E / m): 9 MeV, 63 u (931.494 MeV/c^2 each), 0.6 m
    import math

    v_m_per_ns = 0.299792458 * math.sqrt(2 * 9.0 / (63.0 * 931.49410242))
    assert float(value) == pytest.approx(0.6 / v_m_per_ns, rel=1e-12)
