"""Fitting TOF-ERDA spectra: depth profile of one element (Li first) plus nuisance parameters.

Model
-----
Built on :class:`recoilsim.basis.LinearModel`: for a fixed stopping medium the counts of every
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
:func:`recoilsim.simulate.simulate` is reported (``attrs['full_model_max_rel_diff']``).

Statistics
----------
Poisson likelihood, minimised as the deviance
``D = 2 sum(m - d + d ln(d/m))`` (Baker & Cousins, NIM 221 (1984) 437) with
:func:`scipy.optimize.least_squares` on the signed deviance residuals
``r = sign(d - m) sqrt(2 (m - d + d ln(d/m)))`` (sum r^2 = D), analytic Jacobian for the profile
values and the scales, forward differences (re-spread only) for a and b. Goodness of fit:
D / dof and Pearson chi2 = sum (d - m)^2 / m with chi2 p-values, dof = n - p_eff with
p_eff = tr((F + P)^-1 F) the effective number of parameters.

Regularisation
--------------
Second-difference penalty ``lambda * sum_m ||L v_m||^2`` on each profile. The strength is
chosen by generalised cross-validation (Wahba 1977; Craven & Wahba 1979) on the
Poisson-weighted linearisation at an almost unregularised fit:
``GCV(lambda) = n D(lambda) / (n - p_eff(lambda))^2``; or given as a number (0: none).

Uncertainties
-------------
Covariance from the Fisher information of the Poisson model, F = J^T diag(1/m) J (J = dm/dp),
with the penalty added as a Gaussian smoothness prior: ``C = (F + P)^-1`` (the Bayesian
posterior covariance; with lambda = 0 it is the usual inverse Fisher matrix). With
regularisation the estimate is biased towards smooth profiles; C is wider than the frequentist
sandwich ``(F+P)^-1 F (F+P)^-1`` (also stored, ``sigma_sandwich``) and partly covers that bias,
but not fully. Measured (benchmarks/coverage_fit.py, 50 seeds, 50 nodes, interface excess, GCV):
1-sigma coverage 0.62 (Bayesian) / 0.58 (sandwich), 2-sigma 0.90 / 0.87; the smoothing flattens
the interface peak (mean z -2.0 at 0 nm, +0.6 at 15-25 nm). Without smoothing on a grid the
data resolve (7 nodes), the joint three-potential fit with free calibration, Q*Omega and Cu
thickness covers at 0.66 (1 sigma) and 0.93 (2 sigma) over 60 seeds x 21 nodes.
Second methods: parametric bootstrap (Poisson resamples of the fitted model, each refitted in
full from the solution) and MCMC of the posterior (:meth:`FitResult.sample_posterior`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import xarray as xr
from scipy import optimize, stats

from .basis import LinearModel
from .errors import RecoilsimError
from .experiment import Experiment

__all__ = ["Parameter", "SlowParameter", "ProfileShape", "FitParameters", "FitResult", "fit", "fit_command", "deviance"]

TINY = 1e-9  # counts: floor of the model inside a window (d ln(d/m) stays finite)


@dataclass
class Parameter:
    """A scalar fit parameter.

    value : starting value (None: from the experiment); bounds : (lo, hi); fixed : hold it;
    tie : 'shared' (one value for all measurements) or 'each' (one per measurement).
    """

    value: float | None = None
    bounds: tuple = (-np.inf, np.inf)
    fixed: bool = False
    tie: str = "shared"

    def __post_init__(self):
        if self.tie not in ("shared", "each"):
            raise RecoilsimError("parameter.tie", self.tie, "'shared' or 'each'")


@dataclass
class SlowParameter:
    """A parameter that changes the stopping medium (needs full re-simulations).

    kind : 'thickness' (layer thickness, nm), 'stopping' (stopping factor of ``element`` in the
    layer; all elements of the layer when ``element`` is None), or the layer's composition:
    'ratio' (a depth-constant multiplier of ``element``'s nominal atomic fraction) or 'fraction'
    (its atomic fraction), both applied as a one-node :class:`~recoilsim.sample.Profile` of that
    kind (the other elements share the remainder in their proportions). Shared by all measurements.
    step : finite-difference step (default 2 % of the value). The model is quadratic in the
        parameter through full simulations at value +- step (central difference), trusted
        within a trust region of up to 10 steps per solve (kept only where the full simulation's
        deviance went down) and re-centred until it moves by less than 5 % of a step or 20 % of a sigma.
        Choose it against two errors: a step that moves sharp edges by a good part of a channel
        biases the derivative (Cu over LiPON: 0.5 nm of Cu shifts the Li edge by 0.8 channel and
        the central difference is 4.5 % off, enough to move the joint three-potential fit by
        2 sigma; 0.15 nm: 0.4 %), while a tiny step amplifies the full model's own noise (a thin
        film re-grids its bricks as its thickness moves: +-0.5 in the deviance; the Potku film
        fit needs the 2 % default).
    """

    kind: str
    layer: int | str
    element: str | None = None
    value: float | None = None
    bounds: tuple = (0.0, np.inf)
    fixed: bool = False
    step: float | None = None

    def __post_init__(self):
        if self.kind not in ("thickness", "stopping", "ratio", "fraction"):
            raise RecoilsimError("slow.kind", self.kind, "'thickness', 'stopping', 'ratio' or 'fraction'")
        if self.kind in ("ratio", "fraction") and not self.element:
            raise RecoilsimError(f"slow[{self.kind}].element", self.element, "the element whose amount is fitted")

    @property
    def name(self) -> str:
        return f"{self.kind}[{self.layer}{',' + self.element if self.element else ''}]"


@dataclass
class ProfileShape:
    """A smooth parametric profile of the fitted element's ratio v(z) (z: nm from the layer top),
    fitted instead of free node values (the nodes of ``FitParameters.depth_nm`` then only carry
    its piecewise-linear interpolation: use a fine grid, e.g. every 1-2 nm).

    kind 'exp' (interface excess decaying into the layer):
        v = level + amplitude * exp(-max(z - position, 0) / length)
    kind 'erf' (a smooth step at ``position`` of width ``length``):
        v = level + amplitude * erfc((z - position) / length) / 2
    Each parameter is a :class:`Parameter` (start, bounds, fixed), one per measurement. The
    model's columns for them follow by the chain rule from the node columns (analytic dv/dtheta).
    """

    kind: str = "exp"
    level: Parameter = field(default_factory=lambda: Parameter(1.0, (0.0, np.inf)))
    amplitude: Parameter = field(default_factory=lambda: Parameter(0.1, (-1.0, 10.0)))
    length: Parameter = field(default_factory=lambda: Parameter(10.0, (0.3, 500.0)))
    position: Parameter = field(default_factory=lambda: Parameter(0.0, (0.0, 1000.0), fixed=True))

    NAMES = ("level", "amplitude", "length", "position")

    def __post_init__(self):
        if self.kind not in ("exp", "erf"):
            raise RecoilsimError("shape.kind", self.kind, "'exp' or 'erf'")

    def values_and_grad(self, z, th):
        """v(z) and dv/d(level, amplitude, length, position), shape (n_z, 4)."""
        from scipy.special import erfc
        lev, amp, L, z0 = (float(t) for t in th)
        L = max(L, 1e-12)
        g = np.zeros((z.size, 4))
        g[:, 0] = 1.0
        if self.kind == "exp":
            t = np.maximum(z - z0, 0.0)
            e = np.exp(-t / L)
            g[:, 1] = e
            g[:, 2] = amp * e * t / L ** 2
            g[:, 3] = np.where(z > z0, amp * e / L, 0.0)
        else:
            u = (z - z0) / L
            k = np.exp(-u * u) / math.sqrt(math.pi)
            g[:, 1] = 0.5 * erfc(u)
            g[:, 2] = amp * k * u / L
            g[:, 3] = amp * k / L
        return lev + amp * g[:, 1], g


@dataclass
class FitParameters:
    """What to fit.

    element, layer : the profiled element and its layer (index or name).
    depth_nm : profile nodes (nm from the top of the layer); values are ratios to the nominal
        atomic fraction (``Profile(kind='ratio')``), piecewise linear, end values held beyond.
    profile_value, profile_bounds, profile_fixed : start, bounds (>= 0) and fixing of the values.
    regularization : 'gcv' or a number (lambda, 0 = none), second-difference smoothness penalty.
    a, b : TOF calibration (ns/channel, ns), shared by default.
    scale : multiplier of Q * Omega (start 1), 'shared' or 'each'.
    slow : list of :class:`SlowParameter`.
    windows : channel windows: {element: (lo, hi)} for every measurement or
        {(i_measurement, element): (lo, hi)}; inclusive. Default: the profile element's channels
        that see the profile nodes (plus 5 channels each side); other elements: channels where the
        nominal model exceeds 1e-3 of its maximum.
    shape : a :class:`ProfileShape` fitted instead of free node values (the regularization is
        then unused: lambda = 0).
    max_nfev : evaluations of one least-squares solve.
    relinearize : re-build every measurement's LinearModel at its fitted profile (the stopping
        of the fitted composition) and refit, until no profile value moves by more than
        ``relinearize_tol`` (ratio units) and no slow parameter by more than 5 % of its step or 20 %
        of its sigma,
        at most ``max_outer`` solves.
    """

    element: str = "Li"
    layer: int | str = 1
    depth_nm: Sequence[float] = field(default_factory=lambda: np.linspace(0.0, 58.8, 50))
    profile_value: float = 1.0
    profile_bounds: tuple = (0.0, np.inf)
    profile_fixed: bool = False
    regularization: str | float = "gcv"
    a: Parameter = field(default_factory=Parameter)
    b: Parameter = field(default_factory=Parameter)
    scale: Parameter = field(default_factory=lambda: Parameter(1.0, (0.0, np.inf)))
    slow: list = field(default_factory=list)
    windows: Mapping = field(default_factory=dict)
    max_nfev: int = 100
    relinearize: bool = True
    relinearize_tol: float = 0.01
    stopping_jacobian: bool = True
    max_outer: int = 12
    shape: ProfileShape | None = None


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
        from .sample import Profile
        profs = [q for q in lay.profiles if q.element != sp.element] + \
            [Profile(sp.element, [0.0], [float(value)], kind=sp.kind, depth_unit="1e15")]
        kw = dict(profiles=profs)
        if lay.thickness_nm is not None:
            kw.update(thickness_nm=lay.thickness_nm, areal_density_1e15=None)
        new = dataclasses.replace(lay, **kw)
    else:
        els = [sp.element] if sp.element else list(lay.fractions)
        sf = dict(lay.stopping_factors)
        for el in els:
            sf[el] = float(value)
        kw = dict(stopping_factors=sf)
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
            A, c = self.models[self.group[m]][0].columns()
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
        self.nfree = int(self.free.sum())

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
        ev, cache = self._eval(p)
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


# ----------------------------------------------------------------------------- result

class FitResult:
    """Outcome of :func:`fit`.

    Attributes
    ----------
    status : str -- 'success', 'not_converged', 'no_counts', 'no_effect', 'degenerate' (Fisher matrix
        singular), 'correlated' (two free parameters with |rho| > 0.99, at least one not a profile
        value: the message names them, a RuntimeWarning says the same; the dataset is complete
        and ``attrs['strong_correlations']`` lists the pairs)
    success : bool
    message : str
    dataset : xarray.Dataset -- profile(measurement, depth) with sigma / bootstrap sigma, every
        parameter with error, measured / fitted spectra and deviance residuals per
        (measurement, element, channel) (NaN outside the windows), covariance and correlation;
        goodness of fit in attrs.
    """

    def __init__(self, status, message, dataset=None, problem=None):
        self.status = status
        self.success = status == "success"
        self.message = message
        self.dataset = dataset
        self._problem = problem

    def __repr__(self):
        return f"FitResult(status={self.status!r}, message={self.message!r})"

    @property
    def profile(self):
        return None if self.dataset is None else self.dataset["profile"]

    def table_rows(self) -> list[tuple]:
        ds = self.dataset
        rows = []
        for n, v, s in zip(ds["parameter"].values, ds["value"].values, ds["sigma"].values):
            rows.append((str(n), float(v), float(s)))
        return rows

    def summary(self, print_it: bool = True, max_rows: int = 40) -> str:
        """A table of the parameters and the goodness of fit (printed with rich)."""
        from rich.console import Console
        from rich.table import Table
        t = Table(title=f"recoilsim fit: {self.status}")
        for c in ("parameter", "value", "sigma", "free"):
            t.add_column(c)
        if self.dataset is not None:
            ds = self.dataset
            for i, (n, v, s) in enumerate(self.table_rows()):
                if i >= max_rows:
                    t.add_row("...", "", "", "")
                    break
                t.add_row(n, f"{v:.6g}", f"{s:.3g}", str(bool(ds["free"].values[i])))
        con = Console(record=True, width=100)
        con.print(t)
        con.print(self.message)
        if self.dataset is not None:
            a = self.dataset.attrs
            con.print(f"deviance {a['deviance']:.2f} / dof {a['dof']:.1f} = {a['deviance'] / max(a['dof'], 1):.3f} "
                      f"(p = {a['p_deviance']:.3g}); Pearson chi2 {a['pearson_chi2']:.2f} (p = {a['p_pearson']:.3g}); "
                      f"lambda = {a['lambda']:.3g} ({a['lambda_criterion']})")
        text = con.export_text()
        if print_it:
            print(text)
        return text

    def plot(self, path):
        """Data, model and residuals per spectrum; profile(s) with the 1-sigma band."""
        from .fit_plots import plot_fit
        return plot_fit(self, path)

    def sample_posterior(self, n_steps: int = 3000, n_burn: int = 1000, n_walkers: int | None = None,
                         seed: int | None = 0, progress: bool = False) -> xr.Dataset:
        """A second uncertainty estimate: MCMC (emcee's affine-invariant ensemble sampler,
        Foreman-Mackey et al., PASP 125 (2013) 306) of the Poisson posterior around the fit.

        Log-posterior: the Poisson log-likelihood sum(d ln m - m) of the fitted model, minus
        the smoothness penalty / 2, flat within the parameter bounds. The model is the fit's
        final one: linear in the profile values (exact for the LinearModel at the fitted
        composition), exact in Q*Omega (m = s u), first order in the calibration and the slow
        parameters (their columns at the solution) -- so each step costs one matrix product
        and the sampler tests what the Jacobian band assumes (Gaussian likelihood, no bounds),
        not the non-linearity in a, b or thicknesses.

        Adds to the dataset (and returns it): ``profile_mcmc_median``, ``profile_mcmc_lo`` /
        ``_hi`` (15.87 / 84.13 % quantiles), ``profile_sigma_mcmc`` (half their distance),
        ``sigma_mcmc`` per parameter; attrs ``mcmc_acceptance``, ``mcmc_autocorr_steps`` (the
        largest integrated autocorrelation time, emcee's estimate), ``mcmc_samples``.
        Cost grows as walkers x data x free parameters per step: seconds for tens of free
        parameters; slow for 150.
        """
        import emcee

        if self.dataset is None:
            raise RecoilsimError("sample_posterior", self.status, "a fit result with a dataset")
        prob = self._problem
        ds = self.dataset
        p0 = ds["value"].values.astype(float)
        fr = prob.free.copy()
        d = prob.dvec()
        J, m0 = prob.jac_model(p0)
        # per-row scale parameter
        s_idx = np.concatenate([np.full(w.size, prob.i_s[mi]) for mi in range(prob.M) for w in prob.win[mi].values()])
        is_scale = np.zeros(p0.size, bool)
        is_scale[list(set(prob.i_s))] = True
        s0 = p0[s_idx]
        u0 = m0 / s0
        Ju = (J / s0[:, None])[:, fr & ~is_scale]  # du/dp for the non-scale free parameters
        cols = np.nonzero(fr & ~is_scale)[0]
        free_idx = np.nonzero(fr)[0]
        P = prob.penalty_matrix()
        lo, hi = prob.lo[fr], prob.hi[fr]
        ndim = int(fr.sum())
        nw = n_walkers or max(2 * ndim + 2, 32)
        nw += nw % 2

        def log_prob(X):
            X = np.atleast_2d(X)
            full = np.repeat(p0[None, :], X.shape[0], axis=0)
            full[:, fr] = X
            u = u0[None, :] + (full[:, cols] - p0[cols]) @ Ju.T
            m = full[:, s_idx] * u
            ok = np.all((X >= lo) & (X <= hi), axis=1) & np.all(m > 0, axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                ll = np.sum(d * np.log(np.where(m > 0, m, 1.0)) - m, axis=1)
                pen = 0.5 * np.einsum("ij,jk,ik->i", full, P, full)
            return np.where(ok, ll - pen, -np.inf)

        C = ds["covariance"].values[np.ix_(fr, fr)]
        rng = np.random.default_rng(seed)
        try:
            start = rng.multivariate_normal(p0[fr], C, size=nw, method="eigh")
        except (np.linalg.LinAlgError, ValueError):
            start = p0[fr] + 1e-3 * rng.standard_normal((nw, ndim)) * np.maximum(np.abs(p0[fr]), 1e-3)
        span = 1e-9 * np.where(np.isfinite(hi - lo), hi - lo, 1.0)
        start = np.clip(start, lo + span, hi - span)
        for _ in range(50):  # every walker must start where the posterior is > 0
            bad = ~np.isfinite(log_prob(start))
            if not bad.any():
                break
            start[bad] = p0[fr] + 0.5 * (start[bad] - p0[fr])
        sampler = emcee.EnsembleSampler(nw, ndim, log_prob, vectorize=True)
        sampler.random_state = np.random.RandomState(seed).get_state()  # reproducible moves
        sampler.run_mcmc(start, n_steps, progress=progress)
        chain = sampler.get_chain(discard=n_burn, flat=True)
        full = np.repeat(p0[None, :], chain.shape[0], axis=0)
        full[:, fr] = chain
        q = np.percentile(full, [15.87, 50.0, 84.13], axis=0)
        try:
            tau = float(np.max(sampler.get_autocorr_time(discard=n_burn, quiet=True)))
        except Exception:  # noqa: BLE001 - emcee raises its own error type for short chains
            tau = float("nan")
        ds["profile_mcmc_median"] = (("measurement", "depth"), np.array([q[1][ip] for ip in prob.i_prof]))
        ds["profile_mcmc_lo"] = (("measurement", "depth"), np.array([q[0][ip] for ip in prob.i_prof]))
        ds["profile_mcmc_hi"] = (("measurement", "depth"), np.array([q[2][ip] for ip in prob.i_prof]))
        ds["profile_sigma_mcmc"] = (("measurement", "depth"), 0.5 * (ds["profile_mcmc_hi"].values - ds["profile_mcmc_lo"].values))
        ds["sigma_mcmc"] = ("parameter", np.where(prob.free, 0.5 * (q[2] - q[0]), 0.0))
        ds.attrs.update(mcmc_acceptance=float(np.mean(sampler.acceptance_fraction)), mcmc_autocorr_steps=tau,
                        mcmc_samples=int(chain.shape[0]), mcmc_walkers=int(nw),
                        mcmc_method="emcee ensemble sampler on the fit's linearised Poisson posterior")
        return ds


RHO_MAX = 0.99  # |correlation| above which two parameters count as not separable


def _strong_correlations(prob, C, fr) -> list:
    """Pairs of free parameters with |rho| > RHO_MAX, at least one of them not a profile value
    (neighbouring profile values are correlated by design; the smoothing prior handles them),
    and not the calibration pair a, b (offset and gain are anticorrelated ~ -0.99 by their
    parametrisation t = a ch + b with ch ~ 500-1000, while the times they give are well fixed)."""
    if not np.all(np.isfinite(C)):
        return []
    sd = np.sqrt(np.maximum(np.diag(C), 1e-300))
    with np.errstate(over="ignore", invalid="ignore"):
        R = C / np.outer(sd, sd)
    names = np.array(prob.names)[fr]
    prof = np.zeros(prob.p.size, bool)
    for ip in prob.i_prof:
        prof[ip] = True
    prof = prof[fr]
    out = []
    for i in range(R.shape[0]):
        for j in range(i + 1, R.shape[0]):
            calib = {names[i].split("[")[0], names[j].split("[")[0]} == {"a_ns", "b_ns"}
            if abs(R[i, j]) > RHO_MAX and not (prof[i] and prof[j]) and not calib:
                out.append((str(names[i]), str(names[j]), float(R[i, j])))
    return sorted(out, key=lambda t: -abs(t[2]))


def _fail(status, msg, problem=None):
    return FitResult(status, msg, None, problem)


def _choose_lambda(prob: _Problem, d, p0, J, m):
    """GCV on the Poisson-weighted linearisation at an (almost) unregularised solution p0."""
    fr = prob.free
    Jw = (J / np.sqrt(np.maximum(m, TINY))[:, None])[:, fr]
    F = Jw.T @ Jw
    P1 = np.zeros((prob.p.size, prob.p.size))
    for ip in prob.i_prof:
        P1[np.ix_(ip, ip)] += prob.L.T @ prob.L
    P1 = P1[np.ix_(fr, fr)]
    x0 = p0[fr]
    r0 = (d - m) / np.sqrt(np.maximum(m, TINY))
    n = d.size
    scale = np.trace(F) / max(np.trace(P1), 1e-300)
    best = (np.inf, 0.0)
    grid = scale * np.logspace(-6, 4, 41)
    for lam in grid:
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


def _one_blas_thread():
    """Context that holds BLAS to one thread (threadpoolctl; a no-op without it).

    The fit's matrices are small (a few thousand rows, < 200 columns): OpenBLAS threads gain
    nothing there and, on a shared 2-core machine, spin against the other processes. Measured on
    the reference fit benchmark: 0.14 s with one thread; 0.25-0.37 s with two while another
    process ran, and 0.5-4.8 s (median 2.9 s, the old benchmark figure) under heavier load.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def fit(experiment, measured, parameters: FitParameters | None = None, n_bootstrap: int = 0,
        seed: int | None = 0, progress: bool = False, verify: bool = True) -> FitResult:
    """Fit measured spectra (see :func:`_fit`; BLAS held to one thread while it runs)."""
    with _one_blas_thread():
        return _fit(experiment, measured, parameters, n_bootstrap, seed, progress, verify)


def _fit(experiment, measured, parameters: FitParameters | None = None, n_bootstrap: int = 0,
         seed: int | None = 0, progress: bool = False, verify: bool = True) -> FitResult:
    """Fit measured spectra.

    Parameters
    ----------
    experiment : Experiment or list of Experiment
        One experiment for all measurements, or one per measurement (same instrument and
        layer structure; profiles of the fitted element are ignored: they are what is fitted).
    measured : spectra of one measurement or a list of them
        Each: {element: counts}, an xarray DataArray (dims element, channel or channel with an
        element name) or a Dataset with ``counts`` (as :func:`simulate` returns).
    parameters : FitParameters
    n_bootstrap : int
        Parametric bootstrap resamples (full refits) for the second uncertainty estimate.
    verify : bool
        Run a full :func:`simulate` with the fitted profile and store the largest relative
        difference to the fitted model in the windows (``attrs['full_model_max_rel_diff']``).

    Returns
    -------
    FitResult
    """
    t_start = time.perf_counter()
    par = parameters or FitParameters()
    if isinstance(measured, (list, tuple)):
        meas = list(measured)
    else:
        meas = [measured]
    if not meas:
        raise RecoilsimError("measured", measured, "at least one spectrum")
    exps = list(experiment) if isinstance(experiment, (list, tuple)) else [experiment] * len(meas)
    if len(exps) != len(meas):
        raise RecoilsimError("experiment", f"{len(exps)} experiments", f"one per measurement ({len(meas)})")
    for e in exps:
        if not isinstance(e, Experiment):
            raise RecoilsimError("experiment", type(e).__name__, "an Experiment")
    reg = par.regularization
    if not (reg == "gcv" or (isinstance(reg, (int, float)) and reg >= 0)):
        raise RecoilsimError("regularization", reg, "'gcv' or a number >= 0")
    for sp in par.slow:
        if sp.kind in ("ratio", "fraction") and sp.element == par.element:
            raise RecoilsimError(f"slow[{sp.name}]", sp.element,
                                 f"an element other than the profiled one ({par.element}: fit it with the profile)")
    n_ch = exps[0].detector.n_channels
    els = list(exps[0].recoils)
    data = [_as_spectra(m, els, n_ch, i) for i, m in enumerate(meas)]
    for i, dm in enumerate(data):
        if not dm:
            raise RecoilsimError(f"measured[{i}]", dm, "at least one element spectrum")
    if par.shape is not None:
        if not isinstance(par.shape, ProfileShape):
            raise RecoilsimError("shape", type(par.shape).__name__, "a ProfileShape or None")
        reg = 0.0  # the shape is the smoothness
    lam0 = 1e-9 if reg == "gcv" else float(reg)
    prob = _Problem(exps, data, par, lam0)
    d = prob.dvec()
    # -- plain failures before fitting
    if d.sum() <= 0:
        wins = ", ".join(f"{m}:{e}[{w[0]}..{w[-1]}]" if w.size else f"{m}:{e}[empty]"
                         for m in range(prob.M) for e, w in prob.win[m].items())
        return _fail("no_counts", f"no counts in the fit windows ({wins}); nothing to fit", prob)
    for mi in range(prob.M):
        if prob.el in prob.win[mi] and data[mi][prob.el][prob.win[mi][prob.el]].sum() <= 0:
            return _fail("no_counts", f"measurement {mi}: no {prob.el} counts in its window; the profile cannot be fitted",
                         prob)
    J0, m0 = prob.jac_model(prob.p)
    colnorm = np.sqrt((J0 ** 2 / np.maximum(m0, TINY)[:, None]).sum(0))
    ref = np.median(colnorm[prob.free & (colnorm > 0)]) if np.any(prob.free & (colnorm > 0)) else 1.0
    dead = [prob.names[j] for j in np.nonzero(prob.free)[0] if colnorm[j] <= 1e-10 * ref]
    if dead:
        return _fail("no_effect", f"{len(dead)} free parameter(s) have no effect on the spectra in the windows "
                     f"(zero Jacobian column): {', '.join(dead[:8])}{' ...' if len(dead) > 8 else ''}; "
                     "fix them, move the depth nodes into the probed range or widen the windows", prob)
    # -- fit (outer loop: slow parameters and re-linearisation). With free slow parameters the
    # outer loop is a trust-region method on the full model: a solve may move each slow
    # parameter by prob.radius steps; the step is kept only if the full simulation's objective
    # went down (else the radius shrinks 4x), and the radius doubles (up to 10) when a step
    # reached it. This keeps strongly coupled slow parameters (film thickness and composition)
    # from swinging between the bounds of the quadratic model.
    criterion = "given"
    sol = None
    outer_ok = True
    slow_free = any(prob.free[i] for i in prob.i_slow)
    f_acc = None
    for it in range(par.max_outer):
        sol, p = prob.solve(d, None)
        if it == 0 and reg == "gcv":
            J, m = prob.jac_model(p)
            prob.lam = _choose_lambda(prob, d, p, J, m)
            criterion = "generalized cross-validation"
            sol, p = prob.solve(d, None)
        if slow_free:
            if f_acc is None:
                f_acc = prob.full_objective(d, prob.p)
            f_new = prob.full_objective(d, p)
            if f_new > f_acc + 0.5 and prob.radius > 0.05:  # 0.5: the full model's own noise (thin
                # films re-grid their bricks as the thickness moves: +-0.5 in the deviance)
                prob.radius /= 4.0  # rejected: same centre, smaller region
                outer_ok = False
                continue
            x = max(abs(p[i] - s0) / h for i, s0, h in zip(prob.i_slow, prob.slow0, prob.slow_h))
            if x >= 0.99 * prob.radius:
                prob.radius = min(2.0 * prob.radius, 10.0)
            f_acc = f_new
        prob.p = p
        # rebuild the models where the solution left the linearisation point: a slow parameter
        # moved by more than 5 % of its step, or a profile value by more than relinearize_tol.
        # Once the full model's noise has rejected a step (radius < 10), a move below 20 % of
        # the parameter's sigma also counts as settled (a thin film's re-gridded bricks make
        # +-0.5 of deviance noise that no smaller move can beat).
        moves = [abs(p[i] - s0) / h for i, s0, h in zip(prob.i_slow, prob.slow0, prob.slow_h)]
        if prob.radius < 10.0 and moves:
            moves = [min(x, 0.25 * abs(p[i] - s0) / sg)
                     for x, i, s0, sg in zip(moves, prob.i_slow, prob.slow0, prob.slow_sigma(d, p))]
        moved = max(moves, default=0.0)
        rebase = par.relinearize and prob.relinearize(p, par.relinearize_tol)
        outer_ok = moved <= 0.05
        if outer_ok and not rebase:
            break
        if it == par.max_outer - 1:
            if not outer_ok:  # centre the models at the last solution: the covariance (and the
                prob.build_models()  # correlations that explain the wandering) are then local
            break
        prob.build_models()
        if par.relinearize and par.stopping_jacobian:
            # at every re-centring: the correction lives on channels, and a moved thickness or
            # calibration moves the features under it (stale, it made the fit creep)
            prob.stopping_columns(p)
    prob.outer = dict(iterations=int(it + 1), converged=bool(outer_ok))
    return _finish(prob, d, sol, criterion, n_bootstrap, seed, progress, verify, t_start)


def _finish(prob, d, sol, criterion, n_bootstrap, seed, progress, verify, t_start):
    p = prob.p
    fr = prob.free
    J, m = prob.jac_model(p)
    Jw = (J / np.sqrt(np.maximum(m, TINY))[:, None])[:, fr]
    F = Jw.T @ Jw
    P = prob.penalty_matrix()[np.ix_(fr, fr)]
    H = F + P
    status, msg = "success", sol.message
    ev = np.linalg.eigvalsh(H / np.sqrt(np.outer(np.diag(H), np.diag(H)) + 1e-300))
    cond = ev[-1] / max(ev[0], 1e-300)
    try:
        C = np.linalg.inv(H)
        Csand = C @ F @ C
    except np.linalg.LinAlgError:
        C = np.full_like(H, np.nan)
        Csand = C
    if cond > 1e12 or not np.all(np.isfinite(C)):
        w, V = np.linalg.eigh(H / np.sqrt(np.outer(np.diag(H), np.diag(H)) + 1e-300))
        null = V[:, 0]
        names = np.array(prob.names)[fr][np.argsort(-np.abs(null))[:4]]
        status = "degenerate"
        msg = ("the free parameters are not all identifiable from these spectra (Fisher matrix condition "
               f"{cond:.3g}); the combination involves {', '.join(names)}; fix one of them or add spectra "
               "(e.g. other elements to pin Q*Omega)")
    elif not sol.success or sol.status == 0:
        status = "not_converged"
        msg = f"the minimiser did not converge ({sol.message}; {sol.nfev} evaluations)"
    elif not getattr(prob, "outer", {}).get("converged", True):
        status = "not_converged"
        msg = (f"the slow parameters were still moving after {prob.outer['iterations']} re-simulations "
               "(max_outer): the result is not at the linearisation point; raise max_outer or start closer")
    pairs = _strong_correlations(prob, C, fr) if status != "degenerate" else []
    if pairs and status in ("success", "not_converged"):
        txt = "; ".join(f"{a} ~ {b} (rho = {r:+.4f})" for a, b, r in pairs[:4])
        msg = (f"{len(pairs)} pair(s) of free parameters are almost perfectly correlated (|rho| > {RHO_MAX}): {txt}. "
               "The data fix only their combination; their separate values and sigmas mean little: fix one of each "
               "pair (e.g. a known thickness) or add data that separate them"
               + (f" (the fit did not settle either: {msg})" if status == "not_converged" else ""))
        status = "correlated"
        warnings.warn(msg, RuntimeWarning, stacklevel=3)
    dev = deviance(d, m)
    pearson = float(np.sum((d - m) ** 2 / np.maximum(m, TINY)))
    p_eff = float(np.trace(np.linalg.solve(H, F))) if status != "degenerate" else float(fr.sum())
    dof = max(d.size - p_eff, 1.0)
    # bootstrap
    boot = None
    if n_bootstrap and status == "success":
        rng = np.random.default_rng(seed)
        boot = np.zeros((n_bootstrap, p.size))
        it = range(n_bootstrap)
        if progress:
            from rich.progress import track
            it = track(it, description="bootstrap")
        saved = p.copy()
        for k in it:
            dk = rng.poisson(m).astype(float)
            _, pk = prob.solve(dk, saved[fr].copy(), max_nfev=30)
            boot[k] = pk
            prob.p = saved
    ds = _dataset(prob, d, p, C, Csand, fr, boot)
    ds.attrs.update(
        status=status, message=str(msg), deviance=dev, pearson_chi2=pearson, dof=dof, p_eff=p_eff,
        n_data=int(d.size), p_deviance=float(stats.chi2.sf(dev, dof)), p_pearson=float(stats.chi2.sf(pearson, dof)),
        reduced_deviance=dev / dof, **{"lambda": prob.lam}, lambda_criterion=criterion, nfev=int(sol.nfev),
        fisher_condition=float(cond),
        strong_correlations=json.dumps(pairs),
        uncertainty="sigma: sqrt(diag((F + P)^-1)), F = J^T diag(1/m) J Poisson Fisher information, P = lambda L^T L "
                    "smoothness prior; sigma_sandwich: (F+P)^-1 F (F+P)^-1 (frequentist, excludes regularisation bias)",
        likelihood="Poisson deviance 2 sum(m - d + d ln(d/m)) (Baker & Cousins 1984), scipy least_squares on signed "
                   "deviance residuals",
    )
    if verify and status == "success":
        ds.attrs["full_model_max_rel_diff"] = _verify(prob, p)
    ds.attrs["fit_time_s"] = time.perf_counter() - t_start
    if status == "success":
        msg = f"converged ({sol.message.strip()})"
    if verify and status == "correlated":
        ds.attrs["full_model_max_rel_diff"] = _verify(prob, p)
    return FitResult(status, str(msg), ds, prob)


def fitted_experiment(prob: _Problem, p, mi: int) -> Experiment:
    """The experiment of measurement ``mi`` with the fitted profile, slow parameters, calibration, Q*Omega."""
    from .sample import Profile
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
    from .kernels.slab import spread_bricks
    from .simulate import prepare, run_bricks
    arrays = prepare(exp)
    n, ta, tb, Y, sig_t = run_bricks(arrays)[:5]
    det = exp.detector
    spec = np.zeros((len(arrays.species), det.n_channels))
    spread_bricks(ta, tb, Y, sig_t, n, det.calibration_a_ns, det.calibration_b_ns, det.n_channels,
                  exp.options.resolution, spec)
    out = {}
    for sp, row in zip(arrays.species, spec):
        if sp.kind == 0 and sp.element in win:
            out[sp.element] = out.get(sp.element, 0.0) + row[win[sp.element]]
    return out


def _verify(prob, p) -> float:
    """Largest |full simulation - fitted model| / max(fitted model, 1) over the windows."""
    from .simulate import simulate
    worst = 0.0
    mod = prob.model(p)
    for mi in range(prob.M):
        ds = simulate(fitted_experiment(prob, p, mi))
        for e, w in prob.win[mi].items():
            full = ds["counts"].sel(element=e).values[w]
            dm = np.abs(full - mod[mi][e]) / np.maximum(np.abs(mod[mi][e]).max(), 1.0)
            worst = max(worst, float(dm.max()) if dm.size else 0.0)
    return worst


def _dataset(prob, d, p, C, Csand, fr, boot):
    n_full = p.size
    cov = np.zeros((n_full, n_full))
    cov[np.ix_(fr, fr)] = C
    covs = np.zeros((n_full, n_full))
    covs[np.ix_(fr, fr)] = Csand
    if prob.i_shape:  # profile values derived from the shape: propagate (delta method)
        T = prob.shape_map(p)
        cov, covs = T @ cov @ T.T, T @ covs @ T.T
    sig = np.sqrt(np.maximum(np.diag(cov), 0))
    sigs = np.sqrt(np.maximum(np.diag(covs), 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sig, sig)
    prof = np.array([p[ip] for ip in prob.i_prof])
    psig = np.array([sig[ip] for ip in prob.i_prof])
    psigs = np.array([sigs[ip] for ip in prob.i_prof])
    n_ch = prob.exps[0].detector.n_channels
    els = sorted({e for w in prob.win for e in w}, key=lambda e: (e != prob.el, e))
    meas = np.full((prob.M, len(els), n_ch), np.nan)
    fitm = np.full_like(meas, np.nan)
    mod = prob.model(p)
    for mi in range(prob.M):
        for e, w in prob.win[mi].items():
            k = els.index(e)
            meas[mi, k] = prob.data[mi][e]
            fitm[mi, k, w] = mod[mi][e]
    with np.errstate(invalid="ignore", divide="ignore"):
        r, _ = _dev_res(np.nan_to_num(meas), np.nan_to_num(fitm, nan=1.0))
    resid = np.where(np.isnan(fitm), np.nan, r)
    ds = xr.Dataset(
        {
            "profile": (("measurement", "depth"), prof),
            "profile_sigma": (("measurement", "depth"), psig),
            "profile_sigma_sandwich": (("measurement", "depth"), psigs),
            "value": ("parameter", p),
            "sigma": ("parameter", sig),
            "sigma_sandwich": ("parameter", sigs),
            "free": ("parameter", fr),
            "lower": ("parameter", prob.lo),
            "upper": ("parameter", prob.hi),
            "covariance": (("parameter", "parameter2"), cov),
            "correlation": (("parameter", "parameter2"), corr),
            "measured": (("measurement", "element", "channel"), meas),
            "fitted": (("measurement", "element", "channel"), fitm),
            "residual": (("measurement", "element", "channel"), resid),
        },
        coords={"measurement": np.arange(prob.M), "depth_nm": ("depth", prob.nodes), "parameter": prob.names,
                "parameter2": prob.names, "element": els, "channel": np.arange(n_ch)},
    )
    ds["profile"].attrs.update(long_name=f"{prob.el} ratio to the nominal atomic fraction", units="1")
    ds["residual"].attrs.update(long_name="signed Poisson deviance residual")
    if boot is not None:
        ds["profile_sigma_bootstrap"] = (("measurement", "depth"), np.array([boot[:, ip].std(0, ddof=1) for ip in prob.i_prof]))
        ds["profile_bootstrap_lo"] = (("measurement", "depth"), np.array([np.percentile(boot[:, ip], 15.87, 0) for ip in prob.i_prof]))
        ds["profile_bootstrap_hi"] = (("measurement", "depth"), np.array([np.percentile(boot[:, ip], 84.13, 0) for ip in prob.i_prof]))
        ds["sigma_bootstrap"] = ("parameter", boot.std(0, ddof=1))
        ds.attrs["n_bootstrap"] = int(boot.shape[0])
    return ds


def fit_command(experiment_path, spectra_paths: Sequence, out_dir, element: str = "Li", layer: int | str = 1,
                depth_max_nm: float = 60.0, n_nodes: int = 50, n_bootstrap: int = 0) -> FitResult:
    """CLI back end: load an experiment (TOML) and spectra files, fit, write result.nc, summary.txt, fit.png.

    Each spectra path is one measurement: a netCDF written by ``simulate`` (variable ``counts``)
    or a two-column text file (channel, counts) of the profiled element.
    """
    from pathlib import Path
    from .config import load_experiment
    exp = load_experiment(experiment_path)
    meas = []
    for sp in spectra_paths:
        sp = Path(sp)
        if sp.suffix in (".nc", ".nc4", ".netcdf"):
            meas.append(xr.load_dataset(sp)["counts"])
        else:
            arr = np.loadtxt(sp, comments="#", delimiter=None if sp.suffix != ".csv" else ",")
            cnt = np.zeros(exp.detector.n_channels)
            cnt[arr[:, 0].astype(int)] = arr[:, 1]
            meas.append({element: cnt})
    par = FitParameters(element=element, layer=layer, depth_nm=np.linspace(0, depth_max_nm, n_nodes))
    res = fit(exp, meas, par, n_bootstrap=n_bootstrap, progress=True)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.txt").write_text(res.summary(print_it=True))
    if res.dataset is not None:
        res.dataset.to_netcdf(out / "fit.nc")
        res.plot(out / "fit.png")
    return res
