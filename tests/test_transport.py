"""Energy-loss transport: closed forms, sublayering independence, lunasrim layer calculation."""

import math

import numpy as np
import pytest

from recoilsim.stopping import tables as rs
from recoilsim.kernels.stopping import compound_stopping
from recoilsim.kernels.transport import (E_STOP_PER_U, energy_after, energy_variance_after,
                                         path_for_energy, stack_energy_after,
                                         stack_energy_variance_after, stack_path_for_energy)

CU63 = (29, 62.9295975)
LI7 = (3, 7.0160034)
LIPON = {"Li": 2.0, "P": 1.0, "O": 2.6, "N": 0.9}


def _tables(particles, symbols, straggling="yang"):
    return rs.particle_tables(particles, symbols, straggling=straggling)


def _lipon_frac():
    f = np.array(list(LIPON.values()))
    return f / f.sum()


def test_constant_stopping_closed_form():
    lnE0, dlnE, n = rs.grid()
    S = np.full((1, n), 250.0)  # eV/(1e15 at/cm2)
    W = np.full((1, n), 3e-9)
    frac = np.ones(1)
    # E_out = E - S x exactly; variance = W x
    assert energy_after(5.0, 7.0, S, frac, lnE0, dlnE, 1000.0) == pytest.approx(5.0 - 0.25, rel=1e-13)
    e, v = energy_variance_after(5.0, 7.0, S, W, frac, lnE0, dlnE, 1000.0, 0.0)
    assert e == pytest.approx(4.75, rel=1e-13)
    assert v == pytest.approx(3e-6, rel=1e-12)
    assert path_for_energy(5.0, 7.0, S, frac, lnE0, dlnE, 4.75) == pytest.approx(1000.0, rel=1e-10)


@pytest.mark.parametrize("case", ["cu_cu", "li_cu", "cu_lipon", "cu_lipon_thick"])
def test_sublayering_independence(case):
    """Splitting a homogeneous layer into 1, 7 or 100 pieces moves the exit energy < 1e-4 rel
    (measured: < 1e-7)."""
    t = _tables([CU63, LI7], ["Cu", "Li", "P", "O", "N"])
    cu = np.array([1.0, 0, 0, 0, 0])
    lipon = np.concatenate([[0.0], _lipon_frac()])
    p, frac, E, path = {
        "cu_cu": (0, cu, 9.0, 253.6),
        "li_cu": (1, cu, 1.9065, 253.6),
        "cu_lipon": (0, lipon, 9.0, 9878.6),
        "cu_lipon_thick": (0, lipon, 9.0, 2.5e4),
    }[case]
    mass = (CU63, LI7)[p][1]
    ref = energy_after(E, mass, t.S[p], frac, t.lnE0, t.dlnE, path)
    assert ref > 0
    for k in (1, 7, 100):
        fr = np.tile(frac, (k, 1))
        e = stack_energy_after(E, mass, t.S[p], fr, t.lnE0, t.dlnE, np.full(k, path / k))
        assert abs(e / ref - 1) < 1e-4, (k, e, ref)
        assert abs(e / ref - 1) < 1e-6


def test_rk4_converged_against_path_integral():
    """Forward RK4 and the independent Gauss-Legendre range integral invert each other to 1e-5,
    even when the ion loses 99 % of its energy."""
    t = _tables([CU63], ["Li", "P", "O", "N"])
    frac = _lipon_frac()
    for path in (10.0, 1e3, 1e4, 3e4):
        e = energy_after(9.0, CU63[1], t.S[0], frac, t.lnE0, t.dlnE, path)
        x = path_for_energy(9.0, CU63[1], t.S[0], frac, t.lnE0, t.dlnE, e)
        assert x == pytest.approx(path, rel=1e-5)


def test_energy_after_vs_lunasrim_energy_loss():
    """lunasrim's own layer calculation (500 RK4 steps on its 200-per-decade table, SRIM's
    pair-specific nuclear stopping). Measured agreement of the exit energy: 2e-7 (Cu/Cu),
    2e-7 (Li/Cu), 4e-7 (Cu/LiPON); of the energy *loss*: 7e-6, 1.1e-5, 6e-7. The residual is
    the table interpolation (ours 100/decade, quantised to 8e-6) and nuclear stopping (ZBL
    universal here vs SRIM's per-pair fit there; both reduce to ln(eps)/(2 eps) for eps > 30,
    which is why Cu on Cu agrees so closely)."""
    lunasrim = pytest.importorskip("lunasrim")
    t = _tables([CU63, LI7], ["Cu", "Li", "P", "O", "N"])
    cu = np.array([1.0, 0, 0, 0, 0])
    lipon = np.concatenate([[0.0], _lipon_frac()])
    cases = [("Cu", 0, "Cu", None, 9000.0, 30, "nm", cu),
             ("Li", 1, "Cu", None, 1900.0, 30, "nm", cu),
             ("Cu", 0, "Li2.0PO2.6N0.9", 2.5, 9000.0, 1, "um", lipon)]
    for ion, p, tgt, rho, ekev, thick, unit, frac in cases:
        mass = (CU63, LI7)[p][1]
        r = lunasrim.energy_loss(ion, tgt, energy=ekev, thickness=thick, unit=unit, mass=mass, density=rho)
        areal = r["areal_density"] / 1e15
        e = energy_after(ekev / 1000, mass, t.S[p], frac, t.lnE0, t.dlnE, areal)
        assert e == pytest.approx(r["energy_out"] / 1000, rel=1e-5), (ion, tgt)
        assert (ekev / 1000 - e) == pytest.approx(r["energy_loss"] / 1000, rel=1e-4), (ion, tgt)


def test_user_energy_loss_and_bohr_sigma_vs_lunasrim():
    lunasrim = pytest.importorskip("lunasrim")
    r = lunasrim.energy_loss("Cu", "Cu", energy=9000, thickness=30, unit="nm", mass=CU63[1])
    res = rs.energy_loss(CU63, "Cu", r["areal_density"] / 1e15, 9.0, straggling="bohr")
    assert res.energy_out == pytest.approx(r["energy_out"] / 1000, rel=1e-5)
    # lunasrim integrates Bohr's variance with the same (S_out/S_in)^2 propagation
    assert res.sigma == pytest.approx(r["sigma_bohr"] / 1000, rel=1e-3)
    assert not res.stopped


def test_angle_and_stack_variance():
    t = _tables([LI7], ["Cu"])
    one = np.ones(1)
    res0 = rs.energy_loss(LI7, "Cu", 200.0, 1.9)
    res60 = rs.energy_loss(LI7, "Cu", 200.0, 1.9, angle_deg=60.0)
    assert res60.path_1e15 == pytest.approx(400.0)
    assert res60.energy_out == pytest.approx(energy_after(1.9, LI7[1], t.S[0], one, t.lnE0, t.dlnE, 400.0))
    assert res60.energy_out < res0.energy_out
    # (S_out/S_in)^2 rule: with no new straggling, var_out = var_in (S_out/S_in)^2
    Wz = np.zeros_like(t.W[0])
    e, v = energy_variance_after(1.9, LI7[1], t.S[0], Wz, one, t.lnE0, t.dlnE, 2000.0, 1e-4)
    s_in = compound_stopping(1.9, LI7[1], t.S[0], one, t.lnE0, t.dlnE)
    s_out = compound_stopping(e, LI7[1], t.S[0], one, t.lnE0, t.dlnE)
    assert v == pytest.approx(1e-4 * (s_out / s_in) ** 2, rel=1e-10)
    # stack of 5 sublayers == one layer for the variance too
    e1, v1 = energy_variance_after(1.9, LI7[1], t.S[0], t.W[0], one, t.lnE0, t.dlnE, 2000.0, 1e-6)
    e5, v5 = stack_energy_variance_after(1.9, LI7[1], t.S[0], t.W[0], np.ones((5, 1)), t.lnE0, t.dlnE,
                                         np.full(5, 400.0), 1e-6)
    assert e5 == pytest.approx(e1, rel=1e-6)
    assert v5 == pytest.approx(v1, rel=1e-4)


def test_stopped_and_out_of_range_are_defined():
    t = _tables([CU63, LI7], ["Cu"])
    one = np.ones(1)
    S = t.S[0]
    # a particle that stops inside the layer: 0.0, never NaN
    assert energy_after(9.0, CU63[1], S, one, t.lnE0, t.dlnE, 1e6) == 0.0
    assert stack_energy_after(9.0, CU63[1], S, np.ones((2, 1)), t.lnE0, t.dlnE, np.array([10.0, 1e6])) == 0.0
    e, v = energy_variance_after(9.0, CU63[1], S, t.W[0], one, t.lnE0, t.dlnE, 1e6, 0.0)
    assert (e, v) == (0.0, 0.0)
    res = rs.energy_loss(CU63, "Cu", 1e6, 9.0)
    assert res.stopped and res.energy_out == 0.0 and res.sigma == 0.0
    # below the stop threshold on entry: counts as stopped
    assert energy_after(0.5 * E_STOP_PER_U * CU63[1], CU63[1], S, one, t.lnE0, t.dlnE, 1.0) == 0.0
    assert energy_after(0.0, CU63[1], S, one, t.lnE0, t.dlnE, 1.0) == 0.0
    assert energy_after(-3.0, CU63[1], S, one, t.lnE0, t.dlnE, 1.0) == 0.0
    # zero path returns the energy
    assert energy_after(9.0, CU63[1], S, one, t.lnE0, t.dlnE, 0.0) == 9.0
    # above the table the kernel extrapolates (finite), the Python layer refuses
    e_hi = 1.05 * t.e_max_per_u * LI7[1]
    v = energy_after(e_hi, LI7[1], t.S[1], one, t.lnE0, t.dlnE, 100.0)
    assert np.isfinite(v) and 0 < v < e_hi
    # path_for_energy: inf for "never", finite range to the stop threshold
    assert path_for_energy(9.0, CU63[1], S, one, t.lnE0, t.dlnE, 10.0) == math.inf
    assert path_for_energy(9.0, CU63[1], S, one, t.lnE0, t.dlnE, 9.0) == 0.0
    rng = path_for_energy(9.0, CU63[1], S, one, t.lnE0, t.dlnE, 0.0)
    assert np.isfinite(rng) and rng > 0
    assert energy_after(9.0, CU63[1], S, one, t.lnE0, t.dlnE, 0.999 * rng) > 0.0
    assert energy_after(9.0, CU63[1], S, one, t.lnE0, t.dlnE, 1.001 * rng) == 0.0
    assert path_for_energy(9.0, CU63[1], np.zeros_like(S), one, t.lnE0, t.dlnE, 5.0) == math.inf


def test_stack_path_for_energy():
    t = _tables([CU63], ["Cu", "Li", "P", "O", "N"])
    cu = np.array([1.0, 0, 0, 0, 0])
    lipon = np.concatenate([[0.0], _lipon_frac()])
    fr = np.stack([cu, lipon])
    paths = np.array([253.6, 2e4])
    e_mid = stack_energy_after(9.0, CU63[1], t.S[0], fr, t.lnE0, t.dlnE, np.array([253.6, 5000.0]))
    x = stack_path_for_energy(9.0, CU63[1], t.S[0], fr, t.lnE0, t.dlnE, paths, e_mid)
    assert x == pytest.approx(253.6 + 5000.0, rel=1e-5)
    assert stack_path_for_energy(9.0, CU63[1], t.S[0], fr, t.lnE0, t.dlnE, paths, 1e-6) == math.inf
