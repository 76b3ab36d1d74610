"""Cost growth of the forward model: channels, bricks, blocks, layers and species, with the memory
of each case (issue 17). Prints a markdown table for benchmarks/README.md.

Each row is the reference case of ``test_bench_forward.py`` (or the issue-17 case of
``test_bench_jabs_case.py``) with one knob changed. Times are CPU-time medians (``time.process_time``)
of ``repeats`` calls in one process after a warm-up call: the brick kernel (``engine.run`` on
prepared inputs), the spreading (``engine.spread``) and the whole ``simulate()``. Memory columns:
the kernel's result (every array of :class:`recoilsim.kernels.brick_types.Bricks`), the returned
Dataset (``Dataset.nbytes``) and the peak of what Python and numpy allocate during one
``simulate()`` (``tracemalloc``; the kernel's own working arrays, allocated inside numba, are not
traced by it).

    python benchmarks/cost_growth.py [--repeats 15] [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from recoilsim.forward.engine import prepare, run, spread  # noqa: E402
from recoilsim.forward.simulate import simulate  # noqa: E402
from test_bench_forward import growth_experiment, ref_exp  # noqa: E402
from test_bench_jabs_case import jabs_case  # noqa: E402

MB = 2.0 ** 20


def split_substrate(n_layers: int):
    """The reference case with its bottom layer (LATP, no profile) cut into ``n_layers`` equal
    layers of the same material (the layer count as a knob: each layer is a block of the stack)."""
    exp = ref_exp()
    layers = exp.sample.layers
    i = len(layers) - 1
    sub = layers[i]
    part = [sub.replaced(thickness_nm=sub.thickness_nm / n_layers, name=f"{sub.name}{k}") for k in range(n_layers)]
    exp.sample.layers = layers[:i] + part + layers[i + 1:]
    return exp


def cases(quick: bool):
    """(label, experiment) of every row."""
    rows = [(f"n_channels = {n}", growth_experiment("n_channels", n)) for n in (1024, 4096, 16384, 65536)]
    rows += [(f"profile_step_nm = {s} (blocks)", growth_experiment("profile_step_nm", s)) for s in (4.0, 1.0, 0.25)]
    rows += [(f"LATP as {n} layers", split_substrate(n)) for n in (2, 8)]
    rows += [(f"max_sigma_fraction = {f} (bricks)", growth_experiment("max_sigma_fraction", f)) for f in (1.0, 0.25)]
    rows += [(f"recoils {'+'.join(r)} (species)", dataclasses.replace(ref_exp(), recoils=list(r)))
             for r in (("Li",), ("Li", "P", "O"))]
    scattered = ref_exp()
    scattered.options.scattered_beam = True
    rows += [("reference + scattered beam", scattered)]
    rows += [(f"issue-17 case, {c} ns channels", jabs_case(c)) for c in (0.1, 0.02)]
    if quick:
        rows = rows[:1] + rows[-2:-1]
    return rows


def cpu_median_ms(f, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t = time.process_time()
        f()
        ts.append(time.process_time() - t)
    return 1e3 * float(np.median(ts))


def measure(exp, repeats: int) -> dict:
    ds = simulate(exp)  # compile / load the cache
    det = exp.detector
    inputs = prepare(exp)
    bricks = run(inputs)
    kernel = cpu_median_ms(lambda: run(inputs), repeats)
    spreading = cpu_median_ms(lambda: spread(bricks, det.calibration_a_ns, det.calibration_b_ns, det.n_channels,
                                             exp.options.resolution), repeats)
    whole = cpu_median_ms(lambda: simulate(exp), repeats)
    tracemalloc.start()
    simulate(exp)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    bricks_bytes = sum(a.nbytes for a in bricks if isinstance(a, np.ndarray))
    return dict(blocks=int(ds.attrs["n_blocks"]), bricks=int(ds.attrs["n_bricks"]), species=int(ds.sizes["isotope"]),
                channels=int(det.n_channels), kernel=kernel, spread=spreading, simulate=whole,
                bricks_MB=bricks_bytes / MB, dataset_MB=ds.nbytes / MB, peak_MB=peak / MB)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="two rows only (a smoke run)")
    a = ap.parse_args(argv)
    print("| setting | blocks | bricks | species | channels | kernel ms | spread ms | simulate ms "
          "| bricks MB | Dataset MB | peak traced MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for label, exp in cases(a.quick):
        m = measure(exp, a.repeats)
        print(f"| {label} | {m['blocks']} | {m['bricks']} | {m['species']} | {m['channels']} | {m['kernel']:.2f} "
              f"| {m['spread']:.2f} | {m['simulate']:.2f} | {m['bricks_MB']:.2f} | {m['dataset_MB']:.1f} "
              f"| {m['peak_MB']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
