"""Save NWB files without ever damaging the source: export to a new file, or replace atomically.

Two entry points, one mechanism (write everything to a temporary file in the destination's
folder, flush it to disk, then ``os.replace`` it onto the destination, which is atomic on
POSIX and Windows within one file system):

- :func:`edit_nwb`: a context manager that opens an existing file read-only, hands you its
  NWBFile to add results to (``write_synergies``, ``write_sta``), and on a clean exit exports
  the whole file (HDF5 datasets copied, never linked to the source) either to ``output`` or
  back over the source.
- :func:`save_nwb`: write an NWBFile built in memory (or exported from one read from disk).

If the block raises, the process is killed, or the disk fills up, the destination is untouched
(the source byte-identical) and the temporary file (``.<stem>.<random>.tmp.nwb`` next to the
destination) is removed when the process can still do so; after a SIGKILL it stays behind and
can be deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError, ResultsExistError

__all__ = ["edit_nwb", "save_nwb"]


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


def _temp_path(destination: Path) -> Path:
    fd, name = tempfile.mkstemp(
        prefix=f".{destination.stem}.", suffix=".tmp.nwb", dir=destination.parent or "."
    )
    os.close(fd)
    return Path(name)


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
    """Yield a temporary path; on success move it onto ``destination``, else delete it."""
    tmp = _temp_path(destination)
    try:
        yield tmp
        _fsync(tmp)
        _copy_mode(destination, tmp)
        os.replace(tmp, destination)
        _fsync_dir(destination.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _destination(path: Path, output, overwrite: bool) -> Path:
    if output is None:
        return path
    output = Path(output)
    if output.resolve() == path.resolve():
        return path
    if output.exists() and not overwrite:
        raise ResultsExistError(
            f"file '{output}': output file already exists; pass overwrite=True to replace it "
            "or choose another output"
        )
    if not output.parent.is_dir():
        raise InputError("the output folder does not exist", file=output)
    return output


@contextlib.contextmanager
def edit_nwb(path, output=None, *, overwrite: bool = False) -> Iterator:
    """Open an NWB file, let the caller add to it, then save it safely.

    Parameters
    ----------
    path
        The source NWB (HDF5) file. It is opened read-only and never modified in place.
    output
        A new file to export to; None (default) replaces ``path`` itself, atomically.
    overwrite
        Allow ``output`` to replace an existing file (the source is always replaceable).

    Yields
    ------
    pynwb.NWBFile
        The file's contents; valid only inside the ``with`` block. To replace results that
        are already in the file, pass ``overwrite=True`` to the writers: they remove the old
        objects, and the export leaves them out.

    Raises
    ------
    InputError
        Missing file, not an NWB file, missing output folder.
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
    destination = _destination(path, output, overwrite)
    with NWBHDF5IO(str(path), "r") as src:
        try:
            nwbfile = src.read()
        except Exception as err:
            raise InputError(f"pynwb cannot read it: {err}", file=path) from err
        yield nwbfile
        with _atomic_target(destination) as tmp:
            with NWBHDF5IO(str(tmp), "w") as out:
                out.export(src_io=src, nwbfile=nwbfile, write_args={"link_data": False})


def save_nwb(nwbfile, path, overwrite: bool = False) -> Path:
    """Write ``nwbfile`` to ``path`` atomically (temporary file, then rename).

    Parameters
    ----------
    nwbfile
        A pynwb NWBFile built in memory, or one read from a file that is still open (it is then
        exported, with its datasets copied).
    path
        Destination file.
    overwrite
        Replace an existing file at ``path``; otherwise refuse.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ResultsExistError
        ``path`` exists and ``overwrite`` is False.
    InputError
        The destination folder does not exist.
    """
    from pynwb import NWBHDF5IO

    path = Path(path)
    if path.exists() and not overwrite:
        raise ResultsExistError(f"file '{path}': already exists; pass overwrite=True to replace it")
    if not path.parent.is_dir():
        raise InputError("the destination folder does not exist", file=path)
    read_io = getattr(nwbfile, "read_io", None)
    with _atomic_target(path) as tmp:
        with NWBHDF5IO(str(tmp), "w") as out:
            if read_io is not None:
                out.export(src_io=read_io, nwbfile=nwbfile, write_args={"link_data": False})
            else:
                out.write(nwbfile)
    return path
