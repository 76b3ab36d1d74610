"""TOF-E coincidence map from bricks (Numba kernel).

Bricks spread in time as in :mod:`spreading` (one channel weight per brick at its mid time,
a Gaussian of the box variance w^2/12 plus sig_t^2) and in detected energy (a Gaussian of the
brick's straggling sigma and the detector's own sigma, added in quadrature).
"""

import math

import numpy as np
from numba import njit

from .spreading import normal_cdf


@njit(cache=True)
def tofe_map(ta, tb, Y, sig_t, e_det, sig_e, sig_edet, n_bricks, a, b, n_ch, e_edges, out):
    """TOF-E coincidence map: bricks spread in time (as :func:`spreading.spread_bricks`, one channel
    weight per brick at its mid time) and in detected energy (Gaussian, straggling plus the
    detector's own sigma ``sig_edet``). ``out`` is (n_sp, n_ch, n_e) and is added to."""
    n_sp = ta.shape[0]
    n_e = e_edges.shape[0] - 1
    aa = abs(a)
    tmp = np.zeros(n_ch)
    for s in range(n_sp):
        for i in range(n_bricks):
            y = Y[s, i]
            if y <= 0.0:
                continue
            lo = min((ta[s, i] - b) / a, (tb[s, i] - b) / a)
            hi = max((ta[s, i] - b) / a, (tb[s, i] - b) / a)
            sg = max(sig_t[s, i] / aa, 0.3)
            c = 0.5 * (lo + hi)
            sgc = math.sqrt(sg * sg + (hi - lo) ** 2 / 12.0)
            k0 = max(0, int(math.floor(c - 6 * sgc)))
            k1 = min(n_ch - 1, int(math.ceil(c + 6 * sgc)))
            if k1 < k0:
                continue
            se = math.sqrt(sig_e[s, i] ** 2 + sig_edet * sig_edet)
            em = e_det[s, i]
            for k in range(k0, k1 + 1):
                tmp[k] = normal_cdf((k + 0.5 - c) / sgc) - normal_cdf((k - 0.5 - c) / sgc)
            for m in range(n_e):
                if se > 0:
                    we = normal_cdf((e_edges[m + 1] - em) / se) - normal_cdf((e_edges[m] - em) / se)
                else:
                    we = 1.0 if (e_edges[m] <= em < e_edges[m + 1]) else 0.0
                if we < 1e-12:
                    continue
                for k in range(k0, k1 + 1):
                    out[s, k, m] += y * we * tmp[k]
