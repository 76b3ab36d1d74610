"""Many spectra at once (a series of measurements, a map, a parameter sweep) through dask.

:func:`simulate_many` sends each :class:`~recoilsim.model.experiment.Experiment` to a
``dask.distributed`` worker, runs the full :func:`~recoilsim.forward.simulate.simulate` there and
stacks the results along a ``run`` dimension.

Where it runs
-------------
* Default: a :class:`dask.distributed.LocalCluster` on this machine (one single-threaded worker
  process per core; the forward model is single-threaded Numba), closed afterwards.
* ``address='tcp://scheduler-host:8786'``: an existing cluster. Start one by hand with
  ``dask scheduler`` on one machine and ``dask worker tcp://scheduler-host:8786 --nthreads 1``
  on each compute node (every node needs recoilsim installed in the same version and Python), or
  with dask-jobqueue (SLURM/PBS) / dask-kubernetes, whose ``cluster.scheduler_address`` you pass
  here. The dashboard (``http://scheduler-host:8787``) shows the tasks live.
* ``client=``: a :class:`dask.distributed.Client` you already hold (kept open).
* ``client='synchronous'``: no distributed at all, one after the other in this process
  (debugging, tests).

Numba: each worker process compiles the kernels once or loads them from the on-disk cache
(``NUMBA_CACHE_DIR``, shared between processes on one machine); the first task on a fresh
worker therefore takes ~0.3 s longer (see benchmarks/README.md).
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from ..errors import RecoilsimError
from ..model.experiment import Experiment


def _run_one(exp: Experiment, simulate_kw: dict) -> xr.Dataset:
    from .simulate import simulate

    return simulate(exp, **simulate_kw)


def _combine(results: list, labels: list) -> xr.Dataset:
    exps = [r.attrs.get("experiment", "") for r in results]
    stripped = []
    for r in results:
        r = r.copy()
        r.attrs = {k: v for k, v in r.attrs.items() if k != "experiment"}
        stripped.append(r)
    ds = xr.concat(stripped, dim="run", data_vars="all", coords="different", compat="equals", join="outer",
                   combine_attrs="drop_conflicts")
    ds = ds.assign_coords(run=labels)
    ds["experiment"] = ("run", np.asarray(exps, dtype=object).astype(str))
    ds["experiment"].attrs.update(long_name="JSON of every input of each run")
    ds.attrs["title"] = f"recoilsim: {len(results)} TOF-ERDA simulations"
    return ds


def distributed():
    """The ``dask.distributed`` module; a RecoilsimError naming the extra to install when dask is
    not installed (dask is the optional extra ``recoilsim[dask]``: a plain simulation does not
    need it)."""
    try:
        import dask.distributed
    except ImportError:
        raise RecoilsimError("dask", "not installed", "dask.distributed installed for many experiments or fits "
                                                      "at once (pip install 'recoilsim[dask]')") from None
    return dask.distributed


def simulate_many(experiments: Sequence[Experiment] | Mapping[str, Experiment], client=None,
                  address: str | None = None, progress: bool = True, n_workers: int | None = None,
                  processes: bool = True, **simulate_kw) -> xr.Dataset:
    """Simulate many experiments in parallel with dask.distributed.

    Parameters
    ----------
    experiments : sequence of Experiment, or mapping label -> Experiment
        The runs (e.g. a series of measurements, or a sweep built with ``dataclasses.replace``).
        Labels default to ``0..n-1``.
    client : dask.distributed.Client or 'synchronous', optional
        A client to use (left open), or ``'synchronous'`` to run in this process without dask.
    address : str, optional
        Scheduler address of an existing cluster, e.g. ``'tcp://10.0.0.5:8786'`` (see the module
        docstring for how to start one).
    progress : bool
        Show a progress bar (``dask.distributed.progress``: text in a terminal, a widget in a
        notebook) while the runs compute.
    n_workers : int, optional
        Workers of the default LocalCluster (default: the number of cores).
    processes : bool
        LocalCluster workers as processes (default; parallel Numba without the GIL) or threads
        in this process (``False``: lighter, for small jobs and tests).
    **simulate_kw
        Passed to :func:`recoilsim.forward.simulate.simulate` (``tofe=True``, ...).

    Returns
    -------
    xarray.Dataset
        The simulate() variables with a leading ``run`` dimension (isotopes/elements/channels
        outer-joined across runs, NaN where a run lacks them); ``experiment(run)`` holds each
        run's input record as JSON.
    """
    if isinstance(experiments, Mapping):
        labels = [str(k) for k in experiments]
        exps = list(experiments.values())
    else:
        exps = list(experiments)
        labels = list(range(len(exps)))
    if not exps:
        raise RecoilsimError("experiments", experiments, "at least one Experiment")
    for i, e in enumerate(exps):
        if not isinstance(e, Experiment):
            raise RecoilsimError(f"experiments[{labels[i]!r}]", type(e).__name__, "an Experiment")
    if client is not None and address is not None:
        raise RecoilsimError("address", address, "None when a client is given (one or the other)")
    if isinstance(client, str):
        if client != "synchronous":
            raise RecoilsimError("client", client, "a dask.distributed.Client, 'synchronous' or None")
        results = []
        if progress:
            from rich.progress import track
            it = track(exps, description="simulating", transient=True)
        else:
            it = exps
        for e in it:
            results.append(_run_one(e, simulate_kw))
        return _combine(results, labels)

    dd = distributed()
    Client, LocalCluster, dask_progress = dd.Client, dd.LocalCluster, dd.progress

    own_client = own_cluster = None
    try:
        if client is None:
            if address is not None:
                if not isinstance(address, str) or "://" not in address:
                    raise RecoilsimError("address", address, "a scheduler address such as 'tcp://host:8786'")
                client = own_client = Client(address)
            else:
                nw = n_workers or min(len(exps), os.cpu_count() or 1)
                own_cluster = LocalCluster(n_workers=nw, threads_per_worker=1, processes=processes,
                                           dashboard_address=None)
                client = own_client = Client(own_cluster)
        futures = client.map(_run_one, exps, [simulate_kw] * len(exps), pure=False)
        if progress:
            dask_progress(futures, notebook=False)
        results = client.gather(futures)
    finally:
        if own_client is not None:
            own_client.close()
        if own_cluster is not None:
            own_cluster.close()
    return _combine(results, labels)


__all__ = ["simulate_many", "distributed"]
