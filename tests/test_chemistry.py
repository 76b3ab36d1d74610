"""Decomposition chemistry against hand derivations (Kurihara et al. 2024; Zhu, He, Mo 2015)."""

import numpy as np
import pytest

from recoilsim.analysis.chemistry import (
    PAPER_LIPON_DENSITY_G_CM3, balance_decomposition, charge_from_ratio_uC_cm2,
    charge_per_area_uC_cm2, decomposition_fraction, density_for_charge_g_cm3,
    excess_profile_charge, ratio_from_fraction, thickness_from_charge_nm, trapezoid_weights)
from recoilsim.errors import RecoilsimError

E = 1.602176634e-19      # C, exact (SI 2019)
NA = 6.02214076e23       # 1/mol, exact (SI 2019)
# IUPAC standard atomic weights (abridged/conventional values as carried by periodictable)
M_LI, M_P, M_O, M_N = 6.941, 30.973762, 15.9994, 14.0067


def _m_lipon():
    return 2.0 * M_LI + M_P + 2.6 * M_O + 0.9 * M_N


def test_balance_by_hand():
    # N 0.9 -> 0.9 Li3N; O 2.6 -> 2.6 Li2O; P 1 -> 1 Li3P
    li_out = 0.9 * 3 + 2.6 * 2 + 1 * 3          # 2.7 + 5.2 + 3 = 10.9
    d = balance_decomposition()
    assert d.coefficients == pytest.approx({"Li3N": 0.9, "Li2O": 2.6, "Li3P": 1.0}, abs=1e-12)
    assert d.uptake == pytest.approx(li_out - 2.0, abs=1e-12)       # 8.9
    assert d.uptake == pytest.approx(8.9, abs=1e-12)
    assert d.ratio_full == pytest.approx(10.9 / 2.0, abs=1e-12)     # 5.45 (paper: 5.5)
    assert d.molar_mass_g_mol == pytest.approx(_m_lipon(), rel=2e-4)


def test_charge_1nm_by_hand_and_paper_density():
    rho = PAPER_LIPON_DENSITY_G_CM3
    q_hand = rho * 1e-7 / _m_lipon() * NA * 8.9 * E * 1e6          # uC/cm2
    assert charge_per_area_uC_cm2(1.0, rho) == pytest.approx(q_hand, rel=2e-4)
    # the stated density reproduces the paper's 2.2e3 uC/cm2 and is about 2.5 g/cm3
    assert charge_per_area_uC_cm2(1.0, rho) == pytest.approx(2.2e3, rel=1e-12)
    assert rho == pytest.approx(2.2e3 * 1e-6 * _m_lipon() / (1e-7 * NA * 8.9 * E), rel=2e-4)
    assert 2.53 < rho < 2.55
    assert density_for_charge_g_cm3(2.2e3) == pytest.approx(rho)
    # at 2.5 g/cm3 by hand
    assert charge_per_area_uC_cm2(1.0, 2.5) == pytest.approx(
        2.5 * 1e-7 / _m_lipon() * NA * 8.9 * E * 1e6, rel=2e-4)


def test_thickness_from_charge_inverse_and_paper():
    rho = PAPER_LIPON_DENSITY_G_CM3
    t, s = thickness_from_charge_nm(3.5e3, rho, charge_sigma_uC_cm2=0.1e3)
    assert t == pytest.approx(3.5e3 / 2.2e3, rel=1e-12)             # 1.591 nm
    assert round(t, 1) == 1.6                                        # paper: about 1.6 nm
    assert s == pytest.approx(0.1e3 / 2.2e3, rel=1e-12)
    for tt, f in [(0.3, 1.0), (7.0, 0.2), (30.0, 0.0247)]:
        q = charge_per_area_uC_cm2(tt, 2.45, fraction=f)
        assert thickness_from_charge_nm(q, 2.45, fraction=f).value == pytest.approx(tt, rel=1e-12)


def test_fraction_for_ratio_111_and_paper_rounding():
    # Li per formula unit 2.0 -> 2.0 + f*8.9, ratio r = 1 + f*8.9/2 => f = (r-1)/4.45
    f, s = decomposition_fraction(1.11, 0.02)
    assert f == pytest.approx(0.11 / 4.45, rel=1e-12)                # 2.47 %, not the paper's 2.7 %
    assert s == pytest.approx(0.02 / 4.45, rel=1e-12)
    assert (1.11 - 1) / (5.5 - 1) == pytest.approx(0.0244, abs=1e-4)  # with the paper's rounded 5.5
    assert (1.12 - 1) / 4.45 == pytest.approx(0.027, abs=1e-4)          # what 2.7 % would need
    q, qs = charge_from_ratio_uC_cm2(1.11, 30.0, PAPER_LIPON_DENSITY_G_CM3, ratio_sigma=0.02)
    assert q == pytest.approx(0.11 / 4.45 * 30 * 2.2e3, rel=1e-12)   # 1.63e3 (paper: 1.8e3 via 2.7 %)
    assert qs == pytest.approx(0.02 / 4.45 * 30 * 2.2e3, rel=1e-12)
    assert 0.027 * 30 * 2.2e3 == pytest.approx(1.8e3, rel=0.02)      # the paper's arithmetic
    assert ratio_from_fraction(f) == pytest.approx(1.11)
    # arrays
    ff, ss = decomposition_fraction([1.0, 5.45], [0.0, 0.1])
    np.testing.assert_allclose(ff, [0.0, 1.0])


def test_other_film_and_products():
    # Li3PO4 + 8 Li -> Li3P + 4 Li2O: by hand Li out = 3 + 8 = 11, uptake 11 - 3 = 8
    d = balance_decomposition("Li3PO4", ["Li3P", "Li2O"])
    assert d.coefficients == pytest.approx({"Li3P": 1.0, "Li2O": 4.0})
    assert d.uptake == pytest.approx(8.0)
    assert d.ratio_full == pytest.approx(11 / 3)
    # classic LiPON Li2.9PO3.3N0.46: 0.46*3 + 3.3*2 + 3 - 2.9 = 8.08
    d2 = balance_decomposition("Li2.9PO3.3N0.46")
    assert d2.uptake == pytest.approx(0.46 * 3 + 3.3 * 2 + 3 - 2.9)
    # Li7La3Zr2O12 -> Li2O + La + Zr? (metals as products): O 12 -> 12 Li2O, Li 24 - 7 = 17
    d3 = balance_decomposition("Li7La3Zr2O12", ["Li2O", "La", "Zr"])
    assert d3.uptake == pytest.approx(17.0)
    assert charge_per_area_uC_cm2(1.0, 5.1, decomposition=d3) == pytest.approx(
        5.1 * 1e-7 / d3.molar_mass_g_mol * NA * 17 * E * 1e6, rel=1e-12)
    # Na carrier
    d4 = balance_decomposition("Na3PS4", ["Na2S", "Na3P"], carrier="Na")
    assert d4.uptake == pytest.approx(4 * 2 + 3 - 3)


@pytest.mark.parametrize("products,why", [
    (["Li3N", "Li2O"], "cannot balance P"),
    (["Li3PO4", "Li3N", "Li2O"], "negative"),
    (["Li3N", "Li2O", "Li3P", "Li3PO4"], "unique"),
    (["Li3N", "Li2O", "Li4P2O7"], "negative"),
    ([], "non-empty"),
])
def test_unbalanceable_or_ambiguous(products, why):
    with pytest.raises(RecoilsimError) as ei:
        balance_decomposition("Li2.0PO2.6N0.9", products)
    assert ei.value.field == "products"
    assert why in str(ei.value)


def test_unused_product_gets_zero():
    # a product with an element the film lacks is balanced to zero, not an error
    d = balance_decomposition("Li2.0PO2.6N0.9", ["Li3N", "Li2O", "Li3P", "Cu"])
    assert d.coefficients["Cu"] == 0.0
    assert d.uptake == pytest.approx(8.9)


def test_bad_inputs():
    with pytest.raises(RecoilsimError):
        balance_decomposition("PO4", ["Li3P", "Li2O"])         # no carrier in the film
    with pytest.raises(RecoilsimError):
        balance_decomposition("Xx2O", ["Li2O"])
    assert balance_decomposition("Li2O2", ["Li2O"]).uptake == pytest.approx(2.0)  # peroxide
    with pytest.raises(RecoilsimError):                         # releases Li: not reductive
        balance_decomposition("Li2O", ["Li2O2"])
    with pytest.raises(RecoilsimError) as ei:
        charge_per_area_uC_cm2(1.0, -2.5)
    assert ei.value.field == "density_g_cm3"
    with pytest.raises(RecoilsimError):
        decomposition_fraction(float("nan"))
    with pytest.raises(RecoilsimError):
        thickness_from_charge_nm(1.0, 2.5, fraction=0.0)


def test_excess_profile_charge_uniform_and_covariance():
    rho = PAPER_LIPON_DENSITY_G_CM3
    z = np.linspace(0.0, 30.0, 31)
    r = np.full_like(z, 1.11)
    res = excess_profile_charge(z, r, rho, li_ratio_sigma=np.full_like(z, 0.05))
    np.testing.assert_allclose(res.fraction, 0.11 / 4.45)
    assert res.charge_uC_cm2 == pytest.approx(0.11 / 4.45 * 30 * 2.2e3, rel=1e-12)
    # independent sigmas: var = sum w_k^2 s_k^2 with trapezoid w = [0.5, 1, ..., 1, 0.5]
    w = np.ones(31)
    w[[0, -1]] = 0.5
    assert res.charge_sigma_uC_cm2 == pytest.approx(
        np.sqrt(np.sum(w ** 2) * 0.05 ** 2) / 4.45 * 2.2e3, rel=1e-12)
    # fully correlated: sigma = sum(w) * s
    C = np.full((31, 31), 0.05 ** 2)
    res2 = excess_profile_charge(z, r, rho, li_ratio_cov=C)
    assert res2.charge_sigma_uC_cm2 == pytest.approx(30 * 0.05 / 4.45 * 2.2e3, rel=1e-12)
    # linear profile 1.25 at 0 to 1.0 at 30 nm (paper Fig. 4c shape): mean ratio 1.125
    r3 = 1.25 - 0.25 * z / 30
    res3 = excess_profile_charge(z, r3, rho)
    assert res3.equivalent_thickness_nm == pytest.approx(0.125 * 30 / 4.45, rel=1e-12)
    assert res3.charge_sigma_uC_cm2 == 0.0
    np.testing.assert_allclose(trapezoid_weights(z) @ r3, np.trapezoid(r3, z))


def test_excess_profile_charge_xarray_and_errors():
    xr = pytest.importorskip("xarray")
    z = np.array([0.0, 1.0, 3.0])
    da = xr.DataArray([1.2, 1.1, 1.0], dims="depth", coords={"depth_nm": ("depth", z)})
    res = excess_profile_charge(z, da, 2.5)
    assert isinstance(res.fraction, xr.DataArray)
    np.testing.assert_allclose(res.fraction.values, (da.values - 1) / 4.45)
    with pytest.raises(RecoilsimError):
        excess_profile_charge([0, 2, 1], [1, 1, 1], 2.5)
    with pytest.raises(RecoilsimError):
        excess_profile_charge(z, [1, 1], 2.5)
    with pytest.raises(RecoilsimError):
        excess_profile_charge(z, [1, 1, 1], 2.5, li_ratio_cov=np.eye(2))


def test_excess_profile_charge_covariance_monte_carlo():
    rng = np.random.default_rng(5)
    z = np.sort(rng.uniform(0, 30, 12))
    mu = 1.25 - 0.25 * z / 30
    L = rng.normal(0, 0.03, (12, 12))
    C = L @ L.T                                     # a dense, correlated covariance
    res = excess_profile_charge(z, mu, 2.5, li_ratio_cov=C)
    draws = rng.multivariate_normal(mu, C, 20000)
    q = np.array([excess_profile_charge(z, d, 2.5).charge_uC_cm2 for d in draws[:4000]])
    assert q.std() == pytest.approx(res.charge_sigma_uC_cm2, rel=0.05)
    assert q.mean() == pytest.approx(res.charge_uC_cm2, abs=3 * res.charge_sigma_uC_cm2 / np.sqrt(4000))
