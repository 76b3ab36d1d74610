"""The simulation result as an xarray Dataset: spectra, channel times, depth and energy of origin."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from ..kernels.brick_types import Bricks
from ..kernels.kinematics import C_M_PER_NS, U_MEV
from ..model.experiment import Experiment
from .engine import EngineInputs


def energy_from_times(t_ns, mass_u: float, L_m: float, relativistic: bool) -> np.ndarray:
    """Vectorised :func:`recoilsim.kernels.kinematics.energy_from_time` (MeV); NaN for t <= L/c."""
    beta = L_m / (np.asarray(t_ns, dtype=float) * C_M_PER_NS)
    mc2 = mass_u * U_MEV
    with np.errstate(invalid="ignore", divide="ignore"):
        if relativistic:
            e = mc2 * (1.0 / np.sqrt(1.0 - beta * beta) - 1.0)
        else:
            e = 0.5 * mc2 * beta * beta
    return np.where((beta > 0) & (beta < 1), e, np.nan)


def depth_mapping(ta: np.ndarray, tb: np.ndarray, x_mid: np.ndarray, n: int, times: np.ndarray) -> np.ndarray:
    """Depth of origin (1e15 at/cm2) at given times from the bricks' time -> depth mapping.

    A species' bricks are contiguous from the surface, so the brick boundaries follow exactly
    from the mid depths: x_0 = 0, x_(i+1) = 2 x_mid_i - x_i. NaN outside the simulated range.
    """
    if n == 0:
        return np.full(np.shape(times), np.nan)
    # the recurrence solved: x_k = 2 (-1)^(k+1) sum_{i<k} (-1)^i x_mid_i
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    xb = np.empty(n + 1)
    xb[0] = 0.0
    xb[1:] = 2.0 * sign * np.cumsum(sign * x_mid[:n])
    tt = np.concatenate([ta[:n], tb[n - 1:n]])
    order = np.argsort(tt, kind="stable")
    return np.interp(times, tt[order], xb[order], left=np.nan, right=np.nan)


def to_dataset(exp: Experiment, inputs: EngineInputs, spec: np.ndarray, bricks: Bricks) -> xr.Dataset:
    """The simulation result as an :class:`xarray.Dataset` (see :func:`recoilsim.forward.simulate.simulate`)."""
    n, ta, tb, x_mid = bricks.n, bricks.ta, bricks.tb, bricks.x_mid
    det = exp.detector
    species = inputs.species
    times = det.channel_times_ns()
    labels = [sp.label for sp in species]
    iso_depth = np.full((len(species), det.n_channels), np.nan)
    iso_energy = np.full((len(species), det.n_channels), np.nan)
    for i, sp in enumerate(species):
        nb = int(np.count_nonzero(ta[i, :n] > 0))
        sel = ta[i, :n] > 0
        if nb:
            iso_depth[i] = depth_mapping(ta[i, :n][sel], tb[i, :n][sel], x_mid[i, :n][sel], nb, times)
        iso_energy[i] = energy_from_times(times, sp.mass_u, det.flight_length_m, exp.options.relativistic)
    iso_depth_nm = exp.sample.depth_1e15_to_nm(np.nan_to_num(iso_depth, nan=-1.0))
    iso_depth_nm = np.where(np.isnan(iso_depth), np.nan, iso_depth_nm)
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
