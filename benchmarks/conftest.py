"""Benchmark settings: ``RECOILSIM_BENCH=quick`` (default; CI, the whole run takes seconds) or
``RECOILSIM_BENCH=full`` (measurements for benchmarks/README.md).

    RECOILSIM_BENCH=quick pytest benchmarks --benchmark-json=bench.json
    python benchmarks/compare.py base.json bench.json

Quick mode caps each benchmark at a few rounds (``--benchmark-max-time`` 0.05 s, at least
3 rounds) and uses small batches; full mode keeps pytest-benchmark's defaults with at least
10 rounds and 1 s per benchmark, and the large batch sizes. Options given on the command line
win over both.
"""

import os

import pytest

MODE = os.environ.get("RECOILSIM_BENCH", "quick").strip().lower()
if MODE not in ("quick", "full"):
    raise pytest.UsageError(f"RECOILSIM_BENCH = {MODE!r} is not valid: 'quick' or 'full'")
QUICK = MODE == "quick"

#: sizes used by the benchmarks, per mode
SIZES = {
    "quick": {"batch": 20_000, "batch_spectra": 2_000, "stream": 100_000},
    "full": {"batch": 200_000, "batch_spectra": 20_000, "stream": 2_000_000},
}[MODE]

_DEFAULTS = {"benchmark_max_time": 1.0, "benchmark_min_rounds": 5}
_MODE_OPTS = {
    "quick": {"benchmark_max_time": 0.05, "benchmark_min_rounds": 3},
    "full": {"benchmark_max_time": 1.0, "benchmark_min_rounds": 10},
}[MODE]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    for name, value in _MODE_OPTS.items():
        cur = getattr(config.option, name, None)
        if cur is None or str(cur) == str(_DEFAULTS[name]):  # not set on the command line
            setattr(config.option, name, value)
    config.addinivalue_line("markers", "full_only: runs only with RECOILSIM_BENCH=full")


def pytest_collection_modifyitems(config, items):
    if QUICK:
        skip = pytest.mark.skip(reason="RECOILSIM_BENCH=quick (set RECOILSIM_BENCH=full)")
        for it in items:
            if "full_only" in it.keywords:
                it.add_marker(skip)


def pytest_report_header(config):
    return f"recoilsim benchmarks: RECOILSIM_BENCH={MODE}"


@pytest.fixture(scope="session")
def sizes():
    return SIZES
