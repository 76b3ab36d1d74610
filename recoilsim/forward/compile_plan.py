"""What a cold start compiles: the kernel compile plan, its recording, and its split over two processes.

A first run with an empty Numba cache compiles the brick kernel
(:func:`recoilsim.kernels.bricks.simulate_bricks`) and, during its type inference, every kernel
function it calls, one after the other, in one process (Numba compiles under a global lock).
Separate processes can compile different functions at the same time: Numba's on-disk cache
writes are atomic (a temporary file, then a rename), and a function compiled for a signature
first looks that signature up in the cache index on disk, also when it is reached as a callee
during another function's type inference. :mod:`recoilsim.forward.cold_start` uses this: a
worker process compiles callees (with their exact signatures) and the spreading kernel while
the command's own process compiles the brick kernel and the callees its type inference reaches
before the worker has claimed them (:func:`split`: the worker's order).

The exact signatures come from a plan recorded once from a cold run of the reference case
(:func:`record`, ``python -m recoilsim.forward.compile_plan``), shipped as
``kernel_compile_plan.json`` beside this module: every kernel function compiled, in the order its
compilation ended (callees before callers), its argument types, every kernel function it calls
(all calls seen by type inference, not only the first) and its own compile time (CPU of the
compiling thread, without its kernel callees). A plan that no longer matches the kernels (a
changed signature) costs time, not correctness: the worker compiles a signature nobody uses and
the command compiles the one it needs itself; ``tests/test_cold_start.py`` fails until the plan
is recorded again. The recorded costs pick the split root (the function with the most expensive
compile, callees included); the share of each process is not decided from them.

Every compile of a cold start runs with Python's garbage collector paused
(:func:`collector_paused`): the collector otherwise scans the compile's ~0.5 M live objects
every 700 allocations, 1-2 s of CPU of a 12-15 s compile (benchmarks/README.md, "Session 9,
cold compile"); the recording here too, so that the recorded costs are those of the cold start.

Cached callees still cost their caller: Numba links each callee's optimised LLVM module into the
caller's and optimises and compiles the whole module again (``numba/core/codegen.py``,
``CPUCodeLibrary.finalize``), so what a cached callee saves is its own type inference, lowering
and first optimisation, not its share of the caller's code generation.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..io.atomic import atomic_write

PLAN_PATH = Path(__file__).with_name("kernel_compile_plan.json")
KERNEL_PREFIX = "recoilsim.kernels."


# ------------------------------------------------------------------------------------------
# Numba types <-> JSON
# ------------------------------------------------------------------------------------------

def _scalars() -> dict:
    from numba.core import types

    return {str(t): t for t in list(types.number_domain) + [types.boolean, types.none]}


def encode_type(t) -> object:
    """A Numba argument type as JSON: scalars by name, integer and boolean constants, arrays,
    NamedTuples of the kernels."""
    from numba.core import types

    if isinstance(t, types.Array):
        return {"array": [str(t.dtype), t.ndim, t.layout, bool(t.mutable)]}
    if isinstance(t, (types.NamedTuple, types.NamedUniTuple)):
        cls = t.instance_class
        return {"namedtuple": f"{cls.__module__}:{cls.__qualname__}", "fields": [encode_type(f) for f in t.types]}
    if isinstance(t, (types.IntegerLiteral, types.BooleanLiteral)):
        return {"literal": t.literal_value}  # a constant argument: Numba compiles a version for it
    scalar = _scalars().get(str(t))
    if scalar is not None and scalar == t:
        return str(t)
    raise TypeError(f"no JSON form for the Numba type {t!r}")


def decode_type(obj):
    """The Numba type of :func:`encode_type`'s JSON."""
    from numba.core import types

    if isinstance(obj, str):
        return _scalars()[obj]
    if "literal" in obj:
        return types.literal(obj["literal"])
    if "array" in obj:
        dtype, ndim, layout, mutable = obj["array"]
        return types.Array(_scalars()[dtype], ndim, layout, readonly=not mutable)
    mod, name = obj["namedtuple"].split(":")
    cls = getattr(importlib.import_module(mod), name)
    return types.BaseTuple.from_types([decode_type(f) for f in obj["fields"]], cls)


def args_key(sig) -> str | None:
    """Numba argument types as the text :meth:`Entry.key` gives them; None for a type the plan
    cannot hold."""
    try:
        return json.dumps([encode_type(a) for a in sig])
    except TypeError:
        return None


def _resolve(func: str):
    """The Numba dispatcher named ``module:qualname``."""
    from numba.core.dispatcher import Dispatcher

    mod, name = func.split(":")
    obj = importlib.import_module(mod)
    for part in name.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, Dispatcher):
        raise TypeError(f"{func} is not a Numba dispatcher")
    return obj


# ------------------------------------------------------------------------------------------
# the plan
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One compiled kernel function: ``func`` (``module:qualname``), its argument types (JSON),
    its own compile time in seconds when recorded, and the indices of the entries it calls."""

    func: str
    args: tuple
    cost_s: float
    calls: tuple[int, ...]

    def dispatcher(self):
        """The Numba dispatcher of this function."""
        return _resolve(self.func)

    def compile(self) -> None:
        """Compile (or load from Numba's cache) this function for these argument types."""
        _resolve(self.func).compile(tuple(decode_type(a) for a in self.args))

    def key(self) -> tuple[str, str]:
        """(function, its argument types as JSON text): what identifies a compiled signature."""
        return self.func, json.dumps(_thaw(self.args))

    def is_compiled(self) -> bool:
        """Whether this process holds this signature already."""
        return tuple(decode_type(a) for a in self.args) in _resolve(self.func).overloads

    def try_compile(self) -> bool:
        """:meth:`compile`, False instead of an error: a plan that no longer matches the kernels
        (a signature they no longer take) must not stop a command, which compiles what it needs
        when it first calls a kernel."""
        try:
            self.compile()
        except Exception:  # noqa: BLE001 (any compile error: the command compiles what it needs later)
            return False
        return True


def load(path: Path = PLAN_PATH, resolve: bool = True) -> list[Entry] | None:
    """The recorded plan, or None if it cannot be read or names a function or type that is gone.

    ``resolve=False``: the file is only read, not checked against the kernels (which would
    import Numba and every kernel module, ~0.5 s): what a command needs to start the worker.
    """
    try:
        raw = json.loads(Path(path).read_text())
        entries = [Entry(e["func"], tuple(_freeze(a) for a in e["args"]), float(e["cost_s"]), tuple(e["calls"]))
                   for e in raw["functions"]]
        for e in entries if resolve else ():
            _resolve(e.func)
            for a in e.args:
                decode_type(a)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ImportError):
        return None
    return entries


def _freeze(obj):
    """JSON lists as tuples (entries are hashable and comparable)."""
    if isinstance(obj, list):
        return tuple(_freeze(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _freeze(v) for k, v in obj.items()}
    return obj


def _thaw(obj):
    if isinstance(obj, tuple):
        return [_thaw(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _thaw(v) for k, v in obj.items()}
    return obj


def _closure(entries: list[Entry], i: int) -> set[int]:
    """Entry i and every entry it calls, directly or not."""
    seen, todo = set(), [i]
    while todo:
        j = todo.pop()
        if j not in seen:
            seen.add(j)
            todo.extend(entries[j].calls)
    return seen


@dataclass(frozen=True)
class Split:
    """Who compiles what on a cold start: the work is shared out as it goes, not beforehand.

    ``split_root``: the most expensive function (the brick kernel), which the command's process
    compiles; its type inference reaches the root's callees one after the other (in recorded
    order), and the process compiles each callee nobody has claimed yet itself, or waits for the
    worker's (:mod:`recoilsim.forward.cold_start`). ``worker``: the order in which the worker
    claims entries: the root's direct callees from the last one backwards, each after what it
    calls (so the two processes meet in the middle, whatever their speed), then what the
    ``late`` roots (the functions recorded after the split root, not called by it: the
    spreading, which the command's process takes from the last one backwards) need, callees
    first. ``callees``: the split root's callees in recorded order (callees first), the order
    in which the command's process claims them before it starts the root. ``early``: what the
    functions recorded before the split root (the inputs' preparation) need; the command's
    process compiles them first, while the worker starts.
    """

    split_root: int
    worker: tuple[int, ...]
    late: tuple[int, ...]
    early: frozenset
    callees: tuple[int, ...]


def split(entries: list[Entry], done=frozenset()) -> Split:
    """The worker's order of claims and the groups of :class:`Split`. ``done``: entries the
    command's process holds already (compiled by nobody)."""
    called = {c for e in entries for c in e.calls}
    roots = [i for i in range(len(entries)) if i not in called]
    total = {i: sum(entries[j].cost_s for j in _closure(entries, i)) for i in roots}
    root = max(roots, key=lambda i: total[i])
    early = set().union(*(_closure(entries, r) for r in roots if r < root)) - set(done)
    below = _closure(entries, root) - {root} - set(done) - early
    seq: list[int] = []
    for c in reversed(entries[root].calls):
        seq += sorted((_closure(entries, c) & below) - set(seq))  # recorded order: callees first
    late_roots = [r for r in roots if r > root and r not in done]
    late = sorted(set().union(*(_closure(entries, r) for r in late_roots)) - set(done) - early - set(seq))
    return Split(root, tuple(seq + late), tuple(late_roots), frozenset(early), tuple(sorted(below)))


@contextlib.contextmanager
def collector_paused(freeze: bool = False):
    """Python's cyclic garbage collector off within the block (a Numba compile), as it was after.

    ``freeze``: at the end, the objects the block left are moved to the collector's permanent
    generation (:func:`gc.freeze`) before it is enabled again, so that no later collection scans
    them, not even the collection at interpreter exit: for a process that exits soon after its
    compile (the compile's garbage, ~80 MB, is then freed with the process). Without it, the
    first collections after the block scan everything it allocated (~0.2-0.7 s). A collector
    that was disabled before stays disabled, and nothing is frozen.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if freeze:
                gc.freeze()
            gc.enable()


# ------------------------------------------------------------------------------------------
# recording
# ------------------------------------------------------------------------------------------

def _record_here() -> list[dict]:
    """Run the reference case's simulation in this process (its Numba cache must be empty) and
    return every kernel function compiled, in the order its compilation ended."""
    from numba.core import event
    from numba.core.dispatcher import Dispatcher

    index: dict = {}  # (func, args) -> position in `done`
    done: list[dict] = []
    stack: list[list] = []  # [key, start time, kernel children's time, calls]
    calls_of: dict = {}

    def key_of(disp, args):
        return f"{disp.py_func.__module__}:{disp.py_func.__qualname__}", tuple(args)

    def is_kernel(disp):
        return getattr(disp.py_func, "__module__", "").startswith(KERNEL_PREFIX)

    class Listener(event.Listener):
        def on_start(self, ev):
            disp = ev.data["dispatcher"]
            if is_kernel(disp):
                stack.append([key_of(disp, ev.data["args"]), time.thread_time(), 0.0])

        def on_end(self, ev):
            disp = ev.data["dispatcher"]
            if not is_kernel(disp):
                return
            key, t0, children = stack.pop()
            incl = time.thread_time() - t0
            if stack:
                stack[-1][2] += incl
            index[key] = len(done)
            done.append({"key": key, "cost_s": round(incl - children, 3)})

    original = Dispatcher.get_call_template

    def get_call_template(self, args, kws):
        out = original(self, args, kws)
        if is_kernel(self) and stack:
            calls_of.setdefault(stack[-1][0], []).append(key_of(self, out[2]))
        return out

    listener = Listener()
    event.register("numba:compile", listener)
    Dispatcher.get_call_template = get_call_template
    try:
        from ..model.experiment import reference_experiment
        from .simulate import simulate

        with collector_paused(freeze=True):  # as in the commands and the worker
            simulate(reference_experiment())
    finally:
        Dispatcher.get_call_template = original
        event.unregister("numba:compile", listener)
    out = []
    for d in done:
        func, args = d["key"]
        calls = sorted({index[k] for k in calls_of.get(d["key"], []) if k in index})
        out.append({"func": func, "args": [encode_type(a) for a in args], "cost_s": d["cost_s"], "calls": calls})
    return out


def record(path: Path = PLAN_PATH) -> Path:
    """Record the plan from a cold run of the reference case in a fresh process (an empty
    ``NUMBA_CACHE_DIR``) and write it to ``path``."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, RECOILSIM_COLD_START="0")
        code = ("import json, sys; from recoilsim.forward.compile_plan import _record_here; "
                "json.dump(_record_here(), sys.stdout)")
        run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    functions = json.loads(run.stdout)
    text = json.dumps({"recorded": "the reference case's simulate() from an empty Numba cache "
                                   "(python -m recoilsim.forward.compile_plan)",
                       "functions": functions}, indent=1)
    with atomic_write(path) as f:  # never a half-written plan
        f.write(text + "\n")
    return Path(path)


if __name__ == "__main__":
    print(f"wrote {record()}")
