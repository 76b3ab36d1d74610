"""Numba-jitted numerical core of recoilsim (installed as ``recoilsim.kernels``).

Plain numpy arrays and scalars in and out; no Python objects, no I/O, no xarray, and no
import of ``recoilsim`` itself: the dependency arrow points from recoilsim to the kernels only.

Internal units: energies in MeV, areal densities in 1e15 atoms/cm2, stopping in
eV/(1e15 atoms/cm2), masses in u, times in ns, lengths in m, angles in radians.
"""
