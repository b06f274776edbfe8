"""Task periods: the intervals of a ``TimeIntervals`` table, and where their samples lie.

Labs analyse trials, not whole recordings. An :class:`Intervals` holds the rows of one
``TimeIntervals`` table (``trials``, ``epochs`` or any table in ``intervals/``), read by
:func:`nwb_synergy.io.intervals.read_intervals`, with its scalar columns (condition, direction,
outcome, ...) so that the rows can be grouped (:meth:`Intervals.groups`).

Samples of an interval
----------------------
The samples of an interval ``[start, stop)`` are those whose time ``t_start + j / rate`` is at
or after ``start`` and before ``stop`` (to 1e-6 of a sample, so that an interval starting on a
sample's time includes it despite float rounding). Overlapping or abutting intervals are merged
into one *segment* before any filtering: consecutive gait cycles make one continuous segment,
not one filter edge per touchdown. Filters then run on each segment alone
(:func:`nwb_synergy.emg.condition_segments`), so nothing leaks across the joins of the
concatenated segments.

:class:`Segmented` is the conditioned EMG of the segments, concatenated (what the synergy
models are fitted on), together with the position of each of its samples on the regular grid
of the output rate: :meth:`Segmented.fill` lays any per-sample result (activations) back on
that grid (NaN, or 0 for activations, outside the intervals), so that results keep their true
times in NWB.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import InputError
from .signals import EMG

_EPS = 1e-6  # of a sample: an interval starting on a sample's time includes that sample


@dataclass(frozen=True)
class Intervals:
    """Rows of a ``TimeIntervals`` table: start and stop times and the scalar columns.

    Attributes
    ----------
    starts, stops
        (n,) seconds, ``stops > starts``, in the table's row order.
    name
        The table's name (``trials``, ``gait_cycles``, ...).
    rows
        (n,) row index of each interval in the table.
    columns
        Column name -> (n,) values of each scalar column (text, numbers, booleans).
    description
        The table's description.
    file
        The file the table came from, for error messages.
    phase_starts
        (n,) times splitting each interval in two phases (e.g. the lift-off of a gait cycle),
        or None.
    phase_column
        Name of the column ``phase_starts`` came from, or None.
    """

    starts: np.ndarray
    stops: np.ndarray
    name: str = "intervals"
    rows: np.ndarray | None = None
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    description: str = ""
    file: str | None = None
    phase_starts: np.ndarray | None = None
    phase_column: str | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        starts = np.asarray(self.starts, dtype=float).reshape(-1)
        stops = np.asarray(self.stops, dtype=float).reshape(-1)
        if starts.shape != stops.shape:
            raise self.error(f"{starts.size} start times but {stops.size} stop times")
        bad = np.flatnonzero(~(np.isfinite(starts) & np.isfinite(stops)))
        if bad.size:
            raise self.error(f"row(s) {bad[:10].tolist()} have NaN or infinite start/stop times")
        bad = np.flatnonzero(stops <= starts)
        if bad.size:
            raise self.error(
                f"row(s) {bad[:10].tolist()} stop before they start (or at the same time)"
            )
        set_(self, "starts", starts)
        set_(self, "stops", stops)
        rows = np.arange(starts.size) if self.rows is None else np.asarray(self.rows)
        set_(self, "rows", rows.astype(np.int64).reshape(-1))
        set_(self, "columns", {k: np.asarray(v) for k, v in dict(self.columns).items()})
        if self.phase_starts is not None:
            phase = np.asarray(self.phase_starts, dtype=float).reshape(-1)
            inside = (phase > starts) & (phase < stops)
            if phase.shape != starts.shape or not np.all(inside):
                bad = np.flatnonzero(~inside) if phase.shape == starts.shape else []
                raise self.error(
                    f"phase times ({self.phase_column or 'phase_starts'}) must lie strictly "
                    f"inside their intervals; row(s) {list(bad)[:10]} do not"
                )
            set_(self, "phase_starts", phase)

    def error(self, problem: str) -> InputError:
        """An InputError naming the file and this table."""
        return InputError(problem, file=self.file, obj=f"intervals/{self.name}")

    def __len__(self) -> int:
        return int(self.starts.size)

    @property
    def durations(self) -> np.ndarray:
        """(n,) seconds."""
        return self.stops - self.starts

    def as_array(self) -> np.ndarray:
        """``[start, stop]`` rows (n, 2), seconds, in row order."""
        return np.column_stack([self.starts, self.stops])

    def merged(self) -> np.ndarray:
        """Sorted, disjoint ``[start, stop]`` spans (m, 2): the union of the intervals.

        Overlapping and abutting intervals become one span.
        """
        order = np.argsort(self.starts, kind="stable")
        spans: list[list[float]] = []
        for a, b in zip(self.starts[order].tolist(), self.stops[order].tolist(), strict=True):
            if spans and a <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], b)
            else:
                spans.append([a, b])
        return np.asarray(spans, dtype=float).reshape(-1, 2)

    def select(self, mask: np.ndarray) -> Intervals:
        """The rows where ``mask`` is True (same table, columns and phases subset)."""
        mask = np.asarray(mask, dtype=bool)
        return replace(
            self,
            starts=self.starts[mask],
            stops=self.stops[mask],
            rows=self.rows[mask],
            columns={k: v[mask] for k, v in self.columns.items()},
            phase_starts=None if self.phase_starts is None else self.phase_starts[mask],
        )

    def within(self, t_first: float, t_stop: float) -> Intervals:
        """The intervals lying wholly inside ``[t_first, t_stop]`` (a recording's span)."""
        return self.select((self.starts >= t_first - 1e-9) & (self.stops <= t_stop + 1e-9))

    def groups(self, column: str) -> dict[str, Intervals]:
        """Value of ``column`` (as text) -> the intervals with that value, sorted by value.

        Raises
        ------
        InputError
            No such column (the columns there are listed), or a column whose values are not
            scalars (ragged or array columns cannot group intervals).
        """
        if column not in self.columns:
            have = sorted(self.columns) or ["none besides start_time and stop_time"]
            raise self.error(f"no column {column!r} to group by; the table has: {', '.join(have)}")
        values = self.columns[column]
        if values.ndim != 1:
            raise self.error(f"column {column!r} holds arrays, not one value per interval")
        labels = np.array([group_label(v) for v in values.tolist()], dtype=object)
        out = {}
        for value in sorted(set(labels.tolist()), key=_natural):
            out[value] = self.select(labels == value)
        return out

    def describe(self) -> str:
        """``"trials (40 intervals, 52.3 s)"``."""
        return f"{self.name} ({len(self)} intervals, {float(np.sum(self.durations)):.1f} s)"

    def record(self) -> dict[str, Any]:
        """What provenance keeps of these intervals (JSON-able)."""
        return {
            "table": self.name,
            "n_intervals": len(self),
            "rows": self.rows.tolist(),
            "total_s": float(np.sum(self.durations)),
            "phase_column": self.phase_column,
        }


def group_label(value: Any) -> str:
    """The text of a group value: bytes decoded, ``2.0`` written ``2``, booleans as text."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    return str(value)


def _natural(text: str) -> tuple:
    """Sort key: numbers by value, then text."""
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def sample_spans(spans: np.ndarray, rate: float, t_start: float, n_times: int) -> np.ndarray:
    """``[first, stop)`` sample rows (m, 2) of time spans, clipped to the recording.

    Sample ``j`` (time ``t_start + j / rate``) belongs to ``[a, b)`` when ``a <= t < b``
    (to 1e-6 of a sample). Spans holding no sample are dropped.
    """
    spans = np.asarray(spans, dtype=float).reshape(-1, 2)
    first = np.ceil((spans[:, 0] - t_start) * rate - _EPS)
    stop = np.ceil((spans[:, 1] - t_start) * rate - _EPS)
    rows = np.column_stack([first, stop]).clip(0, n_times).astype(np.int64)
    return rows[rows[:, 1] > rows[:, 0]]


@dataclass
class Segmented:
    """Conditioned EMG of interval segments, concatenated, and where each sample lies.

    Attributes
    ----------
    emg
        The concatenated segments (n_times, n_muscles) at the output rate: what the models
        are fitted on. Its ``t_start`` is the time of its first sample; its later samples are
        *not* evenly spaced in time across the joins (see ``grid_index``).
    grid_index
        (n_times,) position of each sample on the regular grid ``grid_t_start + i / emg.rate``.
    grid_t_start
        Time of grid position 0 (the first sample of the first segment), seconds.
    grid_n_times
        Length of the grid (up to the last sample of the last segment).
    bounds
        (n_segments + 1,) row boundaries of the segments in ``emg``.
    intervals
        The intervals the segments came from.
    """

    emg: EMG
    grid_index: np.ndarray
    grid_t_start: float
    grid_n_times: int
    bounds: np.ndarray
    intervals: Intervals

    @property
    def n_segments(self) -> int:
        return int(len(self.bounds) - 1)

    @property
    def times(self) -> np.ndarray:
        """(n_times,) true time of each sample of ``emg``, seconds."""
        return self.grid_t_start + self.grid_index / self.emg.rate

    def fill(self, values: np.ndarray, fill_value: float = np.nan) -> np.ndarray:
        """Per-sample ``values`` (n_times, k) laid on the regular grid, ``fill_value`` elsewhere.

        Activations are written with ``fill_value=0`` (the NWB extension takes finite,
        non-negative activations only; the intervals say where they were estimated).
        """
        values = np.asarray(values, dtype=float)
        out = np.full((self.grid_n_times, *values.shape[1:]), float(fill_value))
        out[self.grid_index] = values
        return out

    def subset(self, intervals: Intervals) -> Segmented:
        """The samples lying inside ``intervals`` (e.g. one group of trials), same grid.

        The conditioning (filters per segment, minimum, normalisation) stays that of the
        whole: groups compared this way share one amplitude normalisation.

        Raises
        ------
        InputError
            No sample inside ``intervals``.
        """
        times = self.times
        spans = intervals.merged()
        tol = _EPS / self.emg.rate
        row = np.searchsorted(spans[:, 0] - tol, times, side="right") - 1
        keep = row >= 0
        keep[keep] = times[keep] < spans[row[keep], 1] - tol
        if not keep.any():
            raise intervals.error("no conditioned sample lies inside these intervals")
        index = np.flatnonzero(keep)
        grid = self.grid_index[index]
        breaks = np.flatnonzero(np.diff(grid) > 1) + 1
        bounds = np.concatenate([[0], breaks, [len(index)]])
        selected = {
            "step": "select",
            "intervals": intervals.name,
            "n_intervals": len(intervals),
            "rows": intervals.rows.tolist(),
        }
        return Segmented(
            emg=self.emg.replace(
                data=self.emg.to_numpy()[index],
                t_start=self.grid_t_start + grid[0] / self.emg.rate,
                history=[*self.emg.history, selected],
            ),
            grid_index=grid,
            grid_t_start=self.grid_t_start,
            grid_n_times=self.grid_n_times,
            bounds=bounds,
            intervals=intervals,
        )

    def grid_emg(self) -> EMG:
        """The conditioned EMG on the regular grid, NaN outside the intervals (for writing)."""
        return self.emg.replace(data=self.fill(self.emg.to_numpy()), t_start=self.grid_t_start)

    def record(self) -> dict[str, Any]:
        """History entry: the segments as time spans (JSON-able)."""
        rate = self.emg.rate
        spans = [
            [
                self.grid_t_start + self.grid_index[a] / rate,
                self.grid_t_start + (self.grid_index[b - 1] + 1) / rate,
            ]
            for a, b in zip(self.bounds[:-1].tolist(), self.bounds[1:].tolist(), strict=True)
        ]
        return {
            "step": "segments",
            "intervals": self.intervals.name,
            "n_intervals": len(self.intervals),
            "n_segments": self.n_segments,
            "filters": "run on each segment alone (nothing leaks across joins)",
            "spans_s": spans,
        }


__all__ = ["Intervals", "Segmented", "group_label", "sample_spans"]
