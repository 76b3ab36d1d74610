"""Independent Monte Carlo check of the multiple-scattering spread of a thin recoil marker.

Shares no code with recoilsim.kernels.multiple_scattering: no width table, no
equivalent-thickness rule, no Gaussian per step of the model. Each ion is followed in 3D:

- the beam from the surface down to the marker depth, the recoil's path traced back from the
  detector direction (the small-angle transport is reversible) down to the same depth;
- single collisions with reduced angle u = t^1/2 >= U_MIN sampled one by one from Lindhard's
  universal cross section d sigma = pi a^2 f(u) du / u^2 (Lindhard, Nielsen, Scharff, Mat. Fys.
  Medd. Dan. Vid. Selsk. 36 no. 10 (1968)), f for the Thomas-Fermi potential in Winterbon's
  fit (Winterbon, Sigmund, Sanders, Mat. Fys. Medd. 37 no. 14 (1970)); lab deflection
  alpha = u 2 Z1 Z2 e^2 / (E a), azimuth uniform; the many collisions below U_MIN as one
  Gaussian per step with their summed mean square angle (they carry a few % of the width);
- energy loss continuous along the actual (longer) path (stopping from the same tables as the
  model: this checks angles, not stopping), no energy straggling;
- the recoil energy K(phi) E_beam from the actual angle between the beam and the recoil
  directions at the marker, then transport out along the recorded path and through the foil,
  and the relativistic flight time.

The recoil's path is walked backwards with the scattering strength of the nominal (unscattered)
recoil energy at each depth, since its real energy is only known once its origin is.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from recoilsim.model.elements import element
from recoilsim.stopping.tables import stopping

A0_CM = 0.529177e-8
E2_MEV_CM = 1.44e-13
U_MEV = 931.494
C_M_NS = 0.299792458
U_MIN = 0.05  # reduced angle below which collisions are summed as a Gaussian


def f_thomas_fermi(u):
    """Winterbon's fit of Lindhard's f(t^1/2) for the Thomas-Fermi potential."""
    lam = 1.309
    return lam * u ** (1.0 / 3.0) * (1.0 + (2.0 * lam * u ** (4.0 / 3.0)) ** (2.0 / 3.0)) ** -1.5


def _hard_collision_table():
    """Inverse CDF of f(u)/u^2 on [U_MIN, inf), its total, and int_0^U_MIN f(u) du."""
    u = np.exp(np.linspace(math.log(U_MIN), math.log(1e7), 6001))
    dens = f_thomas_fermi(u) / u ** 2
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(u))])
    total = cdf[-1]
    us = np.exp(np.linspace(math.log(1e-12), math.log(U_MIN), 4001))
    soft = float(np.trapezoid(f_thomas_fermi(us), us))
    return u, cdf / total, total, soft


@njit(cache=True)
def _screening_cm(Z1, Z2):
    """Thomas-Fermi (Firsov) screening length of the pair (cm): 0.8853 a0 / sqrt(Z1^(2/3) + Z2^(2/3))."""
    return 0.8853 * A0_CM / math.sqrt(Z1 ** (2.0 / 3.0) + Z2 ** (2.0 / 3.0))


@njit(cache=True)
def _rotate(v, theta, psi):
    """Direction v (3 floats, in place) turned by polar angle theta at azimuth psi (around v)."""
    # e1 = v x ey (v is never along ey here: it stays near the x-z plane), e2 = v x e1
    e1x, e1y, e1z = -v[2], 0.0, v[0]
    n = math.sqrt(e1x * e1x + e1z * e1z)
    e1x /= n
    e1z /= n
    e2x = v[1] * e1z - v[2] * e1y
    e2y = v[2] * e1x - v[0] * e1z
    e2z = v[0] * e1y - v[1] * e1x
    c, s_ = math.cos(theta), math.sin(theta)
    cp, sp = math.cos(psi), math.sin(psi)
    w0 = c * v[0] + s_ * (cp * e1x + sp * e2x)
    w1 = c * v[1] + s_ * (cp * e1y + sp * e2y)
    w2 = c * v[2] + s_ * (cp * e1z + sp * e2z)
    n = math.sqrt(w0 * w0 + w1 * w1 + w2 * w2)
    v[0] = w0 / n
    v[1] = w1 / n
    v[2] = w2 / n


@njit(cache=True)
def _S(E, lg, lS):
    """Stopping (MeV per 1e15 at/cm2) at E from ln S on a grid uniform in ln E (lg: its ends)."""
    x = (math.log(E) - lg[0]) / (lg[1] - lg[0]) * (lS.shape[0] - 1)
    i = min(max(int(x), 0), lS.shape[0] - 2)
    f = x - i
    return math.exp(lS[i] + f * (lS[i + 1] - lS[i]))


@njit(cache=True)
def _layer(x, bot):
    for i in range(bot.shape[0]):
        if x < bot[i]:
            return i
    return bot.shape[0] - 1


@njit(cache=True)
def _walk(v, x_end, bot, Zs, fr, Z1, E_of_x_d, E_of_x_E, Eg, Sg, deflect, u_tab, cdf, rate_red,
          soft, lose_energy, E0, seg_s, seg_l):
    """Walk from the surface to depth x_end along direction v (depth component v[2] > 0; v is
    turned in place).

    Energy: if lose_energy, starts at E0 and loses S(E) per path; else taken from the nominal
    table (E_of_x_d, E_of_x_E) at each depth. Records the segments (path, layer) in seg_s, seg_l.
    Returns (direction, energy, n_segments); n_segments = -1 if the ion turned back.
    """
    x = 0.0
    E = E0 if lose_energy else np.interp(0.0, E_of_x_d, E_of_x_E)
    n_seg = 0
    while x < x_end * (1.0 - 1e-12):
        if v[2] < 0.05 or n_seg >= seg_s.shape[0]:
            return v, E, -1
        L = _layer(x, bot)
        # hard-collision rate per 1e15 at/cm2 of path, reduced units (energy independent)
        lam = 0.0
        for j in range(Zs.shape[1]):
            if fr[L, j] > 0:
                a = _screening_cm(Z1, Zs[L, j])
                lam += fr[L, j] * math.pi * a * a * 1e15 * rate_red
        s_c = -math.log(1.0 - np.random.random()) / lam if deflect else 1e30
        x_stop = min(bot[L], x_end)
        s_b = (x_stop - x) / v[2]
        s = min(s_c, s_b, 5.0)
        collide = s == s_c
        if lose_energy:
            Eh = E - 0.5 * _S(E, Eg, Sg[L]) * s
            if Eh <= 0.0:
                return v, 0.0, -1
            E -= _S(Eh, Eg, Sg[L]) * s
            if E <= 0.0:
                return v, 0.0, -1
        x = min(x + s * v[2], x_stop)
        seg_s[n_seg] = s
        seg_l[n_seg] = L
        n_seg += 1
        if not lose_energy:
            E = np.interp(x, E_of_x_d, E_of_x_E)
        if not deflect:
            continue
        # collisions below U_MIN: Gaussian with their mean square angle (per axis half of it)
        var = 0.0
        for j in range(Zs.shape[1]):
            if fr[L, j] > 0:
                a = _screening_cm(Z1, Zs[L, j])
                c = 2.0 * Z1 * Zs[L, j] * E2_MEV_CM / (E * a)
                var += 0.5 * c * c * fr[L, j] * math.pi * a * a * 1e15 * s * soft
        tx = np.random.normal() * math.sqrt(var)
        ty = np.random.normal() * math.sqrt(var)
        _rotate(v, math.sqrt(tx * tx + ty * ty), math.atan2(ty, tx))
        if collide:
            # which element
            r = np.random.random() * lam
            jj = 0
            acc = 0.0
            for j in range(Zs.shape[1]):
                if fr[L, j] > 0:
                    a = _screening_cm(Z1, Zs[L, j])
                    acc += fr[L, j] * math.pi * a * a * 1e15 * rate_red
                    if r <= acc:
                        jj = j
                        break
            a = _screening_cm(Z1, Zs[L, jj])
            u = np.interp(np.random.random(), cdf, u_tab)
            alpha = min(u * 2.0 * Z1 * Zs[L, jj] * E2_MEV_CM / (E * a), 0.5 * math.pi)
            _rotate(v, alpha, 2.0 * math.pi * np.random.random())
    return v, E, n_seg


@njit(cache=True)
def _out(E, n_seg, seg_s, seg_l, Eg, Sg, foil_path, Sfoil):
    """Energy after the recorded segments walked backwards and the foil (0 if stopped)."""
    for i in range(n_seg - 1, -1, -1):
        s = seg_s[i]
        Sl = Sg[seg_l[i]]
        Eh = E - 0.5 * _S(E, Eg, Sl) * s
        if Eh <= 0.0:
            return 0.0
        E -= _S(Eh, Eg, Sl) * s
        if E <= 0.0:
            return 0.0
    n = 20
    for i in range(n):
        Eh = E - 0.5 * _S(E, Eg, Sfoil) * foil_path / n
        if Eh <= 0.0:
            return 0.0
        E -= _S(Eh, Eg, Sfoil) * foil_path / n
    return E


@njit(cache=True)
def _run(n_ions, seed, x_end, bot, Zs, fr, Z1, M1, Z2, M2, E0, alpha, beta, deflect,
         Egb, Sgb, Egr, Sgr, foil_path, Sfoil, L_m, u_tab, cdf, rate_red, soft, nom_d, nom_E):
    np.random.seed(seed)
    times = np.full(n_ions, np.nan)
    seg_s = np.zeros(200000)
    seg_l = np.zeros(200000, dtype=np.int64)
    ub0 = np.array([math.sin(alpha), 0.0, math.cos(alpha)])
    vr0 = np.array([-math.sin(beta), 0.0, math.cos(beta)])  # detector direction, reversed
    for n in range(n_ions):
        ub, Eb, ns = _walk(ub0.copy(), x_end, bot, Zs, fr, Z1, nom_d, nom_E, Egb, Sgb, deflect & 1, u_tab, cdf,
                           rate_red, soft, True, E0, seg_s, seg_l)
        if ns < 0:
            continue
        vr, _, ns = _walk(vr0.copy(), x_end, bot, Zs, fr, Z2, nom_d, nom_E, Egr, Sgr, deflect & 2, u_tab, cdf,
                          rate_red, soft, False, 0.0, seg_s, seg_l)
        if ns < 0:
            continue
        cphi = -(ub[0] * vr[0] + ub[1] * vr[1] + ub[2] * vr[2])  # recoil direction = -vr
        if cphi <= 0.0:
            continue
        Er = 4.0 * M1 * M2 * cphi * cphi / (M1 + M2) ** 2 * Eb
        Ed = _out(Er, ns, seg_s, seg_l, Egr, Sgr, foil_path, Sfoil)
        if Ed <= 0.0:
            continue
        g = 1.0 + Ed / (M2 * U_MEV)
        times[n] = L_m / (math.sqrt(1.0 - 1.0 / (g * g)) * C_M_NS)
    return times


@njit(cache=True)
def _nominal_exit(x_end, bot, Er, Egr, Sgr, beta, n_pts):
    """Nominal recoil energy against depth on the straight way out (depth grid, energies)."""
    d = np.linspace(0.0, x_end, n_pts)
    E = np.zeros(n_pts)
    E[n_pts - 1] = Er
    for i in range(n_pts - 1, 0, -1):
        s = (d[i] - d[i - 1]) / math.cos(beta)
        L = _layer(0.5 * (d[i] + d[i - 1]), bot)
        e = E[i]
        for _ in range(4):
            eh = e - 0.5 * _S(e, Egr, Sgr[L]) * s / 4
            e -= _S(max(eh, 1e-6), Egr, Sgr[L]) * s / 4
        E[i - 1] = max(e, 1e-6)
    return d, E


def marker_times(layers, depth_1e15, beam, recoil, E0, incidence_deg, exit_deg, recoil_deg, foil,
                 L_m, n_ions=20000, seed=1, deflect=3):
    """Flight times (ns) of recoils made at ``depth_1e15`` (NaN: lost).

    layers: list of (composition dict of atomic fractions, areal density 1e15 at/cm2);
    beam, recoil: (Z, mass_u); foil: (composition dict, areal density 1e15); deflect: 1 the
    beam only, 2 the recoil only, 3 both, 0 neither.
    """
    bot = np.cumsum([t for _, t in layers]).astype(float)
    els = sorted({e for c, _ in layers for e in c})
    Zs = np.array([[float(element(e).number) for e in els]] * len(layers))
    fr = np.array([[c.get(e, 0.0) / sum(c.values()) for e in els] for c, _ in layers])
    Egb = np.exp(np.linspace(math.log(0.05), math.log(1.2 * E0), 400))
    Egr = np.exp(np.linspace(math.log(0.01), math.log(1.2 * E0), 400))
    ion_b = (beam[0], beam[1])
    ion_r = (recoil[0], recoil[1])
    Sgb = np.array([stopping(ion_b, c, Egb) * 1e-6 for c, _ in layers])
    Sgr = np.array([stopping(ion_r, c, Egr) * 1e-6 for c, _ in layers])
    Sfoil = stopping(ion_r, foil[0], Egr) * 1e-6
    # log-log tables: ln S on the grid, grid given by its ends in ln E
    Sgb, Sgr, Sfoil = np.log(Sgb), np.log(Sgr), np.log(Sfoil)
    Egb, Egr = np.log(Egb[[0, -1]]), np.log(Egr[[0, -1]])
    u_tab, cdf, rate_red, soft = _hard_collision_table()
    a, b, p = (math.radians(v) for v in (incidence_deg, exit_deg, recoil_deg))
    # nominal beam energy at the depth and recoil energy on its way out
    seg_s = np.zeros(200000)
    seg_l = np.zeros(200000, dtype=np.int64)
    dummy = np.array([0.0, 1.0])
    _, Eb0, _ = _walk(np.array([math.sin(a), 0.0, math.cos(a)]), depth_1e15, bot, Zs, fr, float(beam[0]), dummy,
                      dummy, Egb, Sgb, 0, u_tab, cdf, rate_red, soft, True, E0, seg_s, seg_l)
    K = 4.0 * beam[1] * recoil[1] * math.cos(p) ** 2 / (beam[1] + recoil[1]) ** 2
    nom_d, nom_E = _nominal_exit(depth_1e15, bot, K * Eb0, Egr, Sgr, b, 400)
    return _run(n_ions, seed, depth_1e15, bot, Zs, fr, float(beam[0]), float(beam[1]), float(recoil[0]),
                float(recoil[1]), E0, a, b, deflect, Egb, Sgb, Egr, Sgr, foil[1], Sfoil, L_m, u_tab, cdf,
                rate_red, soft, nom_d, nom_E)


def fwhm_sigma(t):
    """Gaussian-equivalent sigma from the full width at half maximum of a sample (FWHM/2.3548),
    read from a histogram smoothed over 5 bins."""
    t = t[np.isfinite(t)]
    q1, q3 = np.percentile(t, [25, 75])
    iqr = q3 - q1
    lo, hi = np.percentile(t, [0.5, 99.5])
    nb = max(40, int((hi - lo) / (iqr / 25.0)))
    h, e = np.histogram(t, bins=nb, range=(lo, hi))
    h = np.convolve(h, np.ones(5) / 5.0, mode="same")
    c = 0.5 * (e[1:] + e[:-1])
    k = int(np.argmax(h))
    half = 0.5 * h[k]
    i = k
    while i > 0 and h[i] > half:
        i -= 1
    j = k
    while j < len(h) - 1 and h[j] > half:
        j += 1
    left = c[i] + (half - h[i]) / (h[i + 1] - h[i]) * (c[i + 1] - c[i])
    right = c[j - 1] + (h[j - 1] - half) / (h[j - 1] - h[j]) * (c[j] - c[j - 1])
    return (right - left) / 2.3548


def iqr_sigma(t):
    """Gaussian-equivalent sigma from the interquartile range (IQR/1.349)."""
    t = t[np.isfinite(t)]
    q1, q3 = np.percentile(t, [25, 75])
    return (q3 - q1) / 1.349


def angles_after(Z1, composition, path_1e15, E, n_ions=20000, seed=2):
    """In-plane (projected) deflection angles (rad) of ions of charge Z1 after a straight path
    (1e15 at/cm2) through ``composition`` at constant energy E (MeV), starting along the normal."""
    els = sorted(composition)
    Zs = np.array([[float(element(e).number) for e in els]])
    fr = np.array([[composition[e] / sum(composition.values()) for e in els]])
    bot = np.array([1e30])
    u_tab, cdf, rate_red, soft = _hard_collision_table()
    return _angles(n_ions, seed, path_1e15, bot, Zs, fr, float(Z1), E, u_tab, cdf, rate_red, soft)


@njit(cache=True)
def _angles(n_ions, seed, path, bot, Zs, fr, Z1, E, u_tab, cdf, rate_red, soft):
    np.random.seed(seed)
    out = np.full(n_ions, np.nan)
    seg_s = np.zeros(200000)
    seg_l = np.zeros(200000, dtype=np.int64)
    d = np.array([0.0, 1e30])
    e = np.array([E, E])
    dummy = np.array([0.0, 1.0])
    for n in range(n_ions):
        v = np.array([0.0, 0.0, 1.0])
        v, _, ns = _walk(v, path, bot, Zs, fr, Z1, d, e, dummy, dummy.reshape(1, 2), 1, u_tab, cdf, rate_red,
                         soft, False, 0.0, seg_s, seg_l)
        if ns >= 0:
            out[n] = math.atan2(v[0], v[2])
    return out


# ---------------------------------------------------------------- the reference case's 7Li marker

REF_BEAM = (29, 62.9296)  # 63Cu
REF_RECOIL = (3, 7.0160)  # 7Li
LIPON = {"Li": 2.0 / 6.5, "P": 1.0 / 6.5, "O": 2.6 / 6.5, "N": 0.9 / 6.5}


def reference_depth_1e15(z_nm):
    """Depth (1e15 at/cm2) of z_nm below the surface of Cu (30 nm, 8.96 g/cm3) / LiPON (2.5 g/cm3)."""
    from recoilsim.stopping.tables import nm_to_1e15
    x = nm_to_1e15(min(z_nm, 30.0), "Cu", 8.96)
    if z_nm > 30.0:
        x += nm_to_1e15(z_nm - 30.0, "Li2.0PO2.6N0.9", 2.5)
    return x


def reference_marker_mc(z_nm, n_ions=20000, seed=1, deflect=3):
    """Monte Carlo flight times (ns) of 7Li made z_nm below the surface of the reference case
    (9 MeV 63Cu, incidence and exit 70 deg, recoil angle 40 deg, T1 foil 3 ug/cm2 C, 0.600 m)."""
    from recoilsim.stopping.tables import nm_to_1e15
    layers = [({"Cu": 1.0}, nm_to_1e15(30.0, "Cu", 8.96)), (LIPON, 1e5)]
    foil = ({"C": 1.0}, 3.0e-6 / (12.011 * 1.66053907e-24) / 1e15)
    return marker_times(layers, reference_depth_1e15(z_nm), REF_BEAM, REF_RECOIL, 9.0, 70.0, 70.0, 40.0, foil,
                        0.600, n_ions=n_ions, seed=seed, deflect=deflect)
