"""One fit's problem: measured inputs, parameter vector, linearised model, Jacobian, least-squares solve.

:class:`_Problem` turns the experiments, the measured spectra (:func:`_as_spectra`) and a
:class:`~recoilsim.fitting.parameters.FitParameters` into one parameter vector, a model of the counts
in the fit windows with its Jacobian, and a bounded least-squares solve;
:func:`recoilsim.fitting.driver.fit` drives it (outer loop, regularisation, covariance).
:func:`fitted_experiment` is the experiment at a parameter vector, for full simulations.

Model
-----
Built on :class:`recoilsim.forward.linear_model.LinearModel`: for a fixed stopping medium the counts of every
element are linear in the profile values v (ratios on the depth nodes): ``s * (c_e + A_e v)``
(s the Q*Omega scale); the other elements of the profiled layer fall as (1 - f v) by the
'ratio' rule. A TOF calibration change (a, b) only re-spreads stored bricks. Slow parameters
(layer thickness, per-layer stopping factor, composition) change the stopping medium: the model
is quadratic in each through full re-simulations at value +- step (central difference and
curvature), each solve keeps them within 10 steps of that point, and the models are re-built at
the solution (outer iterations) until no slow parameter moves by more than 5 % of its step or
20 % of its standard error.
With ``relinearize`` (default) every measurement's models are also re-built at its fitted
profile (``LinearModel(base=...)``: the model equals the full simulation there) until no
profile value moves by more than ``relinearize_tol``, and the profile columns get the change of
the stopping that the profile itself causes (``stopping_jacobian``: forward differences of full
simulations, one per node and measurement; a Li excess lowers the stopping, + 18 % on the Li
column and - 40 % on P and O at v = 1.25), so that the fit ends at a stationary point of the
full model and the covariance uses its Jacobian (tests/test_fit.py compares both with finite
differences of the full simulation). The remaining difference to
:func:`recoilsim.forward.simulate.simulate` is reported (``attrs['full_model_max_rel_diff']``).

Likelihood
----------
Poisson likelihood, minimised as the deviance
``D = 2 sum(m - d + d ln(d/m))`` (Baker & Cousins, NIM 221 (1984) 437) with
:func:`scipy.optimize.least_squares` on the signed deviance residuals
``r = sign(d - m) sqrt(2 (m - d + d ln(d/m)))`` (sum r^2 = D), analytic Jacobian for the profile
values and the scales, forward differences (re-spread only) for a and b.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping

import numpy as np
import xarray as xr
from scipy import optimize

from ..forward.linear_model import LinearModel
from ..errors import RecoilsimError
from ..model.experiment import Experiment
from .parameters import FitParameters, ProfileShape, SlowParameter

__all__ = ["deviance", "fitted_experiment"]

TINY = 1e-9  # counts: floor of the model inside a window (d ln(d/m) stays finite)


def deviance(d, m) -> float:
    """Poisson deviance 2 sum(m - d + d ln(d/m)) (terms with d = 0 give 2m)."""
    d = np.asarray(d, float)
    m = np.maximum(np.asarray(m, float), TINY)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(d > 0, d * np.log(d / m), 0.0)
    return float(2.0 * np.sum(m - d + t))


def _dev_res(d, m):
    """Signed deviance residuals and their derivative dr/dm."""
    m = np.maximum(m, TINY)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = m - d + np.where(d > 0, d * np.log(d / m), 0.0)
    f = np.maximum(f, 0.0)
    r = np.sign(d - m) * np.sqrt(2.0 * f)
    small = f < 1e-10 * np.maximum(m, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        dr = np.where(small, -1.0 / np.sqrt(m), -np.abs(m - d) / (m * np.sqrt(2.0 * np.maximum(f, 1e-300))))
    return r, dr


# ----------------------------------------------------------------------------- inputs

def _as_spectra(meas, elements: list[str], n_ch: int, i: int) -> dict[str, np.ndarray]:
    """One measurement -> {element: counts (n_ch,)}."""
    out = {}
    if isinstance(meas, xr.Dataset):
        if "counts" not in meas:
            raise RecoilsimError(f"measured[{i}]", "Dataset", "a Dataset with a 'counts' variable")
        meas = meas["counts"]
    if isinstance(meas, xr.DataArray):
        if "element" in meas.dims:
            for e in meas["element"].values:
                out[str(e)] = np.asarray(meas.sel(element=e).values, float)
        else:
            e = meas.attrs.get("element") or (meas.coords["element"].item() if "element" in meas.coords else None) \
                or meas.name
            if e is None:
                raise RecoilsimError(f"measured[{i}]", "DataArray without element",
                                     "an 'element' dim, coordinate, attr or name")
            out[str(e)] = np.asarray(meas.values, float)
    elif isinstance(meas, Mapping):
        out = {str(k): np.asarray(v, float) for k, v in meas.items()}
    else:
        raise RecoilsimError(f"measured[{i}]", type(meas).__name__,
                             "a dict element -> counts, an xarray DataArray or a Dataset with 'counts'")
    for e, v in out.items():
        if e not in elements:
            raise RecoilsimError(f"measured[{i}][{e}]", e, f"an element with a simulated spectrum ({elements})")
        if v.shape != (n_ch,):
            raise RecoilsimError(f"measured[{i}][{e}]", v.shape, f"{n_ch} channels")
        if not np.all(np.isfinite(v)) or np.any(v < 0):
            raise RecoilsimError(f"measured[{i}][{e}]", "negative or non-finite counts", "counts >= 0")
    return out


def _layer_index(exp: Experiment, layer) -> int:
    names = [l.name for l in exp.sample.layers]
    if isinstance(layer, str):
        if layer not in names:
            raise RecoilsimError("layer", layer, f"one of {names}")
        return names.index(layer)
    if not 0 <= int(layer) < len(names):
        raise RecoilsimError("layer", layer, f"0..{len(names) - 1}")
    return int(layer)


def _get_slow(exp: Experiment, sp: SlowParameter) -> float:
    lay = exp.sample.layers[_layer_index(exp, sp.layer)]
    if sp.kind == "thickness":
        if lay.thickness_nm is None:
            raise RecoilsimError(f"slow[{sp.name}]", None, "a layer with a thickness in nm")
        return float(lay.thickness_nm)
    if sp.kind in ("ratio", "fraction"):
        own = [q for q in lay.profiles if q.element == sp.element]
        if own and own[-1].kind == sp.kind and np.ptp(own[-1].values) == 0:
            return float(own[-1].values[0])
        if own:
            raise RecoilsimError(f"slow[{sp.name}]", f"a depth profile of {sp.element}",
                                 f"a layer whose {sp.element} has no profile, or a constant one of kind '{sp.kind}'")
        return 1.0 if sp.kind == "ratio" else float(lay.fractions.get(sp.element, 0.0))
    el = sp.element or next(iter(lay.fractions))
    return float(lay.stopping_factors.get(el, 1.0))


def _set_slow(exp: Experiment, sp: SlowParameter, value: float) -> Experiment:
    e = copy.deepcopy(exp)
    li = _layer_index(e, sp.layer)
    lay = e.sample.layers[li]
    if sp.kind == "thickness":
        new = dataclasses.replace(lay, thickness_nm=float(value), areal_density_1e15=None)
    elif sp.kind in ("ratio", "fraction"):
        from ..model.sample import Profile
        profs = [q for q in lay.profiles if q.element != sp.element] + \
            [Profile(sp.element, [0.0], [float(value)], kind=sp.kind, depth_unit="1e15")]
        kw = {"profiles": profs}
        if lay.thickness_nm is not None:
            kw.update(thickness_nm=lay.thickness_nm, areal_density_1e15=None)
        new = dataclasses.replace(lay, **kw)
    else:
        els = [sp.element] if sp.element else list(lay.fractions)
        sf = dict(lay.stopping_factors)
        for el in els:
            sf[el] = float(value)
        kw = {"stopping_factors": sf}
        if lay.thickness_nm is not None:
            kw.update(thickness_nm=lay.thickness_nm, areal_density_1e15=None)
        new = dataclasses.replace(lay, **kw)
    e.sample.layers[li] = new
    return e


# ----------------------------------------------------------------------------- the problem

class _Problem:
    """Parameter bookkeeping, model, residuals and Jacobian of one fit."""

    def __init__(self, exps, data, par: FitParameters, lam: float):
        self.exps = exps
        self.par = par
        self.M = len(data)
        self.data = data
        self.el = par.element
        self.nodes = np.asarray(par.depth_nm, float)
        self.nn = self.nodes.size
        self.lam = float(lam)
        e0 = exps[0]
        # model groups: measurements that share the experiment and the linearisation point
        self.base = [np.ones(self.nn) for _ in range(self.M)]
        self.corr = None  # per measurement {element: full-model minus LinearModel profile columns}
        self.radius = 10.0  # trust radius of the slow parameters, in steps
        self._regroup()
        # full parameter vector
        names, vals, lo, hi, free = [], [], [], [], []

        def add(n, v, b, fx):
            names.append(n); vals.append(float(v)); lo.append(float(b[0])); hi.append(float(b[1])); free.append(not fx)

        self.i_prof = []
        for m in range(self.M):
            self.i_prof.append(np.arange(len(names), len(names) + self.nn))
            for k in range(self.nn):
                add(f"{self.el}[{m}][{self.nodes[k]:.4g}nm]", par.profile_value, par.profile_bounds, par.profile_fixed)
        det = e0.detector
        self.i_a, self.i_b, self.i_s = [], [], []
        for key, p, default, lst in (("a_ns", par.a, det.calibration_a_ns, self.i_a),
                                     ("b_ns", par.b, det.calibration_b_ns, self.i_b),
                                     ("scale", par.scale, 1.0, self.i_s)):
            v = default if p.value is None else p.value
            if p.tie == "shared":
                add(key, v, p.bounds, p.fixed)
                lst.extend([len(names) - 1] * self.M)
            else:
                for m in range(self.M):
                    add(f"{key}[{m}]", v, p.bounds, p.fixed)
                    lst.append(len(names) - 1)
        self.i_slow = []
        self.slow0 = []
        self.slow_h = []
        for sp in par.slow:
            v0 = _get_slow(e0, sp)
            v = v0 if sp.value is None else sp.value
            add(sp.name, v, sp.bounds, sp.fixed)
            self.i_slow.append(len(names) - 1)
            self.slow_h.append(sp.step or 0.02 * abs(v))
        self.i_shape = []
        if par.shape is not None:
            for m in range(self.M):
                self.i_shape.append(np.arange(len(names), len(names) + 4))
                for nm in ProfileShape.NAMES:
                    q = getattr(par.shape, nm)
                    add(f"{par.shape.kind}.{nm}[{m}]", q.value, q.bounds, q.fixed)
        self.names = names
        self.p = np.array(vals)
        self.lo = np.array(lo)
        self.hi = np.array(hi)
        self.free = np.array(free)
        for ip in (self.i_prof if self.i_shape else []):
            self.free[ip] = False  # derived from the shape parameters
        self.p = self.apply_shape(self.p)
        self.build_models()
        self.fmax = 1.0 / self.models[0][0].fraction  # a ratio above 1/f would need more than 100 % of it
        for ip in self.i_prof:
            self.hi[ip] = np.minimum(self.hi[ip], self.fmax)
            self.p[ip] = np.minimum(self.p[ip], self.fmax)
        # windows
        self.win = []
        for m in range(self.M):
            w = {}
            A, _c = self.models[self.group[m]][0].columns()
            oth = self.models[self.group[m]][0].other()
            for e in data[m]:
                spec = par.windows.get((m, e), par.windows.get(e))
                if spec is None:
                    if e == self.el:
                        s = A[:, :-1].sum(1) if self.nn > 1 else A[:, 0]
                        idx = np.nonzero(s > 1e-3 * max(s.max(), 1e-300))[0]
                        lo_, hi_ = (idx.min() - 5, idx.max() + 5) if idx.size else (0, -1)
                    else:
                        s = oth.get(e, np.zeros(det.n_channels))
                        idx = np.nonzero(s > 1e-3 * max(s.max(), 1e-300))[0]
                        lo_, hi_ = (idx.min(), idx.max()) if idx.size else (0, -1)
                else:
                    lo_, hi_ = int(spec[0]), int(spec[1])
                lo_, hi_ = max(lo_, 0), min(hi_, det.n_channels - 1)
                w[e] = np.arange(lo_, hi_ + 1)
            self.win.append(w)
        self.n_data = sum(len(w) for ws in self.win for w in ws.values())
        # regularisation operator
        self.L = np.diff(np.eye(self.nn), 2, axis=0) if self.nn > 2 else np.zeros((0, self.nn))

    def apply_shape(self, p):
        """p with the profile values computed from the shape parameters (p itself without one)."""
        if not self.i_shape:
            return p
        q = p.copy()
        for ip, ish in zip(self.i_prof, self.i_shape):
            q[ip] = self.par.shape.values_and_grad(self.nodes, p[ish])[0]
        return q

    def shape_map(self, p):
        """T (n_full, n_full): dp/dp with the profile rows replaced by dv/d(shape parameters)."""
        T = np.eye(p.size)
        for ip, ish in zip(self.i_prof, self.i_shape):
            T[np.ix_(ip, ip)] = 0.0
            T[np.ix_(ip, ish)] = self.par.shape.values_and_grad(self.nodes, p[ish])[1]
        return T

    def _regroup(self):
        """Measurements with the same experiment and the same base profile share LinearModels."""
        self.group, self.group_exps, self.group_base = [], [], []
        for e, bv in zip(self.exps, self.base):
            for g, (ge, gb) in enumerate(zip(self.group_exps, self.group_base)):
                if ge is e and np.array_equal(gb, bv):
                    self.group.append(g)
                    break
            else:
                self.group_exps.append(e)
                self.group_base.append(bv)
                self.group.append(len(self.group_exps) - 1)

    def build_models(self):
        """LinearModels at the current slow values and bases (and one per slow parameter at +step)."""
        par = self.par
        self._regroup()
        self.slow0 = [self.p[i] for i in self.i_slow]
        self.models = []
        for g, e in enumerate(self.group_exps):
            eb = e
            for sp, v in zip(par.slow, self.slow0):
                eb = _set_slow(eb, sp, v)
            ms = [LinearModel(eb, self.el, par.layer, self.nodes, base=self.group_base[g])]
            for k, sp in enumerate(par.slow):
                for sign in (1.0, -1.0):
                    ek = _set_slow(eb, sp, self.slow0[k] + sign * self.slow_h[k])
                    ms.append(LinearModel(ek, self.el, par.layer, self.nodes, base=self.group_base[g]))
            self.models.append(ms)

    def relinearize(self, p, tol: float = 0.0) -> bool:
        """Move every measurement's linearisation point (base profile) to its profile in p.

        Returns whether any base moved by more than ``tol`` (the models are then rebuilt).
        """
        new = [np.clip(p[ip], 1e-3, self.fmax) for ip in self.i_prof]
        if max(float(np.max(np.abs(n - b))) for n, b in zip(new, self.base)) <= tol:
            return False
        self.base = new
        return True

    def stopping_columns(self, p, h: float = 0.02):
        """Profile columns of the full model by forward differences of full simulations at the
        base profiles (one per node and measurement), minus the LinearModel's columns there.

        The LinearModel holds the stopping of its base composition: its columns miss that a
        changed Li fraction changes the stopping itself (a Li excess lowers it, so each channel
        collects more depth: + about 18 % on the Li column, - 40 % on the P and O columns at
        v = 1.25, tests/test_basis.py). The difference is stored per measurement at the current
        calibration and added to the profile columns (it moves little with a and b), so that
        the model is the full model to first order at the base: the fit finds the full model's
        stationary point and the covariance uses its Jacobian.
        """
        self.corr = []
        for mi in range(self.M):
            q = p.copy()
            for i, s0 in zip(self.i_slow, self.slow0):
                q[i] = s0
            q[self.i_s[mi]] = 1.0
            bv = self.base[mi]
            q[self.i_prof[mi]] = bv
            a, b = q[self.i_a[mi]], q[self.i_b[mi]]
            win = self.win[mi]
            m0 = _window_spectra(fitted_experiment(self, q, mi), win)
            A_lin = self.models[self.group[mi]][0].element_columns(a, b)
            D = {e: np.zeros((w.size, self.nn)) for e, w in win.items()}
            for k in range(self.nn):
                hk = h if bv[k] + h <= self.fmax else -h
                qk = q.copy()
                qk[self.i_prof[mi][k]] += hk
                mk = _window_spectra(fitted_experiment(self, qk, mi), win)
                for e, w in win.items():
                    Ae = A_lin[e][0]
                    D[e][:, k] = (mk[e] - m0[e]) / hk - (0.0 if Ae is None else Ae[w, k])
            self.corr.append(D)

    # -- model
    def _parts(self, g, a, b, n=None):
        """[{element: (A or None, c)}] for the base model and every slow perturbation (the first
        ``n`` models; only the elements and channels of the group's windows are computed)."""
        wins = {}
        for mi in range(self.M):
            if self.group[mi] == g:
                for e, w in self.win[mi].items():
                    if w.size:
                        lo, hi = wins.get(e, (w[0], w[-1]))
                        wins[e] = (min(lo, w[0]), max(hi, w[-1]))
        return [lm.element_columns(a, b, wins) for lm in self.models[g][:n]]

    def _eval(self, p, cache=None, slow=True):
        """Model in the windows: list per measurement of {element: (m, u, du_ds, Aeff)}, and the
        column cache. m = s u (s: Q*Omega scale); u is quadratic in every slow parameter
        through the models at its value +- step (central difference and curvature):
        u = u0 + sum_k x_k d1_k + x_k^2 d2_k, x_k = (value - value0) / step; du_ds: du/d(value_k);
        Aeff: du/d(profile). ``slow=False``: the base models only (slow parameters at their
        linearisation point)."""
        res = []
        cache = {} if cache is None else cache
        p = self.apply_shape(p)
        xs = [(p[i] - s0) / h for i, s0, h in zip(self.i_slow, self.slow0, self.slow_h)] if slow else []
        for mi in range(self.M):
            g = self.group[mi]
            a, b, s = p[self.i_a[mi]], p[self.i_b[mi]], p[self.i_s[mi]]
            key = (g, a, b, slow)
            if key not in cache:
                cache[key] = self._parts(g, a, b, None if slow else 1)
            parts = cache[key]
            v = p[self.i_prof[mi]]
            corr = self.corr[mi] if self.corr is not None else None
            out = {}
            for e, w in self.win[mi].items():
                A0, c0 = parts[0][e]
                u0 = c0[w] if A0 is None else c0[w] + A0[w] @ v
                u, du, Aeff = u0, [], None if A0 is None else A0[w]
                if corr is not None:
                    u = u0 + corr[e] @ (v - self.base[mi])
                    Aeff = corr[e] if Aeff is None else Aeff + corr[e]
                for k, x in enumerate(xs):
                    (Ap, cp), (Am, cm) = parts[1 + 2 * k][e], parts[2 + 2 * k][e]
                    up = cp[w] if Ap is None else cp[w] + Ap[w] @ v
                    um = cm[w] if Am is None else cm[w] + Am[w] @ v
                    d1, d2 = 0.5 * (up - um), 0.5 * (up + um) - u0
                    u = u + x * d1 + x * x * d2
                    du.append((d1 + 2.0 * x * d2) / self.slow_h[k])
                    if Aeff is not None and not (Ap is None and Am is None and A0 is None):
                        ap, am, a0 = (0.0 if M_ is None else M_[w] for M_ in (Ap, Am, A0))
                        Aeff = Aeff + x * 0.5 * (ap - am) + x * x * (0.5 * (ap + am) - a0)
                out[e] = (s * u, u, du, Aeff)
            res.append(out)
        return res, cache

    def model(self, p):
        r, _ = self._eval(p)
        return [{e: t[0] for e, t in o.items()} for o in r]

    def model_vec(self, p):
        """The model in the windows as one vector (the order of :meth:`dvec`)."""
        r, _ = self._eval(p)
        return np.concatenate([r[mi][e][0] for mi in range(self.M) for e in self.win[mi]])

    def jac_model(self, p):
        """dm/dp (n_data, n_full) and the model m (n_data,); with a shape, its parameters'
        columns by the chain rule through the (derived) profile values."""
        p = self.apply_shape(p)
        J, mvec = self._jac_nodes(p)
        for ip, ish in zip(self.i_prof, self.i_shape):
            J[:, ish] += J[:, ip] @ self.par.shape.values_and_grad(self.nodes, p[ish])[1]
        return J, mvec

    def _jac_nodes(self, p):
        ev, _cache = self._eval(p)
        J = np.zeros((self.n_data, p.size))
        mvec = np.zeros(self.n_data)
        row = 0
        for mi in range(self.M):
            s = p[self.i_s[mi]]
            for e, w in self.win[mi].items():
                mm, u, du, Aeff = ev[mi][e]
                sl = slice(row, row + w.size)
                mvec[sl] = mm
                J[sl, self.i_s[mi]] += u
                if Aeff is not None:
                    J[sl, self.i_prof[mi]] += s * Aeff
                for k, dk in enumerate(du):
                    J[sl, self.i_slow[k]] += s * dk
                row += w.size
        # calibration by forward differences (re-spread only), on the base models: the slow
        # parameters' terms vanish at their linearisation point, where the fit ends
        ev0 = self._eval(p, slow=False)[0] if self.i_slow else ev
        for idx_list in (self.i_a, self.i_b):
            for j in sorted(set(idx_list)):
                if not self.free[j]:
                    continue
                h = 1e-4 * abs(p[j]) if idx_list is self.i_a else 2e-3 * abs(p[self.i_a[0]])
                q = p.copy(); q[j] += h
                ev2, _ = self._eval(q, slow=False)
                row = 0
                for mi in range(self.M):
                    for e, w in self.win[mi].items():
                        J[row:row + w.size, j] += (ev2[mi][e][0] - ev0[mi][e][0]) / h
                        row += w.size
        return J, mvec

    def dvec(self):
        return np.concatenate([self.data[mi][e][w] for mi in range(self.M) for e, w in self.win[mi].items()])

    def penalty_matrix(self):
        P = np.zeros((self.p.size, self.p.size))
        LL = self.L.T @ self.L
        for ip in self.i_prof:
            P[np.ix_(ip, ip)] += self.lam * LL
        return P

    def trust_bounds(self):
        """Bounds of one solve: the user's, and every slow parameter within ``radius`` steps of
        its linearisation point (the quadratic model through value0 +- step; the outer loop
        re-centres it and adapts the radius)."""
        lo, hi = self.lo.copy(), self.hi.copy()
        for i, s0, h in zip(self.i_slow, self.slow0, self.slow_h):
            lo[i] = max(lo[i], s0 - self.radius * h)
            hi[i] = min(hi[i], s0 + self.radius * h)
        return lo, hi

    def slow_sigma(self, d, p):
        """Standard errors of the slow parameters at p (Fisher + prior), for the outer loop's
        stopping rule: a move below 5 % of a step or 20 % of a sigma counts as settled."""
        if not self.i_slow:
            return []
        fr = self.free
        J, m = self.jac_model(p)
        Jw = (J / np.sqrt(np.maximum(m, TINY))[:, None])[:, fr]
        H = Jw.T @ Jw + self.penalty_matrix()[np.ix_(fr, fr)]
        try:
            C = np.linalg.inv(H)
        except np.linalg.LinAlgError:
            return [np.inf] * len(self.i_slow)
        pos = np.cumsum(fr) - 1
        return [float(np.sqrt(max(C[pos[i], pos[i]], 1e-300))) if fr[i] else np.inf for i in self.i_slow]

    def full_objective(self, d, p) -> float:
        """Deviance (+ penalty) of the full simulation at p: the trust region's judge."""
        m = np.concatenate([_window_spectra(fitted_experiment(self, p, mi), self.win[mi])[e]
                            for mi in range(self.M) for e in self.win[mi]])
        pen = self.lam * sum(float(np.sum((self.L @ p[ip]) ** 2)) for ip in self.i_prof)
        return deviance(d, m) + pen

    # -- least squares
    def solve(self, d, x0=None, max_nfev=None):
        fr = self.free
        p_full = self.p.copy()
        sq = math.sqrt(self.lam)
        nreg = self.L.shape[0] * self.M if self.lam > 0 else 0

        def full(x):
            q = p_full.copy(); q[fr] = x
            return self.apply_shape(q)

        def fun(x):
            q = full(x)
            r, _ = _dev_res(d, self.model_vec(q))
            if nreg:
                r = np.concatenate([r] + [sq * (self.L @ q[ip]) for ip in self.i_prof])
            return r

        def jac(x):
            J, m = self.jac_model(full(x))
            _, dr = _dev_res(d, m)
            Jr = dr[:, None] * J[:, fr]
            if nreg:
                R = np.zeros((nreg, self.p.size))
                for k, ip in enumerate(self.i_prof):
                    R[k * self.L.shape[0]:(k + 1) * self.L.shape[0], ip] = sq * self.L
                Jr = np.vstack([Jr, R[:, fr]])
            return Jr

        x0 = self.p[fr] if x0 is None else x0
        lo_f, hi_f = self.trust_bounds()
        lo, hi = lo_f[fr], hi_f[fr]
        with np.errstate(invalid="ignore"):
            span = np.where(np.isfinite(hi - lo), 1e-9 * (hi - lo), 1e-9 * (np.abs(x0) + 1e-3))
        x0 = np.clip(x0, np.where(np.isfinite(lo), lo + span, -np.inf), np.where(np.isfinite(hi), hi - span, np.inf))
        sol = optimize.least_squares(fun, x0, jac=jac, bounds=(lo, hi), method="trf",
                                     x_scale="jac", max_nfev=max_nfev or self.par.max_nfev,
                                     xtol=1e-8, ftol=1e-8, gtol=1e-8)
        return sol, full(sol.x)


def fitted_experiment(prob: _Problem, p, mi: int) -> Experiment:
    """The experiment of measurement ``mi`` with the fitted profile, slow parameters, calibration, Q*Omega."""
    from ..model.sample import Profile
    e = prob.exps[mi]
    for sp, i in zip(prob.par.slow, prob.i_slow):
        e = _set_slow(e, sp, p[i])
    e = copy.deepcopy(e)
    li = _layer_index(e, prob.par.layer)
    lay = e.sample.layers[li]
    lay.profiles = [q for q in lay.profiles if q.element != prob.el] + \
        [Profile(prob.el, prob.nodes, np.maximum(p[prob.i_prof[mi]], 0.0), kind="ratio")]
    e.detector.calibration_a_ns = float(p[prob.i_a[mi]])
    e.detector.calibration_b_ns = float(p[prob.i_b[mi]])
    e.beam.fluence = float(e.beam.fluence * p[prob.i_s[mi]])
    return e


def _window_spectra(exp: Experiment, win) -> dict:
    """Counts per element of the full forward model in the given channel windows (no xarray)."""
    from ..forward.engine import prepare, run, spread
    inputs = prepare(exp)
    det = exp.detector
    spec = spread(run(inputs), det.calibration_a_ns, det.calibration_b_ns, det.n_channels, exp.options.resolution)
    out = {}
    for sp, row in zip(inputs.species, spec):
        if sp.kind == 0 and sp.element in win:
            out[sp.element] = out.get(sp.element, 0.0) + row[win[sp.element]]
    return out
