"""Read spike trains from the Units tables of an NWB file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from .files import file_label, resolve_nwbfile


def _all_units(nwbfile) -> list[tuple[str, Any]]:
    """(path, table) of every Units table: the root ``units``, then those in processing."""
    from pynwb.misc import Units

    found = []
    if nwbfile.units is not None:
        found.append(("units", nwbfile.units))
    for module_name, module in nwbfile.processing.items():
        for obj_name, obj in module.data_interfaces.items():
            if isinstance(obj, Units):
                found.append((f"processing/{module_name}/{obj_name}", obj))
    return found


def _check_spike_times(table, path: str, label) -> None:
    if "spike_times" not in table.colnames:
        raise InputError(
            f"the Units table has no spike_times column (columns: {list(table.colnames)})",
            file=label,
            obj=path,
        )


def find_units(nwbfile, *, file: object | None = None):
    """The one Units table of a file with units in it, or None when it has none.

    Looks at the root ``units`` and in every processing module; tables without rows do not
    count. Called before any computation, so that a file whose spikes cannot be read is
    refused at once, not after the synergies.

    Parameters
    ----------
    nwbfile
        A pynwb NWBFile.
    file
        The file name for error messages (default: where the NWBFile was read from).

    Returns
    -------
    pynwb.misc.Units or None
        The table (with a ``spike_times`` column), or None when no Units table has rows.

    Raises
    ------
    InputError
        Two or more Units tables with rows (which one is meant is unknown: pass
        ``units=`` to :func:`read_spike_trains`), or a Units table with rows but no
        ``spike_times`` column.
    """
    label = file if file is not None else file_label(nwbfile)
    tables = [(p, t) for p, t in _all_units(nwbfile) if len(t) > 0]
    if not tables:
        return None
    if len(tables) > 1:
        paths = ", ".join(p for p, _ in tables)
        raise InputError(
            f"ambiguous Units: {len(tables)} Units tables with units ({paths}); which one to "
            "analyse is not known: keep one in the file, or pass units= to read_spike_trains",
            file=label,
            obj=paths,
        )
    path, table = tables[0]
    _check_spike_times(table, path, label)
    return table


def read_spike_trains(
    nwbfile_or_path,
    *,
    units: str | None = None,
    unit_ids: Sequence[int] | None = None,
) -> dict[int, np.ndarray]:
    """Spike times per unit from a Units table at the file root or in a processing module.

    Parameters
    ----------
    nwbfile_or_path
        A pynwb NWBFile, or any source :func:`~nwb_synergy.io.files.open_nwb` reads (a path, an
        ``https://`` or ``s3://`` URL, an open h5py.File or file object; opened and closed here).
    units
        Which Units table when there are several: ``"units"`` for the root table, a path such
        as ``processing/ecephys/Units``, the table's name or its processing module's name.
        None: the one table :func:`find_units` finds.
    unit_ids
        Only these unit ids (in this order); all units when None.

    Returns
    -------
    dict
        {unit id (int): spike times in seconds, float64 array of shape (n_spikes,), sorted}.

    Raises
    ------
    InputError
        No Units table, several and ``units`` not given, no ``spike_times`` column, no spikes
        at all, two units with the same id, NaN or unsorted spike times in a unit, unknown
        unit ids.
    """
    nwbfile, label, io = resolve_nwbfile(nwbfile_or_path)
    try:
        path, table = _select_units(nwbfile, units, label)
        return _spike_times(table, path, label, unit_ids)
    finally:
        if io is not None:
            io.close()


def _select_units(nwbfile, units: str | None, label) -> tuple[str, Any]:
    if units is None:
        table = find_units(nwbfile, file=label)
        if table is None:
            raise InputError(
                "no Units table with units (looked at the root 'units' and in every "
                "processing module)",
                file=label,
                obj="units",
            )
        return next((p, t) for p, t in _all_units(nwbfile) if t is table)
    tables = _all_units(nwbfile)
    key = units.strip("/")
    chosen = [
        (p, t)
        for p, t in tables
        if key in (p, t.name) or p.endswith("/" + key) or p.split("/")[1:2] == [key]
    ]
    if len(chosen) != 1:
        listing = ", ".join(p for p, _ in tables) or "none"
        problem = "no" if not chosen else "more than one"
        raise InputError(
            f"{problem} Units table matches units={units!r}; tables: {listing}",
            file=label,
            obj=units,
        )
    return chosen[0]


def _spike_times(table, path: str, label, unit_ids) -> dict[int, np.ndarray]:
    _check_spike_times(table, path, label)
    ids = np.asarray(table.id.data[:], dtype=np.int64)
    unique, counts = np.unique(ids, return_counts=True)
    if np.any(counts > 1):
        repeated = unique[counts > 1]
        rows = np.flatnonzero(ids == repeated[0]).tolist()
        raise InputError(
            f"unit ids are not unique: {len(repeated)} id(s) repeated, e.g. id {repeated[0]} "
            f"in rows {rows}; the results of one would replace the other's",
            file=label,
            obj=f"{path}/id",
        )
    index = table["spike_times"]
    if hasattr(index, "target"):  # ragged column: VectorIndex over the flat VectorData
        ends = np.asarray(index.data[:], dtype=np.int64)
        flat = np.asarray(index.target.data[:], dtype=np.float64)
    else:  # pragma: no cover - a Units table always stores spike_times ragged
        raise InputError("spike_times is not a ragged column", file=label, obj=path)
    if ids.size == 0 or flat.size == 0:
        raise InputError("the Units table is empty (no spikes at all)", file=label, obj=path)
    starts = np.concatenate([[0], ends[:-1]])
    out: dict[int, np.ndarray] = {}
    for uid, a, b in zip(ids, starts, ends, strict=True):
        times = flat[a:b].copy()
        if not np.all(np.isfinite(times)):
            raise InputError(
                f"unit {uid} has NaN or infinite spike times", file=label, obj=f"{path}/spike_times"
            )
        if np.any(np.diff(times) < 0):
            k = int(np.flatnonzero(np.diff(times) < 0)[0])
            raise InputError(
                f"spike times of unit {uid} are not sorted (spike {k + 1} at {times[k + 1]:.6f} s "
                f"comes before spike {k} at {times[k]:.6f} s)",
                file=label,
                obj=f"{path}/spike_times",
            )
        out[int(uid)] = times
    if unit_ids is not None:
        missing = [u for u in unit_ids if int(u) not in out]
        if missing:
            raise InputError(
                f"unit ids {missing} are not in the table (ids: {sorted(out)})",
                file=label,
                obj=path,
            )
        out = {int(u): out[int(u)] for u in unit_ids}
    return out
