"""Forward model: TOF-ERDA spectra of every recoiling isotope (slab simulation).

User objects (:class:`~recoilsim.model.experiment.Experiment`) become arrays here, the Numba kernel
:func:`recoilsim.kernels.slab.simulate_bricks` computes the bricks, and the result comes back as
an :class:`xarray.Dataset` with the channel -> depth mapping of every isotope.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..model.elements import element, natural_isotopes
from ..errors import RecoilsimError
from ..model.experiment import SCREENING, Experiment
from ..model.instrument import fwhm_to_sigma
from ..kernels.kinematics import C_M_PER_NS, U_MEV, energy_from_time, recoil_factor, scatter_factor
from ..kernels.slab import simulate_bricks, spread_bricks, tofe_map
from ..stopping.sources import source_label, stopping_source
from ..stopping.tables import ParticleTables, StoppingSource, particle_tables

MB_CM2 = 1e-27
MAX_BRICKS = 20000


@dataclass
class Species:
    """One outgoing contribution: a recoiling isotope or the beam scattered by one isotope."""

    label: str  # '7Li' or '63Cu-scattered(+)'
    element: str  # element of the detected particle
    Z: int  # detected particle
    mass_u: float
    target_Z: int
    target_mass_u: float
    target_symbol: str
    target_A: int
    kind: int  # 0 recoil, +1/-1 scattered beam root


@dataclass
class Arrays:
    """Everything the kernel needs, as arrays (see :func:`simulate_bricks`)."""

    species: list
    tables: ParticleTables
    kw: dict
    blk_top: np.ndarray
    elements: list


def _merge_foils(foils, elements):
    """One effective foil: summed areal density, areal-density-weighted composition."""
    frac = np.zeros(len(elements))
    total = 0.0
    for f in foils:
        for e, x in f.fractions.items():
            frac[elements.index(e)] += x * f.areal_density_1e15
        total += f.areal_density_1e15
    if total > 0:
        frac /= total
    return frac, total


def _blocks(exp: Experiment, elements: list[str], t_limit_1e15: float | None = None):
    """Split the sample into blocks of uniform composition.

    Profiles are discretised into steps of at most ``options.profile_step_nm`` (nm, or the same
    number in 1e15 at/cm2 in a layer without density) over the range of their depth grid, plus
    one step beyond; the composition of each block is taken at its middle.
    """
    step_nm = exp.options.profile_step_nm
    tops = []
    fracS = []
    fracW = []
    layer_of = []
    x0 = 0.0
    for li, layer in enumerate(exp.sample.layers):
        T = layer.areal_density_1e15
        if layer.profiles:
            conv = layer.nm_to_1e15 if layer.density_g_cm3 is not None else 1.0
            step = step_nm * conv
            lo, hi = T, 0.0
            for p in layer.profiles:
                d = p.depth * (conv if p.depth_unit == "nm" else 1.0)
                lo = min(lo, float(d[0]))
                hi = max(hi, float(d[-1]))
            hi = min(T, hi + step)
            lo = max(0.0, min(lo, hi))
            pts = [0.0, lo]
            n = max(1, int(math.ceil((hi - lo) / step - 1e-9)))
            pts.extend(np.linspace(lo, hi, n + 1)[1:])
            pts.append(T)
            pts = np.unique(np.clip(np.asarray(pts), 0.0, T))
        else:
            pts = np.array([0.0, T])
        mids = 0.5 * (pts[:-1] + pts[1:])
        fr = layer.fractions_at(mids, elements)
        sf = np.array([layer.stopping_factors.get(e, 1.0) for e in elements])
        for k in range(len(mids)):
            tops.append(x0 + pts[k])
            fracS.append(fr[k] * sf)
            fracW.append(fr[k])
            layer_of.append(li)
        x0 += T
    tops.append(x0)
    return np.asarray(tops), np.asarray(fracS), np.asarray(fracW), np.asarray(layer_of)


def build_species(exp: Experiment) -> list[Species]:
    """Outgoing species: every recoil isotope, plus the scattered beam when asked for."""
    out = [Species(i.name, i.symbol, i.Z, i.mass_u, i.Z, i.mass_u, i.symbol, i.A, 0)
           for i in exp.recoil_isotopes()]
    if exp.options.scattered_beam:
        b = exp.beam.isotope
        phi = math.radians(exp.geometry.recoil_deg)
        found = False
        for sym in exp.sample.elements():
            isos = set()
            for layer in exp.sample.layers:
                if sym in layer.elements():
                    isos.update((i.A, i.mass_u) for i in natural_isotopes(sym, layer.enrichment.get(sym)))
            for A, m in sorted(isos):
                for root in (1, -1):
                    if scatter_factor(b.mass_u, m, phi, root) > 0:
                        found = True
                        tag = "" if root > 0 else "-low"
                        out.append(Species(f"{b.name}-scattered-{A}{sym}{tag}", b.symbol, b.Z, b.mass_u,
                                           element(sym).number, m, sym, A, root))
        if not found:
            raise RecoilsimError("options.scattered_beam", True,
                                 f"a sample element heavy enough to scatter {b.name} to "
                                 f"{exp.geometry.recoil_deg} deg (needs sin(angle) < M2/M1)")
    return out


_TABLE_CACHE: dict = {}


def _cached_tables(parts, zs, straggling, source):
    """particle_tables with a small in-process cache (tables depend only on these inputs)."""
    key = (parts, zs, straggling, id(source) if source is not None else None)
    tab = _TABLE_CACHE.get(key)
    if tab is None:
        if len(_TABLE_CACHE) > 32:
            _TABLE_CACHE.clear()
        tab = particle_tables(list(parts), list(zs), straggling=straggling, source=source)
        _TABLE_CACHE[key] = tab
    return tab


def prepare(exp: Experiment, source: StoppingSource | None = None, tables: ParticleTables | None = None,
            constant_stopping: float | None = None) -> Arrays:
    """Turn an experiment into the kernel's arrays.

    ``constant_stopping`` (eV per 1e15 at/cm2) replaces every stopping value by a constant -- a
    test hook for closed-form checks.
    """
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
    if tables is None:
        source = stopping_source(exp.options.stopping) if source is None else source
        tables = _cached_tables(tuple(parts), tuple(element(e).number for e in elements),
                                exp.options.straggling, source)
    S = np.ascontiguousarray(tables.S, dtype=np.float64)
    W = np.ascontiguousarray(tables.W, dtype=np.float64)
    if constant_stopping is not None:
        S = np.full_like(S, float(constant_stopping))
    if exp.beam.energy_MeV / beam.mass_u > tables.e_max_per_u:
        raise RecoilsimError("beam.energy_MeV", exp.beam.energy_MeV,
                             f"at most {tables.e_max_per_u * beam.mass_u:.4g} MeV for {beam.name} "
                             f"(the stopping tables end at {tables.e_max_per_u} MeV/u)")
    lnE0, dlnE, n_grid = tables.lnE0, tables.dlnE, S.shape[2]
    # time window of the spectrum -> lowest energy that matters
    edges = det.channel_edges_ns()
    t_hi = float(edges.max())
    sig_timing = fwhm_to_sigma(det.timing_resolution_ps * 1e-3)
    t_stop = t_hi + 8 * sig_timing + 0.02 * t_hi
    phi = math.radians(exp.geometry.recoil_deg)
    p_mass = np.array([m for _, m in parts])
    p_klo = np.zeros(len(parts), dtype=np.int64)
    p_khi = np.zeros(len(parts), dtype=np.int64)
    Ks = []
    for sp in species:
        K = recoil_factor(beam.mass_u, sp.mass_u, phi) if sp.kind == 0 else \
            scatter_factor(beam.mass_u, sp.target_mass_u, phi, sp.kind)
        Ks.append(K)
    if t_stop <= 0:
        raise RecoilsimError("detector.calibration", (det.calibration_a_ns, det.calibration_b_ns),
                             "a calibration whose channels map to positive times of flight")

    def node(E, m):
        return (math.log(E / m) - lnE0) / dlnE

    e_beam_lo = exp.beam.energy_MeV
    for pi, (z, m) in enumerate(parts):
        e_min = 0.5 * energy_from_time(t_stop, m, det.flight_length_m, exp.options.relativistic)
        if pi == 0:
            e_max = 1.02 * exp.beam.energy_MeV
        else:
            e_max = 1.02 * exp.beam.energy_MeV * max(K for K, sp in zip(Ks, species) if (sp.Z, sp.mass_u) == (z, m))
            Kmin = min(K for K, sp in zip(Ks, species) if (sp.Z, sp.mass_u) == (z, m))
            e_beam_lo = min(e_beam_lo, e_min / max(Kmin, 1e-12))
        p_klo[pi] = max(0, int(math.floor(node(max(e_min, 1e-9), m))))
        p_khi[pi] = min(n_grid - 1, int(math.ceil(node(e_max, m))) + 1)
    # the beam's grid reaches down to the beam energy that still makes a detectable particle
    p_klo[0] = max(0, min(p_klo[0], int(math.floor(node(max(0.5 * e_beam_lo, 1e-9), beam.mass_u)))))
    for pi in range(len(parts)):
        if p_khi[pi] - p_klo[pi] < 2:
            p_klo[pi] = max(0, p_khi[pi] - 2)
    blk_top, fracS, fracW, layer_of = _blocks(exp, elements)
    # species densities per block
    sp_dens = np.zeros((len(species), len(blk_top) - 1))
    for si, sp in enumerate(species):
        j = elements.index(sp.target_symbol)
        abundance = {}  # per layer
        for b in range(len(blk_top) - 1):
            li = layer_of[b]
            if li not in abundance:
                enr = exp.sample.layers[li].enrichment.get(sp.target_symbol)
                abundance[li] = {i.A: i.abundance for i in natural_isotopes(sp.target_symbol, enr)}.get(sp.target_A, 0.0)
            sp_dens[si, b] = fracW[b, j] * abundance[li]
    # Below the deepest block that holds a simulated species every brick has zero yield, yet the
    # kernel would step on (at most a fraction of a channel per brick for the fastest-changing
    # recoil) until every recoil's flight time leaves the channel window: a thin film on a thick
    # substrate gave thousands of empty bricks (the Potku example: 20000 with 8192 channels).
    held = np.flatnonzero(sp_dens.any(axis=0))
    n_keep = int(held[-1]) + 1 if held.size else 1
    if n_keep < len(blk_top) - 1:
        blk_top, fracS, fracW = blk_top[:n_keep + 1], fracS[:n_keep], fracW[:n_keep]
        layer_of, sp_dens = layer_of[:n_keep], sp_dens[:, :n_keep]
    # efficiency curves
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
    foil_S, foil_path = _merge_foils(det.foils, elements)
    efoil_S, efoil_path = _merge_foils(det.energy_foils, elements)
    sp_p = np.array([parts.index((sp.Z, sp.mass_u)) for sp in species], dtype=np.int64)
    out_ids = sorted(set(sp_p.tolist()))
    sp_out = np.array([out_ids.index(p) for p in sp_p], dtype=np.int64)
    g = exp.geometry
    sig_div = math.radians(fwhm_to_sigma(g.beam_divergence_deg))
    sig_ap = math.radians(g.detector_aperture_deg) / math.sqrt(12.0)
    res = exp.options.resolution
    yield_factor = exp.beam.fluence * det.solid_angle_sr * MB_CM2 * 1e15 / math.cos(math.radians(g.incidence_deg))
    a = det.calibration_a_ns
    kw = dict(
        S=S, W=W if res else np.zeros_like(W), lnE0=lnE0, dlnE=dlnE, p_mass=p_mass, p_klo=p_klo, p_khi=p_khi,
        blk_top=blk_top, blk_fracS=fracS, blk_fracW=fracW,
        foil_fracS=foil_S, foil_fracW=foil_S.copy(), foil_path=foil_path,
        efoil_fracS=efoil_S, efoil_fracW=efoil_S.copy(), efoil_path=efoil_path,
        beam_p=0, Z1=beam.Z, M1=beam.mass_u, E0=exp.beam.energy_MeV,
        sp_p=sp_p, sp_kind=np.array([sp.kind for sp in species], dtype=np.int64),
        sp_Z2=np.array([sp.target_Z for sp in species], dtype=np.int64),
        sp_M2=np.array([sp.target_mass_u for sp in species]), sp_dens=sp_dens, sp_out=sp_out,
        eff_E=eff_E, eff_v=eff_v, eff_n=eff_n,
        cos_in=math.cos(math.radians(g.incidence_deg)), cos_out=math.cos(math.radians(g.exit_deg)), phi=phi,
        sig_ang_in=sig_div if res else 0.0,
        sig_ang_out=math.hypot(sig_div, sig_ap) if res else 0.0,
        L_m=det.flight_length_m, relativistic=exp.options.relativistic,
        sig_timing=sig_timing if res else 0.0, screening=SCREENING[exp.options.screening],
        yield_factor=yield_factor, t_stop=t_stop,
        max_dt=exp.options.max_channel_fraction * abs(a),
        sig_frac=exp.options.max_sigma_fraction if res else 0.0, max_bricks=MAX_BRICKS,
    )
    return Arrays(species, tables, kw, blk_top, elements)


def run_bricks(arrays: Arrays):
    """Call the kernel; returns its tuple (n, ta, tb, Y, sig_t, x_mid, e_det, sig_e, overflow)."""
    return simulate_bricks(**arrays.kw)


def simulate(exp: Experiment, *, tofe: bool = False, n_energy_bins: int = 256,
             source: StoppingSource | None = None, constant_stopping: float | None = None) -> xr.Dataset:
    """Simulate the TOF spectra of every recoiling isotope of an experiment.

    Parameters
    ----------
    exp : Experiment
        Beam, geometry, detector, sample, recoils and options.
    tofe : bool
        Also compute the TOF-E coincidence map (variable ``tofe``).
    n_energy_bins : int
        Number of energy bins of the TOF-E map (0 .. 1.05 x the highest detector energy).
    source : StoppingSource, optional
        Stopping tables to use instead of ``exp.options.stopping`` (SRIM-2013 by default).
    constant_stopping : float, optional
        Test hook: every stopping replaced by this constant (eV per 1e15 at/cm2).

    Returns
    -------
    xarray.Dataset
        ``counts_isotope(isotope, channel)``, ``counts(element, channel)``; coordinates
        ``time_ns(channel)``, ``depth_nm``/``depth_1e15``/``energy_MeV`` per (element, channel)
        and per (isotope, channel) as ``isotope_*``; attrs ``experiment`` (JSON of every input).
    """
    if not isinstance(exp, Experiment):
        raise RecoilsimError("experiment", type(exp).__name__, "an Experiment")
    arrays = prepare(exp, source=source, constant_stopping=constant_stopping)
    n, ta, tb, Y, sig_t, x_mid, e_det, sig_e, overflow = run_bricks(arrays)
    det = exp.detector
    n_sp = len(arrays.species)
    spec = np.zeros((n_sp, det.n_channels))
    spread_bricks(ta, tb, Y, sig_t, n, det.calibration_a_ns, det.calibration_b_ns, det.n_channels,
                  exp.options.resolution, spec)
    if overflow:
        warnings.warn(f"the simulation reached {MAX_BRICKS} bricks before the end of the analysed depth; "
                      "spectra at the latest times are incomplete (raise options.max_channel_fraction)",
                      stacklevel=2)
    if not np.all(np.isfinite(spec)):
        raise RecoilsimError("experiment", exp.name, "inputs that give a finite spectrum (internal check failed)")
    ds = _to_dataset(exp, arrays, spec, n, ta, tb, x_mid)
    ds.attrs["stopping"] = source_label(source if source is not None else stopping_source(exp.options.stopping))
    if tofe:
        emax = 1.05 * float(max(e_det[:, :n].max(initial=0.0), 1e-3))
        e_edges = np.linspace(0.0, emax, n_energy_bins + 1)
        m = np.zeros((n_sp, det.n_channels, n_energy_bins))
        tofe_map(ta, tb, Y, sig_t, e_det, sig_e, fwhm_to_sigma(det.energy_resolution_keV * 1e-3), n,
                 det.calibration_a_ns, det.calibration_b_ns, det.n_channels, e_edges, m)
        ds["tofe"] = xr.DataArray(m, dims=("isotope", "channel", "energy_bin"))
        ds = ds.assign_coords(energy_bin_MeV=("energy_bin", 0.5 * (e_edges[1:] + e_edges[:-1])))
        ds["tofe"].attrs.update(long_name="simulated TOF-E coincidence map", units="counts")
    total = float(spec.sum())
    if total <= 0:
        warnings.warn("the simulated spectrum is empty: no recoil reaches the channel range "
                      f"({det.channel_edges_ns().min():.4g}..{det.channel_edges_ns().max():.4g} ns); check the "
                      "calibration, the geometry and whether the recoils escape the sample", stacklevel=2)
    return ds


def _energy_from_time(t_ns, mass_u, L_m, relativistic):
    """Vectorised :func:`recoilsim.kernels.kinematics.energy_from_time` (MeV); NaN for t <= L/c."""
    beta = L_m / (np.asarray(t_ns, dtype=float) * C_M_PER_NS)
    mc2 = mass_u * U_MEV
    with np.errstate(invalid="ignore", divide="ignore"):
        if relativistic:
            e = mc2 * (1.0 / np.sqrt(1.0 - beta * beta) - 1.0)
        else:
            e = 0.5 * mc2 * beta * beta
    return np.where((beta > 0) & (beta < 1), e, np.nan)


def _mapping(ta, tb, x_mid, n, times):
    """Depth of origin (1e15 at/cm2) at given times from the bricks' time -> depth mapping.

    A species' bricks are contiguous from the surface, so the brick boundaries follow exactly
    from the mid depths: x_0 = 0, x_(i+1) = 2 x_mid_i - x_i. NaN outside the simulated range.
    """
    if n == 0:
        return np.full(np.shape(times), np.nan)
    # the recurrence solved: x_k = 2 (-1)^(k+1) sum_{i<k} (-1)^i x_mid_i
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    xb = np.empty(n + 1)
    xb[0] = 0.0
    xb[1:] = 2.0 * sign * np.cumsum(sign * x_mid[:n])
    tt = np.concatenate([ta[:n], tb[n - 1:n]])
    order = np.argsort(tt, kind="stable")
    return np.interp(times, tt[order], xb[order], left=np.nan, right=np.nan)


def _to_dataset(exp, arrays, spec, n, ta, tb, x_mid):
    det = exp.detector
    species = arrays.species
    times = det.channel_times_ns()
    labels = [sp.label for sp in species]
    iso_depth = np.full((len(species), det.n_channels), np.nan)
    iso_energy = np.full((len(species), det.n_channels), np.nan)
    for i, sp in enumerate(species):
        nb = int(np.count_nonzero(ta[i, :n] > 0))
        sel = ta[i, :n] > 0
        if nb:
            iso_depth[i] = _mapping(ta[i, :n][sel], tb[i, :n][sel], x_mid[i, :n][sel], nb, times)
        iso_energy[i] = _energy_from_time(times, sp.mass_u, det.flight_length_m, exp.options.relativistic)
    iso_depth_nm = exp.sample.depth_1e15_to_nm(np.nan_to_num(iso_depth, nan=-1.0))
    iso_depth_nm = np.where(np.isnan(iso_depth), np.nan, iso_depth_nm)
    # elements: sum over isotopes; depth/energy from the most abundant isotope of the element
    elements = []
    for sp in species:
        key = sp.element if sp.kind == 0 else f"{sp.element}-scattered"
        if key not in elements:
            elements.append(key)
    el_counts = np.zeros((len(elements), det.n_channels))
    el_main = {}
    for i, sp in enumerate(species):
        key = sp.element if sp.kind == 0 else f"{sp.element}-scattered"
        k = elements.index(key)
        el_counts[k] += spec[i]
        tot = spec[i].sum()
        if key not in el_main or tot > el_main[key][1]:
            el_main[key] = (i, tot)
    idx = [el_main[e][0] for e in elements]
    ds = xr.Dataset(
        {
            "counts_isotope": (("isotope", "channel"), spec),
            "counts": (("element", "channel"), el_counts),
        },
        coords={
            "channel": np.arange(det.n_channels),
            "isotope": labels,
            "element": elements,
            "time_ns": ("channel", times),
            "isotope_depth_1e15": (("isotope", "channel"), iso_depth),
            "isotope_depth_nm": (("isotope", "channel"), iso_depth_nm),
            "isotope_energy_MeV": (("isotope", "channel"), iso_energy),
            "depth_1e15": (("element", "channel"), iso_depth[idx]),
            "depth_nm": (("element", "channel"), iso_depth_nm[idx]),
            "energy_MeV": (("element", "channel"), iso_energy[idx]),
            "isotope_mass_u": ("isotope", [sp.mass_u for sp in species]),
            "isotope_Z": ("isotope", [sp.Z for sp in species]),
        },
        attrs={
            "title": f"recoilsim TOF-ERDA simulation: {exp.name}",
            "experiment": json.dumps(exp.describe()),
            "stopping": "SRIM-2013 electronic (Ziegler et al., NIM B 268 (2010) 1818) + ZBL nuclear, Bragg's rule",
            "n_bricks": int(n),
            "n_blocks": int(len(arrays.blk_top) - 1),
        },
    )
    # attrs through .variables: ds[name] would build a DataArray (with all coords) for each
    var = ds.variables
    var["counts_isotope"].attrs.update(units="counts", long_name="counts per channel of each isotope")
    var["counts"].attrs.update(units="counts", long_name="counts per channel summed per element")
    var["time_ns"].attrs.update(units="ns", long_name="time of flight at the channel centre")
    for v in ("depth_nm", "isotope_depth_nm"):
        var[v].attrs.update(units="nm", long_name="depth of origin")
    for v in ("depth_1e15", "isotope_depth_1e15"):
        var[v].attrs.update(units="1e15 atoms/cm2", long_name="depth of origin")
    for v in ("energy_MeV", "isotope_energy_MeV"):
        var[v].attrs.update(units="MeV", long_name="energy in flight (after the T1 foil)")
    return ds
