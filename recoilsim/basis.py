"""Spectra linear in the depth profile of one element (the linearised forward model).

For a fixed stopping medium the recoil yield of an element is proportional to its density at
each depth (DESIGN.md section 2, "Fitting": the spectrum is nearly linear in the
concentrations). :class:`LinearModel` runs the slab kernel once at the nominal composition,
keeps the bricks in the time domain and splits the element's bricks over piecewise-linear "hat"
functions of depth. The element's spectrum for profile values v (multipliers of its nominal
atomic fraction, as :class:`~recoilsim.sample.Profile` with ``kind='ratio'``) is then c + A v,
and a new TOF calibration only re-spreads the stored bricks.

Approximations (measured in tests/test_basis.py): stopping stays that of the nominal
composition (the other elements' fractions shrink slightly as Li grows, which changes the
stopping a little in the full model).
"""

from __future__ import annotations

import copy

import numpy as np

from .errors import RecoilsimError
from .experiment import Experiment
from .kernels.slab import spread_bricks
from .simulate import prepare, run_bricks


def hat_weights(depth: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Weights (n_depth, n_nodes) of piecewise-linear interpolation on ``nodes``.

    Row i holds the coefficients with which the node values combine to the profile at
    depth[i]; end values hold beyond the grid (as :meth:`Profile.at`). Rows sum to 1.
    """
    depth = np.asarray(depth, dtype=float)
    n = nodes.size
    w = np.zeros((depth.size, n))
    if n == 1:
        w[:, 0] = 1.0
        return w
    k = np.clip(np.searchsorted(nodes, depth, side="right") - 1, 0, n - 2)
    t = np.clip((depth - nodes[k]) / (nodes[k + 1] - nodes[k]), 0.0, 1.0)
    rows = np.arange(depth.size)
    w[rows, k] = 1.0 - t
    w[rows, k + 1] += t
    return w


class LinearModel:
    """Spectra linear in the depth profile of one element, stopping held at the nominal composition.

    Parameters
    ----------
    exp : Experiment
        The experiment; profiles of ``element`` in ``layer`` are replaced by the nominal amount.
    element : str
        The element whose profile is free (e.g. ``'Li'``).
    layer : int or str
        Index or name of the layer that holds the profile.
    depth_nm : array, optional
        Profile nodes in nm from the top of the layer (default 0..50 nm every 1 nm).
    base : array, optional
        Profile values (ratios, one per node) at which the stopping is evaluated (default all
        ones: the nominal composition). Re-linearising at a fitted profile makes the model exact
        there: ``spectrum(base)`` equals the full simulation of that profile.

    Attributes
    ----------
    depth_nm : ndarray
        The nodes.
    elements : list of str
        Elements with spectra.
    """

    def __init__(self, exp: Experiment, element: str = "Li", layer: int | str = 1,
                 depth_nm: np.ndarray | None = None, base: np.ndarray | None = None):
        if not isinstance(exp, Experiment):
            raise RecoilsimError("experiment", type(exp).__name__, "an Experiment")
        layers = exp.sample.layers
        if isinstance(layer, str):
            names = [l.name for l in layers]
            if layer not in names:
                raise RecoilsimError("layer", layer, f"one of the layer names {names}")
            layer = names.index(layer)
        if not isinstance(layer, (int, np.integer)) or not 0 <= layer < len(layers):
            raise RecoilsimError("layer", layer, f"a layer index from 0 to {len(layers) - 1}")
        lay = layers[layer]
        if element not in lay.fractions:
            raise RecoilsimError("element", element, f"an element of layer {layer} ({', '.join(lay.fractions)})")
        if lay.density_g_cm3 is None:
            raise RecoilsimError("layer.density_g_cm3", None, "a density, to place profile nodes in nm")
        nodes = np.arange(0.0, 51.0) if depth_nm is None else np.asarray(depth_nm, dtype=float)
        if nodes.ndim != 1 or nodes.size < 1 or not np.all(np.isfinite(nodes)) or np.any(np.diff(nodes) <= 0) \
                or nodes[0] < 0:
            raise RecoilsimError("depth_nm", depth_nm, "strictly increasing finite depths >= 0 (nm)")
        base = np.ones(nodes.size) if base is None else np.asarray(base, dtype=float)
        if base.shape != nodes.shape or not np.all(np.isfinite(base)) or np.any(base <= 0):
            raise RecoilsimError("base", base, f"{nodes.size} finite ratios > 0, one per node")
        self.exp = exp
        self.element = element
        self.layer = int(layer)
        self.depth_nm = nodes
        self.base = base
        nominal = copy.deepcopy(exp)
        profs = [p for p in lay.profiles if p.element != element]
        if np.any(base != 1.0):
            from .sample import Profile
            profs.append(Profile(element, nodes, base, kind="ratio"))
        nominal.sample.layers[layer].profiles = profs
        arrays = prepare(nominal)
        n, ta, tb, Y, sig_t, x_mid, e_det, sig_e, overflow = run_bricks(arrays)
        self.n_channels = exp.detector.n_channels
        self.a_ns = exp.detector.calibration_a_ns
        self.b_ns = exp.detector.calibration_b_ns
        self.resolution = exp.options.resolution
        species = arrays.species
        self.elements = []
        for sp in species:
            if sp.kind == 0 and sp.element not in self.elements:
                self.elements.append(sp.element)
        mine = [i for i, sp in enumerate(species) if sp.kind == 0 and sp.element == element]
        rest = [i for i, sp in enumerate(species) if sp.kind == 0 and sp.element != element]
        self._el_of_rest = [species[i].element for i in rest]
        self._bricks = tuple(np.ascontiguousarray(arr[mine, :n]) for arr in (ta, tb, Y, sig_t))
        self._rest = tuple(np.ascontiguousarray(arr[rest, :n]) for arr in (ta, tb, Y, sig_t))
        # split the element's bricks over the hat functions of the nodes (inside the layer)
        top = exp.sample.boundaries_1e15()[layer]
        bottom = exp.sample.boundaries_1e15()[layer + 1]
        xm = x_mid[mine, :n]
        inside = (xm >= top) & (xm < bottom)
        d_nm = (xm - top) / lay.nm_to_1e15
        W = hat_weights(d_nm.ravel(), nodes).reshape(xm.shape + (nodes.size,))
        W /= np.interp(d_nm, nodes, base)[..., None]  # bricks carry the base profile: per unit ratio
        W[~inside] = 0.0
        self._W = W  # (n_iso, n_bricks, n_nodes)
        self._outside = np.where(inside, 0.0, 1.0)
        self._cache = {}

    def _spread(self, ta, tb, Y, sig_t, a, b):
        out = np.zeros((ta.shape[0], self.n_channels))
        spread_bricks(ta, tb, Y, sig_t, ta.shape[1], a, b, self.n_channels, self.resolution, out)
        return out

    def columns(self, a_ns: float | None = None, b_ns: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(A, c): counts of the element = c + A @ values for calibration t = a*ch + b.

        A has shape (n_channels, n_nodes); both at the experiment's Q * Omega.
        """
        a = self.a_ns if a_ns is None else float(a_ns)
        b = self.b_ns if b_ns is None else float(b_ns)
        key = (a, b)
        if key in self._cache:
            return self._cache[key]
        ta, tb, Y, st = self._bricks
        A = np.zeros((self.n_channels, self.depth_nm.size))
        for k in range(self.depth_nm.size):
            yk = Y * self._W[:, :, k]
            used = np.any(yk > 0, axis=0)
            if not used.any():
                continue
            sl = np.nonzero(used)[0]
            A[:, k] = self._spread(ta[:, sl], tb[:, sl], np.ascontiguousarray(yk[:, sl]), st[:, sl], a, b).sum(axis=0)
        c = self._spread(ta, tb, Y * self._outside, st, a, b).sum(axis=0)
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = (A, c)
        return A, c

    def spectrum(self, values, a_ns: float | None = None, b_ns: float | None = None, scale: float = 1.0) -> np.ndarray:
        """Counts of the element for profile values (one per node); ``scale`` multiplies Q*Omega."""
        v = np.asarray(values, dtype=float)
        if v.shape != self.depth_nm.shape:
            raise RecoilsimError("values", v.shape, f"one value per depth node ({self.depth_nm.size})")
        A, c = self.columns(a_ns, b_ns)
        return scale * (c + A @ v)

    def other(self, a_ns: float | None = None, b_ns: float | None = None) -> dict[str, np.ndarray]:
        """Spectra of the other elements (independent of the profile in this linearisation)."""
        a = self.a_ns if a_ns is None else float(a_ns)
        b = self.b_ns if b_ns is None else float(b_ns)
        out: dict[str, np.ndarray] = {}
        if not self._el_of_rest:
            return out
        key = ("other", a, b)
        if key not in self._cache:  # the fit asks again at every evaluation with the same (a, b)
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = self._spread(*self._rest, a, b)
        for e, row in zip(self._el_of_rest, self._cache[key]):
            out[e] = out.get(e, 0.0) + row
        return out
