"""Read ``TimeIntervals`` tables (trials, epochs, gait cycles) and the context of our results.

:func:`read_intervals` finds a table by name wherever NWB keeps them: ``intervals/<name>``
(``trials``, ``epochs``, ``invalid_times`` and any table made with
``create_time_intervals``) or directly in a processing module. It returns an
:class:`~nwb_synergy.intervals.Intervals` with the start and stop times and every scalar column
(ragged and array columns, and the ``tags``/``timeseries`` columns of NWB, are left out: they
cannot group intervals).

:func:`read_cycles` reads a table of gait (or any) cycles: rows marked incomplete by a boolean
``complete`` column are left out, and a column of times inside every cycle (``liftoff_time``)
splits each cycle in two phases.

:func:`read_contexts` reads back what the pipeline stored about the intervals, groups and
cycles behind each synergy table, for the figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..intervals import Intervals
from .files import file_label
from .guards import load_json, read_array

_NWB_COLUMNS = ("start_time", "stop_time", "tags", "timeseries")


def find_interval_tables(nwbfile) -> dict[str, Any]:
    """Path -> TimeIntervals table, for every table in ``intervals/`` and processing modules."""
    from pynwb.epoch import TimeIntervals

    found: dict[str, Any] = {}
    for attr in ("trials", "epochs", "invalid_times"):
        table = getattr(nwbfile, attr, None)
        if table is not None:
            found[f"intervals/{table.name}"] = table
    for name, table in (nwbfile.intervals or {}).items():
        found.setdefault(f"intervals/{name}", table)
    for module in nwbfile.processing.values():
        for name, obj in module.data_interfaces.items():
            if isinstance(obj, TimeIntervals):
                found[f"processing/{module.name}/{name}"] = obj
    return found


def _find(nwbfile, name: str, file: Any):
    tables = find_interval_tables(nwbfile)
    wanted = str(name).strip("/")
    for path, table in tables.items():
        if wanted in (path, path.rsplit("/", 1)[-1]):
            return path, table
    have = ", ".join(sorted(tables)) or "none"
    raise InputError(
        f"no TimeIntervals table named {name!r}; the file has: {have}",
        file=file,
        obj=f"intervals/{name}",
    )


def _scalar_columns(table, path: str, file: Any) -> dict[str, np.ndarray]:
    columns: dict[str, np.ndarray] = {}
    ragged = {c.name for c in table.columns if type(c).__name__ == "VectorIndex"}
    for col in table.columns:
        name = col.name
        if name in _NWB_COLUMNS or name in ragged or type(col).__name__ == "VectorIndex":
            continue
        if f"{name}_index" in ragged:
            continue
        if type(col).__name__ == "DynamicTableRegion":
            continue
        values = read_array(col.data, file=file, obj=f"{path}/{name}")
        if values.ndim != 1:
            continue
        if values.dtype.kind in "SO":
            values = np.array(
                [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values],
                dtype=object,
            )
        columns[name] = values
    return columns


def read_intervals(
    nwbfile, name: str, *, file: Any = None, phase_column: str | None = None
) -> Intervals:
    """The rows of the ``TimeIntervals`` table ``name`` (e.g. ``"trials"``).

    Parameters
    ----------
    nwbfile
        An open pynwb NWBFile.
    name
        The table's name (``trials``, ``gait_cycles``) or path (``intervals/trials``,
        ``processing/behavior/reaches``).
    file
        The file's path, for messages (default: the file's own label).
    phase_column
        A column of times splitting each interval in two phases (e.g. ``liftoff_time``), or
        None.

    Raises
    ------
    InputError
        No such table (the tables present are listed), an empty table, NaN or reversed
        times, a phase column missing or with times outside their intervals.
    """
    file = file if file is not None else file_label(nwbfile)
    path, table = _find(nwbfile, name, file)
    label = path.rsplit("/", 1)[-1]
    if len(table) == 0:
        raise InputError("the table has no rows", file=file, obj=path)
    starts = read_array(table["start_time"].data, file=file, obj=f"{path}/start_time")
    stops = read_array(table["stop_time"].data, file=file, obj=f"{path}/stop_time")
    columns = _scalar_columns(table, path, file)
    phases = None
    if phase_column is not None:
        if phase_column not in columns:
            raise InputError(
                f"no column {phase_column!r} of phase times; the table has: "
                + (", ".join(sorted(columns)) or "no other column"),
                file=file,
                obj=path,
            )
        phases = np.asarray(columns[phase_column], dtype=float)
    return Intervals(
        starts=starts,
        stops=stops,
        name=label,
        columns=columns,
        description=str(getattr(table, "description", "") or ""),
        file=None if file is None else str(file),
        phase_starts=phases,
        phase_column=phase_column,
    )


def _phase_candidates(intervals: Intervals) -> list[str]:
    """Columns named ``*_time`` whose every value lies strictly inside its interval."""
    out = []
    for name, values in intervals.columns.items():
        if not name.endswith("_time") or values.dtype.kind not in "fiu":
            continue
        v = values.astype(float)
        if np.all((v > intervals.starts) & (v < intervals.stops)):
            out.append(name)
    return out


def read_cycles(
    nwbfile, name: str, *, file: Any = None, phase_column: str | None = "auto"
) -> Intervals:
    """The cycles of a ``TimeIntervals`` table, with their phase split when there is one.

    Parameters
    ----------
    nwbfile, name, file
        As in :func:`read_intervals`.
    phase_column
        Column of the times splitting each cycle in two phases (stance/swing: the lift-off);
        "auto": the one column named ``*_time`` whose values all lie inside their cycles (none
        when there are several or none); None: no phases.

    Returns
    -------
    Intervals
        One row per cycle; rows whose boolean ``complete`` column is False (an open last
        cycle) are left out.
    """
    cycles = read_intervals(nwbfile, name, file=file)
    complete = cycles.columns.get("complete")
    if complete is not None and complete.dtype.kind == "b":
        cycles = cycles.select(complete)
    if not len(cycles):
        raise cycles.error("no complete cycle in the table")
    if phase_column == "auto":
        found = _phase_candidates(cycles)
        phase_column = found[0] if len(found) == 1 else None
    if phase_column is not None:
        if phase_column not in cycles.columns:
            raise cycles.error(
                f"no column {phase_column!r} of phase times; the table has: "
                + (", ".join(sorted(cycles.columns)) or "no other column")
            )
        from dataclasses import replace

        cycles = replace(
            cycles,
            phase_starts=np.asarray(cycles.columns[phase_column], dtype=float),
            phase_column=phase_column,
        )
    return cycles


def _spans(nwbfile, part: dict[str, Any], path: Path) -> dict[str, np.ndarray]:
    """Starts and stops of the rows of an intervals table named in a context (if readable)."""
    try:
        found = read_intervals(nwbfile, part["table"], file=path)
    except InputError:
        return {}
    rows = np.asarray(part.get("rows", []), dtype=np.int64)
    rows = rows[(rows >= 0) & (rows < len(found))]
    return {"starts": found.starts[rows], "stops": found.stops[rows]}


def read_contexts(path: str | Path) -> dict[str, dict[str, Any]]:
    """Synergy table label -> the intervals, group and cycles it was computed on.

    The pipeline stores them as ``analysis_context`` in each MuscleSynergy's provenance:
    ``"conditioning"`` (the chain and why), ``"intervals"`` and ``"group"`` (table, column,
    value, rows; plus ``starts`` and ``stops`` read from the table when the file has it),
    ``"cycles"`` (table, phase column, metrics; plus the cycles' ``starts``, ``stops`` and
    ``phase_starts`` read from the table). Tables without a context are left out.
    """
    from ..ndx import MuscleSynergy
    from .files import open_nwb

    path = Path(path)
    io, nwbfile = open_nwb(path)
    out: dict[str, dict[str, Any]] = {}
    try:
        for module in nwbfile.processing.values():
            for name, obj in module.data_interfaces.items():
                if not isinstance(obj, MuscleSynergy) or not obj.provenance:
                    continue
                where = f"processing/{module.name}/{name}/provenance"
                context = load_json(obj.provenance, file=path, obj=where).get("analysis_context")
                if not context:
                    continue
                context = dict(context)
                for key in ("intervals", "group"):
                    part = context.get(key)
                    if part and part.get("table"):
                        context[key] = {**part, **_spans(nwbfile, part, path)}
                cycles = context.get("cycles")
                if cycles and cycles.get("table"):
                    try:
                        found = read_cycles(
                            nwbfile, cycles["table"], file=path, phase_column=cycles.get("phase")
                        )
                    except InputError:
                        found = None
                    if found is not None:
                        cycles = {
                            **cycles,
                            "starts": found.starts,
                            "stops": found.stops,
                            "phase_starts": found.phase_starts,
                        }
                    context["cycles"] = cycles
                out[name[len("MuscleSynergy") :] or name] = context
    finally:
        io.close()
    return out


__all__ = ["find_interval_tables", "read_contexts", "read_cycles", "read_intervals"]
