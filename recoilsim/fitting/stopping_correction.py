"""The stopping correction of the profile columns: what the linear model misses when the profile changes the stopping.

A :class:`~recoilsim.forward.linear_model.LinearModel` holds the stopping of its base
composition: its columns miss that a changed Li fraction changes the stopping itself (a Li
excess lowers it, so each channel collects more depth: + about 18 % on the Li column, - 40 % on
the P and O columns at v = 1.25, tests/test_basis.py). :func:`stopping_columns` measures the
full model's profile columns by forward differences of full simulations at each measurement's
base profile (one per node and measurement) and returns their difference to the linear model's
columns there. The linearised model adds it to its profile columns (it moves little with the
calibration), so that the model is the full model to first order at the base: the fit finds
the full model's stationary point and the covariance uses its Jacobian.
"""

from __future__ import annotations

import numpy as np

from .full_model import experiment_at, window_spectra

__all__ = ["stopping_columns"]


def stopping_columns(prob, p, h: float = 0.02) -> list[dict]:
    """Per measurement {element: (n_window, n_nodes) full-model minus linear-model profile columns}.

    Parameters
    ----------
    prob : recoilsim.fitting.problem.Problem
    p : parameter vector (calibration taken from it; slow parameters at their linearisation
        point, scale 1, profile at the measurement's base).
    h : forward-difference step of a profile value (ratio units; backwards where the upper
        bound is closer).
    """
    vec = prob.vec
    corr = []
    for mi in range(prob.M):
        q = p.copy()
        for i, s0 in zip(vec.i_slow, prob.lin.slow0):
            q[i] = s0
        q[vec.i_s[mi]] = 1.0
        bv = prob.lin.base[mi]
        q[vec.i_prof[mi]] = bv
        a, b = q[vec.i_a[mi]], q[vec.i_b[mi]]
        win = prob.win[mi]
        m0 = window_spectra(experiment_at(prob, q, mi), win)
        A_lin = prob.lin.base_columns(mi, a, b)
        D = {e: np.zeros((w.size, prob.nn)) for e, w in win.items()}
        for k in range(prob.nn):
            hk = h if bv[k] + h <= prob.fmax else -h
            qk = q.copy()
            qk[vec.i_prof[mi][k]] += hk
            mk = window_spectra(experiment_at(prob, qk, mi), win)
            for e, w in win.items():
                Ae = A_lin[e][0]
                D[e][:, k] = (mk[e] - m0[e]) / hk - (0.0 if Ae is None else Ae[w, k])
        corr.append(D)
    return corr
