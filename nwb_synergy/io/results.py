"""Read the results of nwb_synergy back from an NWB file, as plain arrays in typed records.

The figures (:mod:`nwb_synergy.plot`) are drawn from what :func:`read_results` returns, so a
results file alone, without the session or the package's in-memory objects, reproduces them.
Tables are found by type (``MuscleSynergy``, ``SpikeTriggeredAverageTable``) and by the names
the writers give (:mod:`nwb_synergy.io.write`), in any processing module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .guards import load_json, read_array
from .write import MATCH_TABLE

SYNERGY_PREFIX = "MuscleSynergy"


@dataclass
class SynergyRecord:
    """One MuscleSynergy table (and its activations) as arrays.

    Attributes
    ----------
    label
        The table's name without ``MuscleSynergy`` ("NMF", "RLVM", "Truth").
    method
        The method stored with it.
    weights
        (n_muscles, K).
    muscle_names
        (n_muscles,) names.
    negcp
        (n_muscles, K) NegCp flags, or None.
    vaf
        (K,) VAF of each synergy, or None.
    model_order
        The model-order curve stored in the provenance (k_values, vaf_uncentered, ...), or None.
    has_offset
        Whether the model has a non-zero decoder offset (RLVM).
    activations
        (n_times, K) activations, or None; ``rate`` (Hz) and ``t_start`` (s) time them.
    conditioning
        The conditioning steps of the EMG the synergies were fitted on (from the provenance);
        :func:`~nwb_synergy.compare.conditioning_scale` gives each muscle's scale from it.
    """

    label: str
    method: str
    weights: np.ndarray
    muscle_names: list[str]
    negcp: np.ndarray | None = None
    vaf: np.ndarray | None = None
    model_order: dict | None = None
    has_offset: bool = False
    activations: np.ndarray | None = None
    rate: float = float("nan")
    t_start: float = 0.0
    conditioning: list | None = None


@dataclass
class UnitSTA:
    """The STA of one unit: mean (n_lags, n_muscles), effect per muscle, MPI, field, spikes."""

    mean: np.ndarray
    effects: list[str | None] | None
    mpi: np.ndarray | None
    field: np.ndarray | None
    n_used: int


@dataclass
class STARecord:
    """A SpikeTriggeredAverageTable as arrays.

    Attributes
    ----------
    lags
        (n_lags,) seconds.
    window
        (start, stop) seconds.
    units
        Unit id -> :class:`UnitSTA`.
    muscle_names
        Muscle order of the averages.
    parameters
        The stored analysis parameters.
    baseline, test_window
        Control and test windows of the effect test (s), from the parameters, else the
        defaults of :func:`~nwb_synergy.post_spike_effects`.
    """

    lags: np.ndarray
    window: tuple[float, float]
    units: dict[int, UnitSTA]
    muscle_names: list[str]
    parameters: dict[str, Any]
    baseline: tuple[float, float]
    test_window: tuple[float, float]


@dataclass
class ResultsFile:
    """Every result of ours in one file.

    Attributes
    ----------
    synergies
        Label -> :class:`SynergyRecord`.
    sta
        The first :class:`STARecord`, or None.
    matches
        Unit id -> (best synergy column, cosine) from ``MuscleFieldSynergyMatch``.
    match_table
        The MuscleSynergy table those matches refer to, or None.
    events
        Start times (s) of the ``gait_cycles`` intervals, or None.
    """

    synergies: dict[str, SynergyRecord] = field(default_factory=dict)
    sta: STARecord | None = None
    matches: dict[int, tuple[int, float]] = field(default_factory=dict)
    match_table: str | None = None
    events: np.ndarray | None = None


def read_results(path: str | Path) -> ResultsFile:
    """Read every result of nwb_synergy from a results NWB file.

    Raises
    ------
    InputError
        Missing or non-NWB file, or a file without any result of ours.
    """
    from ..ndx import MuscleSynergy, SpikeTriggeredAverageTable, SynergyActivation
    from .files import open_nwb

    path = Path(path)
    io, nwbfile = open_nwb(path)
    read = _Reader(path)
    out = ResultsFile()
    try:
        intervals = nwbfile.intervals or {}
        if "gait_cycles" in intervals:
            out.events = read.array(intervals["gait_cycles"], "start_time")
        objects = [
            (name, obj)
            for module in nwbfile.processing.values()
            for name, obj in module.data_interfaces.items()
        ]
        activations = {
            obj.muscle_synergy.name: obj for _, obj in objects if isinstance(obj, SynergyActivation)
        }
        for name, obj in objects:
            if isinstance(obj, MuscleSynergy):
                record = _synergy_record(read, name, obj, activations.get(name))
                out.synergies[record.label] = record
            elif isinstance(obj, SpikeTriggeredAverageTable) and out.sta is None:
                out.sta = _sta_record(read, obj)
            elif name == MATCH_TABLE:
                ids = read.array(obj["unit"].table.id.data, dtype=np.int64)
                rows = read.array(obj, "unit", dtype=int)
                best = read.array(obj, "best_synergy", dtype=int)
                cos = read.array(obj, "cosine")
                out.match_table = str(obj["synergy_table"].data[0])
                for r, b, c in zip(rows, best, cos, strict=True):
                    out.matches[int(ids[r])] = (int(b), float(c))
    finally:
        io.close()
    if not out.synergies and out.sta is None:
        raise InputError(
            "no results of nwb_synergy in this file (no MuscleSynergy or "
            "SpikeTriggeredAverageTable); run 'nwb-synergy analyze' first",
            file=path,
        )
    return out


class _Reader:
    """Reads the arrays and JSON attributes of one file through :mod:`io.guards` (bounded)."""

    def __init__(self, path: Path):
        self.path = path

    def array(self, obj, column: str | None = None, dtype: Any = float) -> np.ndarray:
        data = obj if column is None else obj[column].data
        where = _where(obj) + ("" if column is None else f"/{column}")
        return np.asarray(read_array(data, file=self.path, obj=where), dtype=dtype)

    def json(self, obj, attribute: str) -> dict:
        text = getattr(obj, attribute, None)
        if not text:
            return {}
        return load_json(text, file=self.path, obj=f"{_where(obj)}/{attribute}")


def _where(obj) -> str:
    parent = getattr(obj, "parent", None)
    name = getattr(obj, "name", "?")
    if parent is not None and getattr(parent, "name", None) not in (None, "root"):
        return f"processing/{parent.name}/{name}"
    return str(name)


def synergy_label(table_name: str | None) -> str | None:
    """``MuscleSynergyRLVM`` -> ``RLVM`` (the label records are keyed by)."""
    if table_name is None:
        return None
    return table_name[len(SYNERGY_PREFIX) :] or table_name


def _synergy_record(read: _Reader, name: str, table, activation) -> SynergyRecord:
    prov = read.json(table, "provenance")
    cols = set(table.colnames)
    record = SynergyRecord(
        label=synergy_label(name),
        method=table.method,
        weights=read.array(table, "weights"),
        muscle_names=table.muscle_names,
        negcp=read.array(table, "negative_component", bool)
        if "negative_component" in cols
        else None,
        vaf=None
        if table.variance_accounted_for is None
        else read.array(table.variance_accounted_for),
        model_order=prov.get("fit", {}).get("model_order"),
        has_offset="offset" in cols and bool(np.any(read.array(table, "offset") != 0)),
        conditioning=prov.get("conditioning"),
    )
    if activation is not None:
        record.activations = read.array(activation.data)
        record.rate = float(activation.rate)
        record.t_start = float(activation.starting_time or 0.0)
    return record


def _sta_record(read: _Reader, table) -> STARecord:
    from ..sta.effects import DEFAULT_BASELINE, DEFAULT_TEST

    ids = read.array(table["unit"].table.id.data, dtype=np.int64)
    rows = read.array(table, "unit", dtype=np.int64)
    muscles = [str(m) for m in read.array(table, "muscle_name", dtype=object)]
    sta = read.array(table, "sta")
    cols = set(table.colnames)
    effect = [str(e) for e in read.array(table, "effect", object)] if "effect" in cols else None
    mpi = read.array(table, "mpi") if "mpi" in cols else None
    fld = read.array(table, "field_value") if "field_value" in cols else None
    used = read.array(table, "n_spikes_used", dtype=int)
    units: dict[int, UnitSTA] = {}
    order: list[str] = []
    for r in dict.fromkeys(rows.tolist()):
        sel = np.flatnonzero(rows == r)
        if not order:
            order = [muscles[i] for i in sel]
        units[int(ids[r])] = UnitSTA(
            mean=sta[sel].T,
            effects=(
                [None if effect[i] in ("none", "None", "") else effect[i] for i in sel]
                if effect
                else None
            ),
            mpi=None if mpi is None else mpi[sel],
            field=None if fld is None else fld[sel],
            n_used=int(used[sel[0]]),
        )
    parameters = read.json(table, "parameters")
    effects = parameters.get("effects", {})
    return STARecord(
        lags=read.array(table.lags),
        window=tuple(float(v) for v in read.array(table.window)),
        units=units,
        muscle_names=order,
        parameters=parameters,
        baseline=tuple(effects.get("baseline", DEFAULT_BASELINE)),
        test_window=tuple(effects.get("test", DEFAULT_TEST)),
    )
