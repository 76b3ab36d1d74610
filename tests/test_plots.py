"""Plots of spectra and TOF-E maps, on synthetic datasets shaped like simulate()'s output."""

import json
import os

import numpy as np
import pytest
import xarray as xr

from recoilsim.errors import RecoilsimError
from recoilsim.plots.spectra import channel_depth_mapping, plot_spectra, plot_tofe_map


def fake_spectra(n=200, slope_ns=0.1, with_tofe=False) -> xr.Dataset:
    """A dataset with the simulate() contract: Li spectrum whose depth is 2 nm per channel from
    channel 50 (NaN before), O with 1 nm per channel from channel 20."""
    ch = np.arange(n)
    li_depth = np.where(ch >= 50, 2.0 * (ch - 50), np.nan)
    o_depth = np.where(ch >= 20, 1.0 * (ch - 20), np.nan)
    li = np.where(ch >= 50, 100.0, 0.0)
    o = np.where(ch >= 20, 1000.0, 0.0)
    ds = xr.Dataset(
        {"counts": (("element", "channel"), np.stack([li, o])),
         "counts_isotope": (("isotope", "channel"), np.stack([0.05 * li, 0.95 * li, o]))},
        coords={"element": ["Li", "O"], "isotope": ["6Li", "7Li", "16O"], "channel": ch,
                "time_ns": ("channel", 50.0 + slope_ns * ch),
                "depth_nm": (("element", "channel"), np.stack([li_depth, o_depth])),
                "depth_1e15": (("element", "channel"), 5 * np.stack([li_depth, o_depth])),
                "energy_MeV": (("element", "channel"), np.stack([2.0 - 0.005 * ch, 3.0 - 0.005 * ch])),
                "isotope_depth_nm": (("isotope", "channel"), np.stack([li_depth, li_depth, o_depth]))},
        attrs={"experiment": json.dumps({"name": "fake"})})
    if with_tofe:
        eb = np.linspace(0.05, 3.95, 40)
        t = np.zeros((3, n, 40))
        t[1, 60:120, 10:20] = 5.0
        t[2, 30:90, 25:30] = 7.0
        ds["tofe"] = (("isotope", "channel", "energy_bin"), t)
        ds = ds.assign_coords(energy_bin_MeV=("energy_bin", eb))
    return ds


def test_mapping_matches_depth_coordinate():
    ds = fake_spectra()
    fwd, inv = channel_depth_mapping(ds, "Li")
    assert np.allclose(fwd(np.array([50.0, 60.0, 150.0])), [0.0, 20.0, 200.0])
    assert np.allclose(inv(np.array([0.0, 20.0, 200.0])), [50.0, 60.0, 150.0])
    # extrapolated linearly, finite everywhere
    assert np.all(np.isfinite(fwd(np.array([0.0, 10.0, 500.0]))))
    fwd, inv = channel_depth_mapping(ds, "Li", depth_offset_nm=30.0)
    assert np.isclose(fwd(65.0), 0.0)
    fwd, _ = channel_depth_mapping(ds, "7Li")
    assert np.isclose(fwd(60.0), 20.0)
    assert channel_depth_mapping(ds, "Mn") is None


def test_mapping_nonmonotonic_and_negative_slope():
    ds = fake_spectra()
    d = ds["depth_nm"].values.copy()
    d[0, 100] = d[0, 99] - 5  # a dip: made monotonic
    d[0, 120:125] = np.nan
    ds["depth_nm"] = (("element", "channel"), d)
    fwd, inv = channel_depth_mapping(ds, "Li")
    x = np.linspace(0, 199, 500)
    assert np.all(np.diff(fwd(x)) >= 0)
    assert np.allclose(inv(fwd(np.array([60.0, 150.0]))), [60.0, 150.0])
    # depth decreasing with channel (negative TOF slope)
    ds2 = fake_spectra()
    ds2["depth_nm"] = ds2["depth_nm"][:, ::-1].values * 1.0 + 0 * ds2["depth_nm"]
    fwd, inv = channel_depth_mapping(ds2, "Li")
    assert np.isclose(fwd(149.0), 0.0) and np.isclose(fwd(139.0), 20.0)
    assert np.isclose(inv(20.0), 139.0)
    # all NaN: no mapping
    ds3 = fake_spectra()
    ds3["depth_nm"] = ds3["depth_nm"] * np.nan
    assert channel_depth_mapping(ds3, "Li") is None


def test_plot_spectra_axes_and_file(tmp_path):
    ds = fake_spectra()
    out = tmp_path / "spectra.png"
    fig = plot_spectra(ds, path=out)
    assert out.is_file() and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert [l.get_label() for l in ax.get_lines()] == ["Li", "O"]
    assert ax.get_xlabel() == "TOF channel"
    secs = [c for c in ax.child_axes]
    assert secs and "Li" in secs[0].get_xlabel()
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    # svg, subset, linear, isotopes, no depth axis, measured overlay
    fig = plot_spectra(ds, elements=["7Li"], path=tmp_path / "s.svg", logy=False, depth_axis_for=None,
                       measured={"7Li": np.ones(200)})
    assert (tmp_path / "s.svg").read_text().lstrip().startswith("<?xml")
    assert fig.axes[0].get_yscale() == "linear" and not fig.axes[0].child_axes


def test_plot_spectra_missing_depth_element_skips_axis():
    fig = plot_spectra(fake_spectra(), depth_axis_for="Mn")
    assert not fig.axes[0].child_axes


def test_plot_errors(tmp_path):
    ds = fake_spectra()
    with pytest.raises(RecoilsimError, match="Li"):
        plot_spectra(ds, elements=["Mn"])
    with pytest.raises(RecoilsimError, match="png"):
        plot_spectra(ds, path=tmp_path / "x.jpg2")
    with pytest.raises(RecoilsimError):
        plot_spectra(ds["counts"])
    src = tmp_path / "input.png"
    src.write_bytes(b"keep")
    with pytest.raises(RecoilsimError, match="input"):
        plot_spectra(ds, path=src, inputs=[src])
    assert src.read_bytes() == b"keep"


def test_plot_tofe_map(tmp_path):
    ds = fake_spectra(with_tofe=True)
    out = tmp_path / "tofe.png"
    fig = plot_tofe_map(ds, out)
    assert out.is_file() and out.stat().st_size > 1000
    ax = fig.axes[0]
    assert ax.get_ylabel().startswith("energy") and ax.get_xlabel() == "TOF channel"
    assert {t.get_text() for t in ax.texts} == {"7Li", "16O"}
    fig = plot_tofe_map(ds["tofe"], isotopes=["7Li"])
    assert {t.get_text() for t in fig.axes[0].texts} == {"7Li"}
    with pytest.raises(RecoilsimError):
        plot_tofe_map(ds, isotopes=["Xx"])
    with pytest.raises(RecoilsimError):
        plot_tofe_map(fake_spectra())
    # an empty map still plots
    empty = ds.copy()
    empty["tofe"] = ds["tofe"] * 0
    plot_tofe_map(empty, tmp_path / "empty.png")
