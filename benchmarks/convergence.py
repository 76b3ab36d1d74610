"""Convergence yardstick of the brick kernel's tabulation: how far today's spectra are from the
same physical model computed with finer numerics.

    python benchmarks/convergence.py [--out table.json] [--save-finest finest.npz] [--cases reference,...]
    cd /some/other/dir && NUMBA_CACHE_DIR=/an/empty/cache OTHER_CHECKOUT/.venv/bin/python /path/to/benchmarks/convergence.py
        (main's code, this checkout's yardstick and cases)

The physical model (stopping and straggling log-log interpolated between the tables' nodes,
blocks of uniform composition) is kept; only the numerics that interpolate across blocks are
refined:

* ``m``: the energy grid refined m times (every cell cut into m, the new nodes' stopping and
  straggling log-log interpolated element by element, which is what the kernel assumes between
  nodes for a pure element; for a compound the kernel interpolates the mixture, which differs
  at second order in the cell, so a refined grid is also a marginally different model there);
  the exit tables G, D, V and the multiple-scattering exit tables A are then interpolated over
  cells m times narrower;
* ``k``: every block cut into k sub-blocks of identical composition (more resamplings of the
  exit tables, but also more bricks: depth steps restart at block boundaries, so k also moves
  the brick discretisation, which is not what this yardstick is for; SETTINGS keeps k = 1)
  (both by :func:`recoilsim.forward.refinement.refined`, which can also make bricks narrower);
* ``stride 1``: the multiple-scattering exit tables computed at every energy node (the kernel's
  ``MS_NODE_STRIDE`` and ``MS_THIN_STRIDE`` set to 1 in a child process with its own empty
  Numba cache, since Numba freezes module globals into the compiled code).

Each case's spectra are computed at settings (m, k, stride) and compared, max |difference| /
peak of each spectrum (the TOF-E map: of its peak), with the finest setting as the yardstick.
Runs two child processes (one per stride), ~1-3 min on a shared 2-core box.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
#: (m, k) settings computed in each child: today's, then refined
SETTINGS = [(1, 1), (2, 1), (4, 1), (8, 1), (16, 1)]


def refined_inputs(inputs, m: int, k: int, q: int = 1):
    """:func:`recoilsim.forward.refinement.refined` of this checkout, loaded from its file, so that
    the yardstick is the same when the installed recoilsim is another checkout (an A/B against main)."""
    import importlib.util

    name = "recoilsim.forward.refinement"
    mod = sys.modules.get(name)
    if mod is None:
        spec = importlib.util.spec_from_file_location(name, ROOT / "recoilsim" / "forward" / "refinement.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return mod.refined(inputs, grid=m, blocks=k, bricks=q)


def cases():
    """(name, experiment, simulate keywords) of benchmarks/before_after.py's spectra and the issue-17 case."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from recoilsim.io.experiment_file import load_experiment
    from recoilsim.model.experiment import reference_experiment as ref
    from recoilsim.model.sample import Profile
    from test_bench_jabs_case import jabs_case

    out = [("reference", ref(), {}),
           ("reference_li_excess", ref(Profile("Li", [0, 30], [1.25, 1.0], kind="ratio")), {}),
           ("bench_reference", ref(Profile("Li", np.arange(0.0, 31.0), 1.0 + 0.25 * np.exp(-np.arange(0.0, 31.0) / 5.0),
                                           kind="scale")), {})]
    for path in sorted((ROOT / "examples").glob("*.toml")):
        try:
            out.append((f"example_{path.stem}", load_experiment(path), {}))
        except Exception as exc:  # a file that needs data not present here
            print(f"skipped {path.name}: {exc}", file=sys.stderr)
    e = ref()
    e.options.scattered_beam = True
    out.append(("reference_scattered", e, {}))
    out.append(("reference_tofe", ref(), {"tofe": True}))
    out.append(("issue17_0.1ns", jabs_case(0.1), {}))
    return out


def child(stride_one: bool, names: list[str] | None, out_path: str) -> None:
    """Spectra of every case at every setting of SETTINGS (one Numba compile per stride)."""
    import recoilsim.forward.simulate as sim_mod
    import recoilsim.kernels.multiple_scattering as ms

    if stride_one:
        for name in ("MS_NODE_STRIDE", "MS_THIN_STRIDE"):
            if hasattr(ms, name):
                setattr(ms, name, 1)
    real_prepare = sim_mod.prepare
    setting = {"m": 1, "k": 1}

    def prepare(exp, **kw):
        return refined_inputs(real_prepare(exp, **kw), setting["m"], setting["k"])

    sim_mod.prepare = prepare
    res = {}
    for name, exp, kw in cases():
        if names and name not in names:
            continue
        for m, k in SETTINGS:
            setting.update(m=m, k=k)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = sim_mod.simulate(exp, **kw)
            res[f"{name}/{m}/{k}/counts"] = ds["counts_isotope"].values
            if "tofe" in ds:
                res[f"{name}/{m}/{k}/tofe"] = ds["tofe"].values
    np.savez(out_path, **res)


def rel(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / peak per spectrum (per isotope row; the TOF-E map: of each isotope's map)."""
    out = 0.0
    for x, y in zip(a, b):
        peak = max(np.abs(x).max(), np.abs(y).max())
        if peak > 0:
            out = max(out, float(np.abs(x - y).max() / peak))
    return out


def table(files: dict[str, dict]) -> dict:
    """Per case: distance of each (stride, m, k) setting to the finest (stride 1 and the last of SETTINGS)."""
    rows = {}
    finest = ("1",) + SETTINGS[-1]
    names = sorted({key.split("/")[0] for key in files["1"]})
    for name in names:
        for kind in ("counts", "tofe"):
            ref_key = f"{name}/{finest[1]}/{finest[2]}/{kind}"
            if ref_key not in files["1"]:
                continue
            y = files["1"][ref_key]
            row = {}
            for stride in ("default", "1"):
                for m, k in SETTINGS:
                    row[f"stride {stride}, m {m}, k {k}"] = rel(files[stride][f"{name}/{m}/{k}/{kind}"], y)
            rows[f"{name} {kind}"] = row
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=None, help="write the table as JSON here")
    ap.add_argument("--save-finest", default=None, help="write the finest setting's spectra here (.npz)")
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--child", choices=("default", "1"), help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    names = [c for c in args.cases.split(",") if c]
    if args.child:
        child(args.child == "1", names, args.child_out)
        return 0
    files = {}
    with tempfile.TemporaryDirectory() as tmp:
        for stride in ("default", "1"):
            env = dict(os.environ)
            if stride == "1":
                env["NUMBA_CACHE_DIR"] = os.path.join(tmp, "numba")  # a fresh cache: the stride is compiled in
            path = os.path.join(tmp, f"{stride}.npz")
            subprocess.run([sys.executable, __file__, "--child", stride, "--child-out", path, "--cases", args.cases],
                           env=env, check=True)
            with np.load(path) as z:
                files[stride] = {key: z[key] for key in z.files}
    rows = table(files)
    if args.save_finest:
        tail = "/{}/{}/".format(*SETTINGS[-1])
        np.savez(args.save_finest, **{key: v for key, v in files["1"].items() if tail in key})
    for case, row in rows.items():
        print(case)
        for setting, v in row.items():
            print(f"  {setting:28s} {v:.2e}")
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
