"""Plots of simulated spectra (matplotlib, Agg canvas: no screen needed).

* :func:`plot_spectra`: counts against TOF channel for each element, log scale, with a second x
  axis on top giving the depth (nm) of one element's origin, like Fig. 4a of Kurihara et al.,
  J. Solid State Electrochem. (2024).
* :func:`plot_tofe_map`: a simulated TOF-E coincidence map (channel against energy).

Measured TOF-E histograms with cuts are plotted by :func:`recoilsim.plots.tof_e.plot_tof_e`.
Figures are written by :func:`recoilsim.plots.save.save_figure` (atomic, never over an input
file). Every function returns the :class:`matplotlib.figure.Figure`.
"""

from __future__ import annotations

import os
from typing import Iterable, Sequence

import numpy as np

from ..errors import RecoilsimError
from .save import decades_only, new_figure, save_figure

__all__ = ["plot_spectra", "plot_tofe_map", "channel_depth_mapping"]



def _monotone(ch: np.ndarray, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Finite points of a channel -> depth relation, made monotonic (running max/min along the
    main trend) and strictly increasing in both arrays (for np.interp); None if < 2 points."""
    ok = np.isfinite(ch) & np.isfinite(depth)
    ch, depth = ch[ok].astype(float), depth[ok].astype(float)
    if ch.size < 2:
        return None
    o = np.argsort(ch, kind="stable")
    ch, depth = ch[o], depth[o]
    increasing = depth[-1] >= depth[0]
    depth = np.maximum.accumulate(depth) if increasing else np.minimum.accumulate(depth)
    if not increasing:
        ch, depth = ch[::-1], depth[::-1]  # now depth non-decreasing
    # keep strictly increasing depth (first channel of a flat run)
    keep = np.concatenate([[True], np.diff(depth) > 0])
    ch, depth = ch[keep], depth[keep]
    if ch.size < 2:
        return None
    return ch, depth


def _interp_extrap(x, xp, fp):
    """Linear interpolation with linear extrapolation from the end segments (xp increasing)."""
    x = np.asarray(x, dtype=float)
    y = np.interp(x, xp, fp)
    lo = x < xp[0]
    hi = x > xp[-1]
    if np.any(lo):
        s = (fp[1] - fp[0]) / (xp[1] - xp[0])
        y = np.where(lo, fp[0] + s * (x - xp[0]), y)
    if np.any(hi):
        s = (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
        y = np.where(hi, fp[-1] + s * (x - xp[-1]), y)
    return y


def channel_depth_mapping(ds, name: str = "Li", depth_offset_nm: float = 0.0):
    """Functions (channel -> depth nm, depth nm -> channel) for one element or isotope.

    Built from the dataset's ``depth_nm(element, channel)`` (or ``isotope_depth_nm``) coordinate:
    NaN channels dropped, made monotonic, interpolated linearly (extrapolated from the end
    segments). ``depth_offset_nm`` is subtracted (e.g. the Cu thickness, to count depth from the
    Cu/LiPON interface as in the paper). Returns None where fewer than two channels have a depth.
    """
    if "element" in ds.dims and "depth_nm" in ds.coords and name in list(ds["element"].values):
        d = ds["depth_nm"].sel(element=name)
    elif "isotope" in ds.dims and "isotope_depth_nm" in ds.coords and name in list(ds["isotope"].values):
        d = ds["isotope_depth_nm"].sel(isotope=name)
    else:
        return None
    ch = np.asarray(ds["channel"].values, dtype=float)
    m = _monotone(ch, np.asarray(d.values, dtype=float) - depth_offset_nm)
    if m is None:
        return None
    xp, fp = m  # xp: channels (ordered so that fp increases), fp: depth increasing
    if xp[-1] >= xp[0]:
        def fwd(x):
            return _interp_extrap(x, xp, fp)

        def inv(y):
            return _interp_extrap(y, fp, xp)
    else:  # depth decreases with channel (negative TOF slope)
        xr, fr = xp[::-1], fp[::-1]

        def fwd(x):
            return _interp_extrap(x, xr, fr)

        def inv(y):
            return _interp_extrap(y, fp, xp)
    return fwd, inv


def _spectrum(ds, name: str):
    if "element" in ds.dims and "counts" in ds and name in list(ds["element"].values):
        return ds["counts"].sel(element=name)
    if "isotope" in ds.dims and "counts_isotope" in ds and name in list(ds["isotope"].values):
        return ds["counts_isotope"].sel(isotope=name)
    allowed = []
    if "element" in ds.dims:
        allowed += [str(x) for x in ds["element"].values]
    if "isotope" in ds.dims:
        allowed += [str(x) for x in ds["isotope"].values]
    raise RecoilsimError("elements", name, f"an element or isotope of the dataset ({', '.join(allowed)})")


def plot_spectra(ds, elements: Sequence[str] | None = None, path: os.PathLike | str | None = None,
                 depth_axis_for: str | None = "Li", logy: bool = True, *, measured=None,
                 depth_offset_nm: float = 0.0, title: str | None = None, xlim: tuple | None = None,
                 inputs: Iterable[os.PathLike | str] = ()):
    """Counts against TOF channel per element, with a depth axis (nm) on top for one element.

    Parameters
    ----------
    ds : xarray.Dataset
        Spectra from :func:`recoilsim.forward.simulate.simulate` (``counts(element, channel)``,
        ``counts_isotope(isotope, channel)``, coordinate ``depth_nm(element, channel)``).
    elements : sequence of str, optional
        Elements (or isotope labels such as ``'7Li'``) to draw; default every element.
    path : path-like, optional
        Write the figure there (.png/.svg/.pdf) atomically; never over ``inputs``.
    depth_axis_for : str or None
        Element whose depth of origin labels the top axis (None: no top axis). Skipped when the
        element has no depth mapping in the dataset.
    logy : bool
        Logarithmic counts axis (zero counts are not drawn).
    measured : xarray.Dataset or mapping, optional
        Measured spectra to overlay as points: a Dataset with ``counts(element, channel)`` or a
        mapping name -> counts array (same channels as ``ds``).
    depth_offset_nm : float
        Subtracted from the depth on the top axis (e.g. 30 to count from the Cu/LiPON interface).
    xlim : (float, float), optional
        Channel range; default from a little before the first channel with counts to the last.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import xarray as xr

    if not isinstance(ds, xr.Dataset) or "channel" not in ds.dims:
        raise RecoilsimError("ds", type(ds).__name__, "an xarray Dataset of spectra with a 'channel' dimension")
    if elements is None:
        if "element" in ds.dims:
            elements = [str(x) for x in ds["element"].values]
        elif "isotope" in ds.dims:
            elements = [str(x) for x in ds["isotope"].values]
        else:
            raise RecoilsimError("ds", "no 'element' or 'isotope' dimension", "spectra from simulate()")
    elif isinstance(elements, str):
        elements = [elements]
    ch = np.asarray(ds["channel"].values, dtype=float)
    fig = new_figure()
    ax = fig.add_subplot(111)
    ymax = 0.0
    colors = {}
    for name in elements:
        y = np.asarray(_spectrum(ds, name).values, dtype=float)
        yy = np.where(y > 0, y, np.nan) if logy else y
        (line,) = ax.plot(ch, yy, drawstyle="steps-mid", lw=1.1, label=name)
        colors[name] = line.get_color()
        if np.any(np.isfinite(y)):
            ymax = max(ymax, float(np.nanmax(y)))
    if measured is not None:
        for name in elements:
            m = None
            if isinstance(measured, xr.Dataset):
                if "element" in measured.dims and "counts" in measured and name in list(measured["element"].values):
                    m = measured["counts"].sel(element=name)
                    mch = np.asarray(measured["channel"].values, dtype=float)
            elif name in measured:
                m = np.asarray(measured[name], dtype=float)
                mch = ch[: m.size]
            if m is None:
                continue
            mv = np.asarray(getattr(m, "values", m), dtype=float)
            if logy:
                mv = np.where(mv > 0, mv, np.nan)
            ax.plot(mch, mv, ".", ms=2.5, color=colors.get(name), alpha=0.7, label=f"{name} measured")
    ax.set_xlabel("TOF channel")
    ax.set_ylabel("counts per channel")
    if logy:
        ax.set_yscale("log")
        decades_only(ax.yaxis)
        ax.set_ylim(bottom=0.5, top=max(ymax * 2.0, 10.0))
    if xlim is None:
        xlim = _auto_xlim(ds, elements, ch)
    ax.set_xlim(*xlim)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.25)
    if depth_axis_for:
        mp = channel_depth_mapping(ds, depth_axis_for, depth_offset_nm)
        if mp is not None:
            sec = ax.secondary_xaxis("top", functions=mp)
            if not depth_offset_nm:  # no depth above the surface: channels before it get no label
                from matplotlib.ticker import FuncFormatter
                sec.xaxis.set_major_formatter(FuncFormatter(lambda v, _: "" if v < -1e-9 else f"{v:g}"))
            lab = f"depth of {depth_axis_for} origin (nm)"
            if depth_offset_nm:
                lab = f"depth of {depth_axis_for} origin below {depth_offset_nm:g} nm (nm)"
            if len(elements) > 1:  # the scale holds for this element's curve only: say so, in its colour
                lab += f": {depth_axis_for} curve only"
            color = colors.get(depth_axis_for)
            sec.set_xlabel(lab, color=color)
            if color is not None:
                sec.tick_params(axis="x", colors=color)
    if title is None:
        title = _exp_name(ds)
    if title:
        ax.set_title(title, fontsize=10, pad=28 if depth_axis_for else 6)
    if logy:  # margins as tight_layout sets them for the decade labels (it costs a draw)
        fig.subplots_adjust(left=0.09, right=0.98, bottom=0.117, top=0.79 if depth_axis_for else 0.93)
    else:  # linear counts: the width of the tick labels varies
        fig.tight_layout()
    if path is not None:
        save_figure(fig, path, inputs)
    return fig


def _auto_xlim(ds, elements, ch):
    first = []
    for name in elements:
        y = np.asarray(_spectrum(ds, name).values, dtype=float)
        nz = np.nonzero(np.isfinite(y) & (y > 0))[0]
        if nz.size:
            first.append((nz[0], nz[-1]))
    if not first or ch.size < 2:
        return (ch[0], ch[-1])
    lo = min(f[0] for f in first)
    hi = max(f[1] for f in first)
    pad = max(0.1 * (hi - lo), 5.0)
    return (max(ch[0], ch[lo] - pad), min(ch[-1], ch[hi] + pad))


def _exp_name(ds) -> str:
    import json

    s = ds.attrs.get("experiment")
    if isinstance(s, str):
        try:
            return str(json.loads(s).get("name", ""))
        except (ValueError, AttributeError):
            return ""
    return ""


def plot_tofe_map(ds, path: os.PathLike | str | None = None, isotopes: Sequence[str] | None = None, *,
                  title: str | None = None, label: bool = True, dynamic_range: float = 1e-4,
                  inputs: Iterable[os.PathLike | str] = ()):
    """A simulated TOF-E coincidence map: TOF channel (x) against deposited energy (y), log colour.

    Parameters
    ----------
    ds : xarray.Dataset or DataArray
        A Dataset holding ``tofe`` or the DataArray itself, dims (``isotope`` or ``element``,
        ``channel``, ``energy_bin``) with coordinate ``energy_bin_MeV`` (bin centres, MeV).
    path : path-like, optional
        Write the figure there (.png/.svg/.pdf) atomically.
    isotopes : sequence of str, optional
        Which isotopes/elements to sum into the map (default all).
    label : bool
        Write each isotope's label at its most populated bin.
    dynamic_range : float
        Lowest colour level relative to the highest bin (the x range follows the bins above it).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import xarray as xr
    from matplotlib.colors import LogNorm

    da = ds["tofe"] if isinstance(ds, xr.Dataset) and "tofe" in ds else ds
    if not isinstance(da, xr.DataArray) or "channel" not in da.dims or "energy_bin" not in da.dims \
            or da.ndim != 3 or "energy_bin_MeV" not in da.coords:
        raise RecoilsimError("ds", type(ds).__name__,
                             "a TOF-E map 'tofe' with dims (isotope or element, channel, energy_bin) and "
                             "coordinate energy_bin_MeV")
    kdim = [d for d in da.dims if d not in ("channel", "energy_bin")][0]
    if isotopes is not None:
        names = [str(x) for x in da[kdim].values]
        bad = [i for i in isotopes if i not in names]
        if bad:
            raise RecoilsimError("isotopes", bad[0], f"one of {', '.join(names)}")
        da = da.sel({kdim: list(isotopes)})
    da = da.transpose(kdim, "energy_bin", "channel")
    total = np.asarray(da.sum(kdim).values, dtype=float)
    ch = np.asarray(da["channel"].values, dtype=float)
    e = np.asarray(da["energy_bin_MeV"].values, dtype=float)

    def edges(c):
        if c.size == 1:
            return np.array([c[0] - 0.5, c[0] + 0.5])
        mid = 0.5 * (c[1:] + c[:-1])
        return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])

    fig = new_figure((8, 6))
    ax = fig.add_subplot(111)
    data = np.ma.masked_invalid(np.where(total > 0, total, np.nan))
    vmax = float(data.max()) if data.count() else 1.0
    vmin = max(min(float(data.min()) if data.count() else 1.0, vmax), vmax * dynamic_range)
    data = np.ma.masked_less(data, vmin)
    mesh = ax.pcolormesh(edges(ch), edges(e), data, norm=LogNorm(vmin=vmin, vmax=max(vmax, vmin * 10)),
                         cmap="viridis", shading="flat")
    fig.colorbar(mesh, ax=ax, label="counts per bin")
    if label:
        for k in da[kdim].values:
            m = np.asarray(da.sel({kdim: k}).values, dtype=float)
            if np.any(m > 0):
                j, i = np.unravel_index(np.nanargmax(m), m.shape)
                ax.text(ch[i], e[j], str(k), fontsize=8, color="white", ha="left", va="bottom",
                        bbox=dict(fc="black", alpha=0.4, lw=0, pad=1))
    cols = np.nonzero(np.nansum(np.where(total >= vmin, total, 0.0), axis=0) > 0)[0]
    if cols.size:
        pad = max(0.1 * (ch[cols[-1]] - ch[cols[0]]), 5.0)
        ax.set_xlim(max(ch[0], ch[cols[0]] - pad), min(ch[-1], ch[cols[-1]] + pad))
    ax.set_xlabel("TOF channel")
    ax.set_ylabel("energy deposited (MeV)")
    ax.set_title(title if title is not None else (f"simulated TOF-E map {_exp_name(ds)}".strip()
                                                 if isinstance(ds, xr.Dataset) else "simulated TOF-E map"),
                 fontsize=10)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path, inputs)
    return fig
