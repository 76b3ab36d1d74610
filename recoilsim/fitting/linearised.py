"""The linearised model of a fit: model groups, their LinearModels, the model in the windows and its Jacobian.

Built on :class:`recoilsim.forward.linear_model.LinearModel`: for a fixed stopping medium the
counts of every element are linear in the profile values v (ratios on the depth nodes):
``s * (c_e + A_e v)`` (s the Q*Omega scale); the other elements of the profiled layer fall as
(1 - f v) by the 'ratio' rule. A TOF calibration change (a, b) only re-spreads stored bricks.
Slow parameters (thickness, stopping factor, composition: :mod:`recoilsim.fitting.registry` keys)
change the stopping medium: the model is quadratic in each through full re-simulations at value
+- step (central difference and curvature).

A background (``FitParameters.background``) adds to each element window a constant level, or
with 'linear' the straight line in time between a level at its first channel and one at its last,
``c_first (1 - u) + c_last u`` (u from 0 to 1 across the window; both levels >= 0, so the
background is nowhere negative): linear in its parameters, beside the scale.

Measurements that share the experiment and the linearisation point (base profile) form a
*model group* and share LinearModels. The profile columns may carry the stopping correction of
:mod:`recoilsim.fitting.stopping_correction` (``corr``).
"""

from __future__ import annotations

import numpy as np

from ..forward.linear_model import LinearModel, ModelSet
from .registry import ExperimentEdit, set_value
from .vector import ParameterVector

__all__ = ["LinearisedModel", "model_groups"]


def model_groups(exps, bases, slow) -> tuple[list, list, list]:
    """(group of each measurement, experiment and base profile of each group): measurements with
    the same experiment object and base profile share a group, unless a per-measurement slow
    parameter acts on them."""
    group, group_exps, group_base = [], [], []
    own = [any(sp.measurement is not None and sp.acts_on(mi) for sp in slow) for mi in range(len(exps))]
    for mi, (e, bv) in enumerate(zip(exps, bases)):
        for g, (ge, gb) in enumerate(zip(group_exps, group_base)):
            if not own[mi] and not own[group.index(g)] and ge is e and np.array_equal(gb, bv):
                group.append(g)
                break
        else:
            group_exps.append(e)
            group_base.append(bv)
            group.append(len(group_exps) - 1)
    return group, group_exps, group_base


def _union_windows(win, group, g) -> dict:
    """{element: (first, last)} channels of every window of the measurements in group g."""
    wins = {}
    for mi, ws in enumerate(win):
        if group[mi] == g:
            for e, w in ws.items():
                if w.size:
                    lo, hi = wins.get(e, (w[0], w[-1]))
                    wins[e] = (min(lo, w[0]), max(hi, w[-1]))
    return wins


def _data_rows(win):
    """(measurement, element, row slice) of every window in the order of the data vector."""
    row = 0
    for mi, ws in enumerate(win):
        for e, w in ws.items():
            yield mi, e, slice(row, row + w.size)
            row += w.size


def _local_windows(win_slices, group, g, union) -> dict:
    """{(measurement, element): its window counted from the first channel of the union window}
    for the measurements of group g (the group's columns start there: ModelSet)."""
    out = {}
    for mi, ws in enumerate(win_slices):
        if group[mi] == g:
            for e, w in ws.items():
                first = union.get(e, (0, 0))[0]
                out[(mi, e)] = slice(w.start - first, w.stop - first) if isinstance(w, slice) else w - first
    return out


def _zeroed(a: np.ndarray) -> np.ndarray:
    """``a`` set to zero in place (a reused buffer) and returned."""
    a.fill(0.0)
    return a


def _as_slice(w: np.ndarray):
    """A window of consecutive channels as a slice (the same values as the index array, viewed
    instead of copied); any other window as it is."""
    return slice(int(w[0]), int(w[-1]) + 1) if w.size and np.all(np.diff(w) == 1) else w


def _window_model(parts, e, w, v, xs, slow_h, corr, base):
    """(u, du/d(slow values), du/d(profile) or None) of element e in its window w (channels)
    from the models' columns ``parts`` at profile v and slow offsets xs (in steps), with the
    stopping correction ``corr`` of the profile columns about ``base`` (:meth:`LinearisedModel.evaluate`)."""
    A0, c0 = parts[0][e]
    u0 = c0[w] if A0 is None else c0[w] + A0[w] @ v
    u, du, Aeff = u0, [], None if A0 is None else A0[w]
    if corr is not None:
        u = u0 + corr @ (v - base)
        Aeff = corr if Aeff is None else Aeff + corr
    pm = [parts[1 + j][e] for j in range(2 * len(xs))]
    kinds = {M_ is None for M_, _ in pm} | {A0 is None}
    if xs and (kinds == {True} or (kinds == {False} and v.size == 1)):
        return _slow_terms(pm, w, v, xs, slow_h, u0, u, Aeff, A0)
    for k, x in enumerate(xs):
        (Ap, cp), (Am, cm) = pm[2 * k], pm[2 * k + 1]
        up = cp[w] if Ap is None else cp[w] + Ap[w] @ v
        um = cm[w] if Am is None else cm[w] + Am[w] @ v
        d1, d2 = 0.5 * (up - um), 0.5 * (up + um) - u0
        u = u + x * d1 + x * x * d2
        du.append((d1 + 2.0 * x * d2) / slow_h[k])
        if Aeff is not None and not (Ap is None and Am is None and A0 is None):
            ap, am, a0 = (0.0 if M_ is None else M_[w] for M_ in (Ap, Am, A0))
            Aeff = Aeff + x * 0.5 * (ap - am) + x * x * (0.5 * (ap + am) - a0)
    return u, du, Aeff


def _slow_terms(pm, w, v, xs, slow_h, u0, u, Aeff, A0):
    """The slow parameters' terms of :func:`_window_model` for all parameters at once, when no
    model depends on the profile or every one does through a single node (A @ v is then one
    product per channel): the same operations on stacked rows, summed in the same order, so
    the same numbers as the loop."""
    x = np.asarray(xs, dtype=float)[:, None]
    up = np.stack([c[w] for _, c in pm[0::2]])
    um = np.stack([c[w] for _, c in pm[1::2]])
    if A0 is not None:
        Ap = np.stack([A[w][:, 0] for A, _ in pm[0::2]])
        Am = np.stack([A[w][:, 0] for A, _ in pm[1::2]])
        up, um = up + Ap * v[0], um + Am * v[0]
    d1, d2 = 0.5 * (up - um), 0.5 * (up + um) - u0
    t1, t2 = x * d1, x * x * d2
    for k in range(x.shape[0]):
        u = u + t1[k] + t2[k]
    du = list((d1 + 2.0 * x * d2) / np.asarray(slow_h, dtype=float)[:, None])
    if A0 is not None and Aeff is not None:
        e1, e2 = x * 0.5 * (Ap - Am), x * x * (0.5 * (Ap + Am) - A0[w][:, 0])
        for k in range(x.shape[0]):
            Aeff = Aeff + e1[k][:, None] + e2[k][:, None]
    return u, du, Aeff


class LinearisedModel:
    """LinearModels per model group (at the slow values and at value +- step of each) and the
    model and Jacobian they give in the fit windows.

    Attributes
    ----------
    base : per measurement, the profile its models are linearised at.
    corr : None or per measurement {element: stopping correction of the profile columns}.
    slow0 : the slow parameters' values at the linearisation point.
    win : per measurement {element: channel indices} (:meth:`set_windows`, once chosen).
    bg_u : per measurement {element: u, 0 at the window's first channel and 1 at its last}.
    """

    def __init__(self, exps, par, nodes: np.ndarray, vec: ParameterVector):
        self.exps = exps
        self.par = par
        self.nodes = nodes
        self.vec = vec
        self.version = 0  # bumped whenever the model changes (evaluate remembers its last answer)
        self._memo = (None, None)
        self.base = [np.ones(nodes.size) for _ in exps]
        self.corr = None
        self.win = None
        self.slow0 = []
        self.regroup()

    @property
    def corr(self):  # None or per measurement {element: stopping correction of the profile columns}
        return self._corr

    @corr.setter
    def corr(self, value):
        self._corr = value
        self.version += 1

    def set_windows(self, win: list[dict]):
        """Store the windows and the position u (0..1) of each channel across its window (the
        linear background's regressor; time is linear in the channel)."""
        self.win = win
        self.win_slices = [{e: _as_slice(w) for e, w in ws.items()} for ws in win]
        self.sets = {}
        self.unions = {}  # group -> (union windows, {(measurement, element): window in the group's columns})
        self.version += 1
        self.bg_u = [{e: (w - w[0]) / max(w[-1] - w[0], 1) if w.size else w * 0.0 for e, w in ws.items()} for ws in win]

    def background(self, p, mi: int, e: str):
        """Background counts in measurement mi's window of element e at p (0.0 without a background)."""
        if not self.vec.i_bg:
            return 0.0
        il, il2 = self.vec.i_bg[mi][e]
        return p[il] if il2 is None else p[il] * (1.0 - self.bg_u[mi][e]) + p[il2] * self.bg_u[mi][e]

    def regroup(self):
        """Measurements with the same experiment and the same base profile share LinearModels
        (not those with a per-measurement slow parameter)."""
        self.group, self.group_exps, self.group_base = model_groups(self.exps, self.base, self.par.slow)

    def build(self, p):
        """LinearModels at the slow values of p and the bases (and per slow parameter at +- step)."""
        par, vec = self.par, self.vec
        self.regroup()
        self.slow0 = [p[i] for i in vec.i_slow]
        self.models = []
        self.sets = {}
        self.unions = {}
        self.version += 1  # (group, number of models): ModelSet, made on first use (the windows are set by then)
        for g, e in enumerate(self.group_exps):
            first = self.group.index(g)  # a measurement of the group (per-measurement slow parameters: its only one)
            edit = ExperimentEdit(e)
            for sp, v in zip(par.slow, self.slow0):
                if sp.acts_on(first):
                    edit.set(sp.key, v)
            eb = edit.build()
            ms = [LinearModel(eb, par.element, par.layer, self.nodes, base=self.group_base[g])]
            for k, sp in enumerate(par.slow):
                if not sp.acts_on(first):  # another measurement's parameter: no effect here
                    ms += [ms[0], ms[0]]
                    continue
                for sign in (1.0, -1.0):
                    ek = set_value(eb, sp.key, self.slow0[k] + sign * vec.slow_h[k])
                    ms.append(LinearModel(ek, par.element, par.layer, self.nodes, base=self.group_base[g]))
            self.models.append(ms)

    def nominal(self, mi: int) -> LinearModel:
        """The LinearModel of measurement mi at the linearisation point."""
        return self.models[self.group[mi]][0]

    def base_columns(self, mi: int, a, b) -> dict:
        """{element: (A or None, c)} of measurement mi's nominal LinearModel at calibration a, b."""
        return self.nominal(mi).element_columns(a, b)

    def move_bases(self, new: list, tol: float) -> bool:
        """Move every measurement's base profile to ``new``; False (and no move) when none moves by more than tol."""
        if max(float(np.max(np.abs(n - b))) for n, b in zip(new, self.base)) <= tol:
            return False
        self.base = new
        self.version += 1
        return True

    def _parts(self, g, a, b, n=None):
        """[{element: (A or None, c)}] for the base model and every slow perturbation (the first
        ``n`` models; only the elements and channels of the group's windows are computed, from
        the first channel of the element's window in ``self.unions[g][0]`` on; the models spread
        together: :class:`~recoilsim.forward.linear_model.ModelSet`)."""
        done = self.sets[(g, None)].cached(a, b) if (g, None) in self.sets else None
        if done is not None:  # every model already spread at this calibration
            return done[:n]
        if g not in self.unions:
            union = _union_windows(self.win, self.group, g)
            self.unions[g] = union, _local_windows(self.win_slices, self.group, g, union)
        if (g, n) not in self.sets:
            self.sets[(g, n)] = ModelSet(self.models[g][:n], self.unions[g][0])
        return self.sets[(g, n)].element_columns(a, b)

    def evaluate(self, p, slow=True):
        """Model in the windows: list per measurement of {element: (m, u, du_ds, Aeff)}.

        m = s u + background (s: Q*Omega scale); u is quadratic in every slow parameter through the models at
        its value +- step: u = u0 + sum_k x_k d1_k + x_k^2 d2_k, x_k = (value - value0) / step;
        du_ds: du/d(value_k); Aeff: du/d(profile). ``slow=False``: the base models only (slow
        parameters at their linearisation point).
        """
        key = (p.tobytes(), slow, self.version)
        if self._memo[0] == key:  # the solver asks for the Jacobian where it has just evaluated the model
            return self._memo[1]
        vec = self.vec
        res = []
        cache = {}
        p = vec.apply_shape(p)
        xs = [(p[i] - s0) / h for i, s0, h in zip(vec.i_slow, self.slow0, vec.slow_h)] if slow else []
        for mi in range(len(self.exps)):
            g = self.group[mi]
            a, b, s = p[vec.i_a[mi]], p[vec.i_b[mi]], p[vec.i_s[mi]]
            parts = cache[(g, a, b, slow)] = cache.get((g, a, b, slow)) or self._parts(g, a, b, None if slow else 1)
            v = p[vec.i_prof[mi]]
            corr = self.corr[mi] if self.corr is not None else None
            out = {}
            for e in self.win_slices[mi]:
                u, du, Aeff = _window_model(parts, e, self.unions[g][1][(mi, e)], v, xs, vec.slow_h,
                                            None if corr is None else corr[e], self.base[mi])
                out[e] = (s * u + self.background(p, mi, e), u, du, Aeff)
            res.append(out)
        self._memo = (key, res)
        return res

    def model(self, p) -> list[dict]:
        """Per measurement {element: model counts in its window}."""
        return [{e: t[0] for e, t in o.items()} for o in self.evaluate(p)]

    def model_vec(self, p) -> np.ndarray:
        """The model in the windows as one vector (measurements, then elements in window order)."""
        r = self.evaluate(p)
        return np.concatenate([r[mi][e][0] for mi in range(len(self.exps)) for e in self.win[mi]])

    def jacobian(self, p, n_data: int, out=None):
        """dm/dp (n_data, n_full) and the model m (n_data,); with a shape, its parameters'
        columns by the chain rule through the (derived) profile values. ``out``: an
        (n_data, n_full) array to write J into (overwritten; no fresh memory per call)."""
        vec = self.vec
        p = vec.apply_shape(p)
        J, mvec = self._jac_nodes(p, n_data, out)
        for m, (ip, ish) in enumerate(zip(vec.i_prof, vec.i_shape)):
            J[:, ish] += J[:, ip] @ vec.shape_grad(p, m)
        return J, mvec

    def _jac_nodes(self, p, n_data, out=None):
        vec = self.vec
        ev = self.evaluate(p)
        J = np.zeros((n_data, p.size)) if out is None else _zeroed(out)
        mvec = np.zeros(n_data)
        prof_cols = [_as_slice(ip) for ip in vec.i_prof]  # consecutive: a view, not a gather
        for mi, e, sl in _data_rows(self.win):
            s = p[vec.i_s[mi]]
            mm, u, du, Aeff = ev[mi][e]
            mvec[sl] = mm
            J[sl, vec.i_s[mi]] += u
            if Aeff is not None:
                J[sl, prof_cols[mi]] += s * Aeff
            for k, dk in enumerate(du):
                J[sl, vec.i_slow[k]] += s * dk
            if vec.i_bg:
                il, il2 = vec.i_bg[mi][e]
                u = self.bg_u[mi][e]
                J[sl, il] += 1.0 if il2 is None else 1.0 - u
                if il2 is not None:
                    J[sl, il2] += u
        # calibration by forward differences (re-spread only), on the base models: the slow
        # parameters' terms vanish at their linearisation point, where the fit ends
        ev0 = self.evaluate(p, slow=False) if vec.i_slow else ev
        for idx_list in (vec.i_a, vec.i_b):
            for j in sorted(set(idx_list)):
                if not vec.free[j]:
                    continue
                h = 1e-4 * abs(p[j]) if idx_list is vec.i_a else 2e-3 * abs(p[vec.i_a[0]])
                q = p.copy()
                q[j] += h
                ev2 = self.evaluate(q, slow=False)
                for mi, e, sl in _data_rows(self.win):
                    J[sl, j] += (ev2[mi][e][0] - ev0[mi][e][0]) / h
        return J, mvec
