"""CUDA variant of :mod:`recoilsim.kernels.batch` (numba.cuda): spectra and ranking of many
candidate profiles with the linear model ``s = c + A @ v``.

One thread block per candidate; its threads stride over the channels of the band ``[lo, hi)``
(reading the transposed response ``AT`` (n_nodes, n_ch) so neighbouring threads read
neighbouring addresses), write the spectrum when asked, and reduce the deviance and
chi-square terms in shared memory. The per-bin statistics are
:func:`recoilsim.kernels.statistics.poisson_bin_py`, the same plain-Python function the CPU
kernels compile with ``numba.njit``, compiled here with ``numba.cuda.jit(device=True)``.

Importing this module never needs a GPU: numba compiles the kernel at its first launch.
:func:`available` says whether a launch can work (a CUDA device, or numba's CUDA simulator
with ``NUMBA_ENABLE_CUDASIM=1``).
"""

import numpy as np

from .statistics import poisson_bin_py

try:  # numba.cuda imports without a GPU; guard against broken CUDA installs all the same
    from numba import cuda
    _IMPORT_ERROR = None
except Exception as exc:  # pragma: no cover - depends on the machine
    cuda = None
    _IMPORT_ERROR = exc

#: threads per block (power of two: the shared-memory reduction halves it)
TPB = 128


def available() -> bool:
    """True when numba.cuda can launch kernels here (a GPU, or the CUDA simulator)."""
    if cuda is None:
        return False
    try:
        return bool(cuda.is_available())
    except Exception:  # pragma: no cover
        return False


_KERNELS = {}


def _kernels():
    """Build the CUDA kernels once (lazily, so the module imports without CUDA)."""
    if _KERNELS:
        return _KERNELS["rank"], _KERNELS["spectra"]
    if cuda is None:  # pragma: no cover
        raise RuntimeError(f"numba.cuda could not be imported: {_IMPORT_ERROR}")

    stats = cuda.jit(device=True)(poisson_bin_py)  # the CPU kernels' per-bin function, compiled for the GPU

    @cuda.jit
    def rank(AT, c, lo, hi, jlo, jhi, V, meas, use, dev0, chi0, want_spec, dev, chi2, out):
        i = cuda.blockIdx.x
        t = cuda.threadIdx.x
        sd = cuda.shared.array(TPB, dtype=np.float64)
        sx = cuda.shared.array(TPB, dtype=np.float64)
        d = 0.0
        x2 = 0.0
        if i < V.shape[0]:
            n_ch = c.shape[0]
            k = t
            while k < n_ch:
                if k >= lo and k < hi:
                    s = 0.0
                    for j in range(jlo[k], jhi[k]):
                        s += AT[j, k] * V[i, j]
                    mu = c[k] + s
                    if use[k]:
                        dk, xk = stats(mu, meas[k])
                        d += dk
                        x2 += xk
                else:
                    mu = c[k]
                if want_spec:
                    out[i, k] = mu
                k += TPB
        sd[t] = d
        sx[t] = x2
        cuda.syncthreads()
        step = TPB // 2
        while step > 0:
            if t < step:
                sd[t] += sd[t + step]
                sx[t] += sx[t + step]
            cuda.syncthreads()
            step //= 2
        if t == 0 and i < V.shape[0]:
            dev[i] = sd[0] + dev0
            chi2[i] = sx[0] + chi0

    _KERNELS["rank"] = rank
    _KERNELS["spectra"] = None
    return rank, None


class CudaBatch:
    """A linear model held on the GPU, evaluated chunk by chunk.

    Parameters are those of :func:`recoilsim.kernels.batch.batch_rank`; ``meas``/``use`` may be
    None (spectra only).
    """

    def __init__(self, A, c, lo, hi, jlo, jhi, meas=None, use=None, dev0=0.0, chi0=0.0):
        if not available():
            raise RuntimeError("no CUDA device available to numba (numba.cuda.is_available() is False)")
        self.rank, _ = _kernels()
        n_ch = c.shape[0]
        self.n_ch = n_ch
        self.n_nodes = A.shape[1]
        self.AT = cuda.to_device(np.ascontiguousarray(A.T, dtype=np.float64))
        self.c = cuda.to_device(np.ascontiguousarray(c, dtype=np.float64))
        self.jlo = cuda.to_device(np.ascontiguousarray(jlo, dtype=np.int64))
        self.jhi = cuda.to_device(np.ascontiguousarray(jhi, dtype=np.int64))
        self.lo, self.hi = int(lo), int(hi)
        self.have_meas = meas is not None
        m = np.zeros(n_ch) if meas is None else np.ascontiguousarray(meas, dtype=np.float64)
        u = np.zeros(n_ch, dtype=np.bool_) if use is None else np.ascontiguousarray(use, dtype=np.bool_)
        self.meas = cuda.to_device(m)
        self.use = cuda.to_device(u)
        self.dev0, self.chi0 = float(dev0), float(chi0)
        self._dummy = cuda.to_device(np.zeros((1, 1)))

    def run(self, V, want_spec=True):
        """Evaluate a chunk of candidates V (n, n_nodes); returns (dev, chi2, spectra or None)
        as host arrays (dev/chi2 are meaningless without a measured spectrum)."""
        V = np.ascontiguousarray(V, dtype=np.float64)
        n = V.shape[0]
        dV = cuda.to_device(V)
        ddev = cuda.device_array(n, dtype=np.float64)
        dchi = cuda.device_array(n, dtype=np.float64)
        dout = cuda.device_array((n, self.n_ch), dtype=np.float64) if want_spec else self._dummy
        if n:
            self.rank[n, TPB](self.AT, self.c, self.lo, self.hi, self.jlo, self.jhi, dV,
                              self.meas, self.use, self.dev0, self.chi0, bool(want_spec), ddev, dchi, dout)
        dev = ddev.copy_to_host()
        chi2 = dchi.copy_to_host()
        out = dout.copy_to_host() if want_spec else None
        return dev, chi2, out

    @staticmethod
    def synchronize():
        cuda.synchronize()
