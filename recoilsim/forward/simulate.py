"""Forward model: TOF-ERDA spectra of every recoiling isotope (slab simulation).

User objects (:class:`~recoilsim.model.experiment.Experiment`) go through the forward engine
(:mod:`recoilsim.forward.engine`: typed inputs, the brick kernel
:func:`recoilsim.kernels.bricks.simulate_bricks`, spreading into channels), and the result comes
back as an :class:`xarray.Dataset` with the channel -> depth mapping of every isotope
(:mod:`recoilsim.forward.dataset`).
"""

from __future__ import annotations

import warnings

import numpy as np
import xarray as xr

from ..kernels.tofe_map import tofe_map
from ..model.experiment import Experiment
from ..model.instrument import fwhm_to_sigma
from ..io.stopping_choice import straggling_label
from ..stopping.tables import StoppingSource
from .dataset import to_dataset
from .engine import prepare, run, spread, stopping_record
from .timing_response import apply_tail


def simulate(exp: Experiment, *, tofe: bool = False, n_energy_bins: int = 256,
             source: StoppingSource | None = None, constant_stopping: float | None = None) -> xr.Dataset:
    """Simulate the TOF spectra of every recoiling isotope of an experiment.

    Parameters
    ----------
    exp : Experiment
        Beam, geometry, detector, sample, recoils and options.
    tofe : bool
        Also compute the TOF-E coincidence map (variable ``tofe``).
    n_energy_bins : int
        Number of energy bins of the TOF-E map (0 .. 1.05 x the highest detector energy).
    source : StoppingSource, optional
        Stopping tables to use instead of ``exp.options.stopping`` (SRIM-2013 by default).
    constant_stopping : float, optional
        Test hook: every stopping replaced by this constant (eV per 1e15 at/cm2).

    Returns
    -------
    xarray.Dataset
        ``counts_isotope(isotope, channel)``, ``counts(element, channel)``; coordinates
        ``time_ns(channel)``, ``depth_nm``/``depth_1e15``/``energy_MeV`` per (element, channel)
        and per (isotope, channel) as ``isotope_*``; attrs ``experiment`` (JSON of every input).
    """
    inputs = prepare(exp, source=source, constant_stopping=constant_stopping)
    bricks = run(inputs)
    det = exp.detector
    spec = spread(bricks, det.calibration_a_ns, det.calibration_b_ns, det.n_channels, exp.options.resolution)
    apply_tail(spec, det, det.calibration_a_ns, exp.options.resolution)  # timing tail (default none: no work)
    ds = to_dataset(exp, inputs, spec, bricks, stopping=stopping_record(exp, source),
                    straggling=straggling_label(exp.options.straggling, exp.options.straggling_table))
    if tofe:
        n, e_det = bricks.n, bricks.e_det
        emax = 1.05 * float(max(e_det[:, :n].max(initial=0.0), 1e-3))
        e_edges = np.linspace(0.0, emax, n_energy_bins + 1)
        m = np.zeros((len(inputs.species), det.n_channels, n_energy_bins))
        tofe_map(bricks.ta, bricks.tb, bricks.Y, bricks.sig_t, e_det, bricks.sig_e,
                 fwhm_to_sigma(det.energy_resolution_keV * 1e-3), n, det.calibration_a_ns, det.calibration_b_ns,
                 det.n_channels, e_edges, m)
        ds["tofe"] = xr.DataArray(m, dims=("isotope", "channel", "energy_bin"))
        ds = ds.assign_coords(energy_bin_MeV=("energy_bin", 0.5 * (e_edges[1:] + e_edges[:-1])))
        ds["tofe"].attrs.update(long_name="simulated TOF-E coincidence map", units="counts")
    if float(ds.variables["counts"].data.sum()) <= 0:  # the element sums: fewer rows than spec
        warnings.warn("the simulated spectrum is empty: no recoil reaches the channel range "
                      f"({det.channel_edges_ns().min():.4g}..{det.channel_edges_ns().max():.4g} ns); check the "
                      "calibration, the geometry and whether the recoils escape the sample", stacklevel=2)
    return ds
