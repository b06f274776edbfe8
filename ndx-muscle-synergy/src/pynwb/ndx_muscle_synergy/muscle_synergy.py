"""The pynwb classes of the NWB extension ``ndx-muscle-synergy``.

Three types, registered with pynwb when the package is imported:

- :class:`MuscleSynergy` (a DynamicTable, one row per muscle, one ``weights`` column per synergy),
- :class:`SynergyActivation` (a TimeSeries, time x synergies, linked to its MuscleSynergy),
- :class:`SpikeTriggeredAverageTable` (a DynamicTable, one row per (unit, muscle) pair).

The classes are written by hand (not generated with ``get_class``) so that they check their
contents when built in memory: shapes agree, values are finite, signs agree with
``nonnegative``, effect labels come from the vocabulary. Bad input raises
:class:`~ndx_muscle_synergy.InvalidDataError` naming the object and the problem. Objects read
back from a file are not re-checked (that is the job of nwbinspector checks), so that any file
stays readable.

Only pynwb, hdmf and numpy are imported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from hdmf.common import DynamicTable, DynamicTableRegion, VectorData
from hdmf.utils import docval, get_docval, popargs
from pynwb import register_class
from pynwb.base import TimeSeries

from . import NAMESPACE
from .errors import fail as _fail

__all__ = [
    "EFFECT_LABELS",
    "MuscleSynergy",
    "SynergyActivation",
    "SpikeTriggeredAverageTable",
]

#: allowed values of SpikeTriggeredAverageTable's ``effect`` column
EFFECT_LABELS = ("PSF", "PSpS", "none")


# -- helpers ---------------------------------------------------------------------------------


def _json_text(value: Any, what: str, obj: str) -> str:
    """A JSON object given as a dict or a string, returned as compact, sorted JSON text."""
    if isinstance(value, Mapping):
        try:
            return json.dumps(value, sort_keys=True, allow_nan=True)
        except (TypeError, ValueError) as err:
            _fail(f"'{what}' cannot be stored as JSON: {err}", obj)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as err:
            _fail(f"'{what}' is not valid JSON: {err}", obj)
        if not isinstance(parsed, dict):
            _fail(f"'{what}' must be a JSON object, got {type(parsed).__name__}", obj)
        return value
    _fail(f"'{what}' must be a dict or JSON text, got {type(value).__name__}", obj)
    return ""  # unreachable


def _as_array(value: Any, dtype: Any, what: str, obj: str, ndim: int | None = None) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as err:
        _fail(f"'{what}' cannot be converted to {np.dtype(dtype).name}: {err}", obj)
    if ndim is not None and arr.ndim != ndim:
        _fail(f"'{what}' must be {ndim}-D, got shape {arr.shape}", obj)
    return arr


def _check_finite(arr: np.ndarray, what: str, obj: str, allow_nan: bool = False) -> None:
    bad = np.isinf(arr) if allow_nan else ~np.isfinite(arr)
    if bad.any():
        kind = "infinite" if allow_nan else "NaN or infinite"
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        _fail(f"'{what}' has {int(bad.sum())} {kind} value(s), first at index {first}", obj)


def _check_length(values: Any, n: int, what: str, obj: str, rows: str) -> None:
    if len(values) != n:
        _fail(f"'{what}' has {len(values)} entries for {n} {rows}", obj)


def _uint_array(value: Any, what: str, obj: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1:
        _fail(f"'{what}' must be 1-D, got shape {arr.shape}", obj)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        as_float = arr.astype(float)
        if not np.all(np.isfinite(as_float)) or np.any(as_float != np.round(as_float)):
            _fail(f"'{what}' must hold whole numbers", obj)
    if arr.size and np.any(arr.astype(float) < 0):
        _fail(f"'{what}' must not be negative", obj)
    return arr.astype(np.uint32)


def _region(
    value: Any, name: str, description: str, table: DynamicTable | None, what: str, obj: str
) -> DynamicTableRegion:
    """A DynamicTableRegion from an existing region or from row indices plus their table."""
    if isinstance(value, DynamicTableRegion):
        if value.name != name:
            _fail(f"'{what}' region must be named '{name}', got '{value.name}'", obj)
        return value
    if table is None:
        _fail(f"'{what}' given as row indices needs the table they point into", obj)
    rows = _uint_array(value, what, obj).astype(np.int64)
    if rows.size and rows.max() >= len(table):
        _fail(
            f"'{what}' points to row {int(rows.max())} but table '{table.name}' has "
            f"{len(table)} rows",
            obj,
        )
    return DynamicTableRegion(name=name, data=rows.tolist(), description=description, table=table)


def _column_kwargs(kwargs: dict, names: Sequence[str]) -> dict:
    return {name: kwargs.pop(name) for name in names}


#: accepted types of a column argument (data, or the column object itself when reading)
_COL = ("array_data", "data", VectorData)

_SOFTWARE_DOCVAL = (
    {
        "name": "parameters",
        "type": (str, dict),
        "doc": "analysis parameters, a dict or JSON text of an object",
        "default": "{}",
    },
    {"name": "software", "type": str, "doc": "name of the software that made the result"},
    {"name": "software_version", "type": str, "doc": "version of that software"},
    {
        "name": "provenance",
        "type": (str, dict),
        "doc": "further provenance (fit measures, conditioning, library versions), dict or JSON",
        "default": None,
    },
)

_TABLE_DOCVAL = (
    {
        "name": "id",
        "type": ("array_data", "data", "ElementIdentifiers"),
        "doc": "row identifiers (0..n-1 by default)",
        "default": None,
    },
    {
        "name": "columns",
        "type": (tuple, list),
        "doc": "the column objects (used when reading; give the data arguments instead)",
        "default": None,
    },
    {"name": "colnames", "type": "array_data", "doc": "ordered column names", "default": None},
    {"name": "target_tables", "type": dict, "doc": "targets of region columns", "default": None},
)


class _ResultTable(DynamicTable):
    """Shared machinery of our two tables: data arguments -> column objects, JSON attributes."""

    _data_columns: tuple[str, ...] = ()

    def _init_table(self, kwargs: dict, build_columns) -> dict:
        """Call DynamicTable.__init__ with built columns; return the popped data arguments."""
        name = kwargs["name"]
        data = _column_kwargs(kwargs, self._data_columns)
        given = {k: v for k, v in data.items() if v is not None}
        if kwargs.get("columns") is not None:
            # reading (or advanced use): the column objects are given, data arguments are
            # either absent or the very same objects
            if any(not isinstance(v, VectorData) for v in given.values()):
                _fail("give either 'columns' or the column data arguments, not both", name)
        else:
            kwargs["columns"] = build_columns(data, name)
        super().__init__(**kwargs)
        return data

    def _set_software(self, kwargs: dict) -> None:
        name = self.name
        checking = not self._in_construct_mode
        params = kwargs["parameters"]
        prov = kwargs["provenance"]
        self.parameters = _json_text(params, "parameters", name) if checking else params
        self.software = kwargs["software"]
        self.software_version = kwargs["software_version"]
        if prov is not None and checking:
            prov = _json_text(prov, "provenance", name)
        self.provenance = prov

    @property
    def parameters_dict(self) -> dict:
        """``parameters`` parsed from JSON."""
        return json.loads(self.parameters)

    @property
    def provenance_dict(self) -> dict:
        """``provenance`` parsed from JSON (empty when absent)."""
        return json.loads(self.provenance) if self.provenance else {}


# -- MuscleSynergy ---------------------------------------------------------------------------

_MS_DESCRIPTIONS = {
    "muscle_name": "Name of the muscle of each row.",
    "weights": "Synergy weights: one row per muscle, one column per synergy.",
    "offset": "Constant added to every reconstructed sample of each muscle.",
    "emg_series": "Source EMG series of each muscle.",
    "emg_channel": "Column of 'emg_series' that holds each muscle's EMG.",
    "electrodes": "Row of the electrodes table of each muscle.",
}


@register_class("MuscleSynergy", NAMESPACE)
class MuscleSynergy(_ResultTable):
    """Muscle synergies: one row per muscle, column k of ``weights`` is synergy k.

    Build it from data; the columns are made for you::

        MuscleSynergy(name="MuscleSynergyNMF", description="...", muscle_name=names,
                      weights=W, method="nmf", nonnegative=True, parameters={...},
                      software="my_analysis", software_version="1.0")

    Parameters
    ----------
    muscle_name
        One name per muscle, shape (n_muscles,); unique.
    weights
        Array (n_muscles, n_synergies), stored as float32; finite; no negative value when
        ``nonnegative``.
    method, nonnegative
        Factorization method ("nmf", "rlvm", ...) and whether it constrains weights to be >= 0.
    parameters, provenance
        Dicts (or JSON text) of the analysis parameters and of further provenance.
    offset
        Optional (n_muscles,) constant of the reconstruction (decoder bias).
    emg_series, emg_channel
        Optional source TimeSeries of each muscle and its column in that series.
    electrodes
        Optional electrode rows, a DynamicTableRegion named 'electrodes' or row indices
        together with ``electrodes_table``.
    variance_accounted_for
        Optional (n_synergies,) uncentered VAF of each synergy alone, fractions.
    """

    __fields__ = (
        "method",
        "nonnegative",
        "parameters",
        "software",
        "software_version",
        "provenance",
        "variance_accounted_for",
    )
    __columns__ = (
        {"name": "muscle_name", "description": _MS_DESCRIPTIONS["muscle_name"], "required": True},
        {"name": "weights", "description": _MS_DESCRIPTIONS["weights"], "required": True},
        {"name": "offset", "description": _MS_DESCRIPTIONS["offset"]},
        {"name": "emg_series", "description": _MS_DESCRIPTIONS["emg_series"]},
        {"name": "emg_channel", "description": _MS_DESCRIPTIONS["emg_channel"]},
        {"name": "electrodes", "description": _MS_DESCRIPTIONS["electrodes"], "table": True},
    )
    _data_columns = ("muscle_name", "weights", "offset", "emg_series", "emg_channel", "electrodes")

    @docval(
        {"name": "name", "type": str, "doc": "name of this table", "default": "MuscleSynergy"},
        {
            "name": "description",
            "type": str,
            "doc": "what these synergies are (data, method, conditions)",
            "default": None,
        },
        {"name": "muscle_name", "type": _COL, "doc": "muscle names", "default": None},
        {"name": "weights", "type": _COL, "doc": "(n_muscles, n_synergies)", "default": None},
        {"name": "method", "type": str, "doc": "factorization method, e.g. 'nmf' or 'rlvm'"},
        {"name": "nonnegative", "type": (bool, np.bool_), "doc": "weights constrained >= 0"},
        *_SOFTWARE_DOCVAL,
        {"name": "offset", "type": _COL, "doc": "(n_muscles,) offset", "default": None},
        {"name": "emg_series", "type": _COL, "doc": "source TimeSeries per row", "default": None},
        {"name": "emg_channel", "type": _COL, "doc": "column in emg_series", "default": None},
        {
            "name": "electrodes",
            "type": ("array_data", "data", DynamicTableRegion),
            "doc": "electrode rows (region or indices)",
            "default": None,
        },
        {
            "name": "electrodes_table",
            "type": DynamicTable,
            "doc": "electrodes table that integer 'electrodes' point into",
            "default": None,
        },
        {
            "name": "variance_accounted_for",
            "type": ("array_data", "data"),
            "doc": "(n_synergies,) VAF of each synergy alone",
            "default": None,
        },
        *_TABLE_DOCVAL,
    )
    def __init__(self, **kwargs):
        method, nonnegative = popargs("method", "nonnegative", kwargs)
        vaf, electrodes_table = popargs("variance_accounted_for", "electrodes_table", kwargs)
        software = {
            k: kwargs.pop(k) for k in ("parameters", "software", "software_version", "provenance")
        }
        if kwargs["description"] is None:
            kwargs["description"] = (
                f"Muscle synergies ({method}): one row per muscle, column k of 'weights' is "
                "synergy k."
            )
        self._electrodes_table = electrodes_table
        self._nonnegative_arg = bool(nonnegative)
        self._init_table(kwargs, self._build_columns)
        self.method = method
        self.nonnegative = bool(nonnegative)
        self._set_software(software)
        if vaf is not None and not self._in_construct_mode:
            vaf = _as_array(vaf, np.float32, "variance_accounted_for", self.name, ndim=1)
            _check_finite(vaf, "variance_accounted_for", self.name)
            _check_length(vaf, self.n_synergies, "variance_accounted_for", self.name, "synergies")
        self.variance_accounted_for = vaf
        del self._electrodes_table, self._nonnegative_arg

    def _build_columns(self, data: dict, obj: str) -> list[VectorData]:
        if data["muscle_name"] is None or data["weights"] is None:
            _fail("'muscle_name' and 'weights' are required", obj)
        names = [str(m) for m in data["muscle_name"]]
        n = len(names)
        if n == 0:
            _fail("no muscles: 'muscle_name' is empty", obj)
        if any(not m.strip() for m in names):
            _fail("empty muscle name", obj)
        if len(set(names)) != n:
            dup = sorted({m for m in names if names.count(m) > 1})
            _fail(f"duplicate muscle names {dup}", obj)
        weights = _as_array(data["weights"], np.float32, "weights", obj)
        if weights.ndim == 1 and n > 0:
            weights = weights[:, None]
        if weights.ndim != 2 or weights.shape[0] != n or weights.shape[1] < 1:
            _fail(
                f"'weights' must have shape (n_muscles={n}, n_synergies >= 1), got {weights.shape}",
                obj,
            )
        _check_finite(weights, "weights", obj)
        if self._nonnegative_arg and (weights < 0).any():
            i, k = (int(v) for v in np.argwhere(weights < 0)[0])
            _fail(
                f"nonnegative=True but weight of muscle '{names[i]}' in synergy {k} is "
                f"{float(weights[i, k]):g} (< 0)",
                obj,
            )
        d = _MS_DESCRIPTIONS
        columns = [
            VectorData(name="muscle_name", description=d["muscle_name"], data=names),
            VectorData(name="weights", description=d["weights"], data=weights),
        ]
        if data["offset"] is not None:
            offset = _as_array(data["offset"], np.float32, "offset", obj, ndim=1)
            _check_length(offset, n, "offset", obj, "muscles")
            _check_finite(offset, "offset", obj)
            columns.append(VectorData(name="offset", description=d["offset"], data=offset))
        if data["emg_series"] is not None:
            series = list(data["emg_series"])
            _check_length(series, n, "emg_series", obj, "muscles")
            if not all(isinstance(s, TimeSeries) for s in series):
                _fail("'emg_series' must hold one pynwb TimeSeries per muscle", obj)
            columns.append(VectorData(name="emg_series", description=d["emg_series"], data=series))
        if data["emg_channel"] is not None:
            channels = _uint_array(data["emg_channel"], "emg_channel", obj)
            _check_length(channels, n, "emg_channel", obj, "muscles")
            if data["emg_series"] is not None:
                _check_channels(series, channels, obj)
            columns.append(
                VectorData(name="emg_channel", description=d["emg_channel"], data=channels)
            )
        if data["electrodes"] is not None:
            region = _region(
                data["electrodes"],
                "electrodes",
                d["electrodes"],
                self._electrodes_table,
                "electrodes",
                obj,
            )
            _check_length(region.data, n, "electrodes", obj, "muscles")
            columns.append(region)
        return columns

    # -- convenience ---------------------------------------------------------------------
    @property
    def n_synergies(self) -> int:
        """Number of synergies (columns of ``weights``)."""
        shape = self["weights"].data.shape if hasattr(self["weights"].data, "shape") else None
        if shape is None:
            return int(np.asarray(self["weights"].data).shape[1])
        return int(shape[1])

    @property
    def muscle_names(self) -> list[str]:
        """Muscle names, one per row."""
        return [str(m) for m in self["muscle_name"].data[:]]

    def weights_array(self) -> np.ndarray:
        """The weights as an array of shape (n_muscles, n_synergies)."""
        return np.asarray(self["weights"].data[:])

    def offset_array(self) -> np.ndarray:
        """The offset column, shape (n_muscles,), zeros when absent."""
        if "offset" in self.colnames:
            return np.asarray(self["offset"].data[:])
        return np.zeros(len(self), dtype=np.float32)


def _check_channels(series: list, channels: np.ndarray, obj: str) -> None:
    for s, c in zip(series, channels, strict=True):
        shape = getattr(s.data, "shape", None)
        n_cols = 1 if shape is None or len(shape) < 2 else int(shape[1])
        if int(c) >= n_cols:
            _fail(f"'emg_channel' {int(c)} is outside series '{s.name}' ({n_cols} column(s))", obj)


# -- SynergyActivation -----------------------------------------------------------------------


@register_class("SynergyActivation", NAMESPACE)
class SynergyActivation(TimeSeries):
    """Activation coefficients of synergies, shape (n_times, n_synergies), non-negative.

    Column k is the activation of synergy k of ``muscle_synergy`` (a :class:`MuscleSynergy`,
    stored as a link). Data are stored as float32. The unit is that of the EMG the synergies
    were fitted on ("a.u." after normalisation).
    """

    __nwbfields__ = ("muscle_synergy",)

    @docval(
        *get_docval(TimeSeries.__init__, "name"),
        {
            "name": "data",
            "type": ("array_data", "data", TimeSeries),
            "shape": (None, None),
            "doc": "activations, (n_times, n_synergies)",
        },
        {
            "name": "muscle_synergy",
            "type": MuscleSynergy,
            "doc": "the MuscleSynergy these activations belong to",
        },
        {
            "name": "unit",
            "type": str,
            "doc": "unit of the activations (that of the fitted EMG)",
            "default": "a.u.",
        },
        *get_docval(
            TimeSeries.__init__,
            "resolution",
            "conversion",
            "offset",
            "timestamps",
            "starting_time",
            "rate",
            "comments",
            "description",
            "control",
            "control_description",
            "continuity",
        ),
    )
    def __init__(self, **kwargs):
        muscle_synergy = popargs("muscle_synergy", kwargs)
        in_construct_mode = getattr(self, "_in_construct_mode", False)
        if not in_construct_mode and isinstance(kwargs["data"], (np.ndarray, list, tuple)):
            kwargs["data"] = self._checked(kwargs["name"], kwargs["data"], muscle_synergy)
        super().__init__(**kwargs)
        self.muscle_synergy = muscle_synergy

    @staticmethod
    def _checked(name: str, data: Any, muscle_synergy: MuscleSynergy) -> np.ndarray:
        arr = _as_array(data, np.float32, "data", name, ndim=2)
        if arr.shape[0] < 1:
            _fail("no time points in 'data'", name)
        k = muscle_synergy.n_synergies
        if arr.shape[1] != k:
            _fail(
                f"'data' has {arr.shape[1]} columns but MuscleSynergy '{muscle_synergy.name}' "
                f"has {k} synergies",
                name,
            )
        _check_finite(arr, "data", name)
        if (arr < 0).any():
            t, j = (int(v) for v in np.argwhere(arr < 0)[0])
            _fail(
                f"activations must be non-negative; synergy {j} is {float(arr[t, j]):g} at "
                f"sample {t}",
                name,
            )
        return arr


# -- SpikeTriggeredAverageTable --------------------------------------------------------------

_STA_DESCRIPTIONS = {
    "unit": "Row of the Units table of the unit of each row.",
    "muscle_name": "Name of the muscle of each row.",
    "emg_series": "Source EMG series of each row.",
    "emg_channel": "Column of 'emg_series' that holds the muscle's EMG.",
    "sta": "Spike-triggered average of the rectified EMG at each lag.",
    "n_spikes_used": "Number of spikes whose sweeps were averaged.",
    "n_spikes_excluded": "Number of spikes left out (window outside the recording).",
    "effect": "Post-spike effect: 'PSF', 'PSpS' or 'none'.",
    "mpi": "Mean percent increase over baseline in the effect window (NaN without effect).",
    "ppi": "Peak percent increase over baseline (NaN without effect).",
    "p_value": "p-value of the effect test (NaN if not tested).",
    "onset": "Onset of the effect after the spike, s (NaN without effect).",
    "peak_latency": "Latency of the effect's peak after the spike, s (NaN without effect).",
    "offset": "End of the effect after the spike, s (NaN without effect).",
    "field_value": "Signed muscle-field value; 0 where no significant effect.",
}
_STA_FLOAT_COLUMNS = ("mpi", "ppi", "p_value", "onset", "peak_latency", "offset", "field_value")


@register_class("SpikeTriggeredAverageTable", NAMESPACE)
class SpikeTriggeredAverageTable(_ResultTable):
    """Spike-triggered averages of EMG and post-spike effects, one row per (unit, muscle).

    Parameters
    ----------
    unit
        Units-table row of each row: a DynamicTableRegion named 'unit', or row indices with
        ``units_table``.
    muscle_name
        Muscle of each row.
    sta
        Array (n_rows, n_lags) of averages (stored float32); finite, except NaN in rows with no
        spike used.
    lags
        (n_lags,) times relative to the spike, s, increasing, inside ``window`` (give or take
        one EMG sample).
    window
        (start, stop) of the averaging window, s.
    emg_rate, emg_unit
        Sampling rate (Hz) and unit of the averaged EMG.
    n_spikes_used, n_spikes_excluded
        Spike counts per row (non-negative integers).
    effect
        Optional labels from ``EFFECT_LABELS`` ("PSF", "PSpS", "none"; None counts as "none").
    mpi, ppi, p_value, onset, peak_latency, offset, field_value
        Optional per-row floats (NaN where no effect); p-values in [0, 1] or NaN; field values
        in [-1, 1] and 0 where the effect is "none".
    emg_series, emg_channel
        Optional source TimeSeries of each row and its column.
    """

    __fields__ = (
        "lags",
        "window",
        "emg_rate",
        "emg_unit",
        "parameters",
        "software",
        "software_version",
        "provenance",
    )
    __columns__ = (
        {"name": "unit", "description": _STA_DESCRIPTIONS["unit"], "required": True, "table": True},
        {"name": "muscle_name", "description": _STA_DESCRIPTIONS["muscle_name"], "required": True},
        {"name": "emg_series", "description": _STA_DESCRIPTIONS["emg_series"]},
        {"name": "emg_channel", "description": _STA_DESCRIPTIONS["emg_channel"]},
        {"name": "sta", "description": _STA_DESCRIPTIONS["sta"], "required": True},
        {
            "name": "n_spikes_used",
            "description": _STA_DESCRIPTIONS["n_spikes_used"],
            "required": True,
        },
        {
            "name": "n_spikes_excluded",
            "description": _STA_DESCRIPTIONS["n_spikes_excluded"],
            "required": True,
        },
        {"name": "effect", "description": _STA_DESCRIPTIONS["effect"]},
        *({"name": c, "description": _STA_DESCRIPTIONS[c]} for c in _STA_FLOAT_COLUMNS),
    )
    _data_columns = (
        "unit",
        "muscle_name",
        "emg_series",
        "emg_channel",
        "sta",
        "n_spikes_used",
        "n_spikes_excluded",
        "effect",
        *_STA_FLOAT_COLUMNS,
    )

    @docval(
        {
            "name": "name",
            "type": str,
            "doc": "name of this table",
            "default": "SpikeTriggeredAverages",
        },
        {"name": "description", "type": str, "doc": "what these averages are", "default": None},
        {"name": "lags", "type": ("array_data", "data"), "doc": "(n_lags,) seconds"},
        {"name": "window", "type": ("array_data", "data"), "doc": "(start, stop) seconds"},
        {"name": "emg_rate", "type": (float, int), "doc": "EMG sampling rate, Hz"},
        {"name": "emg_unit", "type": str, "doc": "unit of 'sta'"},
        *_SOFTWARE_DOCVAL,
        {
            "name": "unit",
            "type": ("array_data", "data", DynamicTableRegion),
            "doc": "Units rows (region or indices)",
            "default": None,
        },
        {
            "name": "units_table",
            "type": DynamicTable,
            "doc": "Units table that integer 'unit' rows point into",
            "default": None,
        },
        {"name": "muscle_name", "type": _COL, "doc": "muscle of each row", "default": None},
        {"name": "sta", "type": _COL, "doc": "(n_rows, n_lags) averages", "default": None},
        {"name": "n_spikes_used", "type": _COL, "doc": "spikes averaged", "default": None},
        {"name": "n_spikes_excluded", "type": _COL, "doc": "spikes left out", "default": None},
        {"name": "effect", "type": _COL, "doc": "PSF / PSpS / none", "default": None},
        *(
            {"name": c, "type": _COL, "doc": _STA_DESCRIPTIONS[c], "default": None}
            for c in _STA_FLOAT_COLUMNS
        ),
        {"name": "emg_series", "type": _COL, "doc": "source TimeSeries per row", "default": None},
        {"name": "emg_channel", "type": _COL, "doc": "column in emg_series", "default": None},
        *_TABLE_DOCVAL,
    )
    def __init__(self, **kwargs):
        lags, window, emg_rate, emg_unit = popargs("lags", "window", "emg_rate", "emg_unit", kwargs)
        units_table = popargs("units_table", kwargs)
        software = {
            k: kwargs.pop(k) for k in ("parameters", "software", "software_version", "provenance")
        }
        if kwargs["description"] is None:
            kwargs["description"] = (
                "Spike-triggered averages of rectified EMG and post-spike effects, one row per "
                "(unit, muscle) pair."
            )
        in_construct_mode = getattr(self, "_in_construct_mode", False)
        if not in_construct_mode:
            lags, window, emg_rate = self._check_axis(kwargs["name"], lags, window, emg_rate)
        self._units_table = units_table
        self._n_lags = len(lags)
        self._init_table(kwargs, self._build_columns)
        del self._units_table, self._n_lags
        self.lags = lags
        self.window = window
        self.emg_rate = emg_rate
        self.emg_unit = emg_unit
        self._set_software(software)

    @staticmethod
    def _check_axis(name: str, lags: Any, window: Any, emg_rate: float):
        lags = _as_array(lags, np.float64, "lags", name, ndim=1)
        if lags.size < 1:
            _fail("'lags' is empty", name)
        _check_finite(lags, "lags", name)
        if lags.size > 1 and np.any(np.diff(lags) <= 0):
            _fail("'lags' must be strictly increasing", name)
        window = _as_array(window, np.float64, "window", name, ndim=1)
        if window.shape != (2,) or not np.all(np.isfinite(window)) or window[0] >= window[1]:
            _fail(f"'window' must be (start, stop) with start < stop, got {window.tolist()}", name)
        if not np.isfinite(emg_rate) or emg_rate <= 0:
            _fail(f"'emg_rate' must be a positive number of Hz, got {emg_rate}", name)
        tol = 1.0 / emg_rate + 1e-9  # lags are EMG samples: allow one sample of rounding
        if lags[0] < window[0] - tol or lags[-1] > window[1] + tol:
            _fail(
                f"'lags' span [{lags[0]:g}, {lags[-1]:g}] s, outside window "
                f"[{window[0]:g}, {window[1]:g}] s",
                name,
            )
        return lags, window, float(emg_rate)

    def _build_columns(self, data: dict, obj: str) -> list[VectorData]:
        for required in ("unit", "muscle_name", "sta", "n_spikes_used", "n_spikes_excluded"):
            if data[required] is None:
                _fail(f"'{required}' is required", obj)
        d = _STA_DESCRIPTIONS
        names = [str(m) for m in data["muscle_name"]]
        n = len(names)
        if n == 0:
            _fail("no rows: 'muscle_name' is empty", obj)
        unit = _region(data["unit"], "unit", d["unit"], self._units_table, "unit", obj)
        _check_length(unit.data, n, "unit", obj, "rows")
        sta = _as_array(data["sta"], np.float32, "sta", obj, ndim=2)
        if sta.shape != (n, self._n_lags):
            expected = f"(n_rows={n}, n_lags={self._n_lags})"
            _fail(f"'sta' must have shape {expected}, got {sta.shape}", obj)
        used = _uint_array(data["n_spikes_used"], "n_spikes_used", obj)
        unused = _uint_array(data["n_spikes_excluded"], "n_spikes_excluded", obj)
        _check_length(used, n, "n_spikes_used", obj, "rows")
        _check_length(unused, n, "n_spikes_excluded", obj, "rows")
        # an average of no spike is NaN; any other must be finite
        _check_finite(sta[used > 0], "sta (rows with spikes)", obj)
        keys = list(zip((int(u) for u in unit.data), names, strict=True))
        if len(set(keys)) != n:
            _fail("the same (unit, muscle) pair appears in more than one row", obj)
        columns = [
            unit,
            VectorData(name="muscle_name", description=d["muscle_name"], data=names),
        ]
        if data["emg_series"] is not None:
            series = list(data["emg_series"])
            _check_length(series, n, "emg_series", obj, "rows")
            if not all(isinstance(s, TimeSeries) for s in series):
                _fail("'emg_series' must hold one pynwb TimeSeries per row", obj)
            columns.append(VectorData(name="emg_series", description=d["emg_series"], data=series))
        if data["emg_channel"] is not None:
            channels = _uint_array(data["emg_channel"], "emg_channel", obj)
            _check_length(channels, n, "emg_channel", obj, "rows")
            if data["emg_series"] is not None:
                _check_channels(series, channels, obj)
            columns.append(
                VectorData(name="emg_channel", description=d["emg_channel"], data=channels)
            )
        columns += [
            VectorData(name="sta", description=d["sta"], data=sta),
            VectorData(name="n_spikes_used", description=d["n_spikes_used"], data=used),
            VectorData(name="n_spikes_excluded", description=d["n_spikes_excluded"], data=unused),
        ]
        effect = None
        if data["effect"] is not None:
            effect = ["none" if e is None else str(e) for e in data["effect"]]
            _check_length(effect, n, "effect", obj, "rows")
            bad = sorted(set(effect) - set(EFFECT_LABELS))
            if bad:
                _fail(f"unknown effect label(s) {bad}; allowed: {list(EFFECT_LABELS)}", obj)
            columns.append(VectorData(name="effect", description=d["effect"], data=effect))
        for col in _STA_FLOAT_COLUMNS:
            if data[col] is None:
                continue
            values = _as_array(data[col], np.float64, col, obj, ndim=1)
            _check_length(values, n, col, obj, "rows")
            _check_finite(values, col, obj, allow_nan=col != "field_value")
            if col == "p_value" and np.any((values < 0) | (values > 1)):
                _fail("'p_value' must lie in [0, 1] (or be NaN)", obj)
            if col == "field_value":
                if np.any(np.abs(values) > 1 + 1e-6):
                    _fail("'field_value' must lie in [-1, 1] (scaled muscle field)", obj)
                if effect is not None:
                    wrong = [i for i, e in enumerate(effect) if e == "none" and values[i] != 0]
                    if wrong:
                        _fail(
                            f"'field_value' must be 0 where effect is 'none' (row {wrong[0]})",
                            obj,
                        )
            columns.append(VectorData(name=col, description=d[col], data=values))
        return columns

    # -- convenience ---------------------------------------------------------------------
    def sta_array(self) -> np.ndarray:
        """All averages, shape (n_rows, n_lags)."""
        return np.asarray(self["sta"].data[:])

    def unit_rows(self) -> np.ndarray:
        """Units-table row index of each row, shape (n_rows,)."""
        return np.asarray(self["unit"].data[:], dtype=np.int64)
