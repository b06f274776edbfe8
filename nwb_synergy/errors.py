"""Exceptions raised on bad input and on outputs that cannot be written.

Every error a user can cause is an :class:`InputError` whose message names the file, the
object and the problem, so that the command line can print it as one line. An output that
cannot be written (no space left, no permission, another run writing it) is an
:class:`OutputError` with the same message form. Names from files are escaped in messages
(:func:`~nwb_synergy.text.printable`): a series called ``"\\x1b[2J"`` cannot clear the terminal.
"""

from __future__ import annotations

import errno

from .text import printable


class NWBSynergyError(Exception):
    """Base class of every error nwb_synergy raises on purpose."""


def _located(problem: str, file: str | None, obj: str | None) -> str:
    where = []
    if file:
        where.append(f"file '{printable(file)}'")
    if obj:
        where.append(f"object '{printable(obj)}'")
    prefix = (", ".join(where) + ": ") if where else ""
    return prefix + printable(problem)


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
        super().__init__(_located(problem, self.file, obj))


class InputTypeError(InputError, TypeError):
    """Input of a type that cannot be used (sparse, non-numeric, plain lists where elephant
    wants spike trains): also a ``TypeError``, as scikit-learn and elephant raise."""


class OutputError(NWBSynergyError, OSError):
    """An output that cannot be written: no space left, no permission, another run writing it.

    Same parameters as :class:`InputError`; ``file`` is the file that was to be written.
    """

    def __init__(self, problem: str, *, file: object | None = None, obj: str | None = None):
        self.problem = problem
        self.file = None if file is None else str(file)
        self.obj = obj
        super().__init__(_located(problem, self.file, obj))


class ResultsExistError(NWBSynergyError):
    """Results of the same name are already in the file and ``overwrite`` was not asked."""


_NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
_NO_PERMISSION = (errno.EACCES, errno.EPERM, errno.EROFS)


def os_error_problem(err: BaseException) -> str | None:
    """What went wrong when the environment refused a write, in plain words; else None.

    Recognises a full disk or exceeded quota (``OSError`` with errno ENOSPC or EDQUOT, and the
    ``RuntimeError`` h5py raises with ``errno = 28`` in its text when HDF5 fails to flush), a
    refused permission or a read-only file system (EACCES, EPERM, EROFS), and a file too large
    for the file system (EFBIG).

    Parameters
    ----------
    err
        The exception.

    Returns
    -------
    str or None
        E.g. ``"No space left on device (the disk is full or the quota exceeded)"``; None for any
        other exception.
    """
    if isinstance(err, NWBSynergyError) or not isinstance(err, (OSError, RuntimeError)):
        return None
    code = getattr(err, "errno", None)
    text = str(err)
    if code in _NO_SPACE or "errno = 28," in text or "No space left on device" in text:
        return "No space left on device (the disk is full or the quota exceeded)"
    if code == errno.EROFS:
        return "read-only file system"
    if code in _NO_PERMISSION:
        return "permission denied"
    if code == errno.EFBIG:
        return "file too large for the file system"
    return None
