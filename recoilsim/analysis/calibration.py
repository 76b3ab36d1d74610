"""TOF channel calibration t = a * channel + b from features of known flight time.

Features are e.g. the surface edge of a known recoil (its time from the recoil energy at the
surface and the flight length, :func:`feature_time_ns`) or an interface of known depth. With two
or more features, ``a`` and ``b`` follow from a weighted least-squares straight-line fit. Channel
uncertainties enter through the effective-variance method (sigma_i^2 = sigma_t,i^2 +
a^2 sigma_ch,i^2, iterated; Orear, Am. J. Phys. 50 (1982) 912), the standard treatment of errors
in the abscissa for a straight line. The covariance is (J^T W J)^-1; when no uncertainties are
given it is scaled by the residual variance (needs three or more features).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import RecoilsimError

__all__ = ["TofCalibration", "fit_tof_calibration", "feature_time_ns", "calibration_from_potku"]


@dataclass(frozen=True)
class TofCalibration:
    """Linear TOF calibration t_ns = a * channel + b, with its covariance.

    Attributes
    ----------
    a : float
        ns per channel (either sign).
    b : float
        ns at channel 0.
    cov : numpy.ndarray (2, 2)
        Covariance of (a, b); NaN where it cannot be estimated (two features, no uncertainties).
    chi2 : float
        Weighted sum of squared residuals (NaN if unweighted).
    dof : int
        Number of features minus 2.
    """

    a: float
    b: float
    cov: np.ndarray
    chi2: float = float("nan")
    dof: int = 0

    @property
    def sigma_a(self) -> float:
        return float(math.sqrt(self.cov[0, 0])) if np.isfinite(self.cov[0, 0]) else float("nan")

    @property
    def sigma_b(self) -> float:
        return float(math.sqrt(self.cov[1, 1])) if np.isfinite(self.cov[1, 1]) else float("nan")

    def time_ns(self, channel):
        """Time (ns) of channel(s)."""
        return self.a * np.asarray(channel, dtype=float) + self.b

    def channel(self, time_ns):
        """Channel (float) of time(s) in ns."""
        return (np.asarray(time_ns, dtype=float) - self.b) / self.a

    def time_sigma_ns(self, channel):
        """Standard uncertainty of the calibrated time at channel(s), from ``cov``."""
        ch = np.asarray(channel, dtype=float)
        var = ch * ch * self.cov[0, 0] + 2 * ch * self.cov[0, 1] + self.cov[1, 1]
        return np.sqrt(var)

    def as_dict(self) -> dict:
        return {"slope_ns": self.a, "offset_ns": self.b, "cov": self.cov.tolist(), "chi2": self.chi2, "dof": self.dof}


def _vec(name, v, n=None):
    try:
        arr = np.atleast_1d(np.asarray(v, dtype=float))
    except (TypeError, ValueError):
        raise RecoilsimError(name, v, "a sequence of finite numbers") from None
    if arr.ndim != 1:
        raise RecoilsimError(name, v, "a 1-D sequence of numbers")
    if not np.all(np.isfinite(arr)):
        raise RecoilsimError(name, v, "finite numbers")
    if n is not None and arr.size not in (1, n):
        raise RecoilsimError(name, v, f"one value or {n} values (one per feature)")
    if n is not None and arr.size == 1:
        arr = np.full(n, arr[0])
    return arr


def fit_tof_calibration(channels, times_ns, channel_sigma=None, time_sigma_ns=None,
                        max_iter: int = 50) -> TofCalibration:
    """Fit t = a * channel + b to features (channel, known time) by weighted least squares.

    Parameters
    ----------
    channels : sequence of float
        Measured channel of each feature (e.g. a surface-edge position).
    times_ns : sequence of float
        Known time of flight of each feature (ns), e.g. from :func:`feature_time_ns`.
    channel_sigma : float or sequence, optional
        Standard uncertainty of each channel (propagated with the effective-variance method).
    time_sigma_ns : float or sequence, optional
        Standard uncertainty of each known time (ns).

    Returns
    -------
    TofCalibration
    """
    ch = _vec("channels", channels)
    t = _vec("times_ns", times_ns)
    n = ch.size
    if n < 2:
        raise RecoilsimError("channels", channels, "at least two features")
    if t.size != n:
        raise RecoilsimError("times_ns", times_ns, f"one time per channel ({n})")
    if np.unique(ch).size < 2:
        raise RecoilsimError("channels", channels, "at least two different channels")
    sch = None if channel_sigma is None else _vec("channel_sigma", channel_sigma, n)
    st = None if time_sigma_ns is None else _vec("time_sigma_ns", time_sigma_ns, n)
    for name, s in (("channel_sigma", sch), ("time_sigma_ns", st)):
        if s is not None and np.any(s < 0):
            raise RecoilsimError(name, s.tolist(), "uncertainties >= 0")
    weighted = sch is not None or st is not None
    J = np.column_stack([ch, np.ones(n)])
    a, b = np.linalg.lstsq(J, t, rcond=None)[0]
    if weighted:
        for _ in range(max_iter):
            var = np.zeros(n)
            if st is not None:
                var = var + st ** 2
            if sch is not None:
                var = var + (a * sch) ** 2
            if np.any(var <= 0):
                raise RecoilsimError("uncertainties", "zero", "positive total uncertainty for every feature")
            w = 1.0 / var
            JW = J * w[:, None]
            a_new, b_new = np.linalg.solve(J.T @ JW, JW.T @ t)
            done = abs(a_new - a) <= 1e-14 * max(abs(a), 1e-300) and abs(b_new - b) <= 1e-14 * max(abs(b), 1e-12)
            a, b = a_new, b_new
            if done:
                break
        cov = np.linalg.inv(J.T @ (J * w[:, None]))
        r = t - (a * ch + b)
        chi2 = float(np.sum(w * r * r))
    else:
        r = t - (a * ch + b)
        if n > 2:
            s2 = float(np.sum(r * r) / (n - 2))
            cov = s2 * np.linalg.inv(J.T @ J)
        else:
            cov = np.full((2, 2), np.nan)
        chi2 = float("nan")
    span = float(np.ptp(ch))
    if not np.isfinite(a) or abs(a) * span <= 1e-12 * max(float(np.max(np.abs(t))), 1e-300):
        raise RecoilsimError("calibration slope", a, "a finite non-zero slope")
    return TofCalibration(float(a), float(b), np.asarray(cov), chi2, n - 2)


def feature_time_ns(E_MeV, mass_u, L_m, relativistic: bool = True) -> float:
    """Flight time (ns) over ``L_m`` of a particle with energy ``E_MeV`` (after the T1 foil).

    Uses :func:`recoilsim.kernels.kinematics.flight_time_ns` (relativistic by default).
    """
    E = float(E_MeV)
    M = float(mass_u)
    L = float(L_m)
    for name, v in (("E_MeV", E), ("mass_u", M), ("L_m", L)):
        if not (math.isfinite(v) and v > 0):
            raise RecoilsimError(name, v, "a positive finite number")
    from ..kernels.kinematics import flight_time_ns

    return float(flight_time_ns(E, M, L, bool(relativistic)))


def calibration_from_potku(settings: dict) -> TofCalibration:
    """A :class:`TofCalibration` from :func:`recoilsim.io.potku.read_potku_settings` output
    (covariance unknown: NaN)."""
    cal = settings.get("calibration") if isinstance(settings, dict) else None
    if not cal:
        raise RecoilsimError("calibration", cal, "Potku settings with a non-zero calibration slope")
    return TofCalibration(float(cal["slope_ns"]), float(cal["offset_ns"]), np.full((2, 2), np.nan))
