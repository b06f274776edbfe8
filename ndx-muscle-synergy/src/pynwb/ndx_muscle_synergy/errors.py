"""The error raised on data that an extension type cannot hold.

Every check of the classes raises through :func:`fail`, as :class:`InvalidDataError` or, when a
package built on the extension asked for it with :func:`set_error_class`, as a subclass of it
(so ``except InvalidDataError`` always catches it).
"""

from __future__ import annotations

from typing import NoReturn

__all__ = ["InvalidDataError", "set_error_class", "fail"]


class InvalidDataError(ValueError):
    """Data or arguments that an ndx-muscle-synergy type cannot hold.

    Parameters
    ----------
    problem
        What is wrong, in plain words.
    obj
        The name of the object being built (e.g. ``MuscleSynergyNMF``).
    """

    def __init__(self, problem: str, *, obj: str | None = None):
        self.problem = problem
        self.obj = obj
        super().__init__(f"object '{obj}': {problem}" if obj else problem)


_error_class: type[InvalidDataError] = InvalidDataError


def set_error_class(error_class: type[InvalidDataError]) -> type[InvalidDataError]:
    """Raise bad input as ``error_class`` from now on; return the class used until now.

    Meant for packages built on the extension that have their own error hierarchy: they pass a
    class deriving from both their error and :class:`InvalidDataError`, so that callers of
    either package catch what they expect.

    Parameters
    ----------
    error_class
        A subclass of :class:`InvalidDataError`, called as ``error_class(problem, obj=name)``.
    """
    global _error_class
    if not (isinstance(error_class, type) and issubclass(error_class, InvalidDataError)):
        raise TypeError(f"error_class must be a subclass of InvalidDataError, got {error_class!r}")
    previous, _error_class = _error_class, error_class
    return previous


def fail(problem: str, obj: str | None) -> NoReturn:
    """Raise the current error class for ``problem`` in object ``obj``."""
    raise _error_class(problem, obj=obj)
