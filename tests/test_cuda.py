"""CUDA batch kernel (recoilsim.kernels.cuda_batch) against the CPU kernel.

On a machine with a CUDA GPU the real kernel is compared with the CPU result. Without one, the
same kernel runs in numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, set in a subprocess
because it must be set before numba is imported) on a small synthetic problem.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from recoilsim.kernels import cuda_batch

HAS_GPU = cuda_batch.available() and os.environ.get("NUMBA_ENABLE_CUDASIM", "0") != "1"

SCRIPT = textwrap.dedent("""
    import numpy as np
    from recoilsim.kernels import batch as kb, cuda_batch
    assert cuda_batch.available()
    rng = np.random.default_rng(3)
    n_ch, n_nodes, n = {n_ch}, {n_nodes}, {n}
    A = np.zeros((n_ch, n_nodes))
    for j in range(n_nodes):
        A[10 + 2 * j:18 + 2 * j, j] = rng.random(8)
    c = 0.5 * rng.random(n_ch)
    V = 2 * rng.random((n, n_nodes))
    meas = rng.poisson(c + A @ np.ones(n_nodes)).astype(float)
    use = np.ones(n_ch, dtype=np.bool_); use[:3] = False
    lo, hi, jlo, jhi = kb.band(A, c, 0.0)
    d0, x0 = kb.fixed_stats(c, meas, use, lo, hi)
    d = np.empty(n); x2 = np.empty(n); out = np.empty((n, n_ch))
    kb.batch_rank(A, c, lo, hi, jlo, jhi, V, meas, use, d0, x0, d, x2, True, out)
    g = cuda_batch.CudaBatch(A, c, lo, hi, jlo, jhi, meas, use, d0, x0)
    gd, gx, gout = g.run(V, want_spec=True)
    print("max rel diff", np.max(np.abs(gd - d) / np.abs(d)), np.max(np.abs(gout - out)))
    np.testing.assert_allclose(gd, d, rtol=1e-10)
    np.testing.assert_allclose(gx, x2, rtol=1e-10)
    np.testing.assert_allclose(gout, out, rtol=1e-12, atol=1e-12)
    gd2, gx2, none = g.run(V, want_spec=False)
    assert none is None
    np.testing.assert_allclose(gd2, d, rtol=1e-10)
    print("OK")
""")


def test_cuda_module_imports_without_gpu():
    # importing and asking never raises, whatever the machine
    assert isinstance(cuda_batch.available(), bool)


def test_cuda_kernel_in_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    # the simulator runs each thread in Python: a tiny problem (2 blocks of 128 threads)
    code = SCRIPT.format(n_ch=40, n_nodes=6, n=2)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK" in r.stdout


@pytest.mark.skipif(not HAS_GPU, reason="no CUDA GPU (numba.cuda.is_available() is False)")
def test_cuda_matches_cpu_on_gpu():
    exec(compile(SCRIPT.format(n_ch=1024, n_nodes=31, n=5000), "cuda_check", "exec"), {})


@pytest.mark.skipif(not HAS_GPU, reason="no CUDA GPU (numba.cuda.is_available() is False)")
def test_simulate_batch_cuda_matches_cpu():
    from recoilsim.forward.linear_model import LinearModel
    from recoilsim.forward.screening import simulate_batch
    from recoilsim.model.experiment import reference_experiment

    nodes = np.arange(0.0, 31.0)
    lm = LinearModel(reference_experiment(), "Li", 1, depth_nm=nodes)
    rng = np.random.default_rng(1)
    V = 1 + 0.5 * rng.random((20_000, nodes.size))
    meas = rng.poisson(lm.spectrum(V[0])).astype(float)
    cpu = simulate_batch(lm, V, measured=meas, device="cpu")
    gpu = simulate_batch(lm, V, measured=meas, device="cuda")
    assert gpu.attrs["device"] == "cuda"
    rel = np.max(np.abs(gpu.deviance.values - cpu.deviance.values) / cpu.deviance.values)
    print(f"GPU vs CPU deviance max relative difference {rel:.2e}")
    assert rel < 1e-10
    np.testing.assert_allclose(gpu.counts.values, cpu.counts.values, rtol=1e-12, atol=1e-10)
    np.testing.assert_array_equal(gpu.deviance_rank.values, cpu.deviance_rank.values)
