"""One fit's problem: the measured data, the parameter vector, the windows and the linearised model, held together.

:class:`Problem` ties the pieces of :func:`recoilsim.fitting.driver.fit` together: the
:class:`~recoilsim.fitting.vector.ParameterVector` (what is fitted), the fit windows
(:mod:`recoilsim.fitting.windows`), the :class:`~recoilsim.fitting.linearised.LinearisedModel`
(model and Jacobian in the windows), the smoothness penalty and the trust region of the slow
parameters. The solver (:mod:`recoilsim.fitting.solver`) works on it; the full model at a
parameter vector is :func:`recoilsim.fitting.full_model.experiment_at`.

Regularisation: second-difference penalty ``lambda * sum_m ||L v_m||^2`` on each profile.
"""

from __future__ import annotations

import numpy as np

from .linearised import LinearisedModel
from .parameters import FitParameters
from .stopping_correction import stopping_columns
from .vector import ParameterVector
from .windows import background_start, choose_windows

__all__ = ["Problem"]


class Problem:
    """Parameter vector, windows, linearised model, penalty and trust region of one fit.

    Parameters
    ----------
    exps : one Experiment per measurement
    data : per measurement {element: counts}
    par : FitParameters
    lam : smoothness penalty strength
    """

    def __init__(self, exps, data, par: FitParameters, lam: float):
        self.exps = exps
        self.data = data
        self.par = par
        self.M = len(data)
        self.el = par.element
        self.nodes = np.asarray(par.depth_nm, float)
        self.nn = self.nodes.size
        self.lam = float(lam)
        self.radius = 10.0  # trust radius of the slow parameters, in steps
        self.outer = {"iterations": 0, "converged": True}
        self.vec = ParameterVector(exps[0], par, self.M, self.nodes, [list(dm) for dm in data])
        self.lin = LinearisedModel(exps, par, self.nodes, self.vec)
        self.lin.build(self.vec.p)
        self.fmax = 1.0 / self.lin.models[0][0].fraction  # a ratio above 1/f would need more than 100 % of it
        for ip in self.vec.i_prof:
            self.vec.hi[ip] = np.minimum(self.vec.hi[ip], self.fmax)
            self.vec.p[ip] = np.minimum(self.vec.p[ip], self.fmax)
        self.win = choose_windows(par, data, [self.lin.nominal(m) for m in range(self.M)], exps[0].detector.n_channels)
        self.lin.set_windows(self.win)
        if par.background:
            starts = background_start(par, data, [self.lin.nominal(m) for m in range(self.M)], self.win)
            for mi, ws in enumerate(self.vec.i_bg):
                for e, pair in ws.items():
                    for i in pair:
                        if i is not None:
                            self.vec.p[i] = starts[mi][e]
        self.n_data = sum(len(w) for ws in self.win for w in ws.values())
        self.L = np.diff(np.eye(self.nn), 2, axis=0) if self.nn > 2 else np.zeros((0, self.nn))

    # -- the vector (views of self.vec: the solver and the result read them)
    @property
    def p(self):
        return self.vec.p

    @p.setter
    def p(self, value):
        self.vec.p = value

    @property
    def free(self):
        return self.vec.free

    @property
    def names(self):
        return self.vec.names

    @property
    def i_prof(self):
        return self.vec.i_prof

    @property
    def i_slow(self):
        return self.vec.i_slow

    @property
    def i_s(self):
        return self.vec.i_s

    # -- data and model
    def dvec(self) -> np.ndarray:
        """The measured counts in the windows as one vector (the order of :meth:`model_vec`)."""
        return np.concatenate([self.data[mi][e][w] for mi in range(self.M) for e, w in self.win[mi].items()])

    def row_segments(self) -> list[slice]:
        """The rows of each measurement in the data vector (:meth:`dvec`)."""
        ends = np.cumsum([0] + [sum(w.size for w in ws.values()) for ws in self.win])
        return [slice(int(a), int(b)) for a, b in zip(ends[:-1], ends[1:])]

    def model(self, p) -> list[dict]:
        return self.lin.model(p)

    def model_vec(self, p) -> np.ndarray:
        return self.lin.model_vec(p)

    def jac_model(self, p, out=None):
        """dm/dp (n_data, n_full) and the model m (n_data,); ``out``: an array to write it into."""
        return self.lin.jacobian(p, self.n_data, out)

    def build_models(self):
        """Re-build the LinearModels at the current slow values and base profiles."""
        self.lin.build(self.vec.p)

    def relinearize(self, p, tol: float = 0.0) -> bool:
        """Move every measurement's linearisation point (base profile) to its profile in p.

        Returns whether any base moved by more than ``tol`` (the models must then be rebuilt).
        """
        return self.lin.move_bases([np.clip(p[ip], 1e-3, self.fmax) for ip in self.vec.i_prof], tol)

    def correct_stopping(self, p):
        """Add the full model's stopping change to the profile columns (:mod:`~recoilsim.fitting.stopping_correction`)."""
        self.lin.corr = stopping_columns(self, p)

    # -- penalty and trust region
    def penalty(self, p) -> float:
        """``lambda * sum_m ||L v_m||^2`` at p."""
        return self.lam * sum(float(np.sum((self.L @ p[ip]) ** 2)) for ip in self.vec.i_prof)

    def penalty_matrix(self, lam: float | None = None) -> np.ndarray:
        """P (n_full, n_full) with ``p^T P p`` the penalty (strength ``lam``, default the problem's)."""
        P = np.zeros((self.vec.size, self.vec.size))
        LL = self.L.T @ self.L
        for ip in self.vec.i_prof:
            P[np.ix_(ip, ip)] += (self.lam if lam is None else lam) * LL
        return P

    def penalty_rows(self) -> np.ndarray:
        """R (n_reg, n_full): the penalty as least-squares rows, ``||R p||^2`` = penalty."""
        nl = self.L.shape[0]
        R = np.zeros((nl * self.M, self.vec.size))
        for k, ip in enumerate(self.vec.i_prof):
            R[k * nl:(k + 1) * nl, ip] = np.sqrt(self.lam) * self.L
        return R

    def slow_moves(self, p) -> list[float]:
        """How far each slow parameter of p lies from its linearisation point, in steps."""
        return [abs(p[i] - s0) / h for i, s0, h in zip(self.vec.i_slow, self.lin.slow0, self.vec.slow_h)]

    def trust_bounds(self):
        """Bounds of one solve: the user's, and every slow parameter within ``radius`` steps of
        its linearisation point (the quadratic model through value0 +- step; the outer loop
        re-centres it and adapts the radius)."""
        lo, hi = self.vec.lo.copy(), self.vec.hi.copy()
        for i, s0, h in zip(self.vec.i_slow, self.lin.slow0, self.vec.slow_h):
            lo[i] = max(lo[i], s0 - self.radius * h)
            hi[i] = min(hi[i], s0 + self.radius * h)
        return lo, hi
