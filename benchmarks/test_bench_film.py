"""Benchmark: the worked example's film fit on real data (../shared/data/potku-ecaart-11-mini,
examples/potku_ecaart.toml: Li amount, Mn ratio, film thickness, two interface steps, Q*Omega,
TOF offset and a background per spectrum; re-nominalised until settled, 5 fits), with the
current defaults (multiple scattering on). Target (issue 17): at most 3 s; measured numbers in
benchmarks/README.md (session 5)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "potku-ecaart-11-mini"


@pytest.mark.skipif(not (DATA / "Tof-E_65-mini.asc").is_file(), reason=f"real Potku data not present ({DATA})")
def test_bench_film_potku(benchmark):
    from recoilsim.workflows.potku import fit_case, load_case
    case = load_case(ROOT / "examples" / "potku_ecaart.toml")
    fit_case(case)  # compile the kernels and import scipy.stats outside the timing
    r = benchmark.pedantic(lambda: fit_case(case), rounds=3, iterations=1)
    assert r.status in ("success", "poor_fit"), r.message  # the real data sit near the poor_fit limit
