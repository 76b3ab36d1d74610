"""Fits of measured spectra: parameters, likelihood, the linearised problem, the solver, results, film fits."""
