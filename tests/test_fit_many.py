"""fit_many: fits sent to dask workers give the same results as fitting one by one."""

import numpy as np
import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.fitting.driver import FitParameters, Parameter, fit
from recoilsim.forward.simulate import simulate
from recoilsim.model.experiment import reference_experiment
from recoilsim.model.sample import Profile
from recoilsim.workflows.fit_many import fit_many

NODES = np.arange(0.0, 70.0, 10.0)


def _exp():
    e = reference_experiment()
    e.beam.fluence *= 0.3
    return e


@pytest.fixture(scope="module")
def jobs():
    """Three Poisson draws of an interface-excess Li spectrum (profile-only fits: fast)."""
    e = _exp()
    e.sample.layers[1].profiles = [Profile("Li", NODES, 1.0 + 0.25 * np.exp(-NODES / 10.0), kind="ratio")]
    mu = simulate(e)["counts"].sel(element="Li").values
    out = []
    for seed in (1, 2, 3):
        meas = {"Li": np.random.default_rng(seed).poisson(mu).astype(float)}
        out.append((_exp(), meas))
    return out


PAR = FitParameters(depth_nm=NODES, regularization=0.0, a=Parameter(fixed=True), b=Parameter(fixed=True),
                    scale=Parameter(1.0, (0, np.inf), fixed=True), relinearize=False)


def test_local_cluster_of_processes_equals_one_by_one(jobs):
    one_by_one = [fit(e, m, PAR, verify=False) for e, m in jobs]
    many = fit_many({f"seed{k}": j for k, j in enumerate(jobs)}, parameters=PAR, n_workers=2, processes=True,
                    progress=False, verify=False)
    assert list(many) == ["seed0", "seed1", "seed2"]
    for a, b in zip(one_by_one, many.values()):
        assert b.success and b.status == a.status
        np.testing.assert_allclose(b.dataset.profile.values, a.dataset.profile.values, rtol=1e-10)
        np.testing.assert_allclose(b.dataset.profile_sigma.values, a.dataset.profile_sigma.values, rtol=1e-10)
    # the three draws differ: equal results are not one fit copied three times
    assert not np.allclose(many["seed0"].dataset.profile.values, many["seed1"].dataset.profile.values)


def test_synchronous_and_per_job_parameters(jobs):
    par2 = FitParameters(depth_nm=NODES[:4], regularization=0.0, a=Parameter(fixed=True), b=Parameter(fixed=True),
                         scale=Parameter(1.0, (0, np.inf), fixed=True), relinearize=False)
    res = fit_many([jobs[0] + (par2,), {"experiment": jobs[1][0], "measured": jobs[1][1]}], parameters=PAR,
                   client="synchronous", progress=True, verify=False)
    assert res[0].dataset.profile.shape[-1] == 4 and res[1].dataset.profile.shape[-1] == NODES.size
    np.testing.assert_allclose(res[1].dataset.profile.values,
                               fit(jobs[1][0], jobs[1][1], PAR, verify=False).dataset.profile.values, rtol=1e-12)


@pytest.mark.parametrize("bad", [[], "x", [(1, 2)], [{"experiment": None}], [{"experiment": 1, "measured": {}, "x": 1}]])
def test_bad_jobs(bad):
    with pytest.raises(RecoilsimError):
        fit_many(bad, client="synchronous")
