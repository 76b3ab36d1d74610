"""Many fits at once (a series of measurements, a map) through dask, as
:func:`recoilsim.forward.sweep.simulate_many` does for simulations.

Each job is one call of the public :func:`recoilsim.fit` (experiment, measured spectra,
parameters) on a ``dask.distributed`` worker; the :class:`~recoilsim.fitting.result.FitResult`
objects come back in the order (or with the labels) of the jobs. Where it runs: a
:class:`dask.distributed.LocalCluster` of single-threaded worker processes (default), an
existing cluster (``address='tcp://host:8786'``, started as described in
:mod:`recoilsim.forward.sweep`), a :class:`dask.distributed.Client` you hold, or
``client='synchronous'`` (one after the other here, no dask). A fit is deterministic, so each
result is the same as fitting that job alone.

The stopping source and every other physics choice travel inside each job's Experiment
(``options``), so workers need nothing else.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Mapping, Sequence

from ..errors import RecoilsimError
from ..model.experiment import Experiment
from ..forward.sweep import distributed
from .progress import progress_bar

__all__ = ["fit_many", "cluster_client"]


def _fit_one(job: dict, fit_kw: dict):
    from ..fitting.driver import fit

    return fit(job["experiment"], job["measured"], job.get("parameters"), **fit_kw)


def _job(j: Any, label, parameters) -> dict:
    """One job as {experiment, measured, parameters}: from a dict or a tuple (experiment,
    measured[, parameters])."""
    if isinstance(j, Mapping):
        d = dict(j)
    elif isinstance(j, (tuple, list)) and len(j) in (2, 3):
        d = dict(zip(("experiment", "measured", "parameters"), j))
    else:
        raise RecoilsimError(f"jobs[{label!r}]", type(j).__name__,
                             "a tuple (experiment, measured[, parameters]) or a dict with those keys")
    extra = sorted(set(d) - {"experiment", "measured", "parameters"})
    if extra:
        raise RecoilsimError(f"jobs[{label!r}].{extra[0]}", extra[0], "experiment, measured or parameters")
    exps = d.get("experiment")
    for e in exps if isinstance(exps, (list, tuple)) else [exps]:
        if not isinstance(e, Experiment):
            raise RecoilsimError(f"jobs[{label!r}].experiment", type(e).__name__, "an Experiment (or a list of them)")
    if d.get("measured") is None:
        raise RecoilsimError(f"jobs[{label!r}].measured", None, "the measured spectra of the job")
    if d.get("parameters") is None:
        d["parameters"] = parameters
    return d


def fit_many(jobs: Sequence | Mapping, parameters=None, client=None, address: str | None = None,
             progress: bool = True, n_workers: int | None = None, processes: bool = True, **fit_kw):
    """Fit many jobs in parallel with dask.distributed.

    Parameters
    ----------
    jobs : sequence or mapping label -> job
        Each job a tuple ``(experiment, measured)`` or ``(experiment, measured, parameters)``,
        or a dict with those keys (what :func:`recoilsim.fit` takes).
    parameters : FitParameters, optional
        For the jobs that give none.
    client : dask.distributed.Client or 'synchronous', optional
        A client to use (left open), or ``'synchronous'`` to fit here one after the other.
    address : str, optional
        Scheduler address of an existing cluster, e.g. ``'tcp://10.0.0.5:8786'``.
    progress : bool
        A rich progress bar on stderr, advanced as fits finish.
    n_workers : int, optional
        Workers of the default LocalCluster (default: min(jobs, cores)).
    processes : bool
        LocalCluster workers as processes (default) or threads of this process.
    **fit_kw
        Passed to :func:`recoilsim.fit` (``n_bootstrap``, ``seed``, ``verify``).

    Returns
    -------
    list of FitResult, or dict label -> FitResult for a mapping of jobs
    """
    if isinstance(jobs, Mapping):
        labels = list(jobs)
        raw = list(jobs.values())
    elif isinstance(jobs, Sequence) and not isinstance(jobs, (str, bytes)):
        raw = list(jobs)
        labels = list(range(len(raw)))
    else:
        raise RecoilsimError("jobs", type(jobs).__name__, "a sequence or mapping of fit jobs")
    if not raw:
        raise RecoilsimError("jobs", jobs, "at least one job")
    todo = [_job(j, lab, parameters) for j, lab in zip(raw, labels)]
    if client is not None and address is not None:
        raise RecoilsimError("address", address, "None when a client is given (one or the other)")
    if isinstance(client, str) and client != "synchronous":
        raise RecoilsimError("client", client, "a dask.distributed.Client, 'synchronous' or None")
    if client == "synchronous":
        results = []
        with progress_bar(len(todo), "fitting", progress) as advance:
            for job in todo:
                results.append(_fit_one(job, fit_kw))
                advance()
    else:
        results = _on_cluster(todo, fit_kw, client, address, progress, n_workers, processes)
    return dict(zip(labels, results)) if isinstance(jobs, Mapping) else results


@contextlib.contextmanager
def cluster_client(client=None, address: str | None = None, n_workers: int = 1, processes: bool = True):
    """A dask.distributed Client: ``client`` as given (left open), one connected to ``address``,
    or a new LocalCluster of ``n_workers`` single-threaded workers; what it opened it closes."""
    if client is not None:
        yield client
        return
    if address is not None:
        if not isinstance(address, str) or "://" not in address:
            raise RecoilsimError("address", address, "a scheduler address such as 'tcp://host:8786'")
        with distributed().Client(address) as c:
            yield c
        return
    dd = distributed()
    with dd.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=processes,
                         dashboard_address=None) as cluster, dd.Client(cluster) as c:
        yield c


def _on_cluster(todo, fit_kw, client, address, progress, n_workers, processes) -> list:
    as_completed = distributed().as_completed

    nw = n_workers or min(len(todo), os.cpu_count() or 1)
    with cluster_client(client, address, nw, processes) as c:
        futures = c.map(_fit_one, todo, [fit_kw] * len(todo), pure=False)
        with progress_bar(len(futures), "fitting", progress) as advance:
            for _ in as_completed(futures):
                advance()
        return c.gather(futures)
