"""Stopping tables, lookup, Bragg's rule, ZBL nuclear stopping.

Comparisons against lunasrim (SRIM-2013 re-implementation, the source of the shipped tables)
are live: they import lunasrim and skip cleanly where it is not installed.
"""

import math

import numpy as np
import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.kernels.stopping import (compound_stopping, loglog, zbl_nuclear_stopping)
from recoilsim import stopping as rs

CU63 = (29, 62.9295975)
LI7 = (3, 7.0160034)
LIPON = "Li2.0PO2.6N0.9"
LIPON_DENSITY = 2.5  # g/cm3, typical sputtered LiPON (only enters length units, not eV/(1e15 at/cm2))


def test_grid_contract():
    lnE0, dlnE, n = rs.grid()
    nodes = np.exp(lnE0 + dlnE * np.arange(n))
    # a node exactly at 2 keV/u, ~100 points per decade, ~1 keV/u .. >= 10 MeV/u
    assert np.min(np.abs(nodes / 0.002 - 1)) < 1e-12
    assert abs(math.log(10) / dlnE - 100) < 1e-9
    assert 0.9e-3 < nodes[0] <= 1.0e-3
    assert nodes[-1] >= 10.0
    t = rs.particle_tables([CU63, LI7], [29, 3, 15, 8, 7])
    assert t.S.shape == (2, 5, n) and t.W.shape == (2, 5, n)
    assert t.S.dtype == np.float64 and t.W.dtype == np.float64
    assert t.e_max_per_u == pytest.approx(nodes[-1])
    assert np.all(t.S > 0) and np.all(np.isfinite(t.W)) and np.all(t.W > 0)


@pytest.mark.parametrize("seed", [0])
def test_interpolation_vs_lunasrim_sampled_pairs(seed):
    """Log-log lookup within 0.1 % of lunasrim's own electronic stopping on random energies.

    Every shipped pair is checked by stopping_data/check_all.py; here 60 random pairs plus the
    pairs of the reference experiment. Documented exception (PROVENANCE.md): between 2.0 and
    2.5 keV/u SRIM's heavy-ion fit rises steeply for a few targets (e.g. Cl) and the deviation
    reaches 0.53 %; that band is checked at 1 %.
    """
    pytest.importorskip("lunasrim")
    from lunasrim import data_files
    from lunasrim.stopping import electronic_stopping

    d = data_files.load_scoef()
    lnE0, dlnE, S = rs._shipped()
    n = S.shape[-1]
    rng = np.random.default_rng(seed)
    pairs = [(29, 29), (3, 29), (3, 3), (3, 15), (3, 8), (3, 7), (29, 3), (29, 8), (17, 25), (1, 14)]
    pairs += [tuple(p) for p in rng.integers(1, 93, size=(60, 2))]
    worst = 0.0
    for z1, z2 in pairs:
        lnx = rng.uniform(lnE0, lnE0 + (n - 1) * dlnE, 40)
        for lx in lnx:
            ref = electronic_stopping(int(z1), 1.0, int(z2), math.exp(lx) * 1000.0, 0, d)
            err = abs(loglog(S[z1 - 1, z2 - 1], lnE0, dlnE, lx) / ref - 1)
            tol = 1e-2 if math.exp(lx) < 2.5e-3 else 1e-3
            assert err < tol, (z1, z2, math.exp(lx), err)
            if math.exp(lx) >= 2.5e-3:
                worst = max(worst, err)
    assert worst < 1e-3


def test_reference_stoppings_vs_lunasrim_table():
    """9 MeV Cu in Cu, 2 MeV Li in Cu and in LiPON (2.5 g/cm3) against lunasrim.stopping_table
    (SR Module code path: its own grid, Bragg's rule, units) in eV/(1e15 atoms/cm2)."""
    lunasrim = pytest.importorskip("lunasrim")
    cases = [("Cu", CU63, "Cu", None, 9000.0), ("Li", LI7, "Cu", None, 2000.0),
             ("Li", LI7, LIPON, LIPON_DENSITY, 2000.0)]
    for ion, p, tgt, rho, ekev in cases:
        row = lunasrim.stopping_table(ion, tgt, emin=ekev, emax=ekev, units="eV/(1E15 atoms/cm2)",
                                      mass=p[1], density=rho)[0]
        assert row[0] == ekev
        se = rs.stopping(p, tgt, ekev / 1000.0, nuclear=False)
        assert se == pytest.approx(row[1], rel=1e-4), (ion, tgt)
        # total: SRIM's pair-specific nuclear stopping vs our ZBL universal closed form
        tot = rs.stopping(p, tgt, ekev / 1000.0)
        assert tot == pytest.approx(row[1] + row[2], rel=1e-3), (ion, tgt)


def test_published_reference_values():
    """Same three numbers as published reference values obtained by running lunasrim 1.0.0
    (lunasrim.stopping_table, electronic column), so the check also runs without lunasrim."""
    assert rs.stopping(CU63, "Cu", 9.0, nuclear=False) == pytest.approx(747.8775, rel=1e-4)
    assert rs.stopping(LI7, "Cu", 2.0, nuclear=False) == pytest.approx(130.4500, rel=1e-4)
    assert rs.stopping(LI7, LIPON, 2.0, nuclear=False) == pytest.approx(69.2581, rel=1e-4)


def test_zbl_nuclear_vs_lunasrim_universal():
    pytest.importorskip("lunasrim")
    from lunasrim.stopping import universal_nuclear_stopping

    for (z1, m1, z2, m2, e) in [(29, 62.93, 29, 63.546, 9.0), (3, 7.016, 29, 63.546, 1.9),
                                (29, 62.93, 3, 6.94, 0.05), (1, 1.008, 79, 196.97, 0.001)]:
        ref = universal_nuclear_stopping(z1, m1, z2, m2, e * 1000)
        assert zbl_nuclear_stopping(e, z1, m1, z2, m2) == pytest.approx(ref, rel=1e-9)


def test_zbl_closed_form_by_hand():
    # 9 MeV 63Cu on Cu: eps = 32.53*63.546*9000/(29*29*(62.93+63.546)*(2*29**0.23)) > 30
    zz = 2 * 29 ** 0.23
    eps = 32.53 * 63.546 * 9000 / (29 * 29 * (62.93 + 63.546) * zz)
    assert eps > 30
    sn = math.log(eps) / (2 * eps) * 8.462 * 29 * 29 * 62.93 / ((62.93 + 63.546) * zz)
    assert zbl_nuclear_stopping(9.0, 29, 62.93, 29, 63.546) == pytest.approx(sn, rel=1e-12)


def test_bragg_rule_and_factors():
    t = rs.particle_tables([LI7], [3, 15, 8, 7])
    comp = np.array([2.0, 1.0, 2.6, 0.9])
    frac = comp / comp.sum()
    per_el = [rs.stopping(LI7, el, 2.0) for el in ("Li", "P", "O", "N")]
    s = compound_stopping(2.0, LI7[1], t.S[0], frac, t.lnE0, t.dlnE)
    assert s == pytest.approx(float(np.dot(frac, per_el)), rel=1e-12)
    assert rs.stopping(LI7, LIPON, 2.0) == pytest.approx(s, rel=1e-12)
    f2 = rs.stopping(LI7, LIPON, 2.0, factors={"O": 0.9, "Li": 1.1})
    w = frac * np.array([1.1, 1.0, 0.9, 1.0])
    assert f2 == pytest.approx(float(np.dot(w, per_el)), rel=1e-12)


def test_out_of_table_behaviour():
    t = rs.particle_tables([CU63], [29])
    row = t.S[0, 0]
    lnE0, dlnE = t.lnE0, t.dlnE
    # below the table: S ~ sqrt(E)
    lx = lnE0 - 2.0
    assert loglog(row, lnE0, dlnE, lx) == pytest.approx(row[0] * math.exp(-1.0), rel=1e-12)
    # above: finite, positive, continuous at the last node
    n = row.shape[0]
    top = lnE0 + (n - 1) * dlnE
    assert loglog(row, lnE0, dlnE, top) == pytest.approx(row[-1], rel=1e-12)
    assert np.isfinite(loglog(row, lnE0, dlnE, top + 1.0)) and loglog(row, lnE0, dlnE, top + 1.0) > 0
    # zero / negative energy: 0.0, not NaN
    frac = np.ones(1)
    assert compound_stopping(0.0, 63.0, t.S[0], frac, lnE0, dlnE) == 0.0
    assert compound_stopping(-1.0, 63.0, t.S[0], frac, lnE0, dlnE) == 0.0
    assert loglog(row, lnE0, dlnE, float("nan")) == 0.0
    # zero rows interpolate linearly (no NaN)
    assert loglog(np.zeros(n), lnE0, dlnE, lnE0 + 5.3 * dlnE) == 0.0


def test_user_level_errors():
    with pytest.raises(RecoilsimError, match="energy_MeV"):
        rs.stopping("63Cu", "Cu", 2000.0)  # above 20 MeV/u
    with pytest.raises(RecoilsimError, match="energy_MeV"):
        rs.stopping("63Cu", "Cu", -1.0)
    with pytest.raises(RecoilsimError, match="ion"):
        rs.stopping("Xx", "Cu", 1.0)
    with pytest.raises(RecoilsimError):
        rs.stopping("7Li", "Qq2", 1.0)
    with pytest.raises(RecoilsimError, match="factors"):
        rs.stopping("7Li", "Cu", 1.0, factors={"O": 0.9})
    with pytest.raises(RecoilsimError, match="straggling"):
        rs.particle_tables([LI7], [29], straggling="lindhard")
    with pytest.raises(RecoilsimError, match="particles"):
        rs.particle_tables([(0, 1.0)], [29])
    with pytest.raises(RecoilsimError, match="elements"):
        rs.particle_tables([LI7], [93])
    with pytest.raises(RecoilsimError, match="source"):
        rs.particle_tables([LI7], [29], source="srim")


def test_array_input_and_units():
    e = np.array([1.0, 2.0, 5.0])
    s = rs.stopping("7Li", "Cu", e)
    assert s.shape == (3,)
    assert s[1] == pytest.approx(rs.stopping("7Li", "Cu", 2.0))
    # keV/nm round trip; Cu 8.92 g/cm3: n = 8.92 * N_A / 63.546 = 8.453e22 /cm3
    n = rs.atom_density("Cu", 8.92)
    assert n == pytest.approx(8.92 * 6.02214076e23 / 63.546, rel=1e-4)
    k = rs.to_keV_per_nm(100.0, "Cu", 8.92)
    assert k == pytest.approx(100.0 * n * 1e-25)
    assert rs.from_keV_per_nm(k, "Cu", 8.92) == pytest.approx(100.0)
    assert rs.e15_to_nm(rs.nm_to_1e15(30.0, "Cu", 8.92), "Cu", 8.92) == pytest.approx(30.0)
