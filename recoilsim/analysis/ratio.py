"""Ratio spectra of one element at two electrode states, as in Kurihara et al. (2024).

Kurihara et al., J Solid State Electrochem (2024), doi:10.1007/s10008-024-05865-y, Fig. 4:
TOF spectra of Li plotted as a 5-point moving average, the Li ratio 0.006 V / 1.8 V(AP) per
channel, and the average ratio over the channels 570-605 (the 30 nm below the Cu/LiPON
interface). This module does the same on counts, with Poisson uncertainties.

Conventions
-----------
* Inputs are counts per channel (``>= 0``; non-integer normalised counts are accepted, their
  variance is still taken as the value, i.e. Poisson in the counts given). Numpy arrays use
  the array index as channel number; ``xarray.DataArray`` inputs must have the dim
  ``channel`` and are returned as xarray with their coordinates (e.g. ``depth_nm``).
* Moving average with an odd ``window`` ``w = 2h + 1`` centred on each channel. Edges:
  ``'shrink'`` (default) keeps every channel and shrinks the window symmetrically near the
  ends (channel ``i`` uses half-width ``min(h, i, n-1-i)``, so the first and last channels are
  unsmoothed and every average stays centred); ``'valid'`` drops the ``h`` channels at each end.
* Uncertainty of a moving average of independent Poisson counts: the window sum ``S`` has
  variance ``S`` (estimated by the observed sum), so ``var(S/m) = S/m^2``. Neighbouring
  averages share counts and are correlated; never treat them as independent.
* Ratio per channel ``r = scale * A / B`` of the two moving sums (the ratio of two moving
  averages with the same window equals the ratio of the sums). ``scale`` is an exact
  normalisation (e.g. fluence of the denominator over fluence of the numerator). Delta-method
  variance ``var r = scale^2 (A / B^2 + A^2 / B^3)``, i.e. ``(sigma_r/r)^2 = 1/A + 1/B``.
  **Zero counts**: where ``B == 0`` the ratio and its sigma are NaN and ``valid`` is False
  (no exception); where ``A == 0 < B`` the ratio is 0 and the numerator variance is taken as
  1 count (instead of 0) so that a zero ratio never claims zero uncertainty. The delta method
  is accurate for sums above about 20 counts; below that treat the sigmas as indicative. The
  ratio of Poisson sums is biased by about ``+r/B`` (``E[A/B] = r (1 + 1/E[B] + ...)``), which
  is why a wide window (large ``B``) should be used for averages.
* Window average over a channel or depth range (:func:`average_ratio`): default estimator
  ``'sum'`` = ``scale * sum(a) / sum(b)`` on the raw (unsmoothed) counts in the window, which
  avoids the correlations the moving average introduces and is the maximum-likelihood ratio
  of two Poisson rates with a common shape. ``'mean'`` = the mean of the smoothed per-channel
  ratios over the window (the paper's "area" of Fig. 4d divided by the width); its sigma is
  propagated through the moving sums with the full Jacobian, so the correlations are
  accounted for. Note that ``'mean'`` draws counts from up to ``h`` channels outside the window.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import RecoilsimError

__all__ = [
    "MovingAverage",
    "RatioSpectrum",
    "WindowRatio",
    "attach_depth",
    "average_ratio",
    "channel_mask",
    "moving_average",
    "moving_sum_matrix",
    "ratio_spectrum",
]

_EDGES = ("shrink", "valid")


class MovingAverage(NamedTuple):
    """Moving average and its standard deviation (arrays or DataArrays)."""

    value: object
    sigma: object


class RatioSpectrum(NamedTuple):
    """Per-channel ratio, its standard deviation and the mask of usable channels.

    ``ratio`` and ``sigma`` are NaN where ``valid`` is False (zero denominator).
    """

    ratio: object
    sigma: object
    valid: object


class WindowRatio(NamedTuple):
    """Average ratio over a window of channels.

    Attributes
    ----------
    ratio, sigma : float
        The estimate and its standard deviation (NaN if the window has no denominator counts).
    channels : ndarray
        Channel numbers used.
    estimator : str
        ``'sum'`` or ``'mean'``.
    numerator_counts, denominator_counts : float
        Raw counts summed over the window.
    """

    ratio: float
    sigma: float
    channels: np.ndarray
    estimator: str
    numerator_counts: float
    denominator_counts: float


def _is_xr(x) -> bool:
    return hasattr(x, "dims") and hasattr(x, "coords") and hasattr(x, "values")


def _counts(name: str, x) -> np.ndarray:
    if _is_xr(x):
        if tuple(x.dims) != ("channel",):
            raise RecoilsimError(name, f"DataArray with dims {tuple(x.dims)}", "a 1-D DataArray with dim 'channel'")
        x = x.values
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise RecoilsimError(name, type(x).__name__, "a 1-D array of counts") from None
    if a.ndim != 1 or a.size == 0:
        raise RecoilsimError(name, f"shape {a.shape}", "a non-empty 1-D array of counts")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise RecoilsimError(name, "array with negative or non-finite entries", "finite counts >= 0")
    return a


def _window(window, n: int, edges: str) -> int:
    try:
        w = int(window)
    except (TypeError, ValueError):
        raise RecoilsimError("window", window, "an odd integer >= 1") from None
    if w != window or w < 1 or w % 2 == 0:
        raise RecoilsimError("window", window, "an odd integer >= 1")
    if edges not in _EDGES:
        raise RecoilsimError("edges", edges, f"one of {_EDGES}")
    if edges == "valid" and w > n:
        raise RecoilsimError("window", window, f"<= the number of channels ({n}) with edges='valid'")
    return w


def _half_widths(n: int, w: int, edges: str):
    """Centre channels and their half-widths."""
    h = w // 2
    if edges == "valid":
        idx = np.arange(h, n - h)
        hw = np.full(idx.size, h)
    else:
        idx = np.arange(n)
        hw = np.minimum(h, np.minimum(idx, n - 1 - idx))
    return idx, hw


def moving_sum_matrix(n: int, window: int = 5, edges: str = "shrink") -> np.ndarray:
    """Matrix ``M`` (m x n) of 0/1 with ``M @ counts`` = the moving sums (see module doc)."""
    w = _window(window, n, edges)
    idx, hw = _half_widths(n, w, edges)
    j = np.arange(n)
    return (np.abs(j[None, :] - idx[:, None]) <= hw[:, None]).astype(float)


def _moving_sum(a: np.ndarray, w: int, edges: str):
    idx, hw = _half_widths(a.size, w, edges)
    cs = np.concatenate([[0.0], np.cumsum(a)])
    s = cs[idx + hw + 1] - cs[idx - hw]
    # cumulative sums of non-negative numbers can leave tiny negative round-off
    return np.maximum(s, 0.0), (2 * hw + 1).astype(float), idx


def _wrap(template, values: dict, idx: np.ndarray, n: int):
    """Wrap arrays in xarray like ``template`` (keeping the rows ``idx``)."""
    import xarray as xr
    sub = template if idx.size == n else template.isel(channel=idx)
    coords = {k: v for k, v in sub.coords.items()}
    out = {k: xr.DataArray(v, dims=("channel",), coords=coords, name=k) for k, v in values.items()}
    return out


def moving_average(counts, window: int = 5, edges: str = "shrink") -> MovingAverage:
    """Centred moving average of counts with its Poisson standard deviation.

    The paper's spectra (Kurihara et al. 2024, Fig. 4) are 5-point moving averages.

    Parameters
    ----------
    counts : array (n,) or DataArray with dim ``channel``
    window : int
        Odd number of channels, default 5.
    edges : {'shrink', 'valid'}
        Edge handling, see module docstring.

    Returns
    -------
    MovingAverage
        ``value = S/m``, ``sigma = sqrt(S)/m`` (``S`` window sum, ``m`` channels in it).
        DataArrays (same coordinates; trimmed for ``'valid'``) when given a DataArray.
    """
    a = _counts("counts", counts)
    w = _window(window, a.size, edges)
    s, m, idx = _moving_sum(a, w, edges)
    val, sig = s / m, np.sqrt(s) / m
    if _is_xr(counts):
        d = _wrap(counts, {"moving_average": val, "moving_average_sigma": sig}, idx, a.size)
        return MovingAverage(d["moving_average"], d["moving_average_sigma"])
    return MovingAverage(val, sig)


def _pair(numerator, denominator):
    a = _counts("numerator", numerator)
    b = _counts("denominator", denominator)
    if a.shape != b.shape:
        raise RecoilsimError("denominator", f"{b.size} channels", f"{a.size} channels like numerator")
    if _is_xr(numerator) and _is_xr(denominator):
        ca, cb = numerator["channel"].values, denominator["channel"].values
        if not np.array_equal(ca, cb):
            raise RecoilsimError("denominator", "channel coordinate", "the same channel coordinate as numerator")
    return a, b


def _scale(scale) -> float:
    try:
        s = float(scale)
    except (TypeError, ValueError):
        raise RecoilsimError("scale", scale, "a finite number > 0") from None
    if not np.isfinite(s) or s <= 0:
        raise RecoilsimError("scale", scale, "a finite number > 0")
    return s


def _ratio(A, B, scale):
    valid = B > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        Bs = np.where(valid, B, 1.0)
        r = scale * A / Bs
        varA = np.maximum(A, 1.0)
        var = scale ** 2 * (varA / Bs ** 2 + A ** 2 / Bs ** 3)
    r = np.where(valid, r, np.nan)
    sig = np.where(valid, np.sqrt(var), np.nan)
    return r, sig, valid


def ratio_spectrum(numerator, denominator, window: int = 5, edges: str = "shrink",
                   scale: float = 1.0) -> RatioSpectrum:
    """Per-channel ratio of two moving-averaged spectra with its Poisson uncertainty.

    ``r = scale * A / B`` with ``A, B`` the moving sums (``window``, ``edges`` as in
    :func:`moving_average`; ``window=1`` for no smoothing). Zero denominators give NaN and
    ``valid = False``, never an exception (module docstring).

    Returns
    -------
    RatioSpectrum
        numpy arrays, or DataArrays with the numerator's coordinates (e.g. ``depth_nm``)
        when the numerator is a DataArray.
    """
    a, b = _pair(numerator, denominator)
    w = _window(window, a.size, edges)
    sc = _scale(scale)
    A, _, idx = _moving_sum(a, w, edges)
    B, _, _ = _moving_sum(b, w, edges)
    r, sig, valid = _ratio(A, B, sc)
    if _is_xr(numerator):
        d = _wrap(numerator, {"ratio": r, "ratio_sigma": sig, "valid": valid}, idx, a.size)
        return RatioSpectrum(d["ratio"], d["ratio_sigma"], d["valid"])
    return RatioSpectrum(r, sig, valid)


def attach_depth(counts, depth_nm):
    """Return ``counts`` as a DataArray (dim ``channel``) carrying the coordinate ``depth_nm``.

    ``depth_nm`` is the per-channel depth (nm) from the forward model (its spectra Dataset has
    the coordinate ``depth_nm`` on dim ``channel``); channels outside the sample may hold NaN.
    """
    import xarray as xr
    a = _counts("counts", counts)
    z = np.asarray(depth_nm, dtype=float)
    if z.shape != a.shape:
        raise RecoilsimError("depth_nm", f"shape {z.shape}", f"shape {a.shape} (one depth per channel)")
    if _is_xr(counts):
        return counts.assign_coords(depth_nm=("channel", z))
    return xr.DataArray(a, dims=("channel",),
                        coords={"channel": np.arange(a.size), "depth_nm": ("channel", z)})


def _channel_numbers(x, n: int) -> np.ndarray:
    if _is_xr(x) and "channel" in x.coords:
        return np.asarray(x["channel"].values)
    return np.arange(n)


def channel_mask(n_or_spectrum, channels=None, depth_nm=None, depth=None) -> np.ndarray:
    """Boolean mask of the channels in a channel window or a depth window.

    Parameters
    ----------
    n_or_spectrum : int, array or DataArray
        Number of channels, or a spectrum (its ``channel`` coordinate and ``depth_nm``
        coordinate are used when it is a DataArray).
    channels : (lo, hi), optional
        Inclusive range of channel numbers (the paper's 570-605).
    depth_nm : (lo, hi), optional
        Inclusive depth range in nm; needs ``depth`` or a ``depth_nm`` coordinate.
    depth : array (n,), optional
        Per-channel depth in nm (NaN for channels without a depth).
    """
    if isinstance(n_or_spectrum, (int, np.integer)):
        n = int(n_or_spectrum)
        chan = np.arange(n)
    else:
        n = np.asarray(n_or_spectrum.values if _is_xr(n_or_spectrum) else n_or_spectrum).shape[0]
        chan = _channel_numbers(n_or_spectrum, n)
    if (channels is None) == (depth_nm is None):
        raise RecoilsimError("channels/depth_nm", (channels, depth_nm), "exactly one window: channels=(lo, hi) or depth_nm=(lo, hi)")
    win = channels if channels is not None else depth_nm
    fname = "channels" if channels is not None else "depth_nm"
    try:
        lo, hi = sorted(float(v) for v in win)
    except (TypeError, ValueError):
        raise RecoilsimError(fname, win, "a pair (lo, hi) of numbers") from None
    if channels is not None:
        mask = (chan >= lo) & (chan <= hi)
    else:
        if depth is None:
            if _is_xr(n_or_spectrum) and "depth_nm" in n_or_spectrum.coords:
                depth = n_or_spectrum["depth_nm"].values
            else:
                raise RecoilsimError("depth", None, "a per-channel depth array (nm) or a DataArray with coordinate 'depth_nm'")
        z = np.asarray(depth, dtype=float)
        if z.shape != (n,):
            raise RecoilsimError("depth", f"shape {z.shape}", f"shape {(n,)} (one depth per channel)")
        with np.errstate(invalid="ignore"):
            mask = (z >= lo) & (z <= hi)
    if not mask.any():
        raise RecoilsimError(fname, win, "a window that contains at least one channel")
    return mask


def average_ratio(numerator, denominator, channels=None, depth_nm=None, depth=None,
                  scale: float = 1.0, estimator: str = "sum", window: int = 5,
                  edges: str = "shrink") -> WindowRatio:
    """Average ratio over a channel window or a depth window, with its uncertainty.

    Kurihara et al. (2024) report 1.11 over channels 570-605 (30 nm below the interface).

    Parameters
    ----------
    numerator, denominator : arrays (n,) or DataArrays with dim ``channel``
        Raw counts (not smoothed).
    channels : (lo, hi), optional
        Inclusive channel-number window.
    depth_nm : (lo, hi), optional
        Inclusive depth window (nm) with ``depth`` (per-channel depth) or the numerator's
        ``depth_nm`` coordinate.
    scale : float
        Exact normalisation multiplying the ratio.
    estimator : {'sum', 'mean'}
        ``'sum'``: ``scale * sum(a)/sum(b)`` over the window, raw counts, variance
        ``r^2 (1/sum(a) + 1/sum(b))``. ``'mean'``: mean of the ``window``-point smoothed
        ratios over the window (channels with zero denominator skipped), with the variance
        ``sum_j (g_j^2 a_j + h_j^2 b_j)`` (``g, h``: derivatives wrt raw counts ``a_j, b_j``) from the exact gradient through the moving sums,
        so the correlation from the smoothing is accounted for.

    Returns
    -------
    WindowRatio
        ratio and sigma are NaN (no exception) when the window has no denominator counts.
    """
    a, b = _pair(numerator, denominator)
    sc = _scale(scale)
    if estimator not in ("sum", "mean"):
        raise RecoilsimError("estimator", estimator, "'sum' or 'mean'")
    if depth is None and depth_nm is not None and _is_xr(numerator) and "depth_nm" in numerator.coords:
        depth = numerator["depth_nm"].values
    mask = channel_mask(numerator if _is_xr(numerator) else a.size, channels, depth_nm, depth)
    chan = _channel_numbers(numerator, a.size)[mask]
    SA, SB = float(a[mask].sum()), float(b[mask].sum())
    if estimator == "sum":
        if SB <= 0:
            return WindowRatio(np.nan, np.nan, chan, estimator, SA, SB)
        r = sc * SA / SB
        sig = sc * np.sqrt(max(SA, 1.0) / SB ** 2 + SA ** 2 / SB ** 3)
        return WindowRatio(float(r), float(sig), chan, estimator, SA, SB)
    M = moving_sum_matrix(a.size, window, edges)
    idx, _ = _half_widths(a.size, _window(window, a.size, edges), edges)
    rows = mask[idx]
    Mw = M[rows]
    A, B = Mw @ a, Mw @ b
    ok = B > 0
    if not ok.any():
        return WindowRatio(np.nan, np.nan, chan, estimator, SA, SB)
    Mw, A, B = Mw[ok], A[ok], B[ok]
    k = A.size
    r = sc * float(np.mean(A / B))
    g = sc * (Mw / B[:, None]).sum(axis=0) / k            # d r / d a_j
    h = -sc * (Mw * (A / B ** 2)[:, None]).sum(axis=0) / k  # d r / d b_j
    va = a
    if a @ Mw.sum(axis=0) == 0:
        # no numerator counts at all: spread a variance of 1 count over the contributing
        # channels (the same floor as the per-channel ratio) instead of claiming sigma = 0
        used = Mw.sum(axis=0) > 0
        va = used / used.sum()
    var = float(np.sum(g ** 2 * va + h ** 2 * b))
    return WindowRatio(r, float(np.sqrt(var)), chan, estimator, SA, SB)
