"""User stopping tables: SRIM SR Module output, JIBAL GSTO, plain two-column; StoppingSource."""

import math

import numpy as np
import pytest

from recoilsim.io import stopping_files as rf
from recoilsim.stopping import tables as rs
from recoilsim.errors import RecoilsimError

LI7 = (3, 7.016)

SRIM_FILE = """\
 ==================================================================
              Calculation using SRIM-2006
              SRIM version ---> SRIM-2013.00
              Calc. date   ---> May 04, 2024
 ==================================================================

 Disk File Name = Lithium in Cu

 Ion = Lithium      [3] , Mass = 7.016 amu

 Density =  8.9200E+00 g/cm3 = 8.4531E+22 atoms/cm3
 ======= Target  Composition ========
    Atom   Atom   Atomic    Mass
    Name   Numb   Percent   Percent
    ----   ----   -------   -------
     Cu     29    100.00    100.00
 ====================================
 Bragg Correction = 0.00%
 Stopping Units =  MeV / (mg/cm2)
 See bottom of Table for other Stopping units

   Ion        dE/dx      dE/dx     Projected  Longitudinal   Lateral
  Energy      Elec.      Nuclear     Range     Straggling   Straggling
-----------  ---------- ---------- ----------  ----------  ----------
 500.00 keV   {a:.3E}  5.000E-03    1.00 um     2208 A      2642 A
   1.00 MeV   {b:.3E}  4.000E-03    1.49 um     2208 A      2642 A
   2.00 MeV   {c:.3E}  3.000E-03    2.44 um     2461 A      3173 A
   4.00 MeV   {d:.3E}  2.000E-03    4.44 um     2461 A      3173 A
-----------------------------------------------------------
 Multiply Stopping by        for Stopping Units
 -------------------        ------------------
  8.9200E+01                eV / Angstrom
  8.9200E+02               keV / micron
  8.9200E+02               MeV / mm
  1.0000E+00               keV / (ug/cm2)
  1.0000E+00               MeV / (mg/cm2)
  1.0000E+03               keV / (mg/cm2)
  1.0552E+02               eV / (1E15 atoms/cm2)
  4.8924E+00               L.S.S. reduced units
 ==================================================================
"""


def _srim_text(scale=1.0):
    # electronic stopping in MeV/(mg/cm2): values / 105.52 so the eV/(1e15) numbers are round
    vals = {"a": 100.0, "b": 110.0, "c": 130.0, "d": 140.0}
    return SRIM_FILE.format(**{k: scale * v / 105.52 for k, v in vals.items()})


def test_read_srim_table(tmp_path):
    p = tmp_path / "Lithium in Cu.txt"
    p.write_text(_srim_text())
    t = rf.read_srim_table(p)
    assert (t.z1, t.z2) == (3, 29)
    assert np.allclose(t.e_per_u, np.array([0.5, 1.0, 2.0, 4.0]) / 7.016)
    assert np.allclose(t.S, [100.0, 110.0, 130.0, 140.0], rtol=2e-3)  # 4-digit file values


def test_read_srim_decimal_comma(tmp_path):
    p = tmp_path / "comma.txt"
    txt = _srim_text()
    # a European-locale SRIM: decimal commas in numbers
    import re
    txt = re.sub(r"(\d)\.(\d)", r"\1,\2", txt)
    p.write_text(txt)
    t = rf.read_srim_table(p)
    assert (t.z1, t.z2) == (3, 29)
    assert t.S[2] == pytest.approx(130.0, rel=2e-3)


def test_srim_override_changes_stopping(tmp_path):
    p = tmp_path / "li_cu.txt"
    p.write_text(_srim_text(scale=1.0))
    src = rs.StoppingSource([rf.read_srim_table(p)])
    assert src.pairs == [(3, 29)]
    # inside the user table: the user's numbers (log-log between its points) + ZBL nuclear
    se = rs.stopping(LI7, "Cu", 2.0, source=src, nuclear=False)
    assert se == pytest.approx(130.0, rel=3e-3)
    # other pairs unchanged
    assert rs.stopping(LI7, "O", 2.0, source=src) == rs.stopping(LI7, "O", 2.0)
    # outside the user range it joins the SRIM row continuously
    lo = rs.stopping(LI7, "Cu", 0.3, source=src, nuclear=False)
    assert np.isfinite(lo) and lo > 0


def test_srim_bad_files(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_text("hello\nworld\n")
    with pytest.raises(RecoilsimError, match="SRIM file"):
        rf.read_srim_table(p)
    p.write_text(_srim_text().replace("     Cu     29    100.00    100.00",
                                      "     Li      3     50.00     10.00\n     Cu     29     50.00     90.00"))
    with pytest.raises(RecoilsimError, match="single-element"):
        rf.read_srim_table(p)
    with pytest.raises(RecoilsimError, match="file"):
        rf.read_srim_table(tmp_path / "missing.txt")


GSTO = """\
source=handmade test
type=electronic
z1-min=3
z1-max=3
z2-min=28
z2-max=29
sto-unit=eV/(1e15 atoms/cm2)
x-unit=keV/u
format=ascii
x-min=100
x-max=1000
x-points=3
x-scale=log10
==END-OF-HEADER==
# Li in Ni
90
120
110
# Li in Cu
80
100
95
"""


def test_read_gsto(tmp_path):
    p = tmp_path / "test.gsto"
    p.write_text(GSTO)
    tabs = rf.read_gsto(p)
    assert [(t.z1, t.z2) for t in tabs] == [(3, 28), (3, 29)]
    cu = tabs[1]
    assert np.allclose(cu.e_per_u, [0.1, 0.1 * math.sqrt(10), 1.0])
    assert np.allclose(cu.S, [80, 100, 95])
    only = rf.read_gsto(p, pairs=[(3, 29)])
    assert len(only) == 1 and only[0].z2 == 29
    src = rs.StoppingSource(only)
    e = 0.1 * math.sqrt(10) * 7.016  # MeV at the middle node
    # user tables are resampled onto the 100-per-decade grid: at a user node the grid
    # interpolation cuts the corner by < 0.1 %
    assert rs.stopping(LI7, "Cu", e, source=src, nuclear=False) == pytest.approx(100.0, rel=1e-3)


def test_read_gsto_velocity_arb(tmp_path):
    # x-unit m/s, arbitrary x list: E/m = v^2/2
    v = [1.0e6, 3.0e6, 6.0e6]
    txt = "\n".join(["z1=1", "z2=14", "x-unit=m/s", "x-points=3", "x-scale=arb", "format=ascii",
                     "==END-OF-HEADER=="] + [str(x) for x in v] + ["10", "14", "12"]) + "\n"
    p = tmp_path / "arb.gsto"
    p.write_text(txt)
    (t,) = rf.read_gsto(p)
    u_kg, mev_j = 1.66053906660e-27, 1.602176634e-13
    assert np.allclose(t.e_per_u, [0.5 * x * x * u_kg / mev_j for x in v])
    assert (t.z1, t.z2) == (1, 14)


@pytest.mark.parametrize("change,match", [
    (("format=ascii", "format=binary"), "format"),
    (("type=electronic", "type=nuclear"), "type"),
    (("x-unit=keV/u", "x-unit=furlong"), "x-unit"),
    (("x-scale=log10", "x-scale=cubic"), "x-scale"),
    (("==END-OF-HEADER==\n", ""), "END-OF-HEADER"),
    (("95\n", ""), "values"),
    (("80\n", "eighty\n"), "number"),
])
def test_gsto_bad(tmp_path, change, match):
    p = tmp_path / "bad.gsto"
    p.write_text(GSTO.replace(*change))
    with pytest.raises(RecoilsimError, match=match):
        rf.read_gsto(p)


def test_plain_table_units(tmp_path):
    p = tmp_path / "li_cu.dat"
    p.write_text("# E(MeV)  S\n0.5 100\n1.0, 110\n2.0 130\n")
    t = rf.read_plain_table(p, "7Li", "Cu")
    assert (t.z1, t.z2) == (3, 29)
    assert np.allclose(t.S, [100, 110, 130])
    assert t.e_per_u[1] == pytest.approx(1.0 / 7.016004, rel=1e-5)
    # keV/nm with density: S[eV/1e15] = S[keV/nm] / (n * 1e-25)
    t2 = rf.read_plain_table(p, "7Li", "Cu", units="keV/nm", density_g_cm3=8.92)
    n = 8.92 * 6.02214076e23 / 63.546
    assert t2.S[0] == pytest.approx(100 / (n * 1e-25), rel=1e-4)
    # MeV/(mg/cm2): 1e15 Cu atoms weigh 63.546e15/N_A g
    t3 = rf.read_plain_table(p, "7Li", "Cu", units="MeV/(mg/cm2)")
    assert t3.S[0] == pytest.approx(100 * 1e6 * 63.546e15 / 6.02214076e23 * 1e3, rel=1e-4)
    # energies per mass
    t4 = rf.read_plain_table(p, "7Li", "Cu", energy_unit="keV/u")
    assert t4.e_per_u[0] == pytest.approx(0.5e-3)


def test_plain_table_bad(tmp_path):
    p = tmp_path / "x.dat"
    p.write_text("1 2\nfoo bar\n")
    with pytest.raises(RecoilsimError, match="two numbers"):
        rf.read_plain_table(p, "7Li", "Cu")
    p.write_text("1 2\n")
    with pytest.raises(RecoilsimError, match="two rows"):
        rf.read_plain_table(p, "7Li", "Cu")
    p.write_text("1 2\n2 -3\n")
    with pytest.raises(RecoilsimError, match="> 0"):
        rf.read_plain_table(p, "7Li", "Cu")
    p.write_text("1 2\n2 3\n")
    with pytest.raises(RecoilsimError, match="density"):
        rf.read_plain_table(p, "7Li", "Cu", units="keV/nm")
    with pytest.raises(RecoilsimError, match="units"):
        rf.read_plain_table(p, "7Li", "Cu", units="furlongs")
    with pytest.raises(RecoilsimError, match="energy_unit"):
        rf.read_plain_table(p, "7Li", "Cu", energy_unit="erg")
    with pytest.raises(RecoilsimError, match="table"):
        rs.StoppingSource().add("not a table")


def test_srim_file_from_lunasrim_round_trip(tmp_path):
    """A real SR Module output file (written by lunasrim, eV/(1E15 atoms/cm2)) read back gives
    the shipped table's numbers at its energies."""
    pytest.importorskip("lunasrim")
    from lunasrim import api

    rep = api.stopping_report("Li", "Cu", emin=100, emax=5000, units="eV/(1E15 atoms/cm2)", mass=7.016)
    p = tmp_path / "Lithium in Copper.txt"
    p.write_text("\n".join(rep.lines()) + "\n")
    t = rf.read_srim_table(p)
    assert (t.z1, t.z2) == (3, 29)
    for e_u, s in zip(t.e_per_u, t.S):
        assert rs.stopping(LI7, "Cu", e_u * 7.016, nuclear=False) == pytest.approx(s, rel=2e-3)


def test_read_gsto_header_ending_with_an_empty_line(tmp_path):
    """JIBAL's reader and writer end the header with an empty line, not '==END-OF-HEADER=='."""
    p = tmp_path / "jibal.gsto"
    p.write_text(GSTO.replace("==END-OF-HEADER==\n", "\n"))
    a = rf.read_gsto(p)
    p.write_text(GSTO)
    b = rf.read_gsto(p)
    assert [(t.z1, t.z2) for t in a] == [(3, 28), (3, 29)]
    for ta, tb in zip(a, b):
        assert np.array_equal(ta.e_per_u, tb.e_per_u) and np.array_equal(ta.S, tb.S)
    assert np.allclose(a[1].S, [80, 100, 95])


# the start of JIBAL's data/chu.stg (JYU-IBA/jibal): Chu's straggling correction to Bohr,
# any ion (z1=-1), 14 energies in keV/u, header ended by an empty line; here for Z2 = 1, 2 only
CHU_E = [10, 50, 100, 200, 300, 400, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000]
CHU_H = [1.492e-02, 4.262e-01, 8.3e-01, 1.14, 1.23, 1.23, 1.21, 1.16, 1.1, 1.06625, 1.04, 1.00724, 1.00266, 1.0]
CHU_HE = [1.1497e-01, 4.7484e-01, 7.42e-01, 9.66e-01, 1.06, 1.09, 1.1, 1.1, 1.08, 1.04942, 1.03, 1.00606,
          1.00192, 1.0]
STG = ("type=stragg\nsource=Chu\nz1=-1\nz2-min=1\nz2-max=2\nstragg-unit=bohr\nx-scale=arb\nx-unit=keV/u\n"
       "x-points=14\nformat=ascii\n\n" + "".join(f"{v}\n" for v in CHU_E + CHU_H + CHU_HE))


def test_read_stg_jibal_straggling(tmp_path):
    p = tmp_path / "chu.stg"
    p.write_text(STG)
    tabs = rf.read_stg(p)
    assert [(t.z1, t.z2) for t in tabs] == [(None, 1), (None, 2)]  # z1=-1: any ion
    h = tabs[0]
    assert np.allclose(h.energy_MeV_u, np.array(CHU_E) / 1000.0)
    assert np.allclose(h.bohr_ratio, CHU_H) and np.allclose(tabs[1].bohr_ratio, CHU_HE)
    # linear in energy between the 50 and 100 keV/u nodes: (0.4262 + 0.83) / 2 at 75 keV/u
    assert h.ratio(0.075) == pytest.approx((0.4262 + 0.83) / 2, rel=1e-12)
    assert h.ratio(20.0) == pytest.approx(1.0)  # held beyond the table
    assert [t.z2 for t in rf.read_stg(p, pairs=[(3, 2)])] == [2]  # any ion in He
    assert "Chu" in h.source


@pytest.mark.parametrize("change,match", [
    (("type=stragg", "type=electronic"), "stragg"),
    (("stragg-unit=bohr", "stragg-unit=J2m2"), "bohr"),
    (("x-points=14", "x-points=15"), "values"),
    (("\n0.01492\n", "\n-0.01492\n"), ">= 0"),
])
def test_read_stg_bad(tmp_path, change, match):
    p = tmp_path / "bad.stg"
    p.write_text(STG.replace(*change))
    with pytest.raises(RecoilsimError, match=match):
        rf.read_stg(p)


def test_read_gsto_refuses_a_straggling_file(tmp_path):
    p = tmp_path / "chu.stg"
    p.write_text(STG)
    with pytest.raises(RecoilsimError, match="read_stg"):
        rf.read_gsto(p)
