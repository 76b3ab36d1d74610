"""Depth nodes for composition profiles of every element, and the layered sample they define.

A :class:`DepthGrid` holds nodes in depth (1e15 atoms/cm2 from the surface) and, for every
element, an atomic fraction at each node. Between two nodes every fraction is linear in depth
(piecewise-linear "hat" functions), so the fractions sum to one at every depth when they do at
the nodes. Below the last node the last node's composition holds to the bottom of the sample.

The grid may be split into *segments* at declared layer boundaries (``breaks``): a node then
sits on each side of the boundary and the profile may jump there. Without breaks the profile is
continuous from the surface down, whatever layers the start sample declares (a film on a
substrate needs no interface layers: the nodes describe the interface).

:meth:`DepthGrid.sample` turns node fractions into a :class:`~recoilsim.model.sample.Sample` of
thin layers of constant composition (``n_sub`` per node interval, each with the composition
at its middle), the form the slab kernel computes; :meth:`DepthGrid.weights` gives the hat
weight of every node at the middle of every such layer, so that a block's fraction of an element
is exactly ``weights @ node_fractions``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import RecoilsimError
from .sample import Layer, Sample

FLOOR = 1e-6  # smallest start fraction of an element at a node (log-ratio parametrisation)


class DepthGrid:
    """Nodes in depth for the composition profiles of several elements.

    Parameters
    ----------
    start : Sample
        The start sample: its composition at the nodes is the start of the profiles, its
        layer densities convert depth to nm, and its total thickness is the bottom of the tail
        below the last node.
    elements : sequence of str
        The profiled elements (every one gets a fraction at every node). Elements of ``start``
        not listed keep their start fraction at every node (held, not fitted).
    nodes_1e15 : sequence of float
        Node depths from the surface (1e15 atoms/cm2), increasing, the first one 0.
    breaks : bool
        Let the profiles jump at the start sample's layer boundaries that lie inside the nodes'
        range (a node on each side of each boundary; the smoothness prior does not couple
        across it).
    n_sub : int
        Layers of constant composition per node interval in :meth:`sample`.
    """

    def __init__(self, start: Sample, elements: Sequence[str], nodes_1e15: Sequence[float], breaks: bool = False,
                 n_sub: int = 2):
        if not isinstance(start, Sample):
            raise RecoilsimError("start", type(start).__name__, "a Sample")
        z = np.asarray(nodes_1e15, dtype=float)
        if z.ndim != 1 or z.size < 2 or not np.all(np.isfinite(z)) or z[0] != 0.0 or np.any(np.diff(z) <= 0):
            raise RecoilsimError("nodes_1e15", nodes_1e15, "at least 2 strictly increasing depths starting at 0")
        bottom = start.total_areal_density_1e15
        if z[-1] >= bottom:
            raise RecoilsimError("nodes_1e15", float(z[-1]), f"a last node above the sample's bottom ({bottom:.6g})")
        self.elements = list(elements)
        present = start.elements()
        for e in self.elements:
            if e not in present:
                raise RecoilsimError("elements", e, f"an element of the start sample ({', '.join(present)})")
        if len(self.elements) < 2 or len(set(self.elements)) != len(self.elements):
            raise RecoilsimError("elements", elements, "at least two distinct elements")
        self.held = [e for e in present if e not in self.elements]
        self.start_sample = start
        self.n_sub = int(n_sub)
        if self.n_sub < 1:
            raise RecoilsimError("n_sub", n_sub, "an integer >= 1")
        bounds = start.boundaries_1e15()[1:-1]
        cuts = [float(b) for b in bounds if z[0] < b < z[-1]] if breaks else []
        seg_nodes, seg = [], []
        edges = [0.0] + cuts + [float(z[-1])]
        for s in range(len(edges) - 1):
            inner = z[(z > edges[s]) & (z < edges[s + 1])]
            pts = np.concatenate([[edges[s]], inner, [edges[s + 1]]])
            seg_nodes.append(pts)
            seg.append(np.full(pts.size, s))
        self.depth_1e15 = np.concatenate(seg_nodes)
        self.segment = np.concatenate(seg)
        self.bottom_1e15 = float(bottom)
        # start composition at the nodes (a node at a break takes its own side's layer)
        side = np.where(np.r_[False, np.diff(self.segment) > 0], 1e-9, -1e-9)
        side[0] = 1e-9
        probe = np.clip(self.depth_1e15 + side * max(1.0, float(z[-1])), 0.0, bottom)
        self.start_fractions = _fractions_at(start, probe, present)  # (n_nodes, n_present)
        self.present = present

    @property
    def n_nodes(self) -> int:
        return int(self.depth_1e15.size)

    def depth_nm(self) -> np.ndarray:
        """Node depths in nm, with the start sample's layer densities (NaN below a layer without one)."""
        return self.start_sample.depth_1e15_to_nm(self.depth_1e15)

    def held_fraction(self) -> np.ndarray:
        """(n_nodes,) summed start fraction of the held (not profiled) elements at each node."""
        idx = [self.present.index(e) for e in self.held]
        return self.start_fractions[:, idx].sum(axis=1) if idx else np.zeros(self.n_nodes)

    def start_profile(self) -> np.ndarray:
        """(n_elements, n_nodes) start fractions of the profiled elements, at least FLOOR, scaled to
        fill what the held elements leave."""
        idx = [self.present.index(e) for e in self.elements]
        f = np.maximum(self.start_fractions[:, idx].T, FLOOR)
        return f / f.sum(axis=0) * (1.0 - self.held_fraction())

    def second_differences(self) -> np.ndarray:
        """(n_rows, n_nodes) second-difference operator inside each segment (none across breaks)."""
        rows = []
        for s in np.unique(self.segment):
            k = np.flatnonzero(self.segment == s)
            for i in range(k.size - 2):
                r = np.zeros(self.n_nodes)
                r[k[i]], r[k[i + 1]], r[k[i + 2]] = 1.0, -2.0, 1.0
                rows.append(r)
        return np.array(rows).reshape(-1, self.n_nodes)

    def layer_edges(self) -> np.ndarray:
        """Top of each constant-composition layer of :meth:`sample`, plus the sample bottom."""
        tops = []
        for k in range(self.n_nodes - 1):
            if self.segment[k] != self.segment[k + 1]:
                continue  # zero-width interval at a break
            tops.extend(np.linspace(self.depth_1e15[k], self.depth_1e15[k + 1], self.n_sub + 1)[:-1])
        tops.append(self.depth_1e15[-1])
        return np.array(tops + [self.bottom_1e15])

    def weights(self) -> np.ndarray:
        """(n_layers, n_nodes): hat weight of each node at the middle of each layer of :meth:`sample`
        (rows sum to 1; the tail below the last node is the last node's)."""
        e = self.layer_edges()
        mids = 0.5 * (e[:-1] + e[1:])
        W = np.zeros((mids.size, self.n_nodes))
        for i, x in enumerate(mids[:-1]):
            k = int(np.searchsorted(self.depth_1e15, x, side="right") - 1)
            while self.segment[k] != self.segment[min(k + 1, self.n_nodes - 1)]:
                k -= 1  # x lies in the interval that ends at a break's upper node
            t = (x - self.depth_1e15[k]) / (self.depth_1e15[k + 1] - self.depth_1e15[k])
            W[i, k], W[i, k + 1] = 1.0 - t, t
        W[-1, -1] = 1.0
        return W

    def sample(self, fractions: np.ndarray) -> Sample:
        """The sample of thin constant-composition layers for node fractions (n_elements, n_nodes)."""
        f = np.asarray(fractions, dtype=float)
        if f.shape != (len(self.elements), self.n_nodes):
            raise RecoilsimError("fractions", f.shape, f"(n_elements, n_nodes) = ({len(self.elements)}, {self.n_nodes})")
        if not np.all(np.isfinite(f)) or np.any(f < 0):
            raise RecoilsimError("fractions", "negative or non-finite", "fractions >= 0")
        W = self.weights()
        blk = W @ f.T  # (n_layers, n_elements)
        held = W @ self.start_fractions[:, [self.present.index(e) for e in self.held]] if self.held else None
        e = self.layer_edges()
        layers = []
        for i in range(blk.shape[0]):
            comp = {el: float(v) for el, v in zip(self.elements, blk[i]) if v > 0}
            if held is not None:
                comp.update({el: float(v) for el, v in zip(self.held, held[i]) if v > 0})
            tot = sum(comp.values())
            layers.append(Layer({k: v / tot for k, v in comp.items()}, areal_density_1e15=float(e[i + 1] - e[i]),
                                name=f"node layer {i}"))
        return Sample(layers)


def _fractions_at(sample: Sample, depth_1e15: np.ndarray, elements: list[str]) -> np.ndarray:
    """Atomic fractions (n_depth, n_elements) of a layered sample at depths from its surface."""
    b = sample.boundaries_1e15()
    out = np.zeros((depth_1e15.size, len(elements)))
    for i, x in enumerate(depth_1e15):
        li = int(np.clip(np.searchsorted(b, x, side="right") - 1, 0, len(sample.layers) - 1))
        out[i] = sample.layers[li].fractions_at(np.array([x - b[li]]), elements)[0]
    return out
