"""Depth profiles of every element, as Potku shows them: at.% against depth, with bands.

Input: the Dataset of :func:`recoilsim.fitting.depth_profiles.fit_profiles` (``fraction``,
``lo1``/``hi1``, ``lo2``/``hi2`` per element and depth node).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_profiles(ds, path, log: bool = False, depth: str = "nm", title: str | None = None,
                  elements=None, ax=None, inputs=()) -> Path | None:
    """Write (or draw into ``ax``) at.% of each element against depth with 1- and 2-sigma bands.

    Parameters
    ----------
    ds : xarray.Dataset from ``fit_profiles``.
    path : output file (PNG, SVG, PDF; by extension); ignored when ``ax`` is given.
    log : logarithmic at.% axis (traces visible), else linear.
    depth : 'nm' (at the start sample's densities) or '1e15' (atoms/cm2).
    elements : the elements to draw (default all).
    inputs : paths the figure must not replace.
    """
    from .save import new_figure, save_figure
    if depth not in ("nm", "1e15"):
        raise ValueError(f"depth = {depth!r}: 'nm' or '1e15'")
    own = ax is None
    if own:
        fig = new_figure(figsize=(6.4, 4.2), dpi=110)
        ax = fig.subplots()
    z = ds["depth_nm"].values if depth == "nm" else ds["depth_1e15"].values
    for k, e in enumerate(elements or [str(v) for v in ds["element"].values]):
        sel = ds.sel(element=e)
        c = f"C{k}"
        ax.fill_between(z, 100 * sel["lo2"].values, 100 * sel["hi2"].values, color=c, alpha=0.12, lw=0)
        ax.fill_between(z, 100 * sel["lo1"].values, 100 * sel["hi1"].values, color=c, alpha=0.3, lw=0)
        ax.plot(z, 100 * sel["fraction"].values, color=c, lw=1.4, label=e)
    ax.set_xlabel("depth (nm)" if depth == "nm" else "depth (1e15 atoms/cm2)")
    ax.set_ylabel("concentration (at.%)")
    if log:
        ax.set_yscale("log")
        ax.set_ylim(max(0.01, 100 * float(np.nanmin(ds["lo1"].values)) * 0.8), 110)
    else:
        ax.set_ylim(0, 100)
    ax.set_xlim(z[0], z[-1])
    ax.legend(fontsize=8, ncol=2)
    ax.set_title(title or "depth profiles: posterior mean, 68 % and 95 % bands", fontsize=9)
    if not own:
        return None
    fig.tight_layout()
    return save_figure(fig, path, inputs=inputs)
