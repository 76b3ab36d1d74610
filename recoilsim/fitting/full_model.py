"""The full forward model at a fit's parameter vector.

:func:`experiment_at` is the experiment of one measurement at a parameter vector (slow
parameters, profile, calibration and Q*Omega set through :mod:`recoilsim.fitting.registry`, a new
Experiment; the inputs are not changed); :func:`window_spectra` its counts in the fit windows
(the full simulation, no xarray; a fitted background is added by the callers);
:func:`full_objective` the deviance of the full simulation (the
trust region's judge) and :func:`max_model_difference` how far the fitted (linearised) model lies
from it.
"""

from __future__ import annotations

import numpy as np

from ..model.experiment import Experiment
from .likelihood import deviance
from .registry import ExperimentEdit

__all__ = ["experiment_at", "full_objective", "max_model_difference", "window_spectra"]


def experiment_at(prob, p, mi: int) -> Experiment:
    """The experiment of measurement ``mi`` at parameter vector ``p`` of a
    :class:`~recoilsim.fitting.problem.Problem`: fitted profile, slow parameters, calibration and
    Q*Omega (as the fluence)."""
    vec = prob.vec
    edit = ExperimentEdit(prob.exps[mi])
    for sp, i in zip(prob.par.slow, vec.i_slow):
        if sp.acts_on(mi):
            edit.set(sp.key, p[i])
    edit.profile(prob.par.layer, prob.el, prob.nodes, np.maximum(p[vec.i_prof[mi]], 0.0))
    edit.set(("calibration_a",), p[vec.i_a[mi]]).set(("calibration_b",), p[vec.i_b[mi]])
    return edit.set(("fluence",), edit.beam.fluence * p[vec.i_s[mi]]).build()


def window_spectra(exp: Experiment, win) -> dict:
    """Counts per element of the full forward model in the given channel windows (no xarray)."""
    from ..forward.engine import prepare, run, spread
    from ..forward.timing_response import apply_tail
    inputs = prepare(exp)
    det = exp.detector
    spec = spread(run(inputs), det.calibration_a_ns, det.calibration_b_ns, det.n_channels, exp.options.resolution)
    apply_tail(spec, det, det.calibration_a_ns, exp.options.resolution)
    out = {}
    for sp, row in zip(inputs.species, spec):
        if sp.kind == 0 and sp.element in win:
            out[sp.element] = out.get(sp.element, 0.0) + row[win[sp.element]]
    return out


def full_objective(prob, d, p) -> float:
    """Deviance (+ smoothness penalty) of the full simulation (plus the fitted background) at p."""
    spectra = [window_spectra(experiment_at(prob, p, mi), prob.win[mi]) for mi in range(prob.M)]
    m = np.concatenate([spectra[mi][e] + prob.lin.background(p, mi, e) for mi in range(prob.M) for e in prob.win[mi]])
    return deviance(d, m) + prob.penalty(p)


def max_model_difference(prob, p) -> float:
    """Largest |full simulation - fitted model| / max(fitted model, 1) over the windows."""
    from ..forward.simulate import simulate
    worst = 0.0
    mod = prob.model(p)
    for mi in range(prob.M):
        ds = simulate(experiment_at(prob, p, mi))
        for e, w in prob.win[mi].items():
            full = ds["counts"].sel(element=e).values[w] + prob.lin.background(p, mi, e)
            dm = np.abs(full - mod[mi][e]) / np.maximum(np.abs(mod[mi][e]).max(), 1.0)
            worst = max(worst, float(dm.max()) if dm.size else 0.0)
    return worst
