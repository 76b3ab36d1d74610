"""Hypothesis fuzz of experiment files (TOML) and command-line arguments (issue 15): only
RecoilsimError from the API, and from the CLI exit codes 0/1/2 with no traceback.

The TOML documents are built from the file format's own keys (recoilsim.io.experiment_file)
with values of every kind (numbers out of range, NaN/inf, wrong types, nesting) plus unknown
keys. The CLI fuzz draws commands, options and values (existing and missing paths, garbage files,
negative and huge numbers); the expensive steps (simulation, fit, the paper workflow) are
replaced by quick stand-ins, so what is tested is the argument and file handling around them.
"""

import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from recoilsim.cli import app
from recoilsim.errors import RecoilsimError
from recoilsim.io import experiment_file as ef

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SECTIONS = {"beam": ef.BEAM_KEYS, "geometry": ef.GEOMETRY_KEYS, "detector": ef.DETECTOR_KEYS,
            "options": ef.OPTION_KEYS}
ELEMENTS = ["Li", "O", "P", "N", "C", "Cu", "Mn", "Si", "H", "Au", "Xx", "7Li", "63Cu", ""]

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20),
                    st.sampled_from([0, -1, 1e-300, 1e300, 0.6, 9.0, 40.0, 70.0, 1024, 89.99, 90]))
scalars = st.one_of(numbers, st.booleans(), st.text(max_size=12), st.sampled_from(ELEMENTS))
values = st.recursive(scalars, lambda c: st.one_of(st.lists(c, max_size=4),
                                                   st.dictionaries(st.sampled_from(["a", "Li", "O", "x"]), c,
                                                                   max_size=3)), max_leaves=8)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, str):  # a TOML basic string: JSON's escapes, DEL escaped too
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{_toml_value(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"


@st.composite
def experiment_toml(draw) -> str:
    lines = []
    ref = True if draw(st.integers(0, 9)) < 8 else draw(st.one_of(st.booleans(), scalars))
    if ref is not False:
        lines.append(f"reference = {_toml_value(ref)}")  # mostly true: the sections then change a valid case
    if draw(st.booleans()):
        lines.append(f"recoils = {_toml_value(draw(st.lists(st.sampled_from(ELEMENTS), max_size=4)))}")
    for name in draw(st.lists(st.sampled_from(sorted(SECTIONS)), unique=True, max_size=4)):
        lines.append(f"[{name}]")
        keys = draw(st.lists(st.sampled_from(sorted(SECTIONS[name]) + ["unknown_key"]), unique=True, max_size=5))
        for k in keys:
            lines.append(f"{k} = {_toml_value(draw(st.one_of(numbers, numbers, values)))}")
    for _ in range(draw(st.integers(0, 3))):
        lines.append("[[sample.layers]]")
        lines.append(f"composition = {_toml_value(draw(st.one_of(values, st.sampled_from(['Li2O', 'Cu', 'LiPON', '']))))}")
        for k in draw(st.lists(st.sampled_from(sorted(ef.LAYER_KEYS) + ["bogus"]), unique=True, max_size=3)):
            if k != "composition":
                lines.append(f"{k} = {_toml_value(draw(values))}")
    return "\n".join(lines) + "\n"


TMP = Path(tempfile.mkdtemp(prefix="recoilsim-fuzz-"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(experiment_toml())
def test_fuzz_experiment_files(text):
    p = TMP / "fuzz.toml"
    p.write_text(text)
    try:
        ef.load_file(p)
    except RecoilsimError:
        pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(experiment_toml())
def test_fuzz_experiment_files_through_the_cli(text):
    p = TMP / "fuzz_cli.toml"
    p.write_text(text)
    res = CliRunner().invoke(app, ["kinematics", str(p)])
    _clean(res)


def _clean(res):
    assert res.exit_code in (0, 1, 2), (res.exit_code, res.output)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """Files for the argument fuzz and quick stand-ins for the expensive steps."""
    d = tmp_path_factory.mktemp("cli")
    garbage = d / "garbage.csv"
    garbage.write_bytes(b"\x00\x01abc\n1,2,3\n")
    good = d / "li.csv"
    good.write_text("channel,counts\n500,3\n501,4\n")
    toml = d / "exp.toml"
    toml.write_text((EXAMPLES / "reference.toml").read_text())
    (d / "afile").write_text("x")
    return d


def _stand_ins(monkeypatch):
    import recoilsim.fitting.driver as driver
    import recoilsim.forward.simulate as simulate
    import recoilsim.workflows.paper as paper
    import recoilsim.workflows.potku as potku

    def no_work(*a, **k):
        raise RecoilsimError("fuzz", "stand-in", "the real step is not run in the fuzz")

    for mod, name in ((simulate, "simulate"), (driver, "fit"), (paper, "run_paper_case"), (potku, "run")):
        monkeypatch.setattr(mod, name, no_work)


def _cli_args(d: Path):
    paths = st.sampled_from([str(d / "exp.toml"), str(d / "li.csv"), str(d / "garbage.csv"), str(d / "missing.toml"),
                             str(d), str(d / "afile"), str(d / "afile" / "sub"), str(EXAMPLES / "reference.toml"),
                             "", "-", "/proc/x", "\x00"])
    options = st.sampled_from(["--out", "-o", "--format", "-f", "--bootstrap", "--element", "--depth-for", "--seed",
                               "--tofe", "--overwrite", "--help"])
    values = st.one_of(paths, st.sampled_from(["-3", "0", "1e9", "nc,xls", "png", "Li", "Qq", "nan", "99999999999999999999"]),
                       st.text(max_size=8))
    command = st.sampled_from(["demo", "simulate", "kinematics", "paper", "fit", "nosuch", ""])
    return st.tuples(command, st.lists(st.one_of(paths, options, values), max_size=6))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_cli_arguments(quick, monkeypatch, data):
    _stand_ins(monkeypatch)
    monkeypatch.chdir(quick)  # relative --out values (even '-f') land in the temporary folder
    cmd, rest = data.draw(_cli_args(quick))
    args = [cmd, *rest] if cmd else rest
    if any("\x00" in a for a in args):  # a NUL cannot reach a real command line
        args = [a.replace("\x00", "") for a in args]
    _clean(CliRunner().invoke(app, args))
