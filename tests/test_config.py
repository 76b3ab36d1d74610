"""Experiment files (TOML): loading, validation messages, reference overrides, round trips."""

import math
import os
from pathlib import Path

import pytest

from recoilsim.io.experiment_dump import dump_experiment, dump_file, dumps_toml
from recoilsim.io.experiment_file import (ExperimentFile, experiment_from_dict, experiment_to_dict, load_experiment,
                                          load_file)
from recoilsim.errors import RecoilsimError
from recoilsim.model.experiment import reference_experiment
from recoilsim.model.sample import Profile

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

MINIMAL = """
name = "mini"
recoils = ["Li"]
[beam]
ion = "63Cu"
energy_MeV = 9.0
fluence = 1e12
[geometry]
incidence_deg = 70.0
exit_deg = 70.0
recoil_deg = 40.0
[detector]
flight_length_m = 0.6
solid_angle_msr = 0.1
calibration_a_ns = 0.0633
calibration_b_ns = 54.33
[[detector.foils]]
composition = "C"
thickness_ug_cm2 = 3.0
[[sample.layers]]
name = "LiPON"
composition = "Li2.0PO2.6N0.9"
thickness_nm = 100.0
density_g_cm3 = 2.5
"""


def _close(a, b, path=""):
    """Recursive equality with a relative tolerance of 1e-12 on floats."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys {set(a) ^ set(b)}"
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0) or (a != a and b != b), f"{path}: {a} != {b}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def _write(tmp_path, text, name="exp.toml"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def _err(tmp_path, text) -> RecoilsimError:
    with pytest.raises(RecoilsimError) as ei:
        load_experiment(_write(tmp_path, text))
    return ei.value


# --- loading -----------------------------------------------------------------------------------

def test_minimal_file(tmp_path):
    e = load_experiment(_write(tmp_path, MINIMAL))
    assert e.name == "mini"
    assert e.beam.ion == "63Cu" and e.beam.fluence == 1e12
    assert [i.name for i in e.recoil_isotopes()] == ["6Li", "7Li"]
    assert e.sample.layers[0].thickness_nm == 100.0
    # 3.0 ug/cm2 of carbon = 3e-6 g * N_A / 12.011 g/mol
    assert math.isclose(e.detector.foils[0].areal_density_1e15, 3e-6 * 6.02214076e23 / 12.0106 / 1e15, rel_tol=2e-4)


def test_examples_load():
    # reference.toml writes out the built-in reference experiment, value for value
    ref = load_experiment(EXAMPLES / "reference.toml")
    assert ref.name == "Kurihara2024-reference" and not any(l.profiles for l in ref.sample.layers)
    a, b = ref.describe(), reference_experiment().describe()
    a.pop("name"), b.pop("name")
    _close(a, b)
    # reference_li_excess.toml is that case with the Li excess at the Cu/LiPON interface
    excess = load_experiment(EXAMPLES / "reference_li_excess.toml")
    assert excess.name == "Kurihara2024-reference-Li-excess"
    lipon = excess.sample.layers[1]
    assert lipon.name == "LiPON" and lipon.profiles[0].element == "Li"
    assert list(lipon.profiles[0].values) == [1.25, 1.0] and list(lipon.profiles[0].depth) == [0.0, 30.0]
    assert lipon.profiles[0].kind == "scale"
    built = reference_experiment(li_profile=Profile("Li", [0, 30], [1.25, 1.0], kind="scale")).describe()
    short = excess.describe()
    short.pop("name"), built.pop("name")
    _close(short, built)

    ef = load_file(EXAMPLES / "potku_ecaart.toml")
    e = ef.experiment
    assert e.beam.ion == "35Cl" and e.beam.energy_MeV == 8.515
    assert math.isclose(e.geometry.incidence_deg, 69.4) and math.isclose(e.geometry.exit_deg, 69.4)
    assert e.geometry.recoil_deg == 41.2
    assert e.detector.flight_length_m == 0.623
    assert e.detector.calibration_a_ns == 0.0570569323644 and e.detector.calibration_b_ns == 1.66381574853
    assert {i.symbol for i in e.recoil_isotopes()} == {"Li", "O", "Mn"}
    assert ef.spectra["format"] == "potku"
    assert ef.resolve(ef.spectra["asc"]).name == "Tof-E_65-mini.asc"
    assert ef.fit["method"] == "film" and ef.fit["layer"] == "Li-Mn-O film"  # kept raw for recoilsim.fitting.film


def test_spectra_and_fit_kept_raw(tmp_path):
    text = MINIMAL + '\n[spectra]\nLi = "li.txt"\n[fit]\nparameters = ["calibration_a_ns", "fluence"]\nmax_iter = 50\n'
    ef = load_file(_write(tmp_path, text))
    assert isinstance(ef, ExperimentFile)
    assert ef.spectra == {"Li": "li.txt"}
    assert ef.fit == {"parameters": ["calibration_a_ns", "fluence"], "max_iter": 50}
    assert ef.path == tmp_path / "exp.toml"
    assert ef.resolve("li.txt") == tmp_path / "li.txt"


def test_charge_and_target_angle_forms(tmp_path):
    text = MINIMAL.replace("fluence = 1e12", "charge_uC = 1.0\ncharge_state = 5").replace(
        "incidence_deg = 70.0\nexit_deg = 70.0\nrecoil_deg = 40.0", "target_angle_deg = 20.6\ndetector_angle_deg = 41.2")
    e = load_experiment(_write(tmp_path, text))
    assert math.isclose(e.beam.fluence, 1e-6 / (5 * 1.602176634e-19), rel_tol=1e-12)
    assert math.isclose(e.geometry.incidence_deg, 69.4) and e.geometry.recoil_deg == 41.2


def test_composition_table_enrichment_stopping_factors(tmp_path):
    text = MINIMAL.replace('composition = "Li2.0PO2.6N0.9"',
                           'composition = {Li = 0.4, O = 0.6}\nenrichment = {Li = {"6" = 0.95, "7" = 0.05}}\n'
                           'stopping_factors = {Li = 1.05}')
    e = load_experiment(_write(tmp_path, text))
    l = e.sample.layers[0]
    assert l.fractions == {"Li": 0.4, "O": 0.6}
    assert l.enrichment == {"Li": {6: 0.95, 7: 0.05}}
    assert l.stopping_factors == {"Li": 1.05}
    back = experiment_from_dict(experiment_to_dict(e))
    _close(back.describe(), e.describe())


def test_recoils_default_to_all_elements(tmp_path):
    e = load_experiment(_write(tmp_path, MINIMAL.replace('recoils = ["Li"]\n', "")))
    assert list(e.recoils) == ["Li", "P", "O", "N"]


def test_reference_overrides(tmp_path):
    e = load_experiment(_write(tmp_path, 'reference = true\n[beam]\nenergy_MeV = 10.0\n[detector]\nn_channels = 2048\n'))
    ref = reference_experiment()
    assert e.beam.energy_MeV == 10.0 and e.beam.ion == ref.beam.ion and e.beam.fluence == ref.beam.fluence
    assert e.detector.n_channels == 2048 and e.detector.flight_length_m == ref.detector.flight_length_m
    assert [l.name for l in e.sample.layers] == ["Cu", "LiPON", "LATP"]
    # [base] form; geometry in Potku form replaces the three angles
    e = load_experiment(_write(tmp_path, '[base]\nreference = true\n[geometry]\ntarget_angle_deg = 20.0\n'
                                         'detector_angle_deg = 40.0\n'))
    assert e.geometry.incidence_deg == 70.0 and e.geometry.exit_deg == 70.0 and e.geometry.recoil_deg == 40.0
    assert e.geometry.beam_divergence_deg == ref.geometry.beam_divergence_deg
    # a layer update in nm replaces the reference thickness
    e = load_experiment(_write(tmp_path, 'reference = true\n[[sample.layers]]\nname = "Cu"\nthickness_nm = 20.0\n'))
    assert e.sample.layers[0].thickness_nm == 20.0
    # a whole new stack
    e = load_experiment(_write(tmp_path, 'reference = true\nrecoils = ["Li"]\n[sample]\nreplace = true\n'
                                         '[[sample.layers]]\ncomposition = "LiF"\nareal_density_1e15 = 100.0\n'))
    assert len(e.sample.layers) == 1 and e.sample.layers[0].fractions == {"Li": 0.5, "F": 0.5}


def test_reference_unknown_layer_name(tmp_path):
    err = _err(tmp_path, 'reference = true\n[[sample.layers]]\nname = "LIPON"\n')
    assert err.field == "sample.layers[0].name"
    assert "LiPON" in err.allowed and "replace" in err.allowed


# --- validation ------------------------------------------------------------------------------

def test_unknown_key_names_full_path(tmp_path):
    err = _err(tmp_path, MINIMAL.replace("flight_length_m", "flight_lenght_m"))
    assert err.field == "detector.flight_lenght_m"
    assert "flight_length_m" in err.allowed and "solid_angle_msr" in err.allowed
    assert "exp.toml" in str(err)

    err = _err(tmp_path, MINIMAL + "[[sample.layers.profiles]]\nelement = 'Li'\ndepth = [0.0]\nvalues = [1.0]\ndepht_unit = 'nm'\n")
    assert err.field == "sample.layers[0].profiles[0].depht_unit"
    assert "depth_unit" in err.allowed

    err = _err(tmp_path, MINIMAL + "[optoins]\nscreening = 'none'\n")
    assert err.field == "optoins" and "options" in err.allowed

    err = _err(tmp_path, MINIMAL + "[options]\nscreenin = 'none'\n")
    assert err.field == "options.screenin" and "screening" in err.allowed


def test_wrong_types(tmp_path):
    err = _err(tmp_path, MINIMAL.replace("energy_MeV = 9.0", 'energy_MeV = "9"'))
    assert err.field == "beam.energy_MeV" and "number" in err.allowed
    err = _err(tmp_path, MINIMAL.replace("solid_angle_msr = 0.1", "solid_angle_msr = true"))
    assert err.field == "detector.solid_angle_msr"
    err = _err(tmp_path, MINIMAL.replace('recoils = ["Li"]', 'recoils = "Li"'))
    assert err.field == "recoils"
    err = _err(tmp_path, MINIMAL + "[options]\nrelativistic = 1\n")
    assert err.field == "options.relativistic" and "true or false" in err.allowed


def test_model_errors_get_key_path(tmp_path):
    err = _err(tmp_path, MINIMAL.replace("energy_MeV = 9.0", "energy_MeV = -9.0"))
    assert err.field == "beam.energy_MeV" and "> 0" in err.allowed
    err = _err(tmp_path, MINIMAL.replace("density_g_cm3 = 2.5", "density_g_cm3 = 0.0"))
    assert err.field == "sample.layers[0].density_g_cm3"
    err = _err(tmp_path, MINIMAL.replace("recoil_deg = 40.0", "recoil_deg = 95.0"))
    assert err.field == "geometry.recoil_deg"
    err = _err(tmp_path, MINIMAL.replace('thickness_ug_cm2 = 3.0', 'thickness_ug_cm2 = -3.0'))
    assert err.field.startswith("detector.foils[0]") and "thickness_ug_cm2" in err.field
    err = _err(tmp_path, MINIMAL.replace('composition = "Li2.0PO2.6N0.9"', 'composition = "Xx2O"'))
    assert err.field == "sample.layers[0].composition"
    err = _err(tmp_path, MINIMAL.replace('ion = "63Cu"', 'ion = "Qq"'))
    assert err.field == "beam.ion"
    err = _err(tmp_path, MINIMAL.replace('composition = "C"', 'composition = "Cx"'))
    assert err.field == "detector.foils[0].composition"
    err = _err(tmp_path, MINIMAL + "[[sample.layers.profiles]]\nelement = 'Li'\ndepth = [0.0, 10.0]\nvalues = [1.0]\n")
    assert err.field == "sample.layers[0].profiles[0].values"
    err = _err(tmp_path, MINIMAL + "[[sample.layers.profiles]]\nelement = 'Li'\ndepth = [10.0, 0.0]\nvalues = [1.0, 1.0]\n")
    assert err.field == "sample.layers[0].profiles[0].depth"
    err = _err(tmp_path, MINIMAL.replace('recoils = ["Li"]', 'recoils = ["Mn"]'))
    assert err.field == "recoils" and "Li" in err.allowed
    err = _err(tmp_path, MINIMAL + "[options]\nscreening = 'moliere'\n")
    assert err.field == "options.screening" and "andersen" in err.allowed
    err = _err(tmp_path, MINIMAL.replace("calibration_a_ns = 0.0633", "calibration_a_ns = 0.0"))
    assert err.field == "detector.calibration_a_ns"


def test_missing_sections_and_keys(tmp_path):
    err = _err(tmp_path, MINIMAL.split("[detector]")[0])
    assert err.field == "detector"
    err = _err(tmp_path, MINIMAL.replace('ion = "63Cu"\n', ""))
    assert err.field == "beam.ion" and "required" in err.allowed
    err = _err(tmp_path, MINIMAL.replace("recoil_deg = 40.0\n", ""))
    assert err.field == "geometry.recoil_deg"
    err = _err(tmp_path, MINIMAL.replace("fluence = 1e12", "charge_uC = 1.0"))
    assert err.field == "beam.charge_state"
    err = _err(tmp_path, MINIMAL.replace("fluence = 1e12", "fluence = 1e12\ncharge_uC = 1.0\ncharge_state = 5"))
    assert err.field == "beam.fluence"
    err = _err(tmp_path, MINIMAL.replace("recoil_deg = 40.0", "recoil_deg = 40.0\ntarget_angle_deg = 20.0\n"
                                                               "detector_angle_deg = 40.0"))
    assert err.field.startswith("geometry.")


def test_toml_syntax_error_has_line(tmp_path):
    err = _err(tmp_path, MINIMAL.replace("energy_MeV = 9.0", "energy_MeV = 9.0.0"))
    assert "line 6" in str(err) and "column" in str(err)
    err = _err(tmp_path, "[beam\nion = 'x'\n")
    assert "line 1" in str(err)


def test_missing_file_dir_and_bad_encoding(tmp_path):
    with pytest.raises(RecoilsimError, match="existing"):
        load_experiment(tmp_path / "nope.toml")
    with pytest.raises(RecoilsimError, match="directory"):
        load_experiment(tmp_path)
    p = tmp_path / "bin.toml"
    p.write_bytes(b"name = 'a'\n\xff\xfe\n")
    with pytest.raises(RecoilsimError, match="UTF-8"):
        load_experiment(p)


def test_dict_api_errors():
    with pytest.raises(RecoilsimError) as ei:
        experiment_from_dict({"beam": []})
    assert ei.value.field == "beam"
    with pytest.raises(RecoilsimError):
        experiment_from_dict("not a dict")


# --- writing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("exp", [
    reference_experiment(),
    reference_experiment(li_profile=Profile("Li", [0, 10, 30], [1.25, 1.1, 1.0], kind="scale")),
    reference_experiment(screening="lecuyer", resolution=False, recoils=("7Li", "P")),
])
def test_round_trip(tmp_path, exp):
    p = dump_experiment(exp, tmp_path / "out.toml")
    back = load_experiment(p)
    _close(back.describe(), exp.describe())


def test_round_trip_examples(tmp_path):
    for name in ("reference.toml", "potku_ecaart.toml"):
        e = load_experiment(EXAMPLES / name)
        back = load_experiment(dump_experiment(e, tmp_path / name))
        _close(back.describe(), e.describe())
    ef = load_file(EXAMPLES / "potku_ecaart.toml")
    back = load_file(dump_file(ef, tmp_path / "full.toml"))
    assert back.spectra == ef.spectra


def test_dump_never_overwrites(tmp_path):
    src = _write(tmp_path, MINIMAL)
    e = load_experiment(src)
    before = src.read_text()
    with pytest.raises(RecoilsimError, match="input"):
        dump_experiment(e, src, overwrite=True)
    assert src.read_text() == before
    out = dump_experiment(e, tmp_path / "copy.toml")
    with pytest.raises(RecoilsimError, match="does not exist"):
        dump_experiment(e, out)
    dump_experiment(e, out, overwrite=True)
    other = tmp_path / "other.txt"
    other.write_text("x")
    with pytest.raises(RecoilsimError, match="input"):
        dump_experiment(reference_experiment(), other, inputs=[other], overwrite=True)
    assert other.read_text() == "x"
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_dump_is_atomic_on_failure(tmp_path, monkeypatch):
    import recoilsim.io.experiment_dump as config

    target = tmp_path / "exp.toml"
    target.write_text("old")

    def boom(d):
        raise RuntimeError("disk full")

    monkeypatch.setattr(config, "dumps_toml", boom)
    with pytest.raises(RuntimeError):
        dump_experiment(reference_experiment(), target, overwrite=True)
    assert target.read_text() == "old"


def test_dumps_toml_escapes_and_values():
    import tomllib

    d = {"name": 'a "quoted"\\ name\nwith\ttabs \x7f', "x": 1e-300, "y": float("inf"), "n": 3, "b": True,
         "t": {"weird key": [1.0, 2.5], "inline": {"a": 1}}, "arr": [{"k": 1}, {"k": 2, "sub": [{"z": "q"}]}],
         "none": None}
    back = tomllib.loads(dumps_toml(d))
    d.pop("none")
    assert back == d


# --- fuzz ------------------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

_FUZZ_SOURCES = [(EXAMPLES / n).read_bytes() for n in ("reference.toml", "potku_ecaart.toml",
                                                       "reference_li_excess.toml")]
_TOKENS = [b"0", b"-1", b"1e400", b"nan", b"inf", b'"x"', b"[]", b"{}", b"true", b'""', b"[[", b"]", b"=",
           b"\n", b"99999999999999999999999", b'"Li"', b"{Li = 0.5}", b"[0.0, -1.0]", b'"Xx"', b"\xff"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(src=st.sampled_from(_FUZZ_SOURCES),
       edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 3), st.integers(0, 255),
                                st.sampled_from(_TOKENS)), min_size=1, max_size=4))
def test_fuzz_mutated_files_raise_only_recoilsim_error(tmp_path, src, edits):
    """Mutated experiment files (bytes flipped, cut, values replaced) load or raise RecoilsimError."""
    b = bytearray(src)
    for pos, op, byte, tok in edits:
        pos %= max(len(b), 1)
        if op == 0:
            b[pos:pos + 1] = bytes([byte])
        elif op == 1:
            del b[pos:pos + 1 + byte % 20]
        elif op == 2:
            b[pos:pos] = tok
        else:  # replace the value after the next '='
            j = b.find(b"=", pos)
            if j >= 0:
                k = b.find(b"\n", j)
                b[j + 1:k if k >= 0 else len(b)] = b" " + tok
    p = tmp_path / "fuzz.toml"
    p.write_bytes(bytes(b))
    try:
        load_file(p)
    except RecoilsimError:
        pass
