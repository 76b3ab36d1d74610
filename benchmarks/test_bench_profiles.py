"""Benchmark: depth profiles of Li, O, Mn and Si of the worked example (the Potku data
../shared/data/potku-ecaart-11-mini, examples/potku_ecaart.toml): fit_profiles with 30 nodes,
Q*Omega, TOF offset and backgrounds free, evidence over 17 lambdas, re-linearised until settled,
bands from 2000 posterior draws. Target: at most 5 s on 2 cores (docs/depth_profiles.md)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "potku-ecaart-11-mini"


@pytest.mark.skipif(not (DATA / "Tof-E_65-mini.asc").is_file(), reason=f"real Potku data not present ({DATA})")
def test_bench_profiles_potku(benchmark):
    from recoilsim.workflows.potku import load_case
    from recoilsim.workflows.potku_profiles import fit_case_profiles
    case = load_case(ROOT / "examples" / "potku_ecaart.toml")
    fit_case_profiles(case, verify=False)  # compile the kernels outside the timing
    r = benchmark.pedantic(lambda: fit_case_profiles(case, verify=False), rounds=3, iterations=1)
    assert r.converged, r.message  # the real data sit near the poor_fit limit (docs/depth_profiles.md)
