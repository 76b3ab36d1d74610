"""The measured side of a fit: spectra as given by the user -> {element: counts}, and the fit windows.

:func:`as_spectra` accepts a dict element -> counts, an xarray DataArray (dims element, channel,
or channel with an element name) or a Dataset with ``counts`` (as
:func:`recoilsim.forward.simulate.simulate` returns) and checks them. :func:`choose_windows`
returns the channels each element is fitted in: the user's windows
(``FitParameters.windows``, inclusive), or by default the profiled element's channels that see
the depth nodes (plus 5 channels each side) and, for the other elements, the channels where the
nominal model exceeds 1e-3 of its maximum. :func:`background_start` gives the start level of a
fitted background.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from ..errors import RecoilsimError
from .parameters import FitParameters

__all__ = ["as_spectra", "background_start", "choose_windows", "describe_windows"]

#: a model channel counts as "seen" above this fraction of the spectrum's maximum
SEEN = 1e-3
#: channels added on each side of the profiled element's default window
MARGIN = 5


def as_spectra(meas, elements: list[str], n_ch: int, i: int) -> dict[str, np.ndarray]:
    """One measurement -> {element: counts (n_ch,)} (checked: known elements, shape, counts >= 0)."""
    out = {}
    if isinstance(meas, xr.Dataset):
        if "counts" not in meas:
            raise RecoilsimError(f"measured[{i}]", "Dataset", "a Dataset with a 'counts' variable")
        meas = meas["counts"]
    if isinstance(meas, xr.DataArray):
        if "element" in meas.dims:
            for e in meas["element"].values:
                out[str(e)] = np.asarray(meas.sel(element=e).values, float)
        else:
            e = meas.attrs.get("element") or (meas.coords["element"].item() if "element" in meas.coords else None) \
                or meas.name
            if e is None:
                raise RecoilsimError(f"measured[{i}]", "DataArray without element",
                                     "an 'element' dim, coordinate, attr or name")
            out[str(e)] = np.asarray(meas.values, float)
    elif isinstance(meas, Mapping):
        out = {str(k): np.asarray(v, float) for k, v in meas.items()}
    else:
        raise RecoilsimError(f"measured[{i}]", type(meas).__name__,
                             "a dict element -> counts, an xarray DataArray or a Dataset with 'counts'")
    for e, v in out.items():
        if e not in elements:
            raise RecoilsimError(f"measured[{i}][{e}]", e, f"an element with a simulated spectrum ({elements})")
        if v.shape != (n_ch,):
            raise RecoilsimError(f"measured[{i}][{e}]", v.shape, f"{n_ch} channels")
        if not np.all(np.isfinite(v)) or np.any(v < 0):
            raise RecoilsimError(f"measured[{i}][{e}]", "negative or non-finite counts", "counts >= 0")
    return out


def _seen(s: np.ndarray, margin: int) -> tuple[int, int]:
    idx = np.nonzero(s > SEEN * max(s.max(), 1e-300))[0]
    return (idx.min() - margin, idx.max() + margin) if idx.size else (0, -1)


def choose_windows(par: FitParameters, data: list[dict], nominal: list, n_ch: int) -> list[dict]:
    """Per measurement {element: channel indices} (see the module docstring).

    ``nominal[m]`` is the measurement's :class:`~recoilsim.forward.linear_model.LinearModel`
    at its start (its profile columns and the other elements' spectra give the defaults).
    """
    out = []
    for m, dm in enumerate(data):
        lm = nominal[m]
        A, _c = lm.columns()
        oth = lm.other()
        w = {}
        for e in dm:
            spec = par.windows.get((m, e), par.windows.get(e))
            if spec is not None:
                lo, hi = int(spec[0]), int(spec[1])
            elif e == par.element:
                lo, hi = _seen(A[:, :-1].sum(1) if A.shape[1] > 1 else A[:, 0], MARGIN)
            else:
                lo, hi = _seen(oth.get(e, np.zeros(n_ch)), 0)
            w[e] = np.arange(max(lo, 0), min(hi, n_ch - 1) + 1)
        out.append(w)
    return out


def describe_windows(win: list[dict]) -> str:
    """``m:element[first..last]`` for every window (for messages)."""
    return ", ".join(f"{m}:{e}[{w[0]}..{w[-1]}]" if w.size else f"{m}:{e}[empty]"
                     for m, ws in enumerate(win) for e, w in ws.items())


#: channels kept clear of the leading edge when the background start is estimated ahead of it
EDGE_GAP = 3


def background_start(par: FitParameters, data: list[dict], nominal: list, win: list[dict]) -> list[dict]:
    """Per measurement {element: start level of the background, counts per channel}.

    The user's ``par.background_start`` (``{element}`` or ``{(measurement, element)}``, e.g. a
    random-coincidence estimate), else the mean measured count in the window's channels ahead
    of the leading edge (the first channel where the nominal model exceeds 1e-3 of its
    maximum, less :data:`EDGE_GAP` channels: the fastest recoils, from the surface, arrive
    first); where fewer than 3 such channels lie in the window, 1e-3 of the window's mean count.
    """
    out = []
    for m, dm in enumerate(data):
        lm = nominal[m]
        A, _c = lm.columns()
        oth = lm.other()
        starts = {}
        for e, w in win[m].items():
            given = par.background_start.get((m, e), par.background_start.get(e))
            counts = dm[e][w]
            if given is not None:
                starts[e] = float(given)
                continue
            model = A.sum(1) if e == par.element else oth.get(e, np.zeros(dm[e].size))
            lo, _hi = _seen(model, 0)
            ahead = counts[: max(lo - EDGE_GAP - (w[0] if w.size else 0), 0)]
            starts[e] = float(ahead.mean()) if ahead.size >= 3 else 1e-3 * float(counts.mean() if counts.size else 0.0)
        out.append(starts)
    return out
