"""Benchmark: joint fit of the reference case, 3 spectra (three potentials), 50-value Li profile
each, shared calibration (a, b) and Q*Omega, Li + P + O spectra, lambda fixed (GCV off, no
re-linearisation, no full-simulation check): the core minimisation."""

import numpy as np

from recoilsim.model.experiment import reference_experiment
from recoilsim.fitting.driver import FitParameters, fit
from recoilsim.model.sample import Profile
from recoilsim.forward.simulate import simulate


def _setup():
    nodes = np.linspace(0.0, 58.8, 50)
    truths = [np.ones(50), 1 + 0.25 * np.exp(-nodes / 10), 1 + 0.1 * np.exp(-nodes / 10)]
    meas = []
    for i, t in enumerate(truths):
        e = reference_experiment(Profile("Li", nodes, t, kind="ratio"))
        e.beam.fluence *= 0.3
        ds = simulate(e)
        rng = np.random.default_rng(i)
        meas.append({el: rng.poisson(ds["counts"].sel(element=el).values).astype(float) for el in ("Li", "P", "O")})
    e0 = reference_experiment()
    e0.beam.fluence *= 0.3
    return e0, meas, FitParameters(depth_nm=nodes, regularization=1e4, relinearize=False)


def test_bench_fit_three_spectra(benchmark):
    e0, meas, par = _setup()
    r = benchmark.pedantic(lambda: fit(e0, meas, par, verify=False), rounds=3, iterations=1)
    assert r.success, r.message
