"""Depth resolution at the fit's depth nodes, and a warning when the nodes are much finer.

The depth resolution of TOF-ERDA at depth x is the time spread of particles recoiled at that
depth divided by how fast their flight time changes with depth (the depth-scale factor in
time): ``FWHM_x = 2 sqrt(2 ln 2) sigma_t(x) / |dt/dx|`` (Szilagyi, Paszti and Amsel, Nucl.
Instrum. Methods B 100 (1995) 103, eq. 1, written for energy, dx = dE / [S]; the same relation
in time). Both come from the forward model the fit already uses
(:func:`recoilsim.forward.engine.run`): each brick is the slab of depth from which recoils reach
the detector between flight times ``ta`` and ``tb``, with the Gaussian time sigma ``sig_t`` of
everything that spreads them (straggling, multiple scattering when on, the detector foils'
straggling, the timing resolution); ``|tb - ta|`` over the brick's thickness is dt/dx there.
The detector's exponential timing tail is not included (it is not Gaussian; it widens the
trailing side only).

Nodes closer than a quarter of that FWHM (:data:`SPACING_FRACTION`) hold shape that the data
cannot resolve: the smoothness prior then decides the profile between them and no band holds
its bias (docs/depth_profiles.md, "The Li-profile fit"). :func:`node_spacing_message` says so;
:func:`recoilsim.fit` and :func:`recoilsim.fit_profiles` store the resolution in their datasets
and warn with :class:`NodeSpacingWarning`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..errors import RecoilsimError
from ..forward.dataset import brick_edge_depths
from ..forward.engine import prepare, run
from ..model.experiment import Experiment

__all__ = ["FWHM_PER_SIGMA", "SPACING_FRACTION", "NodeSpacingWarning", "depth_resolution", "node_spacing_message",
           "warn_node_spacing"]

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
#: nodes closer than this fraction of the resolution FWHM are flagged
SPACING_FRACTION = 0.25


class NodeSpacingWarning(UserWarning):
    """The depth nodes are much finer than the depth resolution."""


def depth_resolution(exp: Experiment, elements, depth_1e15, computed=None) -> tuple[np.ndarray, np.ndarray]:
    """Depth resolution (FWHM) of recoils of each element at the given depths.

    Parameters
    ----------
    exp : Experiment
        The experiment (its sample sets the stopping and, with multiple scattering on, the
        widths). Each element must be one of its recoils.
    elements : str or sequence of str
        The recoiling element(s); of each, its isotope with the largest yield is used.
    depth_1e15 : array-like
        Depths from the surface, 1e15 at/cm2.
    computed : tuple, optional
        ``(species, bricks)`` of a kernel run of ``exp`` already made (a
        :class:`~recoilsim.forward.linear_model.LinearModel` keeps its own); default: run it here.

    Returns
    -------
    fwhm_1e15, fwhm_nm : numpy.ndarray
        FWHM in 1e15 at/cm2 and in nm (the nm of the layer at that depth), shape of
        ``depth_1e15`` for one element, (n_elements, n_depths) for a sequence; interpolated
        linearly between the bricks' mid depths; NaN below the deepest brick with a yield
        (nothing detected from there).
    """
    one = isinstance(elements, str)
    els = [elements] if one else list(elements)
    if computed is None:
        inputs = prepare(exp)
        species, b = inputs.species, run(inputs)
    else:
        species, b = computed
    n = b.n
    edges = brick_edge_depths(b.x_mid, n)
    dx = np.diff(edges)
    nm_per = np.diff(exp.sample.depth_1e15_to_nm(edges)) / np.where(dx > 0, dx, np.nan)
    z = np.atleast_1d(np.asarray(depth_1e15, dtype=float))
    out = np.full((2, len(els), z.size), np.nan)
    for k, el in enumerate(els):
        rows = [i for i, sp in enumerate(species) if sp.kind == 0 and sp.element == el]
        if not rows:
            raise RecoilsimError("element", el, f"a recoil of the experiment ({', '.join(exp.recoils)})")
        s = max(rows, key=lambda i: float(b.Y[i, :n].sum()))
        dt = np.abs(b.tb[s, :n] - b.ta[s, :n])
        ok = (b.Y[s, :n] > 0) & (dt > 0) & (dx > 0)
        if ok.any():
            fwhm = FWHM_PER_SIGMA * b.sig_t[s, :n][ok] * dx[ok] / dt[ok]
            x = b.x_mid[s, :n][ok]
            out[0, k] = np.interp(z, x, fwhm, right=np.nan)
            out[1, k] = out[0, k] * np.interp(z, x, nm_per[ok], right=np.nan)
    shape = np.shape(depth_1e15) if one else (len(els),) + np.shape(depth_1e15)
    return out[0].reshape(shape), out[1].reshape(shape)


def node_spacing_message(nodes_nm, fwhm_nm, fwhm_1e15, label: str = "",
                         fraction: float = SPACING_FRACTION) -> str | None:
    """A warning text when nodes lie closer than ``fraction`` of the resolution FWHM, else None.

    ``nodes_nm``: node depths (nm, any origin); ``fwhm_nm``, ``fwhm_1e15``: the resolution at
    each node (:func:`depth_resolution`). A node's spacing is the mean of its two intervals (one
    at the ends; nodes at the same depth, a break, count as one). The message names how many nodes are affected, the worst node's spacing and
    resolution, and what to do.
    """
    z = np.asarray(nodes_nm, dtype=float)
    w = np.asarray(fwhm_nm, dtype=float)
    if z.size < 2:
        return None
    u, inv = np.unique(z, return_inverse=True)  # a break's two nodes share a depth
    if u.size < 2:
        return None
    spacing = np.abs(np.gradient(u))[inv]
    fine = np.isfinite(w) & (spacing < fraction * w)
    if not fine.any():
        return None
    k = int(np.nanargmin(np.where(fine, spacing / w, np.nan)))
    who = f"{label} " if label else ""
    return (f"{who}depth nodes finer than the depth resolution: at {int(fine.sum())} of {z.size} nodes the spacing is "
            f"below {fraction:g} of the resolution FWHM (node at {z[k]:.3g} nm: spacing {spacing[k]:.3g} nm, "
            f"resolution FWHM {w[k]:.3g} nm = {float(np.asarray(fwhm_1e15)[k]):.3g}e15 at/cm2). The data cannot "
            "separate features that close: the smoothing prior, not the data, sets the profile's shape there and "
            f"the band does not hold its bias. Use nodes about {0.5 * w[k]:.2g} nm apart (no closer than "
            f"{fraction * w[k]:.2g} nm) or a parametric ProfileShape.")


def warn_node_spacing(message: str | None, stacklevel: int = 3) -> None:
    """Issue ``message`` (from :func:`node_spacing_message`) as a :class:`NodeSpacingWarning`."""
    if message:
        warnings.warn(message, NodeSpacingWarning, stacklevel=stacklevel)


def annotate_fit(result, stacklevel: int = 4) -> None:
    """Store the resolution at the nodes of a :func:`recoilsim.fit` result and warn on fine nodes.

    Adds ``depth_resolution_nm`` and ``depth_resolution_1e15`` along ``depth`` (the profiled
    element's resolution at each node, from the kernel run that measurement 0's
    :class:`~recoilsim.forward.linear_model.LinearModel` made at the fit's last linearisation
    point: the slow parameters and base profile of the last re-linearisation, the start without
    re-linearisation, so no kernel run is added. Measured against a run on the fitted
    experiment, reference case with a +40 % Li excess: within 0.1 % with re-linearisation,
    6 % narrower at the surface node without it (the start's stopping)) and
    ``attrs['resolution_warning']`` (the :func:`node_spacing_message`, '' when none). A fit with a
    :class:`~recoilsim.fitting.parameters.ProfileShape` stores the resolution without warning:
    its shape, not the nodes, carries the profile.
    """
    ds, prob = result.dataset, result.problem
    if ds is None:
        return
    from .registry import layer_index
    try:
        lm = prob.lin.nominal(0)  # measurement 0 at the fit's last linearisation point
        exp = lm.nominal_experiment
        li = layer_index(exp, prob.par.layer)
        z = exp.sample.boundaries_1e15()[li] + prob.nodes * exp.sample.layers[li].nm_to_1e15
        fwhm, fwhm_nm = depth_resolution(exp, prob.el, z, computed=(lm.species, lm.bricks))
    except RecoilsimError as err:  # a fitted experiment the engine refuses: the fit's result stands
        ds.attrs["resolution_warning"] = f"depth resolution not computed: {err}"
        return
    ds["depth_resolution_nm"] = ("depth", fwhm_nm)
    ds["depth_resolution_1e15"] = ("depth", fwhm)
    msg = None if prob.par.shape is not None else node_spacing_message(prob.nodes, fwhm_nm, fwhm, prob.el)
    ds.attrs["resolution_warning"] = msg or ""
    warn_node_spacing(msg, stacklevel)


def annotate_profiles(result, stacklevel: int = 4) -> None:
    """Store the resolution at the nodes of a :func:`recoilsim.fit_profiles` result and warn on fine nodes.

    Adds ``depth_resolution_nm(element, depth)`` and ``depth_resolution_1e15(element, depth)``
    (from the fitted experiment; nm with the start sample's densities, as ``depth_nm``) and ``attrs['resolution_warning']`` (the message of the first
    element whose nodes are too fine, '' when none).
    """
    ds = result.dataset
    els = [str(e) for e in ds["element"].values]
    z = ds["depth_1e15"].values
    try:
        fwhm, _ = depth_resolution(result.experiment, els, z)
    except RecoilsimError as err:  # a fitted experiment the engine refuses: the fit's result stands
        ds.attrs["resolution_warning"] = f"depth resolution not computed: {err}"
        return
    # nm as the dataset's depth_nm (the start sample's densities; the fitted sample's node layers
    # carry none): the local nm per 1e15 at/cm2 between the nodes
    u, inv = np.unique(z, return_inverse=True)
    nm_u = np.array([ds["depth_nm"].values[z == v][0] for v in u])
    fwhm_nm = fwhm * (np.gradient(nm_u, u)[inv] if u.size > 1 else np.nan)
    ds["depth_resolution_nm"] = (("element", "depth"), fwhm_nm)
    ds["depth_resolution_1e15"] = (("element", "depth"), fwhm)
    msgs = [node_spacing_message(ds["depth_nm"].values, fwhm_nm[k], fwhm[k], e) for k, e in enumerate(els)]
    msgs = [m for m in msgs if m]
    msg = msgs[0] + (f" ({len(msgs) - 1} more element(s) likewise.)" if len(msgs) > 1 else "") if msgs else ""
    ds.attrs["resolution_warning"] = msg
    warn_node_spacing(msg, stacklevel)
