"""Spike-triggered averages (STA) of EMG, equal to elephant's and orders of magnitude faster.

``elephant.sta.spike_triggered_average`` is the reference: for every spike it picks the samples
``floor((t + start - t_start) * rate)`` onwards, ``ceil((stop - start) * rate)`` of them, skips
(and counts) spikes whose window does not fit inside the signal, and divides the sum by the
number of spikes used. :func:`spike_triggered_average` picks the same samples (see
:mod:`nwb_synergy.sta._inputs`) and gives the same mean to rounding (float64 sums in another
order, differences ~1e-15 relative), but it reads each window as one block of memory, keeps the
per-spike sweeps if asked, reads long on-disk recordings in ordered chunks, and handles many
units in one pass.

Baselines (both optional, never applied to ``mean`` itself):

* **ISA**, increment-shifted average (Davidson et al., J Neurosci Methods 163:283, 2007):
  each spike also triggers artificial copies of itself shifted by ``-isa_span, ...,
  +isa_span`` in steps of ``isa_step`` (1 ms steps over +-40 ms: 81 triggers); their average
  keeps the slow baseline trend of the STA and spreads any spike-locked effect thinly over the
  window. ``mean - isa`` removes slow, curved trends. It is also the expected STA under uniform
  dithering of the spikes by +-``isa_span`` (``elephant.spike_train_surrogates.dither_spikes``),
  on a grid of ``isa_step``.
* **Linear trend** (``detrend=True``): a straight line fitted by least squares to the STA on
  flanking windows (by default the first and last quarter of the window), the classic "ramp
  subtraction".
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..signals import EMG
from ._gather import CHUNK_BYTES, GatherJob, run_jobs
from ._inputs import SignalInput, as_signal, as_spikes, as_window, window_index

__all__ = [
    "STAResult",
    "LazySweeps",
    "spike_triggered_average",
    "spike_triggered_averages",
    "isa_shifts",
    "increment_shifted_average",
]


class LazySweeps:
    """Per-spike sweeps read on demand from the EMG, shaped (n_used, n_lags, n_muscles).

    Used instead of an in-memory array when the sweeps would not fit in ``max_sweep_bytes``
    (or when ``keep_sweeps="lazy"``): nothing is stored but the window starts, and indexing
    reads the windows asked for. ``np.asarray(sweeps)`` reads them all.
    """

    def __init__(self, data: Any, starts: np.ndarray, n_lags: int):
        self._data = data
        self.starts = np.asarray(starts, dtype=np.int64)
        self.n_lags = int(n_lags)
        dtype = np.dtype(getattr(data, "dtype", np.float64))
        self.dtype = dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.starts), self.n_lags, int(self._data.shape[1]))

    @property
    def ndim(self) -> int:
        return 3

    def __len__(self) -> int:
        return len(self.starts)

    def _read(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((len(idx), self.n_lags, self.shape[2]), dtype=self.dtype)
        for j, s in enumerate(self.starts[idx].tolist()):
            out[j] = self._data[s : s + self.n_lags]
        return out

    def __getitem__(self, key: Any) -> np.ndarray:
        first, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        idx = np.arange(len(self.starts))[first]
        if np.ndim(idx) == 0:
            out = self._read(np.atleast_1d(idx))[0]
        else:
            out = self._read(idx)
        return out[rest] if rest else out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._read(np.arange(len(self.starts)))
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"LazySweeps(shape={self.shape}, dtype={self.dtype})"


@dataclass
class STAResult:
    """A spike-triggered average and what it was computed from.

    Attributes
    ----------
    mean
        The STA, (n_lags, n_muscles): elephant's numbers.
    lags
        Time of each sample relative to the spike, seconds (n_lags,):
        ``window[0] + arange(n_lags) / rate``.
    n_used, n_unused
        Spikes averaged, and spikes left out because their window did not fit in the EMG
        (plus spikes outside the recording when ``outside="exclude"``).
    window
        (start, stop) asked for, seconds relative to the spike.
    rate
        Sampling rate of the EMG, Hz.
    muscle_names
        One name per column of ``mean``.
    sweeps
        Per-spike windows (n_used, n_lags, n_muscles) in time order: an ndarray, a
        :class:`LazySweeps` (read on demand) when they would not fit in memory, or None.
    spike_times
        Times of the spikes used, seconds, in time order (n_used,).
    window_starts
        EMG sample where each used spike's window begins (n_used,), int64, time order.
    t_start
        Time of the first EMG sample, seconds.
    unit
        Unit of the EMG samples.
    isa
        Increment-shifted average (n_lags, n_muscles), or None.
    isa_n_used
        Spikes whose shifted windows all fit in the EMG (the ISA is averaged over those).
    isa_span, isa_step
        ISA shifts: ``-isa_span .. +isa_span`` in steps of ``isa_step`` (s).
    trend
        Fitted linear trend (n_lags, n_muscles), or None.
    parameters
        Arguments of the call, for provenance.
    intervals
        ``[start, end]`` rows (s) the spikes were restricted to (a spike was used only when
        its whole window lay inside one), or None.
    source
        The EMG that was averaged (not copied): the :class:`~nwb_synergy.EMG` itself when one
        was given (its history and NWB source then travel with the result), else the samples
        with their rate; read again for per-spike statistics in
        :func:`~nwb_synergy.sta.post_spike_effects`. None when not available.
    """

    mean: np.ndarray
    lags: np.ndarray
    n_used: int
    n_unused: int
    window: tuple[float, float]
    rate: float
    muscle_names: list[str]
    sweeps: Any = field(default=None, repr=False)
    spike_times: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    window_starts: np.ndarray = field(
        default_factory=lambda: np.empty(0, dtype=np.int64), repr=False
    )
    t_start: float = 0.0
    unit: str = "a.u."
    isa: np.ndarray | None = field(default=None, repr=False)
    isa_n_used: int = 0
    isa_span: float = 0.04
    isa_step: float = 0.001
    trend: np.ndarray | None = field(default=None, repr=False)
    parameters: dict = field(default_factory=dict, repr=False)
    intervals: np.ndarray | None = field(default=None, repr=False)
    source: Any = field(default=None, repr=False, compare=False)

    @property
    def n_lags(self) -> int:
        return int(self.mean.shape[0])

    @property
    def n_muscles(self) -> int:
        return int(self.mean.shape[1])

    @property
    def baseline(self) -> np.ndarray | None:
        """The ISA if computed, else the linear trend if computed, else None."""
        return self.isa if self.isa is not None else self.trend

    @property
    def corrected(self) -> np.ndarray:
        """``mean - baseline`` (ISA or trend); ``mean`` minus its mean when no baseline."""
        base = self.baseline
        if base is None:
            return self.mean - np.nanmean(self.mean, axis=0)
        return self.mean - base


def isa_shifts(rate: float, span: float = 0.04, step: float = 0.001) -> np.ndarray:
    """Sample shifts of the ISA triggers: ``round(j * step * rate)``, ``j = -n..n``.

    ``n = round(span / step)``; with the defaults (1 ms over +-40 ms) there are 81 triggers.
    """
    if not (step > 0 and span >= 0 and np.isfinite(span) and np.isfinite(step)):
        raise InputError(
            f"ISA needs isa_step > 0 and isa_span >= 0, got {step}, {span}", obj="isa_span"
        )
    n = int(round(span / step))
    return np.round(np.arange(-n, n + 1) * step * rate).astype(np.int64)


def _isa_plan(
    window_starts: np.ndarray, n_lags: int, signal: SignalInput | Any, shifts: np.ndarray
) -> GatherJob:
    """The extended-window job whose mean gives the ISA (spikes whose shifts all fit).

    ``signal`` is a :class:`SignalInput` (its restriction to intervals is respected: every
    shifted window must lie inside one) or a plain 2-D array-like.
    """
    reach = int(np.abs(shifts).max())
    firsts = np.asarray(window_starts, dtype=np.int64) - reach
    length = n_lags + 2 * reach
    if isinstance(signal, SignalInput):
        ok = signal.windows_fit(firsts, length)
    else:
        ok = (firsts >= 0) & (firsts + length <= int(signal.shape[0]))
    return GatherJob(firsts[ok], length)


def _isa_from_sums(sums: np.ndarray, n_used: int, shifts: np.ndarray, n_lags: int) -> np.ndarray:
    """Average of the extended-window mean over the shifted triggers, (n_lags, n_muscles)."""
    reach = int(np.abs(shifts).max())
    with np.errstate(invalid="ignore", divide="ignore"):
        ext = sums / n_used
    isa = np.zeros((n_lags, sums.shape[1]))
    for d in shifts.tolist():
        isa += ext[reach + d : reach + d + n_lags]
    return isa / len(shifts)


def increment_shifted_average(
    signal: Any,
    window_starts: np.ndarray,
    n_lags: int,
    shifts: np.ndarray,
    *,
    chunk_bytes: int = CHUNK_BYTES,
) -> tuple[np.ndarray, int]:
    """ISA (n_lags, n_muscles) of windows starting at ``window_starts``, and spikes used.

    ``signal`` is a :class:`~nwb_synergy.sta._inputs.SignalInput` (restricted to intervals
    or not) or a 2-D array-like.
    """
    out = increment_shifted_averages(
        signal, {0: window_starts}, n_lags, shifts, chunk_bytes=chunk_bytes
    )
    return out[0]


def increment_shifted_averages(
    signal: Any,
    window_starts: Mapping[Any, np.ndarray],
    n_lags: int,
    shifts: np.ndarray,
    *,
    chunk_bytes: int = CHUNK_BYTES,
) -> dict[Any, tuple[np.ndarray, int]]:
    """ISAs of many units' windows over one signal, reading (and filtering) it once.

    Returns ``{unit: (isa (n_lags, n_muscles), spikes used)}``.
    """
    data = signal.data if isinstance(signal, SignalInput) else signal
    jobs = {
        unit: _isa_plan(np.sort(np.asarray(starts, dtype=np.int64)), n_lags, signal, shifts)
        for unit, starts in window_starts.items()
    }
    run_jobs(data, list(jobs.values()), chunk_bytes=chunk_bytes)
    return {
        unit: (_isa_from_sums(job.sums, len(job.starts), shifts, n_lags), len(job.starts))
        for unit, job in jobs.items()
    }


def _detrend_windows(window: tuple[float, float], windows: Any) -> list[tuple[float, float]]:
    if windows is None:
        q = (window[1] - window[0]) / 4
        return [(window[0], window[0] + q), (window[1] - q, window[1])]
    out = []
    for w in windows:
        a, b = (float(v) for v in w)
        if not b > a:
            raise InputError(f"detrend window {w} must have start < stop", obj="detrend_windows")
        out.append((a, b))
    return out


def linear_trend(
    mean: np.ndarray, lags: np.ndarray, windows: list[tuple[float, float]]
) -> np.ndarray:
    """Least-squares line through ``mean`` on the lags inside ``windows``, over all lags."""
    tol = 1e-9
    sel = np.zeros(len(lags), dtype=bool)
    for a, b in windows:
        sel |= (lags >= a - tol) & (lags <= b + tol)
    if sel.sum() < 2:
        raise InputError(
            f"detrend windows {windows} contain fewer than 2 STA samples", obj="detrend_windows"
        )
    design = np.column_stack([np.ones(sel.sum()), lags[sel]])
    coef, *_ = np.linalg.lstsq(design, mean[sel], rcond=None)
    return coef[0] + lags[:, None] * coef[1]


def _count_outside(signal: SignalInput, seconds: np.ndarray) -> int:
    t_stop = signal.t_start + signal.n_times / signal.rate
    return int(np.count_nonzero((seconds < signal.t_start) | (seconds > t_stop)))


def spike_triggered_averages(
    emg: Any,
    spike_trains: Mapping[Any, Any],
    rate: float | None = None,
    window: tuple[Any, Any] = (-0.03, 0.05),
    t_start: float = 0.0,
    *,
    keep_sweeps: bool | str = True,
    baseline: str | None = None,
    detrend: bool = False,
    isa_span: float = 0.04,
    isa_step: float = 0.001,
    detrend_windows: Any = None,
    outside: str = "raise",
    max_sweep_bytes: int = 2**29,
    chunk_bytes: int = CHUNK_BYTES,
    intervals: Any = None,
) -> dict[Any, STAResult]:
    """STAs of many units over the same EMG, reading the EMG once.

    Same parameters as :func:`spike_triggered_average`, with ``spike_trains`` a mapping
    ``{unit id: spike times}``. Returns ``{unit id: STAResult}``.
    """
    if baseline not in (None, "isa"):
        raise InputError(f"baseline must be None or 'isa', got {baseline!r}", obj="baseline")
    if outside not in ("raise", "exclude"):
        raise InputError(f"outside must be 'raise' or 'exclude', got {outside!r}", obj="outside")
    if keep_sweeps not in (True, False, "lazy"):
        raise InputError(
            f"keep_sweeps must be True, False or 'lazy', got {keep_sweeps!r}", obj="keep_sweeps"
        )
    signal = as_signal(emg, rate, t_start, intervals=intervals)
    _, _, win_s, _ = as_window(window)
    n_times, n_muscles = signal.n_times, signal.n_muscles
    dtype = np.dtype(getattr(signal.data, "dtype", np.float64))
    sweep_dtype = dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)
    shifts = isa_shifts(signal.rate, isa_span, isa_step) if baseline == "isa" else None

    plans: dict[Any, dict] = {}
    jobs: list[GatherJob] = []
    for unit, train in spike_trains.items():
        name = "spike_times" if unit is None else f"spike_trains[{unit!r}]"
        spikes = as_spikes(train, obj=name)
        n_out = _count_outside(signal, spikes.seconds)
        if n_out and outside == "raise":
            t_stop = signal.t_start + n_times / signal.rate
            raise InputError(
                f"{n_out} spike(s) lie outside the EMG recording "
                f"[{signal.t_start:g}, {t_stop:g}] s (pass outside='exclude' to skip them)",
                obj=name,
            )
        index = window_index(signal, spikes, window)
        order = np.argsort(index.starts, kind="stable")
        starts = index.starts[order]
        times = spikes.seconds[index.used][order]
        n_lags = index.n_lags
        n_used = len(starts)
        sweeps: Any = None
        if keep_sweeps is True and n_used * n_lags * n_muscles * sweep_dtype.itemsize <= (
            max_sweep_bytes
        ):
            sweeps = np.empty((n_used, n_lags, n_muscles), dtype=sweep_dtype)
        elif keep_sweeps:
            sweeps = LazySweeps(signal.data, starts, n_lags)
        main = GatherJob(starts, n_lags, sweeps if isinstance(sweeps, np.ndarray) else None)
        jobs.append(main)
        plan = {
            "main": main,
            "times": times,
            "n_spikes": len(spikes.seconds),
            "n_unused": len(spikes.seconds) - n_used,
            "sweeps": sweeps,
        }
        if shifts is not None:
            plan["isa"] = _isa_plan(starts, n_lags, signal, shifts)
            jobs.append(plan["isa"])
        plans[unit] = plan

    run_jobs(signal.data, jobs, chunk_bytes=chunk_bytes)

    parameters = {
        "window": list(win_s),
        "keep_sweeps": keep_sweeps,
        "baseline": baseline,
        "detrend": bool(detrend),
        "isa_span": isa_span,
        "isa_step": isa_step,
        "outside": outside,
    }
    if signal.intervals is not None:
        parameters["intervals"] = np.asarray(signal.intervals).tolist()
    results: dict[Any, STAResult] = {}
    for unit, plan in plans.items():
        main = plan["main"]
        n_used = len(main.starts)
        n_lags = main.length
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = main.sums / n_used
        if n_used == 0:
            if plan["n_spikes"] == 0:
                why = "the unit has no spike at all"
            elif signal.intervals is not None:
                why = "no spike window lies wholly inside the intervals and the EMG"
            else:
                why = "every window runs past the EMG"
            warnings.warn(
                f"no spike of unit {unit!r} could be used: {why}", RuntimeWarning, stacklevel=2
            )
        elif not np.all(np.isfinite(mean)):
            raise InputError("EMG contains NaN or infinite samples inside spike windows", obj="emg")
        lags = win_s[0] + np.arange(n_lags) / signal.rate
        isa = None
        isa_n_used = 0
        if shifts is not None:
            job = plan["isa"]
            isa_n_used = len(job.starts)
            isa = _isa_from_sums(job.sums, isa_n_used, shifts, n_lags)
        trend = None
        if detrend and n_used:
            trend = linear_trend(mean, lags, _detrend_windows(win_s, detrend_windows))
        results[unit] = STAResult(
            mean=mean,
            lags=lags,
            n_used=n_used,
            n_unused=int(plan["n_unused"]),
            window=win_s,
            rate=signal.rate,
            muscle_names=list(signal.muscle_names),
            sweeps=plan["sweeps"],
            spike_times=plan["times"],
            window_starts=main.starts,
            t_start=signal.t_start,
            unit=signal.unit,
            isa=isa,
            isa_n_used=isa_n_used,
            isa_span=float(isa_span),
            isa_step=float(isa_step),
            trend=trend,
            parameters=dict(parameters),
            intervals=None if signal.intervals is None else np.asarray(signal.intervals),
            source=emg if isinstance(emg, EMG) else signal,
        )
    return results


def spike_triggered_average(
    emg: Any,
    spike_times: Any,
    rate: float | None = None,
    window: tuple[Any, Any] = (-0.03, 0.05),
    t_start: float = 0.0,
    *,
    keep_sweeps: bool | str = True,
    baseline: str | None = None,
    detrend: bool = False,
    isa_span: float = 0.04,
    isa_step: float = 0.001,
    detrend_windows: Any = None,
    outside: str = "raise",
    max_sweep_bytes: int = 2**29,
    chunk_bytes: int = CHUNK_BYTES,
    intervals: Any = None,
) -> STAResult | dict[Any, STAResult]:
    """Spike-triggered average of (rectified) EMG, with elephant's samples and numbers.

    Parameters
    ----------
    emg
        EMG of shape (n_times, n_muscles): a NumPy array (with ``rate``, ``t_start``), a
        :class:`~nwb_synergy.EMG` (its ``data`` may be an h5py dataset, read in ordered
        chunks), an h5py dataset (with ``rate``) or a Neo ``AnalogSignal`` (its own rate,
        start and units). Pass the rectified, high-pass-filtered EMG at full rate.
    spike_times
        Seconds (array), a ``quantities`` array or a Neo ``SpikeTrain`` (units respected);
        or a mapping ``{unit id: spike times}``, in which case a dict of results is returned
        (see :func:`spike_triggered_averages`).
    rate
        Sampling rate in Hz (or a quantity) for a plain array.
    window
        (start, stop) relative to the spike, seconds or time quantities. As in elephant the
        window has ``ceil((stop - start) * rate)`` samples, starting at the sample
        ``floor((t + start - t_start) * rate)``.
    t_start
        Time of the first EMG sample (plain arrays only), seconds.
    keep_sweeps
        True: keep the per-spike windows, in memory if they fit in ``max_sweep_bytes``, else
        as a :class:`LazySweeps` that reads them on demand; "lazy": always the latter; False:
        keep none.
    baseline
        "isa": also compute the increment-shifted average (``.isa``).
    detrend
        Also fit a linear trend on ``detrend_windows`` (``.trend``).
    isa_span, isa_step
        ISA triggers at ``-isa_span .. +isa_span`` s in steps of ``isa_step`` s.
    detrend_windows
        Windows (start, stop) in s for the trend fit; default the first and last quarter of
        ``window``.
    outside
        Spikes outside the EMG recording: "raise" an :class:`~nwb_synergy.InputError`, or
        "exclude" them (counted in ``n_unused``). Spikes inside the recording whose window
        does not fit are always excluded and counted, as in elephant.
    max_sweep_bytes
        Largest in-memory sweeps array.
    chunk_bytes
        Size of the chunks read from an on-disk EMG.
    intervals
        Restrict the average to task periods: an ``IntervalSet`` or ``[start, end]`` rows in
        s (e.g. ``Intervals.merged()`` of a trials table). A spike is used only when its
        whole window ``[t + start, t + stop]`` lies inside one interval; the others are
        counted in ``n_unused``. None: the whole recording.

    Returns
    -------
    STAResult
        ``.mean`` (n_lags, n_muscles), ``.sweeps``, ``.lags`` (s), ``.n_used``, ``.n_unused``,
        ``.window``, ``.rate``, ``.muscle_names`` and the optional baselines.

    Raises
    ------
    InputError
        Bad shapes or rates, NaN in spike times or in used EMG samples, spikes outside the
        recording (by default), a window longer than the EMG.
    """
    kwargs = dict(
        rate=rate,
        window=window,
        t_start=t_start,
        keep_sweeps=keep_sweeps,
        baseline=baseline,
        detrend=detrend,
        isa_span=isa_span,
        isa_step=isa_step,
        detrend_windows=detrend_windows,
        outside=outside,
        max_sweep_bytes=max_sweep_bytes,
        chunk_bytes=chunk_bytes,
        intervals=intervals,
    )
    if isinstance(spike_times, Mapping):
        return spike_triggered_averages(emg, spike_times, **kwargs)
    return spike_triggered_averages(emg, {None: spike_times}, **kwargs)[None]
