"""TOF-E histogram of measured events with the Potku polygon cuts drawn on it."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import xarray as xr

from ..errors import RecoilsimError
from .save import new_figure, save_figure

if TYPE_CHECKING:
    from ..io.potku_selections import Selection

__all__ = ["plot_tof_e"]

def plot_tof_e(hist: xr.DataArray, selections: Sequence[Selection] = (), path: os.PathLike | str | None = None,
               inputs: Iterable[os.PathLike | str] = (), title: str | None = None, fmt: str | None = None):
    """Plot a TOF-E histogram (log colour scale) with the polygon cuts drawn on it.

    If ``path`` is given the figure is written atomically (temp file + rename; ``inputs`` are
    protected from being overwritten) and closed; otherwise the Figure is returned.
    """
    from matplotlib.colors import LogNorm

    if not isinstance(hist, xr.DataArray) or set(hist.dims) != {"energy", "tof"}:
        raise RecoilsimError("hist", type(hist).__name__, "a DataArray with dims ('energy', 'tof') from tof_e_histogram")
    fig = new_figure((7, 6))
    ax = fig.add_subplot(111)
    h = hist.transpose("energy", "tof")
    tb = h.attrs.get("tof_bin", 1)
    eb = h.attrs.get("energy_bin", 1)
    t_edges = np.append(h["tof"].values, h["tof"].values[-1] + tb)
    e_edges = np.append(h["energy"].values, h["energy"].values[-1] + eb)
    data = np.ma.masked_less_equal(h.values, 0)
    vmax = max(float(data.max()) if data.count() else 1.0, 1.0)
    mesh = ax.pcolormesh(t_edges, e_edges, data, norm=LogNorm(vmin=1, vmax=vmax), cmap="viridis", shading="flat")
    fig.colorbar(mesh, ax=ax, label="counts per bin")
    for s in selections:
        xs = np.append(s.x, s.x[0])
        ys = np.append(s.y, s.y[0])
        col = s.color if re.fullmatch(r"#[0-9a-fA-F]{6}", s.color or "") else "red"
        ax.plot(xs, ys, "-", color=col, lw=1.2)
        ax.text(float(np.mean(s.x)), float(np.mean(s.y)), s.label, color=col, fontsize=8,
                ha="center", va="center", bbox=dict(fc="white", alpha=0.6, lw=0, pad=1))
    ax.set_xlabel("TOF channel")
    ax.set_ylabel("energy channel")
    ax.set_title(title or f"TOF-E ({Path(str(h.attrs.get('source', ''))).name})")
    if path is None:
        return fig
    sources = list(inputs) + ([h.attrs["source"]] if h.attrs.get("source") else [])
    return save_figure(fig, path, inputs=sources, fmt=fmt)
