"""Read EMG and spike trains from NWB files, whatever layout the EMG was stored in.

Three EMG layouts are found, in ``acquisition`` or in any processing module, directly or one
level down inside a container (BehavioralTimeSeries, FilteredEphys, LFP, ...):

``2-D TimeSeries``
    One TimeSeries (time x muscles) whose name, description or container name contains "emg"
    (case-insensitive). Muscle names are taken, in this order, from the ``muscle_names``
    argument; from JSON in ``comments`` or ``description`` (an object with a ``muscle_names``,
    ``muscles``, ``channel_names`` or ``channels`` list, or a plain list); from text in the
    description such as ``"EMG of 8 muscles: FDS, FDP, ECR, ..."`` (after ``muscles:`` or
    ``channels:``: a JSON list, which is what nwb_synergy writes, else split on commas or
    semicolons). Without any of these the columns are named
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
from .files import resolve_nwbfile
from .lazy import ScaledArray, shape_of
from .units import read_spike_trains

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


#: namespace of nwb_synergy's result types, which are skipped when looking for EMG
RESULTS_NAMESPACE = "ndx-muscle-synergy"


def _has_emg(text: object) -> bool:
    return isinstance(text, str) and "emg" in text.lower()


def _n_columns(series) -> int:
    shape = shape_of(series.data)
    return 1 if len(shape) < 2 else int(np.prod(shape[1:]))


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
    return LAYOUT_2D if _n_columns(series) > 1 else ""


def find_emg_candidates(nwbfile_or_path) -> list[EMGCandidate]:
    """Every place in an NWB file that looks like EMG (see the module docstring for the rules).

    Parameters
    ----------
    nwbfile_or_path
        A pynwb NWBFile, or any source :func:`~nwb_synergy.io.files.open_nwb` reads (a path,
        a URL, an open h5py.File or file object; opened and closed again: the ``series`` of
        the candidates then belong to a closed file and only their metadata is usable).

    Returns
    -------
    list of EMGCandidate
        In file order: acquisition first, then processing modules.
    """
    nwbfile, _label, io = resolve_nwbfile(nwbfile_or_path)
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
        if getattr(series, "namespace", None) == RESULTS_NAMESPACE:
            continue  # our own results (e.g. SynergyActivation) are never EMG
        parent_is_emg = _has_emg(parent.split("/", 2)[-1]) if "/" in parent else False
        named_emg = _has_emg(series.name) or _has_emg(series.description) or parent_is_emg
        if isinstance(series, ElectricalSeries):
            table = series.electrodes.table
            if "muscle" in table.colnames or named_emg:
                candidates.append(_make_single(path, series, LAYOUT_ELECTRICAL))
        elif len(shape_of(series.data)) >= 2 and _n_columns(series) > 1:
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


# --------------------------------------------------------------------------- reading EMG


def _timing(series, label, path) -> tuple[float, float]:
    """(rate in Hz, start time in s) from rate/starting_time or regular timestamps."""
    if series.rate is not None:
        rate = float(series.rate)
        if not np.isfinite(rate) or rate <= 0:
            raise InputError(f"sampling rate {rate} is not a positive number", file=label, obj=path)
        start = 0.0 if series.starting_time is None else float(series.starting_time)
        if not np.isfinite(start):
            raise InputError(
                f"starting_time is {start}, not a time in seconds", file=label, obj=path
            )
        return rate, start
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


def _unit_factor(series) -> tuple[float, str]:
    unit = str(getattr(series, "unit", "volts") or "volts")
    factor = _VOLT_FACTORS.get(unit.strip().lower().replace(" ", ""))
    if factor is None:
        return 1.0, unit
    return factor, "V"


def _strip_emg(name: str) -> str:
    m = _EMG_TOKEN.match(name)
    return (m.group("a") or m.group("b")) if m else name


def _names_from_text(texts: Sequence[object], n: int) -> list[str] | None:
    """Muscle names for n columns from JSON or from text; None when not found.

    Tried in each text in turn: the whole text as JSON (an object with a list under one of
    ``_NAME_KEYS``, or a list), then each ``muscles: ...`` line, as a JSON list
    (``muscles: ["FDS", "FDP, deep"]``, the form our writers use: names may hold commas) or as
    names separated by commas or semicolons.
    """

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
            try:  # what our writers put: 'muscles: ["A", "B, long name"]' (JSON list)
                listed = json.loads(rest)
            except ValueError:
                listed = None
            if ok(listed):
                return list(listed)
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


@dataclass
class _Plan:
    """How to turn the stored samples of one candidate into an EMG."""

    series: tuple[Any, ...]
    paths: tuple[str, ...]
    rate: float
    t_start: float
    datasets: list[Any]
    columns: list[tuple[int, int | None]]
    scale: np.ndarray
    offset: np.ndarray
    unit: str
    names: list[str] | None
    channels: tuple[int, ...]
    electrodes: tuple[int, ...] | None = None


def _check_one_channel(series, label, path) -> None:
    """Refuse a per-muscle series whose data is not one channel (0 channels, or 2-D)."""
    shape = shape_of(series.data)
    n = _n_columns(series)
    if n == 0:
        raise InputError(
            f"the EMG series has no channels (data shape {shape})", file=label, obj=path
        )
    if n != 1:
        raise InputError(
            f"a per-muscle EMG series must be 1-D, got data shape {shape}", file=label, obj=path
        )


def _plan_per_muscle(cand: EMGCandidate, label, muscle_names) -> _Plan:
    series, paths = cand.series, cand.series_paths
    if muscle_names is not None:
        series, paths = _pick_series(cand, muscle_names, label)
    for s, p in zip(series, paths, strict=True):
        _check_one_channel(s, label, p)
    timings = [_timing(s, label, p) for s, p in zip(series, paths, strict=True)]
    for what, values, fmt in (
        ("rates", [r for r, _ in timings], "{:g} Hz"),
        ("start times", [t for _, t in timings], "{:g} s"),
        ("lengths", [shape_of(s.data)[0] for s in series], "{} samples"),
    ):
        if any(not np.isclose(v, values[0], rtol=1e-9, atol=0) for v in values):
            detail = ", ".join(
                f"{s.name} " + fmt.format(v) for s, v in zip(series, values, strict=True)
            )
            raise InputError(
                f"per-muscle EMG series have different {what}: {detail}",
                file=label,
                obj=cand.path,
            )
    factors = [_unit_factor(s) for s in series]
    units = {u for _, u in factors}
    if len(units) > 1:
        raise InputError(
            f"per-muscle EMG series have different units: {sorted(units)}",
            file=label,
            obj=cand.path,
        )
    unit_factor = np.array([f for f, _ in factors])
    names = [_strip_emg(s.name) for s in series]
    if len(set(names)) < len(names):
        names = [s.name for s in series]
    return _Plan(
        series=tuple(series),
        paths=tuple(paths),
        rate=timings[0][0],
        t_start=timings[0][1],
        datasets=[s.data for s in series],
        columns=[(k, None) for k in range(len(series))],
        scale=np.array([float(s.conversion) for s in series]) * unit_factor,
        offset=np.array([float(s.offset or 0.0) for s in series]) * unit_factor,
        unit=units.pop(),
        names=names,
        channels=(0,) * len(series),
    )


def _plan_single(cand: EMGCandidate, label, muscle_names) -> _Plan:
    (s,) = cand.series
    path = cand.series_paths[0]
    rate, t_start = _timing(s, label, path)
    shape = shape_of(s.data)
    if len(shape) > 2:
        raise InputError(
            f"EMG data has {len(shape)} dimensions; expected (time, channels)",
            file=label,
            obj=path,
        )
    columns = [(0, None)] if len(shape) == 1 else [(0, k) for k in range(shape[1])]
    n = len(columns)
    factor, unit = _unit_factor(s)
    scale = np.full(n, float(s.conversion) * factor)
    names: list[str] | None = None
    electrodes = None
    if cand.layout == LAYOUT_ELECTRICAL:
        rows = _electrode_rows(s)
        if len(rows) != n:
            raise InputError(
                f"{len(rows)} electrode rows for {n} data columns", file=label, obj=path
            )
        electrodes = tuple(int(r) for r in rows)
        if s.channel_conversion is not None:
            scale = scale * np.asarray(s.channel_conversion[:], dtype=np.float64)
        if muscle_names is None:
            names = _names_from_electrodes(s, rows, label, path)
    elif muscle_names is None:
        names = _names_from_text([s.comments, s.description], n)
        if names is None:
            warnings.warn(
                f"{label}: no muscle names found for the {n} columns of {path} (looked for "
                "JSON in comments/description and 'muscles: A, B, ...' in the description); "
                "using muscle_0, muscle_1, ...; pass muscle_names=",
                NamesWarning,
                stacklevel=4,
            )
    if muscle_names is not None:
        names = _check_names(muscle_names, n, label, "muscle_names")
    return _Plan(
        series=(s,) * n,
        paths=(path,),
        rate=rate,
        t_start=t_start,
        datasets=[s.data],
        columns=columns,
        scale=scale,
        offset=np.full(n, float(s.offset or 0.0) * factor),
        unit=unit,
        names=names,
        channels=tuple(range(n)),
        electrodes=electrodes,
    )


def _names_from_electrodes(series, rows, label, path) -> list[str] | None:
    """Muscle names from the ``muscle`` (else ``location``) column of the electrode rows."""
    table = series.electrodes.table
    col = "muscle" if "muscle" in table.colnames else "location"
    values = np.asarray(table[col].data[:])[rows]
    names = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
    if len(set(names)) == len(names):
        return names
    warnings.warn(
        f"{label}: electrodes column '{col}' of {path} does not name the muscles uniquely "
        f"({names}); using generic names, pass muscle_names=",
        NamesWarning,
        stacklevel=5,
    )
    return None


def _raw_dtype(data) -> np.dtype:
    dtype = getattr(data, "dtype", None)
    return np.dtype(dtype) if dtype is not None else np.asarray(data[:1]).dtype


def _check_plan(plan: _Plan, cand: EMGCandidate, label, min_muscles: int) -> list[str]:
    """Refuse samples that are not real numbers, too few channels, repeated muscle names.

    Returns the muscle names (generic ones when the file gave none).
    """
    for data, path in zip(plan.datasets, plan.paths, strict=True):
        dtype = _raw_dtype(data)
        if dtype.kind == "c":
            raise InputError(
                f"EMG samples are complex numbers ({dtype}); EMG must be real (taking the real "
                "part would silently drop the imaginary part)",
                file=label,
                obj=path,
            )
        if dtype.kind not in "iuf":
            kind = {"b": "booleans", "S": "text", "U": "text", "O": "text or objects"}
            raise InputError(
                f"EMG samples are {kind.get(dtype.kind, 'not numbers')} ({dtype}), not numbers",
                file=label,
                obj=path,
            )
    n_muscles = len(plan.columns)
    names = plan.names or [f"muscle_{k}" for k in range(n_muscles)]
    if n_muscles == 0:
        raise InputError("the EMG has no channels", file=label, obj=cand.path)
    if n_muscles < min_muscles:
        raise InputError(
            f"only {n_muscles} EMG channel ({', '.join(repr(n) for n in names)}): at least "
            f"{min_muscles} muscles are needed (muscle synergies combine several muscles)",
            file=label,
            obj=cand.path,
        )
    seen: dict[str, int] = {}
    for k, name in enumerate(names):
        if name in seen:
            raise InputError(
                f"muscle names are not unique: {name!r} names channels {seen[name]} and {k} "
                f"(names: {names}); pass muscle_names= with one name per muscle",
                file=label,
                obj=cand.path,
            )
        seen[name] = k
    return names


def _read_candidate(
    cand: EMGCandidate,
    label,
    muscle_names: Sequence[str] | None,
    load: bool,
    check_finite: bool,
    io,
    file_path: str | None,
    min_muscles: int = 1,
) -> EMG:
    if cand.layout == LAYOUT_PER_MUSCLE:
        plan = _plan_per_muscle(cand, label, muscle_names)
    else:
        plan = _plan_single(cand, label, muscle_names)
    names = _check_plan(plan, cand, label, min_muscles)
    if plan.unit != "V":
        warnings.warn(
            f"{label}: EMG unit of {cand.path} is {plan.unit!r}, not a voltage; data left in "
            "that unit",
            stacklevel=3,
        )
    if shape_of(plan.datasets[0])[0] == 0:
        raise InputError("the EMG series has no samples", file=label, obj=cand.path)
    if check_finite and not (np.all(np.isfinite(plan.scale)) and np.all(np.isfinite(plan.offset))):
        raise InputError("conversion or offset is NaN or infinite", file=label, obj=plan.paths[0])
    array = ScaledArray(plan.datasets, plan.columns, plan.scale, plan.offset, io=io)
    where = (names, plan.rate, plan.t_start, label, plan.paths)
    if load:
        data = array[:, :]
        if check_finite:
            _raise_if_not_finite(data, 0, *where)
    else:
        if check_finite and not np.issubdtype(array.raw_dtype, np.integer):
            for start in range(0, array.shape[0], _CHUNK_ROWS):  # integers are always finite
                _raise_if_not_finite(array[start : start + _CHUNK_ROWS], start, *where)
        data = array
    return EMG(
        data=data,
        rate=plan.rate,
        t_start=plan.t_start,
        muscle_names=names,
        unit=plan.unit,
        source=EMGSource(
            file=file_path,
            series_names=plan.paths,
            channels=plan.channels,
            electrodes=plan.electrodes,
            series=plan.series,
        ),
        history=[{"step": "read_nwb", "file": file_path, "series": list(plan.paths)}],
    )


def read_emg(
    nwbfile_or_path,
    name: str | None = None,
    *,
    muscle_names: Sequence[str] | None = None,
    load: bool = True,
    check_finite: bool = True,
    min_muscles: int = 1,
) -> EMG:
    """Read EMG from an NWB file, in volts, whichever of the three layouts holds it.

    Parameters
    ----------
    nwbfile_or_path
        A pynwb NWBFile (nothing is closed), or any other source
        :func:`~nwb_synergy.io.files.open_nwb` reads: a path, an ``https://`` or ``s3://`` URL
        (streamed: only the EMG's bytes are fetched), an open h5py.File or binary file object.
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
    min_muscles
        Refuse EMG with fewer channels (2 before extracting synergies, which need several
        muscles; 1 for spike-triggered averages alone).

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
        start or length, irregular timestamps, a start time that is NaN or infinite, samples
        that are not real numbers (complex, text, booleans), NaN or infinite samples, no
        channels or fewer than ``min_muscles``, wrong number of names, repeated names.
    """
    nwbfile, label, io = resolve_nwbfile(nwbfile_or_path)
    file_path = None if label.startswith("<") else label
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
            min_muscles,
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
def open_emg(path: str | Path | Any, name: str | None = None, **kwargs) -> Iterator[EMG]:
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


__all__ = [
    "EMGCandidate",
    "NamesWarning",
    "ScaledArray",
    "find_emg_candidates",
    "open_emg",
    "read_emg",
    "read_spike_trains",
]
