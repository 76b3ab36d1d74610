"""Energy-loss straggling: Bohr closed form, Chu, Yang et al. (NIM B 61 (1991) 149) by hand."""

import math

import numpy as np
import pytest

from recoilsim.stopping import tables as rs
from recoilsim.kernels.straggling import (bohr_variance_per_1e15, chu_factor, yang_factor,
                                          zbl_charge_fraction)

CU63 = (29, 62.9295975)
LI7 = (3, 7.0160034)
CU_DENSITY = 8.92  # g/cm3 (SRIM's value for Cu)


def test_bohr_against_closed_form_si():
    """Omega_B^2 = 4 pi Z1^2 Z2 (e^2/(4 pi eps0))^2 N t, evaluated in SI units."""
    e = 1.602176634e-19
    eps0 = 8.8541878128e-12
    k_e2 = e * e / (4 * math.pi * eps0)          # J m
    n_areal = 1e15 * 1e4                          # 1e15 atoms/cm2 in atoms/m2
    for z1, z2 in [(1, 14), (3, 29), (29, 29), (92, 8)]:
        omega2_J2 = 4 * math.pi * z1 ** 2 * z2 * k_e2 ** 2 * n_areal
        omega2_MeV2 = omega2_J2 / (e * 1e6) ** 2
        assert bohr_variance_per_1e15(z1, z2) == pytest.approx(omega2_MeV2, rel=1e-6)
    # the textbook number: 2.6057e-10 MeV^2 per 1e15 at/cm2 for Z1 = Z2 = 1
    assert bohr_variance_per_1e15(1, 1) == pytest.approx(2.6057e-10, rel=1e-4)


def test_bohr_layer_sigma():
    t = rs.nm_to_1e15(30.0, "Cu", CU_DENSITY)
    res = rs.energy_loss(CU63, "Cu", t, 9.0, straggling="bohr")
    # Bohr's variance is energy independent; the (S_out/S_in)^2 factor is within 1 % for 2 % loss
    sig_thin = math.sqrt(bohr_variance_per_1e15(29, 29) * t)
    assert res.sigma == pytest.approx(sig_thin, rel=0.01)


def test_chu_factor_limits():
    assert chu_factor(1.0, 1) == 1.0               # no fit for H targets: Bohr
    assert chu_factor(0.0, 29) == 0.0
    assert chu_factor(200.0, 29) == pytest.approx(1.0, abs=0.01)   # high velocity -> Bohr
    assert 0.0 < chu_factor(0.1, 29) < 1.0
    # Cu, x = 1 MeV/u: 1 / (1 - 0.4861 + 0.8712)
    assert chu_factor(1.0, 29) == pytest.approx(1 / (1 - 0.4861 + 0.8712), rel=1e-12)


def test_yang_9MeV_cu_in_30nm_cu_by_hand():
    """Hand evaluation of Yang, O'Connor, Wang, NIM B 61 (1991) 149, eqs. 6-8, with the
    published constants, for 9 MeV 63Cu in Cu, independent of the kernel code path."""
    pytest.importorskip("lunasrim")
    from lunasrim.stopping import electronic_stopping

    Z1, M1, Z2 = 29, CU63[1], 29
    E = 9.0
    # step 1: energy per mass, MeV/u
    x = E / M1                                   # 0.14302 MeV/u
    assert x == pytest.approx(0.143017, rel=1e-5)
    # step 2: Chu factor for Cu, published fit A1..A4 = -0.4861, -0.6508, 0.8712, -0.8432
    H = 1.0 / (1.0 + (-0.4861) * x ** (-0.6508) + 0.8712 * x ** (-0.8432))
    # step 3: effective-charge fraction gamma^2 = S_e(Cu)/(Z1^2 S_e(H)) at equal velocity,
    #         from SRIM-2013 (lunasrim, solid Cu)
    s_cu = electronic_stopping(29, 1.0, 29, x * 1000.0, 0)
    s_h = electronic_stopping(1, 1.0, 29, x * 1000.0, 0)
    gamma2 = s_cu / (Z1 ** 2 * s_h)
    assert 0.01 < gamma2 < 0.1   # gamma ~ 0.2: a 0.14 MeV/u Cu ion is far from bare
    # step 4: reduced energy eps = x / (Z1^1.5 Z2^0.5)
    eps = x / (Z1 ** 1.5 * Z2 ** 0.5)
    # step 5: Gamma = C3 (1 - exp(-C4 eps)), C3 = 0.3931, C4 = 3.812
    G = 0.3931 * (1.0 - math.exp(-3.812 * eps))
    # step 6: correlation term Z1^(4/3)/Z2^(1/3) C1 Gamma / ((eps - C2)^2 + Gamma^2),
    #         C1 = 1.273e-2, C2 = 3.458e-2
    dW = Z1 ** (4 / 3) / Z2 ** (1 / 3) * 1.273e-2 * G / ((eps - 3.458e-2) ** 2 + G ** 2)
    ratio = gamma2 * H + dW
    # kernel with the same gamma^2
    assert yang_factor(E, Z1, M1, Z2, gamma2) == pytest.approx(ratio, rel=1e-10)
    # table built by particle_tables (gamma^2 from the shipped tables, interpolated)
    t = rs.particle_tables([CU63], [29], straggling="yang")
    lnx = math.log(x)
    from recoilsim.kernels.stopping import loglog_flat
    W_tab = loglog_flat(t.W[0, 0], t.lnE0, t.dlnE, lnx)
    wb = 4 * math.pi * (1.439964e-13) ** 2 * 1e15 * Z1 ** 2 * Z2
    assert W_tab == pytest.approx(wb * ratio, rel=2e-3)
    # step 7: 30 nm Cu (8.92 g/cm3): N t = 8.92 N_A / 63.546 * 30e-7 cm = 253.6e15 at/cm2;
    #         thin layer: sigma^2 = Omega_B^2 * ratio
    Nt = 8.92 * 6.02214076e23 / 63.546 * 30e-7 / 1e15
    sigma_hand = math.sqrt(wb * Nt * ratio)
    res = rs.energy_loss(CU63, "Cu", rs.nm_to_1e15(30, "Cu", CU_DENSITY), E)
    # the layer calculation follows the energy (2 % loss) and the (S_out/S_in)^2 rule
    assert res.sigma == pytest.approx(sigma_hand, rel=0.03)
    # and it is well below bare-Z Bohr (several times in variance)
    bohr = rs.energy_loss(CU63, "Cu", rs.nm_to_1e15(30, "Cu", CU_DENSITY), E, straggling="bohr")
    assert res.sigma < 0.5 * bohr.sigma
    assert (res.sigma / bohr.sigma) ** 2 < 0.25


def test_effective_charge_well_below_bohr_without_lunasrim():
    t = rs.nm_to_1e15(30.0, "Cu", CU_DENSITY)
    y = rs.energy_loss(CU63, "Cu", t, 9.0)
    b = rs.energy_loss(CU63, "Cu", t, 9.0, straggling="bohr")
    c = rs.energy_loss(CU63, "Cu", t, 9.0, straggling="chu")
    n = rs.energy_loss(CU63, "Cu", t, 9.0, straggling="none")
    assert y.sigma < 0.5 * b.sigma
    assert c.sigma < b.sigma
    assert n.sigma == 0.0
    assert y.energy_out == b.energy_out == n.energy_out


def test_proton_yang_by_hand_and_light_ion_default():
    # protons, x = 1 MeV/u in Si: H_Chu + B1 G/((x-B2)^2+G^2), G = B3 (1-exp(-B4 x))
    x = 1.0
    H = 1 / (1 - 0.5587 + 0.7835)
    G = 2.522 * (1 - math.exp(-1.040 * x))
    ref = H + 0.1955 * G / ((x - 0.6941) ** 2 + G ** 2)
    assert yang_factor(1.00782503, 1, 1.00782503, 14) == pytest.approx(ref, rel=1e-10)
    # default 'yang' uses Chu for Z1 <= 2 (light ions nearly bare)
    ty = rs.particle_tables([LI7, (2, 4.0026), (1, 1.0078)], [29], straggling="yang")
    tc = rs.particle_tables([LI7, (2, 4.0026), (1, 1.0078)], [29], straggling="chu")
    assert np.array_equal(ty.W[1:], tc.W[1:])
    assert not np.array_equal(ty.W[0], tc.W[0])


def test_fallback_charge_fraction():
    assert zbl_charge_fraction(1.0, 1) == 1.0
    q_lo = zbl_charge_fraction(0.01, 29)
    q_hi = zbl_charge_fraction(10.0, 29)
    assert 0.0 <= q_lo < q_hi <= 1.0
    assert q_hi > 0.8
    # gamma2 < 0 selects the closed-form fallback, finite and positive
    v = yang_factor(9.0, 29, 62.93, 29)
    assert np.isfinite(v) and v > 0
    assert yang_factor(0.0, 29, 62.93, 29) == 0.0


def test_building_tables_compiles_nothing(tmp_path):
    """The stopping and straggling rows are numpy (issue 17, cold start): building the tables
    of a simulation compiles no Numba function, even with an empty Numba cache."""
    import os
    import subprocess
    import sys

    code = ("from numba.core import event\n"
            "seen = []\n"
            "class L(event.Listener):\n"
            "    def on_start(self, ev): seen.append(ev.data['dispatcher'].py_func.__name__)\n"
            "    def on_end(self, ev): pass\n"
            "event.register('numba:compile', L())\n"
            "from recoilsim.stopping.tables import particle_tables\n"
            "for model in ('bohr', 'chu', 'yang'):\n"
            "    t = particle_tables([(3, 7.016), (1, 1.008), (29, 62.93)], [3, 8, 29], model)\n"
            "    assert t.W.shape == (3, 3, t.S.shape[-1]) and (t.W > 0).all() and (t.S > 0).all()\n"
            "print(seen)\n")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_row_functions_take_arrays_and_numbers_alike():
    """Each closed form gives, on an array of energies, what it gives for each energy alone
    (including E <= 0 -> 0 and the fallback effective charge where gamma2 < 0)."""
    E = np.array([-1.0, 0.0, 0.05, 0.9, 9.0, 120.0])
    g2 = np.array([0.3, -1.0, 0.5, -1.0, 0.9, 1.0])
    np.testing.assert_array_equal(chu_factor(E / 63.0, 29), [chu_factor(e / 63.0, 29) for e in E])
    np.testing.assert_array_equal(zbl_charge_fraction(E / 63.0, 29), [zbl_charge_fraction(e / 63.0, 29) for e in E])
    np.testing.assert_array_equal(yang_factor(E, 29, 63.0, 8, g2), [yang_factor(e, 29, 63.0, 8, g) for e, g in zip(E, g2)])
    np.testing.assert_array_equal(yang_factor(E, 1, 1.008, 8), [yang_factor(e, 1, 1.008, 8) for e in E])
    assert yang_factor(0.0, 29, 63.0, 8) == 0.0 and chu_factor(-1.0, 29) == 0.0
