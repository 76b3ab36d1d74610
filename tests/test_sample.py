"""Sample, instrument and experiment models: conversions, profiles, validation."""


import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from recoilsim import RecoilsimError
from recoilsim.model.elements import isotope, natural_isotopes
from recoilsim.model.experiment import Experiment, Options, reference_experiment
from recoilsim.model.instrument import Beam, Detector, Foil, Geometry
from recoilsim.model.sample import Layer, Profile


def test_nm_to_areal_density_exact():
    # Cu: n = 8.96 g/cm3 * 6.02214076e23 / 63.546 g/mol = 8.49126e22 /cm3; 30 nm = 3e-6 cm
    l = Layer("Cu", thickness_nm=30.0, density_g_cm3=8.96)
    hand = 8.96 * 6.02214076e23 / 63.546 * 3e-6 / 1e15
    assert l.areal_density_1e15 == pytest.approx(hand, rel=1e-4)  # 63.546: standard weight to 5 digits
    back = Layer("Cu", areal_density_1e15=l.areal_density_1e15, density_g_cm3=8.96)
    assert back.thickness_nm == pytest.approx(30.0, rel=1e-14)


def test_formula_fractions():
    l = Layer("Li2.0PO2.6N0.9", thickness_nm=10, density_g_cm3=2.5)
    assert l.fractions == pytest.approx({"Li": 2 / 6.5, "P": 1 / 6.5, "O": 2.6 / 6.5, "N": 0.9 / 6.5})
    latp = Layer("Li1.3Al0.3Ti1.7(PO4)3", areal_density_1e15=100)
    assert latp.fractions["O"] == pytest.approx(12 / 18.3)


def test_profile_scale_renormalisation():
    # scale 1.25 on Li2.0PO2.6N0.9 -> Li 2.5 of 7.0 atoms
    l = Layer("Li2.0PO2.6N0.9", thickness_nm=100, density_g_cm3=2.5,
              profiles=[Profile("Li", [0, 30], [1.25, 1.0])])
    els = ["Li", "P", "O", "N"]
    f = l.fractions_at(np.array([0.0, 15 * l.nm_to_1e15, 50 * l.nm_to_1e15]), els)
    assert f[0] == pytest.approx([2.5 / 7, 1 / 7, 2.6 / 7, 0.9 / 7])
    assert f[1, 0] == pytest.approx(2.25 / 6.75)  # linear in the scale at mid-depth
    assert f[2] == pytest.approx([2 / 6.5, 1 / 6.5, 2.6 / 6.5, 0.9 / 6.5])
    np.testing.assert_allclose(f.sum(axis=1), 1.0)


def test_profile_fraction_rule_keeps_other_ratios():
    l = Layer({"Si": 0.5, "O": 0.5}, areal_density_1e15=1000,
              profiles=[Profile("H", [0, 100], [0.2, 0.0], kind="fraction", depth_unit="1e15")])
    f = l.fractions_at(np.array([0.0, 50.0, 200.0]), ["Si", "O", "H"])
    assert f[0] == pytest.approx([0.4, 0.4, 0.2])
    assert f[1] == pytest.approx([0.45, 0.45, 0.1])
    assert f[2] == pytest.approx([0.5, 0.5, 0.0])


def test_isotopes_and_enrichment():
    assert isotope("6Li").A == 6 and isotope("Li-6").A == 6 and isotope("Li6").A == 6
    assert isotope("6Li").mass_u == pytest.approx(6.0151228874, rel=1e-9)  # AME2020
    li = natural_isotopes("Li")
    assert sum(i.abundance for i in li) == pytest.approx(1.0)
    assert {i.A: i.abundance for i in li}[7] == pytest.approx(0.9515, abs=2e-3)  # IUPAC 92.41-95.99 %, 95.15 rep.
    enr = natural_isotopes("Li", {6: 0.95, 7: 0.05})
    assert {i.A: i.abundance for i in enr} == {6: 0.95, 7: 0.05}


def test_geometry_potku_form():
    g = Geometry.from_target_detector(20.6, 41.2)
    assert g.incidence_deg == pytest.approx(69.4) and g.exit_deg == pytest.approx(69.4)
    assert g.recoil_deg == pytest.approx(41.2)


def test_foil_ug_to_areal_density():
    f = Foil("C", thickness_ug_cm2=3.1)
    assert f.areal_density_1e15 == pytest.approx(3.1e-6 / 12.011 * 6.02214076e23 / 1e15, rel=1e-4)


INVALID = [
    (lambda: Layer("Xx2O", thickness_nm=1, density_g_cm3=1), "formula"),
    (lambda: Layer("Li2O", thickness_nm=-1, density_g_cm3=1), "thickness_nm"),
    (lambda: Layer("Li2O", thickness_nm=0, density_g_cm3=1), "thickness_nm"),
    (lambda: Layer("Li2O", areal_density_1e15=float("nan")), "areal_density_1e15"),
    (lambda: Layer("Li2O(", thickness_nm=1, density_g_cm3=1), "formula"),
    (lambda: Layer({"Li": 0.5, "O": 0.4}, areal_density_1e15=10), "composition"),
    (lambda: Layer("Li2O", thickness_nm=10), "density_g_cm3"),
    (lambda: Geometry(70, 70, 90), "recoil_deg"),
    (lambda: Geometry(70, 70, 95), "recoil_deg"),
    (lambda: Geometry(float("inf"), 70, 40), "incidence_deg"),
    (lambda: Geometry.from_target_detector(40, 30), "detector_angle_deg"),
    (lambda: Beam("Qq", 9.0), "element"),
    (lambda: Beam("63Cu", float("nan")), "energy_MeV"),
    (lambda: Beam("63Cu", 9.0, fluence=0), "fluence"),
    (lambda: Beam("99Li", 9.0), "isotope"),
    (lambda: Detector(0.6, 0.1, 0.0, 50.0), "calibration_a_ns"),
    (lambda: Detector(-0.6, 0.1, 0.06, 50.0), "flight_length_m"),
    (lambda: Profile("Li", [0, 10, 5], [1, 1, 1]), "depth"),
    (lambda: Profile("Li", [0, 10], [1, -1]), "values"),
    (lambda: Options(screening="moliere"), "screening"),
    (lambda: Options(max_sigma_fraction=-0.5), "max_sigma_fraction"),
    (lambda: Options(max_channel_fraction=0.0), "max_channel_fraction"),
]


@pytest.mark.parametrize("make,field", INVALID)
def test_invalid_input_raises_named_error(make, field):
    with pytest.raises(RecoilsimError) as ei:
        make()
    assert field in str(ei.value)
    assert "is not valid" in str(ei.value)


def test_recoil_not_in_sample():
    e = reference_experiment()
    with pytest.raises(RecoilsimError, match="recoils"):
        Experiment(e.beam, e.geometry, e.detector, e.sample, ["Au"])


def test_reference_experiment_isotopes():
    names = [i.name for i in reference_experiment().recoil_isotopes()]
    assert names == ["6Li", "7Li", "31P", "16O", "17O", "18O", "14N", "15N", "12C", "13C"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.001, 10), min_size=2, max_size=4),
       st.floats(0.1, 1e4), st.floats(0.5, 20),
       st.lists(st.floats(0.0, 3.0), min_size=2, max_size=5))
def test_random_layers_finite(amounts, thick, dens, prof):
    els = ["Li", "O", "Fe", "Au"][: len(amounts)]
    comp = {e: a for e, a in zip(els, amounts)}
    total = sum(amounts)
    comp = {e: a / total for e, a in comp.items()}
    depth = np.linspace(0, thick, len(prof))
    l = Layer(comp, thickness_nm=thick, density_g_cm3=dens, profiles=[Profile("Li", depth, prof)])
    f = l.fractions_at(np.linspace(0, l.areal_density_1e15, 7), l.elements())
    assert np.all(np.isfinite(f)) and np.all(f >= 0)
    np.testing.assert_allclose(f.sum(axis=1), 1.0, rtol=1e-12)


def test_profile_that_empties_layer_is_an_error():
    l = Layer("Li", areal_density_1e15=10, profiles=[Profile("Li", [0, 5], [0.0, 1.0], depth_unit="1e15")])
    with pytest.raises(RecoilsimError, match="leave atoms"):
        l.fractions_at(np.array([0.0]), ["Li"])


def test_recoil_isotopes_first_layer_wins_and_no_repeats():
    """Each (Z, A) once, in the order the recoils are given, mass numbers ascending within an
    element; an isotope of several layers comes with the first layer's abundance (layer 0
    natural Li, layer 1 enriched Li, layer 2 pure 6Li through a profile of an element absent
    from its composition); a named isotope and its element do not repeat it."""
    import dataclasses
    from recoilsim.model.sample import Sample
    e = reference_experiment()
    layers = [Layer({"Li": 0.5, "O": 0.5}, thickness_nm=20, density_g_cm3=2.0, name="a"),
              Layer({"Li": 0.4, "O": 0.6}, thickness_nm=20, density_g_cm3=2.0, name="b",
                    enrichment={"Li": {6: 0.95, 7: 0.05}}),
              Layer({"Si": 1.0}, thickness_nm=20, density_g_cm3=2.3, name="c",
                    profiles=[Profile("Li", np.array([0.0, 10.0]), np.array([0.01, 0.01]), kind="fraction")],
                    enrichment={"Li": {6: 1.0}})]
    exp = dataclasses.replace(e, sample=Sample(layers), recoils=["7Li", "O", "Li", "Si"])
    isos = exp.recoil_isotopes()
    assert [i.name for i in isos] == ["7Li", "16O", "17O", "18O", "6Li", "28Si", "29Si", "30Si"]
    nat = {i.A: i.abundance for i in natural_isotopes("Li")}
    assert isos[4].abundance == pytest.approx(nat[6], rel=1e-12)
    only_b = dataclasses.replace(e, sample=Sample(layers[1:]), recoils=["Li"])
    assert [(i.name, i.abundance) for i in only_b.recoil_isotopes()] == [("6Li", 0.95), ("7Li", 0.05)]
    only_c = dataclasses.replace(e, sample=Sample(layers[2:]), recoils=["Li"])
    assert [(i.name, i.abundance) for i in only_c.recoil_isotopes()] == [("6Li", 1.0)]
