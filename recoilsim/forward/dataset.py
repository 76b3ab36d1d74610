"""The simulation result as an xarray Dataset: spectra, channel times, depth and energy of origin."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from ..kernels.brick_types import Bricks
from ..kernels.kinematics import C_M_PER_NS, U_MEV
from ..model.experiment import Experiment
from .engine import EngineInputs


def energy_from_times(t_ns, mass_u, L_m: float, relativistic: bool) -> np.ndarray:
    """Vectorised :func:`recoilsim.kernels.kinematics.energy_from_time` (MeV); NaN for t <= L/c.

    ``mass_u`` a number gives an array shaped like ``t_ns``; an array of masses gives one row
    per mass (the velocity part is computed once).
    """
    beta = L_m / (np.asarray(t_ns, dtype=float) * C_M_PER_NS)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_mc2 = 1.0 / np.sqrt(1.0 - beta * beta) - 1.0 if relativistic else 0.5 * beta * beta
    per_mc2 = np.where((beta > 0) & (beta < 1), per_mc2, np.nan)
    return np.multiply.outer(np.asarray(mass_u, dtype=float) * U_MEV, per_mc2)


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


def to_dataset(exp: Experiment, inputs: EngineInputs, spec: np.ndarray, bricks: Bricks) -> xr.Dataset:
    """The simulation result as an :class:`xarray.Dataset` (see :func:`recoilsim.forward.simulate.simulate`)."""
    n, ta, tb, x_mid = bricks.n, bricks.ta, bricks.tb, bricks.x_mid
    det = exp.detector
    species = inputs.species
    times = det.channel_times_ns()
    labels = [sp.label for sp in species]
    iso_depth = np.full((len(species), det.n_channels), np.nan)
    iso_depth_nm = np.full((len(species), det.n_channels), np.nan)
    iso_energy = energy_from_times(times, [sp.mass_u for sp in species], det.flight_length_m,
                                   exp.options.relativistic)
    x_edge = brick_edge_depths(x_mid, n)
    # bricks do not cross layer boundaries and nm are linear in 1e15 at/cm2 inside a layer:
    # interpolating the edges' depths in nm is the exact conversion
    x_edge_nm = exp.sample.depth_1e15_to_nm(x_edge)
    # channel times rise with the channel (a > 0) or fall (a < 0): a species' bricks cover one
    # run of channels, and only those get a depth (linear in time inside each brick)
    rising = det.calibration_a_ns > 0
    t_sorted = times if rising else times[::-1]
    for i in range(len(species)):
        have = np.flatnonzero(ta[i, :n] > 0)
        if not have.size:
            continue
        t_e = np.append(ta[i, have], tb[i, have[-1]])
        order = np.argsort(t_e, kind="stable")
        t_e = t_e[order]
        edge = np.append(have, have[-1] + 1)[order]
        k0, k1 = np.searchsorted(t_sorted, t_e[[0, -1]], side="left")
        k1 = min(k1 + 1, det.n_channels)
        span = slice(k0, k1) if rising else slice(det.n_channels - k1, det.n_channels - k0)
        iso_depth[i, span] = np.interp(times[span], t_e, x_edge[edge], left=np.nan, right=np.nan)
        iso_depth_nm[i, span] = np.interp(times[span], t_e, x_edge_nm[edge], left=np.nan, right=np.nan)
    # elements: sum over isotopes; depth/energy from the most abundant isotope of the element
    elements = []
    for sp in species:
        key = sp.element if sp.kind == 0 else f"{sp.element}-scattered"
        if key not in elements:
            elements.append(key)
    el_counts = np.zeros((len(elements), det.n_channels))
    el_main = {}
    for i, sp in enumerate(species):
        key = sp.element if sp.kind == 0 else f"{sp.element}-scattered"
        k = elements.index(key)
        el_counts[k] += spec[i]
        tot = spec[i].sum()
        if key not in el_main or tot > el_main[key][1]:
            el_main[key] = (i, tot)
    idx = [el_main[e][0] for e in elements]
    ds = xr.Dataset(
        {
            "counts_isotope": (("isotope", "channel"), spec),
            "counts": (("element", "channel"), el_counts),
        },
        coords={
            "channel": np.arange(det.n_channels),
            "isotope": labels,
            "element": elements,
            "time_ns": ("channel", times),
            "isotope_depth_1e15": (("isotope", "channel"), iso_depth),
            "isotope_depth_nm": (("isotope", "channel"), iso_depth_nm),
            "isotope_energy_MeV": (("isotope", "channel"), iso_energy),
            "depth_1e15": (("element", "channel"), iso_depth[idx]),
            "depth_nm": (("element", "channel"), iso_depth_nm[idx]),
            "energy_MeV": (("element", "channel"), iso_energy[idx]),
            "isotope_mass_u": ("isotope", [sp.mass_u for sp in species]),
            "isotope_Z": ("isotope", [sp.Z for sp in species]),
        },
        attrs={
            "title": f"recoilsim TOF-ERDA simulation: {exp.name}",
            "experiment": json.dumps(exp.describe()),
            "stopping": "SRIM-2013 electronic (Ziegler et al., NIM B 268 (2010) 1818) + ZBL nuclear, Bragg's rule",
            "n_bricks": int(n),
            "n_blocks": int(len(inputs.stack.top) - 1),
        },
    )
    # attrs through .variables: ds[name] would build a DataArray (with all coords) for each
    var = ds.variables
    var["counts_isotope"].attrs.update(units="counts", long_name="counts per channel of each isotope")
    var["counts"].attrs.update(units="counts", long_name="counts per channel summed per element")
    var["time_ns"].attrs.update(units="ns", long_name="time of flight at the channel centre")
    for v in ("depth_nm", "isotope_depth_nm"):
        var[v].attrs.update(units="nm", long_name="depth of origin")
    for v in ("depth_1e15", "isotope_depth_1e15"):
        var[v].attrs.update(units="1e15 atoms/cm2", long_name="depth of origin")
    for v in ("energy_MeV", "isotope_energy_MeV"):
        var[v].attrs.update(units="MeV", long_name="energy in flight (after the T1 foil)")
    return ds
