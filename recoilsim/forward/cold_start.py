"""A cold start on two cores: a worker process compiles part of the kernels at the same time.

With an empty Numba cache the first simulation compiles the brick kernel and its callees and the
spreading kernel, one function after the other, in one process (~9 s of a ~12 s
``recoilsim demo``). :func:`compile_ahead` shares that out (:mod:`recoilsim.forward.compile_plan`)
as it goes: a worker process (``python -m recoilsim.forward.cold_start``) takes the brick
kernel's callees from the last one its type inference reaches backwards, then the spreading,
each into Numba's on-disk cache, while this process compiles the brick kernel itself, whose
type inference takes its callees from the first one forwards. Whoever first claims a function
(:class:`Claims`) compiles it; a function the other process claimed is waited for and loaded
from the cache (:func:`shared_compiles`). So nothing is compiled twice, and neither process
waits for long, whatever their speeds: the two meet in the middle. (A fixed share, decided
beforehand from recorded costs, left this process waiting ~1 s for the worker's share on a
quiet machine and longer when the worker was slowed: benchmarks/README.md, "Session 11, cold
compile".) The simulation that follows loads everything from the cache.

Where it applies: the ``demo`` and ``simulate`` commands (:mod:`recoilsim.cli`), each a fresh
process, when the kernel cache has no brick kernel yet and at least :data:`MIN_IDLE_CORES` CPUs
are idle (measured over 0.1 s; ``RECOILSIM_COLD_START=1`` starts it whatever the load,
``RECOILSIM_COLD_START=0`` never). Library calls (``simulate()``, the linear model, dask workers,
``fit_many``) never start a process. Nothing happens when the kernels compile without an on-disk
cache, off POSIX, or when the shipped plan cannot be read.

When: a command calls :func:`start_early` first thing, before this process imports Numba, the
kernels or xarray (~1 s of a cold ``demo``), so that the worker's own start-up (~0.6 s) and
its first compiles overlap those imports; :func:`start_early` finds the cache folder without
Numba (:func:`likely_cache_dir`). :func:`compile_ahead` then checks the cache with Numba's own
rules, and runs ``chores`` (imports the command needs later) while the worker starts: work that
only this process can do, done before the compile so that the worker's share grows.

Python's cyclic garbage collector is paused while the kernels compile
(:func:`recoilsim.forward.compile_plan.collector_paused`:
the worker for its whole run, the ``demo``/``simulate`` commands around their simulation): a cold
compile allocates ~0.5 M objects that live until it ends, and the collector, which runs every
700 allocations, scanned them again and again: 1-2 s of CPU of a 12-15 s compile
(benchmarks/README.md, "Session 9, cold compile").

Failures cost time, never results: if the worker cannot start, fails, or has not reported within
:data:`WORKER_TIMEOUT_S`, it is killed and reaped, and this process compiles whatever is
missing itself (the simulation's own first calls compile what is not cached).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from . import compile_plan

#: Longest wait for the worker, in seconds from its start (a cold compile takes ~10 s).
WORKER_TIMEOUT_S = 120.0
#: A worker starts only if at least this many CPUs are idle (this process and the worker each
#: need one: on a busy machine the worker would slow this process down more than it helps).
MIN_IDLE_CORES = 1.5
#: The worker's command line; its arguments are the plan entries to compile.
WORKER_COMMAND = [sys.executable, "-m", "recoilsim.forward.cold_start"]


class Claims:
    """Who compiles which plan entry: a folder the command's process and the worker share.

    Whoever first creates the file ``<index>`` (an atomic ``O_CREAT | O_EXCL`` open) compiles
    that entry; the command's process marks the entries it compiled with a file
    ``done-<index>`` (the worker reports its own on its standard output).
    """

    def __init__(self, folder) -> None:
        self.folder = Path(folder)

    def claim(self, index: int) -> bool:
        """Claim entry ``index``; False if the other process has (or the folder is gone)."""
        try:
            os.close(os.open(self.folder / str(index), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except OSError:
            return False
        return True

    def is_claimed(self, index: int) -> bool:
        return (self.folder / str(index)).exists()

    def mark_done(self, index: int) -> None:
        with contextlib.suppress(OSError):
            os.close(os.open(self.folder / f"done-{index}", os.O_CREAT | os.O_WRONLY))

    def is_done(self, index: int) -> bool:
        return (self.folder / f"done-{index}").exists()


class Worker:
    """A worker process compiling plan entries, reporting ``done <index>`` on its standard output.

    Each entry is compiled by whichever process claims it first (:class:`Claims`, a folder
    both share, its path the worker's first argument). Used as a context manager: on exit a
    worker still running is killed, the process is always reaped (no zombie) and the claims
    folder removed. :meth:`wait_for` returns False, and the worker is stopped, when it failed,
    exited early or ran past ``timeout_s``.
    """

    def __init__(self, tasks, command=None, timeout_s: float = WORKER_TIMEOUT_S, plan=None):
        self.plan = plan  # the compile_plan.Split the tasks come from, if any
        self.done: set[int] = set()
        self.failed = False
        self._buf = b""
        self._deadline = time.monotonic() + timeout_s
        self._proc = None
        self.claims = Claims(Path(os.devnull) / "claims")  # a folder that cannot exist: claims nothing
        try:
            self.claims = Claims(tempfile.mkdtemp(prefix="recoilsim-cold-"))
            argv = list(command or WORKER_COMMAND) + [str(self.claims.folder)] + [str(t) for t in tasks]
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL, env=dict(os.environ, RECOILSIM_COLD_START="0"))
        except OSError:  # no temporary folder, or no process: this process compiles everything
            self.failed = True
            shutil.rmtree(self.claims.folder, ignore_errors=True)

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc) -> None:
        self.stop(grace_s=0.0 if self.failed or exc[0] is not None else 2.0)

    @property
    def pid(self) -> int | None:
        """The worker's process id (None once it is reaped, or if it never started)."""
        return None if self._proc is None else self._proc.pid

    def stop(self, grace_s: float = 0.0) -> None:
        """Kill the worker if it still runs after ``grace_s`` seconds; reap it."""
        proc = self._proc
        if proc is None:
            return
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        self._proc = None
        shutil.rmtree(self.claims.folder, ignore_errors=True)

    def wait_for(self, tasks) -> bool:
        """Block until the worker reported every entry of ``tasks``; False if it never will."""
        want = set(tasks)
        while not self.failed and not want <= self.done:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0 or not self._read(remaining):
                self._fail()
        return want <= self.done

    def _fail(self) -> None:
        self.failed = True
        self.stop()

    def _read(self, timeout: float) -> bool:
        """Read what the worker wrote within ``timeout`` seconds; False at its end or a failure."""
        fd = self._proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            return True  # the deadline check above decides
        chunk = os.read(fd, 4096)
        if not chunk:
            return False  # the worker exited
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            word, _, index = line.decode(errors="replace").partition(" ")
            if word != "done" or not index.isdigit():
                return False
            self.done.add(int(index))
        return True


def likely_cache_dir() -> Path | None:
    """The folder Numba caches the kernels in, found without importing Numba or the kernels.

    Numba's first two choices (``numba/core/caching.py``): ``NUMBA_CACHE_DIR`` with a subfolder
    named after the kernels' folder and the SHA-1 of its path (``get_suitable_cache_subpath``),
    else the kernels' ``__pycache__`` when it can be written; None when neither applies (the
    user-wide cache: :func:`kernel_cache_is_cold` asks Numba later). A guess: a wrong one costs
    time (a worker started for nothing, or started later), never a result.
    """
    spec = importlib.util.find_spec(compile_plan.KERNEL_PREFIX.rstrip("."))
    if spec is None or not spec.origin:
        return None
    kernel_dir = os.path.dirname(os.path.abspath(spec.origin))
    env = os.environ.get("NUMBA_CACHE_DIR")
    if env:
        sub = f"{os.path.basename(kernel_dir)}_{hashlib.sha1(kernel_dir.encode()).hexdigest()}"
        return Path(os.path.abspath(env)) / sub
    pycache = Path(kernel_dir) / "__pycache__"
    return pycache if os.access(pycache if pycache.exists() else kernel_dir, os.W_OK) else None


def _root_is_cached(cache: Path, entries, root: int) -> bool:
    module, qualname = entries[root].func.split(":")
    return any(cache.glob(f"{module.rsplit('.', 1)[-1]}.{qualname}-*.nbi"))


def start_early(command=None) -> Worker | None:
    """Start the worker at the start of a command, before Numba is imported here, when the kernel
    cache looks cold (:func:`likely_cache_dir`) and a second core is idle (see the module).

    Returns the worker (its ``plan`` is the split) for :func:`compile_ahead`, else None (also
    when this cannot tell: :func:`compile_ahead` decides then). A warm cache costs a glob.
    """
    setting = os.environ.get("RECOILSIM_COLD_START", "")
    if setting == "0" or os.name != "posix":
        return None
    cache = likely_cache_dir()
    entries = compile_plan.load(resolve=False)
    if cache is None or entries is None:
        return None
    plan = compile_plan.split(entries)
    if _root_is_cached(cache, entries, plan.split_root):
        return None
    if setting != "1" and idle_cores() < MIN_IDLE_CORES:
        return None
    return Worker(plan.worker, command, plan=plan)


@contextlib.contextmanager
def early_worker(command=None):
    """:func:`start_early` as a context manager: the worker (or None), stopped and reaped at exit
    (a command that fails before it simulates leaves no process behind)."""
    worker = start_early(command)
    try:
        yield worker
    finally:
        if worker is not None:
            worker.stop()


def kernel_cache_is_cold(entries, root: int) -> bool:
    """Whether Numba's on-disk cache has no compiled brick kernel (the plan's split root) yet.

    False (nothing to do) also when the kernels compile without an on-disk cache.
    """
    from .. import kernels

    cache = kernels.numba_cache_dir(Path(kernels.__file__).parent)
    if cache is None:
        return False
    return not _root_is_cached(cache, entries, root)


def idle_cores(interval_s: float = 0.1) -> float:
    """How many of this process's CPUs are idle, measured over ``interval_s`` (Linux
    ``/proc/stat``; elsewhere the CPU count less the 1-minute load average)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1

    def sample():
        with open("/proc/stat") as f:
            fields = [float(x) for x in f.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields[:8])  # idle + iowait, all but guest time

    try:
        idle0, total0 = sample()
        time.sleep(interval_s)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return max(0.0, usable - os.getloadavg()[0])
    share = (idle1 - idle0) / max(total1 - total0, 1.0)
    return min(usable, share * (os.cpu_count() or 1))


def compile_ahead(exp, command=None, worker: Worker | None = None, chores=()) -> Worker | None:
    """Compile the kernels for ``exp`` on two cores when the kernel cache is cold (see the module).

    ``worker``: one :func:`start_early` started (checked here against Numba's own cache folder,
    stopped if the cache is warm after all); without one, a worker is started here if the
    cache is cold. ``chores``: callables run while the worker starts, before the compile
    (imports the command needs later). Returns the worker (stopped; its ``done``: the entries
    it compiled) when one was used, whether or not it succeeded (the simulation that follows
    compiles whatever is missing), else None.
    """
    setting = os.environ.get("RECOILSIM_COLD_START", "")
    entries = None if setting == "0" or os.name != "posix" else compile_plan.load()
    if worker is not None:
        plan = worker.plan
        if entries is None or not kernel_cache_is_cold(entries, plan.split_root):
            worker.stop()
            return None
    else:
        if entries is None:
            return None
        plan = compile_plan.split(entries, done={i for i, e in enumerate(entries) if e.is_compiled()})
        if not kernel_cache_is_cold(entries, plan.split_root):
            return None
        if setting != "1" and idle_cores() < MIN_IDLE_CORES:
            return None
        worker = Worker(plan.worker, command, plan=plan)
    from . import engine

    with worker:
        for i in sorted(plan.early):  # what the inputs need, while the worker starts
            entries[i].try_compile()
        inputs = engine.prepare(exp)
        # while the worker starts: what the simulation imports next (xarray), the caller's chores
        importlib.import_module(f"{__package__}.simulate")
        for chore in chores:
            chore()
        with shared_compiles(worker, entries):
            # the root's callees the worker has not claimed, before the root (compiled inside its
            # type inference instead, the whole compile took ~0.2 s more CPU: "Session 11, cold compile")
            for i in plan.callees:
                if not worker.claims.is_claimed(i):
                    entries[i].try_compile()
            with warnings.catch_warnings():  # the simulation that follows warns, once
                warnings.simplefilter("ignore")
                engine.run(inputs)  # the split root: its type inference waits for the worker's last callees
            for i in reversed(plan.late):  # the spreading: what the worker has not claimed yet
                entries[i].try_compile()
    return worker


@contextlib.contextmanager
def shared_compiles(worker: Worker, entries):
    """Within the block, a plan entry that this process is about to compile, as a callee during
    another function's type inference or directly, is claimed and compiled here
    (``Claims.mark_done`` after), or, when the worker claimed it, waited for and loaded from the
    cache. This process takes the callees in the order the split root's type inference reaches
    them while the worker takes them from the other end (``compile_plan.split``), so neither
    waits for long, whatever their speeds.

    Every plan dispatcher gets an instance attribute ``compile`` (which Numba calls for a
    signature it does not hold, ``Dispatcher.get_call_template``) for the duration.
    """
    index: dict = {}
    for i, e in enumerate(entries):
        index.setdefault(e.dispatcher(), {})[e.key()[1]] = i
    for disp, by_args in index.items():
        def compile_shared(sig, disp=disp, by_args=by_args):
            i = None if sig in disp.overloads else by_args.get(compile_plan.args_key(sig))
            if i is None or worker.failed:
                return type(disp).compile(disp, sig)
            if worker.claims.claim(i):
                try:
                    return type(disp).compile(disp, sig)
                finally:
                    worker.claims.mark_done(i)
            worker.wait_for([i])  # False if the worker failed: compiled here then
            return type(disp).compile(disp, sig)

        disp.compile = compile_shared
    try:
        yield
    finally:
        for disp in index:
            del disp.compile


def _work(claims: Claims, tasks: list[int], timeout_s: float = WORKER_TIMEOUT_S) -> None:
    """The worker: claim and compile the plan entries ``tasks`` in order, skipping those the
    command's process claimed, reporting each as done (also one that failed to compile: the
    command's process then compiles what it needs itself), with the garbage collector paused
    and its leftovers frozen (the process ends with the compile; frozen objects are not
    scanned by the collection at interpreter exit either). Before claiming an entry, it waits
    until the entries it calls that the command's process claimed are done (``tasks`` lists
    callees first), so that it never compiles one of them a second time."""
    deadline = time.monotonic() + timeout_s
    with compile_plan.collector_paused(freeze=True):
        entries = compile_plan.load()
        if entries is None:
            sys.exit(1)
        mine: set[int] = set()
        for i in tasks:
            if claims.is_claimed(i):
                continue
            while any(c not in mine and claims.is_claimed(c) and not claims.is_done(c) for c in entries[i].calls) \
                    and time.monotonic() < deadline:
                time.sleep(0.005)
            if not claims.claim(i):
                continue
            mine.add(i)
            entries[i].try_compile()
            sys.stdout.write(f"done {i}\n")
            sys.stdout.flush()


if __name__ == "__main__":
    _work(Claims(sys.argv[1]), [int(a) for a in sys.argv[2:]])
