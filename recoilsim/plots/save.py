"""The one way every figure of recoilsim is written to disk."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ..errors import RecoilsimError

__all__ = ["FORMATS", "new_figure", "save_figure", "decades_only"]

FORMATS = ("png", "svg", "pdf")


def new_figure(figsize: tuple[float, float] = (8, 5), dpi: float = 120):
    """A matplotlib Figure on the Agg canvas (no screen, no pyplot global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def decades_only(axis) -> None:
    """No minor ticks on a logarithmic axis (``ax.yaxis``): matplotlib makes a tick object, with
    its lines and label, for each of the eight minor ticks per decade, a third of the time of
    drawing a spectrum over six decades; the grid follows the decades."""
    from matplotlib.ticker import NullLocator

    axis.set_minor_locator(NullLocator())


def save_figure(fig, path: os.PathLike | str, inputs: Iterable[os.PathLike | str] = (), fmt: str | None = None,
                dpi: float | None = None) -> Path:
    """Save a matplotlib figure to ``path`` atomically (temporary file in the same folder, fsync,
    rename: :func:`recoilsim.io.atomic.atomic_write`), never over one of ``inputs``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : path-like
        Target; its suffix (.png, .svg, .pdf) gives the format unless ``fmt`` does.
    inputs : paths the figure must not replace (the command's input files).
    fmt : {'png', 'svg', 'pdf'}, optional
    dpi : float, optional
        Resolution of raster output (default: the figure's).

    Returns
    -------
    Path
    """
    from ..io.atomic import atomic_write, refuse_overwrite_inputs

    out = Path(path)
    fmt = (fmt or out.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise RecoilsimError("plot path", str(out), "a .png, .svg or .pdf file")
    refuse_overwrite_inputs(out, list(inputs))
    with atomic_write(out, "wb") as f:
        fig.savefig(f, format=fmt, dpi=dpi if dpi is not None else "figure")
    return out
