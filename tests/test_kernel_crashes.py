"""Valid-looking inputs that crashed the kernel or gave a wrong result (issue 15, item 4).

Each gives either a RecoilsimError naming the field, or a finite result that is right for an
independent reason stated in the test.
"""

import dataclasses
import math
import warnings

import numpy as np
import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.forward.simulate import simulate
from recoilsim.kernels.kinematics import C_M_PER_NS, U_MEV
from recoilsim.model.experiment import Experiment, Options, reference_experiment
from recoilsim.model.instrument import Beam, Geometry
from recoilsim.model.sample import Layer, Sample


def _lowest_energy_in_window(exp, mass_u):
    """Non-relativistic energy (MeV) of a particle that needs the latest channel's time."""
    t_max = float(exp.detector.channel_edges_ns().max())
    beta = exp.detector.flight_length_m / (t_max * C_M_PER_NS)
    return 0.5 * mass_u * U_MEV * beta * beta


def _quiet_simulate(exp):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the simulated spectrum is empty"
        return simulate(exp)


@pytest.mark.parametrize("energy_MeV", [0.01, 0.03, 0.05])
def test_beam_below_the_stopping_tables_is_refused(energy_MeV):
    """63Cu below 0.98 keV/u (62 keV) lies below the stopping tables (was ZeroDivisionError)."""
    exp = reference_experiment()
    exp.beam = Beam("63Cu", energy_MeV)
    with pytest.raises(RecoilsimError) as err:
        simulate(exp)
    assert err.value.field == "beam.energy_MeV"


@pytest.mark.parametrize("energy_MeV", [0.07, 0.2, 1.0])
def test_slow_beam_gives_no_counts(energy_MeV):
    """A slow beam that stops early: its fastest recoil (K E0, K = 4 M1 M2 cos^2(phi)/(M1+M2)^2)
    is slower than the latest channel needs, so the spectrum is empty and finite."""
    exp = reference_experiment(recoils=("Li",))
    exp.beam = Beam("63Cu", energy_MeV)
    K = 4 * 63 * 7 * math.cos(math.radians(40.0)) ** 2 / 70 ** 2
    assert K * energy_MeV < _lowest_energy_in_window(exp, 7.0)
    c = _quiet_simulate(exp).counts.values
    assert np.all(c == 0.0)


def test_recoil_angle_near_90_deg_gives_no_counts():
    """At 89.99 deg the recoil energy is K E0 with cos^2(phi) = 3e-8: far too slow for the window
    (was ZeroDivisionError)."""
    exp = reference_experiment()
    exp.geometry = Geometry(70.0, 70.0, 89.99)
    K = 4 * 63 * 7 * math.cos(math.radians(89.99)) ** 2 / 70 ** 2
    assert K * 9.0 < 1e-3 * _lowest_energy_in_window(exp, 7.0)
    c = _quiet_simulate(exp).counts.values
    assert np.all(np.isfinite(c)) and np.all(c == 0.0)


def test_proton_on_gold_recoiling_gold_gives_no_counts():
    """2 MeV 1H recoils 197Au with K = 4 x 197 cos^2(40 deg)/198^2 = 0.0118: 24 keV, microseconds
    of flight over 0.6 m, outside the 29-135 ns window (was ZeroDivisionError)."""
    r = reference_experiment()
    exp = Experiment(Beam("1H", 2.0), r.geometry, r.detector,
                     Sample([Layer("Au", thickness_nm=100.0, density_g_cm3=19.3)]), ["Au"], Options())
    assert 2.0 * 4 * 197 * math.cos(math.radians(40.0)) ** 2 / 198 ** 2 < _lowest_energy_in_window(exp, 197.0)
    c = _quiet_simulate(exp).counts.values
    assert np.all(np.isfinite(c)) and np.all(c == 0.0)


def test_flight_length_longer_than_light_covers_in_the_window_is_refused():
    """100 m: light needs 334 ns, the latest channel is at 135 ns (was OverflowError)."""
    exp = reference_experiment()
    exp.detector = dataclasses.replace(exp.detector, flight_length_m=100.0)
    with pytest.raises(RecoilsimError) as err:
        simulate(exp)
    assert err.value.field == "detector.flight_length_m"


@pytest.mark.parametrize("omega_msr", [1e300, 4000.0 * math.pi * 1.0001])
def test_solid_angle_above_4_pi_is_refused(omega_msr):
    det = reference_experiment().detector
    with pytest.raises(RecoilsimError) as err:
        dataclasses.replace(det, solid_angle_msr=omega_msr)
    assert err.value.field == "detector.solid_angle_msr"


def test_infinitely_thick_layer_gives_the_surface_signal():
    """A 1e300 at/cm2 LiPON layer gave an empty spectrum; nothing below the beam's range (9 MeV
    Cu in LiPON: about 4 um, 4e4 x 1e15 at/cm2 of path, 1.4e4 of depth at 70 deg) can matter,
    so it must give the spectrum of a 2e5 x 1e15 at/cm2 layer."""
    def exp(areal):
        # multiple scattering off: with it the sigma-wide bricks of the two stacks are laid out
        # differently and the spectra differ by 6e-5 of the maximum (tolerance 1e-6, set for
        # the sigma without it)
        e = reference_experiment(recoils=("Li", "P"), multiple_scattering=False)
        e.sample = Sample([Layer("Cu", thickness_nm=30.0, density_g_cm3=8.96),
                           Layer("Li2.0PO2.6N0.9", areal_density_1e15=areal)])
        return e
    thick = simulate(exp(2e5)).counts.values
    huge = simulate(exp(1e300)).counts.values
    assert thick.sum() > 1e4
    assert np.max(np.abs(huge - thick)) < 1e-6 * thick.max()


@pytest.mark.parametrize("angles", [(0.0, 0.0, 40.0), (70.0, 70.0, 39.0), (10.0, 80.0, 89.0)])
def test_impossible_geometry_is_refused(angles):
    """The angle between beam and detector is at least 180 - alpha - beta (in-plane reflection)."""
    with pytest.raises(RecoilsimError) as err:
        Geometry(*angles)
    assert err.value.field == "geometry.recoil_deg"


@pytest.mark.parametrize("angles", [(70.0, 70.0, 40.0), (69.4, 69.4, 41.2), (70.0, 70.0, 60.0), (45.0, 60.0, 75.0)])
def test_possible_geometries_are_accepted(angles):
    """In-plane (alpha + beta + phi = 180) and out-of-plane (phi between 180 - alpha - beta and
    180 - |alpha - beta|) geometries."""
    assert Geometry(*angles).recoil_deg == angles[2]


def test_potku_form_stays_valid():
    """Target angle 20.6, detector 41.2 deg: alpha + beta + phi = 180 up to rounding."""
    g = Geometry.from_target_detector(20.6, 41.2)
    assert g.incidence_deg + g.exit_deg + g.recoil_deg == pytest.approx(180.0, abs=1e-12)
