"""The installed package: recoilsim.kernels importable, no bare top-level ``kernels`` module."""

import subprocess
import sys


def test_kernels_import_path_and_no_top_level_kernels(tmp_path):
    code = ("import importlib.util, recoilsim, recoilsim.kernels, recoilsim.kernels.bricks; "
            "print(importlib.util.find_spec('kernels') is None)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def _listed_packages():
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    with open(root / "pyproject.toml", "rb") as f:
        cfg = tomllib.load(f)["tool"]["setuptools"]
    return root, set(cfg["packages"])


def test_every_subpackage_is_listed_in_pyproject():
    """A subpackage missing from pyproject's list is silently left out of the wheel (issue 15.1)."""
    root, listed = _listed_packages()
    found = {".".join(p.parent.relative_to(root).parts) for p in (root / "recoilsim").rglob("__init__.py")}
    assert found - listed == set(), f"subpackages not in pyproject.toml: {sorted(found - listed)}"


def test_wheel_holds_every_module(tmp_path):
    """Build the wheel (not an editable install) and check that every source module is inside."""
    import zipfile

    import shutil

    root, _ = _listed_packages()
    # build from a copy: setuptools leaves build/ in the source tree, and a stale build/lib there
    # would hide a module missing from the list
    src = tmp_path / "src"
    shutil.copytree(root, src, ignore=shutil.ignore_patterns(".venv", "build", "*.egg-info", "__pycache__",
                                                              ".git", ".hypothesis", ".benchmarks"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(src)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("recoilsim-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    want = {"recoilsim/" + str(p.relative_to(root / "recoilsim")) for p in (root / "recoilsim").rglob("*.py")}
    want |= {"recoilsim/kernels/" + p.name for p in (root / "kernels").glob("*.py")}
    assert want - names == set(), f"missing from the wheel: {sorted(want - names)[:10]}"


def test_top_level_api_names_resolve():
    """Every name of the top-level API resolves to an object of that name."""
    import recoilsim

    for name in recoilsim.__all__:
        obj = getattr(recoilsim, name)
        assert obj is not None
        if callable(obj) and hasattr(obj, "__name__"):
            assert obj.__name__ == name
    assert recoilsim.simulate(recoilsim.reference_experiment())["counts"].sum() > 0
