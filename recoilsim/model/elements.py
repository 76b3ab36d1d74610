"""Elements and isotopes: symbol or Z in, masses and natural abundances out.

Masses are atomic masses in u and abundances are natural isotopic abundances, both from the
``periodictable`` package (masses: AME2020, Wang et al., Chin. Phys. C 45 (2021) 030003;
abundances: IUPAC/CIAAW isotopic compositions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import periodictable

from ..errors import RecoilsimError

_ISO_FORMS = (
    re.compile(r"^(?P<A>\d+)(?P<sym>[A-Z][a-z]?)$"),  # 6Li
    re.compile(r"^(?P<sym>[A-Z][a-z]?)-?(?P<A>\d+)$"),  # Li-6, Li6
)


@dataclass(frozen=True)
class Isotope:
    """One nuclide.

    Attributes
    ----------
    Z : int
        Atomic number.
    A : int
        Mass number.
    symbol : str
        Element symbol.
    mass_u : float
        Atomic mass in u (AME2020 via periodictable).
    abundance : float
        Natural abundance as a fraction (0..1).
    """

    Z: int
    A: int
    symbol: str
    mass_u: float
    abundance: float

    @property
    def name(self) -> str:
        """Name such as ``'7Li'``."""
        return f"{self.A}{self.symbol}"


def element(ident: str | int):
    """Return the periodictable element for a symbol (``'Li'``) or atomic number (``3``).

    Raises
    ------
    RecoilsimError
        If the element is unknown (allowed: H..U, Z 1-92).
    """
    try:
        return _element_cached(ident)
    except TypeError:  # unhashable: not a symbol or a number
        return _element(ident)


@lru_cache(maxsize=512, typed=True)
def _element_cached(ident):
    """:func:`_element`, remembered per identifier (and type: ``True`` is refused, ``1`` is H);
    periodictable's elements are module-level singletons, and refusals are not remembered."""
    return _element(ident)


def _element(ident):
    """The lookup of :func:`element`."""
    try:
        if isinstance(ident, bool):
            raise KeyError
        if isinstance(ident, (int,)) or (isinstance(ident, str) and ident.strip().isdigit()):
            z = int(ident)
            if not 1 <= z <= 92:
                raise KeyError
            return periodictable.elements[z]
        sym = str(ident).strip()
        el = getattr(periodictable, sym, None)
        if el is None or not isinstance(el, periodictable.core.Element) or el.number < 1 or el.number > 92:
            raise KeyError
        return el
    except (KeyError, AttributeError, TypeError):
        raise RecoilsimError("element", ident, "an element symbol or atomic number from H (1) to U (92)") from None


def isotope(ident: str | int, A: int | None = None) -> Isotope:
    """Return one isotope.

    Parameters
    ----------
    ident : str or int
        ``'6Li'``, ``'Li-6'``, ``'Li6'``, or an element symbol / Z together with ``A``.
        An element without a mass number gives its most abundant isotope.
    A : int, optional
        Mass number when ``ident`` names only the element.
    """
    if isinstance(ident, str) and A is None:
        s = ident.strip()
        for pat in _ISO_FORMS:
            m = pat.match(s)
            if m:
                return isotope(m.group("sym"), int(m.group("A")))
    el = element(ident)
    if A is None:
        iso = max(natural_isotopes(el.symbol), key=lambda x: x.abundance)
        return iso
    try:
        nuc = el[int(A)]
    except (KeyError, ValueError, TypeError):
        raise RecoilsimError("isotope", f"{A}{el.symbol}", f"a known mass number of {el.symbol}") from None
    if nuc.mass is None:
        raise RecoilsimError("isotope", f"{A}{el.symbol}", f"a mass number of {el.symbol} with a known mass")
    return Isotope(el.number, int(A), el.symbol, float(nuc.mass), float(nuc.abundance or 0.0) / 100.0)


def natural_isotopes(ident: str | int, enrichment: dict[int, float] | None = None) -> list[Isotope]:
    """Isotopes of an element with their abundances (fractions summing to 1).

    Parameters
    ----------
    ident : str or int
        Element symbol or Z.
    enrichment : dict, optional
        Mass number -> abundance fraction overriding the natural composition, e.g. ``{6: 0.95,
        7: 0.05}`` for 95 % enriched 6Li. Must sum to 1 within 1e-6; isotopes not named get zero.

    Returns
    -------
    list of Isotope
        Isotopes with non-zero abundance (``abundance`` field holds the fraction used).
    """
    el = element(ident)
    if enrichment is not None:
        if not isinstance(enrichment, dict) or not enrichment:
            raise RecoilsimError("enrichment", enrichment, "a non-empty mapping mass number -> fraction")
        total = 0.0
        out = []
        for a, f in enrichment.items():
            from ..errors import require_range
            fv = require_range(f"enrichment[{a}]", f, 0.0, 1.0)
            base = isotope(el.symbol, int(a))
            total += fv
            if fv > 0:
                out.append(Isotope(base.Z, base.A, base.symbol, base.mass_u, fv))
        if abs(total - 1.0) > 1e-6:
            raise RecoilsimError("enrichment", enrichment, "fractions must sum to 1")
        return out
    return list(_natural(el.number))


@lru_cache(maxsize=None)
def _natural(Z: int) -> tuple[Isotope, ...]:
    """Natural isotopes of element Z (periodictable's abundances, renormalised to 1); cached."""
    el = periodictable.elements[Z]
    out = []
    for nuc in el:
        ab = getattr(nuc, "abundance", 0.0) or 0.0
        if ab > 0 and nuc.mass is not None:
            out.append(Isotope(el.number, int(nuc.isotope), el.symbol, float(nuc.mass), float(ab) / 100.0))
    if not out:  # no stable isotope (Tc, Pm, ...): most stable nuclide mass as a single entry
        m = float(el.mass)
        out.append(Isotope(el.number, int(round(m)), el.symbol, m, 1.0))
    s = sum(i.abundance for i in out)
    return tuple(Isotope(i.Z, i.A, i.symbol, i.mass_u, i.abundance / s) for i in out)


def mean_mass_u(ident: str | int) -> float:
    """Standard atomic weight (u) of an element."""
    return float(element(ident).mass)
