"""simulate_many: dask.distributed (LocalCluster with threads) and the synchronous path give
the same spectra as simulate() run one by one, stacked along ``run``."""

import dataclasses

import numpy as np
import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.model.experiment import reference_experiment
from recoilsim.forward.sweep import simulate_many
from recoilsim.model.sample import Profile
from recoilsim.forward.simulate import simulate


def _sweep():
    out = {}
    for amp in (0.0, 0.5):
        exp = reference_experiment(Profile("Li", [0.0, 30.0], [1.0 + amp, 1.0], kind="ratio"), recoils=("Li", "P"))
        out[f"amp={amp}"] = exp
    e = out["amp=0.0"]
    out["fluence x2"] = dataclasses.replace(e, beam=dataclasses.replace(e.beam, fluence=2 * e.beam.fluence))
    return out


@pytest.fixture(scope="module")
def singles():
    return {k: simulate(e) for k, e in _sweep().items()}


def _check(ds, singles):
    assert list(ds.run.values) == list(singles)
    for k, s in singles.items():
        np.testing.assert_allclose(ds.counts.sel(run=k).values, s.counts.values, rtol=1e-12)
    # independent check: doubling the fluence doubles every count
    np.testing.assert_allclose(ds.counts.sel(run="fluence x2").values,
                               2 * ds.counts.sel(run="amp=0.0").values, rtol=1e-12)
    assert '"fluence"' in str(ds.experiment.values[0])


def test_local_cluster_threads(singles):
    ds = simulate_many(_sweep(), processes=False, n_workers=2, progress=True)
    _check(ds, singles)
    assert ds.sizes["run"] == 3 and ds.counts.dims == ("run", "element", "channel")


def test_synchronous(singles):
    ds = simulate_many(_sweep(), client="synchronous", progress=False)
    _check(ds, singles)


def test_given_client_is_left_open(singles):
    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cl, \
            Client(cl) as client:
        exps = list(_sweep().values())[:1]
        ds = simulate_many(exps, client=client, progress=False)
        assert client.status == "running"
        np.testing.assert_allclose(ds.counts.isel(run=0).values, singles["amp=0.0"].counts.values, rtol=1e-12)
        assert list(ds.run.values) == [0]


def test_validation():
    with pytest.raises(RecoilsimError, match="experiments"):
        simulate_many([])
    with pytest.raises(RecoilsimError, match="experiments"):
        simulate_many([object()], client="synchronous")
    with pytest.raises(RecoilsimError, match="client"):
        simulate_many([reference_experiment()], client="threads")
    with pytest.raises(RecoilsimError, match="address"):
        simulate_many([reference_experiment()], address="localhost")


def test_without_dask_a_named_error(monkeypatch):
    """dask is the optional extra recoilsim[dask]: without it simulate_many and fit_many say so."""
    import sys

    from recoilsim.workflows.fit_many import cluster_client

    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # import dask.distributed -> ImportError
    with pytest.raises(RecoilsimError, match=r"recoilsim\[dask\]"):
        simulate_many([reference_experiment(recoils=("Li",))], progress=False)
    with pytest.raises(RecoilsimError, match=r"recoilsim\[dask\]"):
        with cluster_client(n_workers=1):
            pass
    # the synchronous path needs no dask
    assert simulate_many([reference_experiment(recoils=("Li",))], client="synchronous", progress=False)["counts"].sum() > 0
