"""recoilsim: simulation and fitting of TOF-ERDA spectra.

The everyday API, importable from the top level::

    import recoilsim as rs
    exp = rs.reference_experiment()              # or rs.load_experiment("file.toml")
    ds = rs.simulate(exp)                         # xarray.Dataset of spectra
    result = rs.fit(exp, measured, rs.FitParameters(depth_nm=[0, 10, 20]))

Names are loaded on first use (PEP 562), so ``import recoilsim`` stays cheap and does not compile
the Numba kernels. The layers behind them are described in ``docs/architecture.md``.
"""

from __future__ import annotations

import importlib

from .errors import RecoilsimError

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    # model: user objects
    "Experiment": "model.experiment", "Options": "model.experiment",
    "reference_experiment": "model.experiment",
    "Beam": "model.instrument", "Geometry": "model.instrument", "Detector": "model.instrument",
    "Foil": "model.instrument",
    "Sample": "model.sample", "Layer": "model.sample", "Profile": "model.sample",
    # files
    "load_experiment": "io.experiment_file", "dump_experiment": "io.experiment_dump",
    # forward model
    "simulate": "forward.simulate", "simulate_many": "forward.sweep", "simulate_batch": "forward.screening",
    "LinearModel": "forward.linear_model",
    # fits
    "fit": "fitting.driver", "FitParameters": "fitting.parameters", "Parameter": "fitting.parameters",
    "SlowParameter": "fitting.parameters", "ProfileShape": "fitting.parameters",
    "FitResult": "fitting.result", "fit_film": "fitting.film", "fit_many": "workflows.fit_many",
    "fit_profiles": "fitting.depth_profiles",
}

__all__ = ["RecoilsimError", "__version__", *_API]


def __getattr__(name: str):
    mod = _API.get(name)
    if mod is None:
        raise AttributeError(f"module 'recoilsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_API))
