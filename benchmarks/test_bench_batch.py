"""Batch screening benchmarks: candidate Li profiles per second (linearised model).

Reference case, 31 nodes (0..30 nm), 1024 channels. ``extra_info['candidates_per_s']`` holds
the throughput of the median round. Budget (benchmarks/README.md): >= 1,000 candidates/s on
this 2-core machine (>= 100,000/s on one H100; the CUDA benchmark skips without a GPU).
"""

import numpy as np
import pytest

from recoilsim.forward.screening import simulate_batch
from recoilsim.kernels import cuda_batch

basis = pytest.importorskip("recoilsim.forward.linear_model")
NODES = np.arange(0.0, 31.0)


@pytest.fixture(scope="module")
def setup():
    from recoilsim.model.experiment import reference_experiment

    lm = basis.LinearModel(reference_experiment(), "Li", 1, depth_nm=NODES)
    rng = np.random.default_rng(0)
    truth = 1.0 + 0.5 * np.exp(-NODES / 5.0)
    meas = rng.poisson(lm.spectrum(truth)).astype(float)
    simulate_batch(lm, np.ones((4, NODES.size)), measured=meas)  # compile outside the timings
    return lm, meas, rng


def _rate(benchmark, n):
    benchmark.extra_info["n_candidates"] = n
    benchmark.extra_info["candidates_per_s"] = n / benchmark.stats.stats.median


def test_batch_rank_only(benchmark, setup, sizes):
    """Deviance + chi2 ranking of n candidates, spectra not kept (streams)."""
    lm, meas, rng = setup
    n = sizes["batch"]
    V = 1.0 + 0.5 * rng.random((n, NODES.size))
    ds = benchmark(simulate_batch, lm, V, measured=meas, spectra=False)
    assert ds.sizes["candidate"] == n
    _rate(benchmark, n)


def test_batch_rank_with_spectra(benchmark, setup, sizes):
    """Ranking and every spectrum returned (1024 channels each)."""
    lm, meas, rng = setup
    n = sizes["batch_spectra"]
    V = 1.0 + 0.5 * rng.random((n, NODES.size))
    ds = benchmark(simulate_batch, lm, V, measured=meas, spectra=True)
    assert ds.counts.shape == (n, 1024)
    _rate(benchmark, n)


def test_batch_stream_top10(benchmark, setup, sizes):
    """A generator of candidate blocks (never all in memory), keeping the 10 best spectra."""
    lm, meas, _ = setup
    n = sizes["stream"]
    block = 50_000

    def run():
        g = np.random.default_rng(1)
        gen = (1.0 + 0.5 * g.random((min(block, n - i), NODES.size)) for i in range(0, n, block))
        return simulate_batch(lm, gen, measured=meas, spectra=10)

    ds = benchmark.pedantic(run, rounds=3, iterations=1)
    assert ds.sizes["candidate"] == 10
    _rate(benchmark, n)


@pytest.mark.skipif(not cuda_batch.available(), reason="no CUDA GPU")
def test_batch_rank_cuda(benchmark, setup, sizes):
    lm, meas, rng = setup
    n = sizes["stream"]
    V = 1.0 + 0.5 * rng.random((n, NODES.size))
    simulate_batch(lm, V[:100], measured=meas, spectra=False, device="cuda")
    ds = benchmark(simulate_batch, lm, V, measured=meas, spectra=False, device="cuda")
    assert ds.attrs["device"] == "cuda"
    _rate(benchmark, n)
