"""Energy spectra from TOF spectra: counts per MeV of energy in flight, per element.

A channel spans the flight times [t_lo, t_hi]; a recoil of mass M flying the length L in time t
has the kinetic energy E(t) = M c^2 (1/sqrt(1 - beta^2) - 1), beta = L/(c t) (classically
E = M L^2 / (2 t^2)), see :func:`recoilsim.kernels.kinematics.energy_from_time`. The counts of
a channel spread uniformly over [E(t_hi), E(t_lo)], which is the Jacobian |dt/dE| of the
time-to-energy map applied channel by channel and keeps the total number of counts exactly.
Every isotope uses its own mass, and an element's spectrum sums its isotopes on one energy
grid (6Li and 7Li of one flight time have different energies).

Units: MeV, ns, counts per MeV.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from ..errors import RecoilsimError
from ..kernels.kinematics import energy_from_time

__all__ = ["energy_edges_MeV", "energy_spectra"]


def _flight(ds: xr.Dataset) -> tuple[float, bool, float, float]:
    """(flight length m, relativistic, calibration a ns/ch, b ns) from the dataset's record."""
    try:
        rec = json.loads(ds.attrs["experiment"])
        det = rec["detector"]
        return (float(det["flight_length_m"]), bool(rec["options"]["relativistic"]),
                float(det["calibration_a_ns"]), float(det["calibration_b_ns"]))
    except (KeyError, TypeError, ValueError):
        raise RecoilsimError("ds", "no experiment record", "spectra from recoilsim.simulate (attrs 'experiment')") from None


def energy_edges_MeV(ds: xr.Dataset, mass_u: float) -> np.ndarray:
    """Energy (MeV) at the channel edges (n_channels + 1, channel order) for a particle of
    ``mass_u``; NaN where the time is not a possible flight time (t <= L/c or t <= 0)."""
    L, rel, a, b = _flight(ds)
    n = ds.sizes["channel"]
    t = a * (np.arange(n + 1) - 0.5) + b
    e = np.array([energy_from_time(float(x), float(mass_u), L, rel) for x in t])
    return np.where(np.isfinite(e) & (t > 0), e, np.nan)


def _rebin(e_edges: np.ndarray, counts: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Counts of channels with energy edges e_edges (n + 1) spread uniformly over each channel's
    energy span and summed into the bins of ``grid`` (increasing edges)."""
    lo = np.minimum(e_edges[:-1], e_edges[1:])
    hi = np.maximum(e_edges[:-1], e_edges[1:])
    ok = np.isfinite(lo) & np.isfinite(hi) & (hi > lo) & (counts != 0)
    lo, hi, c = lo[ok], hi[ok], counts[ok]
    # counts below each grid edge, F(g) = sum of c x (the fraction of [lo, hi] below g); a bin
    # holds F(right edge) - F(left edge), which is c x overlap / (hi - lo) summed over channels
    below = c @ np.clip((grid[None, :] - lo[:, None]) / (hi - lo)[:, None], 0.0, 1.0)
    return np.diff(below)


def energy_spectra(ds: xr.Dataset, n_bins: int = 400, e_max_MeV: float | None = None) -> xr.Dataset:
    """Energy spectra per element (and per isotope) from simulated TOF spectra.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`recoilsim.forward.simulate.simulate`.
    n_bins : int
        Number of energy bins from 0 to ``e_max_MeV``.
    e_max_MeV : float, optional
        Upper end of the energy axis; default the highest energy with counts, plus 5 %.

    Returns
    -------
    xarray.Dataset
        ``counts_per_MeV(element, energy)``, ``isotope_counts_per_MeV(isotope, energy)``,
        coordinate ``energy_MeV`` (bin centres), ``energy_edges_MeV``; attrs as ``ds``.
        sum(counts_per_MeV) x bin width equals the counts of channels with a flight energy.
    """
    if not isinstance(ds, xr.Dataset) or "counts_isotope" not in ds or "isotope_mass_u" not in ds.coords:
        raise RecoilsimError("ds", type(ds).__name__, "spectra from recoilsim.simulate")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or not 2 <= n_bins <= 1_000_000:
        raise RecoilsimError("n_bins", n_bins, "an integer from 2 to 1000000")
    isotopes = [str(i) for i in ds["isotope"].values]
    masses = np.asarray(ds["isotope_mass_u"].values, dtype=float)
    edges = [energy_edges_MeV(ds, m) for m in masses]
    counts = np.asarray(ds["counts_isotope"].values, dtype=float)
    if e_max_MeV is None:
        tops = [np.nanmax(np.maximum(e[:-1], e[1:])[c > 0]) for e, c in zip(edges, counts)
                if np.any((c > 0) & np.isfinite(np.maximum(e[:-1], e[1:])))]
        e_max_MeV = 1.05 * max(tops) if tops else 1.0
    if not (np.isfinite(e_max_MeV) and e_max_MeV > 0):
        raise RecoilsimError("e_max_MeV", e_max_MeV, "a positive energy in MeV")
    grid = np.linspace(0.0, float(e_max_MeV), int(n_bins) + 1)
    width = np.diff(grid)
    iso = np.array([_rebin(e, c, grid) / width for e, c in zip(edges, counts)])
    elements = [str(e) for e in ds["element"].values]
    el = np.zeros((len(elements), grid.size - 1))
    for i, label in enumerate(isotopes):
        z_el = _element_of(ds, i)
        if z_el in elements:
            el[elements.index(z_el)] += iso[i]
    out = xr.Dataset(
        {"counts_per_MeV": (("element", "energy"), el), "isotope_counts_per_MeV": (("isotope", "energy"), iso)},
        coords={"element": elements, "isotope": isotopes, "energy_MeV": ("energy", 0.5 * (grid[1:] + grid[:-1])),
                "energy_edges_MeV": ("energy_edge", grid)},
        attrs=dict(ds.attrs))
    out["counts_per_MeV"].attrs.update(units="counts/MeV", long_name="counts per MeV of energy in flight")
    out["energy_MeV"].attrs.update(units="MeV", long_name="energy in flight (after the T1 foil)")
    return out


def _element_of(ds: xr.Dataset, i: int) -> str:
    """The element label of isotope i as simulate() names elements ('Cu-scattered' for beam ions)."""
    label = str(ds["isotope"].values[i])
    sym = label.lstrip("0123456789").split("-")[0]
    return f"{sym}-scattered" if "scattered" in label else sym
