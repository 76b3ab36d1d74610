"""Cross sections against hand evaluations and a second derivation."""

import math

import pytest

from recoilsim.model.elements import isotope
from recoilsim.kernels.cross_section import (andersen_factor, lecuyer_factor, recoil_cross_section,
                                             rutherford_recoil, rutherford_scatter)

CU = isotope("63Cu").mass_u
LI = isotope("7Li").mass_u


def test_recoil_rutherford_hand_evaluation():
    # 9 MeV 63Cu -> 7Li at 40 deg, e^2 = 1.439964548 MeV fm, 1 fm^2 = 10 mb:
    # a = 29*3*1.439964548/(2*9) = 6.95983; (1 + 62.9296/7.01600)^2 = 99.3944;
    # cos^3(40 deg) = 0.449533 -> 6.95983^2*99.3944/0.449533 fm^2 = 10710.1 fm^2 = 107101 mb/sr
    a = 29 * 3 * 1.439964548 / 18.0
    hand = a * a * (1 + CU / LI) ** 2 / math.cos(math.radians(40)) ** 3 * 10
    assert hand == pytest.approx(1.0710e5, rel=2e-4)
    assert rutherford_recoil(29, CU, 3, LI, 9.0, math.radians(40)) == pytest.approx(hand, rel=1e-12)


def test_recoil_rutherford_from_cm_frame():
    # Second derivation: CM Rutherford at theta_cm = pi - 2 phi times dOmega_cm/dOmega_lab of the
    # recoil, which is 4 cos(phi) (Tesmer & Nastasi ch. 5), with E_cm = E1 M2/(M1+M2).
    for phi_deg in (10.0, 30.0, 40.0, 60.0):
        phi = math.radians(phi_deg)
        ecm = 9.0 * LI / (CU + LI)
        tc = math.pi - 2 * phi
        dcm = (29 * 3 * 1.439964548 / (4 * ecm)) ** 2 / math.sin(tc / 2) ** 4 * 10
        assert rutherford_recoil(29, CU, 3, LI, 9.0, phi) == pytest.approx(dcm * 4 * math.cos(phi), rel=1e-10)


def test_scatter_lab_formula_light_projectile():
    # classic lab formula for M1 < M2 (Tesmer & Nastasi eq. 4.16)
    Z1, M1, Z2, M2, E = 2, 4.0026, 79, 196.97, 2.0
    th = math.radians(165)
    x = M1 / M2
    s = math.sqrt(1 - (x * math.sin(th)) ** 2)
    lab = (Z1 * Z2 * 1.439964548 / (4 * E)) ** 2 * 4 / math.sin(th) ** 4 * (s + math.cos(th)) ** 2 / s * 10
    assert rutherford_scatter(Z1, M1, Z2, M2, E, th, 1) == pytest.approx(lab, rel=1e-9)


def test_andersen_hand_and_limits():
    phi = math.radians(40)
    ecm = 9000.0 * LI / (CU + LI)  # keV
    v1 = 0.04873 * 29 * 3 * math.sqrt(29 ** (2 / 3) + 3 ** (2 / 3))
    s = math.sin((math.pi - 2 * phi) / 2)
    hand = (1 + v1 / (2 * ecm)) ** 2 / (1 + v1 / ecm + (v1 / (2 * ecm * s)) ** 2) ** 2
    F = andersen_factor(29, CU, 3, LI, 9.0, math.pi - 2 * phi)
    assert F == pytest.approx(hand, rel=1e-12)
    assert 0.95 < F < 1.0
    # -> 1 at high energy
    assert andersen_factor(29, CU, 3, LI, 1e5, math.pi - 2 * phi) == pytest.approx(1.0, abs=1e-5)
    assert lecuyer_factor(29, CU, 3, LI, 1e5) == pytest.approx(1.0, abs=1e-5)
    # screened = Rutherford * F
    assert recoil_cross_section(29, CU, 3, LI, 9.0, phi, 1) == pytest.approx(
        rutherford_recoil(29, CU, 3, LI, 9.0, phi) * F, rel=1e-12)
    assert recoil_cross_section(29, CU, 3, LI, 9.0, phi, 0) == rutherford_recoil(29, CU, 3, LI, 9.0, phi)


def test_prepared_recoil_cross_section_equals_direct():
    """recoil_cross_section_coeffs + cross_section_at (the kernel's per-species form) against the direct one."""
    from recoilsim.kernels.cross_section import cross_section_at, recoil_cross_section_coeffs

    for Z2, M2 in ((3, 7.016), (8, 15.995), (15, 30.974), (29, 62.93)):
        for phi_deg in (20.0, 40.0, 60.0):
            phi = math.radians(phi_deg)
            for screening in (0, 1, 2):
                c, w, q = recoil_cross_section_coeffs(29, CU, Z2, M2, phi, screening)
                for E in (0.05, 0.5, 3.0, 9.0, 60.0):
                    direct = recoil_cross_section(29, CU, Z2, M2, E, phi, screening)
                    assert cross_section_at(c, w, q, screening, E) == pytest.approx(direct, rel=1e-12, abs=0.0)


def test_prepared_scatter_cross_section_equals_direct():
    """scatter_cross_section_coeffs + cross_section_at against Rutherford (lab frame) times the
    screening factor at the centre-of-mass angle, each root, light and heavy targets."""
    from recoilsim.kernels.cross_section import (andersen_factor, cross_section_at, lecuyer_factor,
                                                 rutherford_scatter, scatter_cross_section_coeffs)

    for Z2, M2 in ((6, 12.0), (22, 47.948), (29, 62.93), (29, 64.928), (73, 180.948)):
        for theta_deg in (20.0, 40.0, 60.0):
            theta = math.radians(theta_deg)
            x = CU / M2
            for root in (1, -1):
                tc = None
                if x * math.sin(theta) <= 1.0 and (root > 0 or x > 1.0):
                    d = math.asin(x * math.sin(theta))
                    tc = theta + d if root > 0 else theta + math.pi - d
                for screening in (0, 1, 2):
                    c, w, q = scatter_cross_section_coeffs(29, CU, Z2, M2, theta, root, screening)
                    for E in (0.05, 0.5, 3.0, 9.0, 60.0):
                        direct = rutherford_scatter(29, CU, Z2, M2, E, theta, root)
                        if direct > 0.0 and screening == 1:
                            direct *= andersen_factor(29, CU, Z2, M2, E, tc)
                        elif direct > 0.0 and screening == 2:
                            direct *= lecuyer_factor(29, CU, Z2, M2, E)
                        assert cross_section_at(c, w, q, screening, E) == pytest.approx(direct, rel=1e-12, abs=0.0)
