"""File input/output, one module per format.

* :mod:`~recoilsim.io.experiment_file`, :mod:`~recoilsim.io.experiment_dump`: experiment files
  (TOML) -> :class:`~recoilsim.model.experiment.Experiment` and back
* :mod:`~recoilsim.io.spectra`: plain spectra (``channel, counts`` text / CSV)
* :mod:`~recoilsim.io.potku_events`: Potku list-mode events (``.asc``)
* :mod:`~recoilsim.io.potku_selections`: Potku polygon cuts (``.sel``) and event lists (``.cut``)
* :mod:`~recoilsim.io.potku_settings`: Potku ``.ini`` settings -> Experiment
* :mod:`~recoilsim.io.idf`: IBA Data Format (IDF / xnra)
* :mod:`~recoilsim.io.stopping_files`: stopping tables (SRIM output, JIBAL GSTO and ``.stg``, plain)
* :mod:`~recoilsim.io.atomic`: atomic writers and netCDF; :mod:`~recoilsim.io.files`: the
  checks every reader makes (path, size, NUL bytes) and streaming

Every writer goes through :mod:`recoilsim.io.atomic` (temp file + fsync + rename) and every
reader raises only :class:`recoilsim.errors.RecoilsimError` on malformed input. The names below
are loaded on first use (PEP 562): reading a TOML file does not import xarray.
"""

from __future__ import annotations

import importlib

# public name -> module that defines it
_API = {
    "atomic_write": "atomic", "refuse_overwrite_inputs": "atomic", "write_netcdf": "atomic",
    "read_netcdf": "atomic",
    "read_idf": "idf", "write_idf": "idf_write", "IdfDocument": "idf", "IdfSpectrum": "idf",
    "read_asc": "potku_events",
    "read_sel": "potku_selections", "read_cut": "potku_selections", "read_cuts": "potku_selections",
    "Selection": "potku_selections", "CutFile": "potku_selections", "selection_mask": "potku_selections",
    "select_events": "potku_selections",
    "read_potku_settings": "potku_settings", "potku_experiment": "potku_settings",
    "read_spectrum": "spectra", "read_spectra": "spectra", "write_spectrum": "spectra",
    "read_srim_table": "stopping_files", "read_gsto": "stopping_files", "read_plain_table": "stopping_files",
    "read_stg": "stopping_files",
    "load_experiment": "experiment_file", "dump_experiment": "experiment_dump",
}

__all__ = list(_API)


def __getattr__(name: str):
    mod = _API.get(name)
    if mod is None:
        raise AttributeError(f"module 'recoilsim.io' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))
