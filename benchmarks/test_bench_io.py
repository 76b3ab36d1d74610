"""I/O benchmarks: reading and histogramming synthetic Potku list-mode data.

Run with ``pytest benchmarks/test_bench_io.py`` (pytest-benchmark). The 1e7-event case runs
once (``RECOILSIM_BENCH_1E7=1``) and prints its time and peak memory (budget: seconds, < 1 GB).
"""

import os
import resource
import time

import numpy as np
import pytest

from recoilsim.analysis.element_spectra import tof_e_histogram, tof_spectra
from recoilsim.io.potku_events import read_asc
from recoilsim.io.potku_selections import Selection


def _write_events(path, n, seed=0):
    """Write n synthetic 'TOF E' lines fast (fixed-width, zero-padded 4-digit channels)."""
    rng = np.random.default_rng(seed)
    chunk = 1_000_000
    with open(path, "wb") as f:
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            v = rng.integers(0, 8192, size=(m, 2))
            digits = np.empty((m, 10), dtype=np.uint8)
            for col, off in ((0, 0), (1, 5)):
                x = v[:, col]
                for k in range(4):
                    digits[:, off + 3 - k] = 48 + (x // 10**k) % 10
            digits[:, 4] = ord(" ")
            digits[:, 9] = ord("\n")
            f.write(digits.tobytes())
    return path


SELS = [
    Selection("ERD", "Li", 7, 1.0, None, "r", np.array([1169, 1276, 1476, 2265, 2258, 1875, 1383, 1138]),
              np.array([3567, 3007, 2188, 827, 732, 1165, 2268, 3491])),
    Selection("ERD", "Mn", None, 1.0, None, "b", np.array([2453, 3112, 4266, 5247, 5241, 4147, 3011, 2413]),
              np.array([4989, 3022, 1454, 899, 743, 1304, 2783, 4859])),
]


@pytest.fixture(scope="module")
def asc_1e6(tmp_path_factory):
    return _write_events(tmp_path_factory.mktemp("bench") / "e1e6.asc", 1_000_000)


def test_read_asc_1e6(benchmark, asc_1e6):
    ev = benchmark(read_asc, asc_1e6)
    assert ev.sizes["event"] == 1_000_000


def test_histogram_and_cuts_1e6(benchmark, asc_1e6):
    ev = read_asc(asc_1e6)

    def run():
        h = tof_e_histogram(ev, 8, 8)
        s = tof_spectra(ev, SELS, n_channels=8192)
        return h, s

    h, s = benchmark(run)
    assert int(h.sum()) == 1_000_000


@pytest.mark.skipif(not os.environ.get("RECOILSIM_BENCH_1E7"), reason="set RECOILSIM_BENCH_1E7=1 for the 1e7 run")
def test_read_asc_1e7_once(tmp_path):
    p = _write_events(tmp_path / "e1e7.asc", 10_000_000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    ev = read_asc(p)
    t1 = time.perf_counter()
    s = tof_spectra(ev, SELS, n_channels=8192)
    h = tof_e_histogram(ev, 8, 8)
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(f"\n1e7 events: read {t1 - t0:.2f} s, cuts+histogram {t2 - t1:.2f} s, "
          f"peak RSS {peak / 1024:.0f} MiB (before {before / 1024:.0f} MiB)")
    assert ev.sizes["event"] == 10_000_000 and int(h.sum()) == 10_000_000
    assert float(s["counts"].sum()) <= 10_000_000
    assert peak / 1024 < 1024
