"""Background: constant/linear level per element, and the random-coincidence estimate from an
empty region of the TOF-E map (issue 13)."""

import numpy as np
import pytest

from recoilsim import RecoilsimError
from recoilsim.analysis.background import (add_background, background_in_cut, cut_width, inside_polygon,
                                           polygon_area, random_density)
from recoilsim.forward.simulate import simulate
from recoilsim.model.experiment import Experiment, Options
from recoilsim.model.instrument import Beam, Detector, Foil, Geometry
from recoilsim.model.sample import Layer, Sample


def test_random_background_from_an_empty_region():
    """Uniform random events over a 2000 x 1000 map at 0.05 per channel^2: the density read in
    an empty box, times a triangular cut's width, predicts the events in the cut."""
    rng = np.random.default_rng(5)
    n = rng.poisson(0.05 * 2000 * 1000)
    tof = rng.uniform(0, 2000, n)
    en = rng.uniform(0, 1000, n)
    dens, err = random_density(tof, en, [1500, 1900, 1900, 1500], [600, 600, 950, 950])
    assert dens == pytest.approx(0.05, abs=4 * err)
    cx, cy = np.array([200.0, 800.0, 200.0]), np.array([100.0, 400.0, 700.0])
    width = cut_width(cx, cy, np.arange(1000) + 0.5)
    # closed form of the triangle: width 600 at x = 200 falling linearly to 0 at x = 800
    x = np.arange(1000) + 0.5
    assert width == pytest.approx(np.where((x >= 200) & (x < 800), 600.0 * (800 - x) / 600.0, 0.0), abs=1e-9)
    assert width.sum() == pytest.approx(polygon_area(cx, cy), rel=1e-9)
    expected = background_in_cut(dens, cx, cy, 2000).sum()
    actual = int(inside_polygon(cx, cy, tof, en).sum())
    assert actual == pytest.approx(expected, abs=4 * np.sqrt(expected) + 4 * err * polygon_area(cx, cy))


def test_add_background_levels():
    sample = Sample([Layer("Li", areal_density_1e15=50.0)])
    det = Detector(flight_length_m=0.6, solid_angle_msr=1.0, calibration_a_ns=0.1, calibration_b_ns=45.0,
                   n_channels=512, timing_resolution_ps=150.0, foils=[Foil("C", thickness_ug_cm2=3.0)])
    ds = simulate(Experiment(Beam("63Cu", 9.0, fluence=1e12), Geometry(70, 70, 40), det, sample, ["Li"], Options()))
    out = add_background(ds, {"Li": (2.0, 0.1)})
    t = ds.time_ns.values
    added = (out.counts - ds.counts).sel(element="Li").values
    assert added == pytest.approx(np.maximum(2.0 + 0.1 * (t - 0.5 * (t[0] + t[-1])), 0.0))
    assert np.array_equal(out.counts_isotope.values, ds.counts_isotope.values)
    assert float(add_background(ds, {"Li": 1.5}).counts.sum() - ds.counts.sum()) == pytest.approx(1.5 * 512)
    with pytest.raises(RecoilsimError, match="background"):
        add_background(ds, {"Mn": 1.0})
    with pytest.raises(RecoilsimError, match="region"):
        random_density([1.0], [1.0], [0, 1], [0, 1])
