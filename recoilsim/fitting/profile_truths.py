"""Synthetic multi-element truths for closed-loop tests and the coverage study of :func:`fit_profiles`.

A Li-Mn-O film (about 600e15 at/cm2, ~70 nm) on Si, measured as in the Potku example
(8.515 MeV 35Cl, 8-channel bins): Li constant (5 at.% of the film), Mn with a depth shape,
O the remainder of the film, and a graded film/Si interface (logistic, centre ``interface_1e15``,
width ``width_1e15``). Shapes of Mn (atomic fraction of the film part):

* ``'interface_excess'``: 0.28 + 0.14 exp(-z / 100) (an excess at the surface decaying into the film);
* ``'buried_peak'``: 0.25 + 0.15 exp(-((z - 300) / 70)^2);
* ``'step'``: 0.36 above z = 300, 0.22 below, smoothed by erfc with width 40;
* ``'graded'``: 0.36 (1 - 0.4 z / 600) (Mn falls steadily with depth).
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
from scipy.special import erfc

from ..errors import RecoilsimError
from ..model.depth_grid import DepthGrid
from ..model.experiment import Experiment

ELEMENTS = ("Li", "O", "Mn", "Si")
SHAPES = ("interface_excess", "buried_peak", "step", "graded")


def mn_shape(kind: str, z: np.ndarray) -> np.ndarray:
    """Mn atomic fraction of the film part at depths z (1e15 at/cm2)."""
    if kind == "interface_excess":
        return 0.28 + 0.14 * np.exp(-z / 100.0)
    if kind == "buried_peak":
        return 0.25 + 0.15 * np.exp(-((z - 300.0) / 70.0) ** 2)
    if kind == "step":
        return 0.22 + 0.14 * 0.5 * erfc((z - 300.0) / 40.0)
    if kind == "graded":
        return 0.36 * (1.0 - 0.4 * np.clip(z, 0.0, 600.0) / 600.0)
    raise RecoilsimError("shape", kind, f"one of {SHAPES}")


def truth_fractions(kind: str, z: np.ndarray, interface_1e15: float = 600.0, width_1e15: float = 40.0) -> np.ndarray:
    """(4, n_z) atomic fractions of Li, O, Mn, Si at depths z; they sum to one."""
    si = 1.0 / (1.0 + np.exp(-(z - interface_1e15) / width_1e15))
    mn = mn_shape(kind, z)
    li = np.full_like(z, 0.05)
    film = np.array([li, 1.0 - li - mn, mn])
    return np.vstack([film * (1.0 - si), si])


def truth_experiment(exp: Experiment, kind: str, depth_1e15: float = 1200.0, n: int = 121) -> tuple[Experiment, DepthGrid, np.ndarray]:
    """The experiment with the truth as its sample (n nodes to depth_1e15, Si below), its grid and node fractions.

    The returned experiment shares no mutable part with ``exp``: callers scale its beam or change
    its detector (the coverage study sets ``beam.fluence`` of both for a count level). A shallow
    ``dataclasses.replace`` shared the beam, so scaling both multiplied the fluence twice (the
    "x10" coverage rows measured between commits 5039bef and this fix were at 100 times the counts).
    """
    z = np.linspace(0.0, depth_1e15, n)
    grid = DepthGrid(exp.sample, list(ELEMENTS), z)
    F = truth_fractions(kind, z)
    return dataclasses.replace(copy.deepcopy(exp), sample=grid.sample(F)), grid, F
