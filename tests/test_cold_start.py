"""The two-process cold start (recoilsim/forward/cold_start.py, compile_plan.py).

The end-to-end tests run in a fresh interpreter with an empty ``NUMBA_CACHE_DIR`` (a cold start),
~10 s each.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import numba
import numpy as np
import pytest

from recoilsim.forward import cold_start, compile_plan
from recoilsim.forward.compile_plan import Entry, split

pytestmark = pytest.mark.skipif(os.name != "posix", reason="the worker is POSIX only")


def _entry(cost, calls=()):
    return Entry("m:f", (), cost, tuple(calls))


def test_split_gives_the_worker_the_root_s_callees_from_the_last_and_the_later_roots():
    # 0 prep root (before the split root); 1, 2 leaves; 3 calls 1; 4 calls 1 and 2; 5 calls 2;
    # 6 the split root, calling 3, 4, 5; 7 a leaf of 8, the root after it (the spreading); 9 a
    # second later root
    entries = [_entry(1.0), _entry(1.0), _entry(1.0), _entry(1.0, [1]), _entry(1.0, [1, 2]), _entry(2.0, [2]),
               _entry(9.0, [3, 4, 5]), _entry(1.0), _entry(1.0, [7]), _entry(1.0)]
    s = split(entries)
    assert s.split_root == 6 and s.early == {0}  # the preparation's 0: the main process's, while the worker starts
    # the root's callees from its last call backwards (5 after its callee 2, then 4 after 1, then 3),
    # then what the later roots need, callees first; the main process takes the later roots from the last
    assert s.worker == (2, 5, 1, 4, 3, 7, 8, 9)
    assert s.late == (8, 9)
    assert s.callees == (1, 2, 3, 4, 5)  # the main process's order: the recorded one, callees first
    # what this process holds already is compiled by nobody
    s = split(entries, done={0, 1, 9})
    assert s.worker == (2, 5, 4, 3, 7, 8) and s.early == set() and s.late == (8,)


def test_a_callee_of_the_preparation_and_the_split_root_is_the_main_process_s():
    # 1 a leaf called by the preparation's 0 and by the split root 3; 2 another callee of 3
    entries = [_entry(1.0, [1]), _entry(1.0), _entry(1.0), _entry(9.0, [1, 2])]
    s = split(entries)
    assert s.early == {0, 1} and s.worker == (2,) and s.late == ()


def test_every_plan_type_survives_json():
    entries = compile_plan.load()
    assert entries is not None and len(entries) > 10
    for e in entries:
        types = [compile_plan.decode_type(a) for a in e.args]
        assert json.dumps([compile_plan.encode_type(t) for t in types]) == e.key()[1]


def test_kernel_argument_types_round_trip():
    import numba

    from recoilsim.forward import engine
    from recoilsim.model.experiment import reference_experiment

    inp = engine.prepare(reference_experiment())
    for value in (inp.particles, inp.stack, inp.beam, inp.outgoing, inp.geometry, inp.detector, inp.options):
        t = numba.typeof(value)
        assert compile_plan.decode_type(json.loads(json.dumps(compile_plan.encode_type(t)))) == t


def _reaped(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


@pytest.mark.parametrize("code, timeout", [("import sys; sys.exit(3)", 30.0),
                                           ("print('nonsense', flush=True); import time; time.sleep(30)", 30.0),
                                           ("import time; time.sleep(30)", 0.5)])
def test_a_failing_or_hanging_worker_is_stopped_and_reaped(code, timeout):
    t0 = time.monotonic()
    with cold_start.Worker([1, 2], command=[sys.executable, "-c", code], timeout_s=timeout) as w:
        pid = w.pid
        assert w.wait_for([1]) is False
        assert w.failed and w.done == set()
        assert w.wait_for([]) is True  # nothing asked, nothing missing
    assert time.monotonic() - t0 < 10.0
    assert _reaped(pid)


def test_a_worker_that_cannot_start_is_a_failed_worker():
    with cold_start.Worker([1], command=["/nonexistent/recoilsim-worker"]) as w:
        assert w.wait_for([1]) is False
        assert not w.claims.folder.exists()


def test_a_worker_without_a_claims_folder_is_a_failed_worker(monkeypatch):
    """No temporary folder (a read-only /tmp): no worker, and this process claims nothing."""
    def no_folder(**kw):
        raise PermissionError("read-only")

    monkeypatch.setattr(cold_start.tempfile, "mkdtemp", no_folder)
    with cold_start.Worker([1], command=[sys.executable, "-c", "import time; time.sleep(30)"]) as w:
        assert w.failed and w.pid is None and w.wait_for([1]) is False
        assert not w.claims.claim(1) and not w.claims.is_claimed(1)


SCRIPT = textwrap.dedent("""
    import json, os, sys
    from numba.core import event
    from numba.core.dispatcher import Dispatcher
    from recoilsim.forward import cold_start, compile_plan
    from recoilsim.forward.simulate import simulate
    from recoilsim.model.experiment import reference_experiment

    compiled = []

    class Listener(event.Listener):
        def on_start(self, ev):
            d = ev.data["dispatcher"]
            if d.py_func.__module__.startswith("recoilsim.kernels."):
                compiled.append([f"{d.py_func.__module__}:{d.py_func.__qualname__}",
                                 [compile_plan.encode_type(a) for a in ev.data["args"]]])
        def on_end(self, ev):
            pass

    event.register("numba:compile", Listener())
    if len(sys.argv) > 1 and sys.argv[1] != "early":
        cold_start.WORKER_COMMAND = [sys.executable, "-c", sys.argv[1]]
    early = cold_start.start_early() if sys.argv[1:] == ["early"] else None
    exp = reference_experiment()
    worker = cold_start.compile_ahead(exp, worker=early)
    ds = simulate(exp)
    again = cold_start.compile_ahead(exp) or cold_start.start_early()
    signatures = {}
    for name, mod in list(sys.modules.items()):
        if name.startswith("recoilsim.kernels."):
            for v in vars(mod).values():
                if isinstance(v, Dispatcher) and v.py_func.__module__ == name:
                    signatures[f"{name}:{v.py_func.__qualname__}"] = [
                        [compile_plan.encode_type(a) for a in s] for s in v.signatures]
    try:
        os.waitpid(-1, os.WNOHANG)
        children = True
    except ChildProcessError:
        children = False
    json.dump({"worker": sorted(worker.done) if worker else None,
               "plan_worker": list(worker.plan.worker) if worker else None, "again": again is not None, "compiled": compiled, "signatures": signatures,
               "children": children, "counts": ds["counts"].values.tolist()}, sys.stdout)
""")


def _cold_run(tmp_path, *args):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba"), RECOILSIM_COLD_START="1")  # whatever the load
    out = subprocess.run([sys.executable, "-c", SCRIPT, *args], env=env, capture_output=True, text=True,
                         check=True, timeout=600)
    return json.loads(out.stdout)


def _reference_counts():
    from recoilsim.forward.simulate import simulate
    from recoilsim.model.experiment import reference_experiment

    return simulate(reference_experiment())["counts"].values


def _key(func, args):
    return func, json.dumps(args)  # as Entry.key()


def test_cold_start_compiles_nothing_twice(tmp_path):
    """The worker compiles what it claimed, this process exactly the rest (nothing in both;
    if this fails after a kernel change, record the plan again: python -m
    recoilsim.forward.compile_plan), each kernel function has one signature, and the spectra are
    those of a plain run."""
    res = _cold_run(tmp_path)
    _check_shared_out(res)
    assert all(len(s) <= 1 for s in res["signatures"].values()), {f: len(s) for f, s in res["signatures"].items()}


def _check_shared_out(res) -> set:
    """The worker compiled what it claimed, this process exactly the rest, nothing twice; the
    spectra are those of a plain run. Returns what this process compiled (plan keys)."""
    assert res["worker"] and res["again"] is False and res["children"] is False
    entries = compile_plan.load()
    worker = set(res["worker"])
    here = [_key(f, a) for f, a in res["compiled"]]
    assert len(here) == len(set(here)), "a function compiled twice in this process"
    assert {entries[i].key() for i in worker}.isdisjoint(here)
    assert set(here) == {e.key() for i, e in enumerate(entries) if i not in worker}
    np.testing.assert_allclose(res["counts"], _reference_counts(), rtol=1e-12, atol=0)
    return set(here)


def test_an_early_worker_compiles_nothing_twice(tmp_path):
    """The worker started before this process imports Numba (``start_early``, as the commands
    do): the same rule. The preparation compiles no kernel (its kinematics and cross-section
    functions are plain Python), so the plan has no early group: everything it records is
    reached from the brick kernel or recorded after it, and the worker may claim all of it but
    the brick kernel itself."""
    here = _check_shared_out(_cold_run(tmp_path, "early"))
    entries = compile_plan.load()
    plan = compile_plan.split(entries)
    assert plan.early == frozenset()
    assert sorted(plan.worker) == [i for i in range(len(entries)) if i != plan.split_root]
    assert entries[plan.split_root].key() in here


def test_cold_start_falls_back_when_the_worker_fails(tmp_path):
    res = _cold_run(tmp_path, "import sys; sys.exit(1)")
    assert res["worker"] == [] and res["plan_worker"] and res["children"] is False
    entries = compile_plan.load()
    here = {_key(f, a) for f, a in res["compiled"]}
    # this process compiled everything itself
    assert {e.key() for e in entries} <= here
    np.testing.assert_allclose(res["counts"], _reference_counts(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("cache_env", ["set", "unset"])
def test_the_cache_folder_found_without_numba_is_numba_s(tmp_path, cache_env):
    """``likely_cache_dir`` (no Numba import) names the folder Numba's own locators choose."""
    env = dict(os.environ)
    env.pop("NUMBA_CACHE_DIR", None)
    if cache_env == "set":
        env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba")
    code = ("import sys; from recoilsim.forward import cold_start; guess = cold_start.likely_cache_dir(); "
            "assert 'numba' not in sys.modules; from pathlib import Path; import recoilsim.kernels as k; "
            "print(guess == k.numba_cache_dir(Path(k.__file__).parent), guess)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.startswith("True "), out.stdout + out.stderr
    if cache_env == "set":
        assert str(tmp_path / "numba") in out.stdout


def test_chores_then_the_unclaimed_callees_then_the_root(monkeypatch):
    """``compile_ahead`` runs the command's chores (imports only this process needs) while the
    worker starts, then compiles the brick kernel's callees that the worker has not claimed,
    each on its own (inside the kernel's type inference they cost more), then the kernel."""
    from recoilsim.forward import engine
    from recoilsim.model.experiment import reference_experiment

    order = []
    monkeypatch.setenv("RECOILSIM_COLD_START", "1")
    monkeypatch.setattr(cold_start, "kernel_cache_is_cold", lambda entries, root: True)
    monkeypatch.setattr(engine, "run", lambda inputs: order.append("run"))
    entries = compile_plan.load()
    monkeypatch.setattr(compile_plan.Entry, "try_compile", lambda self: order.append(entries.index(self)))
    plan = compile_plan.split(entries)
    idle = [sys.executable, "-c", "import time; time.sleep(30)"]  # a worker that claims nothing
    with cold_start.Worker(plan.worker, idle, plan=plan) as w:
        assert cold_start.compile_ahead(reference_experiment(), worker=w, chores=[lambda: order.append("chore")]) is w
        assert w.pid is None  # stopped and reaped
    assert order == ["chore", *plan.callees, "run", *reversed(plan.late)]


@numba.njit
def _probe_claimed(x):
    return x + 1.0


@numba.njit
def _probe_unclaimed(x):
    return x + 2.0


def _probe_entries(name):
    """A plan of one entry: a function of this module no test compiles otherwise, for float64."""
    return [Entry(f"{__name__}:{name}", ("float64",), 0.0, ())]


def test_a_function_the_worker_claimed_is_compiled_here_only_after_the_worker_reported_it():
    """``shared_compiles``: compiling (or loading) a function the worker claimed first waits for
    the worker's report, whoever asks for it (here directly; in a command, the brick kernel's
    type inference); outside the block the dispatcher is Numba's again."""
    entries = _probe_entries("_probe_claimed")
    disp = entries[0].dispatcher()
    sig = (numba.float64,)
    slow = ("import os, sys, time; os.close(os.open(os.path.join(sys.argv[1], '0'), os.O_CREAT | os.O_EXCL)); "
            "time.sleep(1.0); print('done 0', flush=True)")
    with cold_start.Worker([0], command=[sys.executable, "-c", slow]) as w:
        t0 = time.monotonic()
        while not w.claims.is_claimed(0):
            assert time.monotonic() - t0 < 30
            time.sleep(0.01)
        with cold_start.shared_compiles(w, entries):
            assert "compile" in vars(disp)
            disp.compile(sig)
            assert w.done == {0} and not w.claims.is_done(0)
        assert time.monotonic() - t0 >= 0.9
    assert "compile" not in vars(disp) and sig in disp.overloads


def test_a_function_nobody_claimed_is_claimed_compiled_here_and_marked_done():
    entries = _probe_entries("_probe_unclaimed")
    disp = entries[0].dispatcher()
    idle = "import time; time.sleep(30)"
    with cold_start.Worker([0], command=[sys.executable, "-c", idle]) as w:
        t0 = time.monotonic()
        with cold_start.shared_compiles(w, entries):
            disp.compile((numba.float64,))
        assert time.monotonic() - t0 < 20 and w.done == set()
        assert w.claims.is_claimed(0) and w.claims.is_done(0)
        assert not w.claims.claim(0)  # the worker would skip it
        folder = w.claims.folder
    assert not folder.exists()  # removed with the worker
    assert _probe_unclaimed(1.0) == 3.0


def test_the_worker_skips_what_the_command_claimed_and_waits_for_its_callees(tmp_path, capsys, monkeypatch, unfrozen):
    """The worker never compiles an entry the command's process claimed, and claims a caller of
    one only once the command marked it done (else the caller's compile would compile it too)."""
    order = []

    class Probe:
        def __init__(self, i, calls=()):
            self.i, self.calls = i, calls

        def try_compile(self):
            order.append((self.i, claims.is_done(0)))
            return True

    monkeypatch.setattr(compile_plan, "load", lambda: [Probe(0), Probe(1, (0,)), Probe(2)])
    claims = cold_start.Claims(tmp_path)
    assert claims.claim(0) and claims.claim(2)  # the command's process took 0 and 2
    done_later = threading.Timer(0.5, claims.mark_done, (0,))
    done_later.start()
    t0 = time.monotonic()
    cold_start._work(claims, [0, 1, 2])
    assert time.monotonic() - t0 >= 0.45
    assert order == [(1, True)]
    assert capsys.readouterr().out == "done 1\n"


def test_no_early_worker_on_a_warm_cache_or_when_disabled(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("RECOILSIM_COLD_START", "0")
    assert cold_start.start_early() is None
    monkeypatch.setenv("RECOILSIM_COLD_START", "1")  # whatever the load
    cache = cold_start.likely_cache_dir()
    cache.mkdir(parents=True)
    (cache / "bricks.simulate_bricks-54.py311.nbi").write_bytes(b"")  # what a compiled brick kernel leaves
    assert cold_start.start_early() is None
    (cache / "bricks.simulate_bricks-54.py311.nbi").unlink()
    with cold_start.early_worker(command=[sys.executable, "-c", "import time; time.sleep(30)"]) as w:
        assert w is not None and w.plan is not None and w.pid is not None
        pid = w.pid
    assert _reaped(pid)


def test_idle_cores_is_a_share_of_the_usable_cpus():
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert 0.0 <= cold_start.idle_cores(0.05) <= n


def test_no_worker_when_disabled(monkeypatch):
    from recoilsim.model.experiment import reference_experiment

    monkeypatch.setenv("RECOILSIM_COLD_START", "0")
    assert cold_start.compile_ahead(reference_experiment()) is None


def test_every_example_gives_the_brick_kernel_the_reference_types():
    """One compiled brick kernel (and the plan's signatures) for every example: a thin film
    whose substrate holds no detected species used to pass a sliced (non-contiguous) density,
    another Numba type and a second ~8 s compile."""
    from pathlib import Path

    import numba

    from recoilsim.forward import engine
    from recoilsim.io.experiment_file import load_experiment
    from recoilsim.model.experiment import reference_experiment

    def kernel_types(exp):
        i = engine.prepare(exp)
        return [numba.typeof(a) for a in (i.particles, i.stack, i.beam, i.outgoing, i.geometry, i.detector,
                                          i.options)]

    ref = kernel_types(reference_experiment())
    examples = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.toml"))
    assert examples
    for p in examples:
        assert kernel_types(load_experiment(p)) == ref, p.name


# ------------------------------------------------------------------------------------------
# the garbage collector during a compile
# ------------------------------------------------------------------------------------------

@pytest.fixture
def unfrozen():
    """Whatever a test froze goes back to the collector (the rest of the session collects it)."""
    yield
    gc.unfreeze()
    gc.enable()


class _Node:
    pass


def _garbage_cycle():
    """A reference cycle no one holds (only the cyclic collector frees it); a weak reference to it."""
    node = _Node()
    node.self = node
    return weakref.ref(node)


def test_the_collector_is_paused_within_and_restored_after(unfrozen):
    assert gc.isenabled()
    with compile_plan.collector_paused():
        assert not gc.isenabled()
        ref = _garbage_cycle()
        gc.collect()  # an explicit collection still runs
        assert ref() is None
    assert gc.isenabled()
    with pytest.raises(ZeroDivisionError):
        with compile_plan.collector_paused(freeze=True):
            1 / 0
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled_and_nothing_is_frozen(unfrozen):
    gc.disable()
    frozen = gc.get_freeze_count()
    with compile_plan.collector_paused(freeze=True):
        pass
    assert not gc.isenabled() and gc.get_freeze_count() == frozen


def test_freeze_keeps_the_block_s_leftovers_out_of_later_collections(unfrozen):
    with compile_plan.collector_paused(freeze=True):
        ref = _garbage_cycle()
    gc.collect()
    assert ref() is not None  # frozen: no collection scans it
    gc.unfreeze()
    gc.collect()
    assert ref() is None
    with compile_plan.collector_paused():  # not frozen: the next collection frees it
        ref = _garbage_cycle()
    gc.collect()
    assert ref() is None


def test_the_worker_compiles_with_the_collector_paused(tmp_path, monkeypatch, capsys, unfrozen):
    seen = []

    class Probe:
        def try_compile(self):
            seen.append(gc.isenabled())
            return True

    Probe.calls = ()
    monkeypatch.setattr(compile_plan, "load", lambda: [Probe(), Probe()])
    cold_start._work(cold_start.Claims(tmp_path), [1, 0])
    assert seen == [False, False]
    assert capsys.readouterr().out == "done 1\ndone 0\n"


def test_the_commands_simulate_with_the_collector_paused(monkeypatch, unfrozen):
    from recoilsim import cli
    from recoilsim.forward import simulate as simulate_module
    from recoilsim.model.experiment import reference_experiment

    seen = []
    monkeypatch.setattr(cold_start, "compile_ahead", lambda *a, **k: seen.append(gc.isenabled()))
    monkeypatch.setattr(simulate_module, "simulate", lambda exp, **k: seen.append(gc.isenabled()) or "dataset")
    assert cli._run_simulation(reference_experiment(), None) == "dataset"
    assert seen == [False, False] and gc.isenabled()
