"""Block-cut dependence of the forward model: every block of the flat reference cut into k
sub-blocks of the same composition (``refinement.refined(blocks=k, bricks=16)``), spectra
compared with k = 32 (max |difference| / peak over the isotopes).

    python benchmarks/block_cuts.py [--ms off] [--ks 1,2,4,8,16,32]
    cd /some/other/dir && NUMBA_CACHE_DIR=/an/empty/cache OTHER_CHECKOUT/.venv/bin/python /path/to/benchmarks/block_cuts.py
        (main's code, this checkout's refinement)

benchmarks/README.md, "Session 9, kernel" and "Session 9, multiple-scattering moments".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convergence import refined_inputs, rel  # noqa: E402


def spectra(exp, k: int, bricks: int = 16) -> np.ndarray:
    """Spectra (isotope, channel) of ``exp`` with every block cut into k and bricks ``bricks`` times narrower."""
    from recoilsim.forward.engine import prepare, run, spread

    det = exp.detector
    inputs = refined_inputs(prepare(exp), 1, k, bricks)
    return spread(run(inputs), det.calibration_a_ns, det.calibration_b_ns, det.n_channels, True)


def main(argv=None) -> int:
    from recoilsim.model.experiment import reference_experiment

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ms", choices=("on", "off"), default="on")
    ap.add_argument("--ks", default="1,2,4,8,16,32")
    ap.add_argument("--bricks", type=int, default=16, help="bricks this many times narrower")
    args = ap.parse_args(argv)
    ks = [int(k) for k in args.ks.split(",")]
    exp = reference_experiment()
    exp.options.multiple_scattering = args.ms == "on"
    out = {k: spectra(exp, k, args.bricks) for k in ks}
    last = out[ks[-1]]
    print(f"multiple scattering {args.ms}, bricks {args.bricks}x narrower: max |difference| / peak against k = {ks[-1]}")
    print(" ".join(f"k={k}: {rel(out[k], last):.2e}" for k in ks[:-1]))
    print(f"against k = {ks[0]}: " + " ".join(f"k={k}: {rel(out[k], out[ks[0]]):.2e}" for k in ks[1:]))
    print("neighbours: " + " ".join(f"{a}->{b}: {rel(out[a], out[b]):.2e}" for a, b in zip(ks[:-1], ks[1:])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
