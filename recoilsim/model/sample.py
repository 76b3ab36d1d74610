"""Layered samples: an ordered stack of layers with compositions and optional depth profiles.

Depth units: nm (needs a density) or areal density in 1e15 atoms/cm2. The conversion uses the
layer's nominal atomic density n = rho N_A / M_avg (atoms/cm3), M_avg the mean atomic mass of
the nominal composition, so that 1 nm = n * 1e-7 cm = n * 1e-22 (1e15 atoms/cm2) exactly.

Depth profiles
--------------
A :class:`Profile` gives, for one element of a layer, a piecewise-linear function of depth from
the top of that layer (end values hold beyond the grid). Two kinds:

* ``"fraction"``: the atomic fraction of the element itself. The other elements share the
  remainder ``1 - c`` in their nominal proportions (renormalisation rule).
* ``"scale"``: a multiplier on the element's amount per formula unit (1 = nominal); the
  composition is then renormalised to atomic fractions summing to 1.
* ``"ratio"``: a multiplier on the element's nominal atomic fraction (1 = nominal); the other
  elements share the remainder as for ``"fraction"``. This is the ratio of recoil yields per
  unit depth that a ratio spectrum measures (the paper's Li NI ratio): a Li excess ratio of
  1.25 at the interface falling to 1 at 30 nm is
  ``Profile('Li', [0, 30], [1.25, 1.0], kind='ratio')``.

Several profiles in one layer are applied in order.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
from .constants import AVOGADRO_PER_MOL as N_A

from .composition import composition as _composition
from .composition import molar_mass_g
from .elements import element, natural_isotopes
from ..errors import RecoilsimError, require_positive

NM_CM = 1e-7


@dataclass
class Profile:
    """Piecewise-linear depth profile of one element inside one layer.

    Parameters
    ----------
    element : str
        Element symbol, e.g. ``'Li'``.
    depth : sequence of float
        Depth grid from the top of the layer, strictly increasing, >= 0, in ``depth_unit``.
    values : sequence of float
        Profile values at the grid points (see module docstring for ``kind``).
    kind : {'scale', 'ratio', 'fraction'}
        Meaning of ``values``.
    depth_unit : {'nm', '1e15'}
        nm (the layer needs a density) or 1e15 atoms/cm2.
    """

    element: str
    depth: Sequence[float]
    values: Sequence[float]
    kind: str = "scale"
    depth_unit: str = "nm"

    def __post_init__(self):
        self.element = element(self.element).symbol
        d = np.asarray(self.depth, dtype=float)
        v = np.asarray(self.values, dtype=float)
        if d.ndim != 1 or d.size < 1:
            raise RecoilsimError(f"profile[{self.element}].depth", self.depth, "a 1-D sequence with at least one value")
        if v.shape != d.shape:
            raise RecoilsimError(f"profile[{self.element}].values", self.values,
                                 f"as many values as depths ({d.size})")
        if not np.all(np.isfinite(d)) or not np.all(np.isfinite(v)):
            raise RecoilsimError(f"profile[{self.element}]", "non-finite", "finite depths and values")
        if d[0] < 0 or np.any(np.diff(d) <= 0):
            raise RecoilsimError(f"profile[{self.element}].depth", self.depth, "strictly increasing values >= 0")
        if self.kind not in ("scale", "ratio", "fraction"):
            raise RecoilsimError(f"profile[{self.element}].kind", self.kind, "'scale', 'ratio' or 'fraction'")
        if np.any(v < 0) or (self.kind == "fraction" and np.any(v > 1)):
            lim = "in [0, 1]" if self.kind == "fraction" else ">= 0"
            raise RecoilsimError(f"profile[{self.element}].values", self.values, f"values {lim}")
        if self.depth_unit not in ("nm", "1e15"):
            raise RecoilsimError(f"profile[{self.element}].depth_unit", self.depth_unit, "'nm' or '1e15'")
        self.depth = d
        self.values = v

    def at(self, depth: np.ndarray) -> np.ndarray:
        """Profile values at depths (same unit as the grid); end values hold outside it."""
        return np.interp(depth, self.depth, self.values)


@dataclass
class Layer:
    """One layer of a sample.

    Parameters
    ----------
    composition : str or mapping
        A formula (``'Li2.0PO2.6N0.9'``) or element -> atomic fraction (must sum to 1).
    thickness_nm : float, optional
        Thickness in nm (needs ``density_g_cm3``).
    density_g_cm3 : float, optional
        Mass density in g/cm3.
    areal_density_1e15 : float, optional
        Thickness as areal density in 1e15 atoms/cm2 (alternative to ``thickness_nm``).
    name : str
        Label used in output.
    profiles : list of Profile
        Depth profiles of elements inside this layer.
    enrichment : mapping, optional
        Element -> {mass number: fraction} overriding natural isotopic abundances.
    stopping_factors : mapping, optional
        Element -> factor multiplying that element's stopping contribution in this layer
        (SIMNRA's stopping correction factor); default 1.
    stopping : str, optional
        Electronic stopping source of this layer (``'srim2013'``, ``'catima'`` or the path of a
        stopping-table file or folder, as ``Options.stopping``); None (default): the
        experiment's ``options.stopping``.
    """

    composition: str | Mapping[str, float]
    thickness_nm: float | None = None
    density_g_cm3: float | None = None
    areal_density_1e15: float | None = None
    name: str = ""
    profiles: list[Profile] = field(default_factory=list)
    enrichment: Mapping[str, Mapping[int, float]] = field(default_factory=dict)
    stopping_factors: Mapping[str, float] = field(default_factory=dict)
    stopping: str | None = None

    def __post_init__(self):
        lbl = f"layer '{self.name}'" if self.name else "layer"
        self.formula = self.composition if isinstance(self.composition, str) else None
        self.fractions = _composition(self.composition, f"{lbl}.composition")
        if self.density_g_cm3 is not None:
            self.density_g_cm3 = require_positive(f"{lbl}.density_g_cm3", self.density_g_cm3)
        if self.thickness_nm is not None and self.areal_density_1e15 is not None:
            raise RecoilsimError(f"{lbl}.thickness", (self.thickness_nm, self.areal_density_1e15),
                                 "give either thickness_nm (with density) or areal_density_1e15, not both")
        if self.thickness_nm is not None:
            self.thickness_nm = require_positive(f"{lbl}.thickness_nm", self.thickness_nm)
            if self.density_g_cm3 is None:
                raise RecoilsimError(f"{lbl}.density_g_cm3", None, "a density > 0 (g/cm3) when the thickness is in nm")
            self.areal_density_1e15 = self.thickness_nm * self.nm_to_1e15
        elif self.areal_density_1e15 is not None:
            self.areal_density_1e15 = require_positive(f"{lbl}.areal_density_1e15", self.areal_density_1e15)
            if self.density_g_cm3 is not None:
                self.thickness_nm = self.areal_density_1e15 / self.nm_to_1e15
        else:
            raise RecoilsimError(f"{lbl}.thickness", None, "thickness_nm (with density_g_cm3) or areal_density_1e15 > 0")
        self.profiles = list(self.profiles)
        for p in self.profiles:
            if not isinstance(p, Profile):
                raise RecoilsimError(f"{lbl}.profiles", p, "Profile objects")
            if p.depth_unit == "nm" and self.density_g_cm3 is None:
                raise RecoilsimError(f"{lbl}.profiles[{p.element}].depth_unit", "nm",
                                     "'1e15' unless the layer has a density")
            if p.kind in ("scale", "ratio") and p.element not in self.fractions:
                raise RecoilsimError(f"{lbl}.profiles[{p.element}].element", p.element,
                                     f"an element of the layer ({', '.join(self.fractions)}) for kind '{p.kind}'")
            if p.kind == "ratio" and np.any(p.values * self.fractions[p.element] > 1.0):
                raise RecoilsimError(f"{lbl}.profiles[{p.element}].values", p.values,
                                     f"ratios <= {1.0 / self.fractions[p.element]:.4g} (fraction <= 1)")
        self.enrichment = {element(k).symbol: dict(v) for k, v in dict(self.enrichment).items()}
        for k, v in self.enrichment.items():
            natural_isotopes(k, v)  # validates
        sf = {}
        for k, v in dict(self.stopping_factors).items():
            sf[element(k).symbol] = require_positive(f"{lbl}.stopping_factors[{k}]", v)
        self.stopping_factors = sf
        if self.stopping is not None:
            if not isinstance(self.stopping, str) or not self.stopping.strip():
                raise RecoilsimError(f"{lbl}.stopping", self.stopping,
                                     "'srim2013', 'catima' or the path of a stopping-table file or folder")
            if self.stopping.strip().lower() in ("srim2013", "catima"):
                self.stopping = self.stopping.strip().lower()

    @property
    def mean_atomic_mass_u(self) -> float:
        """Mean atomic mass (g/mol) of the nominal composition."""
        return molar_mass_g(self.fractions)

    @property
    def atomic_density_cm3(self) -> float:
        """Nominal atomic density in atoms/cm3 (needs the mass density)."""
        if self.density_g_cm3 is None:
            raise RecoilsimError("density_g_cm3", None, "a density to convert nm <-> 1e15 atoms/cm2")
        return self.density_g_cm3 * N_A / self.mean_atomic_mass_u

    @property
    def nm_to_1e15(self) -> float:
        """1e15 atoms/cm2 per nm of this layer (nominal composition)."""
        return self.atomic_density_cm3 * NM_CM / 1e15

    def replaced(self, **changes) -> "Layer":
        """A copy with ``changes``, validated anew (``dataclasses.replace``). The layer keeps its
        thickness in nm (with its density) unless the changes give a thickness; the areal density
        derived from it is recomputed, since a layer takes one of the two."""
        if "thickness_nm" not in changes and "areal_density_1e15" not in changes and self.thickness_nm is not None:
            changes["thickness_nm"] = self.thickness_nm
        if changes.get("thickness_nm") is not None:
            changes["areal_density_1e15"] = None
        return dataclasses.replace(self, **changes)

    def elements(self) -> list[str]:
        """Elements present in the layer (nominal and profiled)."""
        out = list(self.fractions)
        for p in self.profiles:
            if p.element not in out:
                out.append(p.element)
        return out

    def fractions_at(self, depth_1e15: np.ndarray, elements: Sequence[str]) -> np.ndarray:
        """Atomic fractions (n_depth, n_elements) at depths from the layer top (1e15 at/cm2).

        Applies the profiles in order with the renormalisation rule of the module docstring.
        """
        depth_1e15 = np.atleast_1d(np.asarray(depth_1e15, dtype=float))
        idx = {e: i for i, e in enumerate(elements)}
        out = np.zeros((depth_1e15.size, len(elements)))
        for e, f in self.fractions.items():
            out[:, idx[e]] = f
        for p in self.profiles:
            d = depth_1e15 if p.depth_unit == "1e15" else depth_1e15 / self.nm_to_1e15
            v = p.at(d)
            j = idx[p.element]
            if p.kind == "scale":
                out[:, j] *= v
                tot = out.sum(axis=1, keepdims=True)
                if np.any(tot <= 0):
                    raise RecoilsimError(f"layer '{self.name}'.profiles[{p.element}].values", p.values,
                                         "values that leave atoms in the layer at every depth")
                out /= tot
            else:
                if p.kind == "ratio":
                    v = v * self.fractions[p.element]
                rest = out.sum(axis=1) - out[:, j]
                scale = np.where(rest > 0, (1.0 - v) / np.where(rest > 0, rest, 1.0), 0.0)
                out *= scale[:, None]
                out[:, j] = v
                s = out.sum(axis=1, keepdims=True)
                out /= np.where(s > 0, s, 1.0)
        return out

    def profile_breakpoints_1e15(self) -> np.ndarray:
        """Depths (1e15 at/cm2 from the layer top) where a profile has a grid point."""
        pts = []
        for p in self.profiles:
            d = p.depth if p.depth_unit == "1e15" else p.depth * self.nm_to_1e15
            pts.extend(d[(d > 0) & (d < self.areal_density_1e15)])
        return np.unique(np.asarray(pts, dtype=float))


@dataclass
class Sample:
    """An ordered stack of layers, the first one at the surface."""

    layers: list[Layer]

    def __post_init__(self):
        self.layers = list(self.layers)
        if not self.layers:
            raise RecoilsimError("sample.layers", self.layers, "at least one layer")
        for i, l in enumerate(self.layers):
            if not isinstance(l, Layer):
                raise RecoilsimError(f"sample.layers[{i}]", l, "a Layer")

    def elements(self) -> list[str]:
        """All elements in the sample, in order of first appearance."""
        out: list[str] = []
        for l in self.layers:
            for e in l.elements():
                if e not in out:
                    out.append(e)
        return out

    @property
    def total_areal_density_1e15(self) -> float:
        """Sum of layer areal densities (1e15 atoms/cm2)."""
        return float(sum(l.areal_density_1e15 for l in self.layers))

    def boundaries_1e15(self) -> np.ndarray:
        """Depths of the layer boundaries from the surface (1e15 at/cm2), length n_layers+1."""
        return np.concatenate([[0.0], np.cumsum([l.areal_density_1e15 for l in self.layers])])

    def depth_1e15_to_nm(self, depth_1e15: np.ndarray) -> np.ndarray:
        """Convert depth from the surface in 1e15 at/cm2 to nm, layer by layer.

        Layers without a density make the depth below their top NaN in nm (no conversion exists).
        Depths below 0 give 0; depths beyond the last layer continue in it.
        """
        d = np.asarray(depth_1e15, dtype=float)
        b = self.boundaries_1e15()
        conv = np.array([l.nm_to_1e15 if l.density_g_cm3 is not None else np.nan for l in self.layers])
        top_nm = np.concatenate([[0.0], np.cumsum(np.diff(b) / conv)])
        i = np.clip(np.searchsorted(b, d, side="right") - 1, 0, len(self.layers) - 1)
        return np.where(d >= 0.0, top_nm[i] + (d - b[i]) / conv[i], 0.0)
