"""What a fit varies: the parameter classes of :func:`recoilsim.fitting.driver.fit` and their validation.

:class:`Parameter` (a scalar: TOF calibration, Q*Omega scale), :class:`SlowParameter` (a parameter
that changes the stopping medium: layer thickness, stopping factor, composition),
:class:`ProfileShape` (a parametric profile fitted instead of free node values) and
:class:`FitParameters` (the whole set: profiled element and layer, depth nodes, regularisation,
windows, outer-loop controls).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import RecoilsimError
from .registry import display_name

__all__ = ["BACKGROUNDS", "FitParameters", "Parameter", "ProfileShape", "SlowParameter"]

#: the background models of a fit (None: no background)
BACKGROUNDS = (None, "constant", "linear")

TAIL_KINDS = ("timing_tail_ns", "timing_tail_fraction")  # slow kinds of the detector's timing tail


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
    (its atomic fraction), both applied as a one-node :class:`~recoilsim.model.sample.Profile` of that
    kind (the other elements share the remainder in their proportions); or the detector's timing
    tail, 'timing_tail_ns' (decay time, ns) or 'timing_tail_fraction' (its weight), which take no
    layer (the tail filter is applied to every model column, :mod:`recoilsim.forward.timing_response`).
    measurement : None (default): one value shared by all measurements; an index: the parameter
        acts on that measurement only (one SlowParameter per measurement for a per-measurement value).
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
    layer: int | str | None = None
    element: str | None = None
    value: float | None = None
    bounds: tuple = (0.0, np.inf)
    fixed: bool = False
    step: float | None = None
    measurement: int | None = None

    def __post_init__(self):
        if self.kind not in ("thickness", "stopping", "ratio", "fraction") + TAIL_KINDS:
            raise RecoilsimError("slow.kind", self.kind, "'thickness', 'stopping', 'ratio', 'fraction', "
                                 "'timing_tail_ns' or 'timing_tail_fraction'")
        if self.kind not in TAIL_KINDS and self.layer is None:
            raise RecoilsimError(f"slow[{self.kind}].layer", None, "the layer (index or name) it changes")
        if self.measurement is not None and (not isinstance(self.measurement, (int, np.integer)) or self.measurement < 0):
            raise RecoilsimError(f"slow[{self.kind}].measurement", self.measurement, "None (shared) or an index >= 0")
        if self.kind in ("ratio", "fraction") and not self.element:
            raise RecoilsimError(f"slow[{self.kind}].element", self.element, "the element whose amount is fitted")

    @property
    def key(self) -> tuple:
        """The quantity it changes, as a :mod:`recoilsim.fitting.registry` key."""
        if self.kind in TAIL_KINDS:
            return (self.kind,)
        if self.kind == "thickness":
            return ("thickness", self.layer)
        return ("stopping_factor" if self.kind == "stopping" else self.kind, self.layer, self.element)

    @property
    def name(self) -> str:
        """Table label (derived from the key; ``[m]`` appended for a per-measurement one)."""
        return display_name(self.key) + ("" if self.measurement is None else f"[{self.measurement}]")

    def acts_on(self, measurement: int) -> bool:
        """Whether it changes measurement ``measurement``'s experiment."""
        return self.measurement is None or int(self.measurement) == int(measurement)


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
    regularization : 'evidence' (default), 'gcv' or a number (lambda, 0 = none): strength of the
        second-difference smoothness penalty. 'evidence': the strength of largest Laplace evidence
        and the band mixed over strengths (:mod:`recoilsim.fitting.smoothing_evidence`); 'gcv':
        generalised cross-validation, band at that strength. The default is the one whose bands
        covered better (docs/depth_profiles.md, "The Li-profile fit").
    a, b : TOF calibration (ns/channel, ns), shared by default.
    scale : multiplier of Q * Omega (start 1), 'shared' or 'each'.
    slow : list of :class:`SlowParameter`.
    windows : channel windows: {element: (lo, hi)} for every measurement or
        {(i_measurement, element): (lo, hi)}; inclusive. Default: the profile element's channels
        that see the profile nodes (plus 5 channels each side); other elements: channels where the
        nominal model exceeds 1e-3 of its maximum.
    shape : a :class:`ProfileShape` fitted instead of free node values (the regularization is
        then unused: lambda = 0).
    background : None (default: no background, right for simulated spectra), 'constant' (a level
        in counts per channel per element window and measurement, fitted beside Q*Omega: the
        counts are linear in it) or 'linear' (a straight line in time from a level at the window's
        first channel to one at its last, both >= 0). Measured spectra hold
        random coincidences under every window; the measured-data workflows (the Potku film
        fit, the ``fit`` command) turn it on.
    background_start : {element or (measurement, element): counts per channel} start levels
        (e.g. from a random-coincidence estimate of an empty region of the TOF-E map); default:
        the mean count in the window's channels ahead of the leading edge
        (:func:`recoilsim.fitting.windows.background_start`).
    max_nfev : evaluations of one least-squares solve.
    relinearize : re-build every measurement's LinearModel at its fitted profile (the stopping
        of the fitted composition) and refit, until no profile value moves by more than
        ``relinearize_tol`` (ratio units) and no slow parameter by more than 5 % of its step or 20 %
        of its sigma,
        at most ``max_outer`` solves.
    inexact_outer : None (default) or a number of standard errors: for a caller that
        re-linearises from the result anyway (:func:`~recoilsim.fitting.film.fit_film`'s
        re-nominalisation, with its ``tol``). The outer loop then also stops once the slow
        parameters have moved by at least this many standard errors from the start and its last
        solve moved them by at most ``inexact_eta`` of that (an inexact inner solve:
        :func:`recoilsim.fitting.solver.outer_loop`); the fit says 'not_converged'.
    inexact_eta : the forcing term of ``inexact_outer`` (0 < eta < 1).
    """

    element: str = "Li"
    layer: int | str = 1
    depth_nm: Sequence[float] = field(default_factory=lambda: np.linspace(0.0, 58.8, 50))
    profile_value: float = 1.0
    profile_bounds: tuple = (0.0, np.inf)
    profile_fixed: bool = False
    regularization: str | float = "evidence"
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
    background: str | None = None
    background_start: Mapping = field(default_factory=dict)
    inexact_outer: float | None = None
    inexact_eta: float = 0.2

    def __post_init__(self):
        if self.inexact_outer is not None and not (isinstance(self.inexact_outer, (int, float))
                                                   and math.isfinite(self.inexact_outer) and self.inexact_outer > 0):
            raise RecoilsimError("inexact_outer", self.inexact_outer, "None or a number of standard errors > 0")
        if not (isinstance(self.inexact_eta, (int, float)) and 0.0 < self.inexact_eta < 1.0):
            raise RecoilsimError("inexact_eta", self.inexact_eta, "a number between 0 and 1 (exclusive)")
        if self.background not in BACKGROUNDS:
            raise RecoilsimError("background", self.background, f"one of {BACKGROUNDS}")
        for k, v in dict(self.background_start).items():
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise RecoilsimError(f"background_start[{k}]", v, "counts per channel >= 0")
