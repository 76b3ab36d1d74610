"""Generator of the multiple-scattering width table in kernels/multiple_scattering.py.

Computes the reduced half-width (half width at half maximum) of the *projected* (one-plane)
angular distribution of ions after small-angle multiple scattering, as a function of the
reduced thickness tau = pi a^2 N t, following Sigmund & Winterbon, Nucl. Instrum. Methods
119 (1974) 541 (SW):

- single-collision cross section in Lindhard's one-parameter form,
  d sigma = pi a^2 f(t^1/2) dt / (2 t^3/2), with the small-angle reduced deflection
  t^1/2 = alpha~ = alpha E a / (2 Z1 Z2 e^2) (SW eqs. 2.3-2.6);
- f for the Thomas-Fermi potential in Winterbon's fit
  f(x) = lambda x^(1-2m) [1 + (2 lambda x^(2(1-m)))^q]^(-1/q), lambda = 1.309, m = 1/3,
  q = 2/3 (Winterbon, Sigmund, Sanders, Mat. Fys. Medd. Dan. Vid. Selsk. 37 no. 14 (1970));
- the distribution after reduced thickness tau has the characteristic function
  exp(-tau x(z)), x(z) = int_0^inf f(u) [1 - J0(z u)] u^-2 du (SW eq. 2.9, reduced units);
  its one-plane projection is g(alpha~) = (1/pi) int_0^inf cos(z alpha~) exp(-tau x(z)) dz
  (Marwick & Sigmund, Nucl. Instrum. Methods 126 (1975) 317, projected distributions).

Run ``python stopping_data/ms_widths.py`` to print the table (log10 tau, log10 alpha~_1/2);
tests/test_multiple_scattering.py recomputes a few nodes with :func:`projected_half_width`.
Build-time only (needs scipy).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize, special

LAMBDA, M_TF, Q_TF = 1.309, 1.0 / 3.0, 2.0 / 3.0


def f_tf(u: np.ndarray) -> np.ndarray:
    """Lindhard's scattering function f(t^1/2) for the Thomas-Fermi potential (Winterbon's fit)."""
    return LAMBDA * u ** (1 - 2 * M_TF) * (1 + (2 * LAMBDA * u ** (2 * (1 - M_TF))) ** Q_TF) ** (-1 / Q_TF)


def x_of_z(z: float) -> float:
    """SW's exponent x(z) = int f(u) (1 - J0(z u)) / u^2 du, by Simpson's rule in ln u."""
    s = np.linspace(math.log(1e-9 / z), math.log(1e9 / z), 20001)
    u = np.exp(s)
    return float(integrate.simpson(f_tf(u) * (1 - special.j0(z * u)) / u, x=s))


_Z = np.exp(np.linspace(math.log(1e-6), math.log(1e9), 1501))
_X = None


def _x_interp(z: float) -> float:
    global _X
    if _X is None:
        _X = np.array([x_of_z(v) for v in _Z])
    return float(np.exp(np.interp(math.log(max(z, 1e-300)), np.log(_Z), np.log(_X))))


def projected_density(alpha: float, tau: float) -> float:
    """Unnormalised projected density g(alpha~) at reduced thickness tau (times pi)."""
    _x_interp(1.0)
    zmax = _Z[min(np.searchsorted(_X * tau, 40.0), _Z.size - 1)]
    val, _ = integrate.quad(lambda z: math.exp(-tau * _x_interp(z)), 0.0, zmax, weight="cos", wvar=alpha,
                            limit=800)
    return val


def projected_half_width(tau: float) -> float:
    """Reduced half width at half maximum alpha~_1/2 of the projected distribution."""
    g0 = projected_density(0.0, tau)
    _x_interp(1.0)
    zmax = _Z[min(np.searchsorted(_X * tau, 40.0), _Z.size - 1)]
    hi = 10.0 / zmax
    while projected_density(hi, tau) > 0.5 * g0:
        hi *= 2.0
    return optimize.brentq(lambda a: projected_density(a, tau) - 0.5 * g0, 0.0, hi, xtol=1e-12, rtol=1e-9)


LOG10_TAU = np.round(np.arange(-3.0, 5.0001, 0.125), 3)


def main() -> None:
    widths = [projected_half_width(10.0 ** lt) for lt in LOG10_TAU]
    print("LOG10_TAU = np.array([" + ", ".join(f"{v:.3f}" for v in LOG10_TAU) + "])")
    print("LOG10_HALF_WIDTH = np.array([" + ", ".join(f"{math.log10(w):.5f}" for w in widths) + "])")


if __name__ == "__main__":
    main()
