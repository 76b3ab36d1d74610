"""Figures: spectra, TOF-E maps, fit results; every figure saved through one atomic writer."""
