"""The solver of a fit: one bounded least-squares solve, the smoothing strength, and the outer loop.

Likelihood
----------
Poisson likelihood, minimised as the deviance (:mod:`recoilsim.fitting.likelihood`) with
:func:`scipy.optimize.least_squares` on the signed deviance residuals (sum r^2 = D) plus the
smoothness penalty rows, analytic Jacobian for the profile values and the scales, forward
differences (re-spread only) for the calibration a and b.

Regularisation strength
-----------------------
Chosen by generalised cross-validation (Wahba 1977; Craven & Wahba 1979) on the
Poisson-weighted linearisation at an almost unregularised fit:
``GCV(lambda) = n D(lambda) / (n - p_eff(lambda))^2`` (:func:`choose_lambda`); or given.

Outer loop
----------
The slow parameters are trusted within ``radius`` steps of their linearisation point per solve;
the models are re-built at the solution until no slow parameter moves by more than 5 % of its
step (or 20 % of its standard error once the full model's noise has rejected a step). With free
slow parameters the loop is a trust-region method on the full model: a step is kept only if the
full simulation's deviance went down (else the radius shrinks 4x), and the radius doubles (up to
10) when a step reached it. This keeps strongly coupled slow parameters (film thickness and
composition) from swinging between the bounds of the quadratic model. With ``relinearize`` every
measurement's models are also re-built at its fitted profile until no profile value moves by
more than ``relinearize_tol``, with the stopping correction of the profile columns
(:mod:`recoilsim.fitting.stopping_correction`) at every re-centring.

Inexact outer loop
------------------
A caller that re-linearises from the result anyway (``FitParameters.inexact_outer``:
:func:`~recoilsim.fitting.film.fit_film` re-nominalises after every fit whose parameters moved by
``tol`` standard errors or more) needs the outer loop converged only relative to how far the
fit has moved: it stops once the slow parameters have moved by at least ``inexact_outer``
standard errors from the start (so the caller fits again) and the last solve moved them by at
most ``inexact_eta`` of that. This is the forcing-term rule of inexact Newton methods (Dembo,
Eisenstat & Steihaug, SIAM J. Numer. Anal. 19 (1982) 400: an inner solve to a relative
accuracy eta < 1 of the outer step keeps the outer iteration convergent); the last fit, whose
move is below the caller's ``tol``, always runs to the full criterion above.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg, optimize

from .full_model import full_objective
from .likelihood import FLOOR, deviance_residuals
from .problem import Problem

__all__ = ["choose_lambda", "compressed_residuals", "fisher", "inexact_stop", "outer_loop", "slow_sigma", "solve",
           "sparse_gram"]

#: deviance: the full model's own noise (thin films re-grid their bricks as the thickness moves)
FULL_MODEL_NOISE = 0.5

#: free parameters from which a solve is compressed (:func:`compressed_residuals`): below, the
#: SVD of the full problem costs less than the Jacobians the compression needs at the trial
#: points the trust region rejects (the film fit, 337 x 13: 5-12 % slower compressed; the
#: reference fit, 2682 x 153: 1.6x faster)
COMPRESS_MIN_FREE = 50

#: diag(R)_i / |J_i| below which the Cholesky factor of the Gram matrix is replaced by a QR (the
#: reference fits: >= 1.6e-4, their GCV's almost unregularised solve included)
NEAR_DEPENDENT = 1e-5


def solve(prob: Problem, d, x0=None, max_nfev=None):
    """One bounded least-squares solve of the linearised problem; returns (scipy result, full p).

    With at least ``COMPRESS_MIN_FREE`` free parameters scipy's trust-region reflective method
    sees the problem compressed to n + 1 rows (:func:`compressed_residuals`): the same cost,
    gradient and Gauss-Newton matrix, so the same steps, with the subproblem's SVD on n + 1
    instead of m rows; ``sol.fun`` and ``sol.jac`` are then the compressed ones (``sol.cost``
    is the full 0.5 sum r^2). With fewer the SVD is cheap and the full problem is solved.
    """
    fr = prob.free
    p_full = prob.p.copy()
    R = prob.penalty_rows()[:, fr] if prob.lam > 0 and prob.L.shape[0] else None
    compress = np.count_nonzero(fr) >= COMPRESS_MIN_FREE

    def full(x):
        q = p_full.copy()
        q[fr] = x
        return prob.vec.apply_shape(q)

    def penalty(q):
        return np.concatenate([np.sqrt(prob.lam) * (prob.L @ q[ip]) for ip in prob.i_prof])

    def fun(x):
        q = full(x)
        r, _ = deviance_residuals(d, prob.model_vec(q))
        return r if R is None else np.concatenate([r, penalty(q)])

    J_buf = np.empty((prob.n_data, p_full.size))  # every Jacobian of this solve, written in place

    def jacobian_and_residuals(x):
        """Row blocks (J, r) of the residuals' Jacobian and the residuals: data, then penalty
        (copies: J_buf is the next call's)."""
        q = full(x)
        J, m = prob.jac_model(q, J_buf)
        r, dr = deviance_residuals(d, m)
        Jf = J if compress and fr.all() else J[:, fr]  # no copy of J in a compressed solve
        if not compress:
            data = [(dr[:, None] * Jf, r)]
        else:  # one row block per measurement, on the columns it touches (its own profile, shared ones)
            data = []
            for sl in prob.row_segments():
                cols = np.flatnonzero(np.any(Jf[sl] != 0.0, axis=0))
                Jc = Jf[sl][:, cols]
                Jc *= dr[sl, None]
                data.append((Jc, r[sl], cols))
        return data if R is None else data + [(R, penalty(q))]

    if compress:
        fun, jac = compressed_residuals(jacobian_and_residuals)
    else:
        def jac(x):
            blocks = jacobian_and_residuals(x)
            return blocks[0][0] if len(blocks) == 1 else np.vstack([J for J, _ in blocks])

    x0 = prob.p[fr] if x0 is None else x0
    lo_f, hi_f = prob.trust_bounds()
    lo, hi = lo_f[fr], hi_f[fr]
    with np.errstate(invalid="ignore"):
        span = np.where(np.isfinite(hi - lo), 1e-9 * (hi - lo), 1e-9 * (np.abs(x0) + 1e-3))
    x0 = np.clip(x0, np.where(np.isfinite(lo), lo + span, -np.inf), np.where(np.isfinite(hi), hi - span, np.inf))
    sol = optimize.least_squares(fun, x0, jac=jac, bounds=(lo, hi), method="trf",
                                 x_scale="jac", max_nfev=max_nfev or prob.par.max_nfev,
                                 xtol=1e-8, ftol=1e-8, gtol=1e-8)
    return sol, full(sol.x)


def compressed_residuals(jacobian_and_residuals):
    """(fun, jac) for :func:`scipy.optimize.least_squares` of the compressed problem.

    ``jacobian_and_residuals(x)`` returns the m x n Jacobian J and the m residuals r as a list
    of row blocks ``(J_k, r_k)`` or ``(J_k, r_k, cols_k)``, J_k then holding only the columns
    ``cols_k`` of the block (the others are zero in its rows); the Gram matrix below is summed
    over the blocks, nothing stacked.

    With the triangular factor of ``[J r] = Q [[R, c], [0, rho]]`` (Q orthogonal) of the m x n
    Jacobian J and the residuals r at x, the n + 1 compressed residuals are ``(c, rho)`` and
    their Jacobian is ``[[R], [0]]``: ``c^2 + rho^2 = |r|^2`` (the cost), ``R^T c = J^T r`` (the
    gradient), ``R^T R = J^T J`` (the Gauss-Newton matrix) and R has J's column norms (the
    ``x_scale="jac"`` scaling). The trust-region reflective method (Branch, Coleman & Li 1999,
    SIAM J. Sci. Comput. 21, 1) uses J and r only through these, the predicted reduction
    ``|J p|^2 = |R p|^2`` included, so it takes the same steps as on the full problem while the
    SVD of its subproblem shrinks from (m + n) x n to (2n + 1) x n (the compression of the
    Levenberg-Marquardt subproblem by a QR factorisation: Moré 1978, Lecture Notes in Math. 630,
    105, section 3). The factor is the Cholesky factor of the Gram matrix ``[J r]^T [J r]``
    (Golub & Van Loan, Matrix Computations, 4th ed., section 5.3.2); its rounding error grows as
    eps cond(J)^2, so a Householder QR replaces it where the Gram matrix is not positive definite
    or a column of J lies within ``NEAR_DEPENDENT`` (relative) of the span of the ones before it
    (then cond(J) > 1 / NEAR_DEPENDENT). The price: the Jacobian is computed at every trial point, also at
    one the trust region then rejects.
    """
    cache: dict = {}

    def evaluate(x):
        if cache.get("x") is None or not np.array_equal(cache["x"], x):
            n = np.size(x)
            blocks = [b if len(b) == 3 else (*b, slice(0, n)) for b in jacobian_and_residuals(x)]
            Ra = np.zeros((n + 1, n + 1))
            if not all(np.all(np.isfinite(J)) and np.all(np.isfinite(r)) for J, r, _ in blocks):
                Ra[:, n] = np.nan  # the solver shrinks its step on a non-finite cost
            else:
                G = np.zeros((n + 1, n + 1))
                for J, r, cols in blocks:
                    if isinstance(cols, slice):
                        G[:n, :n] += sparse_gram(J)
                    else:
                        G[np.ix_(cols, cols)] += J.T @ J
                    G[cols, n] += J.T @ r
                    G[n, n] += r @ r
                G[n, :n] = G[:n, n]
                try:
                    Ra = linalg.cholesky(G, lower=False, check_finite=False)
                    if np.any(np.abs(np.diag(Ra)[:n]) < NEAR_DEPENDENT * np.sqrt(np.diag(G)[:n])):
                        raise linalg.LinAlgError("a column almost in the span of the others")
                except linalg.LinAlgError:
                    A = np.zeros((sum(r.size for _, r, _ in blocks), n + 1))
                    row = 0
                    for J, r, cols in blocks:
                        A[row:row + r.size, :n][:, cols] = J
                        A[row:row + r.size, n] = r
                        row += r.size
                    Ra[:min(A.shape)] = linalg.qr(A, mode="r", check_finite=False)[0][:n + 1]
            cache.update(x=np.array(x, copy=True), c=Ra[:, n], J=Ra[:, :n])
        return cache

    return (lambda x: evaluate(x)["c"]), (lambda x: evaluate(x)["J"])


def sparse_gram(J) -> np.ndarray:
    """``J^T J``, computed on the columns of J that are not all zero (the others add exact
    zeros): a row block of one measurement touches only its own profile's columns. The same
    sum in another order: equal to ``J.T @ J`` to rounding."""
    cols = np.flatnonzero(np.any(J != 0.0, axis=0))
    if cols.size == J.shape[1]:
        return J.T @ J
    G = np.zeros((J.shape[1], J.shape[1]))
    Jc = J[:, cols]
    G[np.ix_(cols, cols)] = Jc.T @ Jc
    return G


def weighted_jacobian(J, m, free) -> np.ndarray:
    """J / sqrt(m) on the free columns: F = Jw^T Jw is the Poisson Fisher information."""
    Jw = J / np.sqrt(np.maximum(m, FLOOR))[:, None]
    return Jw if free.all() else Jw[:, free]


def fisher(prob: Problem, Jw) -> np.ndarray:
    """``F = Jw^T Jw`` (:func:`weighted_jacobian`), summed over the measurements' row blocks
    (:func:`sparse_gram`)."""
    return sum(sparse_gram(Jw[sl]) for sl in prob.row_segments())


def choose_lambda(prob: Problem, d, p0) -> float:
    """GCV on the Poisson-weighted linearisation at an (almost) unregularised solution p0."""
    fr = prob.free
    J, m = prob.jac_model(p0)
    Jw = weighted_jacobian(J, m, fr)
    F = fisher(prob, Jw)
    P1 = prob.penalty_matrix(1.0)[np.ix_(fr, fr)]
    x0 = p0[fr]
    r0 = (d - m) / np.sqrt(np.maximum(m, FLOOR))
    n = d.size
    scale = np.trace(F) / max(np.trace(P1), 1e-300)
    best = (np.inf, 0.0)
    for lam in scale * np.logspace(-6, 4, 41):
        Hm = F + lam * P1
        try:
            dx = np.linalg.solve(Hm, Jw.T @ r0 - lam * P1 @ x0)
            tr = np.trace(np.linalg.solve(Hm, F))
        except np.linalg.LinAlgError:
            continue
        rss = np.sum((r0 - Jw @ dx) ** 2)
        g = n * rss / max(n - tr, 1.0) ** 2
        if g < best[0]:
            best = (g, lam)
    return best[1]


def slow_sigma(prob: Problem, p) -> list[float]:
    """Standard errors of the slow parameters at p (Fisher + prior), for the outer loop's
    stopping rule: a move below 5 % of a step or 20 % of a sigma counts as settled."""
    if not prob.i_slow:
        return []
    fr = prob.free
    J, m = prob.jac_model(p)
    Jw = weighted_jacobian(J, m, fr)
    H = fisher(prob, Jw) + prob.penalty_matrix()[np.ix_(fr, fr)]
    try:
        C = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return [np.inf] * len(prob.i_slow)
    pos = np.cumsum(fr) - 1
    return [float(np.sqrt(max(C[pos[i], pos[i]], 1e-300))) if fr[i] else np.inf for i in prob.i_slow]


def outer_loop(prob: Problem, d, gcv: bool):
    """Solve, re-centre and re-linearise until settled (module docstring).

    Returns the last scipy result and the smoothing criterion ('generalized cross-validation' or
    'given'); ``prob.p`` holds the solution, ``prob.outer`` the iterations and convergence.
    """
    par = prob.par
    criterion = "given"
    sol = None
    outer_ok = True
    slow_free = any(prob.free[i] for i in prob.i_slow)
    f_acc = None
    if slow_free and par.relinearize and par.stopping_jacobian:
        # the stopping correction from the start: without it the first solve moves the profile
        # (Li + 16 % on the Potku film) and, through it, the slow parameters along a direction
        # the full model rejects; the trust radius then collapses and the slow parameters crawl
        prob.correct_stopping(prob.p)
    start = prob.p.copy()
    inexact = None
    it = 0
    for it in range(par.max_outer):
        sol, p = solve(prob, d)
        if it == 0 and gcv:
            prob.lam = choose_lambda(prob, d, p)
            criterion = "generalized cross-validation"
            sol, p = solve(prob, d)
        if slow_free:
            if f_acc is None:
                f_acc = full_objective(prob, d, prob.p)
            f_new = full_objective(prob, d, p)
            if f_new > f_acc + FULL_MODEL_NOISE and prob.radius > 0.05:
                prob.radius /= 4.0  # rejected: same centre, smaller region
                outer_ok = False
                continue
            if max(prob.slow_moves(p)) >= 0.99 * prob.radius:
                prob.radius = min(2.0 * prob.radius, 10.0)
            f_acc = f_new
        prob.p = p
        # rebuild the models where the solution left the linearisation point: a slow parameter
        # moved by more than 5 % of its step, or a profile value by more than relinearize_tol.
        # Once the full model's noise has rejected a step (radius < 10), a move below 20 % of
        # the parameter's sigma also counts as settled (no smaller move can beat that noise).
        moves = prob.slow_moves(p)
        sigmas = slow_sigma(prob, p) if moves and (prob.radius < 10.0 or par.inexact_outer) else None
        if prob.radius < 10.0 and moves:
            moves = [min(x, 0.25 * abs(p[i] - s0) / sg)
                     for x, i, s0, sg in zip(moves, prob.i_slow, prob.lin.slow0, sigmas)]
        rebase = par.relinearize and prob.relinearize(p, par.relinearize_tol)
        outer_ok = max(moves, default=0.0) <= 0.05
        if outer_ok and not rebase:
            break
        if sigmas is not None and par.inexact_outer:
            inexact = inexact_stop(prob, p, start, sigmas, par.inexact_outer, par.inexact_eta)
            if inexact is not None:
                outer_ok = False
                break
        if it == par.max_outer - 1:
            if not outer_ok:  # centre the models at the last solution: the covariance (and the
                prob.build_models()  # correlations that explain the wandering) are then local
            break
        prob.build_models()
        if par.relinearize and par.stopping_jacobian:
            # at every re-centring: the correction lives on channels, and a moved thickness or
            # calibration moves the features under it (stale, it made the fit creep)
            prob.correct_stopping(p)
    prob.outer = {"iterations": int(it + 1), "converged": bool(outer_ok)}
    if inexact is not None:
        prob.outer["inexact"] = inexact
    return sol, criterion


def inexact_stop(prob: Problem, p, start, sigmas, after: float, eta: float) -> dict | None:
    """The inexact outer loop's verdict at the solution p (module docstring): None to go on, or
    {'moved_sigma': largest move of a slow parameter since ``start``, 'last_sigma': largest move
    of the last solve from the linearisation point}, both in standard errors ``sigmas``, when
    ``moved_sigma >= after`` and ``last_sigma <= eta * moved_sigma``."""
    moved = max(abs(p[i] - start[i]) / sg for i, sg in zip(prob.i_slow, sigmas))
    last = max(abs(p[i] - s0) / sg for i, s0, sg in zip(prob.i_slow, prob.lin.slow0, sigmas))
    if moved >= after and last <= eta * moved:
        return {"moved_sigma": float(moved), "last_sigma": float(last)}
    return None
