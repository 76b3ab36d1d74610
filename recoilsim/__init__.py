"""recoilsim: simulation and fitting of TOF-ERDA spectra."""

from .errors import RecoilsimError

__version__ = "0.1.0"

__all__ = ["RecoilsimError", "__version__"]
