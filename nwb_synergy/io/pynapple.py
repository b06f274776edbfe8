"""Adapters between pynapple objects and our EMG, spike trains and results.

pynapple (https://pynapple.org) keeps every time series with its own timestamps in seconds:

- a ``TsdFrame`` (time x columns) or ``Tsd`` (one column) is EMG: columns are muscles, named
  by the metadata column ``muscle_names``/``muscle``/``name``/``label`` if there is one, else by
  the column labels (``muscle_<i>`` for pynapple's default 0..n-1); the sampling rate comes
  from the timestamps;
- a ``TsGroup`` is a set of units ``{unit id: spike times}`` (its keys are the unit ids), a
  ``Ts`` (or ``Tsd``) the spike times of one unit;
- an ``IntervalSet`` is a restriction (:func:`restrict_emg`): only spikes whose whole window
  lies inside one interval are averaged, and no EMG sample outside the intervals is read.

A restricted ``TsdFrame`` (``tsdframe.restrict(intervals)``) has gaps between its pieces: each
contiguous piece of samples is then treated as a recording of its own (a spike is used when its
window fits inside one piece), which is what restricting the EMG means. The pieces must lie on
one sampling grid, as the pieces of a restricted series always do.

pynapple is imported only when a pynapple object has to be made (:func:`to_pynapple`); reading
pynapple objects needs no import, since they are recognised by their type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..signals import EMG

__all__ = [
    "PynappleSamples",
    "is_pynapple",
    "pynapple_samples",
    "emg_from_pynapple",
    "spike_times_from_pynapple",
    "spike_trains_from_pynapple",
    "intervals_from_pynapple",
    "restrict_emg",
    "to_pynapple",
]

_NAME_KEYS = ("muscle_names", "muscle_name", "muscle", "name", "label")
_GRID_TOL = 0.05  # samples: largest jitter of a timestamp off the sampling grid
_GAP = 1.5  # a step longer than this many sampling intervals starts a new piece


def is_pynapple(obj: Any, *kinds: str) -> bool:
    """Whether ``obj`` is a pynapple object (of one of the class names ``kinds``, if given).

    Recognised by its type (module ``pynapple...``), so pynapple is never imported here.
    """
    cls = type(obj)
    if not cls.__module__.startswith("pynapple"):
        return False
    return not kinds or cls.__name__ in kinds


def _require_pynapple():
    try:
        import pynapple
    except ImportError:
        raise InputError(
            "pynapple is not installed: pip install pynapple", obj="pynapple"
        ) from None
    return pynapple


# --------------------------------------------------------------------------- EMG


@dataclass
class PynappleSamples:
    """The samples of a ``Tsd``/``TsdFrame`` on one sampling grid.

    Attributes
    ----------
    data
        Samples (n_samples, n_muscles), the pynapple array itself (no copy).
    rate
        Sampling rate, Hz.
    t_start
        Time of the first sample, s.
    runs
        Contiguous pieces as grid positions (n_pieces, 3) int64: ``[first, stop, row]``, the
        piece covers grid samples ``first .. stop - 1`` (sample ``j`` is at
        ``t_start + j / rate``) and begins at row ``row`` of ``data``. One piece, ``[0, n, 0]``,
        for an unrestricted series.
    muscle_names
        One name per column.
    """

    data: np.ndarray
    rate: float
    t_start: float
    runs: np.ndarray
    muscle_names: list[str]

    @property
    def contiguous(self) -> bool:
        return len(self.runs) == 1

    @property
    def n_grid(self) -> int:
        """Samples of the grid from the first to the last sample, gaps included."""
        return int(self.runs[-1, 1])


def _column_names(tsd: Any, n: int) -> list[str]:
    metadata = getattr(tsd, "metadata", None)
    if metadata is not None and len(metadata) == n:
        for key in _NAME_KEYS:
            if key in metadata.columns:
                return [str(v) for v in metadata[key]]
    columns = getattr(tsd, "columns", None)
    if columns is None or len(columns) != n or list(columns) == list(range(n)):
        return [f"muscle_{i}" for i in range(n)]
    return [str(c) for c in columns]


def _snap_rate(rate: float) -> float:
    """The rate estimated from timestamps, made exact when it is a whole number of Hz."""
    nearest = round(rate)
    return float(nearest) if nearest > 0 and abs(rate - nearest) <= 1e-6 * rate else rate


def pynapple_samples(tsd: Any, rate: float | None = None, obj: str = "emg") -> PynappleSamples:
    """Samples, rate and contiguous pieces of a pynapple ``Tsd`` or ``TsdFrame``.

    Parameters
    ----------
    tsd
        ``Tsd`` (n_samples,) or ``TsdFrame`` (n_samples, n_muscles).
    rate
        Sampling rate in Hz, if known exactly; by default estimated from the timestamps of the
        longest piece (``(n - 1) / (t[-1] - t[0])``), rounded to a whole number of Hz when it is
        within 1e-6 of one (pynapple keeps times to 1 ns, so 5 kHz reads back as 5000.0).
    obj
        Name of the argument, for messages.

    Raises
    ------
    InputError
        Not a Tsd/TsdFrame, fewer than 2 samples, timestamps not increasing, samples off a
        regular grid (jitter above 5% of a sampling interval), a ``rate`` that disagrees with the
        timestamps, pieces not on one grid.
    """
    if not is_pynapple(tsd, "Tsd", "TsdFrame"):
        raise InputError(
            f"EMG from pynapple must be a Tsd or TsdFrame, got {type(tsd).__name__}", obj=obj
        )
    times = np.asarray(tsd.t, dtype=float)
    data = np.asarray(tsd.values)
    if data.ndim == 1:
        data = data[:, None]
    if len(times) < 2:
        raise InputError(
            f"a {type(tsd).__name__} of {len(times)} sample(s) has no sampling rate", obj=obj
        )
    steps = np.diff(times)
    if not np.all(steps > 0):
        raise InputError("timestamps must increase strictly", obj=obj)
    typical = float(np.median(steps))
    breaks = np.flatnonzero(steps > _GAP * typical) + 1
    rows = np.concatenate([[0], breaks, [len(times)]]).astype(np.int64)
    lengths = np.diff(rows)
    if rate is None:
        longest = int(np.argmax(lengths))
        a, b = rows[longest], rows[longest + 1] - 1
        if b == a:
            rate = 1.0 / typical
        else:
            rate = _snap_rate((b - a) / (times[b] - times[a]))
    else:
        rate = float(rate)
        if not (np.isfinite(rate) and rate > 0):
            raise InputError(f"rate must be a positive number of Hz, got {rate}", obj="rate")
    t_start = float(times[0])
    # grid position of every sample: pieces start on the grid, samples follow at 1 / rate
    grid = (times - t_start) * rate
    piece_first = np.round(grid[rows[:-1]]).astype(np.int64)
    expected = np.repeat(piece_first, lengths) + (
        np.arange(len(times)) - np.repeat(rows[:-1], lengths)
    )
    jitter = float(np.max(np.abs(grid - expected)))
    if jitter > _GRID_TOL:
        where = "pieces are not on one sampling grid" if len(lengths) > 1 else "timestamps"
        raise InputError(
            f"samples are not regularly spaced at {rate:g} Hz ({where}: off by up to "
            f"{jitter:.3g} sampling intervals); resample the EMG onto a regular grid first",
            obj=obj,
        )
    runs = np.column_stack([piece_first, piece_first + lengths, rows[:-1]])
    names = _column_names(tsd, data.shape[1])
    return PynappleSamples(data, float(rate), t_start, runs, names)


def emg_from_pynapple(tsd: Any, rate: float | None = None, obj: str = "emg") -> EMG:
    """A contiguous pynapple ``Tsd``/``TsdFrame`` as an :class:`~nwb_synergy.EMG`.

    ``t_start`` is the first timestamp, the unit "a.u." (pynapple keeps none). A restricted
    series (with gaps) is refused: filters and resampling need contiguous samples, so condition
    the whole recording and restrict the result (``to_pynapple(emg).restrict(intervals)``).
    """
    samples = pynapple_samples(tsd, rate, obj=obj)
    if not samples.contiguous:
        raise InputError(
            f"the {type(tsd).__name__} has {len(samples.runs)} separate pieces (it was "
            "restricted): condition the whole recording, then restrict the result",
            obj=obj,
        )
    return EMG(
        data=samples.data,
        rate=samples.rate,
        t_start=samples.t_start,
        muscle_names=samples.muscle_names,
        unit="a.u.",
    )


# --------------------------------------------------------------------------- spikes and intervals


def spike_times_from_pynapple(ts: Any, obj: str = "spike_times") -> np.ndarray:
    """Spike times (s) of a pynapple ``Ts`` (or the timestamps of a ``Tsd``), float64 (n,)."""
    if not is_pynapple(ts, "Ts", "Tsd"):
        raise InputError(
            f"spike times from pynapple must be a Ts or Tsd, got {type(ts).__name__}", obj=obj
        )
    return np.asarray(ts.t, dtype=float)


def spike_trains_from_pynapple(group: Any, obj: str = "spike_trains") -> dict[Any, np.ndarray]:
    """``{unit id: spike times (s)}`` of a pynapple ``TsGroup`` (its keys are the unit ids)."""
    if not is_pynapple(group, "TsGroup"):
        raise InputError(
            f"units from pynapple must be a TsGroup, got {type(group).__name__}", obj=obj
        )
    return {
        unit: spike_times_from_pynapple(ts, obj=f"{obj}[{unit!r}]") for unit, ts in group.items()
    }


def intervals_from_pynapple(intervals: Any, obj: str = "intervals") -> np.ndarray:
    """``[start, end]`` rows (n_intervals, 2) in s of an ``IntervalSet`` or array-like.

    Rows are sorted and overlapping or touching intervals merged, so that a window inside
    their union is inside one row.

    Raises
    ------
    InputError
        Not (n, 2), NaN, or an interval whose end precedes its start.
    """
    if is_pynapple(intervals, "IntervalSet"):
        values = np.column_stack([intervals.start, intervals.end]).astype(float)
    else:
        try:
            values = np.asarray(intervals, dtype=float)
        except (TypeError, ValueError):
            raise InputError(
                "intervals must be an IntervalSet or [start, end] rows in seconds", obj=obj
            ) from None
        if values.ndim == 1 and values.size == 2:
            values = values[None]
    if values.ndim != 2 or values.shape[1] != 2:
        raise InputError(f"intervals must have shape (n, 2), got {values.shape}", obj=obj)
    if not np.all(np.isfinite(values)) or np.any(values[:, 1] < values[:, 0]):
        raise InputError("every interval needs finite start <= end", obj=obj)
    values = values[np.argsort(values[:, 0], kind="stable")]
    merged: list[list[float]] = []
    for start, end in values.tolist():
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return np.array(merged, dtype=float).reshape(-1, 2)


def restrict_emg(emg: Any, intervals: Any, rate: float | None = None, t_start: float = 0.0) -> Any:
    """EMG restricted to intervals, ready for :func:`~nwb_synergy.sta.spike_triggered_average`.

    Parameters
    ----------
    emg
        Any EMG the STA accepts (a ``TsdFrame``/``Tsd``, an :class:`~nwb_synergy.EMG`, an
        array with ``rate`` and ``t_start``, a Neo ``AnalogSignal``).
    intervals
        An ``IntervalSet`` or ``[start, end]`` rows in seconds.
    rate, t_start
        For a plain array.

    Returns
    -------
    SignalInput
        The samples (not copied) with the restriction: a spike is averaged only when its whole
        window ``[t + start, t + stop]`` lies inside one interval (and every sample it reads
        too); the others are counted in ``n_unused``. No sample outside the intervals is read
        for the average.
    """
    from ..sta._inputs import as_signal  # late: the STA inputs import this module

    return as_signal(emg, rate, t_start, intervals=intervals)


# --------------------------------------------------------------------------- results


def _tsd_frame(nap: Any, times: np.ndarray, values: np.ndarray, columns: list[str]) -> Any:
    return nap.TsdFrame(t=np.asarray(times, dtype=float), d=values, columns=list(columns))


def to_pynapple(result: Any, emg: Any = None, *, values: str = "mean") -> Any:
    """Our results as pynapple objects.

    Parameters
    ----------
    result
        - an :class:`~nwb_synergy.sta.STAResult`: a ``TsdFrame`` (n_lags, n_muscles) with the
          lags (s, relative to the spike) as its time index and the muscles as columns;
        - a mapping ``{unit id: STAResult}``: ``{unit id: TsdFrame}``;
        - an :class:`~nwb_synergy.EMG`: a ``TsdFrame`` of its samples at its sample times;
        - a fitted synergy model (``activations_``) or an activation array (n_times,
          n_synergies): a ``TsdFrame`` of activations, columns ``synergy_<k>``, at the sample
          times of ``emg`` (the EMG that was factorized: an EMG or a pynapple series).
    emg
        Time base of activations; ignored otherwise.
    values
        For an STA: which curve, "mean" (default), "corrected", "isa" or "trend".

    Raises
    ------
    InputError
        pynapple missing, an unknown ``values``, activations without (or of another length
        than) their EMG, an STA without the curve asked for.
    """
    from ..sta.average import STAResult  # late: sta imports this module's readers

    nap = _require_pynapple()
    if isinstance(result, STAResult):
        if values not in ("mean", "corrected", "isa", "trend"):
            raise InputError(
                f"values must be 'mean', 'corrected', 'isa' or 'trend', got {values!r}",
                obj="values",
            )
        curve = getattr(result, values)
        if curve is None:
            raise InputError(f"this STA has no {values!r} (compute it first)", obj="values")
        return _tsd_frame(nap, result.lags, np.asarray(curve), result.muscle_names)
    if isinstance(result, Mapping):
        return {unit: to_pynapple(r, values=values) for unit, r in result.items()}
    if isinstance(result, EMG):
        return _tsd_frame(nap, result.times, result.to_numpy(), result.muscle_names)
    activations = getattr(result, "activations_", result)
    activations = np.asarray(activations, dtype=float)
    if activations.ndim != 2:
        raise InputError(
            f"cannot convert {type(result).__name__} to pynapple: expected an STAResult, an "
            "EMG, a fitted synergy model or activations (n_times, n_synergies)",
            obj="result",
        )
    if emg is None:
        raise InputError("activations need the EMG they were fitted to (emg=...)", obj="emg")
    if is_pynapple(emg):
        times = np.asarray(emg.t, dtype=float)
    elif isinstance(emg, EMG):
        times = emg.times
    else:
        raise InputError(
            f"emg must be an EMG or a pynapple series, got {type(emg).__name__}", obj="emg"
        )
    if len(times) != len(activations):
        raise InputError(
            f"{len(activations)} activation samples but the EMG has {len(times)}", obj="emg"
        )
    names = [f"synergy_{k}" for k in range(activations.shape[1])]
    return _tsd_frame(nap, times, activations, names)
