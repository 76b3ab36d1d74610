"""The fit's faster paths against the straightforward computations they replace (session 8):
node rows by one stable sort, the Gram matrix on non-zero columns, the strong-correlation scan
vectorised, the element lookup cached."""

from types import SimpleNamespace

import numpy as np
import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.fitting import solver
from recoilsim.fitting.outcome import RHO_MAX, strong_correlations
from recoilsim.forward.linear_model import _node_rows
from recoilsim.model.elements import element


def test_node_rows_equal_the_per_node_loop():
    """Each node's row: its bricks in the order of the pieces, then of the bricks in a piece (the
    order the spreading kernel sums them in), as the loop over nodes and pieces gives them."""
    rng = np.random.default_rng(3)
    n_nodes = 7
    pieces = []
    for size in (0, 13, 1, 40, 9):
        pieces.append((rng.integers(0, n_nodes - 2, size) + rng.integers(0, 2),  # node 6 never hit
                       *(rng.random(size) for _ in range(4))))
    rows = _node_rows(pieces, n_nodes)
    assert len(rows) == n_nodes
    for k in range(n_nodes):
        for q in range(4):
            want = np.concatenate([pc[1 + q][pc[0] == k] for pc in pieces])
            assert np.array_equal(rows[k][q], want), (k, q)
    assert all(r.size == 0 and r.dtype == np.float64 for r in rows[n_nodes - 1])


def test_sparse_gram_and_compressed_blocks_on_block_sparse_columns():
    """Row blocks that each touch only some columns (a measurement's own profile, shared
    calibration columns): the Gram matrix and the compressed quantities equal numpy's on the
    stacked matrix to rounding, and the untouched entries are exact zeros."""
    rng = np.random.default_rng(4)
    J = np.zeros((300, 10))
    J[:120, [0, 1, 2, 9]] = rng.normal(size=(120, 4))
    J[120:, [3, 4, 5, 6, 9]] = rng.normal(size=(180, 5))
    r = rng.normal(size=300)
    G = solver.sparse_gram(J)
    np.testing.assert_allclose(G, J.T @ J, rtol=1e-13, atol=1e-12)
    assert np.all(G[7:9] == 0.0) and np.all(G[:3, 3:7] == 0.0)
    dense = rng.normal(size=(50, 10))
    np.testing.assert_allclose(solver.sparse_gram(dense), dense.T @ dense, rtol=1e-14)
    keep = [0, 1, 2, 3, 4, 5, 6, 9]  # columns 7, 8 are zero: the Gram matrix would be singular
    Jk = J[:, keep]
    fun, jac = solver.compressed_residuals(lambda x: [(Jk[:120], r[:120]), (Jk[120:], r[120:])])
    c, R = fun(np.zeros(8)), jac(np.zeros(8))
    assert np.isclose(c @ c, r @ r, rtol=1e-13)
    np.testing.assert_allclose(R.T @ c, Jk.T @ r, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(R.T @ R, Jk.T @ Jk, rtol=1e-11, atol=1e-11 * np.abs(Jk.T @ Jk).max())
    # the same blocks given on their own columns only (J_k, r_k, cols_k): the same factor
    cols = [np.array([0, 1, 2, 7]), np.array([3, 4, 5, 6, 7])]
    fun2, jac2 = solver.compressed_residuals(lambda x: [(Jk[:120][:, cols[0]], r[:120], cols[0]),
                                                        (Jk[120:][:, cols[1]], r[120:], cols[1])])
    np.testing.assert_allclose(fun2(np.zeros(8)), c, rtol=1e-12, atol=1e-12 * np.abs(c).max())
    np.testing.assert_allclose(jac2(np.zeros(8)), R, rtol=1e-12, atol=1e-12 * np.abs(R).max())
    # nearly dependent columns: the QR fallback, fed the compact blocks, gives the dense blocks' factor
    Jq = Jk.copy()
    Jq[:120, 1] = Jq[:120, 0] * (1 + 1e-8 * rng.normal(size=120))
    dense_q = solver.compressed_residuals(lambda x: [(Jq[:120], r[:120]), (Jq[120:], r[120:])])[1](np.zeros(8))
    compact_q = solver.compressed_residuals(lambda x: [(Jq[:120][:, cols[0]], r[:120], cols[0]),
                                                       (Jq[120:][:, cols[1]], r[120:], cols[1])])[1](np.zeros(8))
    np.testing.assert_array_equal(compact_q, dense_q)


def test_strong_correlations_equal_the_pair_loop():
    """The vectorised scan against the double loop over pairs it replaced: the same pairs,
    values and order (profile-profile and calibration a-b pairs left out)."""
    rng = np.random.default_rng(5)
    n = 9
    keys = [(("profile", k), 0) for k in range(4)] + [(("calibration_a",), None), (("calibration_b",), None),
                                                     (("scale",), 0), (("thickness", 0), None), (("profile", 4), 0)]
    prof = np.array([True] * 4 + [False] * 4 + [True])
    C = np.eye(n)
    for i, j, rho in ((0, 1, 0.999), (4, 5, -0.995), (2, 6, 0.9999), (6, 7, -0.992), (3, 8, 0.991), (1, 7, 0.5),
                      (0, 6, -0.998)):
        C[i, j] = C[j, i] = rho
    C = C * np.outer(s := rng.uniform(0.5, 2.0, n), s)
    fr = np.ones(n, bool)
    prob = SimpleNamespace(names=[f"p{i}" for i in range(n)], vec=SimpleNamespace(keys=keys, profile_mask=lambda: prof))
    sd = np.sqrt(np.diag(C))
    R = C / np.outer(sd, sd)
    quantity = [k[0][0] for k in keys]
    want = []
    for i in range(n):
        for j in range(i + 1, n):
            calib = {quantity[i], quantity[j]} == {"calibration_a", "calibration_b"}
            if abs(R[i, j]) > RHO_MAX and not (prof[i] and prof[j]) and not calib:
                want.append((f"p{i}", f"p{j}", float(R[i, j])))
    want.sort(key=lambda t: -abs(t[2]))
    got = strong_correlations(prob, C, fr)
    assert got == want
    assert [(a, b) for a, b, _ in got] == [("p2", "p6"), ("p0", "p6"), ("p6", "p7")]


def test_element_lookup_cache_keeps_refusals_and_types():
    """A cached lookup answers like the uncached one: True stays refused after 1 (H) was looked
    up (equal and of equal hash, but another type), unknown symbols still raise, unhashable
    input is refused by name."""
    assert element(1).symbol == "H" and element("Li") is element(3) is element(" Li ")
    for bad in (True, "Xx", 0, 93, [3], None):
        with pytest.raises(RecoilsimError, match="element"):
            element(bad)
    with pytest.raises(RecoilsimError, match="element"):
        element("Xx")  # not remembered as anything


def test_jacobian_into_a_reused_buffer_equals_a_fresh_one():
    """The solver writes every Jacobian of a solve into one buffer: the result equals a fresh
    Jacobian bit for bit, also when the buffer holds the previous point's (nothing stale is
    added to it)."""
    import sys
    import warnings
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from test_bench_fit import _setup
    from recoilsim.fitting.driver import fit
    e0, meas, par = _setup()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prob = fit(e0, meas, par, verify=False).problem
    p1 = prob.p.copy()
    p2 = p1.copy()
    p2[prob.i_prof[0]] *= 1.05
    p2[prob.vec.i_b[0]] += 0.3
    buf = np.full((prob.n_data, p1.size), 7.0)
    for p in (p1, p2, p1):
        J_fresh, m_fresh = prob.jac_model(p)
        J_buf, m_buf = prob.jac_model(p, buf)
        assert J_buf is buf
        assert np.array_equal(J_buf, J_fresh) and np.array_equal(m_buf, m_fresh)
