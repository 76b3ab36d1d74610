"""The package's one error type for bad user input.

Every validation failure at the API boundary raises :class:`RecoilsimError` with a message
that names the field, the value given and what is allowed.
"""

from __future__ import annotations


class RecoilsimError(ValueError):
    """Invalid input to recoilsim: names the field, the value and what is allowed.

    Subclasses :class:`ValueError` so generic handlers still catch it.
    """

    def __init__(self, field: str, value: object, allowed: str):
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field} = {value!r} is not valid: {allowed}")


def require_finite(field: str, value: float) -> float:
    """Return ``value`` as float if finite, else raise RecoilsimError."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise RecoilsimError(field, value, "expected a finite number") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise RecoilsimError(field, value, "expected a finite number")
    return v


def require_positive(field: str, value: float) -> float:
    """Return ``value`` as float if finite and > 0, else raise RecoilsimError."""
    v = require_finite(field, value)
    if v <= 0:
        raise RecoilsimError(field, value, "must be > 0")
    return v


def require_range(field: str, value: float, lo: float, hi: float,
                  lo_open: bool = False, hi_open: bool = False) -> float:
    """Return ``value`` if finite and inside [lo, hi] (open ends as flagged)."""
    v = require_finite(field, value)
    bad = (v < lo) or (v > hi) or (lo_open and v == lo) or (hi_open and v == hi)
    if bad:
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        raise RecoilsimError(field, value, f"must lie in {lb}{lo}, {hi}{rb}")
    return v
