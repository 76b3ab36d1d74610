"""Spreading of bricks into channels (kernels/spreading.py) against the closed form (issue 17).

The fast scheme samples wide bricks as Gaussians (with the box's fourth cumulant) on coarse
grids and interpolates; the reference here is the exact channel integral of a box convolved
with a Gaussian, sigma/w [H((e1-lo)/s) - H((e1-hi)/s) - H((e0-lo)/s) + H((e0-hi)/s)] with
H(z) = z Phi(z) + phi(z), evaluated with scipy's ndtr (independent of the kernels' H table).
"""

import math

import numpy as np
import pytest
from scipy.special import ndtr

from recoilsim.kernels.spreading import spread_bricks


def _exact(ta, tb, Y, sig, a, b, n_ch):
    """(n_sp, n_ch) channel integrals of every brick, numpy closed form."""
    e = np.arange(n_ch + 1) - 0.5
    out = np.zeros((ta.shape[0], n_ch))

    def H(z):
        return z * ndtr(z) + np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)

    for s in range(ta.shape[0]):
        for i in range(ta.shape[1]):
            y = Y[s, i]
            if y <= 0:
                continue
            c1, c2 = (ta[s, i] - b) / a, (tb[s, i] - b) / a
            lo, hi = min(c1, c2), max(c1, c2)
            sg = sig[s, i] / abs(a)
            w = hi - lo
            if sg == 0.0:
                cum = np.clip((e - lo) / w, 0.0, 1.0) if w > 0 else (e >= lo).astype(float)
            elif w < 1e-9 * sg:
                cum = ndtr((e - lo) / sg)
            else:
                cum = sg / w * (H((e - lo) / sg) - H((e - hi) / sg))
            out[s] += y * np.diff(cum)
    return out


def _bricks(rng, n_sp, n, t0, t1, sig_lo, sig_hi, wsig_hi):
    """Random bricks: centres in [t0, t1] ns, sigma log-uniform, width up to wsig_hi x sigma."""
    sig = np.exp(rng.uniform(np.log(sig_lo), np.log(sig_hi), (n_sp, n)))
    w = sig * rng.uniform(0.0, wsig_hi, (n_sp, n))
    c = rng.uniform(t0, t1, (n_sp, n))
    Y = rng.uniform(0.1, 10.0, (n_sp, n))
    Y[rng.random((n_sp, n)) < 0.1] = 0.0  # empty bricks are skipped
    return c - 0.5 * w, c + 0.5 * w, Y, sig


@pytest.mark.parametrize("a,b,n_ch", [(0.1, 70.05, 4000), (0.02, 70.01, 9001), (-0.1, 470.0, 4000)])
@pytest.mark.parametrize("sig_range", [(0.005, 0.5), (0.05, 2.0), (0.3, 40.0), (20.0, 200.0)])
def test_fast_spreading_matches_closed_form(a, b, n_ch, sig_range):
    """Every species within 2e-5 of its peak (issue 17 allows 1e-4); narrow, wide and
    far-out-of-window bricks, channel widths 0.1 and 0.02 ns, a negative calibration slope."""
    rng = np.random.default_rng(int(1000 * sig_range[0]) + n_ch)
    t_lo, t_hi = sorted((b - 0.5 * a, b + (n_ch - 0.5) * a))
    span = t_hi - t_lo
    ta, tb, Y, sig = _bricks(rng, 3, 300, t_lo - 0.3 * span, t_hi + 0.3 * span, *sig_range, wsig_hi=0.6)
    # a few boxes much wider than their sigma (spread in closed form)
    ta[:, :10] -= 3.0 * sig[:, :10] + 50 * abs(a)
    fast = np.zeros((3, n_ch))
    spread_bricks(ta, tb, Y, sig, ta.shape[1], a, b, n_ch, True, fast)
    ref = _exact(ta, tb, Y, sig, a, b, n_ch)
    peak = ref.max(axis=1)
    assert np.all(peak > 0)
    assert np.max(np.abs(fast - ref).max(axis=1) / peak) < 2e-5
    assert np.all(fast >= 0.0)


def test_counts_conserved_and_bare_boxes_exact():
    """Bricks well inside the window keep their counts (to 1e-8: the Gaussians are cut at +-6
    sigma, 2e-9 of their mass); without resolution every
    brick is its exact overlap with the channels."""
    rng = np.random.default_rng(7)
    a, b, n_ch = 0.1, 70.05, 20000
    ta, tb, Y, sig = _bricks(rng, 2, 400, 400.0, 1500.0, 0.3, 60.0, 0.5)
    out = np.zeros((2, n_ch))
    spread_bricks(ta, tb, Y, sig, ta.shape[1], a, b, n_ch, True, out)
    assert out.sum(axis=1) == pytest.approx(Y.sum(axis=1), rel=1e-8)
    bare = np.zeros((2, n_ch))
    spread_bricks(ta, tb, Y, sig, ta.shape[1], a, b, n_ch, False, bare)
    assert np.max(np.abs(bare - _exact(ta, tb, Y, 0.0 * sig, a, b, n_ch))) < 1e-12 * Y.max()


def test_only_the_first_n_bricks_are_spread():
    """n_bricks limits the bricks read (the kernel's arrays may be longer than the brick count)."""
    rng = np.random.default_rng(8)
    ta, tb, Y, sig = _bricks(rng, 1, 50, 80.0, 150.0, 0.5, 5.0, 0.5)
    part = np.zeros((1, 1000))
    spread_bricks(ta, tb, Y, sig, 20, 0.1, 70.05, 1000, True, part)
    ref = _exact(ta[:, :20], tb[:, :20], Y[:, :20], sig[:, :20], 0.1, 70.05, 1000)
    assert np.max(np.abs(part - ref)) < 2e-5 * ref.max()
