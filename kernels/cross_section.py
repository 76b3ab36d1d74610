"""Rutherford cross sections in the laboratory frame with electron screening.

Units: energies MeV, masses u, angles radians, cross sections mb/sr.

Compiled kernels: :func:`cross_section_at` (the brick kernel's per-species form) and
:func:`_andersen`. The others are plain Python: only the Python layer calls them (once per
species and simulation), and their Numba compiles (~0.1 s each) cost more in a cold start than
they ever run (benchmarks/README.md, "Session 9, cold compile"). They do the floating-point
operations of their compiled form, in the same order (an integer power as Numba computes it, by
squaring), so they give the same results.
"""

import math

from numba import njit


E2_MEV_FM = 1.439964548  # e^2 / (4 pi eps0) in MeV fm (CODATA 2018)
FM2_TO_MB = 10.0  # 1 fm^2 = 10 mb


def rutherford_recoil(Z1, M1, Z2, M2, E1, phi):
    """Rutherford recoil cross section in the lab frame, mb/sr.

    dsigma/dOmega = [Z1 Z2 e^2 / (2 E1)]^2 (1 + M1/M2)^2 / cos^3(phi)
    (Tesmer & Nastasi 1995, eq. 5.3; SIMNRA user's guide, ERDA cross section).
    E1: projectile energy (MeV); phi: recoil angle (rad) from the beam. 0 for phi >= pi/2.
    """
    c = math.cos(phi)
    if c <= 0.0 or E1 <= 0.0:
        return 0.0
    a = Z1 * Z2 * E2_MEV_FM / (2.0 * E1)
    r = 1.0 + M1 / M2
    return a * a * r * r / (c * c * c) * FM2_TO_MB


def rutherford_scatter(Z1, M1, Z2, M2, E1, theta, root):
    """Rutherford cross section (mb/sr) of the scattered projectile in the lab frame.

    Centre-of-mass Rutherford [Z1 Z2 e^2 / (4 E_cm)]^2 / sin^4(theta_cm/2), with
    E_cm = E1 M2/(M1+M2), transformed to the lab by dOmega_cm/dOmega_lab =
    (1 + 2x cos(theta_cm) + x^2)^(3/2) / |1 + x cos(theta_cm)|, x = M1/M2
    (Goldstein, Classical Mechanics, 2nd ed., eq. 3-115; Tesmer & Nastasi 1995, ch. 4).
    ``root`` as in :func:`scatter_cm_angle`. Returns 0 where the root does not exist.
    """
    x = M1 / M2
    a = x * math.sin(theta)
    if a > 1.0 or E1 <= 0.0:
        return 0.0
    d = math.asin(a)
    if root > 0:
        tc = theta + d
    else:
        if x <= 1.0:
            return 0.0
        tc = theta + math.pi - d
    if tc <= 0.0 or tc >= math.pi:
        return 0.0
    ecm = E1 * M2 / (M1 + M2)
    s2 = math.sin(0.5 * tc)
    b = Z1 * Z2 * E2_MEV_FM / (4.0 * ecm)
    s2_sq = s2 * s2
    dcm = b * b / (s2_sq * s2_sq)  # s2^4 by squaring, as Numba computed it
    ct = math.cos(tc)
    den = abs(1.0 + x * ct)
    if den == 0.0:
        return 0.0
    jac = (1.0 + 2.0 * x * ct + x * x) ** 1.5 / den
    return dcm * jac * FM2_TO_MB


def andersen_factor(Z1, M1, Z2, M2, E1, theta_cm):
    """Andersen screening correction F = sigma_screened / sigma_Rutherford.

    F = (1 + V1/(2 E_cm))^2 / {1 + V1/E_cm + [V1 / (2 E_cm sin(theta_cm/2))]^2}^2 with
    V1 = 0.04873 Z1 Z2 (Z1^(2/3) + Z2^(2/3))^(1/2) keV (Andersen, Besenbacher, Loftager,
    Moller, Phys. Rev. A 21 (1980) 1891, eq. 9). E_cm = E1 M2/(M1+M2).
    For a recoil at lab angle phi, theta_cm = pi - 2 phi. F -> 1 as E1 -> infinity.
    """
    ecm_kev = 1000.0 * E1 * M2 / (M1 + M2)
    if ecm_kev <= 0.0:
        return 0.0
    v1 = 0.04873 * Z1 * Z2 * math.sqrt(Z1 ** (2.0 / 3.0) + Z2 ** (2.0 / 3.0))
    r = v1 / ecm_kev
    s = math.sin(0.5 * theta_cm)
    if s <= 0.0:
        return 0.0
    return _andersen(r, 0.5 / s)


@njit(cache=True, error_model="numpy", _nrt=False)  # called by cross_section_at and, from Python, andersen_factor
def _andersen(r, q):
    """Andersen's F for r = V1/E_cm and q = 1/(2 sin(theta_cm/2)): (1 + r/2)^2 / (1 + r + (q r)^2)^2."""
    return (1.0 + 0.5 * r) ** 2 / (1.0 + r + (q * r) ** 2) ** 2


def lecuyer_factor(Z1, M1, Z2, M2, E1):
    """L'Ecuyer screening correction F = 1 - 0.04873 Z1 Z2^(4/3) / E_cm (E_cm in keV).

    L'Ecuyer, Davies, Matsunami, Nucl. Instr. Meth. 160 (1979) 337; derived for
    backscattering angles (no angular dependence), so only an option for ERDA.
    Clipped at 0 for very low energies.
    """
    ecm_kev = 1000.0 * E1 * M2 / (M1 + M2)
    if ecm_kev <= 0.0:
        return 0.0
    f = 1.0 - 0.04873 * Z1 * Z2 ** (4.0 / 3.0) / ecm_kev
    return f if f > 0.0 else 0.0


def recoil_cross_section(Z1, M1, Z2, M2, E1, phi, screening):
    """Screened recoil cross section (mb/sr): Rutherford times the chosen screening factor.

    screening: 0 none, 1 Andersen (default at the API), 2 L'Ecuyer.
    """
    s = rutherford_recoil(Z1, M1, Z2, M2, E1, phi)
    if screening == 1:
        s *= andersen_factor(Z1, M1, Z2, M2, E1, math.pi - 2.0 * phi)
    elif screening == 2:
        s *= lecuyer_factor(Z1, M1, Z2, M2, E1)
    return s


def recoil_cross_section_coeffs(Z1, M1, Z2, M2, phi, screening):
    """The energy-independent parts of :func:`recoil_cross_section`, for many energies:
    (c, w, q) with sigma(E1) = c / E1^2 * F, where F = 1 (no screening),
    (1 + r/2)^2 / (1 + r + (q r)^2)^2 with r = w / E1 (Andersen: w = V1 (M1 + M2)/(1000 M2),
    q = 1 / (2 sin(theta_cm/2)), theta_cm = pi - 2 phi) or max(0, 1 - w / E1) (L'Ecuyer:
    w = 0.04873 Z1 Z2^(4/3) (M1 + M2)/(1000 M2)). Same sources as the functions above."""
    return _screened_coeffs(rutherford_recoil(Z1, M1, Z2, M2, 1.0, phi), Z1, M1, Z2, M2, math.pi - 2.0 * phi,
                            screening)


def scatter_cross_section_coeffs(Z1, M1, Z2, M2, theta, root, screening):
    """The energy-independent parts (c, w, q) of the screened cross section of the scattered
    projectile (root +1 / -1), in the form of :func:`recoil_cross_section_coeffs`.

    The centre-of-mass Rutherford cross section goes as E_cm^-2 = ((M1 + M2)/(M2 E1))^2 and
    the lab transformation depends on the angles only, so the Rutherford part is
    c / E1^2 with c = :func:`rutherford_scatter` at E1 = 1 MeV; Andersen's and L'Ecuyer's
    factors depend on the energy through V1 / E_cm and Z1 Z2^(4/3) / E_cm alone (sources as in
    :func:`andersen_factor`, :func:`lecuyer_factor`), with theta_cm from sin(theta_cm - theta)
    = (M1/M2) sin(theta). (0, 0, 0) where the root does not exist.
    """
    c = rutherford_scatter(Z1, M1, Z2, M2, 1.0, theta, root)
    if c == 0.0:
        return 0.0, 0.0, 0.0
    d = math.asin(M1 / M2 * math.sin(theta))
    tc = theta + d if root > 0 else theta + math.pi - d
    return _screened_coeffs(c, Z1, M1, Z2, M2, tc, screening)


def _screened_coeffs(c, Z1, M1, Z2, M2, theta_cm, screening):
    """(c, w, q) of :func:`recoil_cross_section_coeffs` from the Rutherford part c at 1 MeV and
    the centre-of-mass angle theta_cm."""
    scale = (M1 + M2) / (1000.0 * M2)  # keV in the CM frame -> MeV of the projectile
    if screening == 1:
        sn = math.sin(0.5 * theta_cm)
        if sn <= 0.0:
            return 0.0, 0.0, 0.0
        v1 = 0.04873 * Z1 * Z2 * math.sqrt(Z1 ** (2.0 / 3.0) + Z2 ** (2.0 / 3.0))
        return c, v1 * scale, 0.5 / sn
    if screening == 2:
        return c, 0.04873 * Z1 * Z2 ** (4.0 / 3.0) * scale, 0.0
    return c, 0.0, 0.0


@njit(cache=True, _nrt=False)  # (jit_options.LEAF: one compile for the kernel and Python)
def cross_section_at(c, w, q, screening, E1):
    """sigma(E1) in mb/sr from :func:`recoil_cross_section_coeffs` or
    :func:`scatter_cross_section_coeffs` (the brick kernel's per-species form)."""
    if E1 <= 0.0:
        return 0.0
    s = c / (E1 * E1)
    if screening == 1:
        return s * _andersen(w / E1, q)
    if screening == 2:
        f = 1.0 - w / E1
        return s * f if f > 0.0 else 0.0
    return s
