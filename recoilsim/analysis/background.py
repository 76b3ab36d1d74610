"""Background under the TOF spectra: a constant (optionally linear in time) level per element
window, and its estimate from an empty region of the TOF-E map.

Random coincidences (and stray scattered particles) spread nearly uniformly over the TOF-E
map; under an element's cut they give a flat background in its TOF spectrum (as in every heavy-ion
TOF-ERDA analysis; e.g. the background of Potku's cuts, Arstila et
al., Nucl. Instrum. Methods B 331 (2014) 34). Its density (events per TOF channel per energy
channel) is measured in a region of the map where no recoils land, and the expected count in
the cut at each TOF channel is that density times the cut's extent in energy at that channel.

Units: channels of the TOF-E map (as Potku's .asc list-mode data), ns for the time axis.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import xarray as xr

from ..errors import RecoilsimError


def polygon_area(x, y) -> float:
    """Area of a simple polygon (shoelace formula), in the units of x times y."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def inside_polygon(px, py, x, y) -> np.ndarray:
    """Even-odd (crossing-number) test of points (x, y) against the polygon (px, py)."""
    inside = np.zeros(np.shape(x), dtype=bool)
    n = len(px)
    for i in range(n):
        x1, y1, x2, y2 = px[i - 1], py[i - 1], px[i], py[i]
        if y1 == y2:
            continue
        cross = ((y > min(y1, y2)) & (y <= max(y1, y2))
                 & (x < x1 + (y - y1) * (x2 - x1) / (y2 - y1)))
        inside ^= cross
    return inside


def random_density(tof, energy, region_x, region_y) -> tuple[float, float]:
    """Density of random events (events per TOF channel per energy channel) in an empty region
    of the TOF-E map, and its Poisson standard error.

    Parameters
    ----------
    tof, energy : arrays
        The events' TOF and energy channels (e.g. ``read_asc(...)['tof']``).
    region_x, region_y : arrays
        Polygon (TOF, energy vertices) of a region free of recoils.
    """
    px = np.asarray(region_x, dtype=float)
    py = np.asarray(region_y, dtype=float)
    if px.shape != py.shape or px.size < 3:
        raise RecoilsimError("region", (list(px), list(py)), "a polygon of at least 3 (tof, energy) vertices")
    area = polygon_area(px, py)
    if area <= 0.0:
        raise RecoilsimError("region", (list(px), list(py)), "a polygon of non-zero area")
    n = int(inside_polygon(px, py, np.asarray(tof, dtype=float), np.asarray(energy, dtype=float)).sum())
    return n / area, np.sqrt(max(n, 1)) / area


def cut_width(cut_x, cut_y, tof_channels) -> np.ndarray:
    """Extent in energy channels of a cut polygon along the vertical line at each TOF channel
    (the summed lengths of the line's intervals inside the polygon)."""
    px = np.asarray(cut_x, dtype=float)
    py = np.asarray(cut_y, dtype=float)
    out = np.zeros(len(tof_channels))
    for k, c in enumerate(np.asarray(tof_channels, dtype=float)):
        ys = []
        for i in range(px.size):
            x1, y1, x2, y2 = px[i - 1], py[i - 1], px[i], py[i]
            if (x1 <= c < x2) or (x2 <= c < x1):
                ys.append(y1 + (c - x1) * (y2 - y1) / (x2 - x1))
        ys.sort()
        out[k] = sum(ys[j + 1] - ys[j] for j in range(0, len(ys) - 1, 2))
    return out


def background_in_cut(density: float, cut_x, cut_y, n_channels: int) -> np.ndarray:
    """Expected random counts per TOF channel in a cut: density x the cut's energy extent."""
    return density * cut_width(cut_x, cut_y, np.arange(n_channels))


def add_background(ds: xr.Dataset, background: Mapping[str, tuple[float, float] | float | np.ndarray]) -> xr.Dataset:
    """Simulated spectra plus a background per element (a forward-model option).

    ``background`` maps an element to c0 (counts per channel), to (c0, c1) for
    c0 + c1 (t - t_mid) with t the channel's time (ns) and t_mid the window's mid time (clipped
    at 0), or to a per-channel array (e.g. from :func:`background_in_cut`). Returns a copy with
    ``counts`` raised and a ``background(element, channel)`` variable; ``counts_isotope`` is
    left as the recoils alone.
    """
    out = ds.copy(deep=True)
    t = ds["time_ns"].values
    bg = np.zeros(out["counts"].shape)
    elements = list(ds["element"].values)
    for el, spec in background.items():
        if el not in elements:
            raise RecoilsimError("background", el, f"one of the simulated elements {elements}")
        arr = np.asarray(spec, dtype=float)
        if arr.ndim == 0:
            level = np.full(t.size, float(arr))
        elif arr.shape == (2,):
            level = arr[0] + arr[1] * (t - 0.5 * (t.min() + t.max()))
        elif arr.shape == t.shape:
            level = arr
        else:
            raise RecoilsimError(f"background[{el}]", spec, "c0, (c0, c1) or one value per channel")
        if not np.all(np.isfinite(level)):
            raise RecoilsimError(f"background[{el}]", spec, "finite numbers")
        bg[elements.index(el)] = np.maximum(level, 0.0)
    out["background"] = (("element", "channel"), bg)
    out["background"].attrs.update(units="counts", long_name="background counts per channel")
    out["counts"] = out["counts"] + bg
    return out
