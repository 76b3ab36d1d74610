"""Table of docs/multiple_scattering.md: time sigma of a 1 nm 7Li marker in the reference case,
with and without multiple scattering, beside the independent Monte Carlo (tests/ms_monte_carlo.py).

Run: python benchmarks/ms_marker_table.py [n_ions]   (about 3 minutes with 20000 ions)
"""

import math
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from ms_monte_carlo import fwhm_sigma, iqr_sigma, reference_marker_mc  # noqa: E402
from test_multiple_scattering import marker_experiment, marker_sigma_ns  # noqa: E402

DEPTHS_NM = (0.5, 30.0, 60.0, 100.0, 200.0)


def main(n_ions: int = 20000) -> None:
    full_off = marker_experiment(False)
    full_on = marker_experiment(True)
    only = marker_experiment(True, only_ms=True)
    print("| depth (nm) | sigma without MS (ns) | sigma with MS (ns) | MS alone: model | MS alone: Monte Carlo "
          "FWHM/2.355 (IQR/1.349) | model / MC | without MS (+) MC (ns) |")
    print("|---|---|---|---|---|---|---|")
    for z in DEPTHS_NM:
        s_off = marker_sigma_ns(full_off, z)
        s_on = marker_sigma_ns(full_on, z)
        s_ms = marker_sigma_ns(only, z)
        t = reference_marker_mc(z, n_ions=n_ions, seed=11)
        f, q = fwhm_sigma(t), iqr_sigma(t)
        print(f"| {z:g} | {s_off:.3f} | {s_on:.3f} | {s_ms:.3f} | {f:.3f} ({q:.3f}) | {s_ms / f:.2f} | "
              f"{math.hypot(s_off, f):.3f} |")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000)
