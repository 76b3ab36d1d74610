"""Progress notices for long jobs: the one-off Numba compilation and many-task runs (rich).

Numba compiles the kernels on first use (about 15 s on a small machine) and keeps them in its
on-disk cache (``cache=True``); :func:`kernels_cached` tells whether that cache already holds
the main kernels, so that a command can say "compiling kernels (first run only)" instead of
looking hung.
"""

from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator

__all__ = ["kernels_cached", "simulation_status", "progress_bar"]

#: the kernels every simulation runs (module, function) -- their cache index files are checked
_MAIN_KERNELS = (("bricks", "simulate_bricks"), ("spreading", "spread_levels"))


def kernels_cached() -> bool:
    """True when Numba's on-disk cache holds an index for each main kernel (no compile ahead).

    Uses the dispatcher's cache object; where Numba's internals differ or no cache is possible
    the answer is False (the notice is then shown, which costs nothing)."""
    import importlib

    try:
        for mod, fn in _MAIN_KERNELS:
            disp = getattr(importlib.import_module(f"recoilsim.kernels.{mod}"), fn)
            if disp.signatures:  # compiled or loaded in this process already
                continue
            index = disp._cache._cache_file._index_path
            if not os.path.exists(index):
                return False
        return True
    except (AttributeError, ImportError, OSError):
        return False


def simulation_status(name: str) -> str:
    """Status text for a simulation about to start."""
    if kernels_cached():
        return f"simulating {name} ..."
    return f"simulating {name}: compiling kernels (first run only, ~15 s) ..."


@contextlib.contextmanager
def progress_bar(total: int, description: str, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; yields ``advance(n=1)``. Disabled: a no-op callable."""
    if not enabled:
        yield lambda n=1: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as prog:
        task = prog.add_task(description, total=total)
        yield lambda n=1: prog.advance(task, n)
