"""Check the shipped table against lunasrim for every (ion Z, target Z) pair.

For each of the 92 x 92 pairs, ``--per-pair`` random energies per mass, log-uniform between the
first node (0.98 keV/u) and the last (20 MeV/u), or in the band ``--emin-kev-u`` ..
``--emax-kev-u``, are evaluated with recoilsim's Numba lookup (``recoilsim.kernels.stopping.loglog``,
log-log cubic, on the decoded table) and with ``lunasrim.stopping.electronic_stopping`` (phase 0,
as the generator). Prints the worst relative deviation per ion and overall; exit status 1 if any
exceeds ``--tol`` (default 1e-3).

    python stopping_data/check_all.py [--per-pair 50] [--seed 1] [--jobs 2]
    python stopping_data/check_all.py --per-pair 20 --emin-kev-u 2 --emax-kev-u 2.6   # steep band
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np


def _check_ion(args):
    z1, per_pair, seed, emin, emax = args
    from lunasrim import data_files
    from lunasrim.stopping import electronic_stopping

    from recoilsim.kernels.stopping import loglog
    from recoilsim.stopping.tables import _shipped

    lnE0, dlnE, S = _shipped()
    n = S.shape[-1]
    d = data_files.load_scoef()
    rng = np.random.default_rng([seed, z1])
    worst = (0.0, 0, 0.0)
    for z2 in range(1, 93):
        lo = max(lnE0, math.log(emin * 1e-3)) if emin else lnE0
        hi = lnE0 + (n - 1) * dlnE
        if emax:
            hi = min(hi, math.log(emax * 1e-3))
        lnx = rng.uniform(lo, hi, per_pair)
        row = S[z1 - 1, z2 - 1]
        for lx in lnx:
            ref = electronic_stopping(z1, 1.0, z2, math.exp(lx) * 1000.0, 0, d)
            err = abs(loglog(row, lnE0, dlnE, lx) / ref - 1.0)
            if err > worst[0]:
                worst = (err, z2, math.exp(lx))
    return z1, worst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="check the shipped stopping table against lunasrim")
    ap.add_argument("--per-pair", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--emin-kev-u", type=float, default=0.0,
                    help="lowest energy per mass checked (keV/u); 0 = the first node")
    ap.add_argument("--emax-kev-u", type=float, default=0.0,
                    help="highest energy per mass checked (keV/u); 0 = the last node")
    a = ap.parse_args(argv)
    t0 = time.time()
    tasks = [(z1, a.per_pair, a.seed, a.emin_kev_u, a.emax_kev_u) for z1 in range(1, 93)]
    if a.jobs > 1:
        from multiprocessing import Pool

        with Pool(a.jobs) as pool:
            res = pool.map(_check_ion, tasks, chunksize=1)
    else:
        res = [_check_ion(t) for t in tasks]
    overall = max(res, key=lambda r: r[1][0])
    for z1, (err, z2, e) in res:
        print(f"ion Z={z1:2d}: worst {err * 100:.4f} % (target Z={z2}, {e * 1000:.4g} keV/u)")
    z1, (err, z2, e) = overall
    print(f"WORST over {92 * 92} pairs x {a.per_pair} energies: {err * 100:.4f} % "
          f"(ion Z={z1} in Z={z2} at {e * 1000:.4g} keV/u); {time.time() - t0:.0f} s")
    return 0 if err <= a.tol else 1


if __name__ == "__main__":
    sys.exit(main())
