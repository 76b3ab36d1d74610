"""`recoilsim simulate file.xnra`: an IDF file written by recoilsim and one written by hand in
SIMNRA's style both simulate; what IDF cannot describe is refused with a message that says so."""

import numpy as np
import pytest
from typer.testing import CliRunner

from recoilsim.cli import app
from recoilsim.errors import RecoilsimError
from recoilsim.forward.simulate import simulate
from recoilsim.io.atomic import read_netcdf
from recoilsim.io.idf_experiment import experiment_from_idf, write_experiment_idf
from recoilsim.model.experiment import reference_experiment

# Written by hand in SIMNRA's .xnra style (IDF namespace plus simnra: elements, SIMNRA's number
# format, an empty trailing layer): 9 MeV 63Cu ERDA of a 100 nm-ish LiMn2O4 film on Si, recoil
# angle 40 deg, a TOF calibration in ns.
HAND = """<?xml version="1.0" encoding="utf-8"?>
<idf xmlns="http://idf.schemas.itn.pt" xmlns:simnra="http://www.simnra.com/simnra">
 <attributes><idfversion>1.01</idfversion><simnra:filetype>xnra</simnra:filetype></attributes>
 <sample>
  <description>hand-written LiMn2O4 on Si</description>
  <structure><layeredstructure><layers>
   <layer><layerthickness units="1e15at/cm2">9.00000000000000E+0002</layerthickness>
    <layerelements>
     <layerelement><name>Li</name><concentration units="fraction">1.42857142857143E-0001</concentration></layerelement>
     <layerelement><name>Mn</name><concentration units="fraction">2.85714285714286E-0001</concentration></layerelement>
     <layerelement><name>O</name><concentration units="fraction">5.71428571428571E-0001</concentration></layerelement>
    </layerelements></layer>
   <layer><layerthickness units="1e15at/cm2">1.00000000000000E+0005</layerthickness>
    <layerelements><layerelement><name>Si</name><concentration units="fraction">1.0</concentration></layerelement></layerelements></layer>
   <layer><layerthickness units="1e15at/cm2">0.00000000000000E+0000</layerthickness><layerelements/></layer>
  </layers></layeredstructure></structure>
  <spectra><spectrum>
   <beam><beamparticle>63Cu</beamparticle><beamZ>29</beamZ><beammass units="amu">62.9296</beammass>
    <beamenergy units="keV">9.00000000000000E+0003</beamenergy><beamfluence units="#particles">1E12</beamfluence></beam>
   <geometry><geometrytype>general</geometrytype><incidenceangle units="degree">70</incidenceangle>
    <scatteringangle units="degree">40</scatteringangle><exitangle units="degree">70</exitangle></geometry>
   <detection><detector><solidangle units="msr">0.5</solidangle><simnra:detectortype>TOF</simnra:detectortype></detector></detection>
   <calibrations><energycalibrations><energycalibration><calibrationmode>time</calibrationmode>
    <calibrationparameters><calibrationparameter units="ns">29.08</calibrationparameter>
    <calibrationparameter units="ns/channel">0.1039</calibrationparameter></calibrationparameters>
   </energycalibration></energycalibrations></calibrations>
   <reactions><technique>ERDA</technique></reactions>
   <data><simpledata><x>0 1023</x><y>0 0</y></simpledata></data>
  </spectrum></spectra>
 </sample>
</idf>
"""


def test_recoilsim_written_idf_simulates_the_same(tmp_path):
    exp = reference_experiment()
    ds = simulate(exp)
    p = write_experiment_idf(exp, tmp_path / "ref.xnra", simulation=ds)
    back = experiment_from_idf(p)
    ds2 = simulate(back)
    assert list(ds2.element.values) == list(ds.element.values)
    np.testing.assert_allclose(ds2.counts.values, ds.counts.values, rtol=1e-9, atol=1e-9)


def test_hand_written_simnra_style_simulates(tmp_path):
    p = tmp_path / "hand.xnra"
    p.write_text(HAND)
    with pytest.raises(RecoilsimError, match="flight length"):
        experiment_from_idf(p)
    exp = experiment_from_idf(p, flight_length_m=0.6)
    assert exp.beam.ion == "63Cu" and exp.beam.energy_MeV == 9.0 and exp.beam.fluence == 1e12
    assert (exp.geometry.incidence_deg, exp.geometry.exit_deg, exp.geometry.recoil_deg) == (70.0, 70.0, 40.0)
    assert exp.detector.n_channels == 1024 and exp.detector.solid_angle_msr == 0.5
    assert [l.areal_density_1e15 for l in exp.sample.layers] == [900.0, 1e5]
    assert exp.recoils == ["Li", "Mn", "O", "Si"]
    # multiple scattering off: with it the Mn spread's Gaussian tail reaches the window, and the
    # two simulations below (different recoil lists, so different brick layouts) differ by 2e-6
    exp.options.multiple_scattering = False
    ds = simulate(exp)
    tot = ds.counts.sum("channel")
    # Mn (about 5.3 MeV, 140 ns over 0.6 m) arrives after the last channel (135 ns)
    assert all(float(tot.sel(element=e)) > 0 for e in ("Li", "O", "Si")) and float(tot.sel(element="Mn")) == 0
    # Li: 900e15 at/cm2 x 1/7 of the film, all inside the window -> the same count from an
    # areal-density-equivalent film given in the TOML way
    from recoilsim.model.experiment import Experiment
    from recoilsim.model.sample import Layer, Sample
    same = Experiment(exp.beam, exp.geometry, exp.detector,
                      Sample([Layer("LiMn2O4", areal_density_1e15=900.0), Layer("Si", areal_density_1e15=1e5)]),
                      ["Li"], exp.options)
    assert float(tot.sel(element="Li")) == pytest.approx(float(simulate(same).counts.sum()), rel=1e-6)


def test_cli_simulates_xnra(tmp_path):
    p = tmp_path / "hand.xnra"
    p.write_text(HAND)
    r = CliRunner().invoke(app, ["simulate", str(p), "-o", str(tmp_path / "o"), "-f", "nc"])
    assert r.exit_code == 2 and "--flight-length" in r.output
    r = CliRunner().invoke(app, ["simulate", str(p), "-o", str(tmp_path / "o"), "-f", "nc", "--flight-length", "0.6"])
    assert r.exit_code == 0, r.output
    ds = read_netcdf(tmp_path / "o" / "hand_spectra.nc")
    assert set(ds.element.values) == {"Li", "Mn", "O", "Si"}


def test_what_idf_cannot_represent(tmp_path):
    rbs = HAND.replace("<calibrationmode>time</calibrationmode>", "<calibrationmode>energy</calibrationmode>") \
        .replace('units="ns">29.08', 'units="keV">50').replace('units="ns/channel">0.1039', 'units="keV/channel">2')
    (tmp_path / "e.xnra").write_text(rbs)
    with pytest.raises(RecoilsimError, match="energy detector"):
        experiment_from_idf(tmp_path / "e.xnra", flight_length_m=0.6)
    (tmp_path / "r.xnra").write_text(HAND.replace("<technique>ERDA</technique>", "<technique>RBS</technique>"))
    with pytest.raises(RecoilsimError, match="not RBS"):
        experiment_from_idf(tmp_path / "r.xnra", flight_length_m=0.6)
