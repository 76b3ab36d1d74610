"""Batch screening (recoilsim.forward.screening / kernels.batch): kernel arithmetic against numpy, ranking
statistics against their closed forms (scipy.special.xlogy), streaming/top-k consistency,
validation, and the accuracy of the linearised model against the full simulation."""

import numpy as np
import pytest
from scipy.special import xlogy

from recoilsim.forward.linear_model import LinearModel
from recoilsim.forward.screening import simulate_batch
from recoilsim.errors import RecoilsimError
from recoilsim.model.experiment import reference_experiment
from recoilsim.kernels import batch as kb
from recoilsim.kernels import cuda_batch
from recoilsim.model.sample import Profile
from recoilsim.forward.simulate import simulate

NODES = np.arange(0.0, 31.0)


@pytest.fixture(scope="module")
def lm():
    return LinearModel(reference_experiment(), "Li", 1, depth_nm=NODES)


@pytest.fixture(scope="module")
def data(lm):
    rng = np.random.default_rng(7)
    V = 1.0 + 0.5 * rng.random((301, NODES.size))
    truth = 1.0 + 0.5 * np.exp(-NODES / 5.0)
    V[42] = truth
    meas = rng.poisson(lm.spectrum(truth)).astype(float)
    return V, meas


def _numpy_stats(mu, n, use=None):
    mu = np.atleast_2d(mu)
    use = np.ones(n.size, bool) if use is None else use
    m = np.maximum(mu, 1e-9)  # the documented floor of the expected counts (kernels/statistics.py)
    d = 2.0 * (m - n + xlogy(n, n) - xlogy(n, m))
    x2 = (n - mu) ** 2 / np.maximum(n, 1.0)
    return d[:, use].sum(axis=1), x2[:, use].sum(axis=1)


def test_spectra_equal_linear_model(lm, data):
    V, _ = data
    ds = simulate_batch(lm, V[:50], scale=1.3)
    A, c = lm.columns()
    ref = 1.3 * (c[None, :] + V[:50] @ A.T)
    np.testing.assert_allclose(ds.counts.values, ref, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(ds.counts.values[3], lm.spectrum(V[3], scale=1.3), rtol=1e-12, atol=1e-9)
    assert ds.sizes["candidate"] == 50 and ds.sizes["channel"] == lm.n_channels
    assert "linearised" in ds.attrs["model"]


def test_ranking_matches_closed_form(lm, data):
    V, meas = data
    ds = simulate_batch(lm, V, measured=meas)
    A, c = lm.columns()
    mu = c[None, :] + V @ A.T
    d, x2 = _numpy_stats(mu, meas)
    np.testing.assert_allclose(ds.deviance.values, d, rtol=1e-9)
    np.testing.assert_allclose(ds.chi2.values, x2, rtol=1e-9)
    np.testing.assert_array_equal(np.argsort(ds.deviance_rank.values), np.argsort(d, kind="stable"))
    assert int(ds.deviance_rank.values[42]) == 0  # the truth wins against random candidates


def test_window_restricts_ranking(lm, data):
    V, meas = data
    ds = simulate_batch(lm, V[:20], measured=meas, window=(500, 700), spectra=False)
    A, c = lm.columns()
    use = np.zeros(meas.size, bool)
    use[500:700] = True
    d, x2 = _numpy_stats(c[None, :] + V[:20] @ A.T, meas, use)
    np.testing.assert_allclose(ds.deviance.values, d, rtol=1e-9)
    np.testing.assert_allclose(ds.chi2.values, x2, rtol=1e-9)


def test_deviance_floored_where_model_is_zero_and_counts_not(lm):
    """A count where the model expects none costs 2 (m - n + n ln(n/m)) at the floor m = 1e-9:
    large and finite (an infinite deviance would stop a solver from leaving such a point)."""
    A, c = lm.columns()
    meas = np.zeros(lm.n_channels)
    k = int(np.nonzero((c == 0) & (A.sum(axis=1) == 0))[0][0])  # a channel the model never reaches
    meas[k] = 3.0
    V = np.ones((2, NODES.size))
    ds = simulate_batch(lm, V, measured=meas, spectra=False)
    mu = c + V[0] @ A.T
    rest = 2.0 * np.sum(np.maximum(np.delete(mu, k), 1e-9))  # every other channel: n = 0, 2 m
    expect = rest + 2.0 * (1e-9 - 3.0 + 3.0 * np.log(3.0 / 1e-9))
    np.testing.assert_allclose(ds.deviance.values, expect, rtol=1e-9)
    assert np.all(np.isfinite(ds.deviance.values))


def test_chunks_generators_and_top_k_agree(lm, data):
    V, meas = data
    full = simulate_batch(lm, V, measured=meas)
    small = simulate_batch(lm, V, measured=meas, chunk=17)
    np.testing.assert_allclose(small.deviance.values, full.deviance.values, rtol=1e-12)
    np.testing.assert_allclose(small.counts.values, full.counts.values, rtol=1e-12)
    gen = simulate_batch(lm, (V[i:i + 40] for i in range(0, V.shape[0], 40)), measured=meas, spectra=False, chunk=13)
    np.testing.assert_allclose(gen.deviance.values, full.deviance.values, rtol=1e-12)
    assert "values" not in gen and "counts" not in gen  # a stream keeps no per-candidate arrays
    top = simulate_batch(lm, V, measured=meas, spectra=5, chunk=23)
    best = np.argsort(full.deviance.values, kind="stable")[:5]
    np.testing.assert_array_equal(top.candidate_index.values, best)
    np.testing.assert_allclose(top.counts.values, full.counts.values[best], rtol=1e-12)
    np.testing.assert_allclose(top.chi2.values, full.chi2.values[best], rtol=1e-12)


def test_batch_from_experiment(data):
    V, _ = data
    ds = simulate_batch(reference_experiment(), V[:3], element="Li", layer="LiPON", depth_nm=NODES)
    lm = LinearModel(reference_experiment(), "Li", 1, depth_nm=NODES)
    np.testing.assert_allclose(ds.counts.values[1], lm.spectrum(V[1]), rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(ds.depth_nm.values, NODES)


def test_memory_guard_and_validation(lm, data):
    V, meas = data
    with pytest.raises(RecoilsimError, match="spectra"):
        simulate_batch(lm, np.ones((200_000, NODES.size)), memory_limit_gb=0.5)
    # the same size streams fine when only the ranking is kept
    ds = simulate_batch(lm, np.ones((200_000, NODES.size)), measured=meas, spectra=False)
    assert ds.sizes["candidate"] == 200_000 and "counts" not in ds
    with pytest.raises(RecoilsimError, match="candidates"):
        simulate_batch(lm, np.ones((3, 5)))
    with pytest.raises(RecoilsimError, match="candidates"):
        simulate_batch(lm, -np.ones((3, NODES.size)))
    with pytest.raises(RecoilsimError, match="candidates"):
        simulate_batch(lm, np.full((3, NODES.size), np.nan))
    with pytest.raises(RecoilsimError, match="measured"):
        simulate_batch(lm, V[:3], measured=meas[:10])
    with pytest.raises(RecoilsimError, match="window"):
        simulate_batch(lm, V[:3], measured=meas, window=(10, 5))
    with pytest.raises(RecoilsimError, match="spectra"):
        simulate_batch(lm, V[:3], spectra=3)  # top-k needs a measurement to rank by
    with pytest.raises(RecoilsimError, match="device"):
        simulate_batch(lm, V[:3], device="tpu")


@pytest.mark.skipif(cuda_batch.available(), reason="a CUDA device is present")
def test_cuda_refused_clearly_without_gpu_and_auto_falls_back(lm, data):
    V, meas = data
    with pytest.raises(RecoilsimError, match="numba.cuda.is_available"):
        simulate_batch(lm, V[:3], device="cuda")
    ds = simulate_batch(lm, V[:3], measured=meas, device="auto")
    assert ds.attrs["device"] == "cpu"


def test_band_covers_every_nonzero_entry(lm):
    A, c = lm.columns()
    lo, hi, jlo, jhi = kb.band(A, c, 0.0)
    nz = np.nonzero(A)
    assert nz[0].min() >= lo and nz[0].max() < hi
    assert np.all(nz[1] >= jlo[nz[0]]) and np.all(nz[1] < jhi[nz[0]])


# measured (this machine, reference case, nodes 0..30 nm, Profile kind='ratio'): max relative
# difference in channels with > 10 counts between the linearised batch and simulate():
# nominal 0.4 %, 1+0.1 exp(-x/5nm) 1.1 %, 1+0.25 exp 2.9 %, 1+0.5 exp 5.8 % (4.9 % where > 100
# counts); total counts within 0.15 %. The tolerances below are those numbers with margin.
@pytest.mark.parametrize("amp,tol", [(0.0, 0.01), (0.1, 0.02), (0.25, 0.045), (0.5, 0.08)])
def test_linearised_batch_close_to_full_simulation(lm, amp, tol):
    v = 1.0 + amp * np.exp(-NODES / 5.0)
    b = simulate_batch(lm, v[None, :]).counts.values[0]
    full = simulate(reference_experiment(Profile("Li", NODES, v, kind="ratio"))).counts.sel(element="Li").values
    m = full > 10
    assert np.max(np.abs(b[m] - full[m]) / full[m]) < tol
    assert abs(b.sum() / full.sum() - 1) < 0.005
