"""The parameter vector of one fit: keys, table labels, start values, bounds, free flags, index lists.

Every entry has a key ``(quantity, measurement)``: ``quantity`` a key of
:mod:`recoilsim.fitting.registry` (slow parameters, ``("calibration_a",)``, ``("calibration_b",)``)
or one of the fit's own quantities, ``("profile", k)`` (the profiled element's ratio at depth
node k), ``("scale",)`` (multiplier of Q*Omega, applied to the fluence) and
``("shape", name)`` (a :class:`~recoilsim.fitting.parameters.ProfileShape` parameter),
``("background", element)`` (the background level of an element window, counts per channel; with
a linear background its level at the window's first channel) and ``("background_end", element)``
(a linear background's level at the window's last channel);
``measurement`` is the measurement index, or None for a value shared by all. The labels
(``Li[0][5nm]``, ``thickness[0]``, ``a_ns`` ...) are for tables only; code finds an entry by its
key (:meth:`ParameterVector.index`).
"""

from __future__ import annotations

import numpy as np

from ..errors import RecoilsimError
from .parameters import FitParameters, ProfileShape
from .registry import get_value

__all__ = ["ParameterVector"]


class ParameterVector:
    """Keys, labels, values, bounds and free flags of every fit parameter, and where each group sits.

    Attributes
    ----------
    keys, names : list -- per entry its key ``(quantity, measurement)`` and table label.
    p, lo, hi, free : ndarray -- start values, bounds, free flags.
    i_prof : list of index arrays, per measurement, of its profile values.
    i_a, i_b, i_s : per measurement, the index of its calibration a, b and scale.
    i_slow : indices of the slow parameters (``par.slow`` order); slow_h their FD steps.
    i_shape : per measurement, index arrays of its shape parameters (empty without a shape).
    i_bg : per measurement {element: (index of the level, index of the end level or None)} (empty
        without a background).
    """

    def __init__(self, exp0, par: FitParameters, n_meas: int, nodes: np.ndarray, elements=None):
        self.par = par
        self.nodes = nodes
        self.keys, self.names = [], []
        vals, lo, hi, free = [], [], [], []

        def add(key, name, v, bounds, fixed):
            self.keys.append(key)
            self.names.append(name)
            vals.append(float(v)); lo.append(float(bounds[0])); hi.append(float(bounds[1])); free.append(not fixed)
            return len(self.keys) - 1

        self.i_prof = []
        for m in range(n_meas):
            self.i_prof.append(np.array([add((("profile", k), m), f"{par.element}[{m}][{z:.4g}nm]", par.profile_value,
                                              par.profile_bounds, par.profile_fixed) for k, z in enumerate(nodes)],
                                        dtype=int))
        det = exp0.detector
        self.i_a, self.i_b, self.i_s = [], [], []
        for q, label, p, default, lst in ((("calibration_a",), "a_ns", par.a, det.calibration_a_ns, self.i_a),
                                          (("calibration_b",), "b_ns", par.b, det.calibration_b_ns, self.i_b),
                                          (("scale",), "scale", par.scale, 1.0, self.i_s)):
            v = default if p.value is None else p.value
            if p.tie == "shared":
                lst.extend([add((q, None), label, v, p.bounds, p.fixed)] * n_meas)
            else:
                lst.extend(add((q, m), f"{label}[{m}]", v, p.bounds, p.fixed) for m in range(n_meas))
        self.i_slow, self.slow_h = [], []
        for sp in par.slow:
            v = get_value(exp0, sp.key) if sp.value is None else sp.value
            self.i_slow.append(add((sp.key, None), sp.name, v, sp.bounds, sp.fixed))
            self.slow_h.append(sp.step or 0.02 * abs(v))
        self.i_shape = []
        if par.shape is not None:
            for m in range(n_meas):
                self.i_shape.append(np.array([add((("shape", nm), m), f"{par.shape.kind}.{nm}[{m}]", q.value, q.bounds,
                                                  q.fixed)
                                              for nm, q in ((nm, getattr(par.shape, nm)) for nm in ProfileShape.NAMES)],
                                             dtype=int))
        self.i_bg = []
        for m in range(n_meas if par.background else 0):
            ws = {}
            for e in elements[m]:
                il = add((("background", e), m), f"bg[{e}][{m}]", 0.0, (0.0, np.inf), False)
                il2 = add((("background_end", e), m), f"bg_end[{e}][{m}]", 0.0, (0.0, np.inf), False) \
                    if par.background == "linear" else None
                ws[e] = (il, il2)
            self.i_bg.append(ws)
        self.p = np.array(vals)
        self.lo = np.array(lo)
        self.hi = np.array(hi)
        self.free = np.array(free)
        for ip in (self.i_prof if self.i_shape else []):
            self.free[ip] = False  # derived from the shape parameters
        self.p = self.apply_shape(self.p)

    @property
    def size(self) -> int:
        return self.p.size

    def index(self, quantity: tuple, measurement: int | None = None) -> int:
        """Position of the entry ``(quantity, measurement)`` (a shared entry also answers for any measurement)."""
        for key in ((quantity, measurement), (quantity, None)):
            if key in self.keys:
                return self.keys.index(key)
        raise RecoilsimError("parameter", (quantity, measurement), f"a key of this fit ({sorted(set(k[0] for k in self.keys))})")

    def apply_shape(self, p):
        """p with the profile values computed from the shape parameters (p itself without one)."""
        if not self.i_shape:
            return p
        q = p.copy()
        for ip, ish in zip(self.i_prof, self.i_shape):
            q[ip] = self.par.shape.values_and_grad(self.nodes, p[ish])[0]
        return q

    def shape_grad(self, p, m: int):
        """dv/d(shape parameters) of measurement m at p, (n_nodes, 4)."""
        return self.par.shape.values_and_grad(self.nodes, p[self.i_shape[m]])[1]

    def shape_map(self, p):
        """T (n_full, n_full): dp/dp with the profile rows replaced by dv/d(shape parameters)."""
        T = np.eye(p.size)
        for m, (ip, ish) in enumerate(zip(self.i_prof, self.i_shape)):
            T[np.ix_(ip, ip)] = 0.0
            T[np.ix_(ip, ish)] = self.shape_grad(p, m)
        return T

    def background_mask(self) -> np.ndarray:
        """True at every background level."""
        mask = np.zeros(self.p.size, bool)
        for ws in self.i_bg:
            for il, isl in ws.values():
                mask[[i for i in (il, isl) if i is not None]] = True
        return mask

    def profile_mask(self) -> np.ndarray:
        """True at every profile value."""
        mask = np.zeros(self.p.size, bool)
        for ip in self.i_prof:
            mask[ip] = True
        return mask
