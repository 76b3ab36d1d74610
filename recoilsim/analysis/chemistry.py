"""Decomposition chemistry of a Li-ion conducting film: Li uptake, Li ratio, fraction, charge.

The electrochemistry link of the reference experiment (Kurihara et al., J Solid State
Electrochem (2024), doi:10.1007/s10008-024-05865-y): a LiPON film ``Li2.0PO2.6N0.9`` that is
reductively decomposed at the Cu/LiPON interface into Li3N, Li2O and Li3P (products from
Zhu, He, Mo, ACS Appl. Mater. Interfaces 7 (2015) 23685, the paper's ref. [6])::

    Li2.0PO2.6N0.9 + 8.9 Li -> 0.9 Li3N + 2.6 Li2O + 1 Li3P

Every Li taken up is one Li+ ion plus one electron delivered by the external circuit, so the
charge is ``x * e`` per decomposed formula unit (``x`` = Li uptake per formula unit).

Definitions used throughout
---------------------------
* ``li_film``      Li atoms per formula unit of the pristine film (2.0 for the paper's LiPON).
* ``li_uptake``    ``x``, Li atoms taken up per decomposed formula unit (8.9).
* ``ratio_full``   Li concentration ratio after full decomposition, ``(li_film + x)/li_film``
  (10.9/2.0 = 5.45; the paper rounds to 5.5).
* decomposition fraction ``f`` (0..1): the fraction of formula units (per volume) that have
  decomposed. The number of formula units per volume is assumed unchanged (the host P stays;
  the paper finds the P, O, N intensities unchanged), so the Li per formula unit goes from
  ``li_film`` to ``li_film + f * x`` and the measured Li ratio is::

      r = (li_film + f x) / li_film = 1 + f (ratio_full - 1)
      =>  f = (r - 1) / (ratio_full - 1),   sigma_f = sigma_r / (ratio_full - 1)

* charge per area of a decomposed thickness ``t`` (nm) of a film of density ``rho`` (g/cm3)
  and molar mass ``M`` (g/mol per formula unit)::

      Q [C/cm2] = f * x * e * N_A * rho * (t * 1e-7 cm) / M      (reported in uC/cm2)

Paper numbers, reproduced and compared
--------------------------------------
* With ``M(Li2.0PO2.6N0.9) = 99.0575 g/mol`` (IUPAC standard atomic weights), full
  decomposition of 1 nm needs 866.9 uC/cm2 per g/cm3. The density that reproduces the paper's
  2.2e3 uC/cm2 exactly is :data:`PAPER_LIPON_DENSITY_G_CM3` = 2.5378 g/cm3 (a typical sputtered
  LiPON density; 2.5 g/cm3 gives 2.167e3 uC/cm2).
* 3.5e3 uC/cm2 at that density corresponds to 1.591 nm of full decomposition (paper: about
  1.6 nm; 1.615 nm at 2.5 g/cm3).
* An average ratio of 1.11 implies ``f = 0.11 / 4.45 = 2.47 %`` with the exact 5.45
  (2.44 % with the rounded 5.5). The paper states "approximately 2.7 %", which is what a ratio
  of 1.12 would give (0.12/4.45 = 2.70 %); we cannot reproduce 2.7 % from 1.11. Over 30 nm
  at 2.2e3 uC/cm2 per nm, 2.47 % gives 1.63e3 uC/cm2 (the paper's 1.8e3 uC/cm2 follows from
  its 2.7 %: 0.027 * 30 * 2.2e3 = 1.78e3). Both are "roughly 50 %" of the 3.5e3 uC/cm2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, NamedTuple, Sequence

import numpy as np
from scipy import constants

from ..model.composition import molar_mass_g, parse_formula
from ..model.elements import element
from ..errors import RecoilsimError

__all__ = [
    "DEFAULT_FILM",
    "DEFAULT_PRODUCTS",
    "PAPER_CHARGE_1NM_UC_CM2",
    "PAPER_LIPON_DENSITY_G_CM3",
    "Decomposition",
    "Measured",
    "ProfileCharge",
    "balance_decomposition",
    "charge_from_ratio_uC_cm2",
    "charge_per_area_uC_cm2",
    "decomposition_fraction",
    "density_for_charge_g_cm3",
    "excess_profile_charge",
    "ratio_from_fraction",
    "thickness_from_charge_nm",
    "trapezoid_weights",
]

DEFAULT_FILM = "Li2.0PO2.6N0.9"
"""LiPON composition of the reference experiment (XPS; Kurihara et al. 2024)."""

DEFAULT_PRODUCTS = ("Li3N", "Li2O", "Li3P")
"""Reductive decomposition products of LiPON (Zhu, He, Mo 2015; Kurihara et al. 2024)."""

PAPER_CHARGE_1NM_UC_CM2 = 2.2e3
"""Kurihara et al. 2024: charge for full decomposition of 1 nm of LiPON, uC/cm2."""

_TOL = 1e-9
_UC_PER_C = 1e6
_CM_PER_NM = 1e-7


class Measured(NamedTuple):
    """A value with its one-standard-deviation uncertainty (floats or numpy arrays)."""

    value: object
    sigma: object


@dataclass(frozen=True)
class Decomposition:
    """A balanced reductive decomposition ``film + x carrier -> sum_i n_i product_i``.

    Attributes
    ----------
    film : str
        Film formula as given.
    film_amounts : dict
        Element -> atoms per formula unit of the film.
    products : tuple of str
        Product formulas.
    coefficients : dict
        Product formula -> ``n_i`` (formula units of product per formula unit of film).
    carrier : str
        The mobile ion taken up (``'Li'``).
    carrier_film : float
        Carrier atoms per film formula unit (``li_film``).
    uptake : float
        Carrier atoms taken up per film formula unit (``x``; 8.9 for the default).
    molar_mass_g_mol : float
        Molar mass of one film formula unit, g/mol.
    """

    film: str
    film_amounts: dict
    products: tuple
    coefficients: dict
    carrier: str
    carrier_film: float
    uptake: float
    molar_mass_g_mol: float

    @property
    def ratio_full(self) -> float:
        """Carrier concentration ratio after full decomposition, ``(li_film + x) / li_film``."""
        return (self.carrier_film + self.uptake) / self.carrier_film

    def charge_per_nm_uC_cm2(self, density_g_cm3: float) -> float:
        """Charge (uC/cm2) for full decomposition of 1 nm of film at ``density_g_cm3``."""
        rho = _positive("density_g_cm3", density_g_cm3)
        fu_per_cm2 = rho * _CM_PER_NM / self.molar_mass_g_mol * constants.Avogadro
        return fu_per_cm2 * self.uptake * constants.elementary_charge * _UC_PER_C

    def reaction(self) -> str:
        """The balanced reaction as text."""
        rhs = " + ".join(f"{_fmt(n)} {p}" for p, n in self.coefficients.items() if n > _TOL)
        return f"{self.film} + {_fmt(self.uptake)} {self.carrier} -> {rhs}"


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _positive(name, v) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise RecoilsimError(name, v, "a finite number > 0") from None
    if not np.isfinite(f) or f <= 0:
        raise RecoilsimError(name, v, "a finite number > 0")
    return f


def _formula_amounts(name: str, formula) -> dict:
    if isinstance(formula, Mapping):
        try:
            return {element(k).symbol: float(v) for k, v in formula.items()}
        except RecoilsimError:
            raise
        except (TypeError, ValueError):
            raise RecoilsimError(name, formula, "a formula string or element -> amount mapping") from None
    try:
        return parse_formula(formula)
    except RecoilsimError as exc:
        raise RecoilsimError(name, formula, exc.allowed) from None


def balance_decomposition(film: str = DEFAULT_FILM,
                          products: Sequence[str] = DEFAULT_PRODUCTS,
                          carrier: str = "Li") -> Decomposition:
    """Balance ``film + x carrier -> sum_i n_i product_i`` by linear algebra.

    Every element of the film other than the carrier must be taken up by the products, and
    products must not create any element the film lacks. The non-carrier element balance is a
    linear system ``A n = b`` (rows: elements, columns: products); it must have a unique,
    exact, non-negative solution. The carrier balance then gives
    ``x = sum_i n_i a_i,carrier - carrier_film``.

    Parameters
    ----------
    film : str
        Film formula, default ``'Li2.0PO2.6N0.9'`` (Kurihara et al. 2024).
    products : sequence of str
        Product formulas, default ``('Li3N', 'Li2O', 'Li3P')`` (Zhu, He, Mo 2015).
    carrier : str
        The mobile ion, default ``'Li'``.

    Returns
    -------
    Decomposition

    Raises
    ------
    RecoilsimError
        ``products`` cannot balance the film (no exact solution, or only with a negative
        amount of a product), or the balance is ambiguous (more independent products than
        elements to fix them), or the reaction would release rather than take up carrier,
        or the film contains no carrier.
    """
    try:
        carrier_sym = element(carrier).symbol
    except RecoilsimError:
        raise RecoilsimError("carrier", carrier, "an element symbol such as 'Li'") from None
    fa = _formula_amounts("film", film)
    if isinstance(products, str) or not isinstance(products, Sequence) or len(products) == 0:
        raise RecoilsimError("products", products, "a non-empty sequence of product formulas")
    pa = [_formula_amounts(f"products[{i}]", p) for i, p in enumerate(products)]
    if len(set(map(str, products))) != len(products):
        raise RecoilsimError("products", products, "distinct product formulas")
    if fa.get(carrier_sym, 0.0) <= 0:
        raise RecoilsimError("film", film, f"a film that contains the carrier {carrier_sym}")

    elems = [e for e in fa if e != carrier_sym]
    for p in pa:
        elems += [e for e in p if e != carrier_sym and e not in elems]
    A = np.array([[p.get(e, 0.0) for p in pa] for e in elems], dtype=float)
    b = np.array([fa.get(e, 0.0) for e in elems], dtype=float)
    n_prod = len(pa)
    if A.size == 0 or np.linalg.matrix_rank(A) < n_prod:
        raise RecoilsimError(
            "products", list(products),
            f"a set whose balance is unique: {n_prod} products but only "
            f"{0 if A.size == 0 else np.linalg.matrix_rank(A)} independent element balances "
            f"({', '.join(elems) or 'none'}); drop a product")
    n, *_ = np.linalg.lstsq(A, b, rcond=None)
    resid = A @ n - b
    scale = max(1.0, float(np.max(np.abs(b))))
    if np.max(np.abs(resid)) > 1e-8 * scale:
        bad = [e for e, r in zip(elems, resid) if abs(r) > 1e-8 * scale]
        raise RecoilsimError(
            "products", list(products),
            f"products that take up every non-{carrier_sym} element of {film!s}; "
            f"cannot balance {', '.join(bad)}")
    if np.any(n < -1e-9 * scale):
        neg = [str(p) for p, v in zip(products, n) if v < -1e-9 * scale]
        raise RecoilsimError(
            "products", list(products),
            f"a set that balances with non-negative amounts; needs negative {', '.join(neg)}")
    n = np.where(np.abs(n) < 1e-12 * scale, 0.0, n)
    carrier_out = float(sum(ni * p.get(carrier_sym, 0.0) for ni, p in zip(n, pa)))
    x = carrier_out - fa[carrier_sym]
    if x < -1e-9:
        raise RecoilsimError(
            "products", list(products),
            f"a reductive decomposition that takes up {carrier_sym} (this set releases "
            f"{-x:.6g} {carrier_sym} per formula unit)")
    x = max(x, 0.0)
    return Decomposition(
        film=str(film), film_amounts=dict(fa), products=tuple(str(p) for p in products),
        coefficients={str(p): float(v) for p, v in zip(products, n)}, carrier=carrier_sym,
        carrier_film=float(fa[carrier_sym]), uptake=float(x),
        molar_mass_g_mol=float(molar_mass_g(fa)))


_DEFAULT_CACHE: dict = {}


def _default(decomposition: Decomposition | None) -> Decomposition:
    if decomposition is None:
        if "d" not in _DEFAULT_CACHE:
            _DEFAULT_CACHE["d"] = balance_decomposition()
        return _DEFAULT_CACHE["d"]
    if not isinstance(decomposition, Decomposition):
        raise RecoilsimError("decomposition", decomposition,
                             "a Decomposition from balance_decomposition() or None")
    return decomposition


def _array(name: str, v, allow_neg=True):
    try:
        a = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        raise RecoilsimError(name, v, "a finite number or array of numbers") from None
    if not np.all(np.isfinite(a)):
        raise RecoilsimError(name, v, "finite numbers")
    if not allow_neg and np.any(a < 0):
        raise RecoilsimError(name, v, "numbers >= 0")
    return a


def _out(a):
    a = np.asarray(a, dtype=float)
    return float(a) if a.ndim == 0 else a


def decomposition_fraction(ratio, ratio_sigma=0.0, decomposition: Decomposition | None = None) -> Measured:
    """Decomposition fraction implied by a measured carrier ratio (decomposed / pristine).

    ``f = (r - 1) / (ratio_full - 1)`` and ``sigma_f = sigma_r / (ratio_full - 1)``
    (derivation in the module docstring). ``f`` is not clipped: ``r < 1`` gives ``f < 0``
    (Li depletion; not a decomposition), which keeps the estimator unbiased under noise.

    Example: ratio 1.11 -> f = 0.11/4.45 = 0.02472 for the default reaction. The paper
    (Kurihara et al. 2024) states "approximately 2.7 %", which does not follow from 1.11
    (it would from 1.12); see the module docstring.

    Returns
    -------
    Measured
        ``(f, sigma_f)``, floats or arrays like ``ratio``.
    """
    d = _default(decomposition)
    r = _array("ratio", ratio)
    s = _array("ratio_sigma", ratio_sigma, allow_neg=False)
    den = d.ratio_full - 1.0
    return Measured(_out((r - 1.0) / den), _out(np.broadcast_to(s, np.broadcast(r, s).shape) / den))


def ratio_from_fraction(fraction, decomposition: Decomposition | None = None):
    """Carrier ratio ``1 + f (ratio_full - 1)`` for a decomposition fraction ``f``."""
    d = _default(decomposition)
    f = _array("fraction", fraction)
    return _out(1.0 + f * (d.ratio_full - 1.0))


def charge_per_area_uC_cm2(thickness_nm, density_g_cm3: float, fraction=1.0,
                           decomposition: Decomposition | None = None):
    """Charge per area (uC/cm2) to decompose a fraction ``fraction`` of ``thickness_nm``.

    ``Q = f * x * e * N_A * rho * t[cm] / M`` (module docstring). For the default reaction,
    1 nm at :data:`PAPER_LIPON_DENSITY_G_CM3` gives 2.2e3 uC/cm2 (Kurihara et al. 2024).
    """
    d = _default(decomposition)
    t = _array("thickness_nm", thickness_nm, allow_neg=False)
    f = _array("fraction", fraction)
    return _out(t * f * d.charge_per_nm_uC_cm2(density_g_cm3))


def thickness_from_charge_nm(charge_uC_cm2, density_g_cm3: float, fraction=1.0,
                             charge_sigma_uC_cm2=0.0,
                             decomposition: Decomposition | None = None) -> Measured:
    """Decomposed thickness (nm) implied by a measured charge per area (uC/cm2).

    Inverse of :func:`charge_per_area_uC_cm2`: ``t = Q / (f q1)`` with ``q1`` the charge for
    full decomposition of 1 nm; ``sigma_t = sigma_Q / (f q1)`` (density and fraction exact).
    3.5e3 uC/cm2 at :data:`PAPER_LIPON_DENSITY_G_CM3` and ``f = 1`` gives 1.591 nm (paper:
    "about 1.6 nm", Kurihara et al. 2024).
    """
    d = _default(decomposition)
    q = _array("charge_uC_cm2", charge_uC_cm2)
    s = _array("charge_sigma_uC_cm2", charge_sigma_uC_cm2, allow_neg=False)
    f = _array("fraction", fraction)
    if np.any(f <= 0) or np.any(f > 1):
        raise RecoilsimError("fraction", fraction, "a decomposition fraction in (0, 1]")
    per_nm = f * d.charge_per_nm_uC_cm2(density_g_cm3)
    return Measured(_out(q / per_nm), _out(np.broadcast_to(s, np.broadcast(q, s).shape) / per_nm))


def charge_from_ratio_uC_cm2(ratio, thickness_nm: float, density_g_cm3: float, ratio_sigma=0.0,
                             decomposition: Decomposition | None = None) -> Measured:
    """Charge (uC/cm2) implied by an average ratio ``ratio`` over a layer ``thickness_nm``.

    ``Q = f(r) * t * q1`` with ``f(r)`` from :func:`decomposition_fraction`; ``sigma_Q`` from
    ``sigma_r`` (thickness and density exact). The paper's example (1.11 over 30 nm) gives
    1.63e3 uC/cm2 at 2.2e3 uC/cm2 per nm (the paper rounds to 1.8e3 via 2.7 %; see module
    docstring).
    """
    d = _default(decomposition)
    f, sf = decomposition_fraction(ratio, ratio_sigma, d)
    t = _array("thickness_nm", thickness_nm, allow_neg=False)
    q1 = d.charge_per_nm_uC_cm2(density_g_cm3)
    return Measured(_out(np.asarray(f) * t * q1), _out(np.asarray(sf) * t * q1))


def density_for_charge_g_cm3(charge_per_nm_uC_cm2: float = PAPER_CHARGE_1NM_UC_CM2,
                             decomposition: Decomposition | None = None) -> float:
    """Film density (g/cm3) at which full decomposition of 1 nm needs ``charge_per_nm_uC_cm2``.

    ``rho = q1 * M / (x e N_A 1e-7 cm)``. For the paper's 2.2e3 uC/cm2 and Li2.0PO2.6N0.9 ->
    Li3N + Li2O + Li3P this is 2.538 g/cm3 (:data:`PAPER_LIPON_DENSITY_G_CM3`).
    """
    d = _default(decomposition)
    q1 = _positive("charge_per_nm_uC_cm2", charge_per_nm_uC_cm2)
    return q1 / d.charge_per_nm_uC_cm2(1.0)


PAPER_LIPON_DENSITY_G_CM3 = density_for_charge_g_cm3()
"""LiPON density (g/cm3) that reproduces the paper's 2.2e3 uC/cm2 for 1 nm: 2.5382...

Computed from M(Li2.0PO2.6N0.9) = 99.0575 g/mol, x = 8.9, CODATA e and N_A (scipy.constants).
"""


@dataclass(frozen=True)
class ProfileCharge:
    """Decomposition-fraction profile and its integral as a charge per area.

    Attributes
    ----------
    depth_nm : ndarray
    fraction, fraction_sigma : ndarray or xarray.DataArray
        ``f(z) = (r(z) - 1)/(ratio_full - 1)`` and its standard deviation.
    charge_uC_cm2, charge_sigma_uC_cm2 : float
        ``q1 * int f dz`` (trapezoid rule) and its standard deviation from the full covariance.
    equivalent_thickness_nm, equivalent_thickness_sigma_nm : float
        ``int f dz``: the thickness of fully decomposed film that carries the same charge.
    weights_nm : ndarray
        Trapezoid weights ``w`` (``int f dz = w . f``).
    """

    depth_nm: np.ndarray
    fraction: object
    fraction_sigma: object
    charge_uC_cm2: float
    charge_sigma_uC_cm2: float
    equivalent_thickness_nm: float
    equivalent_thickness_sigma_nm: float
    weights_nm: np.ndarray


def trapezoid_weights(x) -> np.ndarray:
    """Weights ``w`` with ``sum(w * y) == numpy.trapezoid(y, x)`` for strictly increasing ``x``."""
    x = np.asarray(x, dtype=float)
    w = np.zeros_like(x)
    if x.size < 2:
        return w
    dx = np.diff(x)
    w[:-1] += dx / 2
    w[1:] += dx / 2
    return w


def excess_profile_charge(depth_nm, li_ratio, density_g_cm3: float, li_ratio_sigma=None,
                          li_ratio_cov=None,
                          decomposition: Decomposition | None = None) -> ProfileCharge:
    """Convert a Li excess profile into a decomposition-fraction profile and a charge.

    Parameters
    ----------
    depth_nm : array (n,)
        Strictly increasing depths (nm) at which the profile is given.
    li_ratio : array (n,) or xarray.DataArray
        Li concentration over the pristine film's Li concentration at each depth.
    density_g_cm3 : float
        Pristine film density.
    li_ratio_sigma : array (n,), optional
        Standard deviations of ``li_ratio`` (independent) if no covariance is given.
    li_ratio_cov : array (n, n), optional
        Full covariance of ``li_ratio`` (e.g. from a fit); overrides ``li_ratio_sigma``.
    decomposition : Decomposition, optional
        Default: Li2.0PO2.6N0.9 -> Li3N + Li2O + Li3P.

    Returns
    -------
    ProfileCharge
        ``f = (r - 1)/(R - 1)``; ``Q = q1 * w . f`` with trapezoid weights ``w`` over the
        given depths (no extrapolation outside them); ``var Q = (q1/(R-1))^2 w^T C w``.
        Returns DataArrays for the fraction when ``li_ratio`` is a DataArray.
    """
    d = _default(decomposition)
    z = _array("depth_nm", depth_nm)
    if z.ndim != 1 or z.size < 2 or np.any(np.diff(z) <= 0):
        raise RecoilsimError("depth_nm", depth_nm, "a 1-D strictly increasing array of >= 2 depths")
    da = li_ratio if hasattr(li_ratio, "dims") and hasattr(li_ratio, "copy") else None
    r = _array("li_ratio", li_ratio)
    if r.shape != z.shape:
        raise RecoilsimError("li_ratio", f"shape {r.shape}", f"shape {z.shape} like depth_nm")
    n = z.size
    if li_ratio_cov is not None:
        C = _array("li_ratio_cov", li_ratio_cov)
        if C.shape != (n, n):
            raise RecoilsimError("li_ratio_cov", f"shape {C.shape}", f"shape {(n, n)}")
        if not np.allclose(C, C.T, rtol=1e-8, atol=0) or np.any(np.diag(C) < 0):
            raise RecoilsimError("li_ratio_cov", "matrix", "a symmetric covariance with diagonal >= 0")
    elif li_ratio_sigma is not None:
        s = _array("li_ratio_sigma", li_ratio_sigma, allow_neg=False)
        if s.shape != z.shape:
            raise RecoilsimError("li_ratio_sigma", f"shape {s.shape}", f"shape {z.shape}")
        C = np.diag(s ** 2)
    else:
        C = np.zeros((n, n))
    den = d.ratio_full - 1.0
    f = (r - 1.0) / den
    fs = np.sqrt(np.diag(C)) / den
    w = trapezoid_weights(z)
    teq = float(w @ f)
    teq_s = float(np.sqrt(max(w @ C @ w, 0.0))) / den
    q1 = d.charge_per_nm_uC_cm2(density_g_cm3)
    if da is not None:
        f_out = da.copy(data=f)
        f_out.name = "decomposition_fraction"
        fs_out = da.copy(data=fs)
        fs_out.name = "decomposition_fraction_sigma"
    else:
        f_out, fs_out = f, fs
    return ProfileCharge(depth_nm=z, fraction=f_out, fraction_sigma=fs_out,
                         charge_uC_cm2=teq * q1, charge_sigma_uC_cm2=teq_s * q1,
                         equivalent_thickness_nm=teq, equivalent_thickness_sigma_nm=teq_s,
                         weights_nm=w)
