"""A fitted background (FitParameters.background): closed loops on the reference case.

Data: the full simulation of a known Li profile plus a known background per element window,
Poisson noise. The background is recovered within its sigma and the profile stays unbiased;
without the background the same data are a poor fit with a biased profile.
"""

import numpy as np
import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.fitting.driver import FitParameters, fit
from recoilsim.fitting.problem import Problem
from recoilsim.forward.simulate import simulate
from recoilsim.model.experiment import reference_experiment
from recoilsim.model.sample import Profile

NODES = np.arange(0.0, 70.0, 10.0)
EXCESS = 1.0 + 0.25 * np.exp(-NODES / 10.0)
BG = {"Li": 2.0, "P": 1.0, "O": 3.0, "N": 0.5}  # counts per channel
# windows that start ahead of each leading edge (Li 557, P 876, O 692, N 665 in this case)
WINDOWS = {"Li": (520, 700), "P": (840, 1023), "O": (650, 1023), "N": (630, 1023)}


def _exp(profile=None):
    # multiple scattering off, as the closed loops of tests/test_fit.py (set up for the model without it)
    e = reference_experiment(profile, multiple_scattering=False)
    e.beam.fluence *= 0.3
    return e


@pytest.fixture(scope="module")
def truth():
    ds = simulate(_exp(Profile("Li", NODES, EXCESS, kind="ratio")))
    return {e: ds["counts"].sel(element=e).values for e in BG}, ds["time_ns"].values


def _draw(mu, seed):
    rng = np.random.default_rng(seed)
    return {e: rng.poisson(v).astype(float) for e, v in mu.items()}


def test_constant_background_recovered(truth):
    counts, _t = truth
    d = _draw({e: counts[e] + BG[e] for e in BG}, 3)
    r = fit(_exp(), d, FitParameters(depth_nm=NODES, regularization=0.0, windows=WINDOWS, background="constant"))
    assert r.success, r.message
    for e, level in BG.items():
        v, s = r.parameter(("background", e), 0)
        print(e, v, s, level)
        assert abs(v - level) < 3.0 * s
    p, s = r.dataset.profile.values[0], r.dataset.profile_sigma.values[0]
    assert np.all(np.abs(p - EXCESS) < 3.5 * s)
    assert r.dataset.attrs["reduced_deviance"] < 1.3
    assert r.dataset.attrs["full_model_max_rel_diff"] < 1e-3  # the full model includes the background
    # the same data without a background: the flat counts are read as Li (and Q*Omega falls)
    r0 = fit(_exp(), d, FitParameters(depth_nm=NODES, regularization=0.0, windows=WINDOWS))
    assert r0.status == "poor_fit"
    p0, s0 = r0.dataset.profile.values[0], r0.dataset.profile_sigma.values[0]
    assert np.max(np.abs(p0 - EXCESS) / s0) > 5.0


def test_mcmc_samples_the_background(truth):
    """The MCMC second estimate (FitResult.sample_posterior) models the background as the fit does
    (m = s u + background): its sd of each level agrees with the Fisher sigma within 30 %."""
    counts, _t = truth
    d = _draw({e: counts[e] + BG[e] for e in BG}, 3)
    r = fit(_exp(), d, FitParameters(depth_nm=NODES, regularization=0.0, windows=WINDOWS, background="constant"),
            verify=False)
    ds = r.sample_posterior(n_steps=1500, n_burn=500, seed=1)
    for e in BG:
        label = f"bg[{e}][0]"
        ratio = ds["sigma_mcmc"].sel(parameter=label).item() / ds["sigma"].sel(parameter=label).item()
        print(label, ratio)
        assert 0.7 < ratio < 1.3


def test_background_start_ahead_of_the_edge(truth):
    """The start level is the mean count ahead of the leading edge: within 4 Poisson sigma of the truth."""
    counts, _t = truth
    d = _draw({e: counts[e] + BG[e] for e in BG}, 5)
    par = FitParameters(depth_nm=NODES, regularization=0.0, windows=WINDOWS, background="constant")
    prob = Problem([_exp()], [d], par, 0.0)
    for e, level in BG.items():
        start = prob.p[prob.vec.index(("background", e), 0)]
        n_ahead = 557 - 520 if e == "Li" else 20  # at least this many channels lie ahead of each edge
        assert abs(start - level) < 4.0 * np.sqrt(level / n_ahead), (e, start)
    given = Problem([_exp()], [d], FitParameters(depth_nm=NODES, regularization=0.0, windows=WINDOWS,
                                                 background="constant", background_start={"O": 7.5}), 0.0)
    assert given.p[given.vec.index(("background", "O"), 0)] == 7.5


def test_linear_background_recovered(truth):
    """A background linear in time (so in the channel): its levels at the window's first and last
    channel recovered."""
    counts, _t = truth
    ends = {"Li": (2.0, 2.0), "P": (0.5, 1.5), "O": (1.0, 5.0), "N": (1.0, 0.2)}  # counts per channel
    mu = {}
    for e in BG:
        lo, hi = WINDOWS[e]
        ch = np.arange(counts[e].size)
        mu[e] = counts[e] + np.interp(ch, [lo, hi], ends[e])
    d = _draw(mu, 11)
    r = fit(_exp(), d, FitParameters(depth_nm=NODES, regularization=0.0, windows=WINDOWS, background="linear"))
    assert r.success, r.message
    for e in ("P", "O", "N"):
        for key, want in ((("background", e), ends[e][0]), (("background_end", e), ends[e][1])):
            v, s = r.parameter(key, 0)
            print(key, v, s, want)
            assert abs(v - want) < 3.0 * s
    p, s = r.dataset.profile.values[0], r.dataset.profile_sigma.values[0]
    assert np.all(np.abs(p - EXCESS) < 3.5 * s)


def test_background_option_checked():
    with pytest.raises(RecoilsimError, match="background"):
        FitParameters(background="flat")
    with pytest.raises(RecoilsimError, match="background_start"):
        FitParameters(background="constant", background_start={"Li": -1.0})


def test_fit_command_fits_a_background_by_default(tmp_path):
    """The ``fit`` command's file handling (measured spectra) fits a background unless told not to."""
    from pathlib import Path

    from recoilsim.io.experiment_file import load_experiment
    from recoilsim.workflows.fit_spectra import run

    ref = Path(__file__).resolve().parents[1] / "examples" / "reference.toml"
    exp = load_experiment(ref)
    ds = simulate(exp)
    els = [str(e) for e in ds["element"].values]
    counts = np.random.default_rng(2).poisson(ds["counts"].values + 1.5)  # (element, channel)
    csv = tmp_path / "spectra.csv"
    csv.write_text("channel," + ",".join(els) + "\n"
                   + "".join(f"{i}," + ",".join(str(c) for c in counts[:, i]) + "\n" for i in range(counts.shape[1])))
    r = run(ref, [csv], tmp_path / "out", n_nodes=12, progress=False)
    v, s = r.parameter(("background", "Li"), 0)
    assert r.status == "success", r.message
    assert abs(v - 1.5) < 3.0 * s
    r0 = run(ref, [csv], tmp_path / "out0", n_nodes=12, progress=False, background=None)
    assert r0.status == "poor_fit"  # the flat counts the model lacks
    with pytest.raises(RecoilsimError):
        r0.parameter(("background", "Li"), 0)
