"""Views of simulated spectra beside each other (matplotlib Agg, saved atomically).

* :func:`plot_overview`: every element's TOF spectrum against time of flight (ns) beside its
  energy spectrum (counts per MeV, :func:`recoilsim.analysis.energy_spectra.energy_spectra`).
  No depth axis: one element's depth scale would mislabel the others.
* :func:`plot_element_panels`: one panel per element (or the chosen ones), time axis below, that
  element's own depth of origin (nm) on top, the sample's layer boundaries marked where that
  element's signal crosses them, and optionally measured counts with Pearson residuals
  (measured - simulated) / sqrt(simulated) below (an overlay, no fit).

Both take the experiment's name as title.
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Mapping, Sequence

import numpy as np
import xarray as xr

from ..errors import RecoilsimError
from .save import decades_only, new_figure, save_figure
from .spectra import channel_depth_mapping

__all__ = ["plot_overview", "plot_element_panels", "layer_boundary_times", "pearson_residuals", "measured_counts"]


def _record(ds) -> dict:
    try:
        return json.loads(ds.attrs["experiment"])
    except (KeyError, TypeError, ValueError):
        return {}


def _elements(ds, elements) -> list[str]:
    have = [str(e) for e in ds["element"].values]
    if elements is None:
        return have
    elements = [elements] if isinstance(elements, str) else list(elements)
    for e in elements:
        if e not in have:
            raise RecoilsimError("elements", e, f"an element of the spectra ({', '.join(have)})")
    return elements


#: lowest level drawn, relative to a curve's maximum (the far tails of the Gaussian spread)
DYNAMIC_RANGE = 1e-4


def _window(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """x range of the points above DYNAMIC_RANGE x the maximum, padded by 8 %."""
    top = np.nanmax(y) if np.any(np.isfinite(y)) else 0.0
    nz = np.nonzero(np.isfinite(y) & (y > DYNAMIC_RANGE * top) & (y > 0))[0]
    if nz.size == 0:
        return float(np.nanmin(x)), float(np.nanmax(x))
    lo, hi = float(min(x[nz[0]], x[nz[-1]])), float(max(x[nz[0]], x[nz[-1]]))
    pad = max(0.08 * (hi - lo), 1e-9)
    return lo - pad, hi + pad


def layer_boundary_times(ds, element: str) -> list[tuple[str, float]]:
    """(name of the layer below, time of flight ns) where ``element``'s depth of origin crosses
    each boundary between layers (depth from ``depth_1e15(element, channel)`` against
    ``time_ns``); boundaries outside the simulated depth range are left out."""
    layers = _record(ds).get("sample", [])
    depth = np.asarray(ds["depth_1e15"].sel(element=element).values, dtype=float)
    t = np.asarray(ds["time_ns"].values, dtype=float)
    ok = np.isfinite(depth)
    if ok.sum() < 2:
        return []
    depth, t = depth[ok], t[ok]
    order = np.argsort(depth, kind="stable")
    depth, t = depth[order], t[order]
    out = []
    z = 0.0
    for below, layer in zip(layers[1:], layers[:-1]):
        z += float(layer["areal_density_1e15"])
        if depth[0] <= z <= depth[-1]:
            out.append((str(below.get("name") or "layer"), float(np.interp(z, depth, t))))
    return out


def pearson_residuals(measured: np.ndarray, simulated: np.ndarray) -> np.ndarray:
    """(measured - simulated) / sqrt(simulated) (Poisson variance of the simulation); NaN where
    the simulation is below 1e-9 counts."""
    m = np.asarray(measured, dtype=float)
    s = np.asarray(simulated, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 1e-9, (m - s) / np.sqrt(np.maximum(s, 1e-9)), np.nan)


def plot_overview(ds: xr.Dataset, path: os.PathLike | str | None = None, elements: Sequence[str] | None = None,
                  inputs: Iterable[os.PathLike | str] = (), n_bins: int = 300):
    """TOF spectra against time (left) beside energy spectra (right), every element."""
    from ..analysis.energy_spectra import energy_spectra

    els = _elements(ds, elements)
    es = energy_spectra(ds, n_bins=n_bins)
    fig = new_figure(dpi=110, figsize=(12, 4.8))
    ax_t, ax_e = fig.subplots(1, 2)
    t = np.asarray(ds["time_ns"].values, dtype=float)
    e = np.asarray(es["energy_MeV"].values, dtype=float)
    lo_t, hi_t, lo_e, hi_e = [], [], [], []
    for name in els:
        y = np.asarray(ds["counts"].sel(element=name).values, dtype=float)
        (line,) = ax_t.plot(t, np.where(y > 0, y, np.nan), drawstyle="steps-mid", lw=1.0, label=name)
        ye = np.asarray(es["counts_per_MeV"].sel(element=name).values, dtype=float)
        ax_e.plot(e, np.where(ye > 0, ye, np.nan), drawstyle="steps-mid", lw=1.0, color=line.get_color(), label=name)
        for (lo, hi), ys, xs in (((lo_t, hi_t), y, t), ((lo_e, hi_e), ye, e)):
            a, b = _window(ys, xs)
            lo.append(a)
            hi.append(b)
    for ax, lo, hi in ((ax_t, lo_t, hi_t), (ax_e, lo_e, hi_e)):
        _log_limits(ax)
        ax.grid(alpha=0.25)
        ax.legend(fontsize=8)
        if lo:
            ax.set_xlim(min(lo), max(hi))
    ax_e.set_xlim(left=max(0.0, ax_e.get_xlim()[0]))
    ax_t.set_xlabel("time of flight (ns)")
    ax_t.set_ylabel("counts per channel")
    ax_e.set_xlabel("energy in flight (MeV)")
    ax_e.set_ylabel("counts per MeV")
    fig.suptitle(_record(ds).get("name", ""), fontsize=11)
    # margins as tight_layout sets them for two log axes (it costs a draw)
    fig.subplots_adjust(left=0.065, right=0.988, bottom=0.12, top=0.9, wspace=0.135)
    if path is not None:
        save_figure(fig, path, inputs)
    return fig


def _log_limits(ax) -> None:
    """Log y axis from DYNAMIC_RANGE x the highest drawn value to twice that value."""
    ys = [np.nanmax(ln.get_ydata()) for ln in ax.get_lines() if np.any(np.isfinite(ln.get_ydata()))]
    ax.set_yscale("log")
    decades_only(ax.yaxis)
    if ys:
        top = max(ys)
        ax.set_ylim(top * DYNAMIC_RANGE, top * 2.0)


def measured_counts(measured, name: str, channels: np.ndarray) -> np.ndarray | None:
    """Measured counts of ``name`` on the simulation's channels (NaN where not measured)."""
    if isinstance(measured, xr.Dataset):
        if "counts" in measured and "element" in measured.dims:
            if name not in [str(e) for e in measured["element"].values]:
                return None
            da = measured["counts"].sel(element=name)
        elif name in measured:
            da = measured[name]
        else:
            return None
        ch = np.asarray(da["channel"].values, dtype=np.int64)
        vals = np.asarray(da.values, dtype=float)
    elif isinstance(measured, Mapping):
        if name not in measured:
            return None
        vals = np.asarray(measured[name], dtype=float)
        ch = channels[: vals.size].astype(np.int64)
        vals = vals[: ch.size]
    else:
        raise RecoilsimError("measured", type(measured).__name__, "a Dataset or a mapping element -> counts")
    out = np.full(channels.size, np.nan)
    pos = {int(c): i for i, c in enumerate(channels)}
    for c, v in zip(ch, vals):
        if int(c) in pos:
            out[pos[int(c)]] = v
    return out


def plot_element_panels(ds: xr.Dataset, path: os.PathLike | str | None = None,
                        elements: Sequence[str] | None = None, measured=None,
                        inputs: Iterable[os.PathLike | str] = ()):
    """One panel per element: counts against time of flight, that element's depth (nm) on top,
    layer boundaries marked; with ``measured`` (Dataset ``counts(element, channel)``, a Dataset
    of per-element columns, or a mapping element -> counts), measured points and residuals."""
    els = _elements(ds, elements)
    n = len(els)
    rows = 2 * n if measured is not None else n
    ratios = [3, 1] * n if measured is not None else [1] * n
    fig = new_figure(dpi=110, figsize=(8, (3.2 if measured is None else 4.2) * n))
    axes = np.atleast_1d(fig.subplots(rows, 1, gridspec_kw={"height_ratios": ratios}))
    t = np.asarray(ds["time_ns"].values, dtype=float)
    channels = np.asarray(ds["channel"].values)
    a_ns = float(t[1] - t[0]) if t.size > 1 else 1.0
    for k, name in enumerate(els):
        ax = axes[2 * k] if measured is not None else axes[k]
        y = np.asarray(ds["counts"].sel(element=name).values, dtype=float)
        ax.plot(t, np.where(y > 0, y, np.nan), drawstyle="steps-mid", lw=1.1, color="C0", label=f"{name} simulated")
        m = measured_counts(measured, name, channels) if measured is not None else None
        if m is not None:
            ax.plot(t, np.where(m > 0, m, np.nan), ".", ms=2.5, color="k", label=f"{name} measured")
        _log_limits(ax)
        ax.set_ylabel("counts / channel")
        ax.grid(alpha=0.25)
        lo, hi = _window(y, t)
        ax.set_xlim(lo, hi)
        for below, tb in layer_boundary_times(ds, name):
            ax.axvline(tb, color="0.4", ls="--", lw=0.8)
            ax.text(tb, 0.97, f" {below}", transform=ax.get_xaxis_transform(), fontsize=7, va="top", color="0.3")
        mp = channel_depth_mapping(ds, name)
        if mp is not None:
            ch_of_t = (lambda x, b=float(t[0]): (np.asarray(x, dtype=float) - b) / a_ns)
            t_of_ch = (lambda c, b=float(t[0]): np.asarray(c, dtype=float) * a_ns + b)
            sec = ax.secondary_xaxis("top", functions=(lambda x, f=mp[0]: f(ch_of_t(x)),
                                                       lambda d, g=mp[1]: t_of_ch(g(d))))
            sec.set_xlabel(f"depth of {name} origin (nm)", fontsize=8)
        ax.legend(fontsize=8, loc="lower left")
        if measured is not None:
            r_ax = axes[2 * k + 1]
            if m is not None:
                r_ax.plot(t, pearson_residuals(m, y), ".", ms=2.5, color="k")
            r_ax.axhline(0.0, color="C0", lw=0.8)
            r_ax.set_xlim(lo, hi)
            r_ax.set_ylabel("(meas - sim) / sqrt(sim)", fontsize=7)
            r_ax.grid(alpha=0.25)
    axes[-1].set_xlabel("time of flight (ns)")
    fig.suptitle(_record(ds).get("name", ""), fontsize=11)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path, inputs)
    return fig
