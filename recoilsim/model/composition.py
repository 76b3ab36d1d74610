"""Chemical compositions: formulas such as ``'Li2.0PO2.6N0.9'`` or explicit fractions.

A composition is stored as atomic fractions summing to one, keyed by element symbol, in the
order the elements were first given.
"""

from __future__ import annotations

import math
import re
from typing import Mapping

from .elements import element
from ..errors import RecoilsimError

_TOKEN = re.compile(r"([A-Z][a-z]?)(\d*\.?\d*(?:[eE][-+]?\d+)?)")
_GROUP = re.compile(r"\(([^()]*)\)(\d*\.?\d*)")


def parse_formula(formula: str) -> dict[str, float]:
    """Parse a chemical formula into element -> amount per formula unit.

    Accepts decimal stoichiometries and parenthesised groups, e.g. ``'Li2.0PO2.6N0.9'``,
    ``'Li1.3Al0.3Ti1.7P3O12'``, ``'Li1.3Al0.3Ti1.7(PO4)3'``.

    Raises
    ------
    RecoilsimError
        If the string is not a formula of known elements with positive amounts.
    """
    if not isinstance(formula, str) or not formula.strip():
        raise RecoilsimError("formula", formula, "a chemical formula such as 'Li2.0PO2.6N0.9'")
    s = formula.replace(" ", "")
    # expand groups, innermost first
    for _ in range(10):
        m = _GROUP.search(s)
        if not m:
            break
        inner = parse_formula(m.group(1)) if m.group(1) else {}
        mult = float(m.group(2)) if m.group(2) else 1.0
        rep = "".join(f"{k}{v * mult!r}" for k, v in inner.items())
        s = s[: m.start()] + rep + s[m.end():]
    pos = 0
    out: dict[str, float] = {}
    for m in _TOKEN.finditer(s):
        if m.start() != pos:
            break
        sym, num = m.group(1), m.group(2)
        element(sym) if _known(sym) else _raise_formula(formula)
        try:
            amount = float(num) if num not in ("", ".") else 1.0
        except ValueError:
            _raise_formula(formula)
        if not math.isfinite(amount) or amount <= 0:
            raise RecoilsimError("formula", formula, f"amount of {sym} must be a finite number > 0")
        out[sym] = out.get(sym, 0.0) + amount
        pos = m.end()
    if pos != len(s) or not out:
        _raise_formula(formula)
    return out


def _known(sym: str) -> bool:
    try:
        element(sym)
        return True
    except RecoilsimError:
        return False


def _raise_formula(formula):
    raise RecoilsimError("formula", formula,
                         "a chemical formula of known elements, e.g. 'Li2.0PO2.6N0.9' or 'Li1.3Al0.3Ti1.7(PO4)3'")


def normalise(amounts: Mapping[str, float], field: str = "composition", check_sum: bool = False) -> dict[str, float]:
    """Validate element -> amount and return atomic fractions summing to 1.

    Parameters
    ----------
    amounts : mapping
        Element symbol (or Z) -> amount (>= 0, at least one > 0).
    field : str
        Name used in error messages.
    check_sum : bool
        If True the amounts are fractions that must already sum to 1 within 1e-4.
    """
    if not isinstance(amounts, Mapping) or not amounts:
        raise RecoilsimError(field, amounts, "a non-empty mapping element -> fraction")
    out: dict[str, float] = {}
    for k, v in amounts.items():
        sym = element(k).symbol
        try:
            fv = float(v)
        except (TypeError, ValueError):
            raise RecoilsimError(f"{field}[{k}]", v, "a finite number >= 0") from None
        if not math.isfinite(fv) or fv < 0:
            raise RecoilsimError(f"{field}[{k}]", v, "a finite number >= 0")
        out[sym] = out.get(sym, 0.0) + fv
    total = sum(out.values())
    if total <= 0:
        raise RecoilsimError(field, dict(amounts), "at least one element with a fraction > 0")
    if check_sum and abs(total - 1.0) > 1e-4:
        raise RecoilsimError(field, dict(amounts), f"fractions must sum to 1 (they sum to {total:.6g})")
    return {k: v / total for k, v in out.items() if v > 0}


def composition(spec: str | Mapping[str, float], field: str = "composition") -> dict[str, float]:
    """Atomic fractions from a formula string or a mapping of fractions (which must sum to 1)."""
    if isinstance(spec, str):
        return normalise(parse_formula(spec), field)
    return normalise(spec, field, check_sum=True)


def molar_mass_g(amounts: Mapping[str, float]) -> float:
    """Mass in g/mol of the given amounts (element -> atoms), standard atomic weights."""
    return sum(float(element(k).mass) * v for k, v in amounts.items())
