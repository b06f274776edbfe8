"""Save NWB files without ever damaging the source: export to a new file, or replace atomically.

Two entry points, one mechanism (write everything to a temporary file in the destination's
folder, flush it to disk, then ``os.replace`` it onto the destination, which is atomic on
POSIX and Windows within one file system):

- :func:`edit_nwb`: a context manager that opens an existing file read-only, hands you its
  NWBFile to add results to (``write_synergies``, ``write_sta``), and on a clean exit exports
  the whole file (HDF5 datasets copied, never linked to the source) either to ``output`` or
  back over the source.
- :func:`save_nwb`: write an NWBFile built in memory (or exported from one read from disk).
- :func:`open_results`: what the pipeline uses: a session from any source (path, URL, open
  file, NWBFile) and where its results go: in place (:func:`edit_nwb`), a results-only file
  (:func:`results_only_nwbfile`: the session's metadata, Units, intervals and a reference to
  the source, no raw data), or a full copy (``copy_source=True``).

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
import dataclasses
import logging
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputError, ResultsExistError, os_error_problem

__all__ = [
    "LOCK_TIMEOUT",
    "ResultsTarget",
    "edit_nwb",
    "open_results",
    "results_only_nwbfile",
    "save_nwb",
    "source_reference",
]

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


# -- results-only files ------------------------------------------------------------------------

#: fields of the NWBFile copied from the source into a results-only file (scalars and lists)
SESSION_FIELDS = (
    "session_description",
    "session_start_time",
    "timestamps_reference_time",
    "experimenter",
    "experiment_description",
    "session_id",
    "institution",
    "lab",
    "keywords",
    "pharmacology",
    "protocol",
    "related_publications",
    "slices",
    "data_collection",
    "surgery",
    "virus",
    "stimulus_notes",
)
_SUBJECT_FIELDS = (
    "age",
    "age__reference",
    "description",
    "genotype",
    "sex",
    "species",
    "subject_id",
    "weight",
    "date_of_birth",
    "strain",
)


def _plain(value):
    """h5py/hdmf text and arrays as str, lists of str, or the value itself."""
    import numpy as np

    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, str):
        arr = np.asarray(value[()])
        if arr.ndim == 0:
            return _plain(arr.item())
        return [_plain(v) for v in arr.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def source_reference(nwbfile, label: str, emg_paths=(), units_path: str | None = None) -> dict:
    """What a results file says about the session it was computed from.

    Parameters
    ----------
    nwbfile
        The source NWBFile.
    label
        Its path or URL (without query).
    emg_paths
        Object paths of the EMG series analysed (``acquisition/EMG``).
    units_path
        Object path of the Units table whose spikes were averaged, if any.

    Returns
    -------
    dict
        ``identifier``, ``location`` (path or URL), ``emg_series`` (paths), ``units`` (path or
        None), ``object_ids`` (path -> NWB object id of each, which stays valid when the file
        moves).
    """
    from .write import _lookup

    object_ids = {}
    for path in [*emg_paths, *([units_path] if units_path else [])]:
        obj = nwbfile.units if path == "units" else _lookup(nwbfile, path)
        if obj is not None:
            object_ids[path] = obj.object_id
    return {
        "identifier": str(nwbfile.identifier),
        "location": label,
        "emg_series": list(emg_paths),
        "units": units_path,
        "object_ids": object_ids,
    }


def _copy_subject(subject):
    from pynwb.file import Subject

    if subject is None:
        return None
    values = {f: _plain(getattr(subject, f, None)) for f in _SUBJECT_FIELDS}
    return Subject(**{k: v for k, v in values.items() if v is not None})


def _copy_units(table):
    """A Units table with the ids, spike times, observation intervals and resolution of
    ``table`` (the rows our result tables point to), nothing else."""
    import numpy as np
    from pynwb.misc import Units

    cols = set(table.colnames)
    resolution = getattr(table, "resolution", None)
    description = (
        f"{table.description} (ids, spike times and observation intervals copied from the "
        "source file, so that the results' unit references resolve; other columns are in "
        "the source)"
    )
    ids = np.asarray(table.id.data[:], dtype=np.int64)
    columns = []
    for name, width in (("spike_times", None), ("obs_intervals", 2)):
        if name in cols:
            columns += _ragged_copy(table, name, width)
    copy = Units(
        name=table.name,
        description=description,
        resolution=None if resolution is None else float(resolution),
        id=ids,
        columns=columns,
    )
    return copy


def _ragged_copy(table, name: str, width: int | None) -> list:
    """The ragged column ``name`` of ``table`` as a new (VectorData, VectorIndex) pair: its
    values and row ends read whole, once each (hdmf writes a list element by element, and
    150,000 spike times added row by row took seconds)."""
    import numpy as np
    from hdmf.common import VectorData, VectorIndex

    index = table[name]
    values = np.asarray(index.target.data[:], dtype=np.float64)
    if width is not None:
        values = values.reshape(-1, width)
    ends = np.asarray(index.data[:], dtype=np.int64)
    data = VectorData(name=name, description=index.target.description, data=values)
    return [data, VectorIndex(name=f"{name}_index", data=ends, target=data)]


def _copy_intervals(table):
    """A TimeIntervals with the times, tags and plain columns of ``table`` (no references)."""
    import numpy as np
    from hdmf.common import DynamicTableRegion, VectorIndex
    from pynwb.epoch import TimeIntervals

    copy = TimeIntervals(name=table.name, description=table.description)
    n = len(table)
    plain = []
    for name in table.colnames:
        if name in ("start_time", "stop_time", "tags", "timeseries"):
            continue
        column = table[name]
        target = column.target if isinstance(column, VectorIndex) else column
        if isinstance(target, DynamicTableRegion) or isinstance(column, VectorIndex):
            continue
        values = np.asarray(column.data[:])
        if values.dtype.kind == "O" and values.size and not isinstance(values.flat[0], str | bytes):
            continue  # object references
        copy.add_column(name=name, description=column.description)
        plain.append((name, [_plain(v) for v in values.tolist()]))
    starts = np.asarray(table["start_time"].data[:], dtype=float)
    stops = np.asarray(table["stop_time"].data[:], dtype=float)
    tags = table["tags"] if "tags" in table.colnames else None
    for i in range(n):
        row = {name: values[i] for name, values in plain}
        if tags is not None:
            row["tags"] = [_plain(t) for t in tags[i]]
        copy.add_interval(start_time=float(starts[i]), stop_time=float(stops[i]), **row)
    return copy


def _copy_synergy_pair(table, activation):
    """A MuscleSynergy (and its SynergyActivation) rebuilt without references to the source."""
    import numpy as np

    from ..ndx import MuscleSynergy, SynergyActivation

    base = {"muscle_name", "weights", "offset", "emg_series", "emg_channel", "electrodes"}
    kwargs = {}
    if "offset" in table.colnames:
        kwargs["offset"] = np.asarray(table["offset"].data[:])
    if table.variance_accounted_for is not None:
        kwargs["variance_accounted_for"] = np.asarray(table.variance_accounted_for[:])
    copy = MuscleSynergy(
        name=table.name,
        description=table.description,
        muscle_name=[_plain(m) for m in table["muscle_name"].data[:]],
        weights=np.asarray(table["weights"].data[:]),
        method=table.method,
        nonnegative=bool(table.nonnegative),
        parameters=table.parameters,
        software=table.software,
        software_version=table.software_version,
        provenance=getattr(table, "provenance", None),
        **kwargs,
    )
    for name in table.colnames:
        if name not in base:
            column = table[name]
            copy.add_column(
                name=name, description=column.description, data=np.asarray(column.data[:])
            )
    if activation is None:
        return copy, None
    timing = (
        {"rate": float(activation.rate), "starting_time": float(activation.starting_time or 0)}
        if activation.rate is not None
        else {"timestamps": np.asarray(activation.timestamps[:])}
    )
    act = SynergyActivation(
        name=activation.name,
        data=np.asarray(activation.data[:]),
        muscle_synergy=copy,
        unit=activation.unit,
        description=activation.description,
        **timing,
    )
    return copy, act


def results_only_nwbfile(source, reference: dict):
    """A new NWBFile for the results of ``source``: its metadata, no raw data.

    Copied: the session's metadata and subject; every Units table, with ids, spike times,
    observation intervals and resolution only (result tables point to its rows); the interval
    tables (times, tags and plain columns); the synergy tables of our extension already in the
    source (e.g. a simulation's ground truth), without their references to the source's EMG.
    Not copied: acquisition, stimulus, electrodes and every other processed series.

    Parameters
    ----------
    source
        The source NWBFile (open).
    reference
        :func:`source_reference` of the source, recorded in ``notes``.

    Returns
    -------
    pynwb.NWBFile
        A new identifier; ``notes`` says where the raw data are.
    """
    import uuid

    from pynwb import NWBFile

    from .. import __version__
    from ..ndx import MuscleSynergy, SynergyActivation
    from .units import _all_units

    values = {f: _plain(getattr(source, f, None)) for f in SESSION_FIELDS}
    values = {k: v for k, v in values.items() if v not in (None, [], "")}
    where = f"EMG at {', '.join(reference['emg_series']) or '?'}"
    if reference.get("units"):
        where += f", units at {reference['units']}"
    notes = (
        f"Derived file: results of nwb_synergy {__version__} for the session with identifier "
        f"'{reference['identifier']}' ({reference['location']}), which holds the raw data "
        f"({where}). This file holds no raw data; the source's Units (ids and spike times), "
        "intervals and metadata are copied so that the results stand alone."
    )
    if source.notes:
        notes = f"{_plain(source.notes)}\n{notes}"
    target = NWBFile(
        identifier=str(uuid.uuid4()),
        notes=notes,
        subject=_copy_subject(source.subject),
        was_generated_by=[["nwb_synergy", __version__]],
        **values,
    )
    for path, table in _all_units(source):
        copy = _copy_units(table)
        if path == "units":
            target.units = copy
        else:
            _, module, _name = path.split("/", 2)
            _target_module(target, source, module).add(copy)
    intervals = dict(source.intervals or {})
    for table in intervals.values():
        target.add_time_intervals(_copy_intervals(table))
    for module_name, module in source.processing.items():
        objects = module.data_interfaces
        activations = {
            o.muscle_synergy.name: o for o in objects.values() if isinstance(o, SynergyActivation)
        }
        for obj in objects.values():
            if isinstance(obj, MuscleSynergy):
                pair = _copy_synergy_pair(obj, activations.get(obj.name))
                dest = _target_module(target, source, module_name)
                dest.add([p for p in pair if p is not None])
    return target


def _target_module(target, source, name: str):
    if name in target.processing:
        return target.processing[name]
    return target.create_processing_module(
        name=name, description=source.processing[name].description
    )


# -- one entry point for the pipeline: where results are read from and written to -----------

MODE_IN_PLACE = "in place"
MODE_COPY = "copy of the source"
MODE_RESULTS_ONLY = "results only"
MODE_IN_MEMORY = "in memory"


@dataclasses.dataclass
class ResultsTarget:
    """Where a run reads its session and writes its results (see :func:`open_results`).

    Attributes
    ----------
    source
        The session's NWBFile, to read the EMG and the Units from.
    target
        The NWBFile the results are added to: ``source`` itself (in place, copy, in memory) or
        a new file with the session's metadata (results only; built by
        :meth:`make_results_only`).
    label
        The source's path or URL (without query), for messages and provenance.
    output
        The file that will be written, or None (results added to an NWBFile in memory).
    mode
        "in place", "copy of the source", "results only" or "in memory".
    """

    source: Any
    target: Any
    label: str
    output: Path | None
    mode: str

    def make_results_only(self, reference: dict) -> None:
        """Build the results-only target from the source (once the EMG paths are known)."""
        if self.mode == MODE_RESULTS_ONLY and self.target is None:
            self.target = results_only_nwbfile(self.source, reference)


def _same_file(a, b: Path) -> bool:
    try:
        return Path(a).exists() and b.exists() and os.path.samefile(a, b)
    except OSError:  # pragma: no cover
        return False


@contextlib.contextmanager
def open_results(
    source,
    output=None,
    *,
    copy_source: bool = False,
    overwrite: bool = False,
    replace_read_only: bool = False,
    lock_timeout: float | None = LOCK_TIMEOUT,
) -> Iterator[ResultsTarget]:
    """Open a session for analysis and save its results safely when the block ends.

    ===================  ==============  ======================================================
    source               ``output``      what is written
    ===================  ==============  ======================================================
    local path           None            the source itself, atomically (:func:`edit_nwb`)
    any                  a file          results only (default): a new file with the
                                         session's metadata, Units and intervals, the results,
                                         and a reference to the source; no raw data
    any                  a file          with ``copy_source``: the whole source plus results
    NWBFile              None            nothing: results are added to the NWBFile in memory
    URL, open file       None            refused (InputError): give an output file
    ===================  ==============  ======================================================

    Every file written is written atomically under the destination's lock (see the module
    docstring); what can be refused is refused when the block is entered, before any
    computation (missing folder, existing output without ``overwrite``, an output that is the
    source itself in results-only mode, a read-only file).

    Parameters
    ----------
    source
        A path, URL, open h5py.File or file object, or NWBFile (:mod:`nwb_synergy.io.files`).
    output
        The results file, or None.
    copy_source
        Write the whole source plus the results to ``output`` (one self-contained file).
    overwrite, replace_read_only, lock_timeout
        As for :func:`edit_nwb`.

    Yields
    ------
    ResultsTarget
        In results-only mode ``target`` is None until :meth:`ResultsTarget.make_results_only`
        is called; the results must be added to ``target`` inside the block.
    """
    from pynwb import NWBHDF5IO

    from .files import KIND_NWBFILE, KIND_PATH, open_nwb, source_kind, source_label

    kind = source_kind(source)
    label = source_label(source)
    if output is None:
        if kind == KIND_PATH:
            with edit_nwb(
                source, overwrite=overwrite, replace_read_only=replace_read_only,
                lock_timeout=lock_timeout,
            ) as nwbfile:  # fmt: skip
                yield ResultsTarget(nwbfile, nwbfile, label, Path(source), MODE_IN_PLACE)
            return
        if kind == KIND_NWBFILE:
            yield ResultsTarget(source, source, label, None, MODE_IN_MEMORY)
            return
        raise InputError(
            f"a {kind} cannot be updated in place: give an output file for the results (-o)",
            file=label,
        )
    if copy_source and kind == KIND_PATH:
        with edit_nwb(
            source, output, overwrite=overwrite, replace_read_only=replace_read_only,
            lock_timeout=lock_timeout,
        ) as nwbfile:  # fmt: skip
            yield ResultsTarget(nwbfile, nwbfile, label, Path(output), MODE_COPY)
        return
    if kind == KIND_PATH:
        _check_source(Path(source))
    destination = _resolve(Path(output))
    _check_folder(destination)
    if kind == KIND_PATH and not copy_source and _same_file(source, destination):
        raise InputError(
            "the output is the source file itself: a results-only file would replace the raw "
            "data; omit the output to add the results to the file in place, or pass "
            "copy_source=True (--copy-source)",
            file=output,
        )
    with _writer_lock(destination, lock_timeout):
        if destination.exists() and not overwrite:
            raise ResultsExistError(
                f"file '{output}': output file already exists; pass overwrite=True to replace "
                "it or choose another output"
            )
        _check_replaceable(destination, replace_read_only)
        reader = None
        if kind == KIND_NWBFILE:
            nwbfile, reader = source, getattr(source, "read_io", None)
        else:
            reader, nwbfile = open_nwb(source)
        try:
            mode = MODE_COPY if copy_source else MODE_RESULTS_ONLY
            opened = ResultsTarget(
                nwbfile, nwbfile if copy_source else None, label, Path(output), mode
            )
            yield opened
            if opened.target is None:  # nothing was computed: still a valid results file
                opened.make_results_only(source_reference(nwbfile, label))
            with _atomic_target(destination) as tmp:
                with NWBHDF5IO(str(tmp), "w") as out:
                    if copy_source and reader is not None:
                        out.export(src_io=reader, nwbfile=nwbfile, write_args={"link_data": False})
                    else:
                        out.write(opened.target)
        finally:
            if reader is not None and kind != KIND_NWBFILE:
                reader.close()
