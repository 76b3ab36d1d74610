"""Layer composition as a fit parameter: SlowParameter kinds 'ratio' and 'fraction'.

Closed loop on noiseless synthetic data (the forward model itself, so a correct fit must return
the truth to well within the Fisher errors), plus the bookkeeping that the parameter is exactly
a one-node Profile of that kind.
"""

import numpy as np
import pytest

from recoilsim.errors import RecoilsimError
from recoilsim.model.experiment import Experiment
from recoilsim.fitting.driver import FitParameters, SlowParameter, fit
from recoilsim.fitting.registry import get_value, set_value
from recoilsim.model.instrument import Beam, Detector, Foil, Geometry
from recoilsim.model.sample import Layer, Profile, Sample


def _exp(mn_ratio=None, li_ratio=None, thickness=60.0):
    profs = []
    if mn_ratio is not None:
        profs.append(Profile("Mn", [0.0], [mn_ratio], kind="ratio", depth_unit="1e15"))
    if li_ratio is not None:
        profs.append(Profile("Li", [0.0], [li_ratio], kind="ratio", depth_unit="1e15"))
    film = Layer("LiMn2O4", thickness_nm=thickness, density_g_cm3=4.2, name="film", profiles=profs)
    sample = Sample([film, Layer("Si", thickness_nm=2000.0, density_g_cm3=2.33, name="Si")])
    det = Detector(flight_length_m=0.623, solid_angle_msr=0.3, calibration_a_ns=0.2282,
                   calibration_b_ns=2.4, n_channels=1024, timing_resolution_ps=200.0,
                   foils=[Foil("C", thickness_ug_cm2=3.1)])
    return Experiment(Beam("35Cl", 8.515, fluence=2e11), Geometry.from_target_detector(20.6, 41.2), det, sample,
                      ["Li", "O", "Mn"])


def test_ratio_slow_parameter_is_a_one_node_profile():
    e = _exp()
    sp = SlowParameter("ratio", 0, "Mn")
    assert get_value(e, sp.key) == 1.0
    e2 = set_value(e, sp.key, 0.75)
    lay = e2.sample.layers[0]
    assert get_value(e2, sp.key) == 0.75
    # Mn at 0.75 x 2/7; Li and O share the rest in their nominal 1:4 proportion
    f = lay.fractions_at(np.array([0.0, 100.0]), ["Li", "Mn", "O"])
    mn = 0.75 * 2 / 7
    np.testing.assert_allclose(f[:, 1], mn, rtol=1e-12)
    np.testing.assert_allclose(f[:, 0], (1 - mn) / 5, rtol=1e-12)
    np.testing.assert_allclose(f[:, 2], 4 * (1 - mn) / 5, rtol=1e-12)
    assert lay.thickness_nm == e.sample.layers[0].thickness_nm  # the thickness is kept
    assert e.sample.layers[0].profiles == []  # the input is not modified
    spf = SlowParameter("fraction", 0, "O")
    assert get_value(e, spf.key) == pytest.approx(4 / 7)
    f = set_value(e, spf.key, 0.5).sample.layers[0].fractions_at(np.array([10.0]), ["Li", "Mn", "O"])[0]
    np.testing.assert_allclose(f, [1 / 6, 2 / 6, 0.5], rtol=1e-12)


def test_composition_slow_parameter_validation():
    with pytest.raises(RecoilsimError, match="element"):
        SlowParameter("ratio", 0)
    with pytest.raises(RecoilsimError, match="slow.kind"):
        SlowParameter("density", 0)
    e = _exp()
    e.sample.layers[0].profiles = [Profile("Mn", [0.0, 10.0], [1.0, 0.5], kind="ratio")]
    with pytest.raises(RecoilsimError, match="profile"):
        get_value(e, SlowParameter("ratio", 0, "Mn").key)
    par = FitParameters(element="Li", layer=0, depth_nm=[0.0], slow=[SlowParameter("ratio", 0, "Li")])
    with pytest.raises(RecoilsimError, match="profiled"):
        fit(_exp(), {"Li": np.ones(1024)}, par)


def test_fit_film_recovers_a_composition_far_from_the_start():
    """recoilsim.fitting.film.fit_film on noiseless spectra of a Li-poor, Mn-poor film, started from LiMn2O4.

    A single fit() stops on a linearisation made at the nominal Li (here 3x too much); the
    re-nominalised fits must reach the truth and a model equal to the full simulation.
    """
    from recoilsim.fitting.film import fit_film
    from recoilsim.forward.simulate import simulate

    truth = simulate(_exp(mn_ratio=0.85, li_ratio=0.3, thickness=70.0))
    meas = {e: truth["counts"].sel(element=e).values for e in ("Li", "O", "Mn")}
    res = fit_film(_exp(thickness=90.0), meas, layer="film", fast="Li", ratios=["Mn"])
    assert res.status == "success", res.message
    exp_t = _exp(mn_ratio=0.85, li_ratio=0.3, thickness=70.0).sample.layers[0]
    f_true = dict(zip(["Li", "Mn", "O"], exp_t.fractions_at(np.array([1.0]), ["Li", "Mn", "O"])[0]))
    for el in ("Li", "Mn", "O"):
        assert res.summary["film"][el]["fraction"] == pytest.approx(f_true[el], rel=2e-3), el
    assert res.summary["thickness"]["areal_density_1e15"] == pytest.approx(exp_t.areal_density_1e15, rel=2e-3)
    assert res.summary["q_omega"]["ions_sr"] == pytest.approx(2e11 * 0.3e-3, rel=2e-3)
    assert res.summary["goodness"]["full_model_max_rel_diff"] < 1e-2
    assert len(res.iterations) >= 2
