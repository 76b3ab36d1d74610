"""The experiment file's schema: every section's keys and their kinds, and the checks that name
the full key path of a wrong key or value (:mod:`recoilsim.io.experiment_file` reads with them;
docs/experiment-file.md is tested against :data:`SCHEMA`).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping

from ..errors import RecoilsimError
from ..model.experiment import Options

# ----------------------------------------------------------------------------------------------
# schema: key -> kind ('num', 'int', 'str', 'bool', 'strlist', 'numlist', 'composition', 'table',
# 'tables' (array of tables), 'any')
# ----------------------------------------------------------------------------------------------

TOP_KEYS = {"name": "str", "description": "str", "reference": "bool", "base": "table", "beam": "table",
            "geometry": "table", "detector": "table", "sample": "table", "recoils": "strlist",
            "options": "table", "spectra": "any", "fit": "any"}
BASE_KEYS = {"reference": "bool"}
BEAM_KEYS = {"ion": "str", "energy_MeV": "num", "fluence": "num", "charge_uC": "num", "charge_state": "int"}
GEOMETRY_KEYS = {"incidence_deg": "num", "exit_deg": "num", "recoil_deg": "num", "target_angle_deg": "num",
                 "detector_angle_deg": "num", "beam_divergence_deg": "num", "detector_aperture_deg": "num"}
DETECTOR_KEYS = {"flight_length_m": "num", "solid_angle_msr": "num", "calibration_a_ns": "num",
                 "calibration_b_ns": "num", "n_channels": "int", "timing_resolution_ps": "num",
                 "energy_resolution_keV": "num", "foils": "tables", "energy_foils": "tables",
                 "efficiency": "table", "timing_tail_ns": "num", "timing_tail_fraction": "num"}
FOIL_KEYS = {"name": "str", "composition": "composition", "areal_density_1e15": "num", "thickness_ug_cm2": "num"}
EFFICIENCY_KEYS = {"energy_MeV": "numlist", "efficiency": "numlist"}
SAMPLE_KEYS = {"layers": "tables", "replace": "bool"}
LAYER_KEYS = {"name": "str", "composition": "composition", "thickness_nm": "num", "density_g_cm3": "num",
              "areal_density_1e15": "num", "enrichment": "table", "stopping_factors": "table",
              "profiles": "tables", "stopping": "str"}
PROFILE_KEYS = {"element": "str", "depth": "numlist", "values": "numlist", "kind": "str", "depth_unit": "str"}


def _option_kinds() -> dict[str, str]:
    out = {}
    for f in dataclasses.fields(Options):
        d = f.default
        out[f.name] = "bool" if isinstance(d, bool) else "str" if isinstance(d, str) else \
            "int" if isinstance(d, int) else "num"
    return out


OPTION_KEYS = _option_kinds()

#: every section of the file -> its keys and their kinds (docs/experiment-file.md is tested against it)
SCHEMA = {"": TOP_KEYS, "base": BASE_KEYS, "beam": BEAM_KEYS, "geometry": GEOMETRY_KEYS, "detector": DETECTOR_KEYS,
          "detector.foils[]": FOIL_KEYS, "detector.energy_foils[]": FOIL_KEYS,
          "detector.efficiency.<element>": EFFICIENCY_KEYS, "sample": SAMPLE_KEYS, "sample.layers[]": LAYER_KEYS,
          "sample.layers[].profiles[]": PROFILE_KEYS, "options": OPTION_KEYS}

_KIND_TEXT = {"num": "a number", "int": "an integer", "str": "a string", "bool": "true or false",
              "strlist": "a list of strings", "numlist": "a list of numbers",
              "composition": "a formula string or a table element -> atomic fraction",
              "table": "a table", "tables": "an array of tables ([[...]])", "any": "anything"}


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _type_ok(kind: str, v) -> bool:
    if kind == "num":
        return is_number(v)
    if kind == "int":
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == "str":
        return isinstance(v, str)
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "strlist":
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    if kind == "numlist":
        return isinstance(v, list) and all(is_number(x) for x in v)
    if kind == "composition":
        return isinstance(v, str) or (isinstance(v, dict) and all(is_number(x) for x in v.values()))
    if kind == "table":
        return isinstance(v, dict)
    if kind == "tables":
        return isinstance(v, list) and all(isinstance(x, dict) for x in v)
    return True


def join_key(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def check_table(d: Any, schema: Mapping[str, str], path: str, what: str = "a table") -> dict:
    """Check a table against a schema: unknown keys and wrong types name the full key path."""
    if not isinstance(d, dict):
        raise RecoilsimError(path or "<file>", d, what)
    for k, v in d.items():
        kp = join_key(path, k)
        if k not in schema:
            raise RecoilsimError(kp, v, f"a known key; allowed in {path or 'the top level'}: {', '.join(schema)}")
        if not _type_ok(schema[k], v):
            raise RecoilsimError(kp, v, _KIND_TEXT[schema[k]])
    return d


_MODEL_PREFIXES = (r"layer '[^']*'\.", r"layer\.", r"profile\[[^\]]*\]\.", r"(beam|geometry|detector|options)\.")


def rethrow(exc: RecoilsimError, path: str, strip: tuple[str, ...] = ()) -> RecoilsimError:
    """The model's own error with the file's key path in front of its field."""
    f = str(exc.field)
    changed = True
    while changed:
        changed = False
        for pre in _MODEL_PREFIXES + tuple(re.escape(s) + r"\." for s in strip if s):
            m = re.match(pre, f)
            if m and m.end() < len(f):
                f = f[m.end():]
                changed = True
    if f in ("formula", "element", "composition", "isotope", "enrichment") or f.endswith(".composition"):
        f = f.split(".")[-1]
    f = {"formula": "composition"}.get(f, f)
    if path == "beam" and f in ("element", "isotope"):
        f = "ion"
    full = path if not f or f == path.rsplit(".", 1)[-1] else join_key(path, f)
    err = RecoilsimError(full, exc.value, exc.allowed)
    return err


def required(d: dict, key: str, path: str, allowed: str):
    if key not in d:
        raise RecoilsimError(join_key(path, key), None, f"required: {allowed}")
    return d[key]
