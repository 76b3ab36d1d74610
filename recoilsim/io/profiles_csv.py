"""CSV of depth profiles: one row per depth node, per element its fraction, sigma and bands."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_profiles_csv(ds, path) -> Path:
    """Write the profiles of a ``fit_profiles`` Dataset as CSV.

    Columns: ``depth_1e15`` (atoms/cm2 / 1e15), ``depth_nm``, then per element ``<El>``
    (atomic fraction, posterior mean), ``<El>_sigma``, ``<El>_lo1``, ``<El>_hi1`` (68.3 %),
    ``<El>_lo2``, ``<El>_hi2`` (95.4 %). Lines starting with ``#`` describe the fit.
    """
    from .atomic import atomic_write
    els = [str(e) for e in ds["element"].values]
    cols = [ds["depth_1e15"].values, ds["depth_nm"].values]
    head = ["depth_1e15", "depth_nm"]
    for e in els:
        sel = ds.sel(element=e)
        for v in ("fraction", "sigma", "lo1", "hi1", "lo2", "hi2"):
            cols.append(sel[v].values)
            head.append(e if v == "fraction" else f"{e}_{v}")
    table = np.column_stack(cols)
    lines = [f"# depth profiles (atomic fractions) from recoilsim fit_profiles; band: {ds.attrs.get('band', '')}",
             ",".join(head)]
    lines += [",".join(f"{v:.6g}" for v in row) for row in table]
    path = Path(path)
    with atomic_write(path) as f:
        f.write("\n".join(lines) + "\n")
    return path
