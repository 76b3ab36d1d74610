"""The one forward engine (recoilsim.forward.engine): every route checks the brick budget and
finiteness in the same place (issue 12)."""

import dataclasses
import math

import numpy as np
import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.forward.engine import MAX_BRICKS, boxes, prepare, run, spread
from recoilsim.forward.linear_model import LinearModel
from recoilsim.forward.simulate import simulate
from recoilsim.model.experiment import reference_experiment


def _overflowing():
    """Bricks of at most 0.01 channel and no sigma rule: far more than MAX_BRICKS are needed
    (the default 0.8 channel / 0.5 sigma takes a few hundred)."""
    return reference_experiment(max_channel_fraction=0.01, max_sigma_fraction=0.0)


def test_linear_model_warns_when_the_brick_budget_runs_out():
    """LinearModel used to drop the kernel's overflow flag silently (only simulate() warned)."""
    with pytest.warns(UserWarning, match=f"reached {MAX_BRICKS} bricks"):
        LinearModel(_overflowing(), "Li", "LiPON", depth_nm=np.arange(0.0, 11.0))


def test_run_reports_overflow_and_simulate_still_warns():
    inputs = prepare(_overflowing())
    with pytest.warns(UserWarning, match="bricks before the end"):
        bricks = run(inputs)
    assert bricks.overflow and bricks.n == MAX_BRICKS
    with pytest.warns(UserWarning, match="bricks before the end"):
        simulate(_overflowing())


def test_non_finite_bricks_are_refused_with_a_named_error():
    """An infinite yield factor (Q Omega) gives infinite yields: refused, not spread into inf."""
    inputs = prepare(reference_experiment())
    bad = dataclasses.replace(inputs, detector=inputs.detector._replace(yield_factor=math.inf))
    with pytest.raises(RecoilsimError) as err:
        run(bad)
    assert err.value.field == "experiment"


def test_spread_of_one_box_without_resolution_is_its_exact_overlap():
    """A box from t = 10.25 to 10.75 ns, channels of 0.5 ns at t = 0.5 c: channel 21 spans
    [10.25, 10.75] ns -> all counts in channel 21; shifted by half a channel (0.25 ns), half in
    each of 21 and 22."""
    one = np.array([[10.25]]), np.array([[10.75]]), np.array([[8.0]]), np.array([[0.0]])
    assert spread(boxes(*one), 0.5, 0.0, 40, False)[0, 21] == 8.0
    shifted = spread(boxes(one[0] + 0.25, one[1] + 0.25, one[2], one[3]), 0.5, 0.0, 40, False)[0]
    np.testing.assert_allclose(shifted[[21, 22]], [4.0, 4.0], rtol=1e-14)
    assert shifted.sum() == pytest.approx(8.0, rel=1e-14)


def _beam_stopping_film(scattered: bool):
    """63Cu stops inside a thick carbon film; the TiO2 below it is out of the beam's reach."""
    from recoilsim.model.experiment import Experiment, Options
    from recoilsim.model.instrument import Beam, Detector, Geometry
    from recoilsim.model.sample import Layer, Sample

    det = Detector(flight_length_m=0.6, solid_angle_msr=0.1, calibration_a_ns=0.1, calibration_b_ns=70.05,
                   n_channels=3000, timing_resolution_ps=200.0)
    sample = Sample([Layer("C", areal_density_1e15=60000.0, name="C"),
                     Layer("TiO2", areal_density_1e15=20000.0, name="TiO2")])
    return Experiment(beam=Beam("63Cu", 9.0, fluence=1e12), geometry=Geometry(70.0, 70.0, 40.0), detector=det,
                      sample=sample, recoils=["C"], options=Options(scattered_beam=True if scattered else False))


def test_species_that_yield_nowhere_do_not_change_the_others_bricks():
    """The beam scattered by Ti is a species only where the beam never arrives: it makes no counts,
    so adding it must leave the carbon recoils' bricks and spectra exactly as without it (before,
    its flight times set the depth step in the carbon film and moved the 12C spectrum)."""
    with_ti = simulate(_beam_stopping_film(True))
    without = simulate(_beam_stopping_film(False))
    ti = [str(i) for i in with_ti.isotope.values if "Ti" in str(i)]
    assert ti  # the scattered-beam species exist (both kinematic roots of each Ti isotope) ...
    assert float(with_ti["counts_isotope"].sel(isotope=ti).sum()) == 0.0  # ... and yield nothing
    assert with_ti.attrs["n_bricks"] == without.attrs["n_bricks"]
    for iso in ("12C", "13C"):
        a = with_ti["counts_isotope"].sel(isotope=iso).values
        b = without["counts_isotope"].sel(isotope=iso).values
        assert a.max() > 0
        np.testing.assert_array_equal(a, b)


def _kinematics_of(exp, label):
    """K, dK/dphi and (c, w, q) of one species of prepare(exp)."""
    inputs = prepare(exp)
    s = [sp.label for sp in inputs.species].index(label)
    out = inputs.outgoing
    return out.K[s], out.dK_dphi[s], out.xs[s]


def test_species_kinematics_follow_the_angle_and_the_screening_of_each_call():
    """The per-species kinematics are cached on their scalar inputs: a second experiment with
    another recoil angle or screening must get its own values. Closed forms: K = 4 M1 M2
    cos^2(phi) / (M1 + M2)^2, dK/dphi = -4 M1 M2 sin(2 phi) / (M1 + M2)^2 (Tesmer & Nastasi 1995,
    eq. 5.1); the Rutherford recoil cross section goes as 1 / cos^3(phi) (ibid., eq. 5.2);
    screening w: Andersen 0.04873 Z1 Z2 (Z1^(2/3) + Z2^(2/3))^(1/2) (M1 + M2) / (1000 M2),
    L'Ecuyer 0.04873 Z1 Z2^(4/3) (M1 + M2) / (1000 M2) (MeV), none 0."""
    from recoilsim.model.elements import isotope

    exp = reference_experiment(screening="andersen")
    M1, M2, Z1, Z2 = exp.beam.isotope.mass_u, isotope("7Li").mass_u, 29, 3
    mu = 4 * M1 * M2 / (M1 + M2) ** 2
    scale = (M1 + M2) / (1000.0 * M2)
    w_andersen = 0.04873 * Z1 * Z2 * math.sqrt(Z1 ** (2 / 3) + Z2 ** (2 / 3)) * scale
    w_lecuyer = 0.04873 * Z1 * Z2 ** (4 / 3) * scale
    seen = {}
    for phi_deg in (exp.geometry.recoil_deg, 50.0, exp.geometry.recoil_deg):
        for screening, w in (("andersen", w_andersen), ("lecuyer", w_lecuyer), ("none", 0.0)):
            e = reference_experiment(screening=screening)
            e.geometry = dataclasses.replace(e.geometry, recoil_deg=phi_deg)
            K, dK, (c, w_got, _) = _kinematics_of(e, "7Li")
            phi = math.radians(phi_deg)
            assert K == pytest.approx(mu * math.cos(phi) ** 2, rel=1e-12)
            assert dK == pytest.approx(-mu * math.sin(2 * phi), rel=1e-6)
            assert w_got == pytest.approx(w, rel=1e-12, abs=1e-300)
            seen[phi_deg] = c
    ratio = math.cos(math.radians(exp.geometry.recoil_deg)) ** 3 / math.cos(math.radians(50.0)) ** 3
    assert seen[50.0] / seen[exp.geometry.recoil_deg] == pytest.approx(ratio, rel=1e-12)


def test_species_density_takes_each_layers_abundance_of_its_isotope():
    """Density of a species per block = its element's fraction there x the abundance of its
    isotope in that block's layer: 95 % 6Li in the enriched layer, the natural abundance of the
    element table (the model's data input) in the other, none in the layer without Li; 7Li the
    rest."""
    from recoilsim.model.elements import natural_isotopes
    from recoilsim.model.experiment import Experiment
    from recoilsim.model.sample import Layer, Sample

    ref = reference_experiment()
    sample = Sample([Layer({"Li": 0.4, "O": 0.6}, areal_density_1e15=500.0, name="enriched",
                           enrichment={"Li": {6: 0.95, 7: 0.05}}),
                     Layer({"Li": 0.2, "O": 0.8}, areal_density_1e15=500.0, name="natural"),
                     Layer({"Al": 0.4, "O": 0.6}, areal_density_1e15=500.0, name="no Li")])
    exp = Experiment(beam=ref.beam, geometry=ref.geometry, detector=ref.detector, sample=sample,
                     recoils=["Li", "O"], options=ref.options)
    inputs = prepare(exp)
    labels = [sp.label for sp in inputs.species]
    li = inputs.element_fractions("Li")
    density = inputs.outgoing.density
    n = density.shape[1]
    li = li[:n]
    assert {0.4, 0.2, 0.0} <= set(np.round(li, 12))  # blocks of every layer are there
    natural = {f"{i.A}Li": i.abundance for i in natural_isotopes("Li")}
    assert 0.0 < natural["6Li"] < 0.1 and natural["6Li"] + natural["7Li"] == pytest.approx(1.0, abs=1e-12)
    for label, enriched in (("6Li", 0.95), ("7Li", 0.05)):
        d = density[labels.index(label)]
        np.testing.assert_allclose(d[li == 0.4], 0.4 * enriched, rtol=1e-12)
        np.testing.assert_allclose(d[li == 0.2], 0.2 * natural[label], rtol=1e-12)
        assert np.all(d[li == 0.0] == 0.0)


def test_brick_output_grown_past_its_first_capacity_keeps_every_brick():
    """The kernel's brick arrays start at 512 bricks and grow by doubling (``bricks._grown``, a callee
    of the kernel): the first 512 bricks of a walk that grew past 512 are exactly those of the same
    walk stopped by a budget of 512 (which never grows), field by field."""
    inputs = prepare(reference_experiment(max_channel_fraction=0.3, max_sigma_fraction=0.0))  # ~3200 bricks
    with pytest.warns(UserWarning, match="bricks before the end"):
        capped = run(dataclasses.replace(inputs, options=inputs.options._replace(max_bricks=512)))
    grown = run(dataclasses.replace(inputs, options=inputs.options._replace(max_bricks=20000)))
    assert capped.overflow and capped.n == 512
    assert not grown.overflow and grown.n > 2048  # grown three times: 512 -> 1024 -> 2048 -> 4096
    for field in ("ta", "tb", "Y", "sig_t", "x_mid", "e_det", "sig_e"):
        a, b = getattr(capped, field), getattr(grown, field)
        assert a.shape[1] == 512 and b.shape[1] == grown.n
        np.testing.assert_array_equal(a, b[:, :512], err_msg=field)
