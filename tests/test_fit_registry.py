"""The keyed parameter registry (recoilsim.fitting.registry): every key reads back what was set,
and setting returns a new Experiment without touching the input."""

import copy

import numpy as np
import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.fitting.parameters import SlowParameter
from recoilsim.fitting.registry import display_name, get_value, set_profile, set_value
from recoilsim.model.experiment import reference_experiment

KEYS = [(("thickness", 0), 31.5), (("thickness", "LiPON"), 80.0), (("fraction", 1, "N"), 0.05),
        (("ratio", 1, "P"), 1.1), (("stopping_factor", 1, "Li"), 1.07), (("stopping_factor", 0, None), 0.95),
        (("calibration_a",), 0.25), (("calibration_b",), 3.5), (("fluence",), 7e11)]


@pytest.mark.parametrize("key,value", KEYS, ids=[display_name(k) for k, _ in KEYS])
def test_set_then_get_and_input_untouched(key, value):
    e = reference_experiment()
    before = copy.deepcopy(e)
    e2 = set_value(e, key, value)
    assert get_value(e2, key) == pytest.approx(value, rel=1e-12)
    assert e == before  # the input experiment (and everything it holds) is unchanged
    assert e2 is not e


def test_stopping_factor_of_all_elements_and_thickness_kept():
    e = reference_experiment()
    e2 = set_value(e, ("stopping_factor", 1, None), 1.2)
    lay = e2.sample.layers[1]
    assert set(lay.stopping_factors) == set(lay.fractions) and all(v == 1.2 for v in lay.stopping_factors.values())
    assert lay.thickness_nm == e.sample.layers[1].thickness_nm


def test_set_profile_replaces_only_that_element():
    e = reference_experiment()
    e2 = set_profile(e, 1, "Li", [0.0, 10.0], [1.2, 1.0])
    e3 = set_profile(e2, 1, "Li", [0.0, 20.0], [1.1, 1.0])
    li = [p for p in e3.sample.layers[1].profiles if p.element == "Li"]
    assert len(li) == 1 and np.array_equal(li[0].values, [1.1, 1.0])
    assert e3.sample.layers[1].areal_density_1e15 == e.sample.layers[1].areal_density_1e15
    assert e.sample.layers[1].profiles == []


def test_display_names_and_slow_parameter_keys():
    assert display_name(("thickness", 0)) == "thickness[0]"
    assert display_name(("ratio", 0, "Mn")) == "ratio[0,Mn]"
    assert display_name(("calibration_b",)) == "b_ns"
    sp = SlowParameter("stopping", 1, "Li")
    assert sp.key == ("stopping_factor", 1, "Li") and sp.name == "stopping[1,Li]"


@pytest.mark.parametrize("key", [("density", 0), ("thickness",), "thickness[0]", ("thickness", 7)])
def test_bad_keys_raise(key):
    with pytest.raises(RecoilsimError):
        set_value(reference_experiment(), key, 1.0)


def test_one_edit_equals_chained_set_value():
    """ExperimentEdit (every quantity set on one copy, one Experiment built) against the chain of
    set_value / set_profile calls it replaces in the fit: the same experiment, field by field, and
    the same spectra; the input untouched."""
    from recoilsim.fitting.registry import ExperimentEdit
    from recoilsim.forward.simulate import simulate
    e = reference_experiment()
    before = copy.deepcopy(e)
    chained = e
    edit = ExperimentEdit(e)
    for key, value in KEYS:
        chained = set_value(chained, key, value)
        edit.set(key, value)
    nodes, vals = [0.0, 10.0, 30.0], [1.2, 1.0, 0.9]
    chained = set_profile(chained, 1, "Li", nodes, vals)
    edit.profile(1, "Li", nodes, vals)
    built = edit.build()
    assert e == before
    assert repr(built) == repr(chained)  # field by field (profiles hold arrays: == is ambiguous)
    for key, _ in KEYS:
        assert get_value(built, key) == get_value(chained, key)
    np.testing.assert_array_equal(simulate(built)["counts"].values, simulate(chained)["counts"].values)
