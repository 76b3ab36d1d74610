"""Progress notices: the compile notice follows Numba's on-disk cache."""

import os
import subprocess
import sys

from recoilsim.workflows.progress import kernels_cached, simulation_status


def test_cold_cache_gives_the_compile_notice(tmp_path):
    """An empty NUMBA_CACHE_DIR: nothing cached, so the status says the kernels compile."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"))
    code = ("from recoilsim.workflows.progress import kernels_cached, simulation_status;"
            "print(kernels_cached()); print(simulation_status('x'))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["False", "simulating x: compiling kernels (first run only, ~15 s) ..."]


def test_warm_process_gives_the_plain_notice():
    from recoilsim.forward.simulate import simulate
    from recoilsim.model.experiment import reference_experiment

    simulate(reference_experiment(recoils=("Li",)))  # kernels now compiled or loaded here
    assert kernels_cached()
    assert simulation_status("x") == "simulating x ..."
