"""Analysis of spectra that needs no forward model: ratio spectra, decomposition chemistry, TOF calibration."""
