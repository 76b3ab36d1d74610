"""How much of a cold compile is the callers re-compiling their callees: an experiment, not what the package does.

    python benchmarks/compile_linking.py [--rounds 3]

Numba links every compiled callee's LLVM module into its caller's (``linkonce_odr`` copies,
``numba/core/codegen.py``, ``CPUCodeLibrary._get_module_for_linking``), and the caller's module
passes and machine code then optimise and emit each callee that is not inlined once more,
although the callee's own library holds it optimised and emitted already. This script compiles
the forward benchmark's reference case (``prepare`` + ``run`` + ``spread``, each in a fresh
process with an empty Numba cache, the garbage collector paused as the commands do) twice per
round, alternately: as Numba does, and with the linked copies marked ``available_externally``
(LLVM may still inline them; a call that stays a call goes to the callee's own library). It
prints, per run, the brick kernel's own compile (exclusive CPU and its LLVM phases, from
``compile_profile.py``), all compile events, the CPU median of 61 ``engine.run`` calls, and
checks that both give the same spectra, bit for bit.

Why the package does not do this (yet): the change is inside Numba, and a cached caller's object
code would then refer to its callees' symbols, so every callee would have to be loaded before
its callers in every process (warm runs included; an unresolved symbol is a fatal LLVM error).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _available_externally() -> None:
    """Mark the definitions a library lends its callers ``available_externally`` (this process only)."""
    import llvmlite.binding as ll
    from numba.core import codegen

    def module_for_linking(self):
        self._ensure_finalized()
        if self._shared_module is None:
            mod = self._final_module.clone()
            for fn in mod.functions:
                if not fn.is_declaration and fn.linkage == ll.Linkage.external:
                    fn.linkage = "available_externally"
            self._shared_module = mod
        return self._shared_module

    codegen.CPUCodeLibrary._get_module_for_linking = module_for_linking


def _one(mode: str, spectra_path: str) -> dict:
    """Compile and time the reference case in this (fresh) process; ``mode``: "numba" or "external"."""
    import time

    import numpy as np

    if mode == "external":
        _available_externally()
    sys.path.insert(0, str(HERE))
    import compile_profile
    from test_bench_forward import ref_exp

    from recoilsim.forward import engine

    rows = compile_profile.profile(collector_paused=True)
    root = next(r for r in rows if r["func"].endswith(":simulate_bricks"))
    exp = ref_exp()
    det = exp.detector
    inputs = engine.prepare(exp)
    spectra = engine.spread(engine.run(inputs), det.calibration_a_ns, det.calibration_b_ns, det.n_channels,
                            exp.options.resolution)
    np.save(spectra_path, np.asarray(spectra))
    times = []
    for _ in range(61):
        t0 = time.process_time()
        engine.run(inputs)
        times.append(time.process_time() - t0)
    return {"mode": mode, "kernel_s": root["excl_s"], "function_passes_s": root["function passes"],
            "module_passes_s": root["module passes"], "machine_code_s": root["machine code"],
            "all_s": sum(r["excl_s"] for r in rows), "run_ms": 1e3 * float(np.median(times))}


def main() -> None:
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("| mode | kernel's own compile s | its function passes | module passes | machine code | "
          "all compile events s | engine.run ms (CPU median of 61) |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for mode in ("numba", "external"):
                env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / f"cache_{mode}_{r}"), RECOILSIM_COLD_START="0")
                code = (f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import compile_linking as c; "
                        f"print(json.dumps(c._one({mode!r}, {str(Path(tmp) / f'{mode}_{r}.npy')!r})))")
                out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
                d = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"| {mode} | {d['kernel_s']:.3f} | {d['function_passes_s']:.3f} | {d['module_passes_s']:.3f} | "
                      f"{d['machine_code_s']:.3f} | {d['all_s']:.2f} | {d['run_ms']:.3f} |")
            same = np.array_equal(np.load(Path(tmp) / f"numba_{r}.npy"), np.load(Path(tmp) / f"external_{r}.npy"))
            print(f"| round {r + 1}: spectra {'bit-identical' if same else 'DIFFER'} | | | | | | |")


if __name__ == "__main__":
    main()
