"""The simulation result as an xarray Dataset: spectra, channel times, depth and energy of origin."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from ..kernels.brick_types import Bricks
from ..kernels.kinematics import C_M_PER_NS, U_MEV
from ..model.experiment import Experiment
from .engine import EngineInputs
from .species import Species


def energy_from_times(t_ns, mass_u, L_m: float, relativistic: bool, out: np.ndarray | None = None) -> np.ndarray:
    """Vectorised :func:`recoilsim.kernels.kinematics.energy_from_time` (MeV); NaN for t <= L/c.

    ``mass_u`` a number gives an array shaped like ``t_ns``; an array of masses gives one row
    per mass (the velocity part is computed once). ``out``, if given, receives the result.
    """
    beta = L_m / (np.asarray(t_ns, dtype=float) * C_M_PER_NS)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_mc2 = 1.0 / np.sqrt(1.0 - beta * beta) - 1.0 if relativistic else 0.5 * beta * beta
    per_mc2 = np.where((beta > 0) & (beta < 1), per_mc2, np.nan)
    return np.multiply.outer(np.asarray(mass_u, dtype=float) * U_MEV, per_mc2, out=out)


def brick_edge_depths(x_mid: np.ndarray, n: int) -> np.ndarray:
    """Depths (1e15 at/cm2) of the n + 1 brick edges from the bricks' mid depths (n_sp, >= n).

    Every species' brick i spans the same depth step, so the edges are common to all: the
    bricks are contiguous from the surface, x_0 = 0, x_(i+1) = 2 x_mid_i - x_i (brick i's mid
    depth is taken from any species that has it; 0 marks a species without that brick).
    """
    xm = x_mid[:, :n].max(axis=0) if n else np.zeros(0)
    # the recurrence solved: x_k = 2 (-1)^(k+1) sum_{i<k} (-1)^i x_mid_i
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    xb = np.empty(n + 1)
    xb[0] = 0.0
    xb[1:] = 2.0 * sign * np.cumsum(sign * xm)
    return xb


def element_groups(species: list[Species]) -> tuple[list[str], np.ndarray]:
    """Elements of the result in first-seen order and the element index of each species.

    A recoil counts for its element (``"Li"``), the scattered beam for ``"<beam element>-scattered"``.
    """
    keys = [sp.element if sp.kind == 0 else f"{sp.element}-scattered" for sp in species]
    elements = list(dict.fromkeys(keys))
    where = {key: k for k, key in enumerate(elements)}
    return elements, np.array([where[key] for key in keys], dtype=np.intp)


def main_isotopes(group: np.ndarray, totals: np.ndarray, n_elements: int) -> np.ndarray:
    """Per element, the species with the most counts (the first of equals): it gives the
    element's depth and energy scales."""
    best = np.full(n_elements, -1, dtype=np.intp)
    for i, k in enumerate(group):
        if best[k] < 0 or totals[i] > totals[best[k]]:
            best[k] = i
    return best


def brick_edge_times(bricks: Bricks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every species' brick edges in time order: times (n_sp, n + 1), the depth edge index of
    each (into :func:`brick_edge_depths`) and how many of the n + 1 are edges (0 without bricks).

    A species' edges are the tops of its bricks (``ta > 0``) and the bottom of its last brick,
    sorted by time (stably: ties keep depth order); the slots after a species' last edge repeat
    that edge.
    """
    n, ta, tb = bricks.n, bricks.ta[:, :bricks.n], bricks.tb
    n_sp = ta.shape[0]
    have = ta > 0
    n_edges = np.where(have.any(axis=1), have.sum(axis=1) + 1, 0)
    last = n - 1 - np.argmax(have[:, ::-1], axis=1) if n else np.zeros(n_sp, dtype=np.intp)
    t = np.empty((n_sp, n + 1))
    t[:, :n] = np.where(have, ta, np.nan)  # NaN sorts after every time
    t[:, n] = np.where(n_edges > 0, tb[np.arange(n_sp), last], np.nan)
    edge = np.empty((n_sp, n + 1), dtype=np.intp)
    edge[:, :n] = np.arange(n)
    edge[:, n] = np.where(n_edges > 0, last + 1, 0)
    order = np.argsort(t, axis=1, kind="stable")
    order = np.take_along_axis(order, np.minimum(np.arange(n + 1), np.maximum(n_edges, 1)[:, None] - 1), axis=1)
    return np.take_along_axis(t, order, axis=1), np.take_along_axis(edge, order, axis=1), n_edges


def channel_depths(times: np.ndarray, bricks: Bricks, x_edge: np.ndarray, x_edge_nm: np.ndarray,
                   depth: np.ndarray, depth_nm: np.ndarray) -> None:
    """Fill ``depth`` and ``depth_nm`` (n_sp, n_channels) with the depth of origin (1e15 at/cm2
    and nm) of every species at every channel time.

    Inside a brick the depth is linear in time between the brick's edges; channels outside a
    species' bricks get NaN. ``times`` rise or fall monotonically with the channel. The values
    are :func:`numpy.interp`'s, by the same arithmetic (slope (y_(j+1) - y_j) / (t_(j+1) - t_j)
    times (t - t_j), plus y_j), but each brick's slope is spread over its run of channels with
    :func:`numpy.repeat` instead of a search per channel; :func:`numpy.interp` itself where a
    depth or a slope is not finite (nm below a layer without a density; NaN where no layer has one).
    """
    rising = times.size < 2 or times[-1] > times[0]
    t_sorted = times if rising else times[::-1]
    t_e, edge, n_edges = brick_edge_times(bricks)
    # p[i, j] channels come before edge j: channels p[j]..p[j+1] lie in [t_e[j], t_e[j+1]);
    # those from p[-1] to `stop` at the last edge exactly
    p = np.searchsorted(t_sorted, t_e, side="left")
    stop = np.searchsorted(t_sorted, t_e[:, -1], side="right")
    per_brick = np.diff(p, axis=1)
    dt_e = np.diff(t_e, axis=1)
    depth[n_edges == 0] = np.nan
    depth_nm[n_edges == 0] = np.nan
    for out, x in ((depth, x_edge), (depth_nm, x_edge_nm)):
        y = x[edge]
        with np.errstate(divide="ignore", invalid="ignore"):  # edges of equal time bound no channel
            slope = np.diff(y, axis=1) / dt_e
        finite = np.isfinite(y).all(axis=1) & (np.isfinite(slope) | (per_brick == 0)).all(axis=1)
        no_depth = np.isnan(y).all(axis=1)  # no layer has a density: no depth in nm
        for i in np.flatnonzero(n_edges):
            row = out[i] if rising else out[i, ::-1]  # in t_sorted's order
            first, last = p[i, 0], p[i, -1]
            row[:first] = np.nan
            row[stop[i]:] = np.nan
            if finite[i]:
                run = row[first:last]
                np.subtract(t_sorted[first:last], t_e[i, :-1].repeat(per_brick[i]), out=run)
                run *= slope[i].repeat(per_brick[i])
                run += y[i, :-1].repeat(per_brick[i])
                row[last:stop[i]] = y[i, -1]
            elif no_depth[i]:
                row[first:stop[i]] = np.nan
            else:
                m = n_edges[i]
                row[first:stop[i]] = np.interp(t_sorted[first:stop[i]], t_e[i, :m], y[i, :m])


def to_dataset(exp: Experiment, inputs: EngineInputs, spec: np.ndarray, bricks: Bricks, *,
               stopping: str, straggling: str) -> xr.Dataset:
    """The simulation result as an :class:`xarray.Dataset` (see :func:`recoilsim.forward.simulate.simulate`).

    ``stopping`` and ``straggling`` are the texts recorded in the attrs of the same names.
    """
    det = exp.detector
    species = inputs.species
    times = det.channel_times_ns()
    elements, group = element_groups(species)
    n_sp, n_el = len(species), len(elements)
    # every new per-channel array of the result is a view of one block: one large allocation
    # (mapped at once, in huge pages where the system offers them) instead of seven
    depth, depth_nm, energy, el_depth, el_depth_nm, el_energy, el_counts = np.split(
        np.empty((3 * n_sp + 4 * n_el, det.n_channels)), np.cumsum([n_sp] * 3 + [n_el] * 3))
    x_edge = brick_edge_depths(bricks.x_mid, bricks.n)
    # bricks do not cross layer boundaries and nm are linear in 1e15 at/cm2 inside a layer:
    # interpolating the edges' depths in nm is the exact conversion
    channel_depths(times, bricks, x_edge, exp.sample.depth_1e15_to_nm(x_edge), depth, depth_nm)
    masses = np.array([sp.mass_u for sp in species], dtype=float)
    energy_from_times(times, masses, det.flight_length_m, exp.options.relativistic, out=energy)
    # elements: counts summed over isotopes (in species order); depth and energy from the
    # most abundant isotope of the element
    el_counts[:] = 0.0
    for i, k in enumerate(group):
        el_counts[k] += spec[i]
    main = main_isotopes(group, spec.sum(axis=1), n_el)
    for src, dst in ((depth, el_depth), (depth_nm, el_depth_nm), (energy, el_energy)):
        np.take(src, main, axis=0, out=dst, mode="clip")  # "raise" would copy through a buffer
    iso, el, ch = ("isotope", "channel"), ("element", "channel"), "channel"
    depth_attrs = {"units": "1e15 atoms/cm2", "long_name": "depth of origin"}
    nm_attrs = {"units": "nm", "long_name": "depth of origin"}
    energy_attrs = {"units": "MeV", "long_name": "energy in flight (after the T1 foil)"}
    coords = xr.Coordinates({
        "channel": xr.IndexVariable(ch, np.arange(det.n_channels)),
        "isotope": xr.IndexVariable("isotope", np.array([sp.label for sp in species])),
        "element": xr.IndexVariable("element", np.array(elements)),
        "time_ns": xr.Variable(ch, times, {"units": "ns", "long_name": "time of flight at the channel centre"}),
        "isotope_depth_1e15": xr.Variable(iso, depth, depth_attrs),
        "isotope_depth_nm": xr.Variable(iso, depth_nm, nm_attrs),
        "isotope_energy_MeV": xr.Variable(iso, energy, energy_attrs),
        "depth_1e15": xr.Variable(el, el_depth, dict(depth_attrs)),
        "depth_nm": xr.Variable(el, el_depth_nm, dict(nm_attrs)),
        "energy_MeV": xr.Variable(el, el_energy, dict(energy_attrs)),
        "isotope_mass_u": xr.Variable("isotope", masses),
        "isotope_Z": xr.Variable("isotope", np.array([sp.Z for sp in species])),
    })
    data = {
        "counts_isotope": xr.Variable(iso, spec, {"units": "counts", "long_name": "counts per channel of each isotope"}),
        "counts": xr.Variable(el, el_counts, {"units": "counts", "long_name": "counts per channel summed per element"}),
    }
    attrs = {
        "title": f"recoilsim TOF-ERDA simulation: {exp.name}",
        "experiment": json.dumps(exp.describe()),
        "stopping": stopping,
        "n_bricks": int(bricks.n),
        "n_blocks": int(len(inputs.stack.top) - 1),
        "straggling": straggling,
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)
