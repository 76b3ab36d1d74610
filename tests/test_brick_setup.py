"""The brick kernel's setup before its first block (``kernels/bricks.py::_surface_tables``, a callee
split out of ``simulate_bricks`` so that a cold start compiles it beside the kernel): the exit
tables at the surface, behind the T1 foil, against closed forms and a second method
(``recoilsim.stopping.energy_loss``)."""

import dataclasses
import math

import numpy as np
from numba import njit

from recoilsim.forward.engine import prepare
from recoilsim.kernels import bricks
from recoilsim.kernels.multiple_scattering import ms_constants
from recoilsim.kernels.range_tables import new_tables
from recoilsim.model.experiment import reference_experiment
from recoilsim.stopping.tables import energy_loss


@njit(cache=True)
def _setup(particles, stack, beam, species, detector):
    n_p, n_grid = particles.S.shape[0], particles.S.shape[2]
    n_out = species.exit_table.max() + 1
    G, D, V = np.zeros((n_out, n_grid)), np.zeros((n_out, n_grid)), np.zeros((n_out, n_grid))
    Se, Re, Qe = new_tables(n_p, n_grid, particles.lnE0, particles.dlnE)
    out = bricks._surface_tables(particles, stack, beam, species, detector, G, D, V, Se, Re, Qe)
    return out, G, D, V


def _run(inputs):
    (out_p, x_th, ms_c, out_emax, p_emin, A2, cell, ww_k), G, D, V = _setup(
        inputs.particles, inputs.stack, inputs.beam, inputs.outgoing, inputs.detector)
    return dict(out_p=out_p, x_th=x_th, ms_c=ms_c, out_emax=out_emax, p_emin=p_emin, A2=A2, cell=cell, ww_k=ww_k,
                G=G, D=D, V=V)


def _node_energies(p, lnE0, dlnE, k):
    return p.mass * np.exp(lnE0 + k * dlnE)


def test_without_a_foil_the_surface_exit_tables_are_the_identity():
    inputs = prepare(reference_experiment())
    inputs = dataclasses.replace(inputs, detector=inputs.detector._replace(foil_path=0.0))
    r = _run(inputs)
    part, sp = inputs.particles, inputs.outgoing
    for s in range(len(sp.particle)):
        o, p = sp.exit_table[s], sp.particle[s]
        assert r["out_p"][o] == p
        k = np.arange(part.klo[p], part.khi[p] + 1)
        E = part.mass[p] * np.exp(part.lnE0 + k * part.dlnE)
        np.testing.assert_allclose(r["G"][o, k], E, rtol=1e-15)  # G(E) = E
        np.testing.assert_allclose(r["D"][o, k], E, rtol=1e-15)  # dG/dlnE = E
        assert not r["V"][o, k].any()
        assert r["x_th"][o] == part.klo[p]  # nothing is lost
        assert r["out_emax"][o] == max(sp.K[t] * inputs.beam.energy_MeV for t in range(len(sp.particle))
                                       if sp.exit_table[t] == o)
    np.testing.assert_allclose(r["p_emin"], part.mass * np.exp(part.lnE0 + part.klo * part.dlnE), rtol=1e-15)
    for name, shape in (("A2", r["G"].shape), ("cell", (4, r["G"].shape[1])), ("ww_k", (10, r["G"].shape[1]))):
        assert r[name].shape == shape and not r[name].any()


def test_behind_the_t1_foil_the_exit_energies_are_those_of_a_second_method():
    """G at the surface is the energy after the 3 ug/cm2 carbon T1 foil; stopping.energy_loss
    integrates the same stopping tables by its own method."""
    exp = reference_experiment()
    inputs = prepare(exp)
    r = _run(inputs)
    foil = exp.detector.foils[0]
    part, sp = inputs.particles, inputs.outgoing
    for label, s in (("7Li", 1), ("16O", 3), ("31P", 2)):
        assert inputs.species[s].label == label
        o, p = sp.exit_table[s], sp.particle[s]
        for frac in (0.5, 0.9):  # nodes inside the particle's tables (up to its highest energy made)
            k = int(part.klo[p] + frac * (part.khi[p] - part.klo[p]))
            E_k = part.mass[p] * math.exp(part.lnE0 + k * part.dlnE)
            ref = energy_loss((int(inputs.species[s].Z), float(part.mass[p])), foil.composition,
                              foil.areal_density_1e15, E_k)
            assert 0.0 < r["G"][o, k] < E_k
            assert abs(r["G"][o, k] - ref.energy_out) < 1e-4 * (E_k - ref.energy_out) + 1e-9, (label, E_k)
    # multiple-scattering constants: rows 2o, 2o + 1 of each exit table's particle, the beam's last
    for o in range(r["out_p"].shape[0] + 1):
        z = inputs.beam.Z if o == r["out_p"].shape[0] else None
        if z is None:
            s = list(sp.exit_table).index(o)
            z = sp.Z2[s] if sp.kind[s] == 0 else inputs.beam.Z
        lnc, tc = ms_constants(float(z), inputs.stack.el_Z)
        np.testing.assert_array_equal(r["ms_c"][2 * o], lnc)
        np.testing.assert_array_equal(r["ms_c"][2 * o + 1], tc)
