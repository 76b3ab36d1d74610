"""The one forward engine (recoilsim.forward.engine): every route checks the brick budget and
finiteness in the same place (issue 12)."""

import dataclasses
import math

import numpy as np
import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.forward.engine import MAX_BRICKS, boxes, prepare, run, spread
from recoilsim.forward.linear_model import LinearModel
from recoilsim.forward.simulate import simulate
from recoilsim.model.experiment import reference_experiment


def _overflowing():
    """Bricks of at most 0.01 channel and no sigma rule: far more than MAX_BRICKS are needed
    (the default 0.8 channel / 0.5 sigma takes a few hundred)."""
    return reference_experiment(max_channel_fraction=0.01, max_sigma_fraction=0.0)


def test_linear_model_warns_when_the_brick_budget_runs_out():
    """LinearModel used to drop the kernel's overflow flag silently (only simulate() warned)."""
    with pytest.warns(UserWarning, match=f"reached {MAX_BRICKS} bricks"):
        LinearModel(_overflowing(), "Li", "LiPON", depth_nm=np.arange(0.0, 11.0))


def test_run_reports_overflow_and_simulate_still_warns():
    inputs = prepare(_overflowing())
    with pytest.warns(UserWarning, match="bricks before the end"):
        bricks = run(inputs)
    assert bricks.overflow and bricks.n == MAX_BRICKS
    with pytest.warns(UserWarning, match="bricks before the end"):
        simulate(_overflowing())


def test_non_finite_bricks_are_refused_with_a_named_error():
    """An infinite yield factor (Q Omega) gives infinite yields: refused, not spread into inf."""
    inputs = prepare(reference_experiment())
    bad = dataclasses.replace(inputs, detector=inputs.detector._replace(yield_factor=math.inf))
    with pytest.raises(RecoilsimError) as err:
        run(bad)
    assert err.value.field == "experiment"


def test_spread_of_one_box_without_resolution_is_its_exact_overlap():
    """A box from t = 10.25 to 10.75 ns, channels of 0.5 ns at t = 0.5 c: channel 21 spans
    [10.25, 10.75] ns -> all counts in channel 21; shifted by half a channel (0.25 ns), half in
    each of 21 and 22."""
    one = np.array([[10.25]]), np.array([[10.75]]), np.array([[8.0]]), np.array([[0.0]])
    assert spread(boxes(*one), 0.5, 0.0, 40, False)[0, 21] == 8.0
    shifted = spread(boxes(one[0] + 0.25, one[1] + 0.25, one[2], one[3]), 0.5, 0.0, 40, False)[0]
    np.testing.assert_allclose(shifted[[21, 22]], [4.0, 4.0], rtol=1e-14)
    assert shifted.sum() == pytest.approx(8.0, rel=1e-14)
