"""Potku list-mode data: .asc, .sel, .cut, .ini readers and the polygon cuts.

The real-data tests read the Potku sample measurement Ecaart-11-mini from ../shared/data
(never copied into the tree); they are skipped if it is absent.
"""

from pathlib import Path

import numpy as np
import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.analysis.element_spectra import spectra_from_cuts, tof_e_histogram, tof_spectra
from recoilsim.io import potku_events
from recoilsim.io.potku_events import read_asc
from recoilsim.io.potku_selections import Selection, read_cut, read_cuts, read_sel, selection_mask
from recoilsim.io.potku_settings import read_potku_settings
from recoilsim.plots.tof_e import plot_tof_e

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "potku-ecaart-11-mini"
ASC = DATA / "Tof-E_65-mini.asc"
SEL = DATA / "Tof-E_65-mini" / "Tof-E_65-mini.sel"
CUTS = DATA / "Tof-E_65-mini" / "cuts"
real = pytest.mark.skipif(not ASC.is_file(), reason="real Potku data not present")


@pytest.fixture(scope="module")
def events():
    return read_asc(ASC)


@pytest.fixture(scope="module")
def sels():
    return read_sel(SEL)


# ---------------------------------------------------------------- real data ---------------------

@real
def test_asc_real(events):
    assert events.sizes["event"] == 124136  # SOURCE.md
    # first and last lines of the file, read by eye
    assert (int(events.tof[0]), int(events.energy[0])) == (4792, 543)
    assert (int(events.tof[-1]), int(events.energy[-1])) == (2607, 2577)
    assert events.event_number.values[0] == 1


@real
def test_sel_real(sels):
    labels = [s.label for s in sels]
    assert labels == ["1H.0", "1H.1", "7Li.0", "6Li.0", "12C.0", "12C.1", "16O.0", "19F.0", "Si.0",
                      "35Cl.0", "Mn.0", "Re.0"]
    li7 = sels[2]
    assert (li7.type, li7.element, li7.mass_number, li7.weight_factor) == ("ERD", "Li", 7, 1.081)
    assert li7.x.size == li7.y.size == 18
    cl = sels[9]
    assert (cl.type, cl.scatter_element) == ("RBS", "Mn")
    assert sels[8].mass_number is None and sels[8].isotope_label == "Si"


@real
def test_cut_counts_from_source_md():
    cuts = read_cuts(CUTS)
    expect = {"7Li.0": 134, "6Li.0": 12, "16O.0": 3866, "Mn.0": 4499, "Si.0": 12189}
    for k, n in expect.items():
        assert cuts[k].event_number.size == n
        assert int(cuts[k].header["Count"]) == n


@real
def test_selections_reproduce_cut_files_exactly(events, sels):
    """Every polygon applied to the .asc events gives exactly the events of Potku's .cut file."""
    cuts = read_cuts(CUTS)
    assert set(cuts) == {s.label for s in sels}
    expect = {"7Li.0": 134, "6Li.0": 12, "16O.0": 3866, "Mn.0": 4499, "Si.0": 12189}
    for s in sels:
        m = selection_mask(events, s)
        c = cuts[s.label]
        got = events.event_number.values[m]
        assert np.array_equal(got, np.sort(c.event_number)), s.label
        order = np.argsort(c.event_number)
        assert np.array_equal(events.tof.values[m], c.tof[order]), s.label
        assert np.array_equal(events.energy.values[m], c.energy[order]), s.label
        if s.label in expect:
            assert m.sum() == expect[s.label]


@real
def test_tof_spectra_real(events, sels):
    cal = read_potku_settings(DATA)["calibration"]
    ds = tof_spectra(events, sels, n_channels=8192, calibration=cal)
    assert ds["counts"].dims == ("cut", "channel")
    tot = ds["counts"].sum("channel")
    assert int(tot.sel(cut="7Li.0")) == 134
    assert int(tot.sel(cut="Mn.0")) == 4499
    assert ds["time_ns"].values[100] == pytest.approx(5.70569323644e-11 * 1e9 * 100 + 1.66381574853)
    # per-isotope merge: the two H polygons (13 + 10 events, no overlap)
    iso = tof_spectra(events, sels, n_channels=8192, by="isotope")
    assert int(iso["counts"].sel(cut="1H").sum()) == 23
    # spectrum equals histogram of the cut file's TOF values
    c = read_cut(CUTS / "Tof-E_65-mini.16O.0.cut")
    assert np.array_equal(ds["counts"].sel(cut="16O.0").values, np.bincount(c.tof, minlength=8192))
    sp = spectra_from_cuts(read_cuts(CUTS), 8192)
    assert np.array_equal(sp["counts"].sel(cut="Si.0").values, ds["counts"].sel(cut="Si.0").values)


@real
def test_histogram_and_plot(events, sels, tmp_path):
    h = tof_e_histogram(events, tof_bin=16, energy_bin=16)
    assert int(h.sum()) == events.sizes["event"]
    out = plot_tof_e(h, sels, tmp_path / "tofe.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*tmp"))
    with pytest.raises(RecoilsimError):  # never overwrite the input
        plot_tof_e(h, sels, tmp_path / "x.png", inputs=[tmp_path / "x.png"])


@real
def test_settings_real():
    st = read_potku_settings(DATA)
    assert st["beam"] == {"ion": "35Cl", "element": "Cl", "mass_number": 35, "energy_MeV": 8.515}
    g = st["geometry"]
    assert (g["target_angle_deg"], g["detector_angle_deg"]) == (20.6, 41.2)
    assert g["incidence_angle_deg"] == pytest.approx(69.4)
    assert g["exit_angle_deg"] == pytest.approx(69.4)
    assert st["detector"] == {"tof_length_m": 0.623, "carbon_foil_ug_cm2": 3.1}
    assert st["calibration"]["slope_s"] == 5.70569323644e-11
    assert st["calibration"]["offset_s"] == 1.66381574853e-09
    # the measurement folder: its calibration (zeros) does not replace the project's
    st2 = read_potku_settings(DATA / "Tof-E_65-mini")
    assert st2["calibration"]["slope_s"] == 5.70569323644e-11
    assert read_potku_settings(DATA / "Ecaart-11-mini.proj")["project_name"] == "Ecaart-11-mini"


# ---------------------------------------------------------------- inclusion rule -----------------

def test_inclusion_rule_on_square_edges():
    """Potku's rule, derived by hand for the square (0,0)-(10,0)-(10,10)-(0,10):
    right and top edges are inside, left and bottom edges outside; corners: only (10,10)."""
    sq = Selection("ERD", "Li", 7, 1.0, None, "#ff0000", np.array([0, 10, 10, 0]), np.array([0, 0, 10, 10]))
    pts = {(5, 5): True, (10, 5): True, (5, 10): True, (0, 5): False, (5, 0): False,
           (0, 0): False, (10, 0): False, (0, 10): False, (10, 10): True, (11, 5): False, (5, 11): False}
    x = np.array([p[0] for p in pts])
    y = np.array([p[1] for p in pts])
    assert list(sq.contains(x, y)) == list(pts.values())


def test_inclusion_rule_slanted_edge():
    # triangle (0,0), (10,0), (0,10): the hypotenuse x + y = 10; y > 0 strictly, x <= xinters
    tri = Selection("ERD", "O", 16, 1.0, None, "k", np.array([0, 10, 0]), np.array([0, 0, 10]))
    x = np.array([5, 6, 3, 0, 1])
    y = np.array([5, 5, 3, 5, 9])
    # (5,5) on hypotenuse: inside; (6,5) beyond; (3,3) inside; (0,5) left edge: the vertical edge
    # and the hypotenuse both toggle -> outside; (1,9) on hypotenuse -> inside
    assert list(tri.contains(x, y)) == [True, False, True, False, True]


# ---------------------------------------------------------------- malformed inputs ---------------

def _w(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return p


@pytest.mark.parametrize("content, where", [
    ("", "no events"),
    ("\n\n  \n", "no events"),
    ("1 2\n3\n", "line 2"),            # wrong column count / truncated
    ("1 2\n3 4 5\n", "line 2"),
    ("1 2\nabc 4\n", "line 2"),        # text
    ("1 2\n3 -4\n", "line 2"),         # negative
    ("1 2\nnan 4\n", "line 2"),        # NaN
    ("1 2\n3.5 4\n", "line 2"),        # decimal
    ("1 2\n99999999999999999999 4\n", "line 2"),  # huge
    ("1 2\n1e5 4\n", "line 2"),
    (b"1 2\n\xff\xfe 4\n", "line 2"),  # binary garbage
])
def test_asc_malformed(tmp_path, content, where):
    p = _w(tmp_path, "bad.asc", content)
    with pytest.raises(RecoilsimError) as ei:
        read_asc(p)
    assert where in str(ei.value)


def test_asc_missing_file(tmp_path):
    with pytest.raises(RecoilsimError):
        read_asc(tmp_path / "nope.asc")


def test_asc_blank_lines_and_crlf(tmp_path):
    ev = read_asc(_w(tmp_path, "ok.asc", "1 2\r\n\r\n3\t4\n5 6"))
    assert ev.tof.values.tolist() == [1, 3, 5] and ev.energy.values.tolist() == [2, 4, 6]
    assert ev.event_number.values.tolist() == [1, 2, 3]


def test_asc_line_number_across_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(potku_events, "_CHUNK", 64)
    lines = [f"{i} {i + 1}" for i in range(200)]
    lines[150] = "7 x"
    with pytest.raises(RecoilsimError) as ei:
        read_asc(_w(tmp_path, "c.asc", "\n".join(lines)))
    assert "line 151" in str(ei.value)
    lines[150] = "7 8"
    ev = read_asc(_w(tmp_path, "c.asc", "\n".join(lines)))
    assert ev.sizes["event"] == 200 and ev.tof.values[150] == 7


SEL_OK = "ERD    Li    7    1.0        #ff0000    1,5,5;1,1,5\n"


@pytest.mark.parametrize("content", [
    "",                                                             # empty
    "ERD    Li    7    1.0        #ff0000    1,5;1,1\n",            # < 3 points
    "ERD    Li    7    1.0        #ff0000    1,5,5;1,1\n",          # x/y length mismatch
    "ERD    Li    7    1.0        #ff0000    1,5,5\n",              # no ';'
    "ERD    Xx    7    1.0        #ff0000    1,5,5;1,1,5\n",        # unknown element
    "ERD    Li    99    1.0        #ff0000    1,5,5;1,1,5\n",       # unknown isotope
    "ERD    Li    7    abc        #ff0000    1,5,5;1,1,5\n",        # bad weight
    "ERD    Li    7    nan        #ff0000    1,5,5;1,1,5\n",
    "XYZ    Li    7    1.0        #ff0000    1,5,5;1,1,5\n",        # bad type
    "ERD    Li    7    1.0        #ff0000    1,a,5;1,1,5\n",        # text in points
    "ERD    Li    7    1.0        #ff0000    1,99999999999,5;1,1,5\n",  # huge
    "ERD    Li    7    1.0    #ff0000    1,5,5;1,1,5\n",            # too few fields
    "RBS    Cl    35    1.0        #ff0000    1,5,5;1,1,5\n",       # RBS without scatter element
    "RBS    Cl    35    1.0    Qq    #ff0000    1,5,5;1,1,5\n",     # unknown scatter element
    b"\xff\xfe\x00",                                               # not text
])
def test_sel_malformed(tmp_path, content):
    with pytest.raises(RecoilsimError):
        read_sel(_w(tmp_path, "m.sel", content))


def test_sel_ok(tmp_path):
    (s,) = read_sel(_w(tmp_path, "m.sel", SEL_OK))
    assert s.label == "7Li.0" and s.x.tolist() == [1, 5, 5]


CUT_OK = ("Count: 2\nType: ERD\nWeight Factor: 1.0\nEnergy: 0\nDetector Angle: 0\nScatter Element: \n"
          "Element losses: False\nSplit count: 1\n\nToF, Energy, Event number\n10 20 1\n11 21 5\n")


def test_cut_ok(tmp_path):
    c = read_cut(_w(tmp_path, "m.7Li.0.cut", CUT_OK))
    assert c.label == "7Li.0" and c.event_number.tolist() == [1, 5] and c.tof.tolist() == [10, 11]
    c2 = read_cut(_w(tmp_path, "m.Mn.ERD.1.cut", CUT_OK))
    assert c2.label == "Mn.1"


@pytest.mark.parametrize("name, content", [
    ("m.Xx.0.cut", CUT_OK),                                   # unknown element in the name
    ("m.99Li.0.cut", CUT_OK),                                 # unknown isotope
    ("nonsense.cut", CUT_OK),                                 # unparseable name
    ("m.7Li.0.cut", CUT_OK.replace("Count: 2", "Count: 3")),  # truncated: fewer rows than Count
    ("m.7Li.0.cut", CUT_OK[:-9]),                              # truncated mid-file
    ("m.7Li.0.cut", CUT_OK.replace("11 21 5", "11 21")),      # wrong column count
    ("m.7Li.0.cut", CUT_OK.replace("11 21 5", "11 x 5")),     # text
    ("m.7Li.0.cut", CUT_OK.replace("11 21 5", "11 -21 5")),   # negative
    ("m.7Li.0.cut", CUT_OK.replace("11 21 5", "11 21 1")),    # duplicate event
    ("m.7Li.0.cut", CUT_OK.replace("Count: 2", "Count: two")),
    ("m.7Li.0.cut", CUT_OK.replace("Scatter Element: ", "Scatter Element: Qq")),
    ("m.7Li.0.cut", CUT_OK.replace("Weight Factor: 1.0", "Weight Factor: nan")),
    ("m.7Li.0.cut", ""),
    ("m.7Li.0.cut", "Count: 2\n"),
])
def test_cut_malformed(tmp_path, name, content):
    with pytest.raises(RecoilsimError):
        read_cut(_w(tmp_path, name, content))


def test_settings_malformed(tmp_path):
    with pytest.raises(RecoilsimError):
        read_potku_settings(tmp_path / "missing")
    (tmp_path / "measuring_unit_settings.ini").write_text("[beam]\nelement = Cl\nisotope = 35\nenergy = abc\n")
    with pytest.raises(RecoilsimError):
        read_potku_settings(tmp_path)
    (tmp_path / "measuring_unit_settings.ini").write_text("no section header\n")
    with pytest.raises(RecoilsimError):
        read_potku_settings(tmp_path)
    (tmp_path / "measuring_unit_settings.ini").write_text(
        "[beam]\nelement = Qq\nenergy = 8\n[measuring_unit]\ndetector_angle = 40\ntarget_angle = 20\n"
        "time_of_flight_lenght = 0.6\n")
    with pytest.raises(RecoilsimError):
        read_potku_settings(tmp_path)


def test_spectra_errors(tmp_path):
    ev = read_asc(_w(tmp_path, "e.asc", "1 2\n3 4\n"))
    with pytest.raises(RecoilsimError):
        tof_spectra(ev, [])
    with pytest.raises(RecoilsimError):
        tof_spectra(ev, read_sel(_w(tmp_path, "m.sel", SEL_OK)), n_channels=0)
    with pytest.raises(RecoilsimError):
        tof_e_histogram(ev, tof_bin=0)
