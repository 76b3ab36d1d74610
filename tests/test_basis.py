"""LinearModel (recoilsim.forward.linear_model): exactness at its base profile for every element, the 'ratio'
rule for the other elements of the layer, windows, and the size of what it leaves out (the
stopping change of the profile itself), each against the full simulation."""

import numpy as np
import pytest

from recoilsim.forward.linear_model import LinearModel
from recoilsim.model.experiment import reference_experiment
from recoilsim.model.sample import Profile
from recoilsim.forward.simulate import simulate

NODES = np.arange(0.0, 70.0, 10.0)
EXCESS = 1.0 + 0.25 * np.exp(-NODES / 10.0)
ELEMENTS = ("Li", "P", "O", "N")


@pytest.fixture(scope="module")
def full_excess():
    return simulate(reference_experiment(Profile("Li", NODES, EXCESS, kind="ratio")))


def _maxrel(model, full):
    return max(np.abs(model[e] - full.counts.sel(element=e).values).max() / full.counts.sel(element=e).values.max()
               for e in ELEMENTS)


def test_exact_at_base_for_every_element(full_excess):
    lm = LinearModel(reference_experiment(), "Li", 1, NODES, base=EXCESS)
    assert _maxrel(lm.spectra(EXCESS), full_excess) < 1e-9
    A, c = lm.columns()
    np.testing.assert_allclose(c + A @ EXCESS, lm.spectrum(EXCESS))


def test_other_elements_follow_the_ratio_rule(full_excess):
    """At Li ratio 1/f the layer holds only Li: P, O, N keep only what comes from other layers;
    in between they fall linearly, (1 - f v) / (1 - f) of their layer part (Layer.fractions_at)."""
    lm = LinearModel(reference_experiment(), "Li", 1, NODES)
    f = lm.fraction
    assert f == pytest.approx(2.0 / 6.5)
    ones, full = lm.spectra(np.ones(NODES.size)), lm.spectra(np.full(NODES.size, 1.0 / f))
    v = np.full(NODES.size, 1.2)
    mid = lm.spectra(v)
    for e in ("P", "O", "N"):
        inside = ones[e] - full[e]
        assert inside.max() > 1.0
        np.testing.assert_allclose(mid[e] - full[e], inside * (1 - f * 1.2) / (1 - f), rtol=1e-9, atol=1e-9)
    # with base = nominal the model leaves out only the stopping change of the excess: measured
    # 3.5 % of the maximum for P, O, N and 3.2 % for Li (without the ratio rule P, O, N were 5.6 % off)
    assert _maxrel(lm.spectra(EXCESS), full_excess) < 0.04


def test_windows_give_the_same_counts_inside():
    lm = LinearModel(reference_experiment(), "Li", 1, NODES)
    every = lm.element_columns()
    win = {"Li": (550, 660), "O": (690, 800)}
    part = lm.element_columns(windows=win)
    assert set(part) == {"Li", "O"}
    # rtol 1e-9 (was 1e-12): the linear model now always carries its profile (1 nm blocks, more
    # bricks) and multiple scattering makes most bricks wide (spread as sampled Gaussians); the
    # windowed and full sums then run in another order: measured up to 1.1e-10 relative
    for e, (lo, hi) in win.items():
        np.testing.assert_allclose(part[e][1][lo:hi + 1], every[e][1][lo:hi + 1], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(part[e][0][lo:hi + 1], every[e][0][lo:hi + 1], rtol=1e-9, atol=1e-12)


def test_model_set_spreads_every_model_as_the_model_does():
    """ModelSet (all models and elements in one kernel call per block) against each model's own
    windowed element_columns: the same rows through the same kernel, so equal to rounding; with a
    timing tail that differs between the models (its reach widens each window on its side) and a
    model listed twice (spread once, returned twice)."""
    import dataclasses
    from recoilsim.forward.linear_model import ModelSet
    e0 = reference_experiment()
    e1 = dataclasses.replace(e0, detector=dataclasses.replace(e0.detector, timing_tail_ns=-0.4, timing_tail_fraction=0.3))
    e2 = dataclasses.replace(e0, detector=dataclasses.replace(e0.detector, timing_tail_ns=0.3, timing_tail_fraction=0.2))
    models = [LinearModel(e, "Li", 1, NODES[:8]) for e in (e0, e1, e2)]
    models.append(models[1])
    win = {"Li": (550, 660), "O": (690, 800), "P": (600, 900)}
    b = e0.detector.calibration_b_ns + 0.37
    joint = ModelSet(models, win).element_columns(e0.detector.calibration_a_ns, b)
    assert len(joint) == 4 and joint[3] is joint[1]
    for m, cols in zip(models, joint):
        own = m.element_columns(None, b, win)
        assert list(cols) == list(own) == ["Li", "P", "O"]
        for e, (lo, hi) in win.items():
            for x, y in zip(cols[e], own[e]):  # the set's columns: the window's channels only
                assert x.shape[0] == hi - lo + 1
                np.testing.assert_allclose(x, y[lo:hi + 1], rtol=1e-13, atol=1e-300)


def test_model_set_spreads_equal_rows_once():
    """Two LinearModels of the same experiment (separate objects: equal rows) and one with a
    timing tail (equal bricks, but its window reaches further): the equal rows are spread once
    and copied, the tail model's rows are not merged with them; every model's columns equal
    its own spreading."""
    import dataclasses
    from recoilsim.forward.linear_model import ModelSet
    e0 = reference_experiment()
    e1 = dataclasses.replace(e0, detector=dataclasses.replace(e0.detector, timing_tail_ns=0.5, timing_tail_fraction=0.3))
    models = [LinearModel(e, "Li", 1, NODES[:6]) for e in (e0, e0, e1)]
    win = {"Li": (550, 660), "P": (600, 900)}
    ms = ModelSet(models, win)
    per_model = ms.n // 3
    assert ms.rep.size == 2 * per_model  # the second model's rows are the first's
    b = e0.detector.calibration_b_ns + 0.21
    joint = ms.element_columns(e0.detector.calibration_a_ns, b)
    for e in win:
        for x, y in zip(joint[0][e], joint[1][e]):
            assert (x is None and y is None) or np.array_equal(x, y)
    for m, cols in zip(models, joint):
        own = m.element_columns(None, b, win)
        for e, (lo, hi) in win.items():
            for x, y in zip(cols[e], own[e]):
                if y is not None:
                    np.testing.assert_allclose(x, y[lo:hi + 1], rtol=1e-13, atol=1e-300)
