"""``recoilsim fit`` with spectra files (issue 15 items 2, 3 and 9): the package's readers, clean
errors, outputs checked before the fit, never over an input, written atomically."""

import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recoilsim.cli import app
from recoilsim.errors import RecoilsimError
from recoilsim.io.experiment_file import load_experiment
from recoilsim.workflows.fit_spectra import read_measurement

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
REF = EXAMPLES / "reference.toml"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def _clean_error(res, code=2, *words):
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)
    assert res.stderr.startswith("error: ")
    for w in words:
        assert w in res.stderr, res.stderr


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """The spectra of examples/reference.toml as simulate writes them (CSV and netCDF)."""
    out = tmp_path_factory.mktemp("sim")
    res = run("simulate", REF, "-o", out, "-f", "csv,nc")
    assert res.exit_code == 0, res.output
    return out / "reference_spectra.csv", out / "reference_spectra.nc"


def test_fit_reads_the_csv_that_simulate_writes(simulated, tmp_path):
    csv_path, _ = simulated
    out = tmp_path / "fit"
    res = run("fit", REF, csv_path, "-o", out)
    assert res.exit_code == 0, res.output
    assert sorted(os.listdir(out)) == ["fit.nc", "fit.png", "summary.txt"]  # no marker, no temp file
    from recoilsim.io.atomic import read_netcdf

    ds = read_netcdf(out / "fit.nc", finite=())
    assert set(ds["element"].values) == {"Li", "P", "O", "N", "C"}


def test_measurement_from_netcdf_csv_and_channel_counts_table(simulated, tmp_path):
    """The three formats give the counts simulate produced (read back from the netCDF with xarray)."""
    import xarray as xr

    csv_path, nc_path = simulated
    exp = load_experiment(REF)
    with xr.open_dataset(nc_path) as ds:
        li = ds["counts"].sel(element="Li").values.copy()
        elements = [str(e) for e in ds["element"].values]
    from_nc = read_measurement(nc_path, exp)
    assert np.array_equal(from_nc.sel(element="Li").values, li)
    from_csv = read_measurement(csv_path, exp)
    assert list(from_csv) == elements
    assert np.allclose(from_csv["Li"], li, rtol=1e-9)
    nz = np.flatnonzero(li)  # a sparse channel,counts table of the non-zero channels, as --help describes
    table = tmp_path / "li.txt"
    table.write_text("channel,counts\n" + "".join(f"{c},{float(li[c])!r}\n" for c in nz))
    got = read_measurement(table, exp, element="Li")
    assert list(got) == ["Li"] and np.allclose(got["Li"], li, rtol=1e-12)
    table.write_text("".join(f"{c} {float(li[c])!r}\n" for c in nz))  # whitespace, no header
    assert np.allclose(read_measurement(table, exp, element="Li")["Li"], li, rtol=1e-12)


@pytest.mark.parametrize("content, words", [
    ("", ["no data"]),                                   # empty
    ("# only a comment\n", ["no data"]),
    ("5\n7\n9\n", ["two columns"]),                      # one column
    ("0,5\n1,abc\n", ["line 2", "abc", "a number"]),      # text cell
    ("0,5\n1024,3\n", ["1024", "0 .. 1023"]),            # channel >= n_channels
    ("0,5\n-1,3\n", ["-1", "non-negative integer channel"]),
    ("0,5\n2.5,3\n", ["2.5", "non-negative integer channel"]),
    ("0,5\n1,-3\n", ["-3", "counts >= 0"]),
    ("0,5\n0,3\n", ["duplicate"]),
    ("0\x00,5\n", ["NUL"]),
])
def test_bad_spectra_files_are_clean_errors(tmp_path, content, words):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    res = run("fit", REF, bad, "-o", tmp_path / "out")
    _clean_error(res, 2, *words)
    assert not (tmp_path / "out").exists()  # nothing created for a fit that never ran


def test_bad_netcdf_spectra(tmp_path, simulated):
    import xarray as xr

    _, nc_path = simulated
    with xr.open_dataset(nc_path) as ds:
        ds = ds.load()
    ds["counts"][0, 600] = np.nan
    p = tmp_path / "nan.nc"
    ds.to_netcdf(p)
    _clean_error(run("fit", REF, p, "-o", tmp_path / "o"), 2, "NaN")
    junk = tmp_path / "junk.nc"
    junk.write_text("channel,counts\n0,1\n")
    _clean_error(run("fit", REF, junk, "-o", tmp_path / "o"), 2, "netCDF")
    small = ds.isel(channel=slice(0, 100))
    small["counts"][:] = 0.0
    p2 = tmp_path / "short.nc"
    small.to_netcdf(p2)
    _clean_error(run("fit", REF, p2, "-o", tmp_path / "o"), 2, "n_channels")


def test_fit_never_overwrites_its_input(simulated, tmp_path):
    """`fit x.toml same/fit.nc -o same` used to overwrite its own input and exit 0."""
    _, nc_path = simulated
    same = tmp_path / "same"
    same.mkdir()
    src = same / "fit.nc"
    src.write_bytes(nc_path.read_bytes())
    before = src.read_bytes()
    for extra in ([], ["--overwrite"]):
        res = run("fit", REF, src, "-o", same, *extra)
        _clean_error(res, 2, "input")
        assert src.read_bytes() == before
    assert sorted(os.listdir(same)) == ["fit.nc"]


def test_output_problems_are_found_before_the_fit(simulated, tmp_path, monkeypatch):
    """A file where the folder should be, or a folder under a file, or earlier outputs without
    --overwrite, stop the command before anything is fitted."""
    import recoilsim.fitting.driver as driver

    def no_fit(*a, **k):
        raise AssertionError("the fit ran before the output checks")

    monkeypatch.setattr(driver, "fit", no_fit)
    csv_path, _ = simulated
    f = tmp_path / "afile"
    f.write_text("x")
    _clean_error(run("fit", REF, csv_path, "-o", f), 2, "--out", "a folder")
    _clean_error(run("fit", REF, csv_path, "-o", f / "sub"), 2, "--out", "is a file")
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "summary.txt").write_text("an earlier fit")
    _clean_error(run("fit", REF, csv_path, "-o", earlier), 2, "--overwrite")
    assert (earlier / "summary.txt").read_text() == "an earlier fit"


def test_unwritable_output_folder_found_before_the_fit(simulated, tmp_path, monkeypatch):
    import recoilsim.fitting.driver as driver

    monkeypatch.setattr(driver, "fit", lambda *a, **k: pytest.fail("fit ran"))
    csv_path, _ = simulated
    if os.geteuid() == 0:  # root writes into read-only folders: use a read-only file system
        target = Path("/proc/recoilsim-test-out")
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        target = ro / "out"
    _clean_error(run("fit", REF, csv_path, "-o", target), 2, "--out", "written")
    assert not target.exists()


def test_negative_bootstrap_is_a_clean_usage_error(simulated, tmp_path):
    csv_path, _ = simulated
    res = run("fit", REF, csv_path, "-o", tmp_path / "o", "--bootstrap", "-3")
    assert res.exit_code == 2 and "Traceback" not in res.output
    text = " ".join(res.output.replace("│", " ").split())
    assert "--bootstrap" in text and "greater than or equal to 0" in text
    from recoilsim.workflows.fit_spectra import run as run_fit

    with pytest.raises(RecoilsimError, match="bootstrap"):
        run_fit(REF, [csv_path], tmp_path / "o", n_bootstrap=-3)


def test_fit_without_spectra_says_pass_a_spectra_file(tmp_path):
    res = run("fit", REF, "-o", tmp_path / "o")
    _clean_error(res, 2, "pass a spectra file")
    assert not (tmp_path / "o").exists()
