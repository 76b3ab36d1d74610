"""Batch screening: forward-model many candidate depth profiles of one element at once.

**This uses the linearised model** (:class:`recoilsim.forward.linear_model.LinearModel`): the slab kernel runs
once at the nominal composition, and the spectrum of the element for node values ``v``
(multipliers of its nominal amount on the depth nodes) is ``scale * (c + A @ v)``. The stopping
stays that of the nominal composition whatever the candidate, so a candidate far from nominal
differs from a full :func:`recoilsim.forward.simulate.simulate` of the same profile by the change of
stopping it would cause (measured in tests/test_batch.py and benchmarks/README.md; a few
per mille for the reference case with +50 % Li). Re-linearise (``LinearModel(base=...)``) around
a profile of interest when that matters, and confirm a short list with the full model.

The arithmetic runs in a Numba ``parallel=True`` kernel (:mod:`recoilsim.kernels.batch`), chunk
by chunk, so memory stays bounded whatever the number of candidates; with ``device='cuda'`` in
the CUDA kernel (:mod:`recoilsim.kernels.cuda_batch`).
"""

from __future__ import annotations

import math
import time

import numpy as np
import xarray as xr

from ..errors import RecoilsimError
from ..kernels import batch as kb
from .reporting import reporter

#: default bytes per chunk of spectra (the working set of one kernel call)
CHUNK_BYTES = 64 * 2**20


def _model(exp, element, layer, depth_nm):
    from .linear_model import LinearModel
    from ..model.experiment import Experiment

    if isinstance(exp, LinearModel):
        if depth_nm is not None and not np.array_equal(np.asarray(depth_nm, dtype=float), exp.depth_nm):
            raise RecoilsimError("depth_nm", depth_nm, "the nodes of the LinearModel given (or None)")
        return exp
    if not isinstance(exp, Experiment):
        raise RecoilsimError("experiment", type(exp).__name__, "an Experiment or a LinearModel")
    return LinearModel(exp, element=element, layer=layer, depth_nm=depth_nm)


def _blocks(candidates, n_nodes, chunk):
    """Yield (start, block) with blocks of at most ``chunk`` rows, validated."""
    if isinstance(candidates, np.ndarray) or isinstance(candidates, (list, tuple)) and candidates \
            and np.ndim(candidates[0]) == 1:
        arr = np.asarray(candidates, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[None, :]
        parts = (arr[i:i + chunk] for i in range(0, arr.shape[0], chunk))
    else:
        def _split():
            for blk in candidates:
                blk = np.asarray(blk, dtype=np.float64)
                if blk.ndim == 1:
                    blk = blk[None, :]
                for i in range(0, blk.shape[0], chunk):
                    yield blk[i:i + chunk]
        parts = _split()
    start = 0
    for blk in parts:
        if blk.ndim != 2 or blk.shape[1] != n_nodes:
            raise RecoilsimError("candidates", f"block of shape {blk.shape}",
                                 f"an array (n_candidates, {n_nodes}): one value per depth node")
        if not np.isfinite(blk).all() or (blk < 0).any():
            raise RecoilsimError("candidates", f"rows {start}..{start + blk.shape[0] - 1}",
                                 "finite values >= 0 (multipliers of the nominal amount)")
        yield start, np.ascontiguousarray(blk)
        start += blk.shape[0]


def _pick_device(device):
    if device not in ("cpu", "cuda", "auto"):
        raise RecoilsimError("device", device, "'cpu', 'cuda' or 'auto'")
    if device == "cpu":
        return "cpu"
    from ..kernels import cuda_batch

    if cuda_batch.available():
        return "cuda"
    if device == "cuda":
        raise RecoilsimError("device", device, "a machine where numba.cuda.is_available() is True (no CUDA "
                             "GPU found here); use device='cpu' or 'auto'")
    return "cpu"


def simulate_batch(exp, candidates, element: str = "Li", layer: int | str = 1, depth_nm=None,
                   measured=None, *, a_ns: float | None = None, b_ns: float | None = None,
                   scale: float = 1.0, spectra: bool | int = True, window=None,
                   chunk: int | None = None, device: str = "cpu",
                   memory_limit_gb: float = 1.0, progress=False) -> xr.Dataset:
    """Spectra of many candidate profiles of one element, and their ranking against a measurement.

    Uses the **linearised model** (stopping held at the nominal composition; see the module
    docstring): spectra = ``scale * (c + A @ v)`` for each candidate ``v``.

    Parameters
    ----------
    exp : Experiment or LinearModel
        The experiment (a :class:`~recoilsim.forward.linear_model.LinearModel` is built from it with
        ``element``, ``layer`` and ``depth_nm``), or a ready LinearModel (reused: its columns
        are computed once per calibration).
    candidates : array (n_candidates, n_nodes) or iterable of such arrays
        Node values of each candidate (multipliers of the nominal amount, >= 0). An iterable
        (e.g. a generator) is consumed block by block, so the candidates never need to fit in
        memory at once.
    element, layer, depth_nm
        The free element, its layer (index or name) and the depth nodes (nm from the top of the
        layer), as :class:`~recoilsim.forward.linear_model.LinearModel`.
    measured : array (n_channels,), optional
        Measured counts of ``element`` per channel. When given, every candidate gets its Poisson
        deviance ``2 sum[mu - n + n ln(n/mu)]`` and Neyman chi-square
        ``sum (n - mu)^2 / max(n, 1)``, computed in the same kernel pass, and a rank (0 = best
        deviance).
    a_ns, b_ns : float, optional
        TOF calibration (default: the experiment's).
    scale : float
        Multiplies Q*Omega (the whole spectrum of the element).
    spectra : bool or int
        True: return every spectrum (refused when they would exceed ``memory_limit_gb``);
        False: ranking only (streams; memory independent of n_candidates except the per-candidate
        statistics); an int k: the spectra and values of the k best candidates by deviance only.
    window : (lo, hi) or bool array (n_channels,), optional
        Channels that count in the ranking (default: all).
    chunk : int, optional
        Candidates per kernel call (default: 64 MiB of spectra per chunk).
    device : {'cpu', 'cuda', 'auto'}
        'cuda' needs ``numba.cuda.is_available()`` (an error otherwise); 'auto' uses CUDA when
        available and the CPU otherwise.
    memory_limit_gb : float
        Largest result (spectra) returned whole.
    progress : bool or callable
        True: a rich progress bar over the candidates; a callable ``f(done, total)``: called after
        each chunk with the candidates done so far (``total`` None for an iterable of blocks).

    Returns
    -------
    xarray.Dataset
        dims ``candidate``, ``channel``, ``node``: ``counts(candidate, channel)`` (when spectra
        are kept), ``values(candidate, node)`` (when the candidates are kept), ``deviance``,
        ``chi2``, ``deviance_rank`` (candidate; with ``measured``; 0 = best); coordinates ``candidate_index``
        (position in the input), ``depth_nm(node)``, ``time_ns(channel)``; attrs: the model
        (``'linearised'``), element, layer, calibration, scale, device, n_candidates, elapsed_s,
        candidates_per_s.
    """
    t0 = time.perf_counter()
    model = _model(exp, element, layer, depth_nm)
    dev_name = _pick_device(device)
    scale = float(scale)
    if not (math.isfinite(scale) and scale > 0):
        raise RecoilsimError("scale", scale, "a finite number > 0")
    A, c = model.columns(a_ns, b_ns)
    A = np.ascontiguousarray(scale * A)
    c = np.ascontiguousarray(scale * c)
    n_ch, n_nodes = A.shape
    lo, hi, jlo, jhi = kb.band(A, c, 0.0)
    keep_k = None
    if isinstance(spectra, (bool, np.bool_)):
        want_all = bool(spectra)
    elif isinstance(spectra, (int, np.integer)) and spectra >= 0:
        want_all, keep_k = False, int(spectra)
    else:
        raise RecoilsimError("spectra", spectra, "True, False or a number k >= 0 of best candidates to keep")

    meas = use = None
    dev0 = chi0 = 0.0
    if measured is not None:
        meas = np.asarray(getattr(measured, "values", measured), dtype=np.float64).ravel()
        if meas.shape != (n_ch,) or not np.all(np.isfinite(meas)) or np.any(meas < 0):
            raise RecoilsimError("measured", f"array of shape {np.shape(measured)}",
                                 f"{n_ch} finite counts >= 0, one per channel")
        meas = np.ascontiguousarray(meas)
        use = np.ones(n_ch, dtype=np.bool_)
        if window is not None:
            w = np.asarray(window)
            if w.dtype == bool and w.shape == (n_ch,):
                use = np.ascontiguousarray(w)
            elif w.shape == (2,):
                wl, wh = int(w[0]), int(w[1])
                if not 0 <= wl < wh <= n_ch:
                    raise RecoilsimError("window", window, f"channels (lo, hi) with 0 <= lo < hi <= {n_ch}")
                use = np.zeros(n_ch, dtype=np.bool_)
                use[wl:wh] = True
            else:
                raise RecoilsimError("window", window, f"(lo, hi) channels or a boolean mask of {n_ch} channels")
        dev0, chi0 = kb.fixed_stats(c, meas, use, lo, hi)
    elif keep_k is not None:
        raise RecoilsimError("spectra", spectra, "True or False when no measured spectrum ranks the candidates")
    elif not want_all:
        raise RecoilsimError("spectra", spectra, "True when no measured spectrum is given (nothing else to return)")

    if chunk is None:
        chunk = max(1, min(1 << 16, CHUNK_BYTES // (8 * n_ch)))
    chunk = int(chunk)
    if chunk < 1:
        raise RecoilsimError("chunk", chunk, "a number of candidates >= 1")
    n_known = None
    if isinstance(candidates, np.ndarray):
        n_known = candidates.shape[0] if candidates.ndim == 2 else 1
    limit = float(memory_limit_gb) * 2**30
    if want_all and n_known is not None and n_known * n_ch * 8 > limit:
        raise RecoilsimError("spectra", True, f"False or a number of best candidates: {n_known} spectra of {n_ch} "
                             f"channels need {n_known * n_ch * 8 / 2**30:.2f} GiB > memory_limit_gb="
                             f"{memory_limit_gb}")

    gpu = None
    if dev_name == "cuda":
        from ..kernels.cuda_batch import CudaBatch
        gpu = CudaBatch(A, c, lo, hi, jlo, jhi, meas, use, dev0, chi0)

    spec_parts, dev_parts, chi_parts, val_parts = [], [], [], []
    best_dev = np.zeros(0)
    best_idx = np.zeros(0, dtype=np.int64)
    best_V = np.zeros((0, n_nodes))
    keep_values = want_all or isinstance(candidates, np.ndarray)
    dummy = np.zeros((1, 1))
    n_total = 0
    with reporter(progress, n_known, "screening") as step:
        for start, V in _blocks(candidates, n_nodes, chunk):
            m = V.shape[0]
            n_total += m
            if want_all and n_total * n_ch * 8 > limit:
                raise RecoilsimError("spectra", True, f"False or a number of best candidates: more than {n_total} "
                                     f"spectra exceed memory_limit_gb={memory_limit_gb}")
            if gpu is not None:
                d, x2, out = gpu.run(V, want_spec=want_all)
            else:
                out = np.empty((m, n_ch)) if want_all else dummy
                if meas is None:
                    kb.batch_spectra(A, c, lo, hi, jlo, jhi, V, out)
                    d = x2 = None
                else:
                    d = np.empty(m)
                    x2 = np.empty(m)
                    kb.batch_rank(A, c, lo, hi, jlo, jhi, V, meas, use, dev0, chi0, d, x2, want_all, out)
            if want_all:
                spec_parts.append(out)
            if keep_values and keep_k is None:
                val_parts.append(V)
            if d is not None:
                if keep_k is None:
                    dev_parts.append(d)
                    chi_parts.append(x2)
                else:
                    cd = np.concatenate([best_dev, d])
                    ci = np.concatenate([best_idx, np.arange(start, start + m)])
                    cv = np.concatenate([best_V, V])
                    if cd.size > keep_k:
                        sel = np.argpartition(cd, keep_k - 1)[:keep_k] if keep_k else np.zeros(0, dtype=np.int64)
                        cd, ci, cv = cd[sel], ci[sel], cv[sel]
                    best_dev, best_idx, best_V = cd, ci, cv
            step(n_total)
    if n_total == 0:
        raise RecoilsimError("candidates", "empty", "at least one candidate")

    data = {}
    if keep_k is not None:
        order = np.lexsort((best_idx, best_dev))
        best_dev, best_idx, best_V = best_dev[order], best_idx[order], np.ascontiguousarray(best_V[order])
        spec = np.empty((best_V.shape[0], n_ch))
        if best_V.shape[0]:
            kb.batch_spectra(A, c, lo, hi, jlo, jhi, best_V, spec)
        x2b = np.empty(best_V.shape[0])
        d_chk = np.empty(best_V.shape[0])
        if best_V.shape[0]:
            kb.batch_rank(A, c, lo, hi, jlo, jhi, best_V, meas, use, dev0, chi0, d_chk, x2b, False, dummy)
        idx = best_idx
        data["counts"] = (("candidate", "channel"), spec)
        data["values"] = (("candidate", "node"), best_V)
        data["deviance"] = ("candidate", best_dev)
        data["chi2"] = ("candidate", x2b)
        data["deviance_rank"] = ("candidate", np.arange(best_V.shape[0]))
    else:
        idx = np.arange(n_total)
        if want_all:
            data["counts"] = (("candidate", "channel"), spec_parts[0] if len(spec_parts) == 1 else
                              np.concatenate(spec_parts))
        if keep_values:
            data["values"] = (("candidate", "node"), val_parts[0] if len(val_parts) == 1 else np.concatenate(val_parts))
        if meas is not None:
            dv = np.concatenate(dev_parts)
            data["deviance"] = ("candidate", dv)
            data["chi2"] = ("candidate", np.concatenate(chi_parts))
            rank = np.empty(n_total, dtype=np.int64)
            rank[np.lexsort((idx, dv))] = np.arange(n_total)
            data["deviance_rank"] = ("candidate", rank)
    elapsed = time.perf_counter() - t0
    det = model.exp.detector
    a = model.a_ns if a_ns is None else float(a_ns)
    b = model.b_ns if b_ns is None else float(b_ns)
    ds = xr.Dataset(
        data,
        coords={
            "candidate_index": ("candidate", idx),
            "depth_nm": ("node", model.depth_nm),
            "channel": np.arange(n_ch),
            "time_ns": ("channel", a * np.arange(n_ch) + b),
        },
        attrs={
            "title": f"recoilsim batch screening of {model.element} profiles",
            "model": "linearised: counts = scale*(c + A @ values), stopping held at the nominal composition "
                     "(recoilsim.forward.linear_model.LinearModel)",
            "element": model.element, "layer": int(model.layer), "calibration_a_ns": a, "calibration_b_ns": b,
            "scale": scale, "device": dev_name, "n_candidates": int(n_total), "elapsed_s": elapsed,
            "candidates_per_s": n_total / elapsed if elapsed > 0 else float("inf"),
            "experiment": model.exp.name, "n_channels": int(det.n_channels),
        },
    )
    if "counts" in ds:
        ds["counts"].attrs.update(units="counts", long_name=f"{model.element} counts per channel (linearised model)")
    if "deviance" in ds:
        ds["deviance"].attrs.update(long_name="Poisson deviance 2*sum[mu - n + n ln(n/mu)] against measured")
        ds["chi2"].attrs.update(long_name="Neyman chi-square sum (n - mu)^2 / max(n, 1) against measured")
        ds["deviance_rank"].attrs.update(long_name="rank by deviance (0 = best)")
    ds["depth_nm"].attrs.update(units="nm", long_name=f"profile node depth from the top of layer {model.layer}")
    return ds
