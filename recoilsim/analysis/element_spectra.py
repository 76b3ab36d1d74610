"""Measured spectra from Potku list-mode events: per cut, per isotope or per simulated
element (rebinned, with the TOF calibration of the bins), and the TOF-E histogram.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from ..errors import RecoilsimError
from ..io.potku_events import event_arrays
from ..io.potku_selections import CutFile, Selection

__all__ = ["tof_spectra", "spectra_from_cuts", "rebin_calibration", "element_spectra", "tof_e_histogram",
           "calibration_pair"]

def _calibration_time_ns(channel: np.ndarray, calibration) -> np.ndarray | None:
    if calibration is None:
        return None
    slope, offset = calibration_pair(calibration)
    return slope * channel + offset


def calibration_pair(calibration) -> tuple[float, float]:
    """(slope_ns, offset_ns) from a pair or a dict (``slope_ns``/``offset_ns`` or Potku's s)."""
    if isinstance(calibration, Mapping):
        slope = calibration.get("slope_ns")
        offset = calibration.get("offset_ns")
        if slope is None and "slope" in calibration:
            slope = float(calibration["slope"]) * 1e9
            offset = float(calibration.get("offset", 0.0)) * 1e9
    else:
        try:
            slope, offset = calibration
        except (TypeError, ValueError):
            raise RecoilsimError("calibration", calibration, "(slope_ns, offset_ns) or a dict with slope_ns/offset_ns") from None
    slope = float(slope)
    offset = float(offset)
    if not (np.isfinite(slope) and np.isfinite(offset)) or slope == 0:
        raise RecoilsimError("calibration", (slope, offset), "finite slope (non-zero) and offset in ns")
    return slope, offset


def tof_spectra(events: xr.Dataset, selections: Sequence[Selection], n_channels: int | None = None,
                by: str = "cut", calibration=None, apply_weight: bool = False) -> xr.Dataset:
    """Per-cut (or per-isotope) TOF spectra from list-mode events and Potku polygons.

    Parameters
    ----------
    events : Dataset from :func:`read_asc`
    selections : list of :class:`Selection` (e.g. from :func:`read_sel`)
    n_channels : int, optional
        Length of the channel axis (default: largest TOF channel in the data + 1).
    by : {'cut', 'isotope'}
        ``'cut'``: one spectrum per polygon (labels ``'7Li.0'``); ``'isotope'``: polygons of the
        same element string merged (an event inside two of them counted once), labels ``'7Li'``.
    calibration : (slope_ns, offset_ns) or dict, optional
        Adds a ``time_ns`` coordinate, t = slope * channel + offset. A dict from
        :func:`read_potku_settings` (``calibration`` entry) works directly.
    apply_weight : bool
        Multiply counts by Potku's weight factor (float counts) instead of raw integer counts.

    Returns
    -------
    xarray.Dataset
        ``counts`` (cut, channel); coords ``cut``, ``channel``, ``element``, ``mass_number``
        (0 = natural), ``isotope``, ``type``, ``weight_factor`` and ``n_events`` per cut;
        ``time_ns`` if calibrated.
    """
    tof, en, _ = event_arrays(events)
    if not selections:
        raise RecoilsimError("selections", "[]", "at least one Selection")
    if by not in ("cut", "isotope"):
        raise RecoilsimError("by", by, "'cut' or 'isotope'")
    if n_channels is None:
        n_channels = int(tof.max()) + 1 if tof.size else 1
    if isinstance(n_channels, bool) or not isinstance(n_channels, (int, np.integer)) or n_channels < 1:
        raise RecoilsimError("n_channels", n_channels, "a positive integer")
    n_channels = int(n_channels)
    groups: dict[str, list[Selection]] = {}
    for s in selections:
        if not isinstance(s, Selection):
            raise RecoilsimError("selections", type(s).__name__, "Selection objects (read_sel)")
        key = s.label if by == "cut" else s.isotope_label
        groups.setdefault(key, []).append(s)
    labels = list(groups)
    counts = np.zeros((len(labels), n_channels), dtype=np.float64 if apply_weight else np.int64)
    nev = np.zeros(len(labels), dtype=np.int64)
    for i, key in enumerate(labels):
        m = np.zeros(tof.shape, dtype=bool)
        for s in groups[key]:
            m |= s.contains(tof, en)
        t = tof[m]
        nev[i] = t.size
        t = t[t < n_channels]
        h = np.bincount(t, minlength=n_channels)[:n_channels]
        counts[i] = h * groups[key][0].weight_factor if apply_weight else h
    first = [groups[k][0] for k in labels]
    channel = np.arange(n_channels)
    coords = {
        "cut": labels,
        "channel": channel,
        "element": ("cut", [s.element for s in first]),
        "mass_number": ("cut", np.array([s.mass_number or 0 for s in first], dtype=np.int64)),
        "isotope": ("cut", [s.isotope_label for s in first]),
        "type": ("cut", [s.type for s in first]),
        "weight_factor": ("cut", np.array([s.weight_factor for s in first])),
        "n_events": ("cut", nev),
    }
    tns = _calibration_time_ns(channel.astype(float), calibration)
    if tns is not None:
        coords["time_ns"] = ("channel", tns, {"units": "ns"})
    ds = xr.Dataset({"counts": (("cut", "channel"), counts, {"units": "counts"})}, coords=coords,
                    attrs={"source": events.attrs.get("source", ""), "by": by,
                           "weighted": int(apply_weight), "n_events_total": int(tof.size)})
    return ds


def spectra_from_cuts(cuts: Mapping[str, CutFile] | Sequence[CutFile], n_channels: int,
                      calibration=None) -> xr.Dataset:
    """TOF spectra built directly from ``.cut`` files (one spectrum per cut label)."""
    items = list(cuts.values()) if isinstance(cuts, Mapping) else list(cuts)
    if not items:
        raise RecoilsimError("cuts", "[]", "at least one CutFile")
    n_channels = int(n_channels)
    if n_channels < 1:
        raise RecoilsimError("n_channels", n_channels, "a positive integer")
    counts = np.zeros((len(items), n_channels), dtype=np.int64)
    for i, c in enumerate(items):
        t = c.tof[c.tof < n_channels]
        counts[i] = np.bincount(t, minlength=n_channels)[:n_channels]
    channel = np.arange(n_channels)
    coords = {
        "cut": [c.label if c.split is None else f"{c.label}.{c.split}" for c in items],
        "channel": channel,
        "element": ("cut", [c.element for c in items]),
        "mass_number": ("cut", np.array([c.mass_number or 0 for c in items], dtype=np.int64)),
        "isotope": ("cut", [c.isotope_label for c in items]),
        "type": ("cut", [c.type for c in items]),
        "weight_factor": ("cut", np.array([c.weight_factor for c in items])),
        "n_events": ("cut", np.array([c.tof.size for c in items], dtype=np.int64)),
    }
    tns = _calibration_time_ns(channel.astype(float), calibration)
    if tns is not None:
        coords["time_ns"] = ("channel", tns, {"units": "ns"})
    return xr.Dataset({"counts": (("cut", "channel"), counts, {"units": "counts"})}, coords=coords,
                      attrs={"source": "cut files"})


def rebin_calibration(slope_ns: float, offset_ns: float, rebin: int) -> tuple[float, float]:
    """TOF calibration of ``rebin``-channel bins: bin j holds channels rebin*j .. rebin*j + rebin - 1.

    With t = slope * channel + offset at channel centres (channel edges at +-0.5), bin j is
    centred on channel rebin*j + (rebin - 1)/2, so t = (rebin * slope) * j + offset +
    slope * (rebin - 1) / 2, and the bin edges are exactly the original channel edges.
    """
    if isinstance(rebin, bool) or not isinstance(rebin, (int, np.integer)) or rebin < 1:
        raise RecoilsimError("rebin", rebin, "a positive integer number of channels per bin")
    return float(slope_ns) * rebin, float(offset_ns) + float(slope_ns) * (rebin - 1) / 2.0


def element_spectra(events: xr.Dataset, selections: Sequence[Selection], elements: Mapping[str, Sequence[str]],
                    n_channels: int, rebin: int = 1, calibration=None) -> xr.Dataset:
    """TOF spectra per simulated element from Potku polygons, optionally rebinned.

    Parameters
    ----------
    events : Dataset from :func:`read_asc`
    selections : the polygons (:func:`read_sel`)
    elements : {element: [isotope labels]}, e.g. ``{'Li': ['6Li', '7Li'], 'O': ['16O'], 'Mn': ['Mn']}``;
        an element's spectrum counts every event inside any of its polygons once.
    n_channels : number of TOF channels kept (0 .. n_channels - 1, before rebinning; a multiple
        of ``rebin``); events at later channels are counted in ``n_events`` only.
    rebin : channels per bin.
    calibration : (slope_ns, offset_ns) or dict as :func:`tof_spectra`; gives ``time_ns`` per bin
        (:func:`rebin_calibration`).

    Returns
    -------
    xarray.Dataset
        ``counts`` (element, channel) with channel = bin index; coordinates ``n_events`` (all
        events in the element's polygons), ``n_in_range`` (those below ``n_channels``), ``cuts``
        (the isotope labels, comma separated) and ``time_ns`` if calibrated; attrs ``rebin``,
        ``n_channels_raw``.
    """
    tof, en, _ = event_arrays(events)
    if not isinstance(elements, Mapping) or not elements:
        raise RecoilsimError("elements", elements, "a mapping element -> list of isotope labels, e.g. {'Li': ['6Li', '7Li']}")
    if isinstance(n_channels, bool) or not isinstance(n_channels, (int, np.integer)) or n_channels < 1:
        raise RecoilsimError("n_channels", n_channels, "a positive integer")
    rebin_calibration(1.0, 0.0, rebin)  # validates rebin
    if n_channels % rebin:
        raise RecoilsimError("n_channels", n_channels, f"a multiple of rebin ({rebin})")
    have = {s.isotope_label for s in selections}
    nb = int(n_channels) // int(rebin)
    counts = np.zeros((len(elements), nb), dtype=np.int64)
    nev = np.zeros(len(elements), dtype=np.int64)
    nin = np.zeros(len(elements), dtype=np.int64)
    for i, (el, labels) in enumerate(elements.items()):
        labels = [labels] if isinstance(labels, str) else list(labels)
        missing = [lab for lab in labels if lab not in have]
        if not labels or missing:
            raise RecoilsimError(f"elements[{el}]", missing or labels,
                                 f"isotope labels of the selections ({', '.join(sorted(have))})")
        m = np.zeros(tof.shape, dtype=bool)
        for sel in selections:
            if sel.isotope_label in labels:
                m |= sel.contains(tof, en)
        t = tof[m]
        nev[i] = t.size
        t = t[t < n_channels]
        nin[i] = t.size
        counts[i] = np.bincount(t // rebin, minlength=nb)[:nb]
    coords = {"element": list(elements), "channel": np.arange(nb), "n_events": ("element", nev),
              "n_in_range": ("element", nin),
              "cuts": ("element", [",".join([v] if isinstance(v, str) else v) for v in elements.values()])}
    if calibration is not None:
        slope, offset = calibration_pair(calibration)
        a, b = rebin_calibration(slope, offset, rebin)
        coords["time_ns"] = ("channel", a * np.arange(nb) + b, {"units": "ns"})
    return xr.Dataset({"counts": (("element", "channel"), counts, {"units": "counts"})}, coords=coords,
                      attrs={"source": events.attrs.get("source", ""), "rebin": int(rebin),
                             "n_channels_raw": int(n_channels)})


def tof_e_histogram(events: xr.Dataset, tof_bin: int = 8, energy_bin: int = 8,
                    tof_max: int | None = None, energy_max: int | None = None) -> xr.DataArray:
    """2-D TOF-E histogram (counts per ``tof_bin`` x ``energy_bin`` channels).

    Returns a DataArray with dims ``('energy', 'tof')`` whose coordinates are the lower channel
    edge of each bin (attrs give the bin widths). Vectorised with one ``bincount``.
    """
    tof, en, _ = event_arrays(events)
    for name, v in (("tof_bin", tof_bin), ("energy_bin", energy_bin)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise RecoilsimError(name, v, "a positive integer number of channels")
    tmax = int(tof.max()) + 1 if tof_max is None else int(tof_max)
    emax = int(en.max()) + 1 if energy_max is None else int(energy_max)
    if tmax < 1 or emax < 1:
        raise RecoilsimError("tof_max/energy_max", (tof_max, energy_max), "positive channel limits")
    nt = -(-tmax // tof_bin)
    ne = -(-emax // energy_bin)
    keep = (tof < tmax) & (en < emax)
    if keep.all():
        idx = (en // energy_bin).astype(np.int64) * nt + tof // tof_bin
    else:
        idx = (en[keep] // energy_bin).astype(np.int64) * nt + tof[keep] // tof_bin
    h = np.bincount(idx, minlength=nt * ne).reshape(ne, nt)
    return xr.DataArray(h, dims=("energy", "tof"),
                        coords={"energy": np.arange(ne) * energy_bin, "tof": np.arange(nt) * tof_bin},
                        name="counts",
                        attrs={"tof_bin": int(tof_bin), "energy_bin": int(energy_bin), "units": "counts",
                               "source": events.attrs.get("source", "")})

