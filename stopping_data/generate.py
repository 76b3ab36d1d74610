"""Generate ``srim2013_electronic.npz``: SRIM-2013 electronic stopping per (ion Z, target Z).

Build-time only (needs the ``generate`` extra: ``pip install lunasrim==1.0.0``)::

    python stopping_data/generate.py            # writes stopping_data/srim2013_electronic.npz
    python stopping_data/generate.py --jobs 2 --out /tmp/x.npz

Source
------
``lunasrim`` 1.0.0, a pure-Python re-implementation of SRIM-2013's SRModule.exe (Ziegler,
Ziegler, Biersack, NIM B 268 (2010) 1818). For every ion Z1 = 1..92 and target element
Z2 = 1..92 we call ``lunasrim.stopping.electronic_stopping(Z1, 1.0, Z2, e, phase=0)`` with
``e`` the energy per mass in keV/u (ion mass 1 u, so keV = keV/u; SRIM's electronic stopping
depends on the ion only through Z1 and E/M1). ``phase=0`` is SRIM's *solid* target: this is
the per-element value SRIM itself uses inside a solid compound, including SRIM's low-velocity
gas/solid phase correction (factor 0.92 for the naturally gaseous elements H, N, O, F, Cl, Br,
I, At in a solid, fading out above a few hundred keV/u; noble gases uncorrected). recoilsim's
samples are solids, so this is the right convention; a gas-phase target would need other
values. ``electronic_stopping_element`` (no phase factor) is *not* used because it would give
the gas-phase value for O and N.

Grid
----
Uniform in ln(E/M) with E/M in MeV/u: dlnE = ln(10)/100 (100 points per decade), a node exactly
at 2 keV/u (the lower end of SRIM's fits: S ~ sqrt(E) below), 31 nodes below it (first node
0.98 keV/u), 400 above it (last node 20 MeV/u). 432 nodes. 2 MeV/u, where SRIM's He/Li fits end,
is a node too (k = 331). recoilsim interpolates cubically in (ln E, ln S) without crossing
SRIM's fit boundaries (``recoilsim.kernels.stopping.KINKS_MEV_U``).

Storage
-------
ln S (S in eV/(1e15 atoms/cm2)) quantised to steps of 2**-16 (relative rounding error below
7.7e-6) as int32, differenced twice along the energy axis (cumulative sums restore it exactly),
zlib-compressed by ``numpy.savez_compressed`` (2.4 MB for all 92 x 92 pairs). ``recoilsim.stopping.tables`` undoes this on load.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import sys
import time

import numpy as np

DLNE = math.log(10.0) / 100.0
E_NODE_2KEV = 0.002  # MeV/u
N_BELOW = 31
N_ABOVE = 400
N_GRID = N_BELOW + N_ABOVE + 1
LNE0 = math.log(E_NODE_2KEV) - N_BELOW * DLNE
QSCALE = 2.0 ** 16
Z_MAX = 92
OUT_DEFAULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "srim2013_electronic.npz")


def grid_mev_per_u() -> np.ndarray:
    """Node energies per mass (MeV/u)."""
    return np.exp(LNE0 + DLNE * np.arange(N_GRID))


def _row_block(z1: int) -> np.ndarray:
    """Electronic stopping of ion z1 in every target 1..92 at every node, eV/(1e15 at/cm2)."""
    from lunasrim import data_files
    from lunasrim.stopping import electronic_stopping

    d = data_files.load_scoef()
    e_kev_u = grid_mev_per_u() * 1000.0
    out = np.empty((Z_MAX, N_GRID))
    for z2 in range(1, Z_MAX + 1):
        for k, e in enumerate(e_kev_u):
            out[z2 - 1, k] = electronic_stopping(z1, 1.0, z2, float(e), 0, d)
    return out


def compute(jobs: int = 2) -> np.ndarray:
    """(92, 92, N_GRID) float64 table of S_e."""
    zs = list(range(1, Z_MAX + 1))
    if jobs > 1:
        from multiprocessing import Pool

        with Pool(jobs) as pool:
            blocks = pool.map(_row_block, zs, chunksize=1)
    else:
        blocks = [_row_block(z) for z in zs]
    return np.stack(blocks)


def encode(S: np.ndarray) -> np.ndarray:
    """Quantised ln S, second differences along the energy axis (int32)."""
    if not np.all(S > 0) or not np.all(np.isfinite(S)):
        raise ValueError("non-positive or non-finite stopping value in the table")
    q = np.rint(np.log(S) * QSCALE).astype(np.int64)
    d = np.diff(np.diff(q, axis=-1, prepend=0), axis=-1, prepend=0)
    return d.astype(np.int32)


def decode(d: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode` (float64 S)."""
    q = np.cumsum(np.cumsum(d.astype(np.int64), axis=-1), axis=-1)
    return np.exp(q / QSCALE)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=OUT_DEFAULT)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    import lunasrim

    t0 = time.time()
    S = compute(a.jobs)
    dt = time.time() - t0
    np.savez_compressed(
        a.out,
        d2lnS_q=encode(S),
        qscale=np.float64(QSCALE),
        lnE0=np.float64(LNE0),
        dlnE=np.float64(DLNE),
        z1=np.arange(1, Z_MAX + 1, dtype=np.int16),
        z2=np.arange(1, Z_MAX + 1, dtype=np.int16),
        source=np.array(f"SRIM-2013 electronic stopping via lunasrim {lunasrim.__version__} "
                        "(lunasrim.stopping.electronic_stopping, phase=0 solid)"),
        units=np.array("energy per mass MeV/u (grid ln); stopping eV/(1e15 atoms/cm2)"),
        created=np.array(datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")),
    )
    print(f"wrote {a.out}: {os.path.getsize(a.out) / 1e6:.2f} MB, {N_GRID} nodes, "
          f"computed in {dt:.1f} s with {a.jobs} process(es)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
