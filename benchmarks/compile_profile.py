"""Where a cold compile goes: every function Numba compiles for the reference case, with CPU times.

    NUMBA_CACHE_DIR=$(mktemp -d) RECOILSIM_COLD_START=0 \
        python benchmarks/compile_profile.py [--json out.json] [--collector-paused]

Runs ``prepare`` + ``run`` + ``spread`` of the forward benchmark's reference experiment once in
this process (its Numba cache must be empty for a cold profile) and prints, per compiled function
and signature (Numba's ``numba:compile`` events; numpy overloads and other library functions
included), the CPU time of its compile, inclusive and exclusive (without the functions compiled
inside it), and of the exclusive part the LLVM work on its own library: the function passes on
its IR, the module passes after its callees are linked in, the machine code, and writing its
cache entry. CPU is this thread's (``time.thread_time``): a neighbour's load slows it down but is
not counted in it. ``--collector-paused``: compile with Python's garbage collector paused, as the
``demo``/``simulate`` commands and the cold-start worker do
(:func:`recoilsim.forward.compile_plan.collector_paused`); without it, as a library call does.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

PHASES = ("function passes", "module passes", "machine code", "cache write")


def profile(collector_paused: bool = False) -> list[dict]:
    """Compile the reference case's kernels here; one row per compiled function and signature."""
    import contextlib

    from numba.core import caching, codegen, event

    rows: list[dict] = []
    stack: list[dict] = []

    class Listener(event.Listener):
        def on_start(self, ev):
            disp = ev.data["dispatcher"]
            func = getattr(disp, "py_func", None)
            name = f"{getattr(func, '__module__', '?')}:{getattr(func, '__qualname__', repr(disp))}"
            stack.append({"func": name, "args": str(tuple(ev.data["args"])), "t0": time.thread_time(),
                          "parent": stack[-1]["func"] if stack else None,
                          "children_s": 0.0, **{p: 0.0 for p in PHASES}})

        def on_end(self, ev):
            row = stack.pop()
            row["incl_s"] = time.thread_time() - row.pop("t0")
            row["excl_s"] = row["incl_s"] - row.pop("children_s")
            if stack:
                stack[-1]["children_s"] += row["incl_s"]
            rows.append(row)

    def timed(cls, method, phase):
        original = getattr(cls, method)

        def wrapper(*args, **kwargs):
            t0 = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                if stack:
                    stack[-1][phase] += time.thread_time() - t0

        setattr(cls, method, wrapper)
        return cls, method, original

    patches = [timed(codegen.CPUCodeLibrary, "_optimize_functions", "function passes"),
               timed(codegen.CPUCodeLibrary, "_optimize_final_module", "module passes"),
               timed(codegen.JITCodeLibrary, "_finalize_specific", "machine code"),
               timed(caching.Cache, "save_overload", "cache write")]
    listener = Listener()
    event.register("numba:compile", listener)
    try:
        import sys
        from pathlib import Path

        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from test_bench_forward import ref_exp

        from recoilsim.forward import engine

        exp = ref_exp()
        det = exp.detector
        paused = contextlib.nullcontext()
        if collector_paused:
            from recoilsim.forward.compile_plan import collector_paused as pause

            paused = pause(freeze=True)
        with paused:
            inputs = engine.prepare(exp)
            engine.spread(engine.run(inputs), det.calibration_a_ns, det.calibration_b_ns, det.n_channels,
                          exp.options.resolution)
    finally:
        event.unregister("numba:compile", listener)
        for cls, method, original in patches:
            setattr(cls, method, original)
    return rows


def table(rows: list[dict]) -> str:
    """Markdown table, largest exclusive time first, with totals for our kernels and the rest."""
    lines = ["| function (signatures) | n | incl. CPU s | excl. CPU s | "
             "fn passes | module passes | machine code | cache write |",
             "|---|---|---|---|---|---|---|---|"]
    by = defaultdict(lambda: defaultdict(float))
    for r in rows:
        b = by[r["func"]]
        b["n"] += 1
        for k in ("incl_s", "excl_s", *PHASES):
            b[k] += r[k]
    for name, b in sorted(by.items(), key=lambda kv: -kv[1]["excl_s"]):
        short = name.replace("recoilsim.kernels.", "")
        lines.append(f"| {short} | {int(b['n'])} | {b['incl_s']:.3f} | {b['excl_s']:.3f} | "
                     + " | ".join(f"{b[p]:.3f}" for p in PHASES) + " |")
    for label, pick in (("our kernels", lambda n: n.startswith("recoilsim.kernels.")),
                        ("numpy overloads and other", lambda n: not n.startswith("recoilsim.kernels."))):
        sel = [b for n, b in by.items() if pick(n)]
        lines.append(f"| **{label}** | {int(sum(b['n'] for b in sel))} | | {sum(b['excl_s'] for b in sel):.3f} | "
                     + " | ".join(f"{sum(b[p] for b in sel):.3f}" for p in PHASES) + " |")
    total = sum(r["excl_s"] for r in rows)
    lines.append(f"| **all compile events** | {len(rows)} | | {total:.3f} | "
                 + " | ".join(f"{sum(r[p] for r in rows):.3f}" for p in PHASES) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the rows as JSON to this file")
    parser.add_argument("--collector-paused", action="store_true", help="compile with the garbage collector paused")
    args = parser.parse_args()
    t0 = time.process_time()
    rows = profile(args.collector_paused)
    print(table(rows))
    print(f"\nprocess CPU for the whole first prepare+run+spread: {time.process_time() - t0:.2f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
