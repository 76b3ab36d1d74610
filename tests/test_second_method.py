"""Second-method check of the whole forward model (issue 4 validation).

``simulate`` (kernels/bricks.py) uses range tables per uniform block, exit tables carried down the
stack, adaptive bricks and Gaussian spreading. Here the bare spectrum of the reference case
(9 MeV 63Cu on Cu 30 nm / LiPON / LATP, ``Options(resolution=False)``) is derived again by the
plainest route that shares none of that machinery:

* depth grid: thin slices of ``DX`` (1e15 at/cm2) inside uniform strata (a layer; a layer with
  a depth profile is cut into thin strata with the composition at their middle), never
  straddling a layer boundary;
* beam energy at a depth: RK4 transport (``kernels.transport.energy_after``, cubic log-log
  stopping lookup, adaptive steps) along the incoming path ``x / cos(alpha)`` from the top of
  the stratum, whose top energy is carried down the same way;
* recoil energy ``K E`` with K = 4 M1 M2 cos^2(phi) / (M1 + M2)^2 (written out here);
* exit energy: RK4 from the depth to the stratum top, then ``stack_energy_after`` through every
  stratum above (path / cos(beta)) and the T1 foil;
* flight time: relativistic, v = c sqrt(1 - 1/gamma^2), gamma = 1 + E / (M u c^2) (written out);
* yield of a slice: Q Omega sigma(E_beam at the slice middle) n_iso dx / cos(alpha) with Q the
  number of ions, Omega in sr (msr * 1e-3), sigma in mb/sr (* 1e-27 cm2/mb, screened Rutherford
  from ``kernels.cross_section``), n_iso the isotope's atomic fraction (element fraction times
  isotopic abundance) and dx in 1e15 at/cm2 (* 1e15 atoms/cm2);
* channels: every slice spread uniformly between the flight times at its two boundaries and
  integrated over the channel edges t = a (c -+ 1/2) + b (the histogram of the piecewise-linear
  depth -> time map).

Both routes read the same SRIM-2013 + ZBL tables (``stopping.particle_tables``); the stopping
lookups differ (cubic log-log in the transport, log-log linear in the kernel's block tables:
< 4e-5 apart in the window). Discretisation error of this route, measured by halving DX
(2 -> 1 -> 0.5): totals move by < 1e-7, 10/20/40-channel block sums by < 3e-6 (2 -> 1).

Measured agreement (reference case, 10 isotopes; the assertions leave a margin over these):

* totals in the window: <= 1.6e-5 relative;
* block sums where a block holds > 20 % of the isotope's largest block: <= 1.9e-4 for 5
  channels, <= 8e-5 for 10, 20 and 40 channels (single channels 1.3e-3: both histograms are
  exact only for their own piecewise-linear depth -> time maps);
* edges (channel of the surface edge of 12C/13C, of the Cu/LiPON interface for every isotope):
  the kernel's edges sit 0.002 - 0.015 channel (0.2 - 1.6 ps) later than the exact ones of this
  route; the kernel's channel -> depth map agrees to 0.027 channel;
* time sigma with resolution on (beam and recoil straggling only, geometric spreads and timing
  off; ``transport.stack_energy_variance_after`` (Tschalaer's (S_out/S_in)^2 propagation,
  Simpson on RK4 steps) times |dt/dE|): <= 6e-4 relative at 300 .. 2000 x 1e15 at/cm2;
* splitting the top 250 nm of LiPON into 1, 31 or 250 identical blocks: 7Li times within
  0.0065 channel of this route, totals 1.2e-5, whatever the split.

Two kernel faults this test found, both fixed in the kernels (then kernels/slab.py) (2026-11-25): (1) a sawtooth
ripple of +-0.3..0.5 % per channel with the period of one stopping-table cell, because the block
range tables R(E) were interpolated log-log, so that 1/(dR/dE) swung by +-0.41 % around S(E)
inside each cell (10-channel blocks then agreed only to 0.28 %); R is now interpolated as the
exact integral of the interpolated 1/S. (2) exit tables resampled at every block boundary with
linear log-log interpolation and a loss threshold that crept up from the table bottom: 250
identical 1 nm blocks moved 7Li by up to 1.03 channel and its window total by -0.2 %, and 16O
made deep in the sample landed 13 to 140 channels late; the exit energy is now a cubic Hermite
interpolant with its derivative and the threshold is carried explicitly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from recoilsim.model.elements import element, natural_isotopes
from recoilsim.model.experiment import SCREENING, Experiment, reference_experiment
from recoilsim.model.instrument import Geometry
from recoilsim.kernels.cross_section import recoil_cross_section
from recoilsim.kernels.transport import (energy_after, stack_energy_after,
                                         stack_energy_variance_after)
from recoilsim.model.sample import Layer, Profile, Sample
from recoilsim.forward.engine import prepare, run
from recoilsim.forward.simulate import simulate
from recoilsim.stopping.tables import particle_tables

U_MEV = 931.49410242  # u c^2 in MeV (CODATA 2018)
C_M_PER_NS = 0.299792458
DX = 2.0  # slice thickness, 1e15 at/cm2 (0.2 nm of LiPON, 0.23 nm of Cu)
CHUNK = 100  # slices computed before checking whether every recoil has left the window


def _tof_ns(E, mass_u, L_m):
    """Relativistic flight time (ns) over L_m; inf for E <= 0."""
    E = np.asarray(E, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        g = 1.0 + E / (mass_u * U_MEV)
        beta = np.sqrt(1.0 - 1.0 / (g * g))
        return np.where(E > 0.0, L_m / (beta * C_M_PER_NS), np.inf)


@dataclass
class _Route:
    exp: Experiment
    elements: list
    isos: list
    S: np.ndarray  # (1 + n_iso, n_el, n_grid): beam, then each recoil isotope
    W: np.ndarray
    lnE0: float
    dlnE: float
    strata: list  # (top, bottom, stopping fractions (n_el,), layer index), from the surface
    foil_frac: np.ndarray
    foil_path: float
    cos_in: float
    cos_out: float
    phi: float


def _setup(exp: Experiment, fine: float = DX) -> _Route:
    det = exp.detector
    elements = exp.sample.elements()
    for f in det.foils:
        for e in f.fractions:
            if e not in elements:
                elements.append(e)
    beam = exp.beam.isotope
    isos = exp.recoil_isotopes()
    tab = particle_tables([(beam.Z, beam.mass_u)] + [(i.Z, i.mass_u) for i in isos],
                          [element(e).number for e in elements], straggling=exp.options.straggling)
    strata = []
    x0 = 0.0
    for li, layer in enumerate(exp.sample.layers):
        T = layer.areal_density_1e15
        cuts = np.array([0.0, T])
        if layer.profiles:
            hi = min(T, max(float(p.depth[-1]) * (layer.nm_to_1e15 if p.depth_unit == "nm" else 1.0)
                            for p in layer.profiles))
            n = max(1, int(math.ceil(hi / fine)))
            cuts = np.unique(np.concatenate([np.linspace(0.0, hi, n + 1), [T]]))
        sf = np.array([layer.stopping_factors.get(e, 1.0) for e in elements])
        fr = layer.fractions_at(0.5 * (cuts[1:] + cuts[:-1]), elements)
        for k in range(len(cuts) - 1):
            strata.append((x0 + cuts[k], x0 + cuts[k + 1], fr[k] * sf, li))
        x0 += T
    foil_frac = np.zeros(len(elements))
    foil_path = 0.0
    for f in det.foils:
        for e, x in f.fractions.items():
            foil_frac[elements.index(e)] += x * f.areal_density_1e15
        foil_path += f.areal_density_1e15
    if foil_path > 0:
        foil_frac /= foil_path
    g = exp.geometry
    return _Route(exp, elements, isos, tab.S, tab.W, tab.lnE0, tab.dlnE, strata, foil_frac, foil_path,
                  math.cos(math.radians(g.incidence_deg)), math.cos(math.radians(g.exit_deg)),
                  math.radians(g.recoil_deg))


def _K(r: _Route, s: int) -> float:
    M1, M2 = r.exp.beam.isotope.mass_u, r.isos[s].mass_u
    return 4.0 * M1 * M2 * math.cos(r.phi) ** 2 / (M1 + M2) ** 2


def _out_stack(r: _Route, si: int):
    """Strata above stratum si (nearest first) and the foil: fractions and path lengths."""
    fr = [st[2] for st in r.strata[:si]][::-1]
    p = [(st[1] - st[0]) / r.cos_out for st in r.strata[:si]][::-1]
    if r.foil_path > 0:
        fr.append(r.foil_frac)
        p.append(r.foil_path)
    return np.array(fr, dtype=float).reshape(-1, len(r.elements)), np.array(p, dtype=float)


def _bare(r: _Route, dx: float = DX):
    """Bare spectra (n_iso, n_ch) of the second route, and the slice boundaries' depths and
    times (n_iso, n_boundaries) as (x, t)."""
    exp, det = r.exp, r.exp.detector
    beam = exp.beam.isotope
    M1 = beam.mass_u
    L = det.flight_length_m
    edges = det.calibration_a_ns * (np.arange(det.n_channels + 1) - 0.5) + det.calibration_b_ns
    t_end = edges.max()
    # counts per (1e15 at/cm2 of the isotope) per (mb/sr): Q * Omega[sr] * 1e-27 cm2/mb * 1e15 / cos(alpha)
    yf = exp.beam.fluence * det.solid_angle_msr * 1e-3 * 1e-27 * 1e15 / r.cos_in
    scr = SCREENING[exp.options.screening]
    abund = [[{i.A: i.abundance for i in natural_isotopes(iso.symbol, layer.enrichment.get(iso.symbol))}
              .get(iso.A, 0.0) if iso.symbol in layer.elements() else 0.0 for layer in exp.sample.layers]
             for iso in r.isos]
    tops = exp.sample.boundaries_1e15()
    n_iso = len(r.isos)
    xs, ts, ys = [], [], []
    Eb_top = exp.beam.energy_MeV
    done = False
    for si, (top, bot, frac, li) in enumerate(r.strata):
        up_fr, up_p = _out_stack(r, si)
        layer = exp.sample.layers[li]
        n = max(1, int(math.ceil((bot - top) / dx - 1e-9)))
        h = (bot - top) / n
        k0 = 0
        while k0 < n and not done:
            k1 = min(n, k0 + CHUNK)
            xb = top + h * np.arange(k0, k1 + 1)
            xm = 0.5 * (xb[1:] + xb[:-1])
            Eb = np.array([energy_after(Eb_top, M1, r.S[0], frac, r.lnE0, r.dlnE, (x - top) / r.cos_in) for x in xb])
            Em = np.array([energy_after(Eb_top, M1, r.S[0], frac, r.lnE0, r.dlnE, (x - top) / r.cos_in) for x in xm])
            fr_m = layer.fractions_at(xm - tops[li], r.elements)
            tb = np.empty((n_iso, len(xb)))
            y = np.empty((n_iso, len(xm)))
            for s, iso in enumerate(r.isos):
                K = _K(r, s)
                e_out = np.empty(len(xb))
                for j, x in enumerate(xb):
                    E = energy_after(K * Eb[j], iso.mass_u, r.S[s + 1], frac, r.lnE0, r.dlnE, (x - top) / r.cos_out)
                    if E > 0.0 and up_p.size:
                        E = stack_energy_after(E, iso.mass_u, r.S[s + 1], up_fr, r.lnE0, r.dlnE, up_p)
                    e_out[j] = E
                tb[s] = _tof_ns(e_out, iso.mass_u, L)
                sig = np.array([recoil_cross_section(beam.Z, M1, iso.Z, iso.mass_u, E, r.phi, scr) for E in Em])
                y[s] = yf * sig * fr_m[:, r.elements.index(iso.symbol)] * abund[s][li] * h
            xs.append(xb)
            ts.append(tb)
            ys.append(y)
            if np.all(tb[:, -1] > t_end) or Eb[-1] <= 0.0:
                done = True
            k0 = k1
        if done:
            break
        Eb_top = energy_after(Eb_top, M1, r.S[0], frac, r.lnE0, r.dlnE, (bot - top) / r.cos_in)
    spec = np.zeros((n_iso, det.n_channels))
    for s in range(n_iso):
        ta = np.concatenate([t[s, :-1] for t in ts])
        tb = np.concatenate([t[s, 1:] for t in ts])
        Y = np.concatenate([y[s] for y in ys])
        ok = np.isfinite(ta) & np.isfinite(tb) & (Y > 0)
        lo, hi, Y = np.minimum(ta, tb)[ok], np.maximum(ta, tb)[ok], Y[ok]
        w = hi - lo
        with np.errstate(divide="ignore", invalid="ignore"):
            frac_below = np.where(w[:, None] > 0, np.clip((edges[None, :] - lo[:, None]) / w[:, None], 0.0, 1.0),
                                  (edges[None, :] >= lo[:, None]).astype(float))
        c = np.abs(np.diff(Y @ frac_below))
        c[c < 1e-12 * max(c.max(), 1e-300)] = 0.0  # round-off of the matrix product
        spec[s] = c
    # slice boundaries: each chunk repeats the previous chunk's last boundary
    x_all = np.concatenate([xs[0][:1]] + [x[1:] for x in xs])
    t_all = np.concatenate([ts[0][:, :1]] + [t[:, 1:] for t in ts], axis=1)
    return spec, x_all, t_all


def _time_sigma(r: _Route, s: int, x: float):
    """(flight time, time sigma from straggling) of isotope s made at depth x (transport route)."""
    exp = r.exp
    M1 = exp.beam.isotope.mass_u
    iso = r.isos[s]
    fr, p = [], []
    for top, bot, frac, _ in r.strata:
        if top >= x:
            break
        fr.append(frac)
        p.append(min(bot, x) - top)
    fr, p = np.array(fr), np.array(p)
    Eb, vb = stack_energy_variance_after(exp.beam.energy_MeV, M1, r.S[0], r.W[0], fr, r.lnE0, r.dlnE,
                                         p / r.cos_in, 0.0)
    K = _K(r, s)
    fro = np.vstack([fr[::-1], r.foil_frac[None, :]])
    po = np.concatenate([p[::-1] / r.cos_out, [r.foil_path]])
    Ed, vd = stack_energy_variance_after(K * Eb, iso.mass_u, r.S[s + 1], r.W[s + 1], fro, r.lnE0, r.dlnE,
                                         po, K * K * vb)
    L = exp.detector.flight_length_m
    h = 1e-5 * Ed
    dtdE = float(_tof_ns(Ed + h, iso.mass_u, L) - _tof_ns(Ed - h, iso.mass_u, L)) / (2 * h)
    return float(_tof_ns(Ed, iso.mass_u, L)), abs(dtdE) * math.sqrt(vd)


def _channel(exp, t):
    return (t - exp.detector.calibration_b_ns) / exp.detector.calibration_a_ns


def _blocks(c, B):
    n = len(c) // B * B
    return c[:n].reshape(-1, B).sum(axis=1)


# ------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def bare():
    exp = reference_experiment(resolution=False)
    r = _setup(exp)
    spec, x, t = _bare(r)
    return exp, r, spec, x, t, simulate(exp)


# ------------------------------------------------------------------------------ tests

def test_totals_in_window(bare):
    exp, r, spec, _, _, ds = bare
    assert len(r.isos) == 10
    for s, iso in enumerate(r.isos):
        k = float(ds.counts_isotope.sel(isotope=iso.name).sum())
        m = float(spec[s].sum())
        assert m > 0, iso.name
        assert k == pytest.approx(m, rel=1e-4), iso.name  # measured <= 1.6e-5


@pytest.mark.parametrize("B, tol", [(5, 5e-4), (10, 3e-4), (20, 3e-4), (40, 3e-4)])
def test_block_sums(bare, B, tol):
    """Block sums of 5 to 40 channels (a table-cell ripple would show here: module docstring)."""
    exp, r, spec, _, _, ds = bare
    for s, iso in enumerate(r.isos):
        m = _blocks(spec[s], B)
        k = _blocks(ds.counts_isotope.sel(isotope=iso.name).values, B)
        big = m > 0.2 * m.max()
        assert big.any(), iso.name
        assert np.max(np.abs(k[big] / m[big] - 1)) < tol, (iso.name, B)


def _leading_edge(c):
    """Sub-channel position of a rising bare edge (the edge channel is partly filled)."""
    k = int(np.flatnonzero(c)[0])
    return k + 0.5 - c[k] / c[k + 1]


def _trailing_edge(c):
    k = int(np.flatnonzero(c)[-1])
    return k - 0.5 + c[k] / c[k - 1]


def test_edges_surface_and_interface(bare):
    exp, r, spec, x, t, ds = bare
    x_if = exp.sample.boundaries_1e15()[1]
    assert np.any(np.isclose(x, x_if, rtol=0, atol=1e-9)) and x[0] == 0.0  # boundaries on the grid
    i_if = int(np.argmin(np.abs(x - x_if)))
    for s, iso in enumerate(r.isos):
        k = ds.counts_isotope.sel(isotope=iso.name).values
        interface = _channel(exp, t[s, i_if])
        # the estimator itself, on this route's own spectrum: exact to < 1e-3 channel
        if iso.symbol == "C":
            surface = _channel(exp, t[s, 0])
            assert _leading_edge(spec[s]) == pytest.approx(surface, abs=2e-3)
            assert _leading_edge(k) == pytest.approx(surface, abs=0.03), iso.name  # measured 0.007
            assert _trailing_edge(spec[s]) == pytest.approx(interface, abs=2e-3)
            assert _trailing_edge(k) == pytest.approx(interface, abs=0.03), iso.name  # measured 0.004
        else:
            assert _leading_edge(spec[s]) == pytest.approx(interface, abs=2e-3)
            assert _leading_edge(k) == pytest.approx(interface, abs=0.03), iso.name  # measured <= 0.015
    # the reference calibration's stated positions (REFERENCE_ASSUMPTIONS): 7Li at the
    # interface near channel 570
    assert _channel(exp, t[[i.name for i in r.isos].index("7Li"), i_if]) == pytest.approx(570.0, abs=0.5)


def test_channel_depth_map(bare):
    """The dataset's depth of origin per channel, sent through this route's depth -> time map,
    lands back on the channel's own time."""
    exp, r, spec, x, t, ds = bare
    ch = np.arange(exp.detector.n_channels)
    t_ch = exp.detector.calibration_a_ns * ch + exp.detector.calibration_b_ns
    for name in ("7Li", "16O", "14N", "31P"):
        s = [i.name for i in r.isos].index(name)
        d = ds.isotope_depth_1e15.sel(isotope=name).values
        ok = np.isfinite(d)
        assert ok.sum() > 100, name
        back = np.interp(d[ok], x, t[s])
        assert np.max(np.abs(_channel(exp, back) - _channel(exp, t_ch[ok]))) < 0.06, name  # measured 0.027


def test_li_profile_totals_and_blocks():
    """The paper's Li excess profile (30 nm, 31 one-nm blocks in the kernel; here 0.2-nm strata
    with continuous fractions for the yield). Measured: totals <= 1.6e-5, 20-channel blocks
    <= 1.1e-4."""
    prof = Profile("Li", [0, 30], [1.25, 1.0], kind="ratio")
    exp = reference_experiment(li_profile=prof, recoils=("Li", "O"), resolution=False)
    r = _setup(exp)
    spec, _, _ = _bare(r)
    ds = simulate(exp)
    for s, iso in enumerate(r.isos):
        k = ds.counts_isotope.sel(isotope=iso.name).values
        assert k.sum() == pytest.approx(spec[s].sum(), rel=1e-4), iso.name
        m20, k20 = _blocks(spec[s], 20), _blocks(k, 20)
        big = m20 > 0.2 * m20.max()
        assert np.max(np.abs(k20[big] / m20[big] - 1)) < 5e-4, iso.name


def test_time_sigma_straggling():
    """Kernel's brick time sigma against the transport module's energy variance (beam straggling
    K^2-scaled at the recoil, then carried out through the stack and the T1 foil) times
    |dt/dE|. Geometric spreads, multiple scattering and timing resolution are switched off,
    bricks kept narrow."""
    exp = reference_experiment(resolution=True, max_sigma_fraction=0.0, multiple_scattering=False)
    exp.geometry = Geometry(70.0, 70.0, 40.0)
    exp.detector.timing_resolution_ps = 0.0
    arrays = prepare(exp)
    bricks = run(arrays)
    n, ta, tb, sig_t, x_mid = bricks.n, bricks.ta, bricks.tb, bricks.sig_t, bricks.x_mid
    r = _setup(exp)
    names = [i.name for i in r.isos]
    assert [sp.label for sp in arrays.species] == names
    worst = 0.0
    for name in ("7Li", "16O", "14N", "31P"):
        s = names.index(name)
        for xq in (300.0, 1200.0, 2000.0):
            i = int(np.argmin(np.abs(x_mid[s, :n] - xq)))
            assert ta[s, i] > 0
            t_m, sg = _time_sigma(r, s, float(x_mid[s, i]))
            assert 0.5 * (ta[s, i] + tb[s, i]) == pytest.approx(t_m, abs=0.05 * exp.detector.calibration_a_ns)
            assert sg > 0.1  # ns: straggling dominates the 0.1 ns channel here
            worst = max(worst, abs(sig_t[s, i] / sg - 1))
    assert worst < 3e-3  # measured 5.9e-4


def test_split_uniform_layer_into_blocks():
    """Cutting the top 250 nm of LiPON into 250 identical layers changes no physics; this route
    is invariant to it (< 0.002 channel, totals 3e-9), and so is the kernel (measured 0.0065
    channel and 1.2e-5 against this route for 1, 31 and 250 blocks; before the fix of the exit
    tables: 1.03 channel and -2.0e-3 with 250 blocks)."""
    base = reference_experiment(recoils=("7Li",), resolution=False)
    lipon = base.sample.layers[1]
    top = 250.0 * lipon.nm_to_1e15
    layers = [base.sample.layers[0]]
    layers += [Layer("Li2.0PO2.6N0.9", areal_density_1e15=top / 250, name=f"LiPON{k}") for k in range(250)]
    layers += [Layer("Li2.0PO2.6N0.9", areal_density_1e15=lipon.areal_density_1e15 - top, name="LiPON"),
               base.sample.layers[2]]
    exp = Experiment(base.beam, base.geometry, base.detector, Sample(layers), ["7Li"], base.options)
    r = _setup(base)  # the unsplit sample: the same physics
    spec, x, t = _bare(r)
    ds = simulate(exp)
    k = ds.counts_isotope.values[0]
    d = ds.isotope_depth_1e15.values[0]
    ok = np.isfinite(d)
    ch = np.arange(exp.detector.n_channels)[ok]
    shift = np.abs(_channel(exp, np.interp(d[ok], x, t[0])) - ch)
    assert np.max(shift) < 0.02
    assert k.sum() == pytest.approx(spec[0].sum(), rel=5e-5)
