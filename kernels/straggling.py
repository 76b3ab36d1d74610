"""Electronic energy-loss straggling: Bohr, Chu, Yang (closed forms on numpy arrays).

These functions build the straggling tables (:func:`straggling_row`, a whole row of the energy
grid at once); the kernels read the tables, never these functions, so they are plain numpy and
cost no compilation (Numba compiled them in ~0.8 s on the first run).

All variances are in MeV^2 per 1e15 atoms/cm2 (for a path of areal density N dx the variance is
the value times N dx in 1e15 atoms/cm2). Energies in MeV, masses in u.

Models
------
* Bohr: Omega_B^2 = 4 pi e^4 Z1^2 Z2 N dx (N. Bohr, Mat. Fys. Medd. Dan. Vid. Selsk. 18 (1948) 8).
* Chu: Omega^2 = H(E/M1, Z2) Omega_B^2, H = 1 / (1 + A1 x^A2 + A3 x^A4), x = E/M1 in MeV/u, with
  the fit coefficients A1..A4 per target element given by Q. Yang, D.J. O'Connor, Z. Wang,
  NIM B 61 (1991) 149, Table (fit to W.K. Chu, Phys. Rev. A 13 (1976) 2057).
* Yang: Omega^2/Omega_B^2 = gamma^2 H(E/M1, Z2) + dOmega^2/Omega_B^2 (Yang et al. 1991, eqs. 6-8),
  gamma the effective-charge fraction of the ion, and the charge-state-fluctuation term
  - protons: B1 G / ((x - B2)^2 + G^2), G = B3 (1 - exp(-B4 x)), x = E/M1 in MeV/u,
    B = (0.1955, 0.6941, 2.522, 1.040);
  - heavier ions (solid targets): Z1^(4/3) / Z2^(1/3) * C1 G / ((eps - C2)^2 + G^2),
    G = C3 (1 - exp(-C4 eps)), eps = x / (Z1^(3/2) Z2^(1/2)),
    C = (1.273e-2, 3.458e-2, 0.3931, 3.812).
"""

from __future__ import annotations

import math

import numpy as np

# 4 pi e^4 in MeV^2 cm^2 (e^2 = 1.439964e-13 MeV cm), times 1e15 atoms/cm2
BOHR_MEV2_PER_1E15 = 4.0 * math.pi * (1.439964e-13) ** 2 * 1e15

# Chu correction fit coefficients A1..A4 per target Z (row index = Z2; rows 0 and 1 unused: no
# fit for hydrogen targets, H = 1 there). Yang, O'Connor, Wang, NIM B 61 (1991) 149.
CHU_COEF = np.array([
    [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0],
    [-0.3291, -0.8312, 0.2460, -1.0220], [-0.5615, -0.5898, 0.5205, -0.7258],
    [-0.5280, -0.4981, 0.5519, -0.5865], [-0.5125, -0.4625, 0.5660, -0.5190],
    [-0.5127, -0.8595, 0.5626, -0.8721], [-0.5174, -1.1930, 0.5565, -1.1980],
    [-0.5179, -1.1850, 0.5560, -1.2070], [-0.5209, -0.9355, 0.5590, -1.0250],
    [-0.5255, -0.7766, 0.5720, -0.9412], [-0.5776, -0.6665, 0.6598, -0.8484],
    [-0.6013, -0.6045, 0.7321, -0.7671], [-0.5781, -0.5518, 0.7605, -0.6919],
    [-0.5587, -0.4981, 0.7835, -0.6195], [-0.5466, -0.4656, 0.7978, -0.5771],
    [-0.5406, -0.4690, 0.8031, -0.5718], [-0.5391, -0.5061, 0.8024, -0.5974],
    [-0.5380, -0.6483, 0.7962, -0.6970], [-0.5355, -0.7722, 0.7962, -0.7839],
    [-0.5329, -0.7720, 0.7988, -0.7846], [-0.5335, -0.7671, 0.7984, -0.7933],
    [-0.5324, -0.7612, 0.7998, -0.8031], [-0.5305, -0.7300, 0.8031, -0.7990],
    [-0.5307, -0.7178, 0.8049, -0.8216], [-0.5248, -0.6621, 0.8165, -0.7919],
    [-0.5180, -0.6502, 0.8266, -0.7986], [-0.5084, -0.6408, 0.8396, -0.8048],
    [-0.4967, -0.6331, 0.8549, -0.8093], [-0.4861, -0.6508, 0.8712, -0.8432],
    [-0.4700, -0.6186, 0.8961, -0.8132], [-0.4545, -0.5720, 0.9227, -0.7710],
    [-0.4404, -0.5226, 0.9481, -0.7254], [-0.4288, -0.4778, 0.9701, -0.6850],
    [-0.4199, -0.4425, 0.9874, -0.6539], [-0.4131, -0.4188, 0.9998, -0.6332],
    [-0.4089, -0.4057, 1.0070, -0.6218], [-0.4039, -0.3913, 1.0150, -0.6107],
    [-0.3987, -0.3698, 1.0240, -0.5938], [-0.3977, -0.3608, 1.0260, -0.5852],
    [-0.3972, -0.3600, 1.0260, -0.5842], [-0.3985, -0.3803, 1.0200, -0.6013],
    [-0.3985, -0.3979, 1.0150, -0.6168], [-0.3968, -0.3990, 1.0160, -0.6195],
    [-0.3971, -0.4432, 1.0050, -0.6591], [-0.3944, -0.4665, 1.0010, -0.6825],
    [-0.3924, -0.5109, 0.9921, -0.7235], [-0.3882, -0.5158, 0.9947, -0.7343],
    [-0.3838, -0.5125, 0.9999, -0.7370], [-0.3786, -0.4976, 1.0090, -0.7310],
    [-0.3741, -0.4738, 1.0200, -0.7155], [-0.3969, -0.4496, 1.0320, -0.6982],
    [-0.3663, -0.4297, 1.0430, -0.6828], [-0.3630, -0.4120, 1.0530, -0.6689],
    [-0.3597, -0.3964, 1.0620, -0.6564], [-0.3555, -0.3809, 1.0720, -0.6454],
    [-0.3525, -0.3607, 1.0820, -0.6289], [-0.3505, -0.3465, 1.0900, -0.6171],
    [-0.3397, -0.3570, 1.1020, -0.6384], [-0.3314, -0.3552, 1.1130, -0.6441],
    [-0.3235, -0.3531, 1.1230, -0.6498], [-0.3150, -0.3483, 1.1360, -0.6539],
    [-0.3060, -0.3441, 1.1490, -0.6593], [-0.2968, -0.3396, 1.1630, -0.6649],
    [-0.2935, -0.3225, 1.1760, -0.6527], [-0.2797, -0.3262, 1.1940, -0.6722],
    [-0.2704, -0.3202, 1.2100, -0.6770], [-0.2815, -0.3227, 1.2480, -0.6775],
    [-0.2880, -0.3245, 1.2810, -0.6801], [-0.3034, -0.3263, 1.3270, -0.6778],
    [-0.2936, -0.3215, 1.3430, -0.6835], [-0.3282, -0.3200, 1.3980, -0.6650],
    [-0.3260, -0.3070, 1.4090, -0.6552], [-0.3511, -0.3074, 1.4470, -0.6442],
    [-0.3501, -0.3064, 1.4500, -0.6442], [-0.3490, -0.3027, 1.4550, -0.6418],
    [-0.3487, -0.3048, 1.4570, -0.6447], [-0.3478, -0.3074, 1.4600, -0.6483],
    [-0.3501, -0.3283, 1.4540, -0.6669], [-0.3494, -0.3373, 1.4550, -0.6765],
    [-0.3485, -0.3373, 1.4560, -0.6774], [-0.3462, -0.3300, 1.4630, -0.6728],
    [-0.3462, -0.3225, 1.4690, -0.6662], [-0.3453, -0.3094, 1.4790, -0.6553],
    [-0.3844, -0.3134, 1.5240, -0.6412], [-0.3848, -0.3018, 1.5310, -0.6303],
    [-0.3862, -0.2955, 1.5360, -0.6237], [-0.4262, -0.2991, 1.5860, -0.6115],
    [-0.4278, -0.2910, 1.5900, -0.6029], [-0.4303, -0.2817, 1.5940, -0.5927],
    [-0.4315, -0.2719, 1.6010, -0.5829], [-0.4359, -0.2914, 1.6050, -0.6010],
    [-0.4365, -0.2982, 1.6080, -0.6080],
])

YANG_B = (0.1955, 0.6941, 2.522, 1.040)
YANG_C = (1.273e-2, 3.458e-2, 0.3931, 3.812)


def bohr_variance_per_1e15(Z1, Z2):
    """Bohr straggling variance per areal density, MeV^2 per 1e15 atoms/cm2.

    Omega_B^2 / (N dx) = 4 pi e^4 Z1^2 Z2 (Bohr 1948; e.g. Chu, Mayer, Nicolet, *Backscattering
    Spectrometry* (1978) eq. 2.58), with e^2 = 1.439964e-13 MeV cm: 2.6057e-10 Z1^2 Z2.
    """
    return BOHR_MEV2_PER_1E15 * Z1 * Z1 * Z2


def chu_factor(E_per_u_MeV, Z2):
    """Chu's correction H = Omega_Chu^2 / Omega_Bohr^2 for target element Z2 at E/M1 (MeV/u),
    a number or an array of them.

    H = 1 / (1 + A1 x^A2 + A3 x^A4) with Yang, O'Connor, Wang, NIM B 61 (1991) 149, eq. 4 and
    its coefficient table (fit to Chu, Phys. Rev. A 13 (1976) 2057). Hydrogen targets (no fit)
    and x <= 0 give 1 (Bohr) and 0 respectively.
    """
    x = np.asarray(E_per_u_MeV, dtype=float)
    z = int(Z2)
    if z < 2 or z >= CHU_COEF.shape[0]:
        h = np.ones_like(x)
    else:
        a1, a2, a3, a4 = CHU_COEF[z]
        xp = np.where(x > 0.0, x, 1.0)
        h = 1.0 / np.maximum(1.0 + a1 * xp ** a2 + a3 * xp ** a4, 1e-3)
    return np.where(x > 0.0, h, 0.0)[()]


def zbl_charge_fraction(E_per_u_MeV, Z1):
    """Ionisation fraction q of a heavy ion (Ziegler, Biersack, Littmark 1985, ch. 3), at E/M1
    (MeV/u), a number or an array of them.

    y_r = v / (v0 Z1^(2/3)) with v/v0 = sqrt(E/M1 / 25 keV/u), limited below at 0.13;
    q = 1 - exp(0.803 y_r^0.3 - 1.3167 y_r^0.6 - 0.38157 y_r - 0.008983 y_r^2).
    Used only as a fallback effective charge (gamma ~ q, without the Brandt-Kitagawa screening
    term and the target Fermi velocity, so it underestimates gamma at low velocity).
    """
    x = np.asarray(E_per_u_MeV, dtype=float)
    if Z1 <= 1:
        return np.ones_like(x)[()]
    yr = np.maximum(np.sqrt(np.maximum(x, 0.0) * 1000.0 / 25.0) / Z1 ** (2.0 / 3.0), 0.13)
    q = 1.0 - np.exp(0.803 * yr ** 0.3 - 1.3167 * yr ** 0.6 - 0.38157 * yr - 0.008983 * yr * yr)
    return np.clip(q, 0.0, 1.0)[()]


def yang_factor(E_MeV, Z1, M1, Z2, gamma2=-1.0):
    """Yang et al. straggling relative to Bohr: Omega^2 / Omega_B^2, at the ion energy E (MeV),
    a number or an array of them.

    Q. Yang, D.J. O'Connor, Z. Wang, NIM B 61 (1991) 149, eqs. 6-8 (solid targets):
    gamma^2 H_Chu(E/M1, Z2) + dOmega^2/Omega_B^2 (see module docstring for the constants).
    ``gamma2`` (a number, or an array like ``E_MeV``) is the squared effective-charge fraction
    of the ion at this velocity; recoilsim passes S_e(ion)/(Z1^2 S_e(H)) at equal velocity from
    the stopping tables (the ZBL definition of the heavy-ion effective charge, as Yang et al.
    use). Where ``gamma2`` < 0 a closed-form fallback, :func:`zbl_charge_fraction` squared, is
    used. For protons gamma = 1. E <= 0 gives 0.
    """
    e = np.asarray(E_MeV, dtype=float)
    x = np.where(e > 0.0, e, 1.0) / M1
    h = chu_factor(x, Z2)
    if Z1 <= 1:
        g = YANG_B[2] * (1.0 - np.exp(-YANG_B[3] * x))
        f = h + YANG_B[0] * g / ((x - YANG_B[1]) ** 2 + g * g)
    else:
        g2 = np.asarray(gamma2, dtype=float)
        if np.any(g2 < 0.0):
            g2 = np.where(g2 < 0.0, zbl_charge_fraction(x, Z1) ** 2, g2)
        eps = x / (Z1 ** 1.5 * math.sqrt(Z2))
        g = YANG_C[2] * (1.0 - np.exp(-YANG_C[3] * eps))
        corr = (Z1 ** (4.0 / 3.0) / Z2 ** (1.0 / 3.0)) * YANG_C[0] * g / ((eps - YANG_C[1]) ** 2 + g * g)
        f = g2 * h + corr
    return np.where(e > 0.0, f, 0.0)[()]


def straggling_row(model, lnE0, dlnE, n, Z1, M1, Z2, gamma2_row):
    """Variance per 1e15 atoms/cm2 (MeV^2) at the n grid nodes (E/M1 = exp(lnE0 + k dlnE) MeV/u).

    model: 0 none, 1 Bohr, 2 Chu, 3 Yang (gamma2_row: squared effective-charge fractions per node,
    negative entries use the closed-form fallback).
    """
    if model == 0:
        return np.zeros(n)
    wb = bohr_variance_per_1e15(Z1, Z2)
    if model == 1:
        return np.full(n, wb)
    x = np.exp(lnE0 + np.arange(n) * dlnE)
    if model == 2:
        return wb * chu_factor(x, Z2)
    return wb * yang_factor(x * M1, Z1, M1, Z2, np.asarray(gamma2_row, dtype=float)[:n])
