"""Bricks stop at the deepest layer that holds a simulated recoil.

A thin film on a thick substrate that holds none of the simulated recoils (the Potku example:
Li, O, Mn from 100 nm of LiMn2O4 on 50 um of Si, 8192 TOF channels up to 469 ns) used to fill the
kernel's 20000 bricks with zero-yield bricks in the substrate (the recoils' flight times stay
inside the channel window there, so the kernel kept stepping) and warn. The reference below is
the kernel run over the whole, untruncated stack: the spectra must be identical.
"""

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest

from recoilsim.io.experiment_file import load_experiment
from recoilsim.model.sample import Layer, Sample
from recoilsim.forward.engine import prepare, run, spread
from recoilsim.forward.simulate import simulate
from recoilsim.forward.stack import sample_blocks

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "potku_ecaart.toml"


def _exp():
    exp = load_experiment(EXAMPLE)  # the experiment only: no measured data needed
    exp.detector.n_channels = 8192
    exp.sample = Sample([Layer("LiMn2O4", thickness_nm=100.0, density_g_cm3=4.2, name="film"),
                         Layer("Si", thickness_nm=50000.0, density_g_cm3=2.33, name="Si")])
    exp.options.max_sigma_fraction = 0.0  # bricks of at most 0.8 channel everywhere: the worst case
    return exp


def test_no_empty_bricks_below_the_last_recoil_layer():
    exp = _exp()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "reached 20000 bricks" warning
        ds = simulate(exp)
    assert ds.attrs["n_blocks"] == 1 and ds.attrs["n_bricks"] < 2000
    arr = prepare(exp)
    assert arr.stack.top[-1] == exp.sample.layers[0].areal_density_1e15
    # reference: the same kernel over the whole stack (film + 50 um Si)
    top, fS, fW, _, _ = sample_blocks(exp, arr.elements)
    dens = np.zeros((arr.outgoing.density.shape[0], len(top) - 1))
    dens[:, :arr.outgoing.density.shape[1]] = arr.outgoing.density
    whole = dataclasses.replace(arr, stack=arr.stack._replace(top=top, fracS=fS, fracW=fW),
                                outgoing=arr.outgoing._replace(density=dens))
    det = exp.detector
    specs = [spread(run(arr), det.calibration_a_ns, det.calibration_b_ns, det.n_channels, True)]
    with pytest.warns(UserWarning, match="bricks before the end"):  # the whole stack overflows: why it is cut
        specs.append(spread(run(whole), det.calibration_a_ns, det.calibration_b_ns, det.n_channels, True))
    assert specs[0].sum() > 0
    np.testing.assert_array_equal(specs[0], specs[1])
    np.testing.assert_allclose(ds["counts_isotope"].values, specs[0], rtol=1e-12, atol=0)
