"""The JaBS-comparison case of issue 17: a whole spectrum at real channel counts.

9 MeV 63Cu, incidence and exit 70 deg from the normal, recoil angle 40 deg; Cu 254.7 /
Li2.0P1O2.6N0.9 24697.7 / Li1.3Al0.3Ti1.7P3O12 20000 (1e15 at/cm2, no densities); no foil;
L = 0.6 m; 200 ps FWHM timing; recoils Li, N, O, P, Cu and the scattered beam (22 species);
channels of 0.1 ns (15,300) or 0.02 ns (76,500) from 70 ns to 1600 ns.
Budgets (issue 17, medians): whole ``simulate()`` <= 8 ms at 15,300 channels, <= 20 ms at 76,500.

    RECOILSIM_BENCH=full pytest benchmarks/test_bench_jabs_case.py

Quick mode (CI) runs the 15,300-channel case only.
"""

import pytest

from recoilsim.forward.engine import prepare, run, spread
from recoilsim.forward.simulate import simulate
from recoilsim.model.experiment import Experiment, Options
from recoilsim.model.instrument import Beam, Detector, Geometry
from recoilsim.model.sample import Layer, Sample

T_FIRST_NS, T_LAST_NS = 70.0, 1600.0


def jabs_case(channel_ns: float) -> Experiment:
    """The issue-17 case with channels of ``channel_ns`` covering 70..1600 ns."""
    n = int(round((T_LAST_NS - T_FIRST_NS) / channel_ns))
    det = Detector(flight_length_m=0.6, solid_angle_msr=0.1, calibration_a_ns=channel_ns,
                   calibration_b_ns=T_FIRST_NS + 0.5 * channel_ns, n_channels=n, timing_resolution_ps=200.0)
    sample = Sample([Layer("Cu", areal_density_1e15=254.7, name="Cu"),
                     Layer("Li2.0P1O2.6N0.9", areal_density_1e15=24697.7, name="LiPON"),
                     Layer("Li1.3Al0.3Ti1.7P3O12", areal_density_1e15=20000.0, name="LATP")])
    return Experiment(beam=Beam("63Cu", 9.0, fluence=1e12), geometry=Geometry(70.0, 70.0, 40.0), detector=det,
                      sample=sample, recoils=["Li", "N", "O", "P", "Cu"], options=Options(scattered_beam=True),
                      name=f"issue17-jabs-{channel_ns}ns")


def _channels():
    from conftest import QUICK  # benchmarks/conftest.py

    return [0.1] if QUICK else [0.1, 0.02]


@pytest.fixture(scope="module", params=_channels(), ids=lambda c: f"{c}ns")
def case(request):
    exp = jabs_case(request.param)
    simulate(exp)  # compile / load the numba cache outside the timings
    return exp


def test_jabs_simulate(benchmark, case):
    """The whole simulate(): prepare, brick kernel, spreading, xarray Dataset."""
    ds = benchmark(simulate, case)
    benchmark.extra_info.update(n_channels=int(case.detector.n_channels), n_bricks=int(ds.attrs["n_bricks"]),
                                n_species=int(ds.sizes["isotope"]), dataset_MB=round(ds.nbytes / 2**20, 2))


def test_jabs_kernel(benchmark, case):
    """The brick kernel alone (simulate_bricks on prepared inputs)."""
    bricks = benchmark(run, prepare(case))
    benchmark.extra_info["n_bricks"] = int(bricks.n)


def test_jabs_spread(benchmark, case):
    """The spreading alone: bricks -> (22, n_channels) spectra."""
    det = case.detector
    bricks = run(prepare(case))
    spec = benchmark(spread, bricks, det.calibration_a_ns, det.calibration_b_ns, det.n_channels, True)
    assert spec.sum() > 0
