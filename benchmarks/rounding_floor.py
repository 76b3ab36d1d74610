"""How far the default reference fit moves when only the summation order of its Gram matrix changes.

    python benchmarks/rounding_floor.py base.npz 300 1000 1500   # base: a before_after.py dump

Fits the drawn data stored in ``base.npz`` (``before_after.py dump``) with the default
``FitParameters`` (as ``before_after.py``'s "default" fit), with the compressed solve's first row
block split in two at each given row (the same sum over the rows in another order, nothing
else), and prints the largest relative difference of the values, sigmas and profile to the dump's
default fit: the rounding floor a reordering of the fit's arithmetic is compared with
(benchmarks/README.md, "Session 8, fits"). Split 0 fits unchanged (0 against a dump of the same code).
"""

from __future__ import annotations

import copy
import sys
import warnings

import numpy as np

from recoilsim.fitting import solver
from recoilsim.fitting.driver import FitParameters, fit
from recoilsim.model.experiment import reference_experiment


def _split_first_block(split: int):
    """``solver.compressed_residuals`` with the first row block cut in two at row ``split``."""
    original = solver.compressed_residuals

    def wrapped(jacobian_and_residuals):
        def split_blocks(x):
            blocks = list(jacobian_and_residuals(x))
            b = blocks[0]
            if 0 < split < b[1].size:
                head = tuple(q[:split] if k < 2 else q for k, q in enumerate(b))
                tail = tuple(q[split:] if k < 2 else q for k, q in enumerate(b))
                blocks[:1] = [head, tail]
            return blocks
        return original(split_blocks)
    return wrapped


def main(path: str, splits: list[int]) -> None:
    base = np.load(path)
    nodes = np.linspace(0.0, 58.8, 50)
    meas = [{el: base[f"data/{i}/{el}"] for el in ("Li", "P", "O")} for i in range(3)]
    e0 = reference_experiment()
    e0.beam.fluence *= 0.3
    original = solver.compressed_residuals
    for split in splits:
        solver.compressed_residuals = _split_first_block(split)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = fit(copy.deepcopy(e0), meas, FitParameters(depth_nm=nodes)).dataset
        finally:
            solver.compressed_residuals = original
        diffs = []
        for k in ("value", "sigma", "profile"):
            a, b = base[f"fit/default/{k}"], ds[k].values
            diffs.append(f"{k} {np.max(np.abs(a - b) / np.maximum(np.abs(a), 1e-300)):.2e}")
        print(f"split {split}: " + ", ".join(diffs))


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2:]] or [0])
