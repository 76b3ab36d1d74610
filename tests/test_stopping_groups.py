"""Stopping groups: neighbouring blocks sharing range tables (kernels/stopping_groups.py,
forward/stack.py::stopping_groups), checked against one group per block (the exact path)."""

import dataclasses

import numpy as np
import pytest

from recoilsim.forward.engine import STOPPING_GROUP_TOL, prepare, run, spread
from recoilsim.forward.stack import stopping_groups
from recoilsim.kernels.stopping_groups import group_compositions, valid_groups
from recoilsim.model.experiment import reference_experiment
from recoilsim.model.sample import Profile

DEPTH = np.arange(0.0, 31.0)


def test_groups_follow_tolerance_and_thickness():
    # column 0 drifts by 1e-3 per block: with tol 2.5e-3 blocks 0-2 group (|0.003 - 0| > tol starts
    # block 3), block 4 and 5 group with 3; block 6 is 3x as thick: its own group, then block 7 (as thick) joins it
    top = np.array([0.0, 1, 2, 3, 4, 5, 6, 9, 12])
    f = np.zeros((8, 2))
    f[:, 0] = 1e-3 * np.arange(8)
    f[:, 1] = 1.0 - f[:, 0]
    np.testing.assert_array_equal(stopping_groups(top, f, f, 2.5e-3), [0, 0, 0, 3, 3, 3, 6, 6])
    # fracW alone differing also splits; tol 0 groups identical blocks only
    w = f.copy()
    w[1, 1] += 1.0
    np.testing.assert_array_equal(stopping_groups(top, f, w, 2.5e-3), [0, 1, 2, 2, 2, 5, 6, 6])
    same = np.ones((8, 2))
    np.testing.assert_array_equal(stopping_groups(top, same, same, 0.0), [0, 0, 0, 0, 0, 0, 6, 6])
    np.testing.assert_array_equal(stopping_groups(top, f, f, 0.0), np.arange(8))


def test_group_compositions_are_areal_density_means():
    rng = np.random.default_rng(1)
    top = np.cumsum(np.r_[0.0, rng.uniform(0.5, 2.0, 6)])
    fS, fW = rng.uniform(size=(6, 3)), rng.uniform(size=(6, 3))
    group = np.array([0, 0, 2, 3, 3, 3])
    gS, gW = group_compositions(top, fS, fW, group)
    th = np.diff(top)
    for rows in ([0, 1], [3, 4, 5]):
        for g, f in ((gS, fS), (gW, fW)):
            np.testing.assert_allclose(g[rows], np.broadcast_to(np.average(f[rows], axis=0, weights=th[rows]),
                                                                (len(rows), 3)), rtol=1e-14)
    assert np.array_equal(gS[2], fS[2]) and np.array_equal(gW[2], fW[2])  # alone: its own row, bit for bit


def test_invalid_groups_mean_one_group_per_block():
    np.testing.assert_array_equal(valid_groups(np.array([0, 0, 0]), 3), [0, 0, 0])
    for bad in (np.zeros(0, dtype=np.int64), np.array([0, 0]), np.array([0, 2, 2]), np.array([0, 1, 0]),
                np.array([-1, 1, 2])):
        np.testing.assert_array_equal(valid_groups(bad, 3), [0, 1, 2])


def _spectra(arr, exp):
    det = exp.detector
    b = run(arr)
    return b, spread(b, det.calibration_a_ns, det.calibration_b_ns, det.n_channels, True)


def _one_group_per_block(arr):
    return dataclasses.replace(arr, stack=arr.stack._replace(group=np.arange(len(arr.stack.top) - 1)))


@pytest.mark.parametrize("values", [1.0 + 0.25 * np.exp(-DEPTH / 5.0), 1.0 + 0.5 * np.exp(-DEPTH / 10.0)])
def test_reference_profile_within_1e4_of_the_exact_path(values):
    """The reference's Li profile (and a steeper one): groups move every spectrum by < 1e-4 of its
    peak against range tables per block (issue 17's accuracy rule)."""
    exp = reference_experiment(Profile("Li", DEPTH, values, kind="scale"))
    arr = prepare(exp)
    assert len(np.unique(arr.stack.group)) < len(arr.stack.group)  # some blocks share tables
    b1, s1 = _spectra(arr, exp)
    b0, s0 = _spectra(_one_group_per_block(arr), exp)
    peak = s0.max(axis=1, keepdims=True)
    assert np.all(np.abs(s1 - s0) <= 1e-4 * peak)
    n = b0.n
    assert b1.n == n
    on = b0.Y[:, :n] > 0
    for q in ("e_det", "sig_e"):
        a, c = getattr(b0, q)[:, :n][on], getattr(b1, q)[:, :n][on]
        assert np.all(np.abs(c - a) <= 1e-4 * np.abs(a))


def test_identical_blocks_share_tables_without_change():
    """A flat profile cuts the film into blocks of one composition: one group, the same bricks."""
    exp = reference_experiment(Profile("Li", DEPTH, np.ones(DEPTH.size), kind="scale"))
    arr = prepare(exp)
    g = arr.stack.group
    assert np.count_nonzero(g == 1) > 20  # the thin blocks of the profile: one group
    b1, s1 = _spectra(arr, exp)
    b0, s0 = _spectra(_one_group_per_block(arr), exp)
    np.testing.assert_allclose(s1, s0, rtol=1e-9, atol=1e-12 * s0.max())


def test_default_tolerance_is_small():
    assert 0.0 < STOPPING_GROUP_TOL <= 2e-3
