"""A stopping source per layer (Layer.stopping) and straggling from JIBAL .stg files
(options.straggling_table)."""

import json
import math

import numpy as np
import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.forward.engine import prepare
from recoilsim.forward.simulate import simulate
from recoilsim.io.atomic import read_netcdf, write_netcdf
from recoilsim.io.experiment_dump import dump_experiment
from recoilsim.io.experiment_file import load_experiment
from recoilsim.io.stopping_choice import stopping_source
from recoilsim.model.experiment import Experiment, Options
from recoilsim.model.instrument import Beam, Detector, Geometry
from recoilsim.model.sample import Layer, Sample
from recoilsim.stopping.tables import StoppingSource, StoppingTable, energy_loss, grid


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RECOILSIM_CACHE_DIR", str(tmp_path / "cache"))


def _two_layers(film_stopping=None, sub_stopping=None, **opt):
    """Li in a 100 nm Cu film on Si (no element shared between the layers)."""
    return Experiment(
        beam=Beam("63Cu", 9.0, fluence=1e12), geometry=Geometry(70.0, 70.0, 40.0),
        detector=Detector(flight_length_m=0.6, solid_angle_msr=0.1, calibration_a_ns=0.1039,
                          calibration_b_ns=29.08, n_channels=1024, timing_resolution_ps=150.0),
        sample=Sample([Layer({"Cu": 0.9, "Li": 0.1}, thickness_nm=100.0, density_g_cm3=8.0, name="film",
                             stopping=film_stopping),
                       Layer("Si", thickness_nm=2000.0, density_g_cm3=2.33, name="sub", stopping=sub_stopping)]),
        recoils=["Li", "Si"], options=Options(**opt), name="two")


def _counts(ds):
    return ds.counts.values


def test_catima_in_one_layer_equals_user_tables_for_its_pairs():
    """CATIMA for the film only equals the all-SRIM experiment given CATIMA's rows as user tables
    for the film's (ion, target) pairs (a global override, built independently of the per-layer
    columns: the substrate holds neither Cu nor Li, so only the film sees them)."""
    pytest.importorskip("pycatima")
    cat = stopping_source("catima")
    lnE0, dlnE, n = grid()
    e_u = np.exp(lnE0 + dlnE * np.arange(n))
    # ions: the beam (Cu), the recoils (Li, Si) and H (Yang's effective charge uses S_e(H))
    tabs = [StoppingTable(z1, z2, e_u, cat.electronic_row(z1, z2), "catima rows")
            for z1 in (29, 3, 14, 1) for z2 in (29, 3)]
    ref = simulate(_two_layers(), source=StoppingSource(tabs, name="catima rows"))
    ds = simulate(_two_layers(film_stopping="catima"))
    a, b = _counts(ds), _counts(ref)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * b.max())
    srim = _counts(simulate(_two_layers()))
    assert not np.allclose(a, srim, rtol=1e-3)  # the film's source reaches the spectrum
    assert "layer 0 'film': CATIMA" in ds.attrs["stopping"] and "layer 1 'sub': SRIM-2013" in ds.attrs["stopping"]


def test_per_layer_choice_reduces_to_the_experiment_choice():
    """Every layer naming the experiment's source, or every layer naming CATIMA under a SRIM
    default, gives the per-experiment result."""
    pytest.importorskip("pycatima")
    base = simulate(_two_layers())
    same = simulate(_two_layers("srim2013", "srim2013"))
    np.testing.assert_array_equal(_counts(same), _counts(base))
    assert same.attrs["stopping"] == base.attrs["stopping"]
    cat = simulate(_two_layers(stopping="catima"))
    layers_cat = simulate(_two_layers("catima", "catima"))
    np.testing.assert_allclose(_counts(layers_cat), _counts(cat), rtol=1e-12, atol=1e-12 * _counts(cat).max())
    inputs = prepare(_two_layers("catima", "catima"))
    assert inputs.columns == (("Cu", "srim2013"), ("Cu", "catima"), ("Li", "srim2013"), ("Li", "catima"),
                              ("Si", "srim2013"), ("Si", "catima"))
    np.testing.assert_array_equal(inputs.element_fractions("Li") > 0, [True] + [False] * (len(inputs.stack.top) - 2))


def test_layer_stopping_round_trips_through_toml_and_netcdf(tmp_path):
    pytest.importorskip("pycatima")
    exp = _two_layers(film_stopping="catima")
    dump_experiment(exp, tmp_path / "e.toml")
    back = load_experiment(tmp_path / "e.toml")
    assert [l.stopping for l in back.sample.layers] == ["catima", None]
    ds = simulate(back)
    write_netcdf(ds, tmp_path / "e.nc")
    got = read_netcdf(tmp_path / "e.nc")
    assert got.attrs["stopping"] == ds.attrs["stopping"] and "CATIMA" in got.attrs["stopping"]
    layers = json.loads(got.attrs["experiment"])["sample"]
    assert [l["stopping"] for l in layers] == ["catima", "srim2013"]


def test_layer_stopping_path_relative_to_toml(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "li_cu.txt").write_text("x")
    text = ('[beam]\nion = "63Cu"\nenergy_MeV = 9.0\n[geometry]\nincidence_deg = 70\nexit_deg = 70\nrecoil_deg = 40\n'
            '[detector]\nflight_length_m = 0.6\nsolid_angle_msr = 0.1\ncalibration_a_ns = 0.1\ncalibration_b_ns = 29\n'
            '[[sample.layers]]\ncomposition = "Cu"\nareal_density_1e15 = 100\nstopping = "t/li_cu.txt"\n'
            '[[sample.layers]]\ncomposition = "Si"\nareal_density_1e15 = 1000\nstopping = "CATIMA"\n')
    (tmp_path / "e.toml").write_text(text)
    exp = load_experiment(tmp_path / "e.toml")
    assert [l.stopping for l in exp.sample.layers] == [str(tmp_path / "t" / "li_cu.txt"), "catima"]


@pytest.mark.parametrize("bad", ["", "  ", 3])
def test_bad_layer_stopping(bad):
    with pytest.raises(RecoilsimError, match="stopping"):
        Layer("Si", areal_density_1e15=10.0, name="s", stopping=bad)


# --------------------------------------------------------------------------- .stg straggling
def _stg(c, z1="-1", z2="z2-min=1\nz2-max=92"):
    """A JIBAL-style .stg file whose straggling is the constant c times Bohr's."""
    return (f"type=stragg\nsource=hand\nz1={z1}\n{z2}\nstragg-unit=bohr\nx-scale=arb\nx-unit=keV/u\n"
            "x-points=2\nformat=ascii\n\n1\n100000\n" + "".join(f"{c}\n{c}\n" for _ in range(92 if z2.startswith('z2-min') else 1)))


BOHR_MEV2_CM2 = 4.0 * math.pi * (1.439964e-13) ** 2  # 4 pi e^4 (e^2 = 1.439964e-13 MeV cm), Bohr 1948


@pytest.mark.parametrize("c", [0.37, 2.5])
def test_stg_constant_factor_scales_the_bohr_variance(tmp_path, c):
    """A .stg whose ratio to Bohr is the constant c: the energy-straggling variance is c times the
    Bohr option's, and c times Bohr's closed form 4 pi e^4 Z1^2 Z2 N t in a thin layer."""
    p = tmp_path / "c.stg"
    p.write_text(_stg(c))
    from recoilsim.io.stopping_choice import straggling_tables

    tabs = straggling_tables(p)
    bohr = prepare(_two_layers(straggling="bohr"))
    stg = prepare(_two_layers(straggling="yang", straggling_table=str(p)))
    np.testing.assert_allclose(stg.particles.W, c * bohr.particles.W, rtol=1e-12)
    # through the transport: exit variance of 7Li (2 MeV) after 1e17 at/cm2 of Cu
    from recoilsim.stopping.tables import particle_tables

    t = 100.0
    ref = energy_loss("7Li", "Cu", t, 2.0, straggling="bohr")
    from recoilsim.kernels.transport import energy_variance_after

    tab = particle_tables([(3, 7.016)], [29], straggling="chu", straggling_tables=tabs)
    e_out, var = energy_variance_after(2.0, 7.016, tab.S[0], tab.W[0], np.array([1.0]), tab.lnE0, tab.dlnE, t, 0.0)
    assert var == pytest.approx(c * ref.sigma ** 2, rel=1e-12)
    # thin layer: Bohr's variance is energy independent, so var -> c 4 pi e^4 Z1^2 Z2 N t (S_out ~ S_in)
    assert var == pytest.approx(c * BOHR_MEV2_CM2 * 9 * 29 * t * 1e15, rel=2e-2)


def test_stg_covers_only_its_pairs_and_is_recorded(tmp_path):
    p = tmp_path / "li_cu.stg"
    p.write_text(_stg(3.0, z1="3", z2="z2=29"))
    yang = prepare(_two_layers())
    stg = prepare(_two_layers(straggling_table=str(p)))
    bohr = prepare(_two_layers(straggling="bohr"))
    li = [k for k, (z, _) in enumerate(stg.tables.particles) if z == 3]  # 6Li and 7Li
    assert len(li) == 2
    cu = stg.columns.index(("Cu", "srim2013"))
    np.testing.assert_allclose(stg.particles.W[li, cu], 3.0 * bohr.particles.W[li, cu], rtol=1e-12)
    mask = np.ones(stg.particles.W.shape, dtype=bool)
    mask[li, cu] = False
    assert mask.sum() == mask.size - 2 * mask.shape[2]
    np.testing.assert_array_equal(stg.particles.W[mask], yang.particles.W[mask])
    ds = simulate(_two_layers(straggling_table=str(p)))
    assert "(3, 29)" in ds.attrs["straggling"] and ds.attrs["straggling"].startswith("yang")


def test_bad_straggling_table(tmp_path):
    with pytest.raises(RecoilsimError, match="straggling_table"):
        prepare(_two_layers(straggling_table=str(tmp_path / "none.stg")))
