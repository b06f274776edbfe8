"""Save NWB files without ever damaging the source: export to a new file, or replace atomically.

Two entry points, one mechanism (write everything to a temporary file in the destination's
folder, flush it to disk, then ``os.replace`` it onto the destination, which is atomic on
POSIX and Windows within one file system):

- :func:`edit_nwb`: a context manager that opens an existing file read-only, hands you its
  NWBFile to add results to (``write_synergies``, ``write_sta``), and on a clean exit exports
  the whole file (HDF5 datasets copied, never linked to the source) either to ``output`` or
  back over the source.
- :func:`save_nwb`: write an NWBFile built in memory (or exported from one read from disk).

What can be checked is checked when the block is entered, before any computation: the
destination's folder exists and is writable and has room for at least a copy of the source,
the file to replace is not read-only (unless ``replace_read_only=True``), an existing
``output`` is not replaced without ``overwrite=True``.

One writer at a time: the destination is locked (``.<stem>.nwb-synergy.lock`` next to it, an
operating-system lock released when the process ends, however it ends) from the moment the
block is entered until the new file is in place. A second run updating the same file waits for
the first (and logs that it waits) up to ``lock_timeout`` seconds, then reads the file with the
first run's results in it: nothing is lost.

A symbolic link is followed: its target is updated and the link stays a link.

If the block raises, the process is interrupted, the disk fills up or a permission is refused,
the destination is untouched (the source byte-identical) and the temporary file
(``.<stem>.<8 random characters>.tmp.nwb`` next to the destination) is removed. After a
SIGKILL or a power cut it stays behind; the next write to the same destination removes it
(while holding the lock, so never a file another run is still writing) and logs a warning.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError, OutputError, ResultsExistError, os_error_problem

__all__ = ["LOCK_TIMEOUT", "edit_nwb", "save_nwb"]

log = logging.getLogger("nwb_synergy")

#: seconds a run waits for another run writing the same file before giving up
LOCK_TIMEOUT = 3600.0


def _check_source(path: Path) -> None:
    """Raise InputError unless ``path`` is an existing NWB HDF5 file."""
    import h5py

    if not path.exists():
        raise InputError("file not found", file=path)
    if path.is_dir():
        raise InputError("is a folder, not an NWB file", file=path)
    try:
        with h5py.File(path, "r") as f:
            is_nwb = "nwb_version" in f.attrs
    except OSError:
        raise InputError("not an NWB file (not readable as HDF5)", file=path) from None
    if not is_nwb:
        raise InputError("not an NWB file (HDF5 without the 'nwb_version' attribute)", file=path)


# -- checks done before any computation -------------------------------------------------------


def _resolve(path: Path) -> Path:
    """``path`` with symbolic links followed (a link is updated through its target)."""
    return Path(os.path.realpath(path))


def _check_folder(destination: Path) -> None:
    """Refuse a destination whose folder is missing or not writable."""
    folder = destination.parent
    if not folder.is_dir():
        raise InputError("the destination folder does not exist", file=destination)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(
            f"permission denied: the folder '{folder}' is not writable, the file cannot be "
            "written there",
            file=destination,
        )


def _is_read_only(path: Path) -> bool:
    mode = path.stat().st_mode
    writable_bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    return not (mode & writable_bits) or not os.access(path, os.W_OK)


def _check_replaceable(destination: Path, replace_read_only: bool) -> None:
    """Refuse to replace a read-only file unless asked; warn that hard links are split."""
    if not destination.exists():
        return
    if _is_read_only(destination) and not replace_read_only:
        mode = stat.filemode(destination.stat().st_mode)
        raise InputError(
            f"the file is read-only ({mode}), so it was not replaced; make it writable "
            "(chmod u+w), write to another file (output=, -o), or pass replace_read_only=True "
            "(--replace-read-only)",
            file=destination,
        )
    n_links = destination.stat().st_nlink
    if n_links > 1:
        log.warning(
            "%s has %d hard links: it is replaced by a new file and the other links keep the "
            "old contents",
            destination,
            n_links,
        )


def _check_space(destination: Path, needed: int) -> None:
    """Refuse when the destination's file system has less than ``needed`` bytes free."""
    try:
        free = shutil.disk_usage(destination.parent).free
    except OSError:  # pragma: no cover - a file system that does not tell
        return
    if free < needed:
        raise OutputError(
            f"not enough space left on device: the new file needs at least {needed / 1e6:.1f} MB "
            f"(the size of the source), {free / 1e6:.1f} MB are free in '{destination.parent}'",
            file=destination,
        )


# -- one writer at a time, and what killed writers left ---------------------------------------


def _lock_path(destination: Path) -> Path:
    """The lock shared by every writer of ``destination`` (and of its temporary files)."""
    return destination.parent / f".{destination.stem}.nwb-synergy.lock"


def _temp_path(destination: Path) -> Path:
    fd, name = tempfile.mkstemp(
        prefix=f".{destination.stem}.", suffix=".tmp.nwb", dir=destination.parent or "."
    )
    os.close(fd)
    return Path(name)


def _stale_temp_files(destination: Path) -> list[Path]:
    """Files named as :func:`_temp_path` names them (mkstemp: 8 characters of [a-z0-9_])."""
    pattern = re.compile(rf"\.{re.escape(destination.stem)}\.[a-z0-9_]{{8}}\.tmp\.nwb")
    folder = destination.parent
    try:
        names = os.listdir(folder)
    except OSError:  # pragma: no cover - the folder was checked just before
        return []
    return sorted(folder / n for n in names if pattern.fullmatch(n) and (folder / n).is_file())


def _remove_stale_temp_files(destination: Path) -> None:
    """Delete the temporary files of killed runs; only while holding the destination's lock."""
    removed, n_bytes = [], 0
    for tmp in _stale_temp_files(destination):
        try:
            size = tmp.stat().st_size
            tmp.unlink()
        except OSError:
            continue
        removed.append(tmp.name)
        n_bytes += size
    if removed:
        log.warning(
            "removed %d temporary file(s) (%.1f MB) that an interrupted run left next to %s: %s",
            len(removed),
            n_bytes / 1e6,
            destination,
            ", ".join(removed),
        )


@contextlib.contextmanager
def _writer_lock(destination: Path, timeout: float | None) -> Iterator[None]:
    """Hold the lock of ``destination``, waiting up to ``timeout`` s (None: no limit).

    Inside, no other run writes ``destination`` or has a temporary file for it, so leftovers
    of killed runs are removed first.
    """
    from filelock import FileLock, Timeout

    lock_file = _lock_path(destination)
    lock = FileLock(lock_file)
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.warning(
                "another run is writing %s (lock %s); waiting for it to finish%s",
                destination,
                lock_file.name,
                "" if timeout is None else f" (at most {timeout:g} s)",
            )
            lock.acquire(timeout=-1 if timeout is None else timeout)
    except Timeout:
        raise OutputError(
            f"another run has been writing this file for more than {timeout:g} s (lock "
            f"'{lock_file.name}' held); try again when it has finished",
            file=destination,
        ) from None
    except OSError as err:
        problem = os_error_problem(err) or err.strerror or str(err)
        raise OutputError(
            f"cannot create the lock file '{lock_file.name}' next to it ({problem})",
            file=destination,
        ) from err
    try:
        _remove_stale_temp_files(destination)
        yield
    finally:
        lock.release()


# -- the atomic write -------------------------------------------------------------------------


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def _copy_mode(destination: Path, tmp: Path) -> None:
    """Give ``tmp`` the permissions of the file it replaces (mkstemp makes it 0600)."""
    if destination.exists():
        shutil.copymode(destination, tmp)
    else:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)


@contextlib.contextmanager
def _atomic_target(destination: Path) -> Iterator[Path]:
    """Yield a temporary path; on success move it onto ``destination``, else delete it.

    A full disk or a refused permission becomes an OutputError naming the destination.
    """
    try:
        tmp = _temp_path(destination)
    except OSError as err:
        problem = os_error_problem(err) or err.strerror or str(err)
        raise OutputError(f"cannot create a file next to it ({problem})", file=destination) from err
    try:
        yield tmp
        _fsync(tmp)
        _copy_mode(destination, tmp)
        os.replace(tmp, destination)
        _fsync_dir(destination.parent)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        problem = os_error_problem(err)
        if problem is not None:
            raise OutputError(
                f"{problem} while writing it; it was not changed", file=destination
            ) from err
        raise


# -- entry points ------------------------------------------------------------------------------


@contextlib.contextmanager
def edit_nwb(
    path,
    output=None,
    *,
    overwrite: bool = False,
    replace_read_only: bool = False,
    lock_timeout: float | None = LOCK_TIMEOUT,
) -> Iterator:
    """Open an NWB file, let the caller add to it, then save it safely.

    Parameters
    ----------
    path
        The source NWB (HDF5) file. It is opened read-only and never modified in place. A
        symbolic link is followed: without ``output``, its target is updated.
    output
        A new file to export to; None (default) replaces ``path`` itself, atomically.
    overwrite
        Allow ``output`` to replace an existing file (the source is always replaceable).
    replace_read_only
        Allow replacing a file without write permission (a read-only source updated in place,
        or an existing read-only ``output``); refused by default.
    lock_timeout
        Seconds to wait for another run writing the same file (None: no limit).

    Yields
    ------
    pynwb.NWBFile
        The file's contents; valid only inside the ``with`` block. To replace results that
        are already in the file, pass ``overwrite=True`` to the writers: they remove the old
        objects, and the export leaves them out.

    Raises
    ------
    InputError
        Missing file, not an NWB file, missing output folder, a read-only file to replace.
    OutputError
        The output folder is not writable or has less free space than the source's size,
        another run has held the file's lock for more than ``lock_timeout`` s (all raised when
        the block is entered, before any computation), or the disk fills up or a permission
        is refused while writing.
    ResultsExistError
        ``output`` exists and ``overwrite`` is False.

    Examples
    --------
    >>> with edit_nwb("session.nwb") as nwbfile:  # doctest: +SKIP
    ...     write_synergies(nwbfile, model, emg)
    """
    from pynwb import NWBHDF5IO

    path = Path(path)
    _check_source(path)
    source = _resolve(path)
    destination = source if output is None else _resolve(Path(output))
    _check_folder(destination)
    with _writer_lock(destination, lock_timeout):
        if destination != source and destination.exists() and not overwrite:
            raise ResultsExistError(
                f"file '{output}': output file already exists; pass overwrite=True to replace "
                "it or choose another output"
            )
        _check_replaceable(destination, replace_read_only)
        _check_space(destination, source.stat().st_size)
        with NWBHDF5IO(str(path), "r") as src:
            try:
                nwbfile = src.read()
            except Exception as err:
                raise InputError(f"pynwb cannot read it: {err}", file=path) from err
            yield nwbfile
            with _atomic_target(destination) as tmp:
                with NWBHDF5IO(str(tmp), "w") as out:
                    out.export(src_io=src, nwbfile=nwbfile, write_args={"link_data": False})


def save_nwb(
    nwbfile,
    path,
    overwrite: bool = False,
    *,
    replace_read_only: bool = False,
    lock_timeout: float | None = LOCK_TIMEOUT,
) -> Path:
    """Write ``nwbfile`` to ``path`` atomically (temporary file, then rename).

    Parameters
    ----------
    nwbfile
        A pynwb NWBFile built in memory, or one read from a file that is still open (it is then
        exported, with its datasets copied).
    path
        Destination file (a symbolic link is followed: its target is replaced).
    overwrite
        Replace an existing file at ``path``; otherwise refuse.
    replace_read_only
        Allow replacing an existing file without write permission.
    lock_timeout
        Seconds to wait for another run writing the same file (None: no limit).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ResultsExistError
        ``path`` exists and ``overwrite`` is False.
    InputError
        The destination folder does not exist, or the file to replace is read-only.
    OutputError
        The folder is not writable, another run holds the lock, the disk fills up.
    """
    from pynwb import NWBHDF5IO

    path = Path(path)
    destination = _resolve(path)
    _check_folder(destination)
    read_io = getattr(nwbfile, "read_io", None)
    with _writer_lock(destination, lock_timeout):
        if destination.exists() and not overwrite:
            raise ResultsExistError(
                f"file '{path}': already exists; pass overwrite=True to replace it"
            )
        _check_replaceable(destination, replace_read_only)
        with _atomic_target(destination) as tmp:
            with NWBHDF5IO(str(tmp), "w") as out:
                if read_io is not None:
                    out.export(src_io=read_io, nwbfile=nwbfile, write_args={"link_data": False})
                else:
                    out.write(nwbfile)
    return path
