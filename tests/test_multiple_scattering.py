"""Multiple scattering (issue 13): widths against theory, an independent Monte Carlo and CATIMA;
the brick sigma of a thin 7Li marker in the reference case; counts conserved; no NaN."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from recoilsim import RecoilsimError
from recoilsim.forward.engine import prepare, run
from recoilsim.forward.simulate import simulate
from recoilsim.kernels.multiple_scattering import (LOG10_HALF_WIDTH, LOG10_TAU, half_width_after, log_add as ms_log_add,
                                                   reduced_half_width, reduced_thickness)
from recoilsim.model.experiment import Experiment, Options, reference_experiment
from recoilsim.model.instrument import Beam, Detector, Foil, Geometry
from recoilsim.model.sample import Layer, Sample

sys.path.insert(0, str(Path(__file__).parent))
from ms_monte_carlo import (angles_after, fwhm_sigma, reference_depth_1e15, reference_marker_mc)  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ the width table

def test_table_regenerates_from_sigmund_winterbon():
    """Three nodes recomputed from SW's transport solution (the generator script)."""
    sys.path.insert(0, str(ROOT / "stopping_data"))
    from ms_widths import projected_half_width
    for i in (8, 24, 48):  # tau = 0.01, 1, 1000
        assert math.log10(projected_half_width(10.0 ** LOG10_TAU[i])) == pytest.approx(LOG10_HALF_WIDTH[i], abs=2e-3)


def test_log_add_matches_numpy():
    """The walk's tabulated ln(e^a + e^b) (no exp/log per element) against numpy's logaddexp,
    over differences from 0 to beyond the table's end, both orders and large offsets (called
    through a compiled function: the kernels' helpers have no Python wrapper)."""
    from numba import njit
    log_add = njit(lambda a, b: ms_log_add(a, b))
    for base in (-30.0, 0.0, 12.5):
        for diff in np.concatenate([np.linspace(0.0, 3.0, 301), np.linspace(3.0, 45.0, 211), [1e-9, 39.99, 40.0]]):
            a, b = base, base - diff
            assert log_add(a, b) == pytest.approx(np.logaddexp(a, b), abs=1e-9)
            assert log_add(b, a) == pytest.approx(np.logaddexp(a, b), abs=1e-9)


def test_table_limits_follow_theory():
    """Small tau: single-scattering law alpha_1/2 ~ tau^(1/2m), m = 1/3 for Thomas-Fermi
    (Sigmund & Winterbon 1974); large tau: towards the Gaussian regime, exponent near 1/2."""
    small = (LOG10_HALF_WIDTH[4] - LOG10_HALF_WIDTH[0]) / (LOG10_TAU[4] - LOG10_TAU[0])
    large = (LOG10_HALF_WIDTH[-1] - LOG10_HALF_WIDTH[-9]) / (LOG10_TAU[-1] - LOG10_TAU[-9])
    assert small == pytest.approx(1.5, abs=0.01)
    assert 0.5 < large < 0.56


def test_inverse_and_energy_scaling():
    for tau in (2e-3, 0.37, 5.0, 800.0, 3e5):
        assert reduced_thickness(reduced_half_width(tau)) == pytest.approx(tau, rel=1e-9)
    z, f = np.array([29.0]), np.array([1.0])
    # reduced angle alpha E a / (2 Z1 Z2 e^2): at fixed thickness the width scales as 1/E
    assert half_width_after(0.0, 4.5, 29.0, z, f, 300.0) == pytest.approx(2 * half_width_after(0.0, 9.0, 29.0, z, f,
                                                                                                 300.0), rel=1e-12)
    # two halves of a path at one energy = the whole path (equivalent thickness)
    w = half_width_after(half_width_after(0.0, 9.0, 29.0, z, f, 150.0), 9.0, 29.0, z, f, 150.0)
    assert w == pytest.approx(half_width_after(0.0, 9.0, 29.0, z, f, 300.0), rel=1e-9)


def _numpy_rule(w, E, Z1, el_Z, frac, path):
    """The equivalent-thickness rule written out with numpy in log10 (a second implementation of
    the kernel, which carries ln w and finds cells by a lookup table): per element
    w = c T(T^-1(w / c) + tau), c = 2 Z1 Z2 e^2 / (E a), tau = pi a^2 f N t, T the table
    interpolated log-log and extrapolated with its end slopes (SW eqs. 2.6-2.7)."""
    def interp(x, xs, ys):
        i = np.clip(np.searchsorted(xs, x, side="right") - 1, 0, len(xs) - 2)
        return ys[i] + (x - xs[i]) * (ys[i + 1] - ys[i]) / (xs[i + 1] - xs[i])

    a0, e2 = 0.529177210903e-8, 1.43996448e-13  # Bohr radius (cm), e^2 (MeV cm)
    for z2, f in zip(el_Z, frac):
        a = 0.8853 * a0 / math.sqrt(Z1 ** (2 / 3) + z2 ** (2 / 3))
        c = 2 * Z1 * z2 * e2 / (E * a)
        tau = math.pi * a * a * f * path * 1e15
        tau_eq = 10 ** interp(math.log10(w / c), LOG10_HALF_WIDTH, LOG10_TAU) if w > 0 else 0.0
        w = c * 10 ** interp(math.log10(tau_eq + tau), LOG10_TAU, LOG10_HALF_WIDTH)
    return w


@pytest.mark.parametrize("w0", [0.0, 1e-9, 3e-6, 1e-4, 2e-3, 0.05, 0.4])
@pytest.mark.parametrize("path", [1e-3, 0.7, 40.0, 2500.0, 3e5])
def test_half_width_after_matches_numpy_rule(w0, path):
    """The kernel's width update (constants once per ion, widths carried in ln, cells by a
    lookup table) against the rule written out in numpy, over widths and thicknesses that cover
    every table cell and both extrapolated ends, in a 3-element compound."""
    el_Z, frac = np.array([3.0, 15.0, 8.0]), np.array([0.3, 0.15, 0.55])
    for Z1, E in ((29.0, 9.0), (3.0, 1.2)):
        assert half_width_after(w0, E, Z1, el_Z, frac, path) == pytest.approx(
            _numpy_rule(w0, E, Z1, el_Z, frac, path), rel=1e-9)


@pytest.mark.parametrize("Z1, comp, path, E", [
    (29, {"Cu": 1.0}, 255.8, 9.0),  # the beam through the Cu cap at normal incidence
    (29, {"Cu": 1.0}, 2000.0, 9.0),
    (29, {"Li": 2.0, "P": 1.0, "O": 2.6, "N": 0.9}, 2000.0, 8.0),  # compound: element by element
    (3, {"Li": 2.0, "P": 1.0, "O": 2.6, "N": 0.9}, 2000.0, 1.5),
])
def test_single_layer_width_against_monte_carlo(Z1, comp, path, E):
    """Projected half width against single-collision sampling (same cross section, no SW
    transport, no table): within 6 % (Monte Carlo noise ~2 %)."""
    total = sum(comp.values())
    els = sorted(comp)
    from recoilsim.model.elements import element
    z = np.array([float(element(e).number) for e in els])
    f = np.array([comp[e] / total for e in els])
    hw_mc = fwhm_sigma(angles_after(Z1, comp, path, E, n_ions=12000)) * 2.3548 / 2.0
    assert hw_mc == pytest.approx(half_width_after(0.0, E, float(Z1), z, f, path), rel=0.06)


@pytest.mark.parametrize("A, Z, E, t_nm", [(1, 1, 10.0, 1e4), (1, 1, 50.0, 1e5), (4, 2, 20.0, 1e4),
                                           (12, 6, 100.0, 1e4)])
def test_fast_ion_widths_against_catima(A, Z, E, t_nm):
    """Fast light ions in thick Cu (the Gaussian regime, where a Highland-type formula holds):
    sigma = HWHM/sqrt(2 ln 2) agrees with CATIMA's 'dhighland' angular straggling within 10 %.
    (For the 9 MeV Cu / 2 MeV Li of the reference case CATIMA's high-energy formulas do not
    apply: docs/multiple_scattering.md lists the differences.)"""
    catima = pytest.importorskip("pycatima")
    from recoilsim.kernels.multiple_scattering import HWHM_TO_SIGMA, ms_constants, path_half_width
    from recoilsim.stopping.tables import nm_to_1e15
    p = catima.Projectile(A, Z)
    p.T(E / A)
    m = catima.Material([[63.546, 29, 1]])
    m.density(8.96)
    m.thickness_cm(t_nm * 1e-7)
    c = catima.Config()
    c.scattering = catima.scattering_types.dhighland
    r = catima.calculate(p, m, config=c).get_dict()
    ln_ce, tau_c = ms_constants(float(Z), np.array([29.0]))
    w = path_half_width(0.0, E, r["Eout"] * A, ln_ce, tau_c, np.array([1.0]), nm_to_1e15(t_nm, "Cu", 8.96))
    assert w * HWHM_TO_SIGMA == pytest.approx(r["sigma_a"], rel=0.10)


# ------------------------------------------------------------------ the 7Li marker of the reference case

def marker_experiment(ms=True, only_ms=False):
    """Reference case with a trace of Li (0.1 at.%) in the Cu cap, so that 7Li bricks exist at
    every depth; fine bricks. only_ms: no straggling, timing, divergence or aperture."""
    kw = dict(multiple_scattering=ms, max_channel_fraction=0.05, max_sigma_fraction=0.0)
    if only_ms:
        kw["straggling"] = "none"
    e = reference_experiment(recoils=["Li"], **kw)
    e.sample.layers[0] = Layer({"Cu": 0.999, "Li": 0.001}, thickness_nm=30.0, density_g_cm3=8.96, name="Cu")
    if only_ms:
        e.detector.timing_resolution_ps = 0.0
        e.geometry.beam_divergence_deg = 0.0
        e.geometry.detector_aperture_deg = 0.0
    return e


def marker_sigma_ns(exp, z_nm):
    """Time sigma (ns) of the 7Li brick at z_nm below the surface (a 1 nm marker's spread: its
    own width, 1 nm, adds < 0.01 ns)."""
    inputs = prepare(exp)
    b = run(inputs)
    i = [k for k, sp in enumerate(inputs.species) if round(sp.mass_u) == 7][0]
    ok = b.Y[i, :b.n] > 0
    return float(np.interp(reference_depth_1e15(z_nm), b.x_mid[i, :b.n][ok], b.sig_t[i, :b.n][ok]))


@pytest.mark.parametrize("z_nm", [30.0, 100.0])
def test_marker_sigma_against_monte_carlo(z_nm):
    """Where multiple scattering dominates (below the Cu cap), the brick's multiple-scattering
    sigma agrees with the Monte Carlo's (FWHM/2.3548 of its flight times) within 15 %."""
    model = marker_sigma_ns(marker_experiment(True, only_ms=True), z_nm)
    mc = fwhm_sigma(reference_marker_mc(z_nm, n_ions=6000, seed=3))
    assert model == pytest.approx(mc, rel=0.15)
    # and it dominates: the full sigma without multiple scattering is several times smaller
    assert marker_sigma_ns(marker_experiment(False), z_nm) < 0.3 * model


def test_marker_sigma_grows_with_depth_and_vanishes_at_surface():
    exp = marker_experiment(True, only_ms=True)
    s = [marker_sigma_ns(exp, z) for z in (0.5, 30.0, 60.0, 100.0, 200.0)]
    assert s[0] < 0.1 * s[1]
    assert all(b > a for a, b in zip(s, s[1:]))


# ------------------------------------------------------------------ counts conserved, switch, no NaN

def _thin_stack(ms, **kw):
    """Cu 20 nm / LiPON 80 nm on nothing: the 1024-channel window holds every spectrum."""
    sample = Sample([Layer("Cu", thickness_nm=20.0, density_g_cm3=8.96),
                     Layer("Li2.0PO2.6N0.9", thickness_nm=80.0, density_g_cm3=2.5)])
    det = Detector(flight_length_m=0.6, solid_angle_msr=1.0, calibration_a_ns=0.15, calibration_b_ns=20.0,
                   n_channels=1024, timing_resolution_ps=150.0, foils=[Foil("C", thickness_ug_cm2=3.0)])
    return Experiment(Beam("63Cu", 9.0, fluence=1e12), Geometry(70, 70, 40, 0.05, 0.3), det, sample,
                      ["Li", "P", "O", "N"], Options(multiple_scattering=ms, **kw))


def test_multiple_scattering_moves_counts_and_creates_none():
    # same bricks in both (sublayers not widened with the sigma: that would change the yield
    # quadrature by ~1e-5, not the physics)
    on = simulate(_thin_stack(True, max_sigma_fraction=0.0))
    off = simulate(_thin_stack(False, max_sigma_fraction=0.0))
    for el in ("Li", "P", "O", "N"):
        a = float(on.counts.sel(element=el).sum())
        b = float(off.counts.sel(element=el).sum())
        assert a == pytest.approx(b, rel=1e-6), el
    # and it does spread the spectra: the Li edges (LiPON top and bottom) are less steep
    steep = [float(np.abs(np.diff(d.counts.sel(element="Li").values)).max()) for d in (on, off)]
    assert steep[0] < 0.8 * steep[1]


def test_option_validated_and_off_without_resolution():
    with pytest.raises(RecoilsimError, match="multiple_scattering"):
        Options(multiple_scattering="yes")
    assert prepare(_thin_stack(True, resolution=False)).options.multiple_scattering is False
    assert prepare(_thin_stack(True)).options.multiple_scattering is True


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ion=st.sampled_from(["63Cu", "35Cl", "127I", "4He", "16O"]), energy=st.floats(2.0, 60.0),
       inc=st.floats(5.0, 85.0), ext=st.floats(5.0, 85.0), cu_nm=st.floats(0.5, 200.0),
       film_nm=st.floats(1.0, 3000.0), light=st.sampled_from(["Li", "H", "C"]))
def test_no_nan_for_valid_experiments(ion, energy, inc, ext, cu_nm, film_nm, light):
    phi = 180.0 - inc - ext
    if not 5.0 <= phi <= 85.0:
        return
    sample = Sample([Layer("Cu", thickness_nm=cu_nm, density_g_cm3=8.96),
                     Layer({light: 0.3, "O": 0.7}, thickness_nm=film_nm, density_g_cm3=2.0),
                     Layer("Si", thickness_nm=5e4, density_g_cm3=2.33)])
    det = Detector(flight_length_m=0.6, solid_angle_msr=1.0, calibration_a_ns=0.2, calibration_b_ns=10.0,
                   n_channels=1024, timing_resolution_ps=150.0, foils=[Foil("C", thickness_ug_cm2=3.0)])
    exp = Experiment(Beam(ion, energy, fluence=1e12), Geometry(inc, ext, phi, 0.05, 0.3), det, sample,
                     [light, "O"], Options(multiple_scattering=True))
    ds = simulate(exp)
    c = ds.counts.values
    assert np.all(np.isfinite(c)) and np.all(c >= 0.0)
