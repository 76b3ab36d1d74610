"""The detector's timing tail applied to spread spectra (the same filter for the simulation and every fit model).

The timing response is (1 - f) G + f (G * E), E a one-sided exponential of decay tau (an
exponentially modified Gaussian, Grushka, Anal. Chem. 44 (1972) 1733; the kernel
:func:`recoilsim.kernels.timing_tail.apply_exponential_tail`). The filter is linear in the spectrum,
so applying it to every column of a linear model (a depth node's spectrum per unit amount, a
brick group's row) is exact: the fit's model and :func:`recoilsim.forward.simulate.simulate` agree.
"""

from __future__ import annotations

import math

import numpy as np

from ..kernels.timing_tail import apply_exponential_tail
from ..model.instrument import Detector

__all__ = ["has_tail", "tail_reach_channels", "apply_tail"]

REACH_DECAYS = 30.0  # decay lengths the tail is followed for (exp(-30) ~ 1e-13 of its weight)


def has_tail(det: Detector, resolution: bool = True) -> bool:
    """True when the detector's timing tail changes the spectrum."""
    return bool(resolution) and det.timing_tail_fraction > 0.0 and det.timing_tail_ns != 0.0


def tail_reach_channels(det: Detector, a_ns: float) -> int:
    """How many channels (towards the tail's side) the tail carries counts, for a channel width a_ns."""
    return int(math.ceil(REACH_DECAYS * abs(det.timing_tail_ns / a_ns))) + 1


def apply_tail(spec: np.ndarray, det: Detector, a_ns: float, resolution: bool = True) -> np.ndarray:
    """Apply the timing tail, in place, to every row of ``spec`` (n_rows, n_channels) for the
    calibration slope ``a_ns`` (ns per channel); returns ``spec``."""
    if has_tail(det, resolution):
        apply_exponential_tail(spec, det.timing_tail_ns / a_ns, det.timing_tail_fraction)
    return spec
