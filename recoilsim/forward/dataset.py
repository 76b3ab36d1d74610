"""The simulation result as an xarray Dataset: spectra, channel times, depth and energy of origin."""

from __future__ import annotations

import json
import sys
import threading
from functools import lru_cache

import numpy as np
import xarray as xr

from ..kernels.brick_types import Bricks
from ..kernels.kinematics import C_M_PER_NS, U_MEV
from ..kernels.channel_depth import depth_rows
from ..model.experiment import Experiment
from .engine import EngineInputs, brick_edge_depths
from .species import Species


def flight_energy_per_mc2(t_ns, L_m: float, relativistic: bool) -> np.ndarray:
    """Kinetic energy over rest energy, E/(m c^2), after a flight of ``L_m`` (m) in ``t_ns`` (ns):
    1/sqrt(1 - beta^2) - 1 (relativistic), else beta^2/2, with beta = L/(c t); NaN for t <= L/c.
    Times M U_MEV it is the energy (MeV) of :func:`recoilsim.kernels.kinematics.energy_from_time`,
    vectorised."""
    beta = np.multiply(t_ns, C_M_PER_NS, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(L_m, beta, out=beta)
        valid = (beta > 0) & (beta < 1)
        if relativistic:  # 1 / sqrt(1 - beta^2) - 1, in place
            per_mc2 = np.multiply(beta, beta)
            np.subtract(1.0, per_mc2, out=per_mc2)
            np.sqrt(per_mc2, out=per_mc2)
            np.divide(1.0, per_mc2, out=per_mc2)
            per_mc2 -= 1.0
        else:
            per_mc2 = np.multiply(0.5, beta)
            per_mc2 *= beta
    per_mc2[~valid] = np.nan
    return per_mc2


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


_DEPTH = {"units": "1e15 atoms/cm2", "long_name": "depth of origin"}
_DEPTH_NM = {"units": "nm", "long_name": "depth of origin"}
_ENERGY = {"units": "MeV", "long_name": "energy in flight (after the T1 foil)"}
#: Units and long names of the result's variables.
VARIABLE_ATTRS = {
    "counts_isotope": {"units": "counts", "long_name": "counts per channel of each isotope"},
    "counts": {"units": "counts", "long_name": "counts per channel summed per element"},
    "time_ns": {"units": "ns", "long_name": "time of flight at the channel centre"},
    "isotope_depth_1e15": _DEPTH, "depth_1e15": _DEPTH,
    "isotope_depth_nm": _DEPTH_NM, "depth_nm": _DEPTH_NM,
    "isotope_energy_MeV": _ENERGY, "energy_MeV": _ENERGY,
}

class SpareBlock:
    """One result block (the per-channel arrays of :func:`to_dataset`) kept for the next result.

    A new result's block is fresh memory, and the operating system hands out fresh pages zeroed
    on first touch: at 76,500 channels (the issue-17 case, 22 species: 90 rows, 55 MB) that took
    4-5 ms of a 22.6 ms ``simulate()`` (benchmarks/README.md, "Session 12, the result block").
    :meth:`take` returns the block kept by the last :meth:`keep` when it has the shape asked for
    and nothing else refers to it any more (no result, variable or view of it is alive: every
    view of a numpy array holds a reference to its base), else new memory; so a result a caller
    still holds is never written to. At most one block is kept (the memory of the last result).
    Taking is under a lock: two threads never get the same block.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._block: np.ndarray | None = None

    def take(self, shape: tuple[int, int]) -> np.ndarray:
        """A (shape) float64 array: the kept block if it is free and of this shape, else np.empty."""
        with self._lock:
            block, self._block = self._block, None
        if block is not None and block.shape == shape and sys.getrefcount(block) == _LONE_REFS:
            return block
        return np.empty(shape)

    def keep(self, block: np.ndarray) -> None:
        """Keep ``block`` (a result's, still in use) for a later :meth:`take`."""
        with self._lock:
            self._block = block


def _lone_array_refs() -> int:
    """``sys.getrefcount`` of an array held by one local name only, measured as :meth:`SpareBlock.take`
    measures (interpreters differ in whether the call's argument counts)."""
    a = np.empty(0)
    return sys.getrefcount(a)


_LONE_REFS = _lone_array_refs()
_SPARE = SpareBlock()


def species_edges(bricks: Bricks, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Species i's brick edges in time order: their times and depth edge indices (into
    :func:`brick_edge_depths`); empty without bricks.

    The edges are the tops of the species' bricks (``ta > 0``) and the bottom of its last brick,
    sorted by time (stably: ties keep depth order).
    """
    cols = np.flatnonzero(bricks.ta[i, :bricks.n] > 0)
    if not cols.size:
        return np.zeros(0), cols
    t_e = np.append(bricks.ta[i, cols], bricks.tb[i, cols[-1]])
    order = np.argsort(t_e, kind="stable")
    return t_e[order], np.append(cols, cols[-1] + 1)[order]


def channel_depths(times: np.ndarray, bricks: Bricks, x_edges: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` (n_scales, n_sp, n_channels) with the depth of origin of every species at every
    channel time, on each depth scale of ``x_edges`` (n_scales, n + 1: the brick edges' depths,
    e.g. in 1e15 at/cm2 and in nm).

    Inside a brick the depth is linear in time between the brick's edges; channels outside a
    species' bricks get NaN, and so does a scale without any depth (nm without densities).
    ``times`` rise or fall monotonically with the channel. The values are
    :func:`numpy.interp`'s over each species' edges sorted by time: by
    :func:`recoilsim.kernels.channel_depth.depth_rows` (every species of a scale in one call), or,
    for a species whose edges are out of time order, by :func:`numpy.interp` itself.
    """
    falling = not (times.size < 2 or times[-1] > times[0])
    t_up = times[::-1].copy() if falling else times
    live = (bricks.ta[:, :bricks.n] > 0).any(axis=1)
    done = np.empty(out.shape[1], dtype=bool)
    for s in range(x_edges.shape[0]):
        y = x_edges[s]
        if np.isnan(y).all():  # a scale without any depth
            out[s] = np.nan
        else:
            depth_rows(t_up, bricks.ta, bricks.tb, bricks.n, y, out[s], done)  # in ascending time order
            for i in np.flatnonzero(~done & live):  # edges out of time order
                t_e, edge = species_edges(bricks, i)
                out[s, i] = np.interp(t_up, t_e, y[edge], left=np.nan, right=np.nan)
            if falling:
                out[s] = out[s, :, ::-1]  # (numpy copies overlapping operands first)
            out[s, ~live] = np.nan  # species without bricks


def element_counts(spec: np.ndarray, group: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Fill ``out`` (n_elements, n_channels) with the counts summed per element (species rows
    added in species order) and return each species' total counts.

    Rows of zeros are left out of the sums (adding them changes nothing); the first row of an
    element is copied as 0 + row, so every value is the plain sum's bit for bit.
    """
    totals = spec.sum(axis=1)
    started = np.zeros(out.shape[0], dtype=bool)
    for i, k in enumerate(group):
        if totals[i] == 0.0 and not spec[i].any():
            continue
        if started[k]:
            out[k] += spec[i]
        else:
            np.add(spec[i], 0.0, out=out[k])
            started[k] = True
    out[~started] = 0.0
    return totals


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
    # every new per-channel array of the result is a view of one block, written once (one allocation
    # instead of seven), the last result's block again when that result is gone (SpareBlock)
    block = _SPARE.take((3 * n_sp + 4 * n_el, det.n_channels))
    depth, depth_nm, energy, el_depth, el_depth_nm, el_energy, el_counts = np.split(
        block, np.cumsum([n_sp] * 3 + [n_el] * 3))
    # elements: counts summed over isotopes (in species order); depth and energy from the
    # most abundant isotope of the element
    main = main_isotopes(group, element_counts(spec, group, el_counts), n_el)
    x_edge = brick_edge_depths(bricks.x_mid, bricks.n)
    # bricks do not cross layer boundaries and nm are linear in 1e15 at/cm2 inside a layer:
    # interpolating the edges' depths in nm is the exact conversion.
    # (depth, depth_nm) and (el_depth, el_depth_nm) are adjacent in the block
    iso_depths = block[:2 * n_sp].reshape(2, n_sp, det.n_channels)
    el_depths = block[3 * n_sp:3 * n_sp + 2 * n_el].reshape(2, n_el, det.n_channels)
    channel_depths(times, bricks, np.stack([x_edge, exp.sample.depth_1e15_to_nm(x_edge)]), iso_depths)
    np.take(iso_depths, main, axis=1, out=el_depths, mode="clip")  # (mode "raise" copies through a buffer)
    masses = np.array([sp.mass_u for sp in species], dtype=float)
    per_mc2 = flight_energy_per_mc2(times, det.flight_length_m, exp.options.relativistic)
    np.multiply.outer(masses * U_MEV, per_mc2, out=energy)
    np.multiply.outer(masses[main] * U_MEV, per_mc2, out=el_energy)
    attrs = {
        "title": f"recoilsim TOF-ERDA simulation: {exp.name}",
        "experiment": json.dumps(exp.describe()),
        "stopping": stopping,
        "n_bricks": int(bricks.n),
        "n_blocks": int(len(inputs.stack.top) - 1),
        "straggling": straggling,
    }
    values = {"counts_isotope": spec, "counts": el_counts, "time_ns": times,
              "isotope_depth_1e15": depth, "isotope_depth_nm": depth_nm, "isotope_energy_MeV": energy,
              "depth_1e15": el_depth, "depth_nm": el_depth_nm, "energy_MeV": el_energy,
              "isotope_mass_u": masses, "isotope_Z": np.array([sp.Z for sp in species])}
    # a shallow copy of the cached layout (new Variable objects and attrs dicts, the immutable
    # indexes shared) with this result's arrays put in
    ds = result_layout(det.n_channels, tuple(sp.label for sp in species), tuple(elements)).copy(deep=False)
    for name, value in values.items():
        ds.variables[name].data = value
    ds.attrs = attrs
    _SPARE.keep(block)
    return ds


@lru_cache(maxsize=16)
def result_layout(n_channels: int, isotopes: tuple[str, ...], elements: tuple[str, ...]) -> xr.Dataset:
    """The layout of a result with these channels, isotopes and elements: every variable with its
    dims, dtype and attrs, and the ``channel``, ``isotope`` and ``element`` indexes; every other
    value is a zero-stride placeholder (no memory), set by :func:`to_dataset` in a shallow copy.

    Cached: xarray's constructor (default indexes, merging, checks) took ~0.4-0.9 ms per result,
    most of the Dataset's cost at 1024 channels; a shallow copy takes ~0.07 ms. The cached
    Datasets are never handed out, and what copies share (indexes, index values) is immutable.
    """
    def placeholder(dims, dtype=float):
        shape = tuple({"channel": n_channels, "isotope": len(isotopes), "element": len(elements)}[d] for d in dims)
        return dims, np.broadcast_to(np.zeros((), dtype), shape)

    iso, el = ("isotope", "channel"), ("element", "channel")
    data = {"counts_isotope": placeholder(iso), "counts": placeholder(el)}
    coords = {
        "channel": np.arange(n_channels),
        "isotope": list(isotopes),
        "element": list(elements),
        "time_ns": placeholder(("channel",)),
        "isotope_depth_1e15": placeholder(iso),
        "isotope_depth_nm": placeholder(iso),
        "isotope_energy_MeV": placeholder(iso),
        "depth_1e15": placeholder(el),
        "depth_nm": placeholder(el),
        "energy_MeV": placeholder(el),
        "isotope_mass_u": placeholder(("isotope",)),
        "isotope_Z": placeholder(("isotope",), np.int64),
    }
    ds = xr.Dataset(data, coords=coords)
    for name, var in ds.variables.items():  # (ds[name] would build a DataArray with all coords)
        var.attrs.update(VARIABLE_ATTRS.get(name, {}))
    return ds
