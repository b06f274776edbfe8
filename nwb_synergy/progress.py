"""Progress bars of long inner loops, shown only inside a run that asked for progress.

Library calls stay silent; :func:`~nwb_synergy.analyze_session` (and the command line, unless
``--quiet``) switch the bars on with :func:`showing` for the duration of a run, so the RLVM L1
path and the NegCp bootstrap show their own bars under the pipeline's bar of steps.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

_SHOWN = contextvars.ContextVar("nwb_synergy_progress", default=False)


@contextmanager
def showing(enabled: bool) -> Iterator[None]:
    """Show (or hide) inner progress bars inside the ``with`` block."""
    token = _SHOWN.set(bool(enabled))
    try:
        yield
    finally:
        _SHOWN.reset(token)


def progress(iterable: Iterable[Any], *, desc: str, total: int | None = None) -> Iterable[Any]:
    """``iterable`` wrapped in a tqdm bar when bars are shown (and stderr is a terminal)."""
    if not _SHOWN.get():
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, disable=None)


class _Silent:
    def update(self, n: int = 1) -> None:
        """Nothing to show."""

    def close(self) -> None:
        """Nothing to close."""


def counter(*, desc: str, total: int | None = None) -> Any:
    """A bar advanced by hand (``update(n)``, ``close()``), silent unless bars are shown."""
    if not _SHOWN.get():
        return _Silent()
    from tqdm.auto import tqdm

    return tqdm(desc=desc, total=total, leave=False, disable=None)
