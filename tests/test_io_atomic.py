"""Atomic writes: an interrupted write leaves the target untouched and no temp file behind."""

import os

import numpy as np
import pytest
import xarray as xr

from recoilsim.errors import RecoilsimError
from recoilsim.io.atomic import atomic_write, read_netcdf, refuse_overwrite_inputs, write_netcdf


def test_atomic_write_success(tmp_path):
    p = tmp_path / "a.txt"
    with atomic_write(p) as f:
        f.write("hello")
        assert not p.exists()  # nothing at the target until the block succeeds
    assert p.read_text() == "hello"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_exception_mid_write_keeps_old_content(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("old content")
    with pytest.raises(RuntimeError):
        with atomic_write(p) as f:
            f.write("new partial")
            f.flush()
            raise RuntimeError("simulated crash mid-write")
    assert p.read_text() == "old content"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_keyboard_interrupt_new_file(tmp_path):
    p = tmp_path / "b.bin"
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(p, "wb") as f:
            f.write(b"\x00" * 1000)
            raise KeyboardInterrupt
    assert not p.exists()
    assert os.listdir(tmp_path) == []


def test_atomic_write_bad_args(tmp_path):
    with pytest.raises(RecoilsimError):
        with atomic_write(tmp_path / "x", "a"):
            pass
    with pytest.raises(RecoilsimError):
        with atomic_write(tmp_path / "nodir" / "x"):
            pass
    with pytest.raises(RecoilsimError):
        with atomic_write(tmp_path):
            pass


def test_refuse_overwrite_inputs(tmp_path):
    a = tmp_path / "in.asc"
    a.write_text("1 2\n")
    refuse_overwrite_inputs(tmp_path / "out.csv", [a])
    with pytest.raises(RecoilsimError):
        refuse_overwrite_inputs(a, [a])
    with pytest.raises(RecoilsimError):
        refuse_overwrite_inputs(tmp_path / "sub" / ".." / "in.asc", [a])
    link = tmp_path / "link.asc"
    link.symlink_to(a)
    with pytest.raises(RecoilsimError):
        refuse_overwrite_inputs(link, [a])
    hard = tmp_path / "hard.asc"
    os.link(a, hard)
    with pytest.raises(RecoilsimError):
        refuse_overwrite_inputs(hard, [a])


def test_netcdf_roundtrip_and_failure(tmp_path):
    ds = xr.Dataset({"counts": (("cut", "channel"), np.arange(6).reshape(2, 3))},
                    coords={"cut": ["7Li.0", "Mn.0"], "channel": [0, 1, 2], "time_ns": ("channel", [1.0, 2.0, 3.0])},
                    attrs={"flag": True, "none": None, "d": {"a": 1}, "v": [1.0, 2.0]})
    p = write_netcdf(ds, tmp_path / "r.nc")
    back = read_netcdf(p)
    xr.testing.assert_equal(back["counts"], ds["counts"])
    assert back["time_ns"].values.tolist() == [1.0, 2.0, 3.0]
    assert list(back["cut"].values) == ["7Li.0", "Mn.0"]
    # a failing write leaves the old file intact
    old = p.read_bytes()
    bad = xr.Dataset({"x": ("a", np.array([object(), object()], dtype=object))})
    with pytest.raises(Exception):
        write_netcdf(bad, p)
    assert p.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["r.nc"]
    with pytest.raises(RecoilsimError):
        write_netcdf(ds, p, inputs=[p])
    (tmp_path / "junk.nc").write_bytes(b"not netcdf")
    with pytest.raises(RecoilsimError):
        read_netcdf(tmp_path / "junk.nc")
