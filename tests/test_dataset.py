"""The simulation result Dataset (recoilsim.forward.dataset): equal to a straightforward construction,
and its channel -> depth mapping checked against hand-made bricks."""

import json

import numpy as np
import pytest
import xarray as xr

from recoilsim.forward.dataset import brick_edge_depths, channel_depths, element_counts, flight_energy_per_mc2
from recoilsim.forward.engine import prepare, run, spread, stopping_record
from recoilsim.forward.simulate import simulate
from recoilsim.io.stopping_choice import straggling_label
from recoilsim.kernels.brick_types import Bricks
from recoilsim.kernels.kinematics import C_M_PER_NS, U_MEV
from recoilsim.kernels.channel_depth import depth_rows
from recoilsim.model.experiment import reference_experiment
from recoilsim.model.sample import Layer, Profile, Sample


def _straightforward(exp) -> xr.Dataset:
    """The Dataset built the plain way: per species a np.interp over its sorted brick edges into
    NaN-filled rows, element sums by a loop, DataArrays with their attrs."""
    inputs = prepare(exp)
    b = run(inputs)
    det = exp.detector
    spec = spread(b, det.calibration_a_ns, det.calibration_b_ns, det.n_channels, exp.options.resolution)
    times = det.calibration_a_ns * np.arange(det.n_channels) + det.calibration_b_ns
    sp = inputs.species
    x_edge = brick_edge_depths(b.x_mid, b.n)
    x_nm = exp.sample.depth_1e15_to_nm(x_edge)
    depth = np.full((len(sp), det.n_channels), np.nan)
    depth_nm = np.full_like(depth, np.nan)
    for i in range(len(sp)):
        cols = [j for j in range(b.n) if b.ta[i, j] > 0]
        if not cols:
            continue
        t_e = [b.ta[i, j] for j in cols] + [b.tb[i, cols[-1]]]
        e = cols + [cols[-1] + 1]
        order = sorted(range(len(t_e)), key=lambda k: t_e[k])  # stable
        t_e = np.array([t_e[k] for k in order])
        e = [e[k] for k in order]
        depth[i] = np.interp(times, t_e, x_edge[e], left=np.nan, right=np.nan)
        depth_nm[i] = np.interp(times, t_e, x_nm[e], left=np.nan, right=np.nan)
    beta = det.flight_length_m / (times * C_M_PER_NS)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_mc2 = 1.0 / np.sqrt(1.0 - beta * beta) - 1.0 if exp.options.relativistic else 0.5 * beta * beta
    per_mc2 = np.where((beta > 0) & (beta < 1), per_mc2, np.nan)
    energy = np.array([s.mass_u * U_MEV * per_mc2 for s in sp])
    keys = [s.element if s.kind == 0 else f"{s.element}-scattered" for s in sp]
    elements = []
    for k in keys:
        if k not in elements:
            elements.append(k)
    counts = np.zeros((len(elements), det.n_channels))
    main = {}
    for i, k in enumerate(keys):
        counts[elements.index(k)] += spec[i]
        if k not in main or spec[i].sum() > spec[main[k]].sum():
            main[k] = i
    idx = [main[k] for k in elements]
    dims_i, dims_e = ("isotope", "channel"), ("element", "channel")
    d15 = {"units": "1e15 atoms/cm2", "long_name": "depth of origin"}
    dnm = {"units": "nm", "long_name": "depth of origin"}
    emev = {"units": "MeV", "long_name": "energy in flight (after the T1 foil)"}
    coords = {
        "channel": np.arange(det.n_channels), "isotope": [s.label for s in sp], "element": elements,
        "time_ns": xr.DataArray(times, dims="channel", attrs={"units": "ns", "long_name": "time of flight at the channel centre"}),
        "isotope_depth_1e15": xr.DataArray(depth, dims=dims_i, attrs=d15),
        "isotope_depth_nm": xr.DataArray(depth_nm, dims=dims_i, attrs=dnm),
        "isotope_energy_MeV": xr.DataArray(energy, dims=dims_i, attrs=emev),
        "depth_1e15": xr.DataArray(depth[idx], dims=dims_e, attrs=d15),
        "depth_nm": xr.DataArray(depth_nm[idx], dims=dims_e, attrs=dnm),
        "energy_MeV": xr.DataArray(energy[idx], dims=dims_e, attrs=emev),
        "isotope_mass_u": ("isotope", [s.mass_u for s in sp]),
        "isotope_Z": ("isotope", [s.Z for s in sp]),
    }
    data = {
        "counts_isotope": xr.DataArray(spec, dims=dims_i, attrs={"units": "counts", "long_name": "counts per channel of each isotope"}),
        "counts": xr.DataArray(counts, dims=dims_e, attrs={"units": "counts", "long_name": "counts per channel summed per element"}),
    }
    attrs = {"title": f"recoilsim TOF-ERDA simulation: {exp.name}", "experiment": json.dumps(exp.describe()),
             "stopping": stopping_record(exp), "n_bricks": int(b.n), "n_blocks": int(len(inputs.stack.top) - 1),
             "straggling": straggling_label(exp.options.straggling, exp.options.straggling_table)}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _scattered():
    e = reference_experiment(Profile("Li", [0, 30], [1.25, 1.0], kind="ratio"))
    e.options.scattered_beam = True  # two-root species and an element "Cu-scattered"
    return e


def _falling():
    e = reference_experiment()
    d = e.detector
    d.calibration_b_ns += d.calibration_a_ns * (d.n_channels - 1)
    d.calibration_a_ns = -d.calibration_a_ns
    return e


def _fine_partial_densities():
    """Channels of 5 ps (runs of thousands of channels: the np.repeat path), and a middle layer
    without a density (nm NaN below its top, finite above: the np.interp fallback)."""
    e = reference_experiment(recoils=("Li", "O"))
    e.sample = Sample([Layer("Cu", thickness_nm=30, density_g_cm3=8.96),
                       Layer("Li2.0P1O2.6N0.9", areal_density_1e15=800.0),
                       Layer("Li1.3Al0.3Ti1.7P3O12", thickness_nm=2000, density_g_cm3=2.9)])
    d = e.detector
    d.n_channels = 20 * d.n_channels
    d.calibration_a_ns /= 20
    return e


@pytest.mark.parametrize("make", [reference_experiment, _scattered, _falling, _fine_partial_densities])
def test_dataset_identical_to_straightforward_construction(make):
    exp = make()
    ds = simulate(exp)
    plain = _straightforward(exp)
    xr.testing.assert_identical(ds, plain)
    assert set(ds.coords) == set(plain.coords) and set(ds.data_vars) == set(plain.data_vars)
    assert all(ds.variables[v].dtype == plain.variables[v].dtype for v in ds.variables)
    if make is _fine_partial_densities:  # runs of thousands of channels, and nm rows of the np.interp fallback
        finite = np.isfinite(ds["isotope_depth_1e15"].values)
        finite_nm = np.isfinite(ds["isotope_depth_nm"].values)
        assert finite.sum(axis=1).max() >= 2048
        assert (finite_nm.any(axis=1) & (finite_nm.sum(axis=1) < finite.sum(axis=1))).any()


def _bricks(ta, tb, x_mid):
    ta, tb, x_mid = (np.atleast_2d(np.asarray(a, dtype=float)) for a in (ta, tb, x_mid))
    z = np.zeros_like(ta)
    return Bricks(ta.shape[1], ta, tb, z + 1.0, z, x_mid, z, z, False)


def test_channel_depths_hand_made_bricks():
    """Two bricks 0..2 and 2..6 (1e15 at/cm2), flight times 10..12 and 12..20 ns: depth is
    linear in time inside each brick, NaN outside; a species without bricks is NaN."""
    b = _bricks([[10.0, 12.0], [0.0, 0.0]], [[12.0, 20.0], [0.0, 0.0]], [[1.0, 4.0], [0.0, 0.0]])
    x_edge = brick_edge_depths(b.x_mid, b.n)
    assert np.array_equal(x_edge, [0.0, 2.0, 6.0])
    times = np.array([9.0, 10.0, 11.0, 12.0, 16.0, 20.0, 21.0])
    expect = [np.nan, 0.0, 1.0, 2.0, 4.0, 6.0, np.nan]
    for t, exp_row in ((times, expect), (times[::-1].copy(), expect[::-1])):  # rising, falling
        out = np.zeros((2, 2, times.size))
        channel_depths(t, b, np.stack([x_edge, 10 * x_edge]), out)
        assert np.array_equal(out[0, 0], exp_row, equal_nan=True)
        assert np.array_equal(out[1, 0], 10 * np.array(exp_row), equal_nan=True)
        assert np.isnan(out[:, 1]).all()


def test_channel_depths_no_bricks_at_all():
    b = _bricks(np.zeros((2, 0)), np.zeros((2, 0)), np.zeros((2, 0)))
    out = np.zeros((2, 2, 5))
    channel_depths(np.arange(5.0), b, np.stack([brick_edge_depths(b.x_mid, 0)] * 2), out)
    assert np.isnan(out).all()


@pytest.mark.parametrize("falling", [False, True])
def test_channel_depths_are_np_interp(falling):
    """The one-pass kernel gives np.interp's values bit for bit: random bricks, some of zero
    duration, edges exactly on a channel time (also the last finite edge before NaN depths, where
    np.interp takes the edge's depth and the formula would give NaN), times out of depth order
    (by np.interp itself), one scale without any depth (all NaN), two with a NaN part (one of them
    without any depth for one species), one whose slope overflows and one with a run of infinite
    depths (np.interp's second try gives inf between equal infinities)."""
    rng = np.random.default_rng(7)
    n = 300
    ta = np.sort(rng.uniform(50.0, 400.0, (3, n)), axis=1)
    ta[:, 40:45] = ta[:, 40:41]  # bricks of zero duration
    ta[1, 100:103] = ta[1, 103:100:-1]  # times not monotonic in depth
    ta[2, :20] = 0.0  # no bricks above brick 20
    tb = np.concatenate([ta[:, 1:], ta[:, -1:] + 1.0], axis=1)
    x_mid = np.cumsum(rng.uniform(0.5, 2.0, n)) - 0.5
    b = _bricks(ta, tb, np.broadcast_to(x_mid, ta.shape))
    x_edge = brick_edge_depths(b.x_mid, n)
    times = np.arange(40.0, 420.0, 0.01)
    times[5000] = ta[0, 30]  # edges exactly on a channel time: inside and the last one
    times[np.searchsorted(times, tb[0, -1])] = tb[0, -1]
    times[np.searchsorted(times, ta[0, 149])] = ta[0, 149]  # the last edges of finite depth on "nm"
    times[np.searchsorted(times, ta[2, 149])] = ta[2, 149]
    times[np.searchsorted(times, ta[0, 150])] = ta[0, 150]
    times = np.sort(times)[::-1].copy() if falling else np.sort(times)
    nm = x_edge.copy()
    nm[150:] = np.nan
    steep = x_edge.copy()
    steep[200:202] = [1.7e308, -1.7e308]  # finite depths, an infinite slope between them
    top = x_edge.copy()
    top[20:] = np.nan  # depths above brick 20 only: none at all for species 2
    infinite = x_edge.copy()
    infinite[100:110] = np.inf
    scales = np.stack([x_edge, np.full_like(x_edge, np.nan), nm, 3 * x_edge, steep, top, infinite])
    out = np.empty((7, 3, times.size))
    channel_depths(times, b, scales, out)
    for i in range(3):  # the plain way: np.interp over the species' edges sorted by time (stable)
        cols = [j for j in range(n) if ta[i, j] > 0]
        pairs = sorted([(ta[i, j], j) for j in cols] + [(tb[i, cols[-1]], cols[-1] + 1)], key=lambda p: p[0])
        t_e, e = np.array([p[0] for p in pairs]), [p[1] for p in pairs]
        for s in range(7):
            expect = np.interp(times, t_e, scales[s, e], left=np.nan, right=np.nan)
            assert np.array_equal(out[s, i], expect, equal_nan=True), (s, i)
    assert np.isfinite(out[0]).sum() > 3 * 30000 and np.isnan(out[1]).all() and np.isnan(out[5, 2]).all()
    assert np.isfinite(out[2]).sum(axis=1).min() > 0 and np.isinf(out[6]).sum(axis=1).min() > 0
    assert (np.abs(out[4]) > 1e300).sum(axis=1).min() > 0 and np.isinf(out[4]).sum(axis=1).min() > 0
    # the kernel leaves only the species whose times are out of depth order (1) to np.interp,
    # unless none of its edges has a depth (NaN in any order)
    rows = np.zeros((3, times.size))
    done = np.zeros(3, dtype=bool)
    for scale in scales:
        depth_rows(np.sort(times), ta, tb, n, scale, rows, done)
        assert done.tolist() == [True, bool(np.isnan(scale).all()), True]


def test_element_counts_skip_only_rows_of_zeros():
    """Element sums equal the plain loop's bit for bit; a row of zeros may be left out, but a row
    whose values cancel to a zero total must still be added."""
    rng = np.random.default_rng(3)
    spec = rng.uniform(0.0, 5.0, (5, 50))
    spec[1] = 0.0
    spec[3] = 0.0
    spec[3, [4, 9]] = [2.5, -2.5]  # total exactly 0, not a row of zeros
    group = np.array([0, 0, 1, 1, 2])
    out = np.full((4, 50), np.nan)
    totals = element_counts(spec, group, out)
    plain = np.zeros((4, 50))
    for i, k in enumerate(group):
        plain[k] += spec[i]
    assert np.array_equal(out, plain)  # element 3 has no species: zeros
    assert np.array_equal(totals, spec.sum(axis=1)) and totals[3] == 0.0


def test_flight_energy_closed_form():
    """E = m c^2 (gamma - 1) relativistic, m v^2 / 2 classical, for v = L / t (20 MeV/u-ish
    speeds and below); NaN at or below the light's flight time."""
    t = np.array([10.0, 50.0, 200.0, 2.0, 0.0])
    L = 0.6
    c = 0.299792458  # m/ns
    beta = L / (t[:3] * c)
    rel = flight_energy_per_mc2(t, L, True)
    assert np.allclose(rel[:3], 1.0 / np.sqrt(1.0 - beta**2) - 1.0, rtol=1e-14, atol=0.0)
    assert np.allclose(flight_energy_per_mc2(t, L, False)[:3], 0.5 * beta**2, rtol=1e-14, atol=0.0)
    assert np.isnan(rel[3:]).all()  # 2 ns is faster than light over 0.6 m; t = 0


def test_results_share_no_mutable_state():
    """Results are shallow copies of one cached layout: changing one result's values, attrs or
    variable attrs leaves the next result alone, and every value is this result's own array
    (no read-only, zero-stride placeholder of the layout is left in)."""
    exp = reference_experiment()
    first = simulate(exp)
    first["counts"].values[:] = -1.0
    first["isotope_depth_1e15"].values[:] = -1.0
    first.attrs["title"] = "changed"
    first["counts"].attrs["units"] = "changed"
    first["channel"].attrs["note"] = "changed"
    second = simulate(exp)
    assert (second["counts"].values >= 0).all() and second["counts"].values.sum() > 0
    assert not (second["isotope_depth_1e15"].values == -1.0).any()
    assert second.attrs["title"].startswith("recoilsim") and second["counts"].attrs["units"] == "counts"
    assert "note" not in second["channel"].attrs
    for name, var in second.variables.items():
        if name not in second.xindexes:
            assert var.values.flags.writeable and 0 not in var.values.strides, name
            assert var.values.base is not first.variables[name].values.base or var.values.base is None, name


def _block_address(ds) -> int:
    """Address of the memory behind a result's per-channel arrays (their common base)."""
    return ds["isotope_depth_1e15"].values.base.__array_interface__["data"][0]


def test_a_dropped_results_block_is_used_again_and_a_held_one_never():
    """The last result's block is the next result's only when nothing refers to it: not while the
    result is held, not while only one view of one of its variables is held; a held result keeps
    its values through later simulations of another experiment of the same shape."""
    li_rich = reference_experiment(Profile("Li", [0, 30], [1.25, 1.0], kind="ratio"))
    first = simulate(reference_experiment())
    address = _block_address(first)
    kept = first.copy(deep=True)
    second = simulate(li_rich)
    assert _block_address(second) != address
    xr.testing.assert_identical(first, kept)
    view = first["depth_nm"].values[1:]  # a view of the block, the result itself gone
    del first
    third = simulate(li_rich)
    assert _block_address(third) != address
    np.testing.assert_array_equal(view, kept["depth_nm"].values[1:])
    xr.testing.assert_identical(third, second)
    del view, second, kept
    fourth = simulate(li_rich)  # third still held: its block is not free
    assert _block_address(fourth) != _block_address(third)
    address = _block_address(fourth)
    del fourth
    fifth = simulate(li_rich)
    assert _block_address(fifth) == address  # the dropped result's memory again
    xr.testing.assert_identical(fifth, third)


def test_a_reused_block_is_written_everywhere(monkeypatch):
    """Every value of a result is written: with a block full of garbage (a reused block holds the last
    result's values) the result is still the straightforward construction's."""
    import recoilsim.forward.dataset as dataset

    monkeypatch.setattr(dataset._SPARE, "take", lambda shape: np.full(shape, 1.2345e300))
    for make in (_scattered, _falling, _fine_partial_densities):
        xr.testing.assert_identical(simulate(make()), _straightforward(make()))


def test_results_from_threads_are_those_of_one_thread():
    """Simulations in four threads at once (as dask's threaded scheduler runs them), each result checked and
    dropped in its thread (so that blocks are freed and taken again), give each experiment's result of a
    serial run: no two threads write into one block."""
    from concurrent.futures import ThreadPoolExecutor

    exps = [reference_experiment(), reference_experiment(Profile("Li", [0, 30], [1.25, 1.0], kind="ratio"))]
    serial = [simulate(e) for e in exps]
    with ThreadPoolExecutor(4) as pool:
        same = list(pool.map(lambda k: simulate(exps[k % 2]).identical(serial[k % 2]), range(48)))
    assert all(same)


@pytest.mark.parametrize("step_ns", [0.37, 3.0, 40.0])
def test_depth_rows_bricks_narrower_than_channels(step_ns):
    """Bricks narrower than a channel (several edges between two channel times, which the
    kernel's bisection skips over), long runs of channels before the first and after the last
    edge, and channels on edges: numpy.interp's values bit for bit, NaN depths included."""
    rng = np.random.default_rng(11)
    n = 400
    ta = np.sort(rng.uniform(100.0, 300.0, (2, n)), axis=1)
    tb = np.concatenate([ta[:, 1:], ta[:, -1:] + 0.5], axis=1)
    x_edge = np.concatenate([[0.0], np.cumsum(rng.uniform(0.5, 2.0, n))])
    times = np.arange(0.0, 1000.0, step_ns)
    times[np.searchsorted(times, ta[0, 17])] = ta[0, 17]
    times = np.sort(times)
    nan_part = x_edge.copy()
    nan_part[n // 2:] = np.nan
    for y in (x_edge, nan_part):
        rows = np.full((2, times.size), -1.0)
        done = np.zeros(2, dtype=bool)
        depth_rows(times, ta, tb, n, y, rows, done)
        assert done.all()
        for i in range(2):
            t_e = np.append(ta[i], tb[i, -1])
            expect = np.interp(times, t_e, y, left=np.nan, right=np.nan)
            assert np.array_equal(rows[i], expect, equal_nan=True), i
