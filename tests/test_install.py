"""The installed package: recoilsim.kernels importable, no bare top-level ``kernels`` module."""

import os
import subprocess
import sys
from pathlib import Path


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


def _build_wheel(tmp_path):
    """Build the wheel (not an editable install) from a copy of the tree; returns its path."""
    import shutil

    root, _ = _listed_packages()
    # build from a copy: setuptools leaves build/ in the source tree, and a stale build/lib there
    # would hide a module missing from the list
    src = tmp_path / "src"
    shutil.copytree(root, src, ignore=shutil.ignore_patterns(".venv", "build", "*.egg-info", "__pycache__",
                                                              ".git", ".hypothesis", ".benchmarks"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path), str(src)], check=True, capture_output=True)
    return next(tmp_path.glob("recoilsim-*.whl"))


def test_wheel_holds_every_module(tmp_path):
    """Every source module is inside the wheel."""
    import zipfile

    root, _ = _listed_packages()
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    want = {"recoilsim/" + str(p.relative_to(root / "recoilsim")) for p in (root / "recoilsim").rglob("*.py")}
    want |= {"recoilsim/kernels/" + p.name for p in (root / "kernels").glob("*.py")}
    want |= {"recoilsim/forward/kernel_compile_plan.json"}  # package data: the cold start's plan
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


def test_installed_wheel_runs_the_demo_outside_the_checkout(tmp_path):
    """The wheel installed into a fresh virtual environment runs ``recoilsim demo`` from a folder
    outside the checkout (an editable install hides missing subpackages: issue 15.1).

    The fresh environment gets the wheel only; its dependencies come from this environment's
    site-packages through a path entry (a plain path: this environment's .pth files, among them
    the editable install's finder, are not processed there), so no download is needed.
    """
    import site
    import venv

    wheel = _build_wheel(tmp_path)
    env = tmp_path / "fresh-venv"
    venv.EnvBuilder(with_pip=False).create(env)
    py = env / "bin" / "python"
    sp = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip())
    deps = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (sp / "zz-deps.pth").write_text("\n".join(deps) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target", str(sp),
                    str(wheel)], check=True, capture_output=True)
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = ("import sys, recoilsim; print(recoilsim.__file__); from recoilsim.cli import app; "
            "sys.argv = ['recoilsim', 'demo', '-o', 'demo-out']; app()")
    env_vars = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env_vars["NUMBA_CACHE_DIR"] = str(tmp_path / "numba-cache")
    out = subprocess.run([str(py), "-c", code], cwd=work, capture_output=True, text=True, env=env_vars)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert out.stdout.splitlines()[0].startswith(str(sp)), out.stdout.splitlines()[0]
    for name in ("reference_spectra.nc", "reference_spectra.csv", "reference_spectra.png"):
        assert (work / "demo-out" / name).stat().st_size > 0, name
