"""File input/output: Potku list-mode data and cuts, plain spectra, IBA Data Format, netCDF.

Every writer goes through :mod:`recoilsim.io.atomic` (temp file + fsync + rename) and every
reader raises only :class:`recoilsim.errors.RecoilsimError` on malformed input.
"""

from .atomic import atomic_write, read_netcdf, refuse_overwrite_inputs, write_netcdf
from .idf import IdfDocument, IdfSpectrum, read_idf, write_idf
from .potku import (CutFile, Selection, plot_tof_e, potku_experiment, read_asc, read_cut, read_cuts,
                    read_potku_settings, read_sel, select_events, selection_mask, spectra_from_cuts,
                    tof_e_histogram, tof_spectra)
from .spectra import read_spectra, read_spectrum, write_spectrum

__all__ = [
    "atomic_write", "refuse_overwrite_inputs", "write_netcdf", "read_netcdf",
    "read_asc", "read_sel", "read_cut", "read_cuts", "Selection", "CutFile", "selection_mask",
    "select_events", "tof_spectra", "spectra_from_cuts", "tof_e_histogram", "plot_tof_e",
    "read_potku_settings", "potku_experiment", "read_spectrum", "read_spectra", "write_spectrum",
    "read_idf", "write_idf", "IdfDocument", "IdfSpectrum",
]
