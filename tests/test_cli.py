"""The command-line interface (typer's CliRunner): kinematics, demo, simulate, errors."""

import csv
import math
import os
import shutil
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from recoilsim.cli import app, kinematics_rows
from recoilsim.model.experiment import reference_experiment

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


# --- kinematics ------------------------------------------------------------------------------

def test_kinematics_reference_values():
    res = run("kinematics")
    assert res.exit_code == 0, res.output
    out = res.stdout
    # check values (two-body kinematics and relativistic flight time, computed by hand): 9 MeV 63Cu, 40 deg, 7Li: K = 0.21183, E2 = 1.9065 MeV, 82.876 ns over 0.600 m
    line = next(l for l in out.splitlines() if "7Li" in l)
    assert "0.21183" in line and "1.9065" in line and "82.876" in line
    for iso in ("6Li", "31P", "16O", "14N", "12C", "13C"):
        assert iso in out


def test_kinematics_rows_closed_form():
    rows = {r["isotope"]: r for r in kinematics_rows(reference_experiment())}
    exp = reference_experiment()
    m1 = exp.beam.isotope.mass_u
    m2 = next(i.mass_u for i in exp.recoil_isotopes() if i.name == "7Li")
    assert abs(m1 - 62.9296) < 1e-3 and abs(m2 - 7.0160) < 1e-3  # AME2020
    k = 4 * m1 * m2 * math.cos(math.radians(40)) ** 2 / (m1 + m2) ** 2
    assert math.isclose(rows["7Li"]["K"], k, rel_tol=1e-9)
    assert math.isclose(rows["7Li"]["energy_MeV"], 9 * k, rel_tol=1e-9)
    # Rutherford recoil cross section (lab) by hand; Andersen screening lowers it by < 2 %
    e2 = 1.43996448  # MeV fm
    z1, z2, e1 = 29, 3, 9.0
    s = (z1 * z2 * e2 / (2 * e1)) ** 2 * (1 + m1 / m2) ** 2 / math.cos(math.radians(40)) ** 3  # fm^2/sr
    s_mb = s * 10.0
    assert 0.97 * s_mb < rows["7Li"]["cross_section_mb_sr"] <= s_mb * 1.0000001


def test_kinematics_from_file_and_screening_none(tmp_path):
    p = tmp_path / "k.toml"
    p.write_text('reference = true\nrecoils = ["7Li"]\n[options]\nscreening = "none"\n')
    res = run("kinematics", p)
    assert res.exit_code == 0, res.output
    assert "7Li" in res.stdout and "6Li" not in res.stdout and "screening none" in res.stdout
    res = run("kinematics", EXAMPLES / "potku_ecaart.toml")
    assert res.exit_code == 0 and "55Mn" in res.stdout and "35Cl" in res.stdout


# --- errors ----------------------------------------------------------------------------------

def test_error_is_one_red_line_exit_2(tmp_path):
    res = run("kinematics", tmp_path / "missing.toml")
    assert res.exit_code == 2
    lines = [l for l in res.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "missing.toml" in lines[0]
    assert "Traceback" not in res.output
    bad = tmp_path / "bad.toml"
    bad.write_text("reference = true\n[detector]\nflight_lenght_m = 0.6\n")
    res = run("simulate", bad, "--out", tmp_path / "o")
    assert res.exit_code == 2
    assert "detector.flight_lenght_m" in res.stderr and "flight_length_m" in res.stderr
    bad.write_text("reference = true\n[beam\n")
    res = run("kinematics", bad)
    assert res.exit_code == 2 and "line 2" in res.stderr


def test_bad_format_and_out_is_file(tmp_path):
    res = run("simulate", EXAMPLES / "reference.toml", "--format", "nc,xls", "--out", tmp_path)
    assert res.exit_code == 2 and "--format" in res.stderr
    f = tmp_path / "afile"
    f.write_text("x")
    res = run("demo", "--out", f)
    assert res.exit_code == 2 and "--out" in res.stderr
    assert f.read_text() == "x"


def test_no_args_shows_help():
    res = run()
    assert "demo" in res.output and "simulate" in res.output and "kinematics" in res.output


# --- demo and simulate (need recoilsim.forward.simulate) ------------------------------------------------

def test_demo_writes_nc_csv_png(tmp_path):
    from recoilsim.io.atomic import read_netcdf

    out = tmp_path / "demo"
    res = run("demo", "--out", out)
    assert res.exit_code == 0, res.output
    for ext in ("nc", "csv", "png"):
        assert (out / f"reference_spectra.{ext}").is_file()
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    ds = read_netcdf(out / "reference_spectra.nc")
    assert list(ds["element"].values) == ["Li", "P", "O", "N", "C"]
    with open(out / "reference_spectra.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["channel", "time_ns", "Li", "P", "O", "N", "C", "Li_depth_nm"]
    assert len(rows) == 1 + ds.sizes["channel"]
    li = np.array([float(r[2]) for r in rows[1:]])
    assert np.allclose(li, ds["counts"].sel(element="Li").values, rtol=1e-9)
    t = np.array([float(r[1]) for r in rows[1:]])
    assert np.allclose(t, ds["time_ns"].values, rtol=1e-9)
    assert (out / "reference_spectra.png").read_bytes()[:4] == b"\x89PNG"
    # the table and the Li surface / interface channels (paper: 520 and 570)
    assert "Li" in res.stdout and "LiPON" in res.stdout
    # C lies in the top layer (0.5 at.% in Cu): its first layer is named, at 0 nm, not '-'
    c_row = next(l for l in res.stdout.splitlines() if l.strip("│ ").startswith("C "))
    assert "Cu (at 0 nm)" in c_row, c_row
    line = next(l for l in res.stdout.splitlines() if l.startswith("Li: surface"))
    nums = [float(x) for x in __import__("re").findall(r"channel (\d+\.\d)", line)]
    assert abs(nums[0] - 520) < 3 and abs(nums[1] - 570) < 5
    # a second run refuses to replace the outputs unless --overwrite (then atomically)
    before = (out / "reference_spectra.csv").read_bytes()
    res = run("demo", "--out", out)
    assert res.exit_code == 2 and "--overwrite" in res.stderr
    assert (out / "reference_spectra.csv").read_bytes() == before
    assert run("demo", "--out", out, "--overwrite").exit_code == 0
    assert not (out / "INCOMPLETE").exists()


def test_simulate_example(tmp_path):
    out = tmp_path / "sim"
    res = run("simulate", EXAMPLES / "reference.toml", "--out", out, "--format", "csv,svg")
    assert res.exit_code == 0, res.output
    assert (out / "reference_spectra.csv").is_file() and (out / "reference_spectra.svg").is_file()
    assert not (out / "reference_spectra.nc").exists()
    with open(out / "reference_spectra.csv", newline="") as fh:
        header = next(csv.reader(fh))
    assert header[:3] == ["channel", "time_ns", "Li"] and header[-1] == "Li_depth_nm"


def test_simulate_never_overwrites_input(tmp_path):
    src = tmp_path / "exp.toml"
    shutil.copy(EXAMPLES / "reference.toml", src)
    before = src.read_bytes()
    os.link(src, tmp_path / "exp_spectra.csv")  # the output path is the input file under another name
    res = run("simulate", src, "--out", tmp_path, "--format", "csv")
    assert res.exit_code == 2 and "input" in res.stderr
    assert src.read_bytes() == before
    (tmp_path / "exp_spectra.csv").unlink()
    os.symlink(src, tmp_path / "exp_spectra.nc")
    res = run("simulate", src, "--out", tmp_path, "--format", "nc")
    assert res.exit_code == 2 and "input" in res.stderr
    assert src.read_bytes() == before


def test_simulate_potku_example_with_tofe(tmp_path):
    out = tmp_path / "pk"
    res = run("simulate", EXAMPLES / "potku_ecaart.toml", "--out", out, "--tofe", "--format", "nc,png")
    assert res.exit_code == 0, res.output
    assert (out / "potku_ecaart_spectra.png").is_file() and (out / "potku_ecaart_tofe.png").is_file()
    from recoilsim.io.atomic import read_netcdf

    ds = read_netcdf(out / "potku_ecaart_spectra.nc")
    assert "tofe" in ds and set(ds["element"].values) == {"Li", "O", "Mn"}


def test_simulate_empty_spectrum_warns(tmp_path):
    p = tmp_path / "empty.toml"
    p.write_text("reference = true\n[detector]\ncalibration_b_ns = 5000.0\n")
    res = run("simulate", p, "--out", tmp_path / "o", "--format", "csv")
    assert res.exit_code == 0, res.output
    assert "warning:" in res.stderr and "empty" in res.stderr
    assert (tmp_path / "o" / "empty_spectra.csv").is_file()


def test_default_outputs_are_git_ignored():
    """bench.json and every command's default output folder are in .gitignore."""
    import inspect

    from recoilsim import cli

    ignored = set((Path(__file__).resolve().parents[1] / ".gitignore").read_text().split())
    defaults = {str(inspect.signature(f).parameters["out"].default.default) for f in (cli.demo, cli.paper, cli.fit_cmd)}
    assert defaults == {"recoilsim-demo", "recoilsim-paper", "fit-out"}
    for name in defaults:
        assert f"{name}/" in ignored
    assert "bench.json" in ignored


def test_docstring_lists_every_command():
    from recoilsim import cli

    names = {c.name or c.callback.__name__ for c in cli.app.registered_commands}
    assert names == {"demo", "simulate", "kinematics", "paper", "fit", "profiles"}
    for n in names:
        assert f"``{n}``" in cli.__doc__


def test_figures_are_saved_one_way():
    """Only recoilsim/plots/save.py calls savefig; every figure goes through save_figure."""
    root = Path(__file__).resolve().parents[1] / "recoilsim"
    callers = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if ".savefig(" in p.read_text())
    assert callers == ["plots/save.py"]


def test_a_command_spares_the_garbage_collector(tmp_path):
    """Start-up (issue 17): a command raises the first GC threshold (no full collections over
    numba's, xarray's and matplotlib's objects) and freezes the heap at exit (no last scan of
    it); measured, 0.3-0.5 s each of a 2.5 s warm demo. Here on a command that fails fast."""
    import subprocess
    import sys

    (tmp_path / "a-file").write_text("not a folder")
    code = ("import atexit, gc, sys\n"
            "atexit.register(lambda: print(gc.get_threshold()[0], gc.get_freeze_count() > 0))\n"
            "from recoilsim.cli import app\n"
            "sys.argv = ['recoilsim', 'demo', '-o', 'a-file']\n"
            "app()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    from recoilsim.cli import GC_THRESHOLD_0

    assert GC_THRESHOLD_0 >= 10_000 and out.stdout.split() == [str(GC_THRESHOLD_0), "True"]
