"""The guard that drops Numba's on-disk cache when a kernel source changes (kernels/__init__)."""

import shutil
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
    assert drop_stale_numba_cache(d)  # no stamp yet: dropped
    assert not list(cache.glob("*.nb*")) and (cache / "bricks.cpython-311.pyc").exists()
    (cache / "bricks.simulate_bricks-1.py311.nbi").write_bytes(b"new index")
    assert not drop_stale_numba_cache(d)  # sources unchanged: kept
    assert (cache / "bricks.simulate_bricks-1.py311.nbi").exists()
    # a change in a module the cached function only calls into
    with open(d / "cross_section.py", "a") as fh:
        fh.write("\n# edited\n")
    assert drop_stale_numba_cache(d)
    assert not (cache / "bricks.simulate_bricks-1.py311.nbi").exists()


def test_read_only_cache_folder_is_left_alone(tmp_path):
    d = _copy_kernels(tmp_path)
    (d / "__pycache__").write_text("not a folder")  # makes every write fail
    assert drop_stale_numba_cache(d) is False
