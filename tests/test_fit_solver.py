"""The compressed least-squares problem of the fit solver (recoilsim.fitting.solver).

scipy's trust-region reflective method run on the n + 1 compressed residuals must take the same
steps as on the m full residuals: checked against scipy's least_squares on the full problem (the
second method), on a random bounded problem and on the reference three-spectra fit.
"""

import copy
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize

import recoilsim.fitting.solver as solver
from recoilsim.fitting.driver import fit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from test_bench_fit import _setup  # noqa: E402


def _full(jacobian_and_residuals):
    """(fun, jac) of the uncompressed problem from the same callback of (J, r) or (J, r, cols)
    row blocks (J on the columns cols only: the rest zero)."""
    def block(b, i, n):
        if i == 1 or len(b) == 2:
            return b[i]
        J = np.zeros((b[1].size, n))
        J[:, b[2]] = b[0]
        return J

    def stack(x, i):
        return np.concatenate([block(b, i, np.size(x)) for b in jacobian_and_residuals(x)])

    return (lambda x: stack(x, 1)), (lambda x: stack(x, 0))


def _exp_problem(seed=3, m=300, k=3):
    """Sum of k decaying exponentials with Poisson-like weights: (J, r) at x = (amplitudes, rates)
    in two row blocks."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 10.0, m)
    truth = np.concatenate([rng.uniform(1, 5, k), np.sort(rng.uniform(0.1, 2.0, k))])
    w = 1.0 / np.sqrt(1.0 + np.exp(-t))
    y = sum(truth[i] * np.exp(-truth[k + i] * t) for i in range(k)) + rng.normal(0, 0.02, m)

    def jr(x):
        a, b = x[:k], x[k:]
        e = np.exp(-np.outer(t, b))
        J, r = np.column_stack([w[:, None] * e, -w[:, None] * t[:, None] * a * e]), w * (e @ a - y)
        return [(J[:100], r[:100]), (J[100:], r[100:])]

    return jr, truth


def test_compressed_quantities_equal_the_full_ones():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(500, 9))
    fun, jac = solver.compressed_residuals(lambda x: [(A[:200, :8], A[:200, 8]), (A[200:, :8], A[200:, 8])])
    c, R = fun(np.zeros(8)), jac(np.zeros(8))
    J, r = A[:, :8], A[:, 8]
    assert c.shape == (9,) and R.shape == (9, 8)
    assert np.isclose(c @ c, r @ r, rtol=1e-13)
    np.testing.assert_allclose(R.T @ c, J.T @ r, rtol=1e-11)
    np.testing.assert_allclose(R.T @ R, J.T @ J, rtol=1e-11, atol=1e-11 * np.abs(J.T @ J).max())
    np.testing.assert_allclose(np.linalg.norm(R, axis=0), np.linalg.norm(J, axis=0), rtol=1e-12)


def test_singular_gram_falls_back_to_qr_and_nonfinite_gives_nan():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(50, 4))
    A[:, 1] = 0.0  # a column without effect: [J r]^T [J r] is singular, Cholesky fails
    fun, jac = solver.compressed_residuals(lambda x: [(A[:, :3], A[:, 3])])
    c, R = fun(np.zeros(3)), jac(np.zeros(3))
    assert np.isclose(c @ c, A[:, 3] @ A[:, 3], rtol=1e-13)
    np.testing.assert_allclose(R.T @ c, A[:, :3].T @ A[:, 3], rtol=1e-12, atol=1e-12)
    A2 = A.copy()
    A2[7, 3] = np.inf
    c2 = solver.compressed_residuals(lambda x: [(A2[:, :3], A2[:, 3])])[0](np.zeros(3))
    assert c2.shape == (4,) and np.all(np.isnan(c2))


def test_nearly_dependent_columns_use_qr():
    rng = np.random.default_rng(2)
    A = rng.normal(size=(300, 5))
    A[:, 1] = A[:, 0] + 1e-7 * rng.normal(size=300)  # cond(J) ~ 1e7: the Gram matrix loses R[1, 1]
    R_qr = np.abs(np.linalg.qr(A, mode="r"))  # the independent factor (rows up to sign)
    fun, jac = solver.compressed_residuals(lambda x: [(A[:, :4], A[:, 4])])
    R_new = np.abs(np.column_stack([jac(np.zeros(4)), fun(np.zeros(4))]))
    np.testing.assert_allclose(R_new, R_qr, rtol=1e-8, atol=1e-12 * np.abs(A).max())


def test_same_steps_as_scipy_on_the_full_bounded_problem():
    jr, truth = _exp_problem()
    x0 = np.array([1.0, 1.0, 1.0, 0.2, 0.6, 1.5])
    lo = np.array([0.0, 0.0, 0.0, 0.05, 0.05, 0.05])
    hi = np.array([10.0, 10.0, 3.0, 0.5, 1.0, 3.0])  # the third amplitude's bound binds
    kw = dict(bounds=(lo, hi), method="trf", x_scale="jac", xtol=1e-8, ftol=1e-8, gtol=1e-8)
    fun_f, jac_f = _full(jr)
    ref = optimize.least_squares(fun_f, x0, jac=jac_f, **kw)
    fun, jac = solver.compressed_residuals(jr)
    new = optimize.least_squares(fun, x0, jac=jac, **kw)
    assert (new.nfev, new.njev, new.status) == (ref.nfev, ref.njev, ref.status)
    np.testing.assert_allclose(new.x, ref.x, rtol=1e-10, atol=1e-12)
    assert np.isclose(new.cost, ref.cost, rtol=1e-12)
    np.testing.assert_array_equal(new.active_mask, ref.active_mask)


def _reference_fit():
    """The reference three-spectra fit of benchmarks/test_bench_fit.py."""
    e0, meas, par = _setup()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(copy.deepcopy(e0), meas, par, verify=False).dataset


def test_reference_fit_equals_the_uncompressed_solve(monkeypatch):
    new = _reference_fit()
    monkeypatch.setattr(solver, "compressed_residuals", _full)
    ref = _reference_fit()
    np.testing.assert_allclose(new["value"].values, ref["value"].values, rtol=1e-8)
    np.testing.assert_allclose(new["sigma"].values, ref["sigma"].values, rtol=1e-8)
    assert new.attrs["deviance"] == pytest.approx(ref.attrs["deviance"], rel=1e-10)
