"""`recoilsim import potku`: the Potku measurement in ../shared/data/potku-ecaart-11-mini imported
from its own .ini files; the written TOML simulates as it is."""

import configparser
import tomllib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recoilsim.cli import app
from recoilsim.errors import RecoilsimError
from recoilsim.forward.simulate import simulate
from recoilsim.io.experiment_file import load_file
from recoilsim.io.potku_import import import_potku

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "potku-ecaart-11-mini"
MEAS = DATA / "Tof-E_65-mini"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared Potku data not present")


def _ini(name):
    """The project's .ini (the measurement's own say use_settings = REQUEST, or slope 0)."""
    cp = configparser.ConfigParser(interpolation=None)
    cp.read(DATA / name)
    return cp


@pytest.mark.parametrize("given", [MEAS, DATA, DATA / "measuring_unit_settings.ini", MEAS / "calibration_settings.ini"])
def test_import_equals_the_files(given, tmp_path):
    out = import_potku(given, tmp_path / "m.toml")
    raw = tomllib.loads(out.read_text())
    mu, cal = _ini("measuring_unit_settings.ini"), _ini("calibration_settings.ini")
    exp = load_file(out).experiment
    assert exp.beam.ion == mu["beam"]["isotope"] + mu["beam"]["element"]
    assert exp.beam.energy_MeV == float(mu["beam"]["energy"])
    assert raw["geometry"] == {"target_angle_deg": float(mu["measuring_unit"]["target_angle"]),
                               "detector_angle_deg": float(mu["measuring_unit"]["detector_angle"])}
    # Potku's angles: incidence from the normal = 90 - target angle, recoil = detector angle
    assert exp.geometry.incidence_deg == pytest.approx(90.0 - float(mu["measuring_unit"]["target_angle"]))
    assert exp.geometry.recoil_deg == pytest.approx(float(mu["measuring_unit"]["detector_angle"]))
    assert exp.detector.flight_length_m == float(mu["measuring_unit"]["time_of_flight_lenght"])
    assert raw["detector"]["foils"][0]["thickness_ug_cm2"] == float(mu["measuring_unit"]["carbon_foil_thickness"])
    assert exp.detector.foils[0].fractions == {"C": 1.0}
    assert exp.detector.calibration_a_ns == pytest.approx(float(cal["parameters"]["slope"]) * 1e9, rel=1e-12)
    assert exp.detector.calibration_b_ns == pytest.approx(float(cal["parameters"]["offset"]) * 1e9, rel=1e-12)


def test_cuts_and_data_paths(tmp_path):
    out = import_potku(MEAS, tmp_path / "m.toml")
    ef = load_file(out)
    sp = ef.spectra
    base = ef.resolve(sp["data_dir"])
    assert (base / sp["asc"]).resolve() == (DATA / "Tof-E_65-mini.asc").resolve()
    assert (base / sp["sel"]).is_file() and (base / sp["cuts"]).is_dir()
    # every ERD polygon of the .sel file lands in one element; the RBS one (scattered 35Cl) does not
    sel_lines = [ln.split() for ln in (MEAS / "Tof-E_65-mini.sel").read_text().splitlines() if ln.strip()]
    erd = {(f[1], f[2]) for f in sel_lines if f[0] == "ERD"}
    got = {(el, lab) for el, labs in sp["elements"].items() for lab in labs}
    assert len(got) == len(erd)
    assert sorted(sp["elements"]["Li"]) == ["6Li", "7Li"]
    assert "Cl" not in sp["elements"]


def test_imported_file_simulates_as_it_is(tmp_path):
    ef = load_file(import_potku(MEAS, tmp_path / "m.toml"))
    ds = simulate(ef.experiment)
    totals = ds.counts.sum("channel").values
    assert np.all(np.isfinite(totals)) and np.all(totals > 0)
    assert set(ds.element.values) == set(ef.spectra["elements"])


def test_cli_import_then_simulate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["import", "potku", str(MEAS)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "Tof-E_65-mini.toml").is_file()
    r = CliRunner().invoke(app, ["import", "potku", str(MEAS)])
    assert r.exit_code == 2 and "overwrite" in r.output
    r = CliRunner().invoke(app, ["simulate", "Tof-E_65-mini.toml", "-o", "sim", "-f", "nc"])
    assert r.exit_code == 0, r.output


def test_not_potku(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(RecoilsimError, match="Potku"):
        import_potku(tmp_path / "x.txt", tmp_path / "o.toml")
    with pytest.raises(RecoilsimError, match="Potku"):
        import_potku(tmp_path / "nothing", tmp_path / "o.toml")
