"""IBA Data Format / SIMNRA .xnra: round trip, a SIMNRA-style file, malformed XML; Potku -> Experiment."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from recoilsim.errors import RecoilsimError
from recoilsim.model.instrument import Beam, Geometry
from recoilsim.io.idf import read_idf
from recoilsim.io.idf_write import write_idf
from recoilsim.io.potku_settings import potku_experiment, read_potku_settings
from recoilsim.model.sample import Layer, Profile, Sample

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "potku-ecaart-11-mini"


def _sample():
    return Sample([
        Layer({"Li": 0.125, "Mn": 0.375, "O": 0.5}, areal_density_1e15=523.25, name="LiMn2O4"),
        Layer({"Li": 0.3, "O": 0.7}, areal_density_1e15=40.0, name="Li2O-ish", enrichment={"Li": {6: 0.95, 7: 0.05}}),
        Layer("Si", areal_density_1e15=1e5, name="substrate"),
    ])


def _spec(vals, start=100):
    return xr.DataArray(np.asarray(vals), dims="channel", coords={"channel": np.arange(start, start + len(vals))})


def test_roundtrip(tmp_path):
    s = _sample()
    meas = {"7Li": _spec([0, 3, 10, 2, 0]), "16O": _spec([5, 6, 7, 8, 9], 200)}
    sim = {"7Li": _spec([0.1, 2.9, 9.75, 2.125, 0.0]), "16O": _spec([5.5, 6.25, 7.0, 8.0, 9.0], 200)}
    beam = Beam("35Cl", 8.515, fluence=2.5e12)
    geo = Geometry.from_target_detector(20.6, 41.2)
    p = write_idf(tmp_path / "out.xnra", meas, s, simulation=sim, beam=beam, geometry=geo,
                  calibration_ns=(0.0570569323644, 1.66381574853), solid_angle_msr=0.31,
                  description="LMO on Si", notes=["round trip"])
    doc = read_idf(p)
    # sample: same layers, thicknesses, fractions, isotopic enrichment
    assert len(doc.sample.layers) == 3
    for a, b in zip(doc.sample.layers, s.layers):
        assert a.name == b.name
        assert a.areal_density_1e15 == b.areal_density_1e15
        assert a.fractions == pytest.approx(b.fractions, rel=1e-15)
        assert a.enrichment.keys() == b.enrichment.keys()
    assert doc.sample.layers[1].enrichment["Li"] == pytest.approx({6: 0.95, 7: 0.05})
    # spectra: identical channels and counts, simulations identical floats
    assert [sp.recoil for sp in doc.spectra] == ["7Li", "16O"]
    for sp, key in zip(doc.spectra, ["7Li", "16O"]):
        xr.testing.assert_equal(sp.data.drop_vars("time_ns"), meas[key].rename("counts").assign_attrs(sp.data.attrs))
        assert np.array_equal(sp.simulations["total"].values, sim[key].values)
        assert sp.data.dtype.kind == "i"
        assert sp.solid_angle_msr == 0.31
        assert sp.calibration["slope_ns"] == 0.0570569323644 and sp.calibration["offset_ns"] == 1.66381574853
        assert sp.data["time_ns"].values[0] == pytest.approx(0.0570569323644 * sp.data.channel.values[0] + 1.66381574853)
    b2 = doc.beam()
    assert (b2.ion, b2.fluence) == ("35Cl", 2.5e12) and b2.energy_MeV == pytest.approx(8.515, rel=1e-15)
    g2 = doc.geometry()
    assert (g2.incidence_deg, g2.exit_deg, g2.recoil_deg) == (geo.incidence_deg, geo.exit_deg, geo.recoil_deg)
    assert "round trip" in doc.notes and doc.description == "LMO on Si"


def test_graded_layer_written_as_sublayers(tmp_path):
    s = Sample([Layer({"Li": 0.2, "Mn": 0.4, "O": 0.4}, areal_density_1e15=100.0, name="g",
                      profiles=[Profile("Li", [0, 50], [1.5, 1.0], depth_unit="1e15")])])
    doc = read_idf(write_idf(tmp_path / "g.xml", None, s, max_sublayer_1e15=10.0))
    lay = doc.sample.layers
    assert len(lay) == 6  # 5 sublayers over the profile (0-50), the flat rest (50-100) in one
    assert sum(l.areal_density_1e15 for l in lay) == pytest.approx(100.0)
    assert lay[0].fractions["Li"] > lay[-1].fractions["Li"] == pytest.approx(0.2)


def test_experiment_and_dataset_forms(tmp_path):
    st = {"beam": {"ion": "35Cl", "energy_MeV": 8.515}, "geometry": {"target_angle_deg": 20.6, "detector_angle_deg": 41.2},
          "detector": {"tof_length_m": 0.623, "carbon_foil_ug_cm2": 3.1},
          "calibration": {"slope_ns": 0.057, "offset_ns": 1.66}}
    exp = potku_experiment(st, _sample(), ["7Li", "O"], solid_angle_msr=0.3)
    ds = xr.Dataset({"counts": (("cut", "channel"), np.arange(6).reshape(2, 3))},
                    coords={"cut": ["7Li.0", "Mn.0"], "channel": [0, 1, 2]})
    doc = read_idf(write_idf(tmp_path / "e.xml", ds, experiment=exp))
    assert len(doc.spectra) == 2 and doc.spectra[1].data.values.tolist() == [3, 4, 5]
    assert doc.spectra[0].calibration["slope_ns"] == 0.057
    assert doc.beam().ion == "35Cl"


SIMNRA_LIKE = """<?xml version="1.0" encoding="utf-8"?>
<idf xmlns="http://idf.schemas.itn.pt" xmlns:simnra="http://www.simnra.com/simnra">
 <attributes><idfversion>1.01</idfversion><simnra:filetype>xnra</simnra:filetype></attributes>
 <sample>
  <structure><layeredstructure><layers>
   <layer><layerthickness units="1e15at/cm2">1.00000000000000E+0003</layerthickness>
    <layerelements>
     <layerelement><name>Si</name><concentration units="fraction">5.00000000000000E-0001</concentration></layerelement>
     <layerelement><name>O</name><concentration units="fraction">5.00000000000000E-0001</concentration></layerelement>
    </layerelements></layer>
   <layer><layerthickness units="1e15at/cm2">0.00000000000000E+0000</layerthickness><layerelements/></layer>
  </layers></layeredstructure></structure>
  <spectra><spectrum>
   <beam><beamparticle>4He</beamparticle><beamZ>2</beamZ><beammass units="amu">4.0026</beammass>
    <beamenergy units="keV">2.00000000000000E+0003</beamenergy><beamfluence units="#particles">1E10</beamfluence></beam>
   <geometry><geometrytype>IBM</geometrytype><incidenceangle units="degree">0</incidenceangle>
    <scatteringangle units="degree">165</scatteringangle><exitangle units="degree">15</exitangle></geometry>
   <calibrations><energycalibrations><energycalibration><calibrationmode>energy</calibrationmode>
    <calibrationparameters><calibrationparameter units="keV">50</calibrationparameter>
    <calibrationparameter units="keV/channel">2</calibrationparameter></calibrationparameters>
   </energycalibration></energycalibrations></calibrations>
   <data><simpledata><x>0 1 2</x><y>1.00000000000000E+0001 2.00000000000000E+0001 0</y></simpledata></data>
  </spectrum></spectra>
 </sample>
</idf>
"""


def test_simnra_style_file(tmp_path):
    p = tmp_path / "s.xnra"
    p.write_text(SIMNRA_LIKE)
    doc = read_idf(p)
    assert len(doc.sample.layers) == 1 and doc.sample.layers[0].areal_density_1e15 == 1000.0
    assert doc.spectra[0].data.values.tolist() == [10, 20, 0]
    assert doc.spectra[0].beam == {"ion": "4He", "energy_MeV": 2.0, "fluence": 1e10}
    assert doc.spectra[0].calibration["parameters"] == [50.0, 2.0]
    with pytest.raises(RecoilsimError):  # RBS angle: not an ERDA geometry
        doc.geometry()


@pytest.mark.parametrize("content", [
    "",                                                        # empty
    "not xml at all",
    "<idf xmlns='http://idf.schemas.itn.pt'><sample>",         # truncated
    "<html><body>hello</body></html>",                          # XML that is not IDF
    "<idf><sample/></idf>",                                     # no namespace
    "<idf xmlns='http://idf.schemas.itn.pt'/>",                 # no sample
    '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><idf xmlns="http://idf.schemas.itn.pt"><sample/></idf>',
    SIMNRA_LIKE.replace("<x>0 1 2</x>", "<x>0 1</x>"),           # x/y length mismatch
    SIMNRA_LIKE.replace("2.00000000000000E+0001 0", "-2 0"),     # negative counts
    SIMNRA_LIKE.replace("2.00000000000000E+0001 0", "nan 0"),    # NaN
    SIMNRA_LIKE.replace("2.00000000000000E+0001 0", "abc 0"),    # text
    SIMNRA_LIKE.replace("<name>Si</name>", "<name>Qq</name>"),   # unknown element
    SIMNRA_LIKE.replace("<name>Si</name>", "<name>99Si</name>"),  # unknown isotope
    SIMNRA_LIKE.replace("5.00000000000000E-0001</concentration>", "0.9</concentration>", 1),  # sum 1.4
    SIMNRA_LIKE.replace('units="keV">2.0', 'units="furlong">2.0'),  # unknown unit
    SIMNRA_LIKE.replace("<beamparticle>4He", "<beamparticle>4Xx"),
    SIMNRA_LIKE.replace("1.00000000000000E+0003", "1e999"),      # huge -> inf
    SIMNRA_LIKE.replace("<x>0 1 2</x>", "<x>0 0 2</x>"),           # duplicate channels
    SIMNRA_LIKE.replace('encoding="utf-8"', 'encoding="utf-9"'),    # unknown encoding (found by the fuzz test)
])
def test_malformed(tmp_path, content):
    p = tmp_path / "bad.xml"
    p.write_text(content)
    with pytest.raises(RecoilsimError):
        read_idf(p)


def test_writer_validation(tmp_path):
    with pytest.raises(RecoilsimError):
        write_idf(tmp_path / "x.xml")
    with pytest.raises(RecoilsimError):
        write_idf(tmp_path / "x.xml", _spec([1.0, np.nan]))
    with pytest.raises(RecoilsimError):
        write_idf(tmp_path / "x.xml", _spec([1, -2]))
    src = tmp_path / "in.xml"
    src.write_text(SIMNRA_LIKE)
    with pytest.raises(RecoilsimError):
        write_idf(src, _spec([1, 2]), inputs=[src])
    assert src.read_text() == SIMNRA_LIKE
    assert sorted(x.name for x in tmp_path.iterdir()) == ["in.xml"]


@pytest.mark.skipif(not DATA.is_dir(), reason="real Potku data not present")
def test_potku_experiment_real():
    s = Sample([Layer({"Li": 0.125, "Mn": 0.375, "O": 0.5}, areal_density_1e15=500.0), Layer("Si", areal_density_1e15=1e5)])
    exp = potku_experiment(DATA, s, ["7Li", "O", "Mn"], solid_angle_msr=0.3)
    assert exp.beam.ion == "35Cl" and exp.beam.energy_MeV == 8.515
    assert exp.geometry.recoil_deg == 41.2
    assert exp.geometry.incidence_deg == pytest.approx(69.4) and exp.geometry.exit_deg == pytest.approx(69.4)
    assert exp.detector.flight_length_m == 0.623
    assert exp.detector.calibration_a_ns == pytest.approx(0.0570569323644, rel=1e-12)
    assert exp.detector.calibration_b_ns == pytest.approx(1.66381574853, rel=1e-12)
    # 3.1 ug/cm2 of carbon = 3.1e-6 g/cm2 * N_A / 12.011 g/mol = 155.4e15 atoms/cm2
    assert exp.detector.foils[0].areal_density_1e15 == pytest.approx(3.1e-6 * 6.02214076e23 / 12.011 / 1e15, rel=1e-3)
    with pytest.raises(RecoilsimError):
        potku_experiment({"beam": {}}, s, ["O"], solid_angle_msr=0.3)
    with pytest.raises(RecoilsimError):
        potku_experiment(read_potku_settings(DATA), s, ["O"], solid_angle_msr=-1)
