"""The fits hold BLAS to one thread while they run and give the threads back afterwards."""

import pytest

threadpoolctl = pytest.importorskip("threadpoolctl")

from recoilsim.fitting.blas_threads import one_blas_thread  # noqa: E402


def _blas_threads():
    return [m["num_threads"] for m in threadpoolctl.threadpool_info() if m["user_api"] == "blas"]


def test_one_thread_inside_and_restored_after_each_use():
    import scipy.linalg  # noqa: F401  (its BLAS too)
    before = _blas_threads()
    assert before, "no BLAS library found by threadpoolctl"
    for _ in range(2):  # the second use goes through the kept controller
        with one_blas_thread():
            assert _blas_threads() == [1] * len(before)
        assert _blas_threads() == before
