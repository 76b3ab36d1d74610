"""Elastic two-body kinematics and flight times.

Units: energies MeV, masses u, angles radians, lengths m, times ns.
Sources: non-relativistic elastic collision kinematics as in Tesmer & Nastasi (eds.),
Handbook of Modern Ion Beam Materials Analysis (MRS 1995), ch. 4 (RBS) and ch. 5 (ERD):
recoil factor eq. (5.1), scattering factor with both roots eq. (4.1).

Only :func:`flight_time_ns` is a compiled kernel (the brick kernel calls it). The others are
plain Python: only the Python layer calls them, a few times per simulation, and a Numba compile
of each (~0.1 s) cost more in a cold start than they ever run (benchmarks/README.md,
"Session 9, cold compile"); the same floating-point operations in the same order, so the same
results.
"""

import math

from numba import njit

U_MEV = 931.49410242  # atomic mass unit in MeV/c^2 (CODATA 2018)
C_M_PER_NS = 0.299792458  # speed of light in m/ns


def recoil_factor(M1, M2, phi):
    """Kinematic factor of the recoil, E2 = K_r E1.

    K_r = 4 M1 M2 cos^2(phi) / (M1 + M2)^2 (Tesmer & Nastasi 1995, eq. 5.1); phi is the recoil
    angle from the beam direction in radians, masses in u. Returns 0 for phi >= pi/2.
    """
    c = math.cos(phi)
    if c <= 0.0:
        return 0.0
    return 4.0 * M1 * M2 * c * c / ((M1 + M2) * (M1 + M2))


def scatter_factor(M1, M2, theta, root):
    """Kinematic factor of the scattered projectile, E1' = K_s E1.

    K_s = [(M1 cos(theta) +/- sqrt(M2^2 - M1^2 sin^2 theta)) / (M1 + M2)]^2
    (Tesmer & Nastasi 1995, eq. 4.1). ``root`` = +1 is the high-energy root (the only one
    for M1 < M2); ``root`` = -1 the low-energy one, which exists only for M1 > M2 and
    theta < arcsin(M2/M1). Returns -1.0 where the requested root does not exist.
    """
    s = math.sin(theta)
    d = M2 * M2 - M1 * M1 * s * s
    if d < 0.0:
        return -1.0
    r = math.sqrt(d)
    if root > 0:
        v = M1 * math.cos(theta) + r
    else:
        if M1 <= M2:
            return -1.0
        v = M1 * math.cos(theta) - r
    if v < 0.0:
        return -1.0
    return v * v / ((M1 + M2) * (M1 + M2))


def scatter_cm_angle(M1, M2, theta, root):
    """Centre-of-mass scattering angle (rad) for lab angle ``theta`` and a root (+1 / -1).

    From sin(theta_cm - theta) = (M1/M2) sin(theta) (Tesmer & Nastasi 1995, ch. 4).
    Returns -1.0 where the root does not exist.
    """
    x = M1 / M2
    a = x * math.sin(theta)
    if a > 1.0:
        return -1.0
    d = math.asin(a)
    if root > 0:
        return theta + d
    if x <= 1.0:
        return -1.0
    return theta + math.pi - d


@njit(cache=True, _nrt=False)  # (jit_options.LEAF: one compile for the kernel and Python)
def flight_time_ns(E, M, L, relativistic):
    """Time of flight (ns) of a particle of kinetic energy E (MeV) and mass M (u) over L (m).

    Relativistic: v = c sqrt(1 - 1/gamma^2), gamma = 1 + E / (M u c^2); classical:
    v = c sqrt(2 E / (M u c^2)). Returns +inf for E <= 0.
    """
    if E <= 0.0:
        return math.inf
    mc2 = M * U_MEV
    if relativistic:
        g = 1.0 + E / mc2
        beta = math.sqrt(1.0 - 1.0 / (g * g))
    else:
        beta = math.sqrt(2.0 * E / mc2)
    return L / (beta * C_M_PER_NS)


def energy_from_time(t_ns, M, L, relativistic):
    """Kinetic energy (MeV) of a particle of mass M (u) that flies L (m) in t_ns (ns).

    Inverse of :func:`flight_time_ns`. Returns 0 for non-positive or infinite times and
    +inf for times at or below L/c.
    """
    if not (t_ns > 0.0) or math.isinf(t_ns):
        return 0.0
    beta = L / (t_ns * C_M_PER_NS)
    mc2 = M * U_MEV
    if relativistic:
        if beta >= 1.0:
            return math.inf
        return mc2 * (1.0 / math.sqrt(1.0 - beta * beta) - 1.0)
    return 0.5 * mc2 * beta * beta
