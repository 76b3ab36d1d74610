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
    n, ta, tb = bricks.n, bricks.ta, bricks.tb
    rising = times.size < 2 or times[-1] > times[0]
    t_sorted = times if rising else times[::-1]
    have = ta[:, :n] > 0
    for i in range(ta.shape[0]):
        rows = (depth[i], depth_nm[i]) if rising else (depth[i, ::-1], depth_nm[i, ::-1])  # in t_sorted's order
        cols = np.flatnonzero(have[i])
        if not cols.size:
            for row in rows:
                row[:] = np.nan
            continue
        t_e = np.append(ta[i, cols], tb[i, cols[-1]])
        order = np.argsort(t_e, kind="stable")
        t_e = t_e[order]
        edge = np.append(cols, cols[-1] + 1)[order]
        # p[j] channels come before edge j: channels p[j]..p[j+1] lie in [t_e[j], t_e[j+1]),
        # those from p[-1] to `stop` at t_e[-1] exactly
        p = np.searchsorted(t_sorted, t_e, side="left")
        stop = int(np.searchsorted(t_sorted, t_e[-1], side="right"))
        first, last = int(p[0]), int(p[-1])
        per_brick = np.diff(p)
        used = per_brick > 0
        dt = t_sorted[first:last] - np.repeat(t_e[:-1], per_brick)
        with np.errstate(divide="ignore", invalid="ignore"):  # bricks of zero duration cover no channel
            slopes = [np.diff(x[edge]) / np.diff(t_e) for x in (x_edge, x_edge_nm)]
        for row, x, slope in zip(rows, (x_edge, x_edge_nm), slopes):
            y = x[edge]
            row[:first] = np.nan
            row[stop:] = np.nan
            if np.isfinite(y).all() and np.isfinite(slope[used]).all():
                run = row[first:last]
                np.multiply(np.repeat(slope, per_brick), dt, out=run)
                run += np.repeat(y[:-1], per_brick)
                row[last:stop] = y[-1]
            elif np.isnan(y).all():  # no density anywhere: no depth in nm
                row[first:stop] = np.nan
            else:
                row[first:stop] = np.interp(t_sorted[first:stop], t_e, y)


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
