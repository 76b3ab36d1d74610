"""SRIM-2013 against CATIMA on the reference case (9 MeV 63Cu on Cu/LiPON/LATP): the table of
docs/stopping.md.

    python examples/compare_stopping.py        (needs pycatima: pip install 'recoilsim[catima]')

Per element: total counts in the 1024-channel window with each source, their ratio, and the
largest channel-by-channel difference among channels holding at least 5 % of that element's
maximum (SRIM-2013 as reference), with the time of flight where it occurs.
"""

import numpy as np

from recoilsim.forward.simulate import simulate
from recoilsim.model.experiment import reference_experiment
from recoilsim.io.stopping_choice import stopping_source
from recoilsim.stopping.tables import stopping

#: (ion, energy MeV) pairs met in the reference case: the beam, recoils at their typical energies
PAIRS = [("63Cu", 9.0), ("63Cu", 5.0), ("7Li", 2.0), ("31P", 3.0), ("16O", 3.0), ("14N", 2.5)]
LAYERS = {"Cu": "Cu", "LiPON": "Li2.0PO2.6N0.9", "LATP": "Li1.3Al0.3Ti1.7(PO4)3"}


def main() -> None:
    srim = simulate(reference_experiment())
    cat = simulate(reference_experiment(stopping="catima"))
    print(f"SRIM: {srim.attrs['stopping']}\nCATIMA: {cat.attrs['stopping']}\n")
    print("| element | total SRIM-2013 | total CATIMA | CATIMA / SRIM - 1 | largest channel difference | at t (ns) |")
    print("|---|---|---|---|---|---|")
    for el in srim.element.values:
        a = srim.counts.sel(element=el).values
        b = cat.counts.sel(element=el).values
        keep = a >= 0.05 * a.max()
        rel = np.where(keep, b / np.where(keep, a, 1.0) - 1.0, 0.0)
        k = int(np.argmax(np.abs(rel)))
        print(f"| {el} | {a.sum():.0f} | {b.sum():.0f} | {b.sum() / a.sum() - 1:+.1%} | {rel[k]:+.1%} | "
              f"{float(srim.time_ns[k]):.1f} |")

    print("\n| ion, energy | " + " | ".join(f"{k}: SRIM, CATIMA (eV/1e15 at/cm2)" for k in LAYERS) + " |")
    print("|---|" + "---|" * len(LAYERS))
    cat_src = stopping_source("catima")
    for ion, e in PAIRS:
        cells = []
        for formula in LAYERS.values():
            s_srim = stopping(ion, formula, e)
            s_cat = stopping(ion, formula, e, source=cat_src)
            cells.append(f"{s_srim:.0f}, {s_cat:.0f} ({s_cat / s_srim - 1:+.1%})")
        print(f"| {ion} {e} MeV | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
