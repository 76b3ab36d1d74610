"""Energy spectra from TOF spectra (Jacobian dt/dE), per-element views with time axis, own depth
axis and layer boundaries, and measured data laid over a simulation without a fit."""

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from recoilsim.analysis.energy_spectra import energy_spectra
from recoilsim.cli import app
from recoilsim.forward.simulate import simulate
from recoilsim.kernels.kinematics import flight_time_ns, recoil_factor
from recoilsim.model.elements import isotope
from recoilsim.model.experiment import reference_experiment
from recoilsim.plots.views import layer_boundary_times, pearson_residuals, plot_element_panels, plot_overview
from recoilsim.stopping.tables import energy_loss

U_MEV = 931.49410242
C_M_PER_NS = 0.299792458


@pytest.fixture(scope="module")
def ref():
    return simulate(reference_experiment())


def test_energy_spectra_keep_every_count(ref):
    es = energy_spectra(ref, n_bins=500)
    width = float(np.diff(es["energy_edges_MeV"].values)[0])
    np.testing.assert_allclose(es["counts_per_MeV"].sum("energy").values * width,
                               ref["counts"].sum("channel").values, rtol=1e-9)


def test_energy_spectrum_is_tof_spectrum_times_jacobian(ref):
    """31P (one isotope): counts/MeV at E = counts/channel at t(E) / (|dE/dt| * a), with the
    relativistic dE/dt = -m c^2 gamma^3 beta^2 / t (beta = L / (c t)) derived by hand."""
    es = energy_spectra(ref, n_bins=2000)
    rec = json.loads(ref.attrs["experiment"])
    L, a = rec["detector"]["flight_length_m"], rec["detector"]["calibration_a_ns"]
    mc2 = isotope("31P").mass_u * U_MEV
    t = ref["time_ns"].values
    y = ref["counts"].sel(element="P").values
    for k in (700, 800, 900):  # channels on the P plateau (LiPON)
        beta = L / (C_M_PER_NS * t[k])
        gamma = 1.0 / math.sqrt(1.0 - beta * beta)
        dEdt = mc2 * gamma ** 3 * beta * beta / t[k]
        e_k = mc2 * (gamma - 1.0)
        j = int(np.argmin(np.abs(es["energy_MeV"].values - e_k)))
        got = float(es["counts_per_MeV"].sel(element="P").values[j])
        assert got == pytest.approx(y[k] / (dEdt * a), rel=0.02)


def test_li_layer_boundary_at_the_interface_time(ref):
    """The Cu/LiPON boundary on the Li panel lies at the flight time of 7Li recoiled at the
    interface, derived step by step: 9 MeV 63Cu crosses 30 nm Cu at 70 deg, recoils 7Li with
    K E at 40 deg, 7Li crosses the Cu out at 70 deg and the 3 ug/cm2 C foil, flies 0.6 m."""
    exp = reference_experiment()
    cu = exp.sample.layers[0]
    e_in = energy_loss("63Cu", cu.fractions, cu.areal_density_1e15, 9.0, 70.0).energy_out
    li7 = isotope("7Li")
    k = recoil_factor(isotope("63Cu").mass_u, li7.mass_u, math.radians(40.0))
    e_out = energy_loss("7Li", cu.fractions, cu.areal_density_1e15, k * e_in, 70.0).energy_out
    foil = exp.detector.foils[0]
    e_fly = energy_loss("7Li", foil.fractions, foil.areal_density_1e15, e_out, 0.0).energy_out
    t_expected = flight_time_ns(e_fly, li7.mass_u, 0.6, True)
    (name, t_line), = layer_boundary_times(ref, "Li")
    assert name == "LiPON"
    assert t_line == pytest.approx(t_expected, abs=0.1039)  # within one channel


def test_views_have_time_axes_titles_and_own_depth_axes(ref, tmp_path):
    fig = plot_overview(ref, tmp_path / "o.png")
    assert (tmp_path / "o.png").stat().st_size > 1000
    assert fig._suptitle.get_text() == "Kurihara2024-reference"
    assert [ax.get_xlabel() for ax in fig.axes] == ["time of flight (ns)", "energy in flight (MeV)"]
    fig = plot_element_panels(ref, tmp_path / "e.svg", elements=["Li", "P"])
    main = [ax for ax in fig.axes if ax.get_ylabel() == "counts / channel"]
    assert len(main) == 2 and fig.axes[-1].get_xlabel() == "time of flight (ns)"
    for ax, el in zip(main, ["Li", "P"]):  # each panel: its own element's depth axis, only that one
        assert [c.get_xlabel() for c in ax.child_axes] == [f"depth of {el} origin (nm)"]
        xs = [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert xs == pytest.approx([t for _, t in layer_boundary_times(ref, el)])


def test_pearson_residuals():
    r = pearson_residuals(np.array([4.0, 9.0, 1.0]), np.array([4.0, 4.0, 0.0]))
    assert r[0] == 0.0 and r[1] == pytest.approx(2.5) and np.isnan(r[2])


def test_cli_simulate_measured_overlay(tmp_path):
    exp_toml = tmp_path / "e.toml"
    exp_toml.write_text('reference = true\nrecoils = ["Li", "O"]\n')
    ds = simulate(reference_experiment(recoils=("Li", "O")))
    rng = np.random.default_rng(3)
    meas = ds.copy()
    meas["counts"] = (("element", "channel"), rng.poisson(ds["counts"].values).astype(float))
    rows = ["channel,Li,O"] + [f"{c},{int(a)},{int(b)}" for c, a, b in zip(
        ds["channel"].values, *meas["counts"].values)]
    (tmp_path / "meas.csv").write_text("\n".join(rows) + "\n")
    r = CliRunner().invoke(app, ["simulate", str(exp_toml), "-o", str(tmp_path / "out"), "-f", "png",
                                 "--measured", str(tmp_path / "meas.csv")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out" / "e_measured.png").is_file()
    assert (tmp_path / "out" / "e_views.png").is_file()
    # Poisson data of the simulation itself: Pearson chi2 per channel near 1
    line = [ln for ln in r.output.splitlines() if ln.strip().startswith("Li")][-1]
    chi2 = float(line.split()[-1])
    assert 0.7 < chi2 < 1.4
