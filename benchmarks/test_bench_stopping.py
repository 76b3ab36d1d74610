"""Benchmarks of the stopping lookup and energy-loss transport (pytest-benchmark).

    pytest benchmarks/test_bench_stopping.py

Each kernel call is timed inside a small Numba loop (1000 calls) so the Python call overhead
does not dominate; the reported time is per 1000 calls.
"""

import numpy as np
import pytest
from numba import njit

from recoilsim.stopping import tables as rs
from recoilsim.kernels.stopping import compound_stopping
from recoilsim.kernels.transport import energy_after, stack_energy_after

CU63 = (29, 62.9295975)
LI7 = (3, 7.0160034)


@pytest.fixture(scope="module")
def tables():
    return rs.particle_tables([CU63, LI7], ["Li", "P", "O", "N", "Cu"])


@njit(cache=True)
def _many_lookups(E, mass, S_p, frac, lnE0, dlnE):
    s = 0.0
    for k in range(E.shape[0]):
        s += compound_stopping(E[k], mass, S_p, frac, lnE0, dlnE)
    return s


@njit(cache=True)
def _many_energy_after(E, mass, S_p, frac, lnE0, dlnE, path):
    s = 0.0
    for k in range(E.shape[0]):
        s += energy_after(E[k], mass, S_p, frac, lnE0, dlnE, path)
    return s


@njit(cache=True)
def _many_stack(E, mass, S_p, fracs, lnE0, dlnE, paths):
    s = 0.0
    for k in range(E.shape[0]):
        s += stack_energy_after(E[k], mass, S_p, fracs, lnE0, dlnE, paths)
    return s


def _lipon():
    f = np.array([2.0, 1.0, 2.6, 0.9, 0.0])
    return f / f.sum()


def test_bench_compound_lookup_lipon(benchmark, tables):
    """1000 Bragg-rule lookups of 7Li in LiPON (4 elements)."""
    E = np.random.default_rng(0).uniform(0.1, 2.0, 1000)
    args = (E, LI7[1], tables.S[1], _lipon(), tables.lnE0, tables.dlnE)
    _many_lookups(*args)
    benchmark(_many_lookups, *args)


def test_bench_energy_after_30nm_cu(benchmark, tables):
    """1000 x energy_after: 7Li (1-2 MeV) through 30 nm Cu (253.6e15 at/cm2)."""
    E = np.random.default_rng(0).uniform(1.0, 2.0, 1000)
    cu = np.array([0.0, 0, 0, 0, 1.0])
    args = (E, LI7[1], tables.S[1], cu, tables.lnE0, tables.dlnE, 253.6)
    _many_energy_after(*args)
    benchmark(_many_energy_after, *args)


def test_bench_energy_after_1um_lipon_cu_beam(benchmark, tables):
    """1000 x energy_after: 63Cu (8-9 MeV) through 1 um LiPON (9879e15 at/cm2, ~40 % loss)."""
    E = np.random.default_rng(0).uniform(8.0, 9.0, 1000)
    args = (E, CU63[1], tables.S[0], _lipon(), tables.lnE0, tables.dlnE, 9878.6)
    _many_energy_after(*args)
    benchmark(_many_energy_after, *args)


def test_bench_stack_cu_lipon(benchmark, tables):
    """1000 x stack_energy_after: 7Li exiting through 30 nm Cu + 100 nm LiPON."""
    E = np.random.default_rng(0).uniform(1.0, 2.0, 1000)
    fr = np.stack([np.array([0.0, 0, 0, 0, 1.0]), _lipon()])
    args = (E, LI7[1], tables.S[1], fr, tables.lnE0, tables.dlnE, np.array([253.6, 988.0]))
    _many_stack(*args)
    benchmark(_many_stack, *args)


def test_bench_particle_tables(benchmark):
    """Building S and W rows for 8 particles x 6 elements (Yang straggling)."""
    parts = [CU63, LI7, (3, 6.015), (15, 30.97), (8, 15.995), (7, 14.003), (6, 12.0), (1, 1.008)]
    benchmark(rs.particle_tables, parts, ["Li", "P", "O", "N", "Cu", "C"])
