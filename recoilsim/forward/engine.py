"""The one forward engine: Experiment -> typed kernel inputs -> bricks -> spectra.

Every route to the brick kernel goes through here: :func:`recoilsim.forward.simulate.simulate`,
:class:`recoilsim.forward.linear_model.LinearModel` (and through it batch screening), the
fit's full-model check, and the dask sweep (which calls ``simulate``).

* :func:`prepare` turns an :class:`~recoilsim.model.experiment.Experiment` into
  :class:`EngineInputs`: the Python-side description (species, elements, stopping tables) and
  the kernel's NamedTuples (:mod:`recoilsim.kernels.brick_types`). Inputs the kernel cannot
  handle are refused here with a :class:`~recoilsim.errors.RecoilsimError` naming the field.
* :func:`run` calls :func:`recoilsim.kernels.bricks.simulate_bricks`, warns when the brick
  budget (:data:`MAX_BRICKS`) ran out and refuses non-finite bricks.
* :func:`spread` turns bricks into channel spectra for any calibration
  (:func:`recoilsim.kernels.spreading.spread_bricks`) and refuses a non-finite result.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import RecoilsimError
from ..kernels import brick_types as kt
from ..kernels.bricks import simulate_bricks
from ..kernels.cross_section import recoil_cross_section_coeffs, scatter_cross_section_coeffs
from ..kernels.kinematics import C_M_PER_NS, energy_from_time, recoil_factor, scatter_factor
from ..kernels.spreading import spread_bricks
from ..model.elements import element, natural_isotopes
from ..model.experiment import SCREENING, Experiment
from ..model.instrument import fwhm_to_sigma
from ..io.stopping_choice import stopping_source, straggling_tables
from ..stopping.sources import source_label
from ..stopping.tables import ParticleTables, StoppingSource, particle_tables
from .species import Species, build_species
from .stack import (beam_depth_bound, cut_blocks, loss_bound_thickness, merge_foils, perturbation_blocks,
                    perturbation_groups, sample_blocks, to_columns)

MB_CM2 = 1e-27
MAX_BRICKS = 20000
#: The stack is cut at this many times :func:`~recoilsim.forward.stack.beam_depth_bound`. Nothing
#: comes from below 1 times the bound; the cut only keeps a block of absurd thickness (1e300
#: at/cm2) from making the kernel's smallest depth step (1e-7 of its block) coarse, and is far
#: enough down to leave every realistic stack untouched (the reference's 150 um LATP substrate
#: ends at 92 times the bound).
DEPTH_BOUND_MARGIN = 1000.0
#: ``profile_model='perturbation'``: its composition steps are ``profile_step_nm`` cut in this many (free in
#: the kernel: the depth profile is read from cumulative tables), and its bricks at most this many
#: ``profile_step_nm`` wide (at the leading edge of a layer under a cap, bricks only limited by their width in
#: time were 1e-3 of a spectrum's peak from narrow ones; benchmarks/README.md, "Session 11")
PERTURBATION_SUBSTEPS = 4
PERTURBATION_BRICK_STEPS = 2.0


@dataclass(frozen=True)
class EngineInputs:
    """An experiment prepared for the brick kernel.

    ``species``, ``elements`` and ``tables`` describe the problem on the Python side (labels,
    masses, the element order of the composition arrays, the stopping tables); the other
    fields are the kernel's typed arguments, in the order :func:`run` passes them.
    ``columns`` names the composition columns of the stack and the tables: (element, stopping
    source) pairs, element by element; one per element when every layer takes the experiment's
    source.
    """

    name: str
    species: list[Species]
    elements: list[str]
    tables: ParticleTables
    particles: kt.Particles
    stack: kt.Stack
    beam: kt.Beam
    outgoing: kt.Species
    geometry: kt.Geometry
    detector: kt.Detector
    options: kt.Options
    columns: tuple = ()

    def element_fractions(self, symbol: str) -> np.ndarray:
        """Atomic fraction of ``symbol`` in each block (summed over its stopping-source columns)."""
        cols = [k for k, (e, _) in enumerate(self.columns) if e == symbol]
        return self.stack.fracW[:, cols].sum(axis=1)


_TABLE_CACHE: dict = {}


def _cached_tables(parts, zs, straggling, source, stg=""):
    """particle_tables with a small in-process cache (tables depend only on these inputs)."""
    stg_rows = straggling_tables(stg)  # read once per path and modification time
    stg_key = tuple((t.z1, t.z2, t.energy_MeV_u.tobytes(), t.bohr_ratio.tobytes()) for t in stg_rows)
    key = (parts, zs, straggling, id(source) if source is not None else None, stg_key)
    tab = _TABLE_CACHE.get(key)
    if tab is None:
        if len(_TABLE_CACHE) > 32:
            _TABLE_CACHE.clear()
        tab = particle_tables(list(parts), list(zs), straggling=straggling, source=source, straggling_tables=stg_rows)
        _TABLE_CACHE[key] = tab
    return tab


def stopping_record(exp: Experiment, source: StoppingSource | None = None) -> str:
    """The text ``ds.attrs["stopping"]`` records: the source's label, or, when layers differ,
    each layer's and the foils' (``source`` replaces the experiment's own, as in :func:`prepare`)."""
    default = source_label(source if source is not None else stopping_source(exp.options.stopping))
    specs = layer_sources(exp)
    if all(s == exp.options.stopping for s in specs):
        return default
    parts = [f"layer {li} '{layer.name}': "
             + (default if specs[li] == exp.options.stopping else source_label(stopping_source(specs[li])))
             for li, layer in enumerate(exp.sample.layers)]
    return "; ".join(parts + [f"other layers and foils: {default}"])


def layer_sources(exp: Experiment) -> list[str]:
    """The stopping source of every layer: its own ``stopping``, else ``options.stopping``."""
    return [layer.stopping or exp.options.stopping for layer in exp.sample.layers]


def stopping_columns(exp: Experiment, elements: list[str]) -> list[tuple[str, str]]:
    """The composition columns: (element, source) for every element with the experiment's source
    (the foils take it), and for each other source a layer names, the elements of those layers;
    element by element, so that inside any block the non-zero columns keep the element order."""
    default = exp.options.stopping
    specs = layer_sources(exp)
    cols = []
    for e in elements:
        cols.append((e, default))
        for li, layer in enumerate(exp.sample.layers):
            if specs[li] != default and e in layer.elements() and (e, specs[li]) not in cols:
                cols.append((e, specs[li]))
    return cols


def _column_tables(exp, parts, columns, source):
    """ParticleTables over the columns: each source's tables for its elements, side by side."""
    out = None
    for spec in dict.fromkeys(s for _, s in columns):
        idx = [k for k, (_, s) in enumerate(columns) if s == spec]
        src = source if source is not None and spec == exp.options.stopping else stopping_source(spec)
        tab = _cached_tables(tuple(parts), tuple(element(columns[k][0]).number for k in idx),
                             exp.options.straggling, src, exp.options.straggling_table)
        if out is None:
            S = np.empty((len(parts), len(columns), tab.S.shape[2]))
            W = np.empty_like(S)
            out = dataclasses.replace(tab, S=S, W=W, elements=tuple(element(e).number for e, _ in columns))
        out.S[:, idx] = tab.S
        out.W[:, idx] = tab.W
    return out


def _check_window(exp: Experiment, t_stop: float) -> None:
    """The latest time that matters must be a positive time a particle slower than light needs."""
    det = exp.detector
    if t_stop <= 0:
        raise RecoilsimError("detector.calibration", (det.calibration_a_ns, det.calibration_b_ns),
                             "a calibration whose channels map to positive times of flight")
    t_light = det.flight_length_m / C_M_PER_NS
    if t_stop <= t_light:
        raise RecoilsimError("detector.flight_length_m", det.flight_length_m,
                             f"a flight length that particles slower than light cover within the channel "
                             f"window (its latest time is {t_stop:.4g} ns; light needs {t_light:.4g} ns)")


def _particle_grid(exp: Experiment, parts, species, tables, n_grid, t_stop):
    """First and last table node each particle needs (the beam first)."""
    det = exp.detector
    beam = exp.beam.isotope
    lnE0, dlnE = tables.lnE0, tables.dlnE
    phi = math.radians(exp.geometry.recoil_deg)
    Ks: dict[tuple, list[float]] = {}  # (Z, mass) of each outgoing particle -> its species' K
    for sp in species:
        Ks.setdefault((sp.Z, sp.mass_u), []).append(
            recoil_factor(beam.mass_u, sp.mass_u, phi) if sp.kind == 0 else
            scatter_factor(beam.mass_u, sp.target_mass_u, phi, sp.kind))

    def node(E, m):
        return (math.log(E / m) - lnE0) / dlnE

    e_table = math.exp(lnE0)  # MeV/u of the first node
    if exp.beam.energy_MeV / beam.mass_u < e_table:
        raise RecoilsimError("beam.energy_MeV", exp.beam.energy_MeV,
                             f"at least {e_table * beam.mass_u:.4g} MeV for {beam.name} "
                             f"(the stopping tables start at {e_table * 1e3:.3g} keV/u)")
    p_klo = np.zeros(len(parts), dtype=np.int64)
    p_khi = np.zeros(len(parts), dtype=np.int64)
    e_beam_lo = exp.beam.energy_MeV
    for pi, (z, m) in enumerate(parts):
        e_min = 0.5 * energy_from_time(t_stop, m, det.flight_length_m, exp.options.relativistic)
        if pi == 0:
            e_max = 1.02 * exp.beam.energy_MeV
        else:
            e_max = 1.02 * exp.beam.energy_MeV * max(Ks[z, m])
            Kmin = min(Ks[z, m])
            e_beam_lo = min(e_beam_lo, e_min / max(Kmin, 1e-12))
            if e_max < m * e_table and 2.0 * e_min < e_max:
                label = next(sp.label for sp in species if (sp.Z, sp.mass_u) == (z, m))
                raise RecoilsimError("recoils", label,
                                     f"outgoing particles the stopping tables cover: {label} leaves with at most "
                                     f"{e_max:.3g} MeV, below the tables' {e_table * 1e3:.3g} keV/u, yet would reach "
                                     "the channel window (lower the latest channel time or raise the beam energy)")
        p_klo[pi] = max(0, int(math.floor(node(max(e_min, 1e-9), m))))
        p_khi[pi] = min(n_grid - 1, int(math.ceil(node(e_max, m))) + 1)
    # the beam's grid reaches down to the beam energy that still makes a detectable particle
    p_klo[0] = max(0, min(p_klo[0], int(math.floor(node(max(0.5 * e_beam_lo, 1e-9), beam.mass_u)))))
    for pi in range(len(parts)):
        # a particle that leaves below the tables (or below the window) cannot be detected:
        # its tables keep two cells and the kernel drops it
        p_khi[pi] = max(p_khi[pi], 2)
        if p_khi[pi] - p_klo[pi] < 2:
            p_klo[pi] = max(0, p_khi[pi] - 2)
    return p_klo, p_khi


def _species_arrays(exp: Experiment, species, columns, parts, fracW, layer_of) -> kt.Species:
    """Per-species kernel arrays: particle, target, density per block, exit table, efficiency."""
    det = exp.detector
    n_layers = len(exp.sample.layers)
    layers = np.unique(layer_of).tolist()
    symbols = list(dict.fromkeys(sp.target_symbol for sp in species))
    frac = np.empty((len(symbols), fracW.shape[0]))  # each target element's fraction per block
    isotope_layers = {}  # (symbol, A) -> abundance of that isotope per layer
    for k, sym in enumerate(symbols):
        frac[k] = fracW[:, [c for c, (e, _) in enumerate(columns) if e == sym]].sum(axis=1)
        for li in layers:
            for i in natural_isotopes(sym, exp.sample.layers[li].enrichment.get(sym)):
                isotope_layers.setdefault((sym, i.A), np.zeros(n_layers))[li] = i.abundance
    abundance = np.zeros((len(species), n_layers))  # of each species' target isotope, per layer
    for si, sp in enumerate(species):
        abundance[si] = isotope_layers.get((sp.target_symbol, sp.target_A), 0.0)
    sp_dens = frac[[symbols.index(sp.target_symbol) for sp in species]] * abundance[:, layer_of]
    n_pts = max([len(v[0]) for v in det.efficiency.values()] + [1])
    eff_E = np.zeros((len(species), n_pts))
    eff_v = np.ones((len(species), n_pts))
    eff_n = np.zeros(len(species), dtype=np.int64)
    for si, sp in enumerate(species):
        if sp.element in det.efficiency:
            e_, y_ = det.efficiency[sp.element]
            eff_E[si, :len(e_)] = e_
            eff_v[si, :len(e_)] = y_
            eff_n[si] = len(e_)
    sp_p = np.array([parts.index((sp.Z, sp.mass_u)) for sp in species], dtype=np.int64)
    out_ids = sorted(set(sp_p.tolist()))
    K, dK_dphi, xs = _kinematics(exp, species)
    return kt.Species(
        particle=sp_p, kind=np.array([sp.kind for sp in species], dtype=np.int64),
        Z2=np.array([sp.target_Z for sp in species], dtype=np.int64),
        M2=np.array([sp.target_mass_u for sp in species], dtype=np.float64), density=sp_dens,
        exit_table=np.array([out_ids.index(p) for p in sp_p], dtype=np.int64),
        eff_E=eff_E, eff_v=eff_v, eff_n=eff_n, K=K, dK_dphi=dK_dphi, xs=xs)


def _kinematics(exp: Experiment, species) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per species: kinematic factor K, dK/dphi (central difference, step 1e-6 rad) and the
    cross-section coefficients (c, w, q) of :func:`~recoilsim.kernels.cross_section.cross_section_at`.

    Computed here, once per experiment, so that the brick kernel compiles no scattered-beam
    kinematics or cross sections when there is no scattered beam (it only evaluates
    c / E^2 F(w / E, q) for every species).
    """
    beam = exp.beam.isotope
    phi = math.radians(exp.geometry.recoil_deg)
    rows = [_species_kinematics(int(beam.Z), float(beam.mass_u), int(sp.target_Z), float(sp.target_mass_u), phi,
                                int(sp.kind), SCREENING[exp.options.screening]) for sp in species]
    K = np.array([r[0] for r in rows], dtype=np.float64).reshape(len(species))
    dK_dphi = np.array([r[1] for r in rows], dtype=np.float64).reshape(len(species))
    xs = np.array([r[2] for r in rows], dtype=np.float64).reshape(len(species), 3)
    return K, dK_dphi, xs


@lru_cache(maxsize=1024)
def _species_kinematics(Z1: int, M1: float, Z2: int, M2: float, phi: float, kind: int,
                        screening: int) -> tuple[float, float, tuple]:
    """K, dK/dphi and the cross-section coefficients of one species (see :func:`_kinematics`);
    cached on every argument (pure function of these scalars)."""
    h = 1e-6
    if kind == 0:
        K = recoil_factor(M1, M2, phi)
        dK = (recoil_factor(M1, M2, phi + h) - recoil_factor(M1, M2, phi - h)) / (2 * h)
        return K, dK, tuple(recoil_cross_section_coeffs(Z1, M1, Z2, M2, phi, screening))
    K = scatter_factor(M1, M2, phi, kind)
    kp = scatter_factor(M1, M2, phi + h, kind)
    km = scatter_factor(M1, M2, phi - h, kind)
    dK = (kp - km) / (2 * h) if (kp > 0 and km > 0) else 0.0
    return K, dK, tuple(scatter_cross_section_coeffs(Z1, M1, Z2, M2, phi, kind, screening))


def prepare(exp: Experiment, *, source: StoppingSource | None = None, tables: ParticleTables | None = None,
            constant_stopping: float | None = None) -> EngineInputs:
    """Turn an experiment into the kernel's typed inputs.

    Parameters
    ----------
    exp : Experiment
    source : StoppingSource, optional
        Stopping tables to use instead of ``exp.options.stopping`` (SRIM-2013 by default); layers
        that name their own ``stopping`` keep it.
    tables : ParticleTables, optional
        Ready tables (for the beam, then every outgoing particle, in the sample's elements; only
        when every layer takes the experiment's source).
    constant_stopping : float, optional
        Replaces every stopping value by this constant (eV per 1e15 at/cm2): a test hook for
        closed-form checks.
    """
    if not isinstance(exp, Experiment):
        raise RecoilsimError("experiment", type(exp).__name__, "an Experiment")
    det = exp.detector
    species = build_species(exp)
    elements = exp.sample.elements()
    for f in det.foils + det.energy_foils:
        for e in f.fractions:
            if e not in elements:
                elements.append(e)
    beam = exp.beam.isotope
    parts = [(beam.Z, beam.mass_u)]
    for sp in species:
        if (sp.Z, sp.mass_u) not in parts:
            parts.append((sp.Z, sp.mass_u))
    columns = stopping_columns(exp, elements)
    if tables is None:
        tables = _column_tables(exp, parts, columns, source)
    elif len(columns) != len(elements):
        raise RecoilsimError("tables", "ready tables", "no ready tables when a layer names its own stopping source")
    S = np.ascontiguousarray(tables.S, dtype=np.float64)
    W = np.ascontiguousarray(tables.W, dtype=np.float64)
    if constant_stopping is not None:
        S = np.full_like(S, float(constant_stopping))
    if exp.beam.energy_MeV / beam.mass_u > tables.e_max_per_u:
        raise RecoilsimError("beam.energy_MeV", exp.beam.energy_MeV,
                             f"at most {tables.e_max_per_u * beam.mass_u:.4g} MeV for {beam.name} "
                             f"(the stopping tables end at {tables.e_max_per_u} MeV/u)")
    # time window of the spectrum -> lowest energy that matters
    t_hi = float(det.channel_edges_ns().max())
    sig_timing = fwhm_to_sigma(det.timing_resolution_ps * 1e-3)
    t_stop = t_hi + 8 * sig_timing + 0.02 * t_hi
    _check_window(exp, t_stop)
    p_klo, p_khi = _particle_grid(exp, parts, species, tables, S.shape[2], t_stop)
    g = exp.geometry
    cos_in = math.cos(math.radians(g.incidence_deg))
    varying = exp.options.profile_model == "perturbation"
    blk_top, fracS, fracW, layer_of, in_profile = sample_blocks(exp, elements, PERTURBATION_SUBSTEPS if varying else 1)
    specs = layer_sources(exp)
    col_of = np.array([[columns.index((e, specs[li]) if (e, specs[li]) in columns else (e, exp.options.stopping))
                        for e in elements] for li in range(len(specs))], dtype=np.int64)
    fracS = to_columns(fracS, layer_of, col_of, len(columns))
    fracW = to_columns(fracW, layer_of, col_of, len(columns))
    depth = DEPTH_BOUND_MARGIN * beam_depth_bound(S[0], fracS, tables.lnE0, tables.dlnE, beam.mass_u,
                                                  exp.beam.energy_MeV, cos_in)
    blk_top, fracS, fracW, layer_of, in_profile = cut_blocks(blk_top, fracS, fracW, layer_of, in_profile, depth)
    outgoing = _species_arrays(exp, species, columns, parts, fracW, layer_of)
    # Below the deepest block that holds a simulated species every brick has zero yield, yet the
    # kernel would step on (at most a fraction of a channel per brick for the fastest-changing
    # recoil) until every recoil's flight time leaves the channel window: a thin film on a thick
    # substrate gave thousands of empty bricks (the Potku example: 20000 with 8192 channels).
    held = np.flatnonzero(outgoing.density.any(axis=0))
    n_keep = int(held[-1]) + 1 if held.size else 1
    if n_keep < len(blk_top) - 1:
        blk_top, fracS, fracW, in_profile = blk_top[:n_keep + 1], fracS[:n_keep], fracW[:n_keep], in_profile[:n_keep]
        layer_of = layer_of[:n_keep]
        # (a contiguous copy: a sliced view is another Numba type, a second compile of the kernel)
        outgoing = outgoing._replace(density=np.ascontiguousarray(outgoing.density[:, :n_keep]))
    prof_start = np.zeros(len(blk_top), dtype=np.int64)
    prof_x, prof_dS, prof_cum = np.zeros(0), np.zeros((0, len(columns))), np.zeros((len(species), 0))
    prof_dx = np.diff(blk_top)
    if varying and in_profile.any():
        nominal = np.array([[layer.fractions.get(e, 0.0) * layer.stopping_factors.get(e, 1.0) for e in elements]
                            for layer in exp.sample.layers])
        nominal = to_columns(nominal, np.arange(len(specs)), col_of, len(columns))
        max_thick = loss_bound_thickness(S[0], nominal, tables.lnE0, tables.dlnE, beam.mass_u, exp.beam.energy_MeV,
                                         cos_in)
        starts = perturbation_groups(blk_top, fracW, layer_of, in_profile, max_thick)
        blk_top, fracS, fracW, dens, prof_start, prof_x, prof_dS, prof_cum, prof_dx = perturbation_blocks(
            starts, blk_top, fracS, fracW, outgoing.density, PERTURBATION_BRICK_STEPS * PERTURBATION_SUBSTEPS)
        outgoing = outgoing._replace(density=dens)
    foil_S, foil_path = merge_foils(det.foils, elements)
    efoil_S, efoil_path = merge_foils(det.energy_foils, elements)
    foil_col = np.array([[columns.index((e, exp.options.stopping)) for e in elements]], dtype=np.int64)
    foil_S = to_columns(foil_S[None, :], np.zeros(1, dtype=np.int64), foil_col, len(columns))[0]
    efoil_S = to_columns(efoil_S[None, :], np.zeros(1, dtype=np.int64), foil_col, len(columns))[0]
    sig_div = math.radians(fwhm_to_sigma(g.beam_divergence_deg))
    sig_ap = math.radians(g.detector_aperture_deg) / math.sqrt(12.0)
    res = exp.options.resolution
    return EngineInputs(
        name=exp.name, species=species, elements=elements, tables=tables,
        particles=kt.Particles(S=S, W=W if res else np.zeros_like(W), lnE0=float(tables.lnE0),
                               dlnE=float(tables.dlnE), mass=np.array([m for _, m in parts], dtype=np.float64),
                               klo=p_klo, khi=p_khi),
        stack=kt.Stack(top=blk_top, fracS=fracS, fracW=fracW,
                       el_Z=np.array([float(element(e).number) for e, _ in columns]), prof_start=prof_start,
                       prof_x=prof_x, prof_dS=prof_dS, prof_dx=prof_dx),
        beam=kt.Beam(particle=0, Z=int(beam.Z), mass_u=float(beam.mass_u), energy_MeV=float(exp.beam.energy_MeV)),
        outgoing=outgoing._replace(cum=prof_cum),
        geometry=kt.Geometry(cos_in=cos_in, cos_out=math.cos(math.radians(g.exit_deg)),
                             phi=math.radians(g.recoil_deg), sig_ang_in=sig_div if res else 0.0,
                             sig_ang_out=math.hypot(sig_div, sig_ap) if res else 0.0),
        detector=kt.Detector(foil_fracS=foil_S, foil_fracW=foil_S.copy(), foil_path=float(foil_path),
                             efoil_fracS=efoil_S, efoil_fracW=efoil_S.copy(), efoil_path=float(efoil_path),
                             flight_length_m=float(det.flight_length_m), sig_timing=sig_timing if res else 0.0,
                             yield_factor=float(exp.beam.fluence * det.solid_angle_sr * MB_CM2 * 1e15 / cos_in)),
        options=kt.Options(relativistic=bool(exp.options.relativistic), screening=SCREENING[exp.options.screening],
                           t_stop=t_stop, max_dt=float(exp.options.max_channel_fraction * abs(det.calibration_a_ns)),
                           sig_frac=float(exp.options.max_sigma_fraction) if res else 0.0, max_bricks=MAX_BRICKS,
                           multiple_scattering=bool(res and exp.options.multiple_scattering)),
        columns=tuple(columns),
    )


def run(inputs: EngineInputs) -> kt.Bricks:
    """Run the brick kernel: warns when the brick budget ran out, raises on non-finite bricks."""
    bricks = simulate_bricks(inputs.particles, inputs.stack, inputs.beam, inputs.outgoing, inputs.geometry,
                             inputs.detector, inputs.options)
    if bricks.overflow:
        warnings.warn(f"the simulation reached {inputs.options.max_bricks} bricks before the end of the analysed "
                      "depth; spectra at the latest times are incomplete (raise options.max_channel_fraction)",
                      stacklevel=3)
    n = bricks.n
    idle = ~(bricks.Y[:, :n] > 0)  # bricks whose yield is not positive (or NaN) are not checked
    for q in (bricks.ta, bricks.tb, bricks.Y, bricks.sig_t):
        ok = np.isfinite(q[:, :n])
        ok |= idle
        if not ok.all():
            raise RecoilsimError("experiment", inputs.name, "inputs that give finite bricks (internal check failed)")
    return bricks


def brick_edge_depths(x_mid: np.ndarray, n: int) -> np.ndarray:
    """Depths (1e15 at/cm2) of the n + 1 brick edges from the bricks' mid depths (n_sp, >= n).

    Every species' brick i spans the same depth step, so the edges are common to all: the
    bricks are contiguous from the surface, x_0 = 0, x_(i+1) = 2 x_mid_i - x_i (brick i's mid
    depth is taken from any species that has it; 0 marks a species without that brick).
    """
    xm = x_mid[:, :n].max(axis=0) if n else np.zeros(0)
    # the recurrence solved: x_k = 2 (-1)^(k+1) sum_{i<k} (-1)^i x_mid_i
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    xb = np.empty(n + 1)
    xb[0] = 0.0
    xb[1:] = 2.0 * sign * np.cumsum(sign * xm)
    return xb


def boxes(ta: np.ndarray, tb: np.ndarray, Y: np.ndarray, sig_t: np.ndarray) -> kt.Bricks:
    """Bricks for :func:`spread` from time boxes alone (rows of (n_rows, n) arrays; no depth or
    energy), e.g. bricks regrouped by the linear model."""
    empty = np.zeros((0, 0))
    return kt.Bricks(ta.shape[1], ta, tb, Y, sig_t, empty, empty, empty, False)


def spread(bricks: kt.Bricks, a_ns: float, b_ns: float, n_channels: int, resolution: bool) -> np.ndarray:
    """Spectra (n_sp, n_channels) of the bricks for the calibration t = a_ns * channel + b_ns.

    ``resolution`` False spreads bare boxes (no Gaussian). Raises a RecoilsimError if a
    spectrum value is not finite.
    """
    spec = np.zeros((bricks.ta.shape[0], n_channels))
    spread_bricks(bricks.ta, bricks.tb, bricks.Y, bricks.sig_t, bricks.n, a_ns, b_ns, n_channels, resolution, spec)
    if not np.all(np.isfinite(spec)):
        raise RecoilsimError("bricks", "non-finite spectrum", "bricks and a calibration that give finite spectra")
    return spec
