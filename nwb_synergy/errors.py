"""Exceptions raised on bad input.

Every error a user can cause is an :class:`InputError` whose message names the file, the
object and the problem, so that the command line can print it as one line.
"""

from __future__ import annotations


class NWBSynergyError(Exception):
    """Base class of every error nwb_synergy raises on purpose."""


class InputError(NWBSynergyError, ValueError):
    """Input data or arguments that cannot be analysed.

    Parameters
    ----------
    problem
        What is wrong, in plain words.
    file
        The file the object came from, if any.
    obj
        The object inside the file (e.g. ``acquisition/EMG``) or the argument name.
    """

    def __init__(self, problem: str, *, file: object | None = None, obj: str | None = None):
        self.problem = problem
        self.file = None if file is None else str(file)
        self.obj = obj
        where = []
        if self.file:
            where.append(f"file '{self.file}'")
        if obj:
            where.append(f"object '{obj}'")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + problem)


class ResultsExistError(NWBSynergyError):
    """Results of the same name are already in the file and ``overwrite`` was not asked."""
