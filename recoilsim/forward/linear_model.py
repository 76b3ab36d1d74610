"""Spectra linear in the depth profile of one element (the linearised forward model).

For a fixed stopping medium the recoil yield of an element is proportional to its density at
each depth (the slab yield Y = Q Omega sigma n dx / cos(alpha) is linear in n; SIMNRA user's
guide): the spectrum is nearly linear in the concentrations. :class:`LinearModel` runs the
forward engine (:mod:`recoilsim.forward.engine`) once at a base composition (the nominal one
by default), keeps the bricks in the time domain and splits the bricks of the
profiled layer over piecewise-linear "hat" functions of depth. For profile values v
(multipliers of the element's nominal atomic fraction f, as
:class:`~recoilsim.model.sample.Profile` with ``kind='ratio'``) every element's spectrum is then
linear in v: ``c_e + A_e v``.

* The profiled element: its yield per unit depth is proportional to v (columns A).
* Every other element of that layer: the ``'ratio'`` rule (:meth:`recoilsim.model.sample.Layer.fractions_at`)
  gives it the fraction ``f_e (1 - f v) / rest`` -- also linear in v, so its spectrum is
  ``c_e + A_e v`` with ``A_e = -f x (its bricks per unit (1 - f v))``. Without this term a Li
  excess of 25 % near the interface leaves P, O, N 5-6 % (of their maximum) too high in the
  linear model (measured in tests/test_basis.py).
* Elements outside the layer do not depend on v.

A new TOF calibration only re-spreads the stored bricks.

Approximation (measured in tests/test_basis.py): the stopping stays that of the base
composition; a Li excess lowers the stopping slightly and so stretches the depth scale.
``LinearModel(base=v)`` removes it at v (the model equals the full simulation there), which
is how :func:`recoilsim.fitting.driver.fit` re-linearises.
"""

from __future__ import annotations

import dataclasses


import numpy as np

from ..errors import RecoilsimError
from ..model.experiment import Experiment
from .engine import boxes, brick_edge_depths, prepare, run, spread
from .timing_response import apply_tail, has_tail, tail_reach_channels


def _hat_weights(lo, hi, nodes) -> np.ndarray:
    """(n, n_nodes): the mean of every hat function over each depth interval [lo, hi] (end values
    held beyond the first and last node; the hats at lo where the interval is empty). The hats are
    linear between nodes, so their integral over a part of a node interval is exact:
    int t dx = h (t_b^2 - t_a^2) / 2 with t the fraction of the interval h."""
    n = nodes.size
    w = np.zeros((lo.size, n))
    if n == 1:
        w[:, 0] = 1.0
        return w
    hi = np.maximum(hi, lo)
    w[:, 0] += np.clip(np.minimum(hi, nodes[0]) - lo, 0.0, None)
    w[:, -1] += np.clip(hi - np.maximum(lo, nodes[-1]), 0.0, None)
    for j in range(n - 1):
        h = nodes[j + 1] - nodes[j]
        a = np.maximum(lo, nodes[j])
        b = np.minimum(hi, nodes[j + 1])
        ok = b > a
        ta, tb = (a - nodes[j]) / h, (b - nodes[j]) / h
        it = np.where(ok, 0.5 * h * (tb * tb - ta * ta), 0.0)
        w[:, j + 1] += it
        w[:, j] += np.where(ok, b - a, 0.0) - it
    width = hi - lo
    empty = width <= 0.0
    w[~empty] /= width[~empty, None]
    if empty.any():  # a point: the hats' values there
        k = np.clip(np.searchsorted(nodes, lo[empty], side="right") - 1, 0, n - 2)
        t = np.clip((lo[empty] - nodes[k]) / (nodes[k + 1] - nodes[k]), 0.0, 1.0)
        rows = np.nonzero(empty)[0]
        w[rows] = 0.0
        w[rows, k] = 1.0 - t
        w[rows, k + 1] += t
    return w


def _node_rows(pieces, n_nodes: int) -> list:
    """One row (ta, tb, y, sig_t) per node from ``pieces`` [(node, ta, tb, y, sig_t)]: each node's
    bricks in the order of the pieces and, within a piece, of its bricks (a stable sort by node)."""
    k = np.concatenate([pc[0] for pc in pieces])
    order = np.argsort(k, kind="stable")
    cols = [np.concatenate([pc[q] for pc in pieces])[order] for q in range(1, 5)]
    edges = np.searchsorted(k[order], np.arange(n_nodes + 1), side="left")
    return [tuple(c[edges[j]:edges[j + 1]] for c in cols) for j in range(n_nodes)]


def _blocks(rows) -> list:
    """Rows (ta, tb, y, sig_t) grouped in blocks of similar length (the longest at most twice
    the shortest), zero-padded (the kernel skips y <= 0): [(row indices, [ta, tb, y, sig_t])]."""
    n = len(rows)
    lens = np.array([r[0].size for r in rows])
    order = np.argsort(lens, kind="stable")
    blocks = []
    i = 0
    while i < n:
        L = max(int(lens[order[i]]), 1)
        j = i
        while j < n and lens[order[j]] <= 2 * L:
            j += 1
        idx = order[i:j]
        width = max(int(lens[idx].max()), 1)
        arr = np.zeros((4, idx.size, width))
        for r, k in enumerate(idx):
            for q in range(4):
                arr[q, r, :lens[k]] = rows[k][q]
        blocks.append((idx, [np.ascontiguousarray(arr[q]) for q in range(4)]))
        i = j
    return blocks


def _spread_blocks(blocks, n_rows: int, a, b, n_ch: int, resolution: bool, lo=None, hi=None) -> np.ndarray:
    """(n_rows, n_ch) spectra of the blocks' rows; with per-row windows ``lo``, ``hi`` (channels,
    arrays of n_rows) only the bricks that reach their row's window (within 6 sigma, as the kernel
    spreads them) are spread: exact inside it."""
    out = np.zeros((n_rows, n_ch))
    for idx, (ta, tb, y, st) in blocks:
        if lo is not None:
            c1 = (ta - b) / a
            c2 = (tb - b) / a
            reach = 6.0 * st / abs(a) + 1.0 if resolution else 1.0
            y = np.where((np.maximum(c1, c2) + reach >= lo[idx, None]) & (np.minimum(c1, c2) - reach <= hi[idx, None]),
                         y, 0.0)
        out[idx] = spread(boxes(ta, tb, y, st), a, b, n_ch, resolution)
    return out


def _tail_window(window, detector, a, resolution: bool):
    """A fit window widened by the timing tail's reach on the side its counts come from."""
    if has_tail(detector, resolution):
        r = tail_reach_channels(detector, a)
        return (window[0] - r, window[1]) if detector.timing_tail_ns / a > 0 else (window[0], window[1] + r)
    return window


class _Rows:
    """Groups of bricks, each group summed into one spectrum row; spread with one kernel call
    per block of rows of similar length."""

    def __init__(self, rows):
        self.rows = rows
        self.n = len(rows)
        self._blocks = None  # made on first use (a ModelSet spreads the rows in its own blocks)

    @property
    def blocks(self) -> list:
        if self._blocks is None:
            self._blocks = _blocks(self.rows)
        return self._blocks

    def spread(self, a, b, n_ch, resolution, window=None, detector=None):
        """(n_rows, n_ch) spectra, with ``detector``'s timing tail (each row: the filter is linear);
        with ``window`` = (lo, hi) only the bricks that reach those channels (within 6 sigma, as the
        kernel spreads them, and the tail's reach on the side it comes from) are spread: exact inside it."""
        lo = hi = None
        if window is not None:
            w = window if detector is None else _tail_window(window, detector, a, resolution)
            lo, hi = np.full(self.n, float(w[0])), np.full(self.n, float(w[1]))
        out = _spread_blocks(self.blocks, self.n, a, b, n_ch, resolution, lo, hi)
        return out if detector is None else apply_tail(out, detector, a, resolution)


class LinearModel:
    """Spectra linear in the depth profile of one element, stopping held at the base composition.

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
        there: ``spectra(base)`` equals the full simulation of that profile.

    Attributes
    ----------
    depth_nm : ndarray
        The nodes.
    elements : list of str
        Elements with spectra.
    fraction : float
        Nominal atomic fraction f of the profiled element in its layer (a ratio v means f v).
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
        f = float(lay.fractions[element])
        base = np.ones(nodes.size) if base is None else np.asarray(base, dtype=float)
        if base.shape != nodes.shape or not np.all(np.isfinite(base)) or np.any(base <= 0) \
                or np.any(base * f > 1.0):
            raise RecoilsimError("base", base, f"{nodes.size} finite ratios in (0, {1.0 / f:.4g}], one per node")
        self.exp = exp
        self.element = element
        self.layer = int(layer)
        self.depth_nm = nodes
        self.base = base
        self.fraction = f
        profs = [p for p in lay.profiles if p.element != element]
        # the profile is always carried (also at base 1): its blocks (profile_step_nm) keep the
        # bricks finer than the nodes; without it, sigma-wide bricks (max_sigma_fraction) can span
        # several nodes where the spread is wide (multiple scattering: ~20 channels below the Cu
        # cap of the reference case) and leave nodes without a brick (zero columns)
        from ..model.sample import Profile
        profs.append(Profile(element, nodes, base, kind="ratio"))
        layers = list(exp.sample.layers)
        layers[layer] = lay.replaced(profiles=profs)
        nominal = dataclasses.replace(exp, sample=dataclasses.replace(exp.sample, layers=layers))
        inputs = prepare(nominal)
        bricks = run(inputs)
        n, ta, tb, Y, sig_t, x_mid = bricks.n, bricks.ta, bricks.tb, bricks.Y, bricks.sig_t, bricks.x_mid
        self.n_channels = exp.detector.n_channels
        self.a_ns = exp.detector.calibration_a_ns
        self.b_ns = exp.detector.calibration_b_ns
        self.resolution = exp.options.resolution
        self.detector = exp.detector  # its timing tail (linear: applied to every column)
        species = inputs.species
        # the kernel's species and bricks at this linearisation point (0.2 MB for the reference
        # case): the fit reads its depth resolution from them (fitting.depth_resolution)
        self.species, self.bricks, self.nominal_experiment = species, bricks, nominal
        self.elements = []
        for sp in species:
            if sp.kind == 0 and sp.element not in self.elements:
                self.elements.append(sp.element)
        # bricks of the profiled layer: the mean of every hat over each brick's depths (a brick may span
        # several nodes: its yield, uniform in depth, goes to each node by the hat's share of the brick)
        top = exp.sample.boundaries_1e15()[layer]
        bottom = exp.sample.boundaries_1e15()[layer + 1]
        xm = x_mid[:, :n]
        inside = (xm >= top) & (xm < bottom) & (Y[:, :n] > 0)
        edges = (brick_edge_depths(x_mid, n) - top) / lay.nm_to_1e15
        hats = _hat_weights(edges[:-1], edges[1:], nodes)  # (n, n_nodes)
        b_mean = hats @ base  # the base profile's mean over each brick
        self._rows = {}
        self._sign = {}
        for e in self.elements:
            sps = [i for i, sp in enumerate(species) if sp.kind == 0 and sp.element == e]
            rows_c = [], [], [], []
            pieces = []  # (node, ta, tb, y, sig_t) per species and hat side, in that order
            dep = False
            for s in sps:
                y = Y[s, :n]
                ins = inside[s]
                if e == element:
                    per_unit = np.where(ins, y / b_mean, 0.0)  # yield per unit ratio
                else:
                    per_unit = np.where(ins, y / np.maximum(1.0 - f * b_mean, 1e-12), 0.0)  # per unit (1 - f v)
                y_c = np.where(ins, 0.0, y)
                keep = y_c > 0
                for q, arr in enumerate((ta[s, :n], tb[s, :n], y_c, sig_t[s, :n])):
                    rows_c[q].append(arr[keep])
                sel = np.nonzero(per_unit > 0)[0]
                if sel.size:
                    dep = True
                yy = per_unit[sel, None] * hats[sel]
                i, k = np.nonzero(yy > 0)  # (brick by brick, each brick's nodes in order)
                pieces.append((k, ta[s, sel][i], tb[s, sel][i], yy[i, k], sig_t[s, sel][i]))
            rows = [tuple(np.concatenate(q) for q in rows_c)]
            if dep:
                rows += _node_rows(pieces, nodes.size)
            self._rows[e] = _Rows(rows)
            self._sign[e] = (1.0 if e == element else -f) if dep else 0.0
        self._cache = {}

    def element_columns(self, a_ns: float | None = None, b_ns: float | None = None, windows=None) -> dict:
        """{element: (A, c)}: counts = c + A @ values for calibration t = a*ch + b.

        A has shape (n_channels, n_nodes), or is None for an element that does not depend on
        the profile (not in its layer); both at the experiment's Q * Omega. ``windows``
        ({element: (lo, hi)}, inclusive channels) limits the work to those elements and
        channels: values outside a window are then incomplete.

        Rows: the bricks outside the layer (c) and one row per node (hat weights). The hats sum
        to 1 at every depth, so an other element's unit-(1 - f v) spectrum is the sum of its
        node rows: c_e = outside + sum_k row_k and A_e = -f row_k.
        """
        a = self.a_ns if a_ns is None else float(a_ns)
        b = self.b_ns if b_ns is None else float(b_ns)
        key = (a, b, None if windows is None else tuple(sorted((e, tuple(w)) for e, w in windows.items())))
        if key in self._cache:
            return self._cache[key]
        out = {}
        for e, rows in self._rows.items():
            if windows is not None and e not in windows:
                continue
            out[e] = self._assemble(e, rows.spread(a, b, self.n_channels, self.resolution,
                                                   None if windows is None else windows[e], self.detector))
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = out
        return out

    def _assemble(self, e: str, s: np.ndarray) -> tuple:
        """(A or None, c) of element e from its spread rows s (outside bricks, then one per node)."""
        if self._sign[e] == 0.0:
            return None, s[0]
        if e == self.element:
            return np.ascontiguousarray(s[1:].T), s[0]
        return np.ascontiguousarray(self._sign[e] * s[1:].T), s[0] + s[1:].sum(axis=0)

    def columns(self, a_ns: float | None = None, b_ns: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(A, c): counts of the profiled element = c + A @ values for calibration t = a*ch + b.

        A has shape (n_channels, n_nodes); both at the experiment's Q * Omega.
        """
        return self.element_columns(a_ns, b_ns)[self.element]

    def spectrum(self, values, a_ns: float | None = None, b_ns: float | None = None, scale: float = 1.0) -> np.ndarray:
        """Counts of the element for profile values (one per node); ``scale`` multiplies Q*Omega."""
        return self.spectra(values, a_ns, b_ns, scale)[self.element]

    def spectra(self, values=None, a_ns: float | None = None, b_ns: float | None = None,
                scale: float = 1.0) -> dict[str, np.ndarray]:
        """Counts of every element for profile values (default: the base profile)."""
        v = self.base if values is None else np.asarray(values, dtype=float)
        if v.shape != self.depth_nm.shape:
            raise RecoilsimError("values", v.shape, f"one value per depth node ({self.depth_nm.size})")
        return {e: scale * (c if A is None else c + A @ v)
                for e, (A, c) in self.element_columns(a_ns, b_ns).items()}

    def other(self, a_ns: float | None = None, b_ns: float | None = None, values=None) -> dict[str, np.ndarray]:
        """Spectra of the other elements for profile values (default: the base profile); cached
        per calibration with the columns."""
        out = self.spectra(values, a_ns, b_ns)
        out.pop(self.element)
        return out


class ModelSet:
    """Several LinearModels of one detector (a fit's models at value +- step of its slow
    parameters) whose element columns are spread together in fit windows.

    :meth:`element_columns` gives, per model, what ``model.element_columns(a, b, windows)``
    gives, with one kernel call per block of rows of similar length over all models and
    elements (instead of one per model, element and block): every row is spread as the model
    spreads it (the kernel spreads each row on its own), so the numbers are the same.

    Parameters
    ----------
    models : list of LinearModel (same channels and resolution switch)
    windows : {element: (lo, hi)} inclusive channels; elements outside it are left out.
    """

    def __init__(self, models: list[LinearModel], windows: dict):
        if len({(m.n_channels, m.resolution) for m in models}) != 1:
            raise RecoilsimError("models", "different channels or resolution", "LinearModels of one detector setting")
        self.windows = dict(windows)
        self.order = list(models)
        self.models = list({id(m): m for m in models}.values())  # a model listed twice is spread once
        rows, self.parts, keys = [], [], []
        for m in self.models:
            part = []
            tail = (m.detector.timing_tail_ns, m.detector.timing_tail_fraction) if has_tail(m.detector, m.resolution) \
                else None
            for e, r in m._rows.items():
                if e in self.windows:
                    part.append((e, len(rows), len(rows) + r.n))
                    rows += r.rows
                    keys += [(e, tail) + tuple(q.tobytes() for q in row) for row in r.rows]
            self.parts.append(part)
        self.n = len(rows)
        # rows equal in bricks, window and tail (an element the slow parameter does not reach)
        # are spread once: the kernel spreads each row on its own, so the copies are the same
        first = {}
        self.src = np.array([first.setdefault(k, i) for i, k in enumerate(keys)], dtype=np.int64)
        self.rep = np.array(sorted(set(first.values())), dtype=np.int64)  # the rows spread
        self.src = np.searchsorted(self.rep, self.src)  # row -> its spread row
        self.blocks = _blocks([rows[i] for i in self.rep]) if rows else []
        self._cache = {}

    def cached(self, a_ns: float, b_ns: float) -> list[dict] | None:
        """What :meth:`element_columns` gives at this calibration if it has already spread it, else None."""
        return self._cache.get((float(a_ns), float(b_ns)))

    def element_columns(self, a_ns: float, b_ns: float) -> list[dict]:
        """Per model {element: (A or None, c)} at calibration t = a_ns * channel + b_ns, on the
        channels of the element's window only: row i is channel ``windows[element][0] + i``."""
        key = (float(a_ns), float(b_ns))
        if key in self._cache:
            return self._cache[key]
        a, b = key
        lo, hi = np.empty(self.n), np.empty(self.n)
        for m, part in zip(self.models, self.parts):
            for e, i0, i1 in part:
                lo[i0:i1], hi[i0:i1] = _tail_window(self.windows[e], m.detector, a, m.resolution)
        m0 = self.models[0]
        s = _spread_blocks(self.blocks, self.rep.size, a, b, m0.n_channels, m0.resolution, lo[self.rep], hi[self.rep])
        if self.rep.size < self.n:
            s = s[self.src]
        own = {}
        for m, part in zip(self.models, self.parts):
            own[id(m)] = {e: m._assemble(e, apply_tail(s[i0:i1], m.detector, a, m.resolution)[
                :, self.windows[e][0]:self.windows[e][1] + 1]) for e, i0, i1 in part}
        out = [own[id(m)] for m in self.order]
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = out
        return out
