"""docs/experiment-file.md against the reader's schema: every key the code accepts is documented
(with its type), every documented key is accepted, option defaults match the code."""

import dataclasses
import re
from pathlib import Path

import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.io.experiment_file import SCHEMA, experiment_from_dict
from recoilsim.model.experiment import Options
from recoilsim.workflows.potku import FIT_KEYS, SPECTRA_KEYS

DOC = Path(__file__).resolve().parents[1] / "docs" / "experiment-file.md"
TYPE_WORD = {"num": "number", "int": "integer", "str": "string", "bool": "bool", "strlist": "list of strings",
             "numlist": "list of numbers", "composition": "composition", "table": "table",
             "tables": "array of tables", "any": "any"}


def _doc_tables() -> dict[str, dict[str, list[str]]]:
    """section -> key -> the row's cells (type, unit, default, meaning), parsed from the page."""
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for line in DOC.read_text().splitlines():
        m = re.match(r"^###\s+`([^`]+)`\s*$", line)
        if m:
            section = "" if m.group(1) == "top level" else m.group(1)
            out[section] = {}
            continue
        m = re.match(r"^\|\s*`([^`]+)`\s*\|(.*)\|\s*$", line)
        if m and section is not None:
            assert m.group(1) not in out[section], f"{section}.{m.group(1)} documented twice"
            out[section][m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return out


DOCS = _doc_tables()


def test_every_section_documented_and_no_extra():
    assert set(DOCS) == set(SCHEMA) | {"spectra", "fit"}


@pytest.mark.parametrize("section", sorted(SCHEMA))
def test_keys_and_types_match_schema(section):
    documented = DOCS[section]
    assert set(documented) == set(SCHEMA[section]), (
        f"[{section}] accepted but undocumented: {sorted(set(SCHEMA[section]) - set(documented))}; "
        f"documented but not accepted: {sorted(set(documented) - set(SCHEMA[section]))}")
    for key, kind in SCHEMA[section].items():
        assert documented[key][0] == TYPE_WORD[kind], f"{section}.{key}: doc says {documented[key][0]!r}"


@pytest.mark.parametrize("section,keys", [("spectra", SPECTRA_KEYS), ("fit", FIT_KEYS)])
def test_workflow_sections_match(section, keys):
    assert set(DOCS[section]) == set(keys)


def test_option_defaults_match_code():
    for f in dataclasses.fields(Options):
        doc_default = DOCS["options"][f.name][2].strip('"')
        want = str(f.default).lower() if isinstance(f.default, bool) else str(f.default)
        assert doc_default == want, f"options.{f.name}: doc {doc_default!r}, code {want!r}"


def test_undocumented_key_is_rejected():
    """The reader refuses what the page does not list (the other half of 'documented = accepted')."""
    with pytest.raises(RecoilsimError, match="beam.energy_keV"):
        experiment_from_dict({"reference": True, "beam": {"energy_keV": 9000.0}})


@pytest.mark.parametrize("section", ["beam", "geometry", "detector", "options"])
def test_every_documented_key_is_accepted_by_the_reader(section):
    """Each documented key of the override-able sections passes the reader's key check (a
    rejected key raises 'a known key'); values are the reference experiment's own or a valid one."""
    from recoilsim.io.experiment_file import experiment_to_dict
    from recoilsim.model.experiment import reference_experiment

    ref = experiment_to_dict(reference_experiment())[section]
    samples = {"charge_uC": 1.0, "target_angle_deg": 20.0, "detector_angle_deg": 40.0, "foils": [],
               "energy_foils": [], "efficiency": {}}
    for key in DOCS[section]:
        value = ref.get(key, samples.get(key))
        if value is None:
            continue
        try:
            experiment_from_dict({"reference": True, section: {key: value}})
        except RecoilsimError as exc:
            assert "a known key" not in exc.allowed, f"{section}.{key} documented but rejected"
