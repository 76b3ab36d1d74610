"""Spectra of every element linear in its atomic fractions on depth nodes (stopping held fixed).

For a fixed stopping medium the yield of a recoil from a thin slab is proportional to the
atomic fraction of its element there (the ERDA yield equation: counts = Q Omega sigma(E) N dx /
cos(alpha), e.g. Tesmer & Nastasi, *Handbook of Modern Ion Beam Materials Analysis* (1995),
ch. 5). :class:`NodeResponse` runs the slab kernel once for the sample of a
:class:`~recoilsim.model.depth_grid.DepthGrid` at given node fractions (which set the stopping),
with every isotope's density replaced by its abundance (:mod:`recoilsim.forward.engine`) (unit atomic fraction of its element:
the kernel's bricks then carry the yield *per unit fraction*), and splits each brick's yield
over the nodes by the hat weights of its layer. For node fractions F (n_elements, n_nodes) the
counts of element e are then

    counts_e = sum_k F[e, k] R_e[k]          (R_e[k]: spectrum per unit fraction at node k)

exactly, as long as the stopping is that of the fractions the kernel ran with (at those
fractions ``counts`` equals :func:`recoilsim.forward.simulate.simulate` of the grid's sample).
A new composition changes the stopping: re-build the response there (re-linearise).
A new TOF calibration only re-spreads the stored bricks.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import RecoilsimError
from ..model.depth_grid import DepthGrid
from ..model.experiment import Experiment
from .engine import boxes, prepare, run, spread
from .timing_response import apply_tail


class NodeResponse:
    """Per-node, per-element spectra per unit atomic fraction at one stopping medium.

    Parameters
    ----------
    exp : Experiment
        Instrument, recoils and options (its sample is replaced by the grid's).
    grid : DepthGrid
    fractions : array (n_elements, n_nodes)
        Node fractions that set the stopping (and at which :meth:`counts` is exact).
    """

    def __init__(self, exp: Experiment, grid: DepthGrid, fractions: np.ndarray):
        if not isinstance(exp, Experiment):
            raise RecoilsimError("experiment", type(exp).__name__, "an Experiment")
        self.grid = grid
        self.fractions = np.asarray(fractions, dtype=float).copy()
        inputs = prepare(dataclasses.replace(exp, sample=grid.sample(self.fractions)))
        dens = inputs.outgoing.density
        unit = np.zeros_like(dens)
        for si, sp in enumerate(inputs.species):
            fw = inputs.element_fractions(sp.target_symbol)
            with np.errstate(invalid="ignore", divide="ignore"):
                unit[si] = np.where(fw > 0, dens[si] / np.where(fw > 0, fw, 1.0), 0.0)
            unit[si] = unit[si].max()  # the abundance (same in every block: no enrichment in the grid's layers)
        bricks = run(dataclasses.replace(inputs, outgoing=inputs.outgoing._replace(density=unit)))
        n, ta, tb, Y, sig_t, x_mid = bricks.n, bricks.ta, bricks.tb, bricks.Y, bricks.sig_t, bricks.x_mid
        self.n_channels = exp.detector.n_channels
        self.a_ns = exp.detector.calibration_a_ns
        self.b_ns = exp.detector.calibration_b_ns
        self.resolution = exp.options.resolution
        self.detector = exp.detector  # its timing tail (linear: applied to every column)
        self.n_bricks = int(n)
        W = grid.weights()
        edges = grid.layer_edges()
        self.elements = [el for el in grid.elements if any(sp.kind == 0 and sp.element == el for sp in inputs.species)]
        rows = {q: [] for q in ("ta", "tb", "y", "st")}
        self._row_of = []  # (element index, node) per row
        for ei, el in enumerate(self.elements):
            sps = [i for i, sp in enumerate(inputs.species) if sp.kind == 0 and sp.element == el]
            for s in sps:
                y = Y[s, :n]
                blk = np.clip(np.searchsorted(edges, x_mid[s, :n], side="right") - 1, 0, W.shape[0] - 1)
                for k in range(grid.n_nodes):
                    yk = y * W[blk, k]
                    sel = yk > 0
                    rows["ta"].append(ta[s, :n][sel])
                    rows["tb"].append(tb[s, :n][sel])
                    rows["y"].append(yk[sel])
                    rows["st"].append(sig_t[s, :n][sel])
                    self._row_of.append((ei, k))
        width = max(1, max(r.size for r in rows["y"]))
        self._arr = []
        for q in ("ta", "tb", "y", "st"):
            a = np.zeros((len(rows[q]), width))
            for i, r in enumerate(rows[q]):
                a[i, :r.size] = r
            self._arr.append(a)
        self._cache = {}

    def columns(self, a_ns: float | None = None, b_ns: float | None = None) -> np.ndarray:
        """R (n_elements, n_nodes, n_channels): counts per unit fraction at each node, at the
        experiment's Q * Omega and calibration t = a * channel + b (ns)."""
        a = self.a_ns if a_ns is None else float(a_ns)
        b = self.b_ns if b_ns is None else float(b_ns)
        key = (a, b)
        if key not in self._cache:
            out = apply_tail(spread(boxes(*self._arr), a, b, self.n_channels, self.resolution), self.detector, a,
                             self.resolution)
            R = np.zeros((len(self.elements), self.grid.n_nodes, self.n_channels))
            for (ei, k), row in zip(self._row_of, out):
                R[ei, k] += row
            if len(self._cache) > 8:
                self._cache.clear()
            self._cache[key] = R
        return self._cache[key]

    def counts(self, fractions: np.ndarray | None = None, a_ns: float | None = None,
               b_ns: float | None = None) -> dict[str, np.ndarray]:
        """{element: counts (n_channels,)} for node fractions (default: the stopping's own)."""
        f = self.fractions if fractions is None else np.asarray(fractions, dtype=float)
        R = self.columns(a_ns, b_ns)
        idx = [self.grid.elements.index(e) for e in self.elements]
        return {e: f[i] @ R[k] for k, (e, i) in enumerate(zip(self.elements, idx))}
