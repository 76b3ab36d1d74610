"""Kinematics and flight times against independent numbers (check values computed by hand from
the two-body kinematics and the relativistic flight time)."""

import math

import pytest

from recoilsim.model.elements import isotope
from recoilsim.kernels.kinematics import (energy_from_time, flight_time_ns, recoil_factor,
                                          scatter_cm_angle, scatter_factor)

CU63 = isotope("63Cu").mass_u
LI7 = isotope("7Li").mass_u
P31 = isotope("31P").mass_u
PHI = math.radians(40.0)


def test_reference_recoil_numbers():
    # check values (issue 2, computed by hand): K = 0.21183, E2 = 1.9065 MeV
    K = recoil_factor(CU63, LI7, PHI)
    assert K == pytest.approx(0.21183, abs=1e-5)
    assert 9.0 * K == pytest.approx(1.9065, abs=1e-4)
    assert recoil_factor(CU63, P31, PHI) == pytest.approx(0.51887, abs=1e-5)


def test_reference_flight_time():
    E2 = 9.0 * recoil_factor(CU63, LI7, PHI)
    t_rel = flight_time_ns(E2, LI7, 0.600, True)
    t_cl = flight_time_ns(E2, LI7, 0.600, False)
    assert t_rel == pytest.approx(82.876, abs=1e-3)
    # classical is about 0.02 % shorter: for small E/mc2, t_cl/t_rel ~ 1 - 3E/(4 mc2)
    mc2 = LI7 * 931.49410242
    assert 1 - t_cl / t_rel == pytest.approx(3 * E2 / (4 * mc2), rel=0.01)
    assert 1 - t_cl / t_rel == pytest.approx(2.2e-4, abs=0.2e-4)


@pytest.mark.parametrize("rel", [True, False])
def test_energy_time_inverse(rel):
    for E in (0.05, 1.0, 9.0, 40.0):
        t = flight_time_ns(E, 12.0, 0.623, rel)
        assert energy_from_time(t, 12.0, 0.623, rel) == pytest.approx(E, rel=1e-12)
    assert math.isinf(flight_time_ns(0.0, 12.0, 0.6, rel))
    assert energy_from_time(-1.0, 12.0, 0.6, rel) == 0.0


def test_scatter_single_root_closed_form():
    # M1 < M2 at 90 deg: K = (M2 - M1)/(M2 + M1) (Tesmer & Nastasi eq. 4.1 with cos = 0)
    M1, M2 = 4.0026, 28.0
    assert scatter_factor(M1, M2, math.pi / 2, 1) == pytest.approx((M2 - M1) / (M2 + M1), rel=1e-12)
    assert scatter_factor(M1, M2, math.pi / 2, -1) == -1.0


def test_scatter_both_roots_from_momentum_conservation():
    # Independent check: for either root, the recoil partner takes E1(1 - K_s) and leaves at
    # the angle set by momentum conservation; its recoil factor at that angle must agree.
    M1, M2 = 62.93, 27.98  # Cu on Si: both roots below theta_max = asin(M2/M1)
    theta = math.radians(20.0)
    for root in (1, -1):
        Ks = scatter_factor(M1, M2, theta, root)
        assert 0 < Ks < 1
        p1 = math.sqrt(2 * M1)  # E1 = 1
        p1s = math.sqrt(2 * M1 * Ks)
        px = p1 - p1s * math.cos(theta)
        py = -p1s * math.sin(theta)
        phi = math.atan2(-py, px)
        assert recoil_factor(M1, M2, phi) == pytest.approx(1 - Ks, rel=1e-10)
    assert scatter_factor(M1, M2, math.radians(27.0), 1) == -1.0  # beyond asin(M2/M1) = 26.4 deg


def test_scatter_cm_angle_equal_masses():
    assert scatter_cm_angle(10.0, 10.0, 0.3, 1) == pytest.approx(0.6)
    assert scatter_cm_angle(10.0, 10.0, 0.3, -1) == -1.0
