"""Ratio spectra: moving average, Poisson ratio uncertainty, window averages, zero counts."""

import numpy as np
import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.analysis.ratio import (attach_depth, average_ratio, channel_mask, moving_average,
                             moving_sum_matrix, ratio_spectrum)

xr = pytest.importorskip("xarray")


@pytest.mark.parametrize("w", [1, 3, 5, 9])
def test_moving_average_matches_numpy_convolution(w):
    rng = np.random.default_rng(0)
    c = rng.poisson(30, 200).astype(float)
    h = w // 2
    k = np.ones(w) / w
    v, s = moving_average(c, w, edges="valid")
    np.testing.assert_allclose(v, np.convolve(c, k, mode="valid"), rtol=1e-12)
    # Poisson: var(sum) = sum of counts -> sigma = sqrt(conv(c, ones))/w
    np.testing.assert_allclose(s, np.sqrt(np.convolve(c, np.ones(w), mode="valid")) / w, rtol=1e-12)
    # shrink: interior identical to the full convolution, edges with a symmetric shrunken window
    vs, ss = moving_average(c, w, edges="shrink")
    assert vs.shape == c.shape
    np.testing.assert_allclose(vs[h:c.size - h], np.convolve(c, k, mode="valid"), rtol=1e-12)
    for i in range(h):
        np.testing.assert_allclose(vs[i], c[: 2 * i + 1].mean())
        np.testing.assert_allclose(vs[-1 - i], c[c.size - 1 - 2 * i:].mean())
        np.testing.assert_allclose(ss[i], np.sqrt(c[: 2 * i + 1].sum()) / (2 * i + 1))
    np.testing.assert_allclose(moving_sum_matrix(c.size, w, "shrink") @ c, vs * (2 * np.minimum(
        h, np.minimum(np.arange(c.size), c.size - 1 - np.arange(c.size))) + 1))


def test_moving_average_sigma_monte_carlo():
    rng = np.random.default_rng(1)
    lam = np.linspace(5, 50, 40)
    draws = rng.poisson(lam, size=(20000, lam.size)).astype(float)
    avgs = np.array([np.convolve(d, np.ones(5) / 5, mode="valid") for d in draws[:4000]])
    v, s = moving_average(lam, 5, edges="valid")      # sigma at the expectation
    np.testing.assert_allclose(avgs.std(axis=0), s, rtol=0.05)


def test_moving_average_xarray_and_bad_window():
    c = attach_depth(np.arange(20.0), np.linspace(0, 19, 20))
    v, s = moving_average(c, 5, edges="valid")
    assert isinstance(v, xr.DataArray) and v.sizes["channel"] == 16
    assert v["channel"].values[0] == 2 and "depth_nm" in v.coords
    for bad in (4, 0, -3, 2.5, "5"):
        with pytest.raises(RecoilsimError) as ei:
            moving_average(np.ones(10), bad)
        assert ei.value.field == "window"
    with pytest.raises(RecoilsimError):
        moving_average(np.ones(10), 5, edges="same")
    with pytest.raises(RecoilsimError):
        moving_average(np.array([1.0, -1.0, 2.0]))


def test_ratio_uncertainty_against_monte_carlo():
    rng = np.random.default_rng(2)
    la = np.full(30, 60.0) * np.linspace(1.0, 1.25, 30)
    lb = np.full(30, 60.0)
    n = 20000
    A = rng.poisson(la, size=(n, 30))
    B = rng.poisson(lb, size=(n, 30))
    rs = np.array([ratio_spectrum(a, b, window=5).ratio for a, b in zip(A[:5000], B[:5000])])
    # sigma quoted by the code for a typical draw (here at the expectation) vs the MC spread
    r0, s0, ok = ratio_spectrum(la, lb, window=5)
    assert ok.all()
    np.testing.assert_allclose(rs.std(axis=0), s0, rtol=0.06)
    # E[A/B] = r (1 + 1/E[B] + ...): the known second-order bias of a ratio of Poisson sums
    Bsum = moving_sum_matrix(30, 5) @ lb
    np.testing.assert_allclose(rs.mean(axis=0), r0 * (1 + 1 / Bsum), rtol=0.004)
    # unsmoothed single channel too (at 60 counts the delta method is ~5 % low: higher-order
    # terms of order 1/B; at 600 counts it is within 1 %)
    A1, B1 = rng.poisson(10 * la[3], n), rng.poisson(10 * lb[3], n)
    _, s1, _ = ratio_spectrum(10 * la, 10 * lb, window=1)
    assert (A1 / B1).std() == pytest.approx(s1[3], rel=0.02)


def test_window_average_recovers_true_ratio_at_expected_rate():
    # ratio profile 1.25 -> 1.0 over the window (like the paper's Fig. 4c) on a flat denominator
    true_profile = np.ones(100)
    true_profile[40:76] = np.linspace(1.25, 1.0, 36)
    lb = np.full(100, 40.0)
    la = lb * true_profile
    win = (40, 75)
    true_sum = la[40:76].sum() / lb[40:76].sum()
    rng = np.random.default_rng(3)
    # the smoothed-mean estimator's target: mean of the noiseless smoothed ratio
    mean_target = average_ratio(la, lb, channels=win, estimator="mean").ratio
    hits_sum = hits_mean = 0
    pulls = []
    nseed = 2000
    for _ in range(nseed):
        a, b = rng.poisson(la), rng.poisson(lb)
        ws = average_ratio(a, b, channels=win)
        wm = average_ratio(a, b, channels=win, estimator="mean")
        hits_sum += abs(ws.ratio - true_sum) <= ws.sigma
        pulls.append((ws.ratio - true_sum) / ws.sigma)
        hits_mean += abs(wm.ratio - mean_target) <= wm.sigma
    # 1-sigma coverage 68.3 % +- 3 binomial sd (1.0 %)
    assert 0.65 < hits_sum / nseed < 0.715
    assert 0.65 < hits_mean / nseed < 0.715
    assert abs(np.mean(pulls)) < 0.1 and 0.93 < np.std(pulls) < 1.07


def test_average_ratio_depth_window_and_xarray():
    z = np.linspace(-20.0, 80.0, 101)   # 1 nm per channel, interface at channel 20
    a = attach_depth(np.full(101, 110.0), z)
    b = attach_depth(np.full(101, 100.0), z)
    w = average_ratio(a, b, depth_nm=(0, 30))
    np.testing.assert_array_equal(w.channels, np.arange(20, 51))
    assert w.ratio == pytest.approx(1.1)
    assert w.sigma == pytest.approx(1.1 * np.sqrt(1 / (31 * 110) + 1 / (31 * 100)))
    w2 = average_ratio(a.values, b.values, depth_nm=(30, 0), depth=z)
    assert w2.ratio == pytest.approx(1.1) and w2.channels.size == 31
    rs = ratio_spectrum(a, b, scale=2.0)
    assert isinstance(rs.ratio, xr.DataArray) and "depth_nm" in rs.ratio.coords
    np.testing.assert_allclose(rs.ratio.values, 2.2)
    # channel coordinate honoured for DataArrays with an offset channel axis
    c = xr.DataArray(np.arange(10.0) + 1, dims="channel", coords={"channel": np.arange(500, 510)})
    assert channel_mask(c, channels=(502, 503)).sum() == 2
    with pytest.raises(RecoilsimError):
        average_ratio(a, b)                                   # no window
    with pytest.raises(RecoilsimError):
        average_ratio(a.values, b.values, depth_nm=(0, 30))   # no depth
    with pytest.raises(RecoilsimError):
        average_ratio(a, b, channels=(1000, 2000))            # empty window
    with pytest.raises(RecoilsimError):
        ratio_spectrum(np.ones(5), np.ones(6))
    with pytest.raises(RecoilsimError):
        ratio_spectrum(np.ones(5), np.ones(5), scale=0)


def test_mean_estimator_accounts_for_smoothing_correlation():
    rng = np.random.default_rng(4)
    la, lb = np.full(60, 80.0), np.full(60, 80.0)
    vals, sig = [], []
    for _ in range(3000):
        w = average_ratio(rng.poisson(la), rng.poisson(lb), channels=(20, 39), estimator="mean")
        vals.append(w.ratio)
        sig.append(w.sigma)
    # sigma of the mean of 20 correlated smoothed ratios matches the spread; a naive
    # independent-channel formula would be sqrt(5) times too small
    assert np.std(vals) == pytest.approx(np.median(sig), rel=0.06)


def test_zero_counts_never_crash():
    a = np.array([0, 0, 5, 0, 0, 0, 0, 3, 0, 0], dtype=float)
    b = np.array([0, 0, 0, 0, 0, 0, 4, 0, 0, 0], dtype=float)
    for w in (1, 3, 5):
        for edges in ("shrink", "valid"):
            r, s, ok = ratio_spectrum(a, b, window=w, edges=edges)
            assert np.all(np.isnan(r[~ok])) and np.all(np.isnan(s[~ok]))
            assert np.all(np.isfinite(r[ok])) and np.all(s[ok] > 0)
    r, s, ok = ratio_spectrum(a, b, window=1)
    np.testing.assert_array_equal(ok, b > 0)
    assert r[6] == 0 and s[6] > 0                  # zero numerator: finite, non-zero sigma
    for est in ("sum", "mean"):
        w = average_ratio(a, b, channels=(0, 3), estimator=est)
        assert np.isnan(w.ratio) and np.isnan(w.sigma)
        w = average_ratio(np.zeros(10), b, channels=(0, 9), estimator=est)
        assert w.ratio == 0 and w.sigma > 0
    r, s, ok = ratio_spectrum(np.zeros(3), np.zeros(3))
    assert not ok.any()
