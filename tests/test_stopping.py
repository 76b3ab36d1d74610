"""Stopping tables, lookup, Bragg's rule, ZBL nuclear stopping.

Comparisons against lunasrim (SRIM-2013 re-implementation, the source of the shipped tables)
are live: they import lunasrim and skip cleanly where it is not installed.
"""

import math

import numpy as np
import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.kernels.stopping import (KINKS_MEV_U, compound_stopping, loglog, loglog_flat,
                                        zbl_nuclear_stopping)
from recoilsim.stopping import tables as rs

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
    """Table lookup within 0.03 % of lunasrim's own electronic stopping on random energies, over
    the whole table (0.98 keV/u .. 20 MeV/u).

    Every shipped pair is checked by stopping_data/check_all.py (worst 0.012 %); here 60 random
    pairs plus the pairs of the reference experiment and pairs where SRIM's heavy-ion stopping
    rises steeply just above 2 keV/u (Ni, Br in Cl: S ~ E^9). Besides 40 log-uniform energies,
    each pair gets 10 between 2.0 and 2.6 keV/u (where linear log-log interpolation on the same
    table deviated by up to 0.55 %) and 6 next to SRIM's fit boundaries at 1.0, 1.2 and 2.4 MeV/u,
    which fall between nodes.
    """
    pytest.importorskip("lunasrim")
    from lunasrim import data_files
    from lunasrim.stopping import electronic_stopping

    d = data_files.load_scoef()
    lnE0, dlnE, S = rs._shipped()
    n = S.shape[-1]
    rng = np.random.default_rng(seed)
    pairs = [(29, 29), (3, 29), (3, 3), (3, 15), (3, 8), (3, 7), (29, 3), (29, 8), (17, 25), (1, 14),
             (28, 17), (35, 17), (92, 17), (1, 1), (2, 1)]
    pairs += [tuple(p) for p in rng.integers(1, 93, size=(60, 2))]
    worst = (0.0,)
    for z1, z2 in pairs:
        lnx = np.concatenate([
            rng.uniform(lnE0, lnE0 + (n - 1) * dlnE, 40),
            rng.uniform(math.log(2.0e-3), math.log(2.6e-3), 10),
            (np.log([1.0, 1.2, 2.4]) + rng.uniform(-1.5, 1.5, (2, 3)) * dlnE).ravel(),
        ])
        for lx in lnx:
            ref = electronic_stopping(int(z1), 1.0, int(z2), math.exp(lx) * 1000.0, 0, d)
            err = abs(loglog(S[z1 - 1, z2 - 1], lnE0, dlnE, lx) / ref - 1)
            worst = max(worst, (err, z1, z2, math.exp(lx)))
    assert worst[0] < 3e-4, worst


def test_srim_fit_boundaries_are_where_the_kernel_expects_them():
    """KINKS_MEV_U lists SRIM-2013's slope discontinuities: check them on lunasrim (one-sided
    log-log slopes differ there) and that the shipped grid has nodes at 2 keV/u and 2 MeV/u."""
    pytest.importorskip("lunasrim")
    from lunasrim.stopping import electronic_stopping

    def jump(z1, z2, e):
        def f(x):
            return math.log(electronic_stopping(z1, 1.0, z2, x * 1000.0, 0))

        h = 1e-4
        up = (f(e * math.exp(h)) - f(e)) / h
        down = (f(e) - f(e * math.exp(-h))) / h
        return abs(up - down)

    assert KINKS_MEV_U == (0.002, 1.0, 1.2, 2.0, 2.4)
    assert jump(28, 17, 0.002) > 1.0       # 0.5 below, ~9 above
    assert jump(1, 14, 1.0) > 1e-2 and jump(1, 14, 1.2) > 1e-2       # protons: fit -> blend -> Bethe
    assert jump(2, 14, 2.0) > 1e-2 and jump(2, 14, 2.4) > 1e-2       # helium
    assert jump(29, 14, 2.0) > 1e-2 and jump(29, 14, 2.4) > 1e-2     # heavy ions: scaled helium
    assert jump(2, 14, 0.5) < 1e-3 and jump(29, 14, 0.05) < 1e-3     # smooth elsewhere
    lnE0, dlnE, _ = rs.grid()
    for e in (0.002, 2.0):
        x = (math.log(e) - lnE0) / dlnE
        assert abs(x - round(x)) < 1e-9


def _piecewise_power_law(lnx, slopes):
    """ln S of a continuous power law with its exponent changing at KINKS_MEV_U."""
    lk = np.log(KINKS_MEV_U)
    out = slopes[0] * (np.minimum(lnx, lk[0]) - lk[0])
    for j in range(len(lk)):
        hi = lk[j + 1] if j + 1 < len(lk) else np.inf
        out = out + slopes[j + 1] * (np.clip(lnx, lk[j], hi) - lk[j])
    return out + 3.0


def test_lookup_exact_for_power_laws_with_srim_breaks():
    """Log-log cubic lookup: exact (to rounding) for a power law, and for one whose exponent
    changes at SRIM's fit boundaries, also where they fall between nodes (1.0, 1.2, 2.4 MeV/u):
    the stencil never straddles one. Linear log-log would miss the off-node breaks by ~1e-3."""
    lnE0, dlnE, n = rs.grid()
    lnodes = lnE0 + dlnE * np.arange(n)
    rng = np.random.default_rng(3)
    near = np.log(KINKS_MEV_U)[:, None] + np.linspace(-2.5, 2.5, 41) * dlnE
    lnx = np.concatenate([rng.uniform(lnE0, lnodes[-1], 2000), near.ravel(), np.log(KINKS_MEV_U)])
    for slopes in ([0.5, 0.5, 0.5, 0.5, 0.5, 0.5], [-0.7] * 6, [0.5, 9.0, -0.4, 0.3, -0.2, -0.6]):
        row = np.exp(_piecewise_power_law(lnodes, slopes))
        S_p = np.stack([row, 2.0 * row])
        frac = np.array([0.25, 0.75])
        for lx in lnx:
            ref = math.exp(_piecewise_power_law(lx, slopes))
            assert loglog(row, lnE0, dlnE, lx) == pytest.approx(ref, rel=1e-11), (slopes, lx)
            assert loglog_flat(row, lnE0, dlnE, lx) == pytest.approx(ref, rel=1e-11)
            cs = compound_stopping(math.exp(lx) * 7.0, 7.0, S_p, frac, lnE0, dlnE)
            assert cs == pytest.approx(1.75 * ref, rel=1e-11)
    # the nodes themselves are returned exactly
    row = np.exp(rng.normal(3.0, 1.0, n))
    for k in range(n):
        assert loglog(row, lnE0, dlnE, lnodes[k]) == pytest.approx(row[k], rel=1e-12)


def test_lookup_fourth_order_on_smooth_rows():
    """ln S = sin(ln E): the centred cubic errs by at most 3/128 h^4 max|f''''| (7e-9 here), and
    by at most h^4 (3e-7) where a fit boundary or a table end makes the stencil one-sided; linear
    log-log interpolation errs by up to h^2/8 (7e-5)."""
    lnE0, dlnE, n = rs.grid()
    lnodes = lnE0 + dlnE * np.arange(n)
    row = np.exp(np.sin(lnodes))
    lnx = np.random.default_rng(4).uniform(lnE0, lnodes[-1], 5000)
    err = np.array([abs(loglog(row, lnE0, dlnE, lx) / math.exp(math.sin(lx)) - 1) for lx in lnx])
    edges = np.concatenate([np.log(KINKS_MEV_U), [lnE0, lnodes[-1]]])
    central = np.min(np.abs(lnx[:, None] - edges[None, :]), axis=1) > 2.5 * dlnE
    assert err[central].max() < 3 / 128 * dlnE ** 4 * 1.01
    assert err.max() < dlnE ** 4


def test_lookup_fallbacks():
    """A stencil with a non-positive node, and a grid too coarse for four nodes between SRIM's
    fit boundaries, fall back to linear interpolation on the cell (finite, never NaN)."""
    lnE0, dlnE, n = rs.grid()
    row = np.exp(0.5 * dlnE * np.arange(n))
    row[100] = 0.0
    lx = lnE0 + 99.25 * dlnE
    assert loglog(row, lnE0, dlnE, lx) == pytest.approx(row[99] * 0.75, rel=1e-12)
    lx = lnE0 + 98.5 * dlnE   # stencil 97..100 holds the zero node: log-log on the cell 98..99
    assert loglog(row, lnE0, dlnE, lx) == pytest.approx(row[98] * math.exp(0.25 * dlnE), rel=1e-12)
    # coarse grid: one node per e-fold from 1 keV/u, so 1.0 .. 2.4 MeV/u leave no four-node stencil
    c0, cd = math.log(1e-3), 1.0
    crow = np.exp(0.3 * np.arange(12) * cd)
    for lx in (math.log(1.1), math.log(2.2), math.log(0.01)):
        assert loglog(crow, c0, cd, lx) == pytest.approx(math.exp(0.3 * (lx - c0)), rel=1e-12)


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
