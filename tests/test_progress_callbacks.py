"""Progress of long loops: batch screening, the fit's bootstrap and MCMC call a progress callback
once per unit of work (chunk of candidates, bootstrap refit, MCMC step), and a rich bar runs."""

import numpy as np
import pytest

from test_fit import EXCESS, NODES, _draw, _exp, _mean

from recoilsim.errors import RecoilsimError
from recoilsim.fitting.driver import FitParameters, fit
from recoilsim.forward.linear_model import LinearModel
from recoilsim.forward.reporting import reporter
from recoilsim.forward.screening import simulate_batch
from recoilsim.model.experiment import reference_experiment


@pytest.fixture(scope="module")
def lm():
    return LinearModel(reference_experiment(), "Li", 1, depth_nm=np.arange(0.0, 31.0, 5.0))


def test_screening_calls_back_per_chunk(lm):
    V = np.ones((10, 7))
    calls = []
    simulate_batch(lm, V, chunk=3, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(3, 10), (6, 10), (9, 10), (10, 10)]  # ceil(10 / 3) chunks
    calls.clear()
    blocks = (np.ones((4, 7)) for _ in range(2))  # an iterable of blocks: total unknown
    simulate_batch(lm, blocks, chunk=3, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(3, None), (4, None), (7, None), (8, None)]


def test_screening_rich_bar_same_result(lm):
    V = 1.0 + 0.1 * np.arange(70.0).reshape(10, 7) / 70.0
    a = simulate_batch(lm, V, chunk=4, progress=True)
    b = simulate_batch(lm, V, chunk=4)
    np.testing.assert_array_equal(a.counts.values, b.counts.values)


@pytest.fixture(scope="module")
def fitted():
    mu = _mean(NODES, EXCESS, ("Li", "P"))
    return mu


def test_bootstrap_and_mcmc_call_back(fitted):
    calls = []
    r = fit(_exp(), _draw(fitted, 5), FitParameters(depth_nm=NODES, regularization=0.0), n_bootstrap=3,
            progress=lambda done, total: calls.append((done, total)), verify=False)
    assert r.success, r.message
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert r.dataset.attrs["n_bootstrap"] == 3
    steps = []
    r.sample_posterior(n_steps=25, n_burn=5, seed=1, progress=lambda done, total: steps.append((done, total)))
    assert steps == [(k, 25) for k in range(1, 26)]
    assert r.dataset.attrs["mcmc_samples"] > 0


def test_bad_progress_value():
    with pytest.raises(RecoilsimError, match="progress"):
        with reporter("yes", 3, "x"):
            pass
