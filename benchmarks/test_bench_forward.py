"""Forward-model benchmarks (pytest-benchmark): the reference case, its Jacobian, cost growth.

Reference case: 9 MeV 63Cu on Cu/LiPON/LATP, every isotope of Li, P, O, N, C, 1024 channels,
a Li profile near the Cu/LiPON interface on a 1 nm grid (0..30 nm, ``kind='scale'``).
Budgets (the project's performance budgets, benchmarks/README.md): forward model < 5 ms, Jacobian for 50 values < 50 ms.

    RECOILSIM_BENCH=quick pytest benchmarks/test_bench_forward.py
"""

import dataclasses

import numpy as np
import pytest

from recoilsim.model.experiment import reference_experiment
from recoilsim.model.sample import Profile
from recoilsim.forward.engine import prepare, run, spread
from recoilsim.forward.simulate import simulate

DEPTH = np.arange(0.0, 31.0)
VALUES = 1.0 + 0.25 * np.exp(-DEPTH / 5.0)


def ref_exp(**options):
    return reference_experiment(Profile("Li", DEPTH, VALUES, kind="scale"), **options)


def _kernel_and_spread(arrays, det, resolution):
    return spread(run(arrays), det.calibration_a_ns, det.calibration_b_ns, det.n_channels, resolution)


@pytest.fixture(scope="module")
def ref():
    exp = ref_exp()
    simulate(exp)  # compile / load the numba cache outside the timings
    return exp


def test_forward_kernel_and_spread(benchmark, ref):
    """engine.run + engine.spread on prepared inputs (the numerical core)."""
    arrays = prepare(ref)
    spec = benchmark(_kernel_and_spread, arrays, ref.detector, ref.options.resolution)
    assert spec.sum() > 0


def test_forward_kernel_only(benchmark, ref):
    arrays = prepare(ref)
    n = benchmark(run, arrays).n
    benchmark.extra_info["n_bricks"] = int(n)


def test_forward_kernel_only_no_multiple_scattering(benchmark, ref):
    """The kernel with multiple scattering off (issue 13's cost budget: on within 1.5x of off;
    docs/multiple_scattering.md has the measured ratio)."""
    arrays = prepare(dataclasses.replace(ref, options=dataclasses.replace(ref.options, multiple_scattering=False)))
    n = benchmark(run, arrays).n
    benchmark.extra_info["n_bricks"] = int(n)


def test_forward_prepare(benchmark, ref):
    """Experiment -> kernel arrays (stopping tables cached in-process)."""
    benchmark(prepare, ref)


def test_forward_simulate(benchmark, ref):
    """The whole simulate(): prepare, kernel, spreading, xarray Dataset."""
    ds = benchmark(simulate, ref)
    benchmark.extra_info["n_bricks"] = int(ds.attrs["n_bricks"])
    benchmark.extra_info["n_blocks"] = int(ds.attrs["n_blocks"])


@pytest.fixture(scope="module")
def lm50():
    basis = pytest.importorskip("recoilsim.forward.linear_model")
    lm = basis.LinearModel(reference_experiment(), "Li", 1, depth_nm=np.arange(0.0, 50.0))
    lm.columns()
    return lm


def test_jacobian_columns_50_nodes(benchmark, lm50):
    """Linear-model columns A (1024 x 50) at a new calibration (bricks re-spread, no kernel)."""
    state = {"a": lm50.a_ns}

    def setup():
        lm50._cache.clear()
        state["a"] *= 1.0 + 1e-7
        return (state["a"], lm50.b_ns), {}

    A, c = benchmark.pedantic(lm50.columns, setup=setup, rounds=20 if not _quick() else 5, warmup_rounds=1)
    assert A.shape == (1024, 50)


def test_jacobian_build_50_nodes(benchmark, ref):
    """LinearModel for 50 nodes from scratch: one kernel run + the 50 columns."""
    basis = pytest.importorskip("recoilsim.forward.linear_model")
    exp = reference_experiment()

    def build():
        lm = basis.LinearModel(exp, "Li", 1, depth_nm=np.arange(0.0, 50.0))
        return lm.columns()

    A, c = benchmark(build)
    assert A.shape == (1024, 50)


def _quick():
    from conftest import QUICK  # benchmarks/conftest.py

    return QUICK


# ---- cost growth (full mode for the whole table; quick mode runs the reference point only)

STEPS = [4.0, 2.0, 1.0, 0.5, 0.25]
SIGMAS = [2.0, 1.0, 0.5, 0.25, 0.0]
FRACTIONS = [2.0, 1.0, 0.8, 0.5, 0.25, 0.125]
CHANNELS = [256, 512, 1024, 2048, 4096]


def _growth_params():
    from conftest import QUICK

    if QUICK:
        return [("profile_step_nm", 1.0), ("max_sigma_fraction", 0.5), ("n_channels", 1024)]
    return ([("profile_step_nm", s) for s in STEPS] + [("max_sigma_fraction", f) for f in SIGMAS]
            + [("max_channel_fraction", f) for f in FRACTIONS] + [("n_channels", n) for n in CHANNELS])


def growth_experiment(knob, value):
    """The reference case with one knob changed. ``n_channels`` keeps the time range: the
    channel width scales as 1024/n. ``max_channel_fraction`` rows switch the sigma rule off
    (``max_sigma_fraction=0``), so that the brick count follows the channel width alone."""
    if knob == "n_channels":
        exp = ref_exp()
        det = exp.detector
        a = det.calibration_a_ns * 1024 / value
        exp.detector = dataclasses.replace(det, n_channels=int(value), calibration_a_ns=a)
        return exp
    if knob == "max_channel_fraction":
        return ref_exp(max_channel_fraction=value, max_sigma_fraction=0.0)
    return ref_exp(**{knob: value})


@pytest.mark.parametrize("knob,value", _growth_params())
def test_forward_cost_growth(benchmark, knob, value):
    exp = growth_experiment(knob, value)
    ds = simulate(exp)
    arrays = prepare(exp)
    benchmark(_kernel_and_spread, arrays, exp.detector, exp.options.resolution)
    benchmark.extra_info.update(n_bricks=int(ds.attrs["n_bricks"]), n_blocks=int(ds.attrs["n_blocks"]),
                                n_channels=int(exp.detector.n_channels))
