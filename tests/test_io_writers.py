"""Writers and interrupts (issue 15 item 6): errors name the target, never the hidden temp file;
nothing half-written is left; SIGTERM cleans up; interrupted runs are marked incomplete; output
folders are checked before they are created."""

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from recoilsim.errors import RecoilsimError
from recoilsim.io import atomic
from recoilsim.io.atomic import atomic_write, write_netcdf
from recoilsim.io.outputs import MARKER, check_output_dir, writing
from recoilsim.io.spectra import write_spectrum


def _leftovers(folder: Path) -> list[str]:
    return sorted(f for f in os.listdir(folder) if f.endswith(".tmp"))


def _small_ds():
    return xr.Dataset({"counts": ("channel", np.arange(5.0))}, coords={"channel": np.arange(5)})


def _unwritable_folder(tmp_path: Path) -> Path:
    if os.geteuid() == 0:  # root writes into chmod 555 folders; /proc refuses new files to anyone
        return Path("/proc")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    return ro


@pytest.mark.parametrize("writer", ["atomic_write", "write_netcdf", "write_spectrum"])
def test_read_only_folder_names_the_target(tmp_path, writer):
    folder = _unwritable_folder(tmp_path)
    target = folder / "out.dat"
    with pytest.raises(RecoilsimError) as ei:
        if writer == "atomic_write":
            with atomic_write(target) as f:
                f.write("x")
        elif writer == "write_netcdf":
            write_netcdf(_small_ds(), target)
        else:
            write_spectrum(_small_ds()["counts"], target)
    msg = str(ei.value)
    assert str(target) in msg and ".tmp" not in msg and ei.value.field == "output file"


def test_full_disk_atomic_write_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "summary.txt"
    target.write_text("old content")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(RecoilsimError) as ei:
        with atomic_write(target) as f:
            f.write("new content" * 1000)
    assert str(target) in str(ei.value) and "No space left" in str(ei.value) and ".tmp" not in str(ei.value)
    assert target.read_text() == "old content" and _leftovers(tmp_path) == []


def test_full_disk_netcdf_runtime_error_is_caught(tmp_path, monkeypatch):
    """netCDF4 reports a full disk as RuntimeError('NetCDF: HDF error') after a partial write."""

    def half_then_fail(self, store, *a, **k):  # the store has created the file at the temp path
        raise RuntimeError("NetCDF: HDF error")

    monkeypatch.setattr(xr.Dataset, "dump_to_store", half_then_fail)
    target = tmp_path / "fit.nc"
    with pytest.raises(RecoilsimError) as ei:
        write_netcdf(_small_ds(), target)
    assert str(target) in str(ei.value) and "HDF error" in str(ei.value)
    assert not target.exists() and _leftovers(tmp_path) == []


def test_netcdf_write_does_not_import_dask_distributed(tmp_path):
    """xarray's to_netcdf asks dask for its scheduler and so imports dask.distributed (0.1-0.5 s
    of a demo) when dask is installed; write_netcdf writes the same file without that."""
    script = textwrap.dedent(f"""
        import sys
        import numpy as np, xarray as xr
        from recoilsim.io.atomic import write_netcdf, read_netcdf
        ds = xr.Dataset({{"counts": (("element", "channel"), np.arange(6.0).reshape(2, 3))}},
                        coords={{"element": ["Li", "O"], "channel": np.arange(3)}}, attrs={{"note": True}})
        write_netcdf(ds, {str(tmp_path / "a.nc")!r})
        back = read_netcdf({str(tmp_path / "a.nc")!r})
        assert back["counts"].values.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
        assert list(back["element"].values) == ["Li", "O"] and back.attrs["note"] == 1
        print("distributed" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


def test_cli_reports_a_failed_netcdf_write_cleanly(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from recoilsim.cli import app

    monkeypatch.setattr(xr.Dataset, "dump_to_store", lambda self, store, *a, **k: (_ for _ in ()).throw(
        RuntimeError("NetCDF: HDF error")))
    out = tmp_path / "demo"
    res = CliRunner().invoke(app, ["demo", "-o", str(out)])
    assert res.exit_code == 2 and res.stderr.startswith("error: ") and "Traceback" not in res.output
    assert "reference_spectra.nc" in res.stderr
    assert _leftovers(out) == [] and (out / MARKER).exists()  # the run did not finish: marked


def test_sigterm_removes_the_temp_file(tmp_path):
    """SIGTERM while a file is being written: the CLI's handler unwinds, atomic_write cleans up."""
    target = tmp_path / "big.csv"
    script = textwrap.dedent(f"""
        import sys, time
        from recoilsim.io.atomic import atomic_write, terminate_on_sigterm
        terminate_on_sigterm()
        with atomic_write({str(target)!r}) as f:
            f.write("partial\\n" * 1000)
            f.flush()
            print("writing", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    assert proc.stdout.readline().strip() == "writing"
    assert len(_leftovers(tmp_path)) == 1  # the hidden temp file exists while writing
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert _leftovers(tmp_path) == [] and not target.exists()


def test_cli_installs_the_sigterm_handler():
    code = ("import signal\nfrom typer.testing import CliRunner\nfrom recoilsim.cli import app\n"
            "CliRunner().invoke(app, ['kinematics'])\n"
            "print(signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.stdout.strip().splitlines()[-1] == "True", res.stderr


def test_interrupted_run_is_marked_incomplete(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        with writing(out, "fit"):
            (out / "fit.png").write_text("a figure")
            raise KeyboardInterrupt
    assert (out / MARKER).is_file() and "interrupted" in (out / MARKER).read_text()
    with pytest.raises(RecoilsimError, match="overwrite"):  # the marker counts as earlier output
        check_output_dir(out, ["fit.png"])
    with writing(check_output_dir(out, ["fit.png"], overwrite=True), "fit"):
        (out / "fit.png").write_text("a figure")
    assert not (out / MARKER).exists()


def test_interrupted_potku_fit_leaves_the_marker(tmp_path, monkeypatch):
    """An interrupt during the Potku fit leaves its partial outputs marked incomplete."""
    import recoilsim.workflows.potku as potku

    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "potku-ecaart-11-mini"
    if not data.is_dir():
        pytest.skip("needs ../shared/data/potku-ecaart-11-mini")

    def interrupted(case, progress=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(potku, "fit_case", interrupted)
    out = tmp_path / "potku-out"
    toml = Path(__file__).resolve().parents[1] / "examples" / "potku_ecaart.toml"
    with pytest.raises(KeyboardInterrupt):
        potku.run(toml, out)
    written = sorted(os.listdir(out))
    assert MARKER in written and "tofe.png" in written and "summary.json" not in written


def test_output_folder_not_created_before_checks(tmp_path):
    """The Potku fit refused an output folder inside its data folder only after creating it."""
    import shutil

    import recoilsim.workflows.potku as potku

    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "potku-ecaart-11-mini"
    if not data.is_dir():
        pytest.skip("needs ../shared/data/potku-ecaart-11-mini")
    toml = Path(__file__).resolve().parents[1] / "examples" / "potku_ecaart.toml"
    copy = tmp_path / "data"
    shutil.copytree(data, copy)
    inside = copy / "new-output-folder"
    with pytest.raises(RecoilsimError, match="outside the input data"):
        potku.run(toml, inside, data_dir=copy)
    assert not inside.exists()
