"""Progress of long loops (batch screening, the fit's bootstrap and MCMC): nothing, a rich
progress bar, or a callback the caller gives."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from ..errors import RecoilsimError


@contextmanager
def reporter(progress, total: int | None, description: str) -> Iterator[Callable[[int], None]]:
    """Yield ``step(done)``, to call after each unit of work with the number done so far.

    Parameters
    ----------
    progress : bool or callable
        False: nothing; True: a rich progress bar on the terminal; a callable ``f(done, total)``:
        called with every step (``total`` may be None when it is not known in advance).
    total : int or None
    description : str
        Label of the bar.
    """
    if callable(progress):
        yield lambda done: progress(done, total)
    elif progress is True:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      transient=True) as bar:
            task = bar.add_task(description, total=total)
            yield lambda done: bar.update(task, completed=done)
    elif progress is False or progress is None:
        yield lambda done: None
    else:
        raise RecoilsimError("progress", progress, "True, False or a callable f(done, total)")
