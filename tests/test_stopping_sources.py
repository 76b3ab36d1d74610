"""Stopping sources chosen per experiment (options.stopping): SRIM-2013, CATIMA, user tables;
the source recorded in every result, round trips through TOML and netCDF, fits take the choice."""

import json

import numpy as np
import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.forward.engine import prepare
from recoilsim.forward.simulate import simulate
from recoilsim.io.atomic import read_netcdf, write_netcdf
from recoilsim.io.experiment_dump import dump_experiment
from recoilsim.io.experiment_file import load_experiment
from recoilsim.model.elements import element, isotope
from recoilsim.model.experiment import Options
from recoilsim.model.instrument import Beam, Detector, Geometry
from recoilsim.model.experiment import Experiment
from recoilsim.model.sample import Layer, Sample
from recoilsim.io.stopping_choice import stopping_source
from recoilsim.stopping.tables import StoppingSource, StoppingTable, stopping

AVOGADRO = 6.02214076e23


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RECOILSIM_CACHE_DIR", str(tmp_path / "cache"))


def _small(**opt):
    """Li in a 100 nm Cu film on Si: a fast experiment."""
    return Experiment(
        beam=Beam("63Cu", 9.0, fluence=1e12), geometry=Geometry(70.0, 70.0, 40.0),
        detector=Detector(flight_length_m=0.6, solid_angle_msr=0.1, calibration_a_ns=0.1039,
                          calibration_b_ns=29.08, n_channels=1024, timing_resolution_ps=150.0),
        sample=Sample([Layer({"Cu": 0.9, "Li": 0.1}, thickness_nm=100.0, density_g_cm3=8.0, name="film"),
                       Layer("Si", thickness_nm=2000.0, density_g_cm3=2.33, name="sub")]),
        recoils=["Li"], options=Options(**opt), name="small")


PAIRS = [("7Li", "Cu"), ("63Cu", "Cu"), ("16O", "Ti"), ("1H", "Au"), ("31P", "O")]


@pytest.mark.parametrize("ion,target", PAIRS)
def test_catima_equals_pycatima_dedx(ion, target):
    """recoilsim's stopping with the CATIMA source (electronic row + its own ZBL) equals
    pycatima's total dedx, converted from MeV/(g/cm2) to eV/(1e15 atoms/cm2) with CATIMA's own
    molar mass, within 1e-4 at 10 energies from 5 keV/u to 15 MeV/u."""
    pc = pytest.importorskip("pycatima")
    iso = isotope(ion)
    z2 = element(target).number
    e_u = np.geomspace(0.005, 15.0, 10)
    mat = pc.Material([[0, z2, 1]])
    proj = pc.Projectile(iso.mass_u, iso.Z)
    ref = []
    for e in e_u:
        proj.T(float(e))
        ref.append(pc.dedx(proj, mat) * mat.molar_mass() / AVOGADRO * 1e21)
    ours = stopping(ion, target, e_u * iso.mass_u, source=stopping_source("catima"))
    np.testing.assert_allclose(ours, ref, rtol=1e-4)


def test_catima_rows_cached_on_disk(tmp_path):
    pytest.importorskip("pycatima")
    from recoilsim.stopping.sources import CatimaSource

    row = CatimaSource().electronic_row(3, 29)
    files = list((tmp_path / "cache").rglob("se_3_29_*.npy"))
    assert len(files) == 1
    np.testing.assert_array_equal(np.load(files[0]), row)
    # a fresh source reads the file, it does not recompute: a planted row comes back as it is
    np.save(files[0], row * 2.0)
    np.testing.assert_array_equal(CatimaSource().electronic_row(3, 29), row * 2.0)


def test_user_table_source_is_labelled(tmp_path):
    """issue 15.8: simulate(source=...) used to label its result 'SRIM-2013' whatever it used."""
    e = np.geomspace(0.01, 20.0, 50)
    tab = StoppingTable(3, 29, e, 2.0 * stopping((3, 7.016), "Cu", e * 7.016, nuclear=False), "double Li in Cu")
    src = StoppingSource([tab], name="doubled")
    ds = simulate(_small(), source=src)
    assert "(3, 29)" in ds.attrs["stopping"] and "doubled" in ds.attrs["stopping"]
    plain = simulate(_small())
    assert plain.attrs["stopping"].startswith("SRIM-2013")
    # doubled Li stopping in Cu: the same Li atoms (total unchanged) spread over a wider time range

    def width(d):
        c = d.counts.sel(element="Li").values
        return int(np.count_nonzero(c > 0.5 * c.max()))

    assert float(ds.counts.sum()) == pytest.approx(float(plain.counts.sum()), rel=1e-3)
    assert width(ds) > 1.3 * width(plain)


GSTO = """z1-min=3
z1-max=3
z2-min=29
z2-max=29
x-unit=MeV/u
x-min=0.01
x-max=20
x-points=3
x-scale=log10
sto-unit=eV/(1e15 atoms/cm2)
format=ascii
==END-OF-HEADER==
{a}
{b}
{c}
"""


def test_options_stopping_path_relative_to_toml(tmp_path):
    """options.stopping = a GSTO file next to the TOML: the same as passing that table."""
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "li_cu.gsto").write_text(GSTO.format(a=20.0, b=60.0, c=30.0))
    exp = _small(stopping="tables/li_cu.gsto")
    path = tmp_path / "e.toml"
    text = path.parent / "tmp.toml"
    dump_experiment(exp, text)
    path.write_text(text.read_text())
    loaded = load_experiment(path)
    assert loaded.options.stopping == str(tmp_path / "tables" / "li_cu.gsto")
    ds = simulate(loaded)
    assert "(3, 29)" in ds.attrs["stopping"]
    from recoilsim.io.stopping_files import read_gsto
    ref = simulate(_small(), source=StoppingSource(read_gsto(tmp_path / "tables" / "li_cu.gsto")))
    np.testing.assert_allclose(ds.counts.values, ref.counts.values, rtol=1e-12)
    assert not np.allclose(ds.counts.values, simulate(_small()).counts.values, rtol=1e-3)


def test_catima_round_trips_through_toml_and_netcdf(tmp_path):
    pytest.importorskip("pycatima")
    exp = _small(stopping="catima")
    dump_experiment(exp, tmp_path / "c.toml")
    assert "stopping = \"catima\"" in (tmp_path / "c.toml").read_text()
    back = load_experiment(tmp_path / "c.toml")
    assert back.options.stopping == "catima"
    ds = simulate(back)
    assert ds.attrs["stopping"].startswith("CATIMA")
    write_netcdf(ds, tmp_path / "c.nc")
    got = read_netcdf(tmp_path / "c.nc")
    assert got.attrs["stopping"] == ds.attrs["stopping"]
    assert json.loads(got.attrs["experiment"])["options"]["stopping"] == "catima"
    # CATIMA and SRIM-2013 differ for Li in Cu: the choice reaches the spectrum
    assert abs(float(ds.counts.sum()) / float(simulate(_small()).counts.sum()) - 1) > 0.01


def test_fit_takes_the_choice():
    """The fit builds its model through forward.engine.prepare(experiment): the experiment's source is
    used there (no fit argument needed)."""
    pytest.importorskip("pycatima")
    s_srim = prepare(_small()).particles
    s_cat = prepare(_small(stopping="catima")).particles
    assert not np.allclose(s_srim.S, s_cat.S) and not np.allclose(s_srim.W, s_cat.W)


@pytest.mark.parametrize("bad", ["", "no/such/folder", 3])
def test_bad_stopping_option(bad, tmp_path):
    with pytest.raises(RecoilsimError, match="options.stopping"):
        exp = _small(stopping=bad)
        simulate(exp)


def test_catima_missing_gives_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pycatima", None)
    from recoilsim.io import stopping_choice

    stopping_choice._cached_source.cache_clear()
    with pytest.raises(RecoilsimError, match="pycatima"):
        stopping_choice.stopping_source("catima")
    stopping_choice._cached_source.cache_clear()
