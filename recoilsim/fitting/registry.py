"""Keyed parameter registry: any quantity of an :class:`~recoilsim.model.experiment.Experiment` a fit can vary.

A quantity is addressed by a key tuple, the way JaBS's fit variables name the quantity they
change (JaBS, Jaakko Julin, https://github.com/JYU-IBA/jabs: ``fit`` variables such as
``calib``, ``fluence``, ``thick``, ``conc``). Keys:

=================================================  ==========================================
``("thickness", layer)``                           layer thickness, nm (at its mass density)
``("fraction", layer, element)``                   depth-constant atomic fraction of ``element``
``("ratio", layer, element)``                      depth-constant multiplier of its nominal fraction
``("stopping_factor", layer, element or None)``    stopping factor (None: every element of the layer)
``("calibration_a",)``, ``("calibration_b",)``     TOF calibration t = a ch + b (ns/channel, ns)
``("fluence",)``                                   incident ions Q
``("timing_tail_ns",)``                            decay time of the detector's timing tail, ns
``("timing_tail_fraction",)``                      weight of the timing tail (0..1)
``("profile", layer, element)``                    a depth profile (vector: :func:`set_profile`)
=================================================  ==========================================

``layer`` is an index or a layer name. :func:`get_value` reads a quantity, :func:`set_value`
returns a *new* Experiment (``dataclasses.replace`` down the tree: nothing is mutated, the input
and the objects it shares stay as they were). Composition keys are applied as one-node
:class:`~recoilsim.model.sample.Profile` objects of that kind, so the other elements of the layer
share the remainder in their nominal proportions. :func:`display_name` turns a key into the
label of result tables; nothing looks a parameter up by that label.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import RecoilsimError
from ..model.experiment import Experiment
from ..model.sample import Profile

__all__ = ["KINDS", "ExperimentEdit", "display_name", "get_value", "layer_index", "set_profile", "set_value"]

#: key kind -> label prefix in tables
KINDS = {"thickness": "thickness", "fraction": "fraction", "ratio": "ratio", "stopping_factor": "stopping",
         "calibration_a": "a_ns", "calibration_b": "b_ns", "fluence": "fluence",
         "timing_tail_ns": "tail_ns", "timing_tail_fraction": "tail_fraction"}
DETECTOR_KEYS = {"calibration_a": "calibration_a_ns", "calibration_b": "calibration_b_ns",
                 "timing_tail_ns": "timing_tail_ns", "timing_tail_fraction": "timing_tail_fraction"}


def layer_index(exp: Experiment, layer) -> int:
    """Index of ``layer`` (an index or a layer name) in the experiment's sample."""
    names = [l.name for l in exp.sample.layers]
    if isinstance(layer, str):
        if layer not in names:
            raise RecoilsimError("layer", layer, f"one of {names}")
        return names.index(layer)
    if not 0 <= int(layer) < len(names):
        raise RecoilsimError("layer", layer, f"0..{len(names) - 1}")
    return int(layer)


def _check_key(key) -> str:
    if not isinstance(key, tuple) or not key or key[0] not in KINDS:
        raise RecoilsimError("parameter key", key, f"a tuple whose first item is one of {sorted(KINDS)}")
    n = {"thickness": 2, "fraction": 3, "ratio": 3, "stopping_factor": 3}.get(key[0], 1)
    if len(key) != n:
        raise RecoilsimError("parameter key", key, f"{n} items for '{key[0]}'")
    return key[0]


def display_name(key: tuple) -> str:
    """The table label of a key: ``thickness[0]``, ``ratio[0,Mn]``, ``a_ns`` ..."""
    kind = _check_key(key)
    args = [str(a) for a in key[1:] if a is not None]
    return KINDS[kind] + (f"[{','.join(args)}]" if args else "")


def get_value(exp: Experiment, key: tuple) -> float:
    """The current value of the quantity ``key`` in ``exp``."""
    kind = _check_key(key)
    if kind in DETECTOR_KEYS:
        return float(getattr(exp.detector, DETECTOR_KEYS[kind]))
    if kind == "fluence":
        return float(exp.beam.fluence)
    lay = exp.sample.layers[layer_index(exp, key[1])]
    if kind == "thickness":
        if lay.thickness_nm is None:
            raise RecoilsimError(f"parameter[{display_name(key)}]", None, "a layer with a thickness in nm")
        return float(lay.thickness_nm)
    el = key[2]
    if kind in ("ratio", "fraction"):
        own = [q for q in lay.profiles if q.element == el]
        if own and own[-1].kind == kind and np.ptp(own[-1].values) == 0:
            return float(own[-1].values[0])
        if own:
            raise RecoilsimError(f"parameter[{display_name(key)}]", f"a depth profile of {el}",
                                 f"a layer whose {el} has no profile, or a constant one of kind '{kind}'")
        return 1.0 if kind == "ratio" else float(lay.fractions.get(el, 0.0))
    return float(lay.stopping_factors.get(el or next(iter(lay.fractions)), 1.0))


class ExperimentEdit:
    """Several quantities set in turn, one new Experiment built at the end.

    ``ExperimentEdit(exp).set(k1, v1).set(k2, v2).build()`` gives what
    ``set_value(set_value(exp, k1, v1), k2, v2)`` gives (the same layers, detector and beam,
    changed in the same order) without the Experiments in between: each is validated anew
    (its recoil isotopes looked up), ~0.3 ms, which the fits paid ~1000 times per film fit.
    """

    def __init__(self, exp: Experiment):
        self.exp = exp
        self.detector, self.beam = exp.detector, exp.beam
        self.layers = None  # a list once a layer changes

    def _layer(self, layer) -> int:
        if self.layers is None:
            self.layers = list(self.exp.sample.layers)
        return layer_index(self.exp, layer)

    def set(self, key: tuple, value: float) -> "ExperimentEdit":
        """Set the quantity ``key`` (a registry key) to ``value``."""
        kind = _check_key(key)
        value = float(value)
        if kind in DETECTOR_KEYS:
            self.detector = dataclasses.replace(self.detector, **{DETECTOR_KEYS[kind]: value})
            return self
        if kind == "fluence":
            self.beam = dataclasses.replace(self.beam, fluence=value)
            return self
        li = self._layer(key[1])
        lay = self.layers[li]
        if kind == "thickness":
            self.layers[li] = lay.replaced(thickness_nm=value)
            return self
        el = key[2]
        if kind in ("ratio", "fraction"):
            profs = [q for q in lay.profiles if q.element != el] + \
                [Profile(el, [0.0], [value], kind=kind, depth_unit="1e15")]
            self.layers[li] = lay.replaced(profiles=profs)
            return self
        sf = dict(lay.stopping_factors)
        for e in ([el] if el else list(lay.fractions)):
            sf[e] = value
        self.layers[li] = lay.replaced(stopping_factors=sf)
        return self

    def profile(self, layer, element: str, depth_nm, values, kind: str = "ratio") -> "ExperimentEdit":
        """Give ``layer`` ``element``'s depth profile (nodes in nm from the layer top) instead of
        any profile of that element it had."""
        li = self._layer(layer)
        lay = self.layers[li]
        profs = [q for q in lay.profiles if q.element != element] + [Profile(element, depth_nm, values, kind=kind)]
        new = lay.replaced(profiles=profs)
        if new.areal_density_1e15 != lay.areal_density_1e15:
            # a layer given by its areal density: nm -> 1e15 -> nm need not round-trip to the last bit
            new = lay.replaced(profiles=profs, thickness_nm=None, areal_density_1e15=lay.areal_density_1e15)
        self.layers[li] = new
        return self

    def build(self) -> Experiment:
        """The new Experiment (the input is not changed)."""
        changes = {"detector": self.detector, "beam": self.beam}
        if self.layers is not None:
            changes["sample"] = dataclasses.replace(self.exp.sample, layers=self.layers)
        return dataclasses.replace(self.exp, **changes)


def set_value(exp: Experiment, key: tuple, value: float) -> Experiment:
    """A new Experiment with the quantity ``key`` at ``value`` (``exp`` is not changed)."""
    return ExperimentEdit(exp).set(key, value).build()


def set_profile(exp: Experiment, layer, element: str, depth_nm, values, kind: str = "ratio") -> Experiment:
    """A new Experiment whose ``layer`` holds ``element``'s depth profile (nodes in nm from the layer top)
    instead of any profile of that element it had."""
    return ExperimentEdit(exp).profile(layer, element, depth_nm, values, kind).build()
