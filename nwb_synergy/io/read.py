"""Read EMG and spike trains from NWB files, whatever layout the EMG was stored in.

Three EMG layouts are found, in ``acquisition`` or in any processing module, directly or one
level down inside a container (BehavioralTimeSeries, FilteredEphys, LFP, ...):

``2-D TimeSeries``
    One TimeSeries (time x muscles) whose name, description or container name contains "emg"
    (case-insensitive). Muscle names are taken, in this order, from the ``muscle_names``
    argument; from JSON in ``comments`` or ``description`` (an object with a ``muscle_names``,
    ``muscles``, ``channel_names`` or ``channels`` list, or a plain list); from text in the
    description such as ``"EMG of 8 muscles: FDS, FDP, ECR, ..."`` (after ``muscles:`` or
    ``channels:``, split on commas or semicolons). Without any of these the columns are named
    ``muscle_0, muscle_1, ...`` and a warning says to pass ``muscle_names=``.
``per-muscle TimeSeries``
    1-D TimeSeries, one per muscle, grouped by the container that holds them (``acquisition``, a
    processing module, or a container inside a module). A series belongs to the group when its
    name or description, or the container's name, contains "emg". The muscle name is the series
    name, with a leading or trailing ``EMG`` token removed (``EMG_FDS`` and ``FDS_emg`` -> ``FDS``).
    Muscles come sorted by series name (the order HDF5 lists them in, so a file and the NWBFile
    it was written from agree); ``muscle_names=`` picks series by name and sets the order.
    All series of a group must have the same rate, start time and length.
``ElectricalSeries``
    An ElectricalSeries whose electrodes table has a ``muscle`` column, or whose name,
    description or container name contains "emg". Muscle names come from the ``muscle`` column
    of its electrode rows when it exists, otherwise from their ``location``.
    ``channel_conversion`` is applied per channel.

Every layout gives volts: ``raw * conversion [* channel_conversion] + offset``, then scaled from
the series' ``unit`` when that is mV or uV.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..signals import EMG, EMGSource

LAYOUT_2D = "2-D TimeSeries"
LAYOUT_PER_MUSCLE = "per-muscle TimeSeries"
LAYOUT_ELECTRICAL = "ElectricalSeries"

# rows read at once when scanning timestamps or float samples of large datasets
_CHUNK_ROWS = 1 << 18
# timestamps deviating from a constant rate by more than this fraction of a period are irregular
_TIMESTAMP_TOLERANCE = 0.01

_VOLT_FACTORS = {
    "v": 1.0,
    "volt": 1.0,
    "volts": 1.0,
    "mv": 1e-3,
    "millivolt": 1e-3,
    "millivolts": 1e-3,
    "uv": 1e-6,
    "µv": 1e-6,
    "μv": 1e-6,
    "microvolt": 1e-6,
    "microvolts": 1e-6,
    "nv": 1e-9,
    "nanovolts": 1e-9,
}

_NAME_KEYS = ("muscle_names", "muscles", "channel_names", "channels")
_NAMES_IN_TEXT = re.compile(
    r"(?:muscle\s*names|channel\s*names|muscles?|channels?)\s*[:=]\s*([^\n]+)", re.IGNORECASE
)
_EMG_TOKEN = re.compile(r"^(?:emg[\s_\-.:]+(?P<a>.+)|(?P<b>.+?)[\s_\-.:]+emg)$", re.IGNORECASE)


class NamesWarning(UserWarning):
    """Muscle names could not be found in the file; generic names were used."""


# --------------------------------------------------------------------------- candidates


@dataclass(frozen=True)
class EMGCandidate:
    """One place in an NWB file that holds EMG.

    Attributes
    ----------
    name
        Series name (2-D TimeSeries, ElectricalSeries) or name of the holding container
        (per-muscle series: ``acquisition``, a processing module, or a container in a module).
    path
        Path inside the file, e.g. ``acquisition/EMG`` or ``processing/behavior``.
    layout
        ``"2-D TimeSeries"``, ``"per-muscle TimeSeries"`` or ``"ElectricalSeries"``.
    n_muscles
        Number of EMG channels.
    rate
        Sampling rate in Hz (estimated from the first and last timestamp when the series has
        timestamps), or None when it cannot be known or differs between per-muscle series.
    series_paths
        Path of each series involved.
    series
        The pynwb series objects.
    """

    name: str
    path: str
    layout: str
    n_muscles: int
    rate: float | None
    series_paths: tuple[str, ...]
    series: tuple[Any, ...]

    def describe(self) -> str:
        """One line such as ``'EMG' (2-D TimeSeries at acquisition/EMG, 8 muscles, 2000 Hz)``."""
        rate = "rate unknown" if self.rate is None else f"{self.rate:g} Hz"
        return (
            f"'{self.name}' ({self.layout} at {self.path}, {self.n_muscles} "
            f"muscle{'s' if self.n_muscles != 1 else ''}, {rate})"
        )


def _has_emg(text: object) -> bool:
    return isinstance(text, str) and "emg" in text.lower()


def _n_columns(series) -> int:
    shape = _shape(series.data)
    return 1 if len(shape) < 2 else int(np.prod(shape[1:]))


def _shape(data) -> tuple[int, ...]:
    shape = getattr(data, "shape", None)
    if shape is None:
        shape = np.shape(data)
    return tuple(int(s) for s in shape)


def _iter_series(nwbfile) -> Iterator[tuple[str, Any, str]]:
    """Yield (path, series, parent path) for every TimeSeries in acquisition and processing."""
    from pynwb import TimeSeries

    def walk(obj, parent: str):
        if isinstance(obj, TimeSeries):
            yield f"{parent}/{obj.name}", obj, parent
            return
        inner = f"{parent}/{obj.name}"
        for child in getattr(obj, "children", ()):
            if isinstance(child, TimeSeries):
                yield f"{inner}/{child.name}", child, inner

    for obj in nwbfile.acquisition.values():
        yield from walk(obj, "acquisition")
    for module_name, module in nwbfile.processing.items():
        for obj in module.data_interfaces.values():
            yield from walk(obj, f"processing/{module_name}")


def _electrode_rows(series) -> np.ndarray:
    return np.asarray(series.electrodes.data[:], dtype=np.int64).ravel()


def _quick_rate(series) -> float | None:
    """Rate of a series without scanning its timestamps (None when unknown)."""
    if series.rate is not None:
        return float(series.rate)
    ts = _timestamps(series)
    if ts is None or len(ts) < 2:
        return None
    span = float(ts[len(ts) - 1]) - float(ts[0])
    return (len(ts) - 1) / span if span > 0 else None


def _timestamps(series):
    from pynwb import TimeSeries

    ts = series.timestamps
    while isinstance(ts, TimeSeries):  # timestamps linked from another series
        ts = ts.timestamps
    return ts


def _make_per_muscle(members: list[tuple[str, Any]], parent: str) -> EMGCandidate:
    # HDF5 lists a group's members by name, so sort here too: a file read from disk and the
    # NWBFile it was written from give the muscles in the same order
    members = sorted(members, key=lambda m: m[1].name)
    rates = {_quick_rate(s) for _, s in members}
    rate = rates.pop() if len(rates) == 1 else None
    return EMGCandidate(
        name=parent.rsplit("/", 1)[-1],
        path=parent,
        layout=LAYOUT_PER_MUSCLE,
        n_muscles=len(members),
        rate=rate,
        series_paths=tuple(p for p, _ in members),
        series=tuple(s for _, s in members),
    )


def _make_single(path: str, series, layout: str) -> EMGCandidate:
    n = len(_electrode_rows(series)) if layout == LAYOUT_ELECTRICAL else _n_columns(series)
    return EMGCandidate(
        name=series.name,
        path=path,
        layout=layout,
        n_muscles=n,
        rate=_quick_rate(series),
        series_paths=(path,),
        series=(series,),
    )


def _layout_of(series) -> str:
    from pynwb.ecephys import ElectricalSeries

    if isinstance(series, ElectricalSeries):
        return LAYOUT_ELECTRICAL
    return LAYOUT_2D if _n_columns(series) > 1 or len(_shape(series.data)) > 1 else ""


def find_emg_candidates(nwbfile_or_path) -> list[EMGCandidate]:
    """Every place in an NWB file that looks like EMG (see the module docstring for the rules).

    Parameters
    ----------
    nwbfile_or_path
        A pynwb NWBFile, or the path of an NWB file (opened and closed again; the ``series``
        of the candidates then belong to a closed file and only their metadata is usable).

    Returns
    -------
    list of EMGCandidate
        In file order: acquisition first, then processing modules.
    """
    nwbfile, _label, io = _resolve(nwbfile_or_path)
    try:
        return _find_candidates(nwbfile)
    finally:
        if io is not None:
            io.close()


def _find_candidates(nwbfile) -> list[EMGCandidate]:
    from pynwb.ecephys import ElectricalSeries

    candidates: list[EMGCandidate] = []
    groups: dict[str, list[tuple[str, Any]]] = {}
    for path, series, parent in _iter_series(nwbfile):
        parent_is_emg = _has_emg(parent.split("/", 2)[-1]) if "/" in parent else False
        named_emg = _has_emg(series.name) or _has_emg(series.description) or parent_is_emg
        if isinstance(series, ElectricalSeries):
            table = series.electrodes.table
            if "muscle" in table.colnames or named_emg:
                candidates.append(_make_single(path, series, LAYOUT_ELECTRICAL))
        elif len(_shape(series.data)) >= 2 and _n_columns(series) > 1:
            if named_emg:
                candidates.append(_make_single(path, series, LAYOUT_2D))
        elif named_emg:
            groups.setdefault(parent, []).append((path, series))
    candidates.extend(_make_per_muscle(m, parent) for parent, m in groups.items())
    order = {p: i for i, (p, _, _) in enumerate(_iter_series(nwbfile))}
    candidates.sort(key=lambda c: order.get(c.series_paths[0], 0))
    return candidates


def _matches(candidate: EMGCandidate, name: str) -> bool:
    name = name.strip("/")
    parts = candidate.path.split("/")
    module = parts[1] if parts[0] == "processing" and len(parts) > 1 else None
    return (
        name == candidate.name
        or name == candidate.path
        or candidate.path.endswith("/" + name)
        or name == module
    )


def _select_candidate(nwbfile, name: str | None, label) -> EMGCandidate:
    candidates = _find_candidates(nwbfile)
    listing = "; ".join(c.describe() for c in candidates)
    if name is None:
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            places = ["acquisition"] + [f"processing/{m}" for m in nwbfile.processing]
            raise InputError(
                "no EMG found: no TimeSeries or ElectricalSeries named or described as EMG and "
                "no ElectricalSeries whose electrodes have a 'muscle' column; pass name= "
                "(a series name or the container of per-muscle series)",
                file=label,
                obj=", ".join(places),
            )
        raise InputError(
            f"ambiguous EMG: {len(candidates)} candidates {listing}; pass name=",
            file=label,
            obj=", ".join(c.path for c in candidates),
        )
    chosen = [c for c in candidates if _matches(c, name)]
    if len(chosen) == 1:
        return chosen[0]
    if len(chosen) > 1:
        raise InputError(
            f"ambiguous EMG: name={name!r} matches "
            + "; ".join(c.describe() for c in chosen)
            + "; pass the full path",
            file=label,
            obj=name,
        )
    # not recognised as EMG by the rules: take the named series or container as the user says
    forced = _force_candidate(nwbfile, name)
    if forced is None:
        known = f"; candidates: {listing}" if candidates else ""
        raise InputError(
            f"no series or container named {name!r} holds EMG{known}", file=label, obj=name
        )
    return forced


def _force_candidate(nwbfile, name: str) -> EMGCandidate | None:
    name = name.strip("/")
    groups: dict[str, list[tuple[str, Any]]] = {}
    for path, series, parent in _iter_series(nwbfile):
        if name in (series.name, path) or path.endswith("/" + name):
            layout = _layout_of(series)
            if layout:
                return _make_single(path, series, layout)
            return _make_per_muscle([(path, series)], path)
        if _layout_of(series):
            continue
        if name in (parent, parent.rsplit("/", 1)[-1]) or parent.endswith("/" + name):
            groups.setdefault(parent, []).append((path, series))
    if len(groups) == 1:
        parent, members = groups.popitem()
        return _make_per_muscle(members, parent)
    return None


# --------------------------------------------------------------------------- lazy array


class ScaledArray:
    """Read-only, lazily scaled EMG array: raw samples to volts per slice.

    Wraps one 2-D dataset (2-D TimeSeries, ElectricalSeries) or several 1-D datasets
    (per-muscle series), h5py or NumPy, and applies ``raw * scale + offset`` per column on each
    read, so conditioning can read long recordings in chunks of rows.

    Parameters
    ----------
    datasets
        The source datasets; each 1-D of shape (n_times,) or 2-D of shape (n_times, n_cols).
    columns
        For each muscle, (index into ``datasets``, column of that dataset or None for 1-D).
    scale, offset
        Per-muscle factors, shape (n_muscles,).
    io
        An open NWBHDF5IO to close with :meth:`close` (kept open while the array is used).

    Notes
    -----
    Supports ``a[rows]``, ``a[rows, cols]`` with ints, slices, integer arrays and boolean masks
    (rows and columns selected independently, as h5py does, not broadcast together as NumPy does),
    ``np.asarray(a)``, ``shape``, ``ndim``, ``dtype`` (float64) and ``len``.
    """

    def __init__(
        self,
        datasets: Sequence[Any],
        columns: Sequence[tuple[int, int | None]],
        scale: np.ndarray,
        offset: np.ndarray,
        io: Any = None,
    ):
        self.datasets = list(datasets)
        self.columns = list(columns)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.offset = np.asarray(offset, dtype=np.float64)
        self._io = io
        self._n_times = _shape(self.datasets[0])[0]

    @property
    def shape(self) -> tuple[int, int]:
        return (self._n_times, len(self.columns))

    @property
    def ndim(self) -> int:
        return 2

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float64)

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def raw_dtype(self) -> np.dtype:
        """dtype of the stored samples."""
        return np.dtype(getattr(self.datasets[0], "dtype", np.asarray(self.datasets[0][:1]).dtype))

    def __len__(self) -> int:
        return self._n_times

    def __repr__(self) -> str:
        return f"ScaledArray(shape={self.shape}, raw dtype {self.raw_dtype})"

    def close(self) -> None:
        """Close the NWB file this array reads from (if it opened one)."""
        if self._io is not None:
            self._io.close()
            self._io = None

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:, :]
        return out if dtype is None else out.astype(dtype, copy=False)

    def _rows(self, key) -> tuple[Any, np.ndarray | None, bool]:
        """(selection to pass to the dataset, re-ordering to apply after, drop the axis)."""
        n = self._n_times
        if isinstance(key, (int, np.integer)):
            i = int(key) + n if key < 0 else int(key)
            if not 0 <= i < n:
                raise IndexError(f"row {key} out of range for {n} samples")
            return slice(i, i + 1), None, True
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step > 0:
                return slice(start, stop, step), None, False
            idx = np.arange(start, stop, step)
        else:
            idx = np.asarray(key)
            if idx.dtype == bool:
                idx = np.flatnonzero(idx)
            idx = np.where(idx < 0, idx + n, idx).astype(np.int64)
        if idx.size == 0:
            return slice(0, 0), None, False
        if idx.min() < 0 or idx.max() >= n:
            raise IndexError(f"row index out of range for {n} samples")
        uniq, inverse = np.unique(idx, return_inverse=True)
        if uniq.size == uniq[-1] - uniq[0] + 1:  # contiguous: read one slice
            return slice(int(uniq[0]), int(uniq[-1]) + 1), inverse, False
        return uniq, inverse, False

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, tuple):
            key = (key,)
        key = tuple(slice(None) if k is Ellipsis else k for k in key)
        if len(key) == 0:
            key = (slice(None), slice(None))
        elif len(key) == 1:
            key = (key[0], slice(None))
        elif len(key) > 2:
            raise IndexError("EMG arrays are 2-D (n_times, n_muscles)")
        row_sel, reorder, drop_row = self._rows(key[0])
        cols = np.arange(len(self.columns))[key[1]]
        drop_col = np.ndim(cols) == 0
        cols = np.atleast_1d(cols)
        out = None
        cache: dict[int, np.ndarray] = {}
        for j, c in enumerate(cols):
            d, col = self.columns[int(c)]
            if d not in cache:
                cache[d] = np.asarray(self.datasets[d][row_sel])
            block = cache[d]
            raw = block if col is None else block[:, col]
            if out is None:
                out = np.empty((raw.shape[0], len(cols)), dtype=np.float64)
            out[:, j] = raw * self.scale[c] + self.offset[c]
        if out is None:  # no columns selected
            n_rows = (
                len(range(*row_sel.indices(self._n_times)))
                if isinstance(row_sel, slice)
                else len(row_sel)
            )
            out = np.empty((n_rows, 0))
        if reorder is not None:
            out = out[reorder]
        if drop_row:
            out = out[0]
            return out[0] if drop_col else out
        return out[:, 0] if drop_col else out


# --------------------------------------------------------------------------- opening files


def _file_label(nwbfile) -> str:
    source = getattr(nwbfile, "container_source", None)
    return str(source) if source else f"<in-memory NWBFile {nwbfile.identifier}>"


def _open_nwb(path: str | Path):
    """Open an NWB file for reading; every failure becomes an InputError naming the file."""
    import h5py
    from pynwb import NWBHDF5IO

    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path, obj="/")
    if path.is_dir():
        raise InputError(
            "is a directory, not an NWB HDF5 file (Zarr NWB files are not read here)",
            file=path,
            obj="/",
        )
    if not h5py.is_hdf5(path):
        raise InputError("not an NWB file: it is not even HDF5", file=path, obj="/")
    try:
        with h5py.File(path, "r") as f:
            is_nwb = "nwb_version" in f.attrs or f.attrs.get("namespace") == "core"
    except OSError as err:
        raise InputError(f"cannot open HDF5 file: {err}", file=path, obj="/") from err
    if not is_nwb:
        raise InputError(
            "an HDF5 file but not NWB (no 'nwb_version' attribute at the root)",
            file=path,
            obj="/",
        )
    io = None
    try:
        io = NWBHDF5IO(str(path), "r")
        return io, io.read()
    except Exception as err:  # pynwb/hdmf raise many kinds; report them as bad input
        if io is not None:
            io.close()
        raise InputError(
            f"could not be read as NWB ({type(err).__name__}: {err})", file=path, obj="/"
        ) from err


def _resolve(nwbfile_or_path):
    """(nwbfile, file label, io opened here or None)."""
    from pynwb import NWBFile

    if isinstance(nwbfile_or_path, NWBFile):
        return nwbfile_or_path, _file_label(nwbfile_or_path), None
    if isinstance(nwbfile_or_path, (str, Path)):
        io, nwbfile = _open_nwb(nwbfile_or_path)
        return nwbfile, str(nwbfile_or_path), io
    raise InputError(
        f"expected an NWBFile or a path, got {type(nwbfile_or_path).__name__}",
        obj="nwbfile_or_path",
    )


# --------------------------------------------------------------------------- reading EMG


def _timing(series, label, path) -> tuple[float, float]:
    """(rate in Hz, start time in s) from rate/starting_time or regular timestamps."""
    if series.rate is not None:
        rate = float(series.rate)
        if not np.isfinite(rate) or rate <= 0:
            raise InputError(f"sampling rate {rate} is not a positive number", file=label, obj=path)
        start = series.starting_time
        return rate, 0.0 if start is None else float(start)
    ts = _timestamps(series)
    if ts is None or len(ts) < 2:
        raise InputError(
            "has neither a rate nor two timestamps: the sampling rate cannot be known",
            file=label,
            obj=path,
        )
    n = len(ts)
    t0, t1 = float(ts[0]), float(ts[n - 1])
    dt = (t1 - t0) / (n - 1)
    if not (np.isfinite(dt) and dt > 0):
        raise InputError("timestamps do not increase", file=label, obj=path)
    worst = 0.0
    for start in range(0, n, _CHUNK_ROWS):
        chunk = np.asarray(ts[start : start + _CHUNK_ROWS], dtype=np.float64)
        expected = t0 + np.arange(start, start + chunk.size) * dt
        dev = np.abs(chunk - expected)
        if not np.all(np.isfinite(dev)):
            raise InputError("timestamps contain NaN or infinite values", file=label, obj=path)
        worst = max(worst, float(dev.max()))
    if worst > _TIMESTAMP_TOLERANCE * dt:
        raise InputError(
            f"timestamps are irregular (they deviate from a constant rate of {1 / dt:g} Hz by "
            f"up to {worst / dt:.2g} sample periods); resample the EMG to a regular grid first",
            file=label,
            obj=path,
        )
    return 1.0 / dt, t0


def _unit_factor(series, label, path) -> tuple[float, str]:
    unit = str(getattr(series, "unit", "volts") or "volts")
    factor = _VOLT_FACTORS.get(unit.strip().lower().replace(" ", ""))
    if factor is None:
        return 1.0, unit
    return factor, "V"


def _strip_emg(name: str) -> str:
    m = _EMG_TOKEN.match(name)
    return (m.group("a") or m.group("b")) if m else name


def _names_from_text(texts: Sequence[object], n: int) -> list[str] | None:
    """Muscle names from JSON or ``muscles: A, B, C`` text; None when not found for n columns."""

    def ok(values) -> bool:
        return (
            isinstance(values, list)
            and len(values) == n
            and all(isinstance(v, str) for v in values)
        )

    for text in texts:
        if not isinstance(text, str) or not text.strip():
            continue
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            for key in _NAME_KEYS:
                if ok(obj.get(key)):
                    return list(obj[key])
        elif ok(obj):
            return list(obj)
        for match in _NAMES_IN_TEXT.finditer(text):
            rest = match.group(1).strip().rstrip(".")
            items = [s.strip(" \t'\"[](){}.") for s in re.split(r"[,;]", rest)]
            items = [s for s in items if s]
            if len(items) == n:
                return items
    return None


def _pick_series(cand: EMGCandidate, muscle_names: Sequence[str], label):
    """Per-muscle series chosen and ordered by ``muscle_names`` (series or muscle names)."""
    by_name: dict[str, int] = {}
    for k, s in enumerate(cand.series):
        by_name.setdefault(s.name, k)
        by_name.setdefault(_strip_emg(s.name), k)
    missing = [m for m in muscle_names if str(m) not in by_name]
    if missing or not muscle_names:
        raise InputError(
            f"muscle_names {missing or list(muscle_names)} match no series; the per-muscle "
            f"series are {[s.name for s in cand.series]} (for this layout muscle_names picks "
            "and orders series by name)",
            file=label,
            obj=cand.path,
        )
    picked = [by_name[str(m)] for m in muscle_names]
    if len(set(picked)) < len(picked):
        raise InputError(
            f"muscle_names repeats a muscle: {list(muscle_names)}", file=label, obj=cand.path
        )
    return (
        tuple(cand.series[k] for k in picked),
        tuple(cand.series_paths[k] for k in picked),
    )


def _check_names(names: Sequence[str], n: int, label, path) -> list[str]:
    names = [str(m) for m in names]
    if len(names) != n:
        raise InputError(
            f"muscle_names has {len(names)} names for {n} EMG channels", file=label, obj=path
        )
    return names


def _scan_finite(array: ScaledArray, names: list[str], rate, t_start, label, paths) -> None:
    """Raise if any sample is NaN or infinite; reads float data in chunks of rows."""
    if not (np.all(np.isfinite(array.scale)) and np.all(np.isfinite(array.offset))):
        raise InputError("conversion or offset is NaN or infinite", file=label, obj=paths[0])
    if np.issubdtype(array.raw_dtype, np.integer):
        return  # integer samples are always finite
    for start in range(0, array.shape[0], _CHUNK_ROWS):
        _raise_if_not_finite(
            array[start : start + _CHUNK_ROWS], start, names, rate, t_start, label, paths
        )


def _raise_if_not_finite(block, start, names, rate, t_start, label, paths) -> None:
    bad = ~np.isfinite(block)
    if not bad.any():
        return
    rows, cols = np.nonzero(bad)
    i, j = int(rows[0]) + start, int(cols[0])
    path = paths[j] if len(paths) > 1 else paths[0]
    raise InputError(
        f"NaN or infinite samples in muscle '{names[j]}' (first at sample {i}, "
        f"t = {t_start + i / rate:.6f} s; {int(bad[:, j].sum())} in this block); "
        "interpolate or cut them out first",
        file=label,
        obj=path,
    )


def _read_candidate(
    cand: EMGCandidate,
    label,
    muscle_names: Sequence[str] | None,
    load: bool,
    check_finite: bool,
    io,
    file_path: str | None,
) -> EMG:
    series = cand.series
    paths = cand.series_paths
    if cand.layout == LAYOUT_PER_MUSCLE:
        if muscle_names is not None:
            series, paths = _pick_series(cand, muscle_names, label)
            muscle_names = None
        timings = [_timing(s, label, p) for s, p in zip(series, paths, strict=True)]
        lengths = [_shape(s.data)[0] for s in series]
        for what, values, fmt in (
            ("rates", [r for r, _ in timings], "{:g} Hz"),
            ("start times", [t for _, t in timings], "{:g} s"),
            ("lengths", lengths, "{} samples"),
        ):
            ref = values[0]
            if any(not np.isclose(v, ref, rtol=1e-9, atol=0) for v in values):
                detail = ", ".join(
                    f"{s.name} " + fmt.format(v) for s, v in zip(series, values, strict=True)
                )
                raise InputError(
                    f"per-muscle EMG series have different {what}: {detail}",
                    file=label,
                    obj=cand.path,
                )
        for s, p in zip(series, paths, strict=True):
            if _n_columns(s) != 1:
                raise InputError("a per-muscle EMG series must be 1-D", file=label, obj=p)
        rate, t_start = timings[0]
        datasets = [s.data for s in series]
        columns = [(k, None) for k in range(len(series))]
        scale = np.array([float(s.conversion) for s in series])
        offset = np.array([float(s.offset or 0.0) for s in series])
        factors = [_unit_factor(s, label, p) for s, p in zip(series, paths, strict=True)]
        units = {u for _, u in factors}
        if len(units) > 1:
            raise InputError(
                f"per-muscle EMG series have different units: {sorted(units)}",
                file=label,
                obj=cand.path,
            )
        unit_factor = np.array([f for f, _ in factors])
        unit = units.pop()
        names = [_strip_emg(s.name) for s in series]
        if len(set(names)) < len(names):
            names = [s.name for s in series]
        channels = tuple(0 for _ in series)
        electrodes = None
    else:
        (s,) = series
        rate, t_start = _timing(s, label, paths[0])
        n = cand.n_muscles
        shape = _shape(s.data)
        data = s.data
        if len(shape) == 1:
            columns = [(0, None)]
        else:
            if len(shape) > 2:
                raise InputError(
                    f"EMG data has {len(shape)} dimensions; expected (time, channels)",
                    file=label,
                    obj=paths[0],
                )
            columns = [(0, k) for k in range(shape[1])]
        datasets = [data]
        scale = np.full(len(columns), float(s.conversion))
        offset = np.full(len(columns), float(s.offset or 0.0))
        factor, unit = _unit_factor(s, label, paths[0])
        unit_factor = np.full(len(columns), factor)
        channels = tuple(range(len(columns)))
        electrodes = None
        names = None
        if cand.layout == LAYOUT_ELECTRICAL:
            rows = _electrode_rows(s)
            if len(rows) != len(columns):
                raise InputError(
                    f"{len(rows)} electrode rows for {len(columns)} data columns",
                    file=label,
                    obj=paths[0],
                )
            electrodes = tuple(int(r) for r in rows)
            cc = getattr(s, "channel_conversion", None)
            if cc is not None:
                scale = scale * np.asarray(cc[:], dtype=np.float64)
            if muscle_names is None:
                table = s.electrodes.table
                col = "muscle" if "muscle" in table.colnames else "location"
                values = np.asarray(table[col].data[:])[rows]
                names = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
                if len(set(names)) < len(names):
                    warnings.warn(
                        f"{label}: electrodes column '{col}' of {paths[0]} does not name the "
                        f"muscles uniquely ({names}); using generic names, pass muscle_names=",
                        NamesWarning,
                        stacklevel=3,
                    )
                    names = []
        elif muscle_names is None:
            names = _names_from_text([s.comments, s.description], n)
            if names is None:
                warnings.warn(
                    f"{label}: no muscle names found for the {n} columns of {paths[0]} (looked "
                    "for JSON in comments/description and 'muscles: A, B, ...' in the "
                    "description); using muscle_0, muscle_1, ...; pass muscle_names=",
                    NamesWarning,
                    stacklevel=3,
                )
                names = []
        if muscle_names is not None:
            names = muscle_names
    n_muscles = len(columns)
    if muscle_names is not None:
        names = _check_names(muscle_names, n_muscles, label, "muscle_names")
    if unit != "V":
        warnings.warn(
            f"{label}: EMG unit of {cand.path} is {unit!r}, not a voltage; data left in that unit",
            stacklevel=3,
        )
    n_times = _shape(datasets[0])[0]
    if n_times == 0:
        raise InputError("the EMG series has no samples", file=label, obj=cand.path)
    array = ScaledArray(datasets, columns, scale * unit_factor, offset * unit_factor, io=io)
    final_names = list(names) if names else [f"muscle_{k}" for k in range(n_muscles)]
    if load:
        data = array[:, :]
        if check_finite:
            if not (np.all(np.isfinite(array.scale)) and np.all(np.isfinite(array.offset))):
                raise InputError(
                    "conversion or offset is NaN or infinite", file=label, obj=paths[0]
                )
            _raise_if_not_finite(data, 0, final_names, rate, t_start, label, paths)
    else:
        if check_finite:
            _scan_finite(array, final_names, rate, t_start, label, paths)
        data = array
    per_muscle = tuple(series) if len(series) == n_muscles else (series[0],) * n_muscles
    source = EMGSource(
        file=file_path,
        series_names=tuple(paths),
        channels=channels,
        electrodes=electrodes,
        series=per_muscle,
    )
    return EMG(
        data=data,
        rate=rate,
        t_start=t_start,
        muscle_names=final_names,
        unit=unit,
        source=source,
        history=[{"step": "read_nwb", "file": file_path, "series": list(paths)}],
    )


def read_emg(
    nwbfile_or_path,
    name: str | None = None,
    *,
    muscle_names: Sequence[str] | None = None,
    load: bool = True,
    check_finite: bool = True,
) -> EMG:
    """Read EMG from an NWB file, in volts, whichever of the three layouts holds it.

    Parameters
    ----------
    nwbfile_or_path
        A pynwb NWBFile (nothing is closed), or the path of an NWB HDF5 file.
    name
        Which EMG to read when the file holds several candidates: a series name, a path inside
        the file (``processing/behavior/EMG``), or the name of the processing module or container
        holding per-muscle series. A named series that the detection rules do not recognise as
        EMG is read anyway, in the layout its shape implies.
    muscle_names
        2-D TimeSeries and ElectricalSeries: names of the columns, overriding whatever the file
        says (needed when a 2-D series carries no names: otherwise generic names are used, with
        a :class:`NamesWarning`). Per-muscle series: the series (or muscle) names to read, in
        this order (default: all, sorted by name).
    load
        True: read everything into a float64 NumPy array. False: ``data`` is a
        :class:`ScaledArray` that reads and scales rows on demand; when a path was given, the
        file stays open until ``emg.data.close()`` (or use :func:`open_emg`).
    check_finite
        Raise an InputError on NaN or infinite samples (float data is scanned in chunks of rows
        when ``load=False``; integer data cannot hold them).

    Returns
    -------
    EMG
        ``data`` (n_times, n_muscles) in volts, ``rate`` (Hz), ``t_start`` (s),
        ``muscle_names``, ``unit="V"``, ``source`` (file, series paths, channel per muscle,
        electrode rows, and the pynwb series unless the file was opened and closed here).

    Raises
    ------
    InputError
        Missing or non-NWB file, no EMG, ambiguous EMG, per-muscle series that disagree in rate,
        start or length, irregular timestamps, NaN or infinite samples, wrong number of names.
    """
    nwbfile, label, io = _resolve(nwbfile_or_path)
    file_path = None if io is None else str(nwbfile_or_path)
    if io is None:
        file_path = getattr(nwbfile, "container_source", None) or None
    try:
        cand = _select_candidate(nwbfile, name, label)
        emg = _read_candidate(
            cand,
            label,
            muscle_names,
            load,
            check_finite,
            io if (io is not None and not load) else None,
            file_path,
        )
    except BaseException:
        if io is not None:
            io.close()
        raise
    if io is not None and load:
        io.close()
        emg.source = EMGSource(
            file=emg.source.file,
            series_names=emg.source.series_names,
            channels=emg.source.channels,
            electrodes=emg.source.electrodes,
            series=None,
        )
    return emg


@contextmanager
def open_emg(path: str | Path, name: str | None = None, **kwargs) -> Iterator[EMG]:
    """Read EMG lazily (``load=False``) and close the file when the block ends.

    Examples
    --------
    >>> with open_emg("session.nwb") as emg:  # doctest: +SKIP
    ...     first_second = emg.data[: int(emg.rate)]
    """
    emg = read_emg(path, name, load=False, **kwargs)
    try:
        yield emg
    finally:
        emg.data.close()


# --------------------------------------------------------------------------- spike trains


def _find_units(nwbfile) -> list[tuple[str, Any]]:
    from pynwb.misc import Units

    found = []
    if nwbfile.units is not None:
        found.append(("units", nwbfile.units))
    for module_name, module in nwbfile.processing.items():
        for obj_name, obj in module.data_interfaces.items():
            if isinstance(obj, Units):
                found.append((f"processing/{module_name}/{obj_name}", obj))
    return found


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
        A pynwb NWBFile, or the path of an NWB HDF5 file (opened and closed here).
    units
        Which Units table when there are several: ``"units"`` for the root table, a path such
        as ``processing/ecephys/Units``, the table's name or its processing module's name.
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
        at all, NaN or unsorted spike times in a unit, unknown unit ids.
    """
    nwbfile, label, io = _resolve(nwbfile_or_path)
    try:
        path, table = _select_units(nwbfile, units, label)
        return _spike_times(table, path, label, unit_ids)
    finally:
        if io is not None:
            io.close()


def _select_units(nwbfile, units: str | None, label) -> tuple[str, Any]:
    tables = _find_units(nwbfile)
    if not tables:
        raise InputError(
            "no Units table (looked at the root 'units' and in every processing module)",
            file=label,
            obj="units",
        )
    if units is not None:
        key = units.strip("/")
        chosen = [
            (p, t)
            for p, t in tables
            if key in (p, t.name) or p.endswith("/" + key) or p.split("/")[1:2] == [key]
        ]
        if len(chosen) != 1:
            listing = ", ".join(p for p, _ in tables)
            problem = "no" if not chosen else "more than one"
            raise InputError(
                f"{problem} Units table matches units={units!r}; tables: {listing}",
                file=label,
                obj=units,
            )
        return chosen[0]
    if len(tables) > 1:
        raise InputError(
            "ambiguous Units: tables " + ", ".join(p for p, _ in tables) + "; pass units=",
            file=label,
            obj=", ".join(p for p, _ in tables),
        )
    return tables[0]


def _spike_times(table, path: str, label, unit_ids) -> dict[int, np.ndarray]:
    if "spike_times" not in table.colnames:
        raise InputError("the Units table has no spike_times column", file=label, obj=path)
    ids = np.asarray(table.id.data[:], dtype=np.int64)
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
