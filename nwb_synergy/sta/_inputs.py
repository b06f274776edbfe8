"""Normalise the inputs of the spike-triggered average: EMG, spike times, window.

EMG may be a NumPy array (n_times, n_muscles) with a rate, a :class:`~nwb_synergy.EMG`
(whose ``data`` may be an h5py dataset), an h5py dataset with a rate, a Neo ``AnalogSignal``
or a pynapple ``TsdFrame``/``Tsd`` (rate from its timestamps; a restricted one, with gaps, is
read piece by piece: see :mod:`nwb_synergy.io.pynapple`). Spike times may be an array of
seconds, a ``quantities`` array, a Neo ``SpikeTrain`` or a pynapple ``Ts``; quantities are
respected (ms -> s, kHz -> Hz).

The EMG can be restricted to intervals (``as_signal(..., intervals=...)``, an ``IntervalSet``
or ``[start, end]`` rows in seconds): a spike is then used only when its whole window
``[t + start, t + stop]`` lies inside one interval and every sample it reads does too, so no
sample outside the intervals enters the average.

The sample of each spike's window is computed with the same arithmetic as
``elephant.sta.spike_triggered_average`` (same operands, same order, same unit conversions), so
that both pick exactly the same samples. When any input carries units, the computation is done
with ``quantities`` arrays, elementwise identical to elephant's scalar loop; otherwise it is done
with plain floats in seconds and hertz, which is what ``quantities`` computes for s and Hz.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..errors import InputError
from ..io.pynapple import (
    intervals_from_pynapple,
    is_pynapple,
    pynapple_samples,
    spike_times_from_pynapple,
)
from ..signals import EMG


@dataclass
class SignalInput:
    """EMG samples in the form the gather engine reads.

    Attributes
    ----------
    data
        Array-like (n_times, n_muscles): an ``np.ndarray`` (read in place) or any object with
        ``shape`` and row slicing, e.g. an h5py dataset (read in ordered chunks).
    rate
        Sampling rate in Hz.
    t_start
        Time of the first sample in seconds.
    muscle_names
        One name per column.
    unit
        Unit of the samples.
    quantities
        ``(t_start, t_stop, rate)`` as ``quantities`` objects when the EMG was a Neo object
        (for elephant-identical arithmetic), else None.
    intervals
        ``[start, end]`` rows (n, 2) in s, sorted and disjoint: a spike is used only when its
        whole window lies inside one of them. None: no restriction.
    runs
        ``[first, stop)`` rows (n, 2) of samples that may be read, sorted and disjoint: a
        spike is used only when its window's samples lie inside one of them. None: all.
    """

    data: Any
    rate: float
    t_start: float
    muscle_names: list[str]
    unit: str
    quantities: tuple[Any, Any, Any] | None = None
    intervals: np.ndarray | None = None
    runs: np.ndarray | None = None

    @property
    def n_times(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_muscles(self) -> int:
        return int(self.data.shape[1])

    def windows_fit(self, starts: np.ndarray, length: int) -> np.ndarray:
        """Boolean mask: windows ``[start, start + length)`` whose samples may all be read.

        Inside the EMG, and inside one of ``runs`` when the EMG is restricted.
        """
        starts = np.asarray(starts, dtype=np.int64)
        ok = (starts >= 0) & (starts + length <= self.n_times)
        if self.runs is not None and len(starts):
            ok &= _inside(starts, starts + length, self.runs)
        return ok


def _is_quantity(x: Any) -> bool:
    return hasattr(x, "units") and hasattr(x, "rescale") and hasattr(x, "magnitude")


def _as_2d(data: Any, obj: str) -> Any:
    if isinstance(data, np.ndarray) or not hasattr(data, "shape"):
        data = np.asarray(data)
        if data.ndim == 1:
            data = data[:, None]
    if len(data.shape) != 2:
        raise InputError(
            f"EMG must be 2-D (n_times, n_muscles), got shape {tuple(data.shape)}", obj=obj
        )
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise InputError(f"EMG is empty (shape {tuple(data.shape)})", obj=obj)
    if isinstance(data, np.ndarray) and not np.issubdtype(data.dtype, np.number):
        raise InputError(f"EMG samples must be numbers, got dtype {data.dtype}", obj=obj)
    return data


def _check_rate(rate: Any, obj: str) -> float:
    if rate is None:
        raise InputError(
            "the sampling rate is needed for a plain array: pass rate=... (Hz)", obj=obj
        )
    if _is_quantity(rate):
        rate = rate.rescale("Hz").magnitude
    try:
        rate = float(rate)
    except (TypeError, ValueError):
        raise InputError(f"rate must be a number of Hz, got {rate!r}", obj="rate") from None
    if not np.isfinite(rate) or rate <= 0:
        raise InputError(f"rate must be a positive number of Hz, got {rate}", obj="rate")
    return rate


def _inside(lo: np.ndarray, hi: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Mask: ``[lo, hi]`` inside one row of ``bounds`` (sorted, disjoint ``[start, end]`` rows)."""
    row = np.searchsorted(bounds[:, 0], lo, side="right") - 1
    ok = row >= 0
    ok[ok] = hi[ok] <= bounds[row[ok], 1]
    return ok


def _intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection of two sets of sorted, disjoint ``[start, end]`` rows (non-empty rows)."""
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i, 0], b[j, 0]), min(a[i, 1], b[j, 1])
        if hi > lo:
            out.append((lo, hi))
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return np.array(out, dtype=a.dtype).reshape(-1, 2)


class _GappedRows:
    """The pieces of a restricted pynapple series laid on their sampling grid, gaps as zeros.

    Reads like a (n_grid, n_muscles) array (``shape``, row slicing, ``np.asarray``) without
    storing the gaps: a slice is filled from the pieces it overlaps. The gaps are never read
    for an average (spikes whose window touches one are not used); they are zeros so that
    running sums over a chunk stay finite.
    """

    def __init__(self, data: np.ndarray, runs: np.ndarray):
        self._data = data
        self._runs = np.asarray(runs, dtype=np.int64)  # [grid first, grid stop, data row]
        self.dtype = data.dtype if np.issubdtype(data.dtype, np.floating) else np.dtype(float)
        self.shape = (int(self._runs[-1, 1]), int(data.shape[1]))
        self.ndim = 2

    def __len__(self) -> int:
        return self.shape[0]

    def _rows(self, start: int, stop: int) -> np.ndarray:
        out = np.zeros((max(stop - start, 0), self.shape[1]), dtype=self.dtype)
        for first, end, row in self._runs.tolist():
            lo, hi = max(first, start), min(end, stop)
            if hi > lo:
                out[lo - start : hi - start] = self._data[row + lo - first : row + hi - first]
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        rows, cols = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        if isinstance(rows, slice) and rows.step in (None, 1):
            start, stop, _ = rows.indices(self.shape[0])
            out = self._rows(start, stop)
        elif isinstance(rows, (int, np.integer)):
            index = range(self.shape[0])[rows]
            out = self._rows(index, index + 1)[0]
        else:
            out = np.asarray(self)[rows]
        if cols:
            out = out[(slice(None), *cols)] if out.ndim == 2 else out[cols]
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._rows(0, self.shape[0])
        return out if dtype is None else out.astype(dtype)


def _signal_from_pynapple(emg: Any, rate: Any) -> SignalInput:
    samples = pynapple_samples(emg, None if rate is None else _check_rate(rate, "rate"))
    if samples.contiguous:
        data = _as_2d(samples.data, "emg")
        return SignalInput(data, samples.rate, samples.t_start, samples.muscle_names, "a.u.")
    grid = samples.runs[:, :2]
    return SignalInput(
        _GappedRows(_as_2d(samples.data, "emg"), samples.runs),
        samples.rate,
        samples.t_start,
        samples.muscle_names,
        "a.u.",
        intervals=samples.t_start + grid / samples.rate,
        runs=grid,
    )


def restrict_signal(signal: SignalInput, intervals: Any) -> SignalInput:
    """The signal restricted to ``intervals`` (an ``IntervalSet`` or ``[start, end]`` rows, s).

    Keeps any earlier restriction (the result is the intersection). The samples allowed are
    those whose time ``t_start + j / rate`` lies inside an interval (to 1e-6 of a sample).
    """
    bounds = intervals_from_pynapple(intervals)
    times = bounds if signal.intervals is None else _intersect(signal.intervals, bounds)
    eps = 1e-6
    first = np.ceil((bounds[:, 0] - signal.t_start) * signal.rate - eps)
    last = np.floor((bounds[:, 1] - signal.t_start) * signal.rate + eps)
    rows = np.column_stack([first, last + 1]).clip(0, signal.n_times).astype(np.int64)
    rows = rows[rows[:, 1] > rows[:, 0]]
    if signal.runs is not None:
        rows = _intersect(signal.runs, rows)
    return replace(signal, intervals=times, runs=rows)


def as_signal(emg: Any, rate: Any = None, t_start: Any = 0.0, intervals: Any = None) -> SignalInput:
    """Turn any accepted EMG form into a :class:`SignalInput` (no copy of the samples).

    ``t_start`` is used for plain arrays only; ``intervals`` (an ``IntervalSet`` or
    ``[start, end]`` rows in s) restricts the spikes used to those whose windows lie inside.
    """
    signal = _as_signal(emg, rate, t_start)
    return signal if intervals is None else restrict_signal(signal, intervals)


def _as_signal(emg: Any, rate: Any, t_start: Any) -> SignalInput:
    if isinstance(emg, SignalInput):
        return emg
    file = None
    if isinstance(emg, EMG):
        if rate is not None and not np.isclose(_check_rate(rate, "rate"), emg.rate):
            raise InputError(
                f"rate={rate} disagrees with the EMG's own rate {emg.rate} Hz", obj="rate"
            )
        if emg.source is not None:
            file = emg.source.file
        data = _as_2d(emg.data, "emg")
        return SignalInput(data, emg.rate, emg.t_start, list(emg.muscle_names), emg.unit)
    if is_pynapple(emg, "Tsd", "TsdFrame"):
        return _signal_from_pynapple(emg, rate)
    if is_pynapple(emg):
        raise InputError(
            f"EMG must be a pynapple Tsd or TsdFrame, got a {type(emg).__name__}", obj="emg"
        )
    if _is_neo_signal(emg):
        rate_q = emg.sampling_rate
        t0_q = emg.t_start
        data = np.asarray(emg.magnitude)
        if data.ndim == 1:
            data = data[:, None]
        data = _as_2d(data, "emg")
        names = _neo_channel_names(emg, data.shape[1])
        return SignalInput(
            data,
            float(rate_q.rescale("Hz").magnitude),
            float(t0_q.rescale("s").magnitude),
            names,
            str(emg.units.dimensionality),
            quantities=(t0_q, emg.t_stop, rate_q),
        )
    data = _as_2d(emg, "emg")
    rate_f = _check_rate(rate, "emg")
    if _is_quantity(t_start):
        t_start = t_start.rescale("s").magnitude
    try:
        t0 = float(t_start)
    except (TypeError, ValueError):
        raise InputError(
            f"t_start must be a number of seconds, got {t_start!r}", file=file
        ) from None
    if not np.isfinite(t0):
        raise InputError(f"t_start must be finite, got {t0}", obj="t_start")
    names = [f"muscle_{i}" for i in range(data.shape[1])]
    return SignalInput(data, rate_f, t0, names, "a.u.")


def _is_neo_signal(x: Any) -> bool:
    return type(x).__name__ in {"AnalogSignal", "IrregularlySampledSignal"} and hasattr(
        x, "sampling_rate"
    )


def _neo_channel_names(sig: Any, n: int) -> list[str]:
    names = None
    ann = getattr(sig, "array_annotations", None) or {}
    for key in ("channel_names", "muscle_names", "channel_ids"):
        if key in ann and len(ann[key]) == n:
            names = [str(v) for v in ann[key]]
            break
    return names or [f"muscle_{i}" for i in range(n)]


@dataclass
class SpikeInput:
    """Spike times in seconds and, when given with units, as a ``quantities`` array."""

    seconds: np.ndarray
    quantity: Any | None = None


def as_spikes(spike_times: Any, obj: str = "spike_times") -> SpikeInput:
    """Accept seconds, a quantities array or a Neo SpikeTrain; reject NaN and non-1-D input."""
    quantity = None
    if is_pynapple(spike_times, "TsGroup"):
        raise InputError(
            "a TsGroup holds several units: pass it as the spike trains of "
            "spike_triggered_averages (or select one unit, group[unit_id])",
            obj=obj,
        )
    if is_pynapple(spike_times):
        spike_times = spike_times_from_pynapple(spike_times, obj=obj)
    if _is_quantity(spike_times):
        import quantities as pq

        # a plain Quantity view: SpikeTrain arithmetic would shift and check t_start/t_stop
        quantity = pq.Quantity(
            np.asarray(spike_times.magnitude, dtype=float).ravel(), spike_times.units
        )
        try:
            seconds = np.asarray(quantity.rescale("s").magnitude, dtype=float)
        except ValueError:
            raise InputError(
                f"spike times must be a time quantity, got units {spike_times.units}", obj=obj
            ) from None
    else:
        try:
            seconds = np.asarray(spike_times, dtype=float)
        except (TypeError, ValueError):
            raise InputError("spike times must be numbers (seconds)", obj=obj) from None
        if seconds.ndim == 0:
            seconds = seconds[None]
    if seconds.ndim != 1:
        raise InputError(f"spike times must be 1-D, got shape {seconds.shape}", obj=obj)
    if not np.all(np.isfinite(seconds)):
        raise InputError("spike times contain NaN or infinite values", obj=obj)
    return SpikeInput(seconds, quantity)


def as_window(window: Any) -> tuple[Any, Any, tuple[float, float], bool]:
    """Return (start, stop) as given (floats or quantities), in seconds, and whether quantities."""
    try:
        w0, w1 = window
    except (TypeError, ValueError):
        raise InputError(f"window must be (start, stop), got {window!r}", obj="window") from None
    has_q = _is_quantity(w0) or _is_quantity(w1)
    secs = []
    for w in (w0, w1):
        if _is_quantity(w):
            try:
                secs.append(float(w.rescale("s").magnitude))
            except ValueError:
                raise InputError(f"window bounds must be times, got {w}", obj="window") from None
        else:
            try:
                secs.append(float(w))
            except (TypeError, ValueError):
                raise InputError(
                    f"window bounds must be seconds, got {w!r}", obj="window"
                ) from None
    if not all(np.isfinite(secs)) or secs[1] <= secs[0]:
        raise InputError(f"window must satisfy start < stop, got {tuple(secs)} s", obj="window")
    return w0, w1, (secs[0], secs[1]), has_q


def _simplified(x: Any) -> Any:
    return x.simplified.magnitude if _is_quantity(x) else x


@dataclass
class WindowIndex:
    """Which spikes are used and where their windows start.

    Attributes
    ----------
    n_lags
        Number of samples per window (elephant's ``window_bins``).
    used
        Boolean mask over the input spikes (input order).
    starts
        First sample of each used spike's window (input order), int64.
    """

    n_lags: int
    used: np.ndarray
    starts: np.ndarray


def window_index(signal: SignalInput, spikes: SpikeInput, window: Any) -> WindowIndex:
    """Samples of each spike's window, exactly as elephant's STA chooses them.

    elephant uses ``window_bins = ceil((stop - start) * rate)``; a spike is used when
    ``t + start >= t_start`` and ``t + stop <= t_stop`` (``t_stop = t_start + n / rate``), and its
    window begins at ``floor((t + start - t_start) * rate)``. A window that would still run past
    the last sample (possible only through float rounding, where elephant itself fails) is
    counted as unused. On a restricted signal, a spike is also unused unless
    ``[t + start, t + stop]`` lies inside one of ``signal.intervals`` and its samples inside one
    of ``signal.runs``.
    """
    w0, w1, win_s, window_q = as_window(window)
    use_q = window_q or spikes.quantity is not None or signal.quantities is not None
    if use_q:
        import quantities as pq

        if signal.quantities is not None:
            t0, t_stop, rate = signal.quantities
        else:
            rate = signal.rate * pq.Hz
            t0 = signal.t_start * pq.s
            t_stop = t0 + signal.n_times / rate
        w0 = w0 if _is_quantity(w0) else w0 * pq.s
        w1 = w1 if _is_quantity(w1) else w1 * pq.s
        st = spikes.quantity if spikes.quantity is not None else spikes.seconds * pq.s
    else:
        rate = signal.rate
        t0 = signal.t_start
        t_stop = t0 + signal.n_times / rate
        st = spikes.seconds
    n_lags = int(np.ceil(_simplified((w1 - w0) * rate)))
    if n_lags > signal.n_times:
        raise InputError(
            f"the window ({n_lags} samples) is longer than the EMG ({signal.n_times} samples)",
            obj="window",
        )
    used = np.asarray((st + w0 >= t0) & (st + w1 <= t_stop), dtype=bool).reshape(-1)
    if signal.intervals is not None:
        secs = spikes.seconds
        used &= _inside(secs + win_s[0], secs + win_s[1], signal.intervals)
    starts = np.floor(np.asarray(_simplified((st[used] + w0 - t0) * rate), dtype=float))
    starts = starts.astype(np.int64).reshape(-1)
    fits = signal.windows_fit(starts, n_lags)
    if not np.all(fits):
        idx = np.flatnonzero(used)
        used[idx[~fits]] = False
        starts = starts[fits]
    return WindowIndex(n_lags, used, starts)
