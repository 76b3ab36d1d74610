"""The depth-profile fit's parameters, expected counts, Jacobian and prior.

Parameter vector x = [theta (n_elements x n_nodes), ln s, (b), (ln bg_e per spectrum)]:

* theta: log-ratio (softmax) coordinates of the atomic fractions at each node,
  ``f_e,k = g_k exp(theta_e,k) / sum_j exp(theta_j,k)`` with ``g_k`` what the held (not
  profiled) elements leave: every fraction is positive and they sum to one at every node,
  whatever theta (Aitchison, *The Statistical Analysis of Compositional Data* (1986), ch. 4).
* s: Q * Omega relative to the experiment's (ln s fitted, so s > 0).
* b: TOF calibration offset (ns), optional.
* bg_e: a constant background per spectrum (counts per channel), optional, ln bg fitted.

Expected counts of element e in its window:
``m_e = s * sum_k f_e,k R_e[k] + bg_e`` with R from :class:`~recoilsim.forward.node_response.NodeResponse`
(spectra per unit fraction at the stopping of the current linearisation point).
Prior (Gaussian): a second-difference smoothness prior ``lam * ||L theta_e||^2 / 2`` on every
element's log-ratio profile (within each segment of the grid), plus weak proper priors (theta:
sd ``THETA_SD`` around 0; ln s: sd 3; b: sd ``b_sd`` around the start; ln bg: sd 3 around
ln(``bg_start``)), so that the evidence is defined.
"""

from __future__ import annotations

import numpy as np

from ..forward.node_response import NodeResponse

THETA_SD = 10.0  # e-folds: weak level prior of the log-ratio coordinates
LN_SD = 3.0  # e-folds: prior sd of ln s and ln bg


class ProfileModel:
    """Counts and Jacobian of the depth-profile fit at a parameter vector x.

    Parameters
    ----------
    response : NodeResponse
    data : {element: counts (n_channels,)}; windows : {element: (lo, hi)} inclusive channels.
    fit_b : fit the TOF offset; background : fit a constant background per spectrum.
    b_sd : prior sd of the offset (ns); bg_start : start (and prior median) of the background.
    """

    def __init__(self, response: NodeResponse, data: dict, windows: dict, fit_b: bool = True,
                 background: bool = True, b_sd: float = 1.0, bg_start: float = 0.01):
        self.resp = response
        grid = response.grid
        self.grid = grid
        self.ne = len(grid.elements)
        self.nn = grid.n_nodes
        self.g = 1.0 - grid.held_fraction()
        self.spectra = [e for e in data if e in response.elements]
        self.win = {e: np.arange(int(windows[e][0]), int(windows[e][1]) + 1) for e in self.spectra}
        self.d = np.concatenate([np.asarray(data[e], float)[self.win[e]] for e in self.spectra])
        self.el_idx = [grid.elements.index(e) for e in self.spectra]
        self.resp_idx = [response.elements.index(e) for e in self.spectra]
        self.fit_b, self.background = bool(fit_b), bool(background)
        n_t = self.ne * self.nn
        self.i_s = n_t
        self.i_b = n_t + 1 if fit_b else None
        self.i_bg = (n_t + 1 + int(fit_b)) + np.arange(len(self.spectra)) if background else np.zeros(0, int)
        self.n_x = n_t + 1 + int(fit_b) + (len(self.spectra) if background else 0)
        self.b0 = response.b_ns
        self.b_sd = float(b_sd)
        self.bg_start = float(bg_start)
        self.h_b = 0.25 * abs(response.a_ns)  # spacing of the offset interpolation grid: 1/4 channel
        self._grid = {}

    # -- parameter vector
    def start(self, fractions: np.ndarray, b: float | None = None) -> np.ndarray:
        x = np.zeros(self.n_x)
        x[:self.i_s] = np.log(np.maximum(fractions, 1e-300)).ravel()
        if self.fit_b:
            x[self.i_b] = self.b0 if b is None else b
        x[self.i_bg] = np.log(self.bg_start)
        return x

    def fractions(self, x: np.ndarray) -> np.ndarray:
        """(n_elements, n_nodes) atomic fractions at x (softmax times what the held elements leave)."""
        th = x[:self.i_s].reshape(self.ne, self.nn)
        th = th - th.max(axis=0, keepdims=True)
        p = np.exp(th)
        return self.g * p / p.sum(axis=0, keepdims=True)

    def offset(self, x) -> float:
        return float(x[self.i_b]) if self.fit_b else self.b0

    def prior(self, lam: float) -> tuple[np.ndarray, np.ndarray]:
        """(x0, P): prior centre (shape of x, theta part 0) and precision for smoothing strength lam."""
        L = self.grid.second_differences()
        blk = lam * (L.T @ L) + np.eye(self.nn) / THETA_SD ** 2
        P = np.zeros((self.n_x, self.n_x))
        for e in range(self.ne):
            sl = slice(e * self.nn, (e + 1) * self.nn)
            P[sl, sl] = blk
        P[self.i_s, self.i_s] = 1.0 / LN_SD ** 2
        x0 = np.zeros(self.n_x)
        if self.fit_b:
            P[self.i_b, self.i_b] = 1.0 / self.b_sd ** 2
            x0[self.i_b] = self.b0
        for i in self.i_bg:
            P[i, i] = 1.0 / LN_SD ** 2
            x0[i] = np.log(self.bg_start)
        return x0, P

    # -- model
    def _grid_cols(self, j: int):
        """Window columns spread at the offset grid point b0 + j h (cached)."""
        if j not in self._grid:
            R = self.resp.columns(b_ns=self.b0 + j * self.h_b)
            self._grid[j] = [R[k][:, self.win[e]] for k, e in zip(self.resp_idx, self.spectra)]
        return self._grid[j]

    def _offset_cols(self, b):
        """Window columns and their b-derivative at offset b: cubic Hermite (Catmull-Rom)
        interpolation between spreads on the fixed grid b0 + j h (Catmull & Rom, in *Computer
        Aided Geometric Design* (1974) 317), exact at the grid points. A fixed grid makes the
        model one smooth (C1) function of b, whatever the order of evaluation: a Taylor
        expansion re-centred where b wandered made the objective depend on the path and stalled
        the posterior maximisation's line search."""
        u = (b - self.b0) / self.h_b
        j = int(np.floor(u))
        t = u - j
        p0, p1, p2, p3 = (self._grid_cols(j + i) for i in (-1, 0, 1, 2))
        h00, h10, h01, h11 = 2 * t**3 - 3 * t**2 + 1, t**3 - 2 * t**2 + t, -2 * t**3 + 3 * t**2, t**3 - t**2
        d00, d10, d01, d11 = 6 * t**2 - 6 * t, 3 * t**2 - 4 * t + 1, -6 * t**2 + 6 * t, 3 * t**2 - 2 * t
        vals, ders = [], []
        for a0, a1, a2, a3 in zip(p0, p1, p2, p3):
            m1, m2 = 0.5 * (a2 - a0), 0.5 * (a3 - a1)
            vals.append(h00 * a1 + h10 * m1 + h01 * a2 + h11 * m2)
            ders.append((d00 * a1 + d10 * m1 + d01 * a2 + d11 * m2) / self.h_b)
        return vals, ders

    def _cols(self, b):
        if not self.fit_b:
            R = self.resp.columns(b_ns=b)
            return [R[k][:, self.win[e]] for k, e in zip(self.resp_idx, self.spectra)]
        return self._offset_cols(b)[0]

    def counts(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """{element: expected counts in its window} at x."""
        F = self.fractions(x)
        s = np.exp(x[self.i_s])
        out = {}
        for n, (e, i, Rw) in enumerate(zip(self.spectra, self.el_idx, self._cols(self.offset(x)))):
            out[e] = s * (F[i] @ Rw) + (np.exp(x[self.i_bg[n]]) if self.background else 0.0)
        return out

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(m, J): expected counts over all windows and dm/dx."""
        F = self.fractions(x)
        s = np.exp(x[self.i_s])
        b = self.offset(x)
        cols, dcols = self._offset_cols(b) if self.fit_b else (self._cols(b), None)
        n_d = self.d.size
        J = np.zeros((n_d, self.n_x))
        m = np.zeros(n_d)
        row = 0
        for n, (e, i, Rw) in enumerate(zip(self.spectra, self.el_idx, cols)):
            w = Rw.shape[1]
            sl = slice(row, row + w)
            base = s * F[i][:, None] * Rw  # (n_nodes, w): node contributions
            sig = base.sum(axis=0)
            m[sl] = sig
            # d f_i,k / d theta_j,k = f_i,k (delta_ij - f_j,k / g_k)
            for j in range(self.ne):
                c = -base * (F[j] / self.g)[:, None]
                if j == i:
                    c = c + base
                J[sl, j * self.nn:(j + 1) * self.nn] = c.T
            J[sl, self.i_s] = sig
            if self.fit_b:
                J[sl, self.i_b] = s * (F[i] @ dcols[n])
            if self.background:
                bg = np.exp(x[self.i_bg[n]])
                m[sl] += bg
                J[sl, self.i_bg[n]] = bg
            row += w
        return m, J
