"""``[fit] method`` of a Potku experiment file: "film" or "profiles", each with its own keys;
``recoilsim fit FILE.toml`` dispatches on it (issue 14: the CLI fits a Potku measurement's
profiles from its TOML)."""

import tomllib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from recoilsim.cli import app
from recoilsim.errors import RecoilsimError
from recoilsim.io.experiment_dump import dumps_toml
from recoilsim.workflows.potku import background_option, load_case
from recoilsim.workflows.potku_profiles import profile_settings

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "potku-ecaart-11-mini"
PROFILES = ROOT / "examples" / "potku_ecaart_profiles.toml"
real = pytest.mark.skipif(not (DATA / "Tof-E_65-mini.asc").is_file(), reason=f"real Potku data not present ({DATA})")


def _file(tmp_path, **fit):
    d = tomllib.loads(PROFILES.read_text())
    d["spectra"]["data_dir"] = str(DATA)
    d["fit"] = {k: v for k, v in {**d["fit"], **fit}.items() if v is not None}
    p = tmp_path / "case.toml"
    p.write_text(dumps_toml(d))
    return p


def test_profile_settings_from_the_fit_section():
    s = profile_settings({"method": "profiles", "nodes": 12, "depth_max": 800.0, "breaks": True,
                          "fit_calibration_offset": False, "background": "none"})
    assert s == {"n_nodes": 12, "depth_max_1e15": 800.0, "breaks": True, "fit_b": False, "background": False}
    # the arguments (the profiles command's options) override the file
    assert profile_settings({"method": "profiles", "nodes": 12}, n_nodes=5)["n_nodes"] == 5
    # defaults, and a film file run by `recoilsim profiles`: its film keys are not the profile fit's
    d = profile_settings({"method": "film", "layer": "film", "background": "linear"})
    assert d == {"n_nodes": 30, "depth_max_1e15": None, "breaks": False, "fit_b": True, "background": True}
    for bad in ({"nodes": 2}, {"nodes": 3.5}, {"depth_max": -1.0}, {"breaks": "yes"}, {"background": "linear"}):
        with pytest.raises(RecoilsimError, match="fit." + next(iter(bad))):
            profile_settings({"method": "profiles", **bad})


def test_film_fit_background_on_by_default():
    """Measured data: the film fit of a Potku file fits a constant background unless the file says otherwise."""
    assert background_option({"method": "film"}) == "constant"
    assert background_option({"background": "linear"}) == "linear"
    assert background_option({"background": "none"}) is None
    with pytest.raises(RecoilsimError, match="fit.background"):
        background_option({"background": "flat"})


@real
def test_keys_of_the_other_method_are_refused(tmp_path):
    case = load_case(_file(tmp_path))
    assert case.fit["method"] == "profiles" and case.fit["nodes"] == 30
    with pytest.raises(RecoilsimError, match="fit.ratios"):
        load_case(_file(tmp_path, ratios=["Mn"]))
    with pytest.raises(RecoilsimError, match=r"fit\.(nodes|depth_max|breaks) .*method 'film'"):
        load_case(_file(tmp_path, method="film", nodes=12))
    with pytest.raises(RecoilsimError, match="fit.method"):
        load_case(_file(tmp_path, method="spline"))


@real
def test_cli_fit_runs_the_profiles_method(tmp_path):
    """``recoilsim fit`` on a file with ``method = "profiles"`` writes the profile outputs, with the
    file's nodes and depth_max."""
    toml = _file(tmp_path, nodes=10, depth_max=900.0)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["fit", str(toml), "-o", str(out)])
    assert res.exit_code == 0, res.output
    for name in ("profiles.csv", "profiles.nc", "profiles.png", "profiles_log.png", "profiles_fit.png",
                 "profiles_summary.txt"):
        assert (out / name).is_file(), name
    assert not (out / "fit.nc").exists()  # not the film fit
    rows = np.loadtxt(out / "profiles.csv", delimiter=",", comments="#", skiprows=2)
    assert rows.shape[0] == 10 and rows[-1, 0] == pytest.approx(900.0)
    assert "depth profiles:" in res.output
