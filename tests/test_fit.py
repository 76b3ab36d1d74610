"""Closed-loop tests of recoilsim.fitting.driver on the reference case (Cu / LiPON / LATP).

Data are Poisson draws from the *full* simulation (simulate) of a known Li profile, so the
linearisation of the fit model is part of what is tested.
"""

import numpy as np
import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.model.experiment import reference_experiment
from recoilsim.fitting.driver import FitParameters, Parameter, SlowParameter, deviance, fit
from recoilsim.model.sample import Profile
from recoilsim.forward.simulate import simulate

FLUENCE = 0.3  # x the reference fluence: ~2400 Li counts in the profile window


def _exp(profile=None, fluence=FLUENCE):
    # multiple scattering off: the 10 nm nodes and the coverage bands below were set for the
    # resolution without it (with it the Li edge below the Cu cap is ~2 ns = 18 channels wide
    # in sigma, and 10 nm nodes are no longer resolved by the data)
    e = reference_experiment(profile, multiple_scattering=False)
    e.beam.fluence *= fluence
    return e


def _mean(nodes, values, elements=("Li",)):
    ds = simulate(_exp(Profile("Li", nodes, values, kind="ratio")))
    return {e: ds["counts"].sel(element=e).values for e in elements}


def _draw(mu, seed):
    rng = np.random.default_rng(seed)
    return {e: rng.poisson(v).astype(float) for e, v in mu.items()}


NODES = np.arange(0.0, 70.0, 10.0)          # 7 nodes, resolved by the data: lambda = 0
EXCESS = 1.0 + 0.25 * np.exp(-NODES / 10.0)  # interface excess 25 %, gone within ~30 nm
BURIED = 1.0 + 0.3 * np.exp(-0.5 * ((NODES - 30.0) / 8.0) ** 2)  # buried Gaussian excess


def _profile_only(nodes=NODES, reg=0.0):
    return FitParameters(depth_nm=nodes, regularization=reg, a=Parameter(fixed=True), b=Parameter(fixed=True),
                         scale=Parameter(1.0, (0, np.inf), fixed=True), relinearize=False)


def test_deviance_closed_form():
    d = np.array([0.0, 1.0, 4.0])
    m = np.array([0.5, 1.0, 2.0])
    assert deviance(d, m) == pytest.approx(2 * (0.5 + 0 + (2 - 4 + 4 * np.log(2))))


@pytest.mark.parametrize("truth", [EXCESS, BURIED], ids=["interface-excess", "buried-gaussian"])
def test_closed_loop_truth_in_band(truth):
    """Full fit (profile + a + b + Q*Omega, with P, O, N pinning the scale) recovers the profile.

    One seed in detail (bounds, goodness of fit, model = full simulation, calibration), and the
    1-sigma coverage pooled over 10 seeds (70 node values): within [0.45, 0.90] around 0.683
    (3 binomial sigma for 70 independent values, widened for the correlation of neighbours).
    A single seed's fraction within 1 sigma is too noisy to test: seed 7 of the buried case has
    2 of 7 (30 seeds: 0.633, rms z 1.05).
    """
    mu = _mean(NODES, truth, ("Li", "P", "O", "N"))
    r = fit(_exp(), _draw(mu, 7), FitParameters(depth_nm=NODES, regularization=0.0))
    assert r.success, r.message
    ds = r.dataset
    p, s = ds.profile.values[0], ds.profile_sigma.values[0]
    z = np.abs(p - truth) / s
    print("recovered", np.round(p, 3), "sigma", np.round(s, 3), "z", np.round(z, 2))
    assert np.all(z < 3.5)
    assert ds.attrs["reduced_deviance"] < 1.3
    print("full-model difference", ds.attrs["full_model_max_rel_diff"])
    assert ds.attrs["full_model_max_rel_diff"] < 1e-3  # re-linearised at the fit: measured 2e-6 (was 0.03-0.05)
    a, b = ds.value.sel(parameter="a_ns").item(), ds.value.sel(parameter="b_ns").item()
    assert abs(a - 0.1039) < 4 * ds.sigma.sel(parameter="a_ns").item()
    assert abs(b - 29.08) < 4 * ds.sigma.sel(parameter="b_ns").item()
    hits = []
    for seed in range(10):
        r = fit(_exp(), _draw(mu, 100 + seed), FitParameters(depth_nm=NODES, regularization=0.0), verify=False)
        assert r.success, r.message
        hits.append(np.abs(r.dataset.profile.values[0] - truth) <= r.dataset.profile_sigma.values[0])
    print("pooled coverage over 10 seeds", np.mean(hits))
    assert 0.45 <= np.mean(hits) <= 0.90


def test_coverage_over_seeds():
    """1-sigma band coverage over 50 noise seeds (profile only, known calibration and Q*Omega).

    Pooled node coverage must lie within 3 binomial sigma of 0.683 for 50 independent seeds
    (conservative: nodes of one seed are correlated): [0.49, 0.88].
    """
    mu = _mean(NODES, EXCESS)
    par = _profile_only()
    hits = []
    for seed in range(50):
        r = fit(_exp(), _draw(mu, 1000 + seed), par, verify=False)
        assert r.success, r.message
        hits.append(np.abs(r.dataset.profile.values[0] - EXCESS) <= r.dataset.profile_sigma.values[0])
    rate = float(np.mean(hits))
    half = 3 * np.sqrt(0.683 * 0.317 / 50)
    print(f"coverage {rate:.3f} over 50 seeds x {NODES.size} nodes (allowed {0.683 - half:.2f}..{0.683 + half:.2f})")
    assert 0.683 - half <= rate <= 0.683 + half


def test_joint_three_potentials_shared_calibration_and_cu_thickness():
    """AP (flat), 0.006 V (interface excess), DS (smaller excess), sharing a, b, Q*Omega and Cu thickness.

    Formerly a known failure (node z up to 4.7, Cu thickness 31.8 +- 0.34 for truth 30): the linear
    model left P, O, N unchanged by the Li ratio (5.6 % off), held the stopping of the nominal
    composition in the profile columns (Li +18 %, P/O -40 % at v = 1.25), and differenced the
    thickness forward over 0.5 nm (sigma 0.23 nm where the profile likelihood gives 0.73 nm).
    50-seed coverage of this fit: benchmarks/coverage_fit.py joint (numbers in the report).

    Seeds 50-52 (kept from the original test) hold a real 3.75-sigma downward fluctuation at
    20 nm in the third spectrum (channels 589-593: 22, 19, 15 counts for a mean of 27): a fit of
    that Li spectrum alone with everything else fixed gives z = -3.75 there, and the joint fit,
    whose P and O spectra sharpen the Li sigma by 8 %, z = -4.3. Hence the per-node bound 4.5
    (21 nodes); coverage is judged over many seeds, not here.
    """
    truths = [np.ones(NODES.size), EXCESS, 1.0 + 0.1 * np.exp(-NODES / 10.0)]
    meas = [_draw(_mean(NODES, t, ("Li", "P", "O")), 50 + i) for i, t in enumerate(truths)]
    par = FitParameters(depth_nm=NODES, regularization=0.0,
                        slow=[SlowParameter("thickness", 0, value=31.0, bounds=(20.0, 40.0), step=0.15)])
    r = fit(_exp(), meas, par)
    assert r.success, r.message
    ds = r.dataset
    for i, t in enumerate(truths):
        z = np.abs(ds.profile.values[i] - t) / ds.profile_sigma.values[i]
        print(i, np.round(ds.profile.values[i], 3), np.round(z, 2))
        assert np.all(z < 4.5) and np.mean(z < 1) >= 0.4
    cu = ds.value.sel(parameter="thickness[0]").item()
    scu = ds.sigma.sel(parameter="thickness[0]").item()
    print("Cu thickness", cu, "+-", scu, "model vs simulate", ds.attrs["full_model_max_rel_diff"])
    assert abs(cu - 30.0) < 3 * scu and 0.3 < scu < 1.5
    assert ds.attrs["full_model_max_rel_diff"] < 2e-3


def test_jacobian_matches_full_simulation():
    """Profile and thickness columns of the fitted model against central differences of the full
    simulation at the solution (the stopping change of the profile included)."""
    from recoilsim.fitting.full_model import experiment_at, window_spectra
    mu = _mean(NODES, EXCESS, ("Li", "P", "O"))
    par = FitParameters(depth_nm=NODES, regularization=0.0, a=Parameter(fixed=True), b=Parameter(fixed=True),
                        slow=[SlowParameter("thickness", 0, step=0.15)])
    r = fit(_exp(), _draw(mu, 5), par, verify=False)
    assert r.success, r.message
    prob = r.problem
    p = prob.p.copy()
    p[prob.i_s[0]] = 1.0
    J, _ = prob.jac_model(p)
    for j, h in [(prob.i_prof[0][0], 0.01), (prob.i_prof[0][2], 0.01), (prob.i_slow[0], 0.05)]:
        cols = []
        for sgn in (1, -1):
            q = p.copy()
            q[j] += sgn * h
            m = window_spectra(experiment_at(prob, q, 0), prob.win[0])
            cols.append(np.concatenate([m[e] for e in prob.win[0]]))
        fd = (cols[0] - cols[1]) / (2 * h)
        err = np.abs(J[:, j] - fd).max() / np.abs(fd).max()
        print(prob.names[j], "max |J - FD| / max |FD|", err)
        assert err < 0.02
    # the public view of the same point: the experiment at the fitted values
    ds = r.dataset
    e = r.fitted_experiment(0)
    assert e.sample.layers[0].thickness_nm == pytest.approx(ds.value.sel(parameter="thickness[0]").item())
    li = [q for q in e.sample.layers[1].profiles if q.element == "Li"]
    assert len(li) == 1 and np.allclose(li[0].values, np.maximum(ds.profile.values[0], 0.0))
    assert e.beam.fluence == pytest.approx(_exp().beam.fluence * ds.value.sel(parameter="scale").item())
    with pytest.raises(RecoilsimError):
        r.fitted_experiment(1)


def test_no_counts_reported():
    mu = _mean(NODES, EXCESS)
    r = fit(_exp(), {"Li": np.zeros_like(mu["Li"])}, _profile_only())
    assert r.status == "no_counts" and not r.success and "no counts" in r.message
    with pytest.raises(RecoilsimError):
        r.fitted_experiment()


def test_no_effect_reported():
    nodes = np.array([0.0, 10.0, 2000.0, 2100.0])  # the deep nodes lie beyond the window
    mu = _mean(NODES, EXCESS)
    par = _profile_only(nodes)
    par.windows = {"Li": (540, 640)}
    r = fit(_exp(), _draw(mu, 1), par)
    assert r.status == "no_effect" and "no effect" in r.message


def test_degenerate_scale_reported():
    """Li alone cannot separate Q*Omega from a profile that holds its end value: reported."""
    mu = _mean(NODES, EXCESS)
    r = fit(_exp(), _draw(mu, 2), FitParameters(depth_nm=NODES, regularization=0.0, relinearize=False), verify=False)
    assert r.status == "degenerate" and not r.success, r.message


def test_not_converged_reported():
    mu = _mean(NODES, EXCESS)
    par = _profile_only()
    par.max_nfev = 1
    r = fit(_exp(), _draw(mu, 3), par, verify=False)
    assert r.status == "not_converged" and not r.success


def test_gcv_fine_grid_and_outputs(tmp_path):
    """50-node grid with GCV smoothing: converges, summary and plot work, coverage reported."""
    nodes = np.linspace(0.0, 58.8, 50)
    truth = 1.0 + 0.25 * np.exp(-nodes / 10.0)
    mu = _mean(nodes, truth, ("Li", "P", "O", "N"))
    r = fit(_exp(), _draw(mu, 11), FitParameters(depth_nm=nodes, regularization="gcv"), n_bootstrap=3)
    assert r.success, r.message
    ds = r.dataset
    cov = np.mean(np.abs(ds.profile.values[0] - truth) <= ds.profile_sigma.values[0])
    print("GCV lambda", ds.attrs["lambda"], "coverage on one seed", cov,
          "sigma", ds.profile_sigma.values[0][::10].round(3), "bootstrap", ds.profile_sigma_bootstrap.values[0][::10].round(3))
    assert ds.attrs["lambda"] > 0
    assert "deviance" in r.summary(print_it=False)
    assert r.plot(tmp_path / "fit.png").exists()
    ds.to_netcdf(tmp_path / "fit.nc")


def test_pearson_chi2_ignores_bins_the_model_leaves_empty():
    """Pearson's chi2 only over bins where the model expects >= 1 count: a single stray count in
    a bin with m ~ 1e-9 would add 1e9. Truth-generated data plus three stray counts ahead of the
    Li edge: the deviance rises by a few units per stray, Pearson per dof stays near 1."""
    mu = _mean(NODES, EXCESS)
    d = _draw(mu, 11)
    li = mu["Li"]
    empty = np.flatnonzero((li < 1e-6) & (np.arange(li.size) > 300))[-3:]  # just ahead of the edge
    assert empty.size == 3
    d["Li"][empty] += 1.0
    par = _profile_only()
    par.windows = {"Li": (480, 700)}  # wider than the default, which starts where the model does
    r = fit(_exp(), d, par, verify=False)
    assert r.success, r.message
    a = r.dataset.attrs
    assert a["deviance"] > 3 * 2 * np.log(1e5)  # each stray: 2 [m - 1 + ln(1/m)] > 23 for m < 1e-5
    assert a["pearson_bins"] < a["n_data"]
    assert 0.6 < a["pearson_chi2"] / (a["pearson_bins"] - a["p_eff"]) < 1.5
    assert a["p_pearson"] > 1e-3
