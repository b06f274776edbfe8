"""Cycles: time normalisation (fixed points per cycle) and activation metrics per cycle.

Locomotion is analysed cycle by cycle. musclesyneRgies (A. Santuz) time-normalises each gait
cycle to a fixed number of points, the stance and the swing phase each to their own share
(100 + 100 points), and describes each synergy's activation pattern by two numbers: its full
width at half maximum (FWHM) and its centre of activity (CoA) on the circular cycle (Martino et
al., J Neurophysiol 112:2810, 2014). This module does the same, in its own code:

* :func:`normalize_cycles`: each cycle (optionally split into phases by a second event, e.g. the
  lift-off) resampled to fixed points. As in musclesyneRgies, a phase ``[a, b)`` keeps the
  samples from the first at or after ``a`` to the last before ``b`` and spreads them linearly
  (by sample index, first and last sample included) over its points.
* :func:`fwhm`: the number of points of a pattern above half its maximum, after subtracting its
  minimum (musclesyneRgies's default); a width in points, so a fraction of the cycle once
  divided by the points per cycle.
* :func:`center_of_activity`: point ``i`` of ``P`` is placed at the angle ``2 pi i / (P - 1)``
  (so the first and the last point share the angle 0, as musclesyneRgies places them), the
  pattern's values weight the unit vectors at those angles, and the angle of their sum,
  taken in ``[0, 2 pi)`` (``arctan2``), is turned back into points as
  ``angle / (2 pi) * P``.
* :func:`activation_metrics`: both, for every cycle and every synergy, with their means over
  cycles (the CoA's circular mean) and those of the cycle-averaged pattern.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import InputError
from .signals import EMG

_EPS = 1e-6  # of a sample: an event falling on a sample's time selects that sample

__all__ = [
    "CycleData",
    "CycleMetrics",
    "activation_metrics",
    "center_of_activity",
    "fwhm",
    "normalize_cycles",
]


@dataclass
class CycleData:
    """Signals time-normalised cycle by cycle.

    Attributes
    ----------
    data
        (n_cycles, n_points, n_channels).
    starts, stops
        (n_cycles,) times (s) of the cycles kept.
    phase_starts
        (n_cycles,) times (s) of the phase split, or None.
    points
        Points of each phase (``(100, 100)``) or of the whole cycle (``(200,)``).
    names
        One name per channel.
    used
        (n_cycles,) index of each kept cycle among the cycles given.
    dropped
        Index -> reason, for the cycles left out (outside the signal, NaN inside, too short).
    """

    data: np.ndarray
    starts: np.ndarray
    stops: np.ndarray
    phase_starts: np.ndarray | None
    points: tuple[int, ...]
    names: list[str]
    used: np.ndarray
    dropped: dict[int, str] = field(default_factory=dict)

    @property
    def n_cycles(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_points(self) -> int:
        return int(self.data.shape[1])

    @property
    def mean(self) -> np.ndarray:
        """(n_points, n_channels) mean over cycles."""
        return self.data.mean(axis=0)

    @property
    def sd(self) -> np.ndarray:
        """(n_points, n_channels) standard deviation over cycles (0 for a single cycle)."""
        return self.data.std(axis=0, ddof=1) if self.n_cycles > 1 else np.zeros_like(self.mean)

    @property
    def phase_bounds(self) -> list[int]:
        """Point index where each phase after the first begins."""
        return np.cumsum(self.points)[:-1].tolist()


def _signal(emg: Any, rate: float | None, t_start: float) -> tuple[np.ndarray, float, float, list]:
    if isinstance(emg, EMG):
        return emg.to_numpy(), emg.rate, emg.t_start, list(emg.muscle_names)
    if rate is None:
        raise InputError("an array was given without its sampling rate; pass rate=...", obj="rate")
    x = np.asarray(emg, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise InputError(f"must be (n_times, n_channels), got shape {x.shape}", obj="emg")
    rate = float(rate)
    if not (np.isfinite(rate) and rate > 0):
        raise InputError(f"rate must be a positive number of Hz, got {rate}", obj="rate")
    return x, rate, float(t_start), [f"channel_{i}" for i in range(x.shape[1])]


def _points(points: int | Sequence[int] | None, n_phases: int) -> tuple[int, ...]:
    if points is None:
        return (100,) * n_phases if n_phases > 1 else (200,)
    if isinstance(points, (int, np.integer)):
        if points < 2 * n_phases:
            raise InputError(f"must be at least {2 * n_phases}, got {points}", obj="points")
        share = [int(points) // n_phases] * n_phases
        share[-1] += int(points) - sum(share)
        return tuple(share)
    out = tuple(int(p) for p in points)
    if len(out) != n_phases or min(out) < 2:
        raise InputError(
            f"needs one number (>= 2) of points per phase ({n_phases}), got {tuple(points)}",
            obj="points",
        )
    return out


def _first_at_or_after(t: float, t_start: float, rate: float) -> int:
    return int(np.ceil((t - t_start) * rate - _EPS))


def normalize_cycles(
    emg: EMG | Any,
    starts: Any,
    *,
    stops: Any = None,
    phase_starts: Any = None,
    points: int | Sequence[int] | None = None,
    rate: float | None = None,
    t_start: float = 0.0,
) -> CycleData:
    """Time-normalise each cycle (and each of its phases) to a fixed number of points.

    Parameters
    ----------
    emg
        :class:`~nwb_synergy.EMG`, or an array (n_times,) or (n_times, n_channels) with
        ``rate`` and ``t_start`` (e.g. synergy activations).
    starts
        (n,) cycle start times in s (e.g. touchdowns), or an
        :class:`~nwb_synergy.intervals.Intervals` (its starts, stops and phase starts).
    stops
        (n,) end of each cycle; None: each cycle ends where the next starts (``n - 1``
        cycles, the last start closing the last cycle).
    phase_starts
        (n_cycles,) times splitting each cycle in two phases (e.g. lift-offs: stance, then
        swing), or None.
    points
        Points per phase, e.g. ``(100, 100)``, or one number for the whole cycle (split evenly
        among the phases). Default: 100 per phase with phases, else 200.
    rate, t_start
        For an array: sampling rate (Hz) and time of its first sample (s).

    Returns
    -------
    CycleData
        ``data`` (n_cycles, n_points, n_channels). Cycles not wholly inside the signal, with NaN
        samples, or with a phase of fewer than 2 samples are left out (listed in ``dropped``).

    Raises
    ------
    InputError
        Bad shapes, cycles that stop before they start, phase times outside their cycles, no
        usable cycle.
    """
    x, rate, t0, names = _signal(emg, rate, t_start)
    if hasattr(starts, "starts") and hasattr(starts, "stops"):
        intervals = starts
        starts, stops = intervals.starts, intervals.stops
        if phase_starts is None:
            phase_starts = getattr(intervals, "phase_starts", None)
    starts = np.asarray(starts, dtype=float).reshape(-1)
    if stops is None:
        starts, stops = starts[:-1], starts[1:]
    stops = np.asarray(stops, dtype=float).reshape(-1)
    if starts.shape != stops.shape or starts.size == 0:
        raise InputError(
            f"{starts.size} cycle starts for {stops.size} stops (at least one cycle needed)",
            obj="starts",
        )
    if not np.all(np.isfinite(starts) & np.isfinite(stops) & (stops > starts)):
        raise InputError("cycle times must be finite, each stop after its start", obj="starts")
    edges = [starts]
    if phase_starts is not None:
        phase_starts = np.asarray(phase_starts, dtype=float).reshape(-1)
        if phase_starts.shape != starts.shape or not np.all(
            (phase_starts > starts) & (phase_starts < stops)
        ):
            raise InputError(
                "phase times must be one per cycle, strictly inside their cycle",
                obj="phase_starts",
            )
        edges.append(phase_starts)
    edges.append(stops)
    n_phases = len(edges) - 1
    per_phase = _points(points, n_phases)
    n_times = x.shape[0]
    cycles, used, dropped = [], [], {}
    for c in range(starts.size):
        firsts = [_first_at_or_after(e[c], t0, rate) for e in edges]
        if firsts[0] < 0 or firsts[-1] > n_times:
            dropped[c] = "not wholly inside the signal"
            continue
        parts = []
        for p in range(n_phases):
            seg = x[firsts[p] : firsts[p + 1]]
            if len(seg) < 2:
                parts = None
                dropped[c] = "a phase holds fewer than 2 samples"
                break
            where = np.linspace(0.0, len(seg) - 1.0, per_phase[p])
            index = np.arange(len(seg), dtype=float)
            parts.append(np.column_stack([np.interp(where, index, col) for col in seg.T]))
        if parts is None:
            continue
        cycle = np.concatenate(parts)
        if not np.all(np.isfinite(cycle)):
            dropped[c] = "NaN samples inside (outside the analysed intervals)"
            continue
        cycles.append(cycle)
        used.append(c)
    if not cycles:
        reasons = sorted(set(dropped.values()))
        raise InputError(f"no usable cycle ({'; '.join(reasons)})", obj="cycles")
    used_idx = np.asarray(used, dtype=np.int64)
    return CycleData(
        data=np.stack(cycles),
        starts=starts[used_idx],
        stops=stops[used_idx],
        phase_starts=None if phase_starts is None else phase_starts[used_idx],
        points=per_phase,
        names=names,
        used=used_idx,
        dropped=dropped,
    )


def fwhm(pattern: Any, *, subtract_min: bool = True) -> np.ndarray | int:
    """Full width at half maximum: the points of a pattern above half its maximum.

    Parameters
    ----------
    pattern
        (n_points,) or (n_points, n_channels), points along the first axis.
    subtract_min
        Subtract the pattern's minimum first (musclesyneRgies's default).

    Returns
    -------
    int or ndarray of int (n_channels,)
        Points strictly above ``0.5 * max`` of the (min-subtracted) pattern; 0 for a pattern
        that is zero everywhere.
    """
    x = np.asarray(pattern, dtype=float)
    one = x.ndim == 1
    x = x[:, None] if one else x
    if subtract_min:
        x = x - x.min(axis=0)
    top = x.max(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        above = (x / np.where(top > 0, top, np.nan)) > 0.5
    counts = above.sum(axis=0)
    return int(counts[0]) if one else counts


def center_of_activity(pattern: Any) -> np.ndarray | float:
    """Centre of activity on the circular cycle, in points (``[0, n_points)``).

    Parameters
    ----------
    pattern
        (n_points,) or (n_points, n_channels), points along the first axis, non-negative.

    Returns
    -------
    float or ndarray (n_channels,)
        ``angle / (2 pi) * n_points`` with ``angle`` the direction of ``sum_i x_i (cos a_i,
        sin a_i)``, ``a_i = 2 pi i / (n_points - 1)`` (see the module docstring); NaN for a
        pattern summing to the zero vector.
    """
    x = np.asarray(pattern, dtype=float)
    one = x.ndim == 1
    x = x[:, None] if one else x
    n = x.shape[0]
    if n < 2:
        raise InputError(f"needs at least 2 points, got {n}", obj="pattern")
    angles = 2 * np.pi * np.arange(n) / (n - 1)
    a = np.cos(angles) @ x
    b = np.sin(angles) @ x
    theta = np.mod(np.arctan2(b, a), 2 * np.pi)
    coa = np.where((a == 0) & (b == 0), np.nan, theta / (2 * np.pi) * n)
    return float(coa[0]) if one else coa


def _circular_mean(values: np.ndarray, period: float) -> np.ndarray:
    """Circular mean over axis 0 of values on ``[0, period)`` (NaN ignored)."""
    angles = 2 * np.pi * np.asarray(values, dtype=float) / period
    c = np.nanmean(np.cos(angles), axis=0)
    s = np.nanmean(np.sin(angles), axis=0)
    return np.mod(np.arctan2(s, c), 2 * np.pi) / (2 * np.pi) * period


@dataclass
class CycleMetrics:
    """FWHM and centre of activity of each channel (synergy), per cycle and summarised.

    Attributes
    ----------
    fwhm, coa
        (n_cycles, n_channels): width (points) and centre (points) of each cycle's pattern.
    n_points
        Points per cycle.
    names
        One name per channel.
    fwhm_of_mean, coa_of_mean
        (n_channels,) the same measures of the cycle-averaged pattern.
    points
        Points of each phase of the normalisation.
    """

    fwhm: np.ndarray
    coa: np.ndarray
    n_points: int
    names: list[str]
    fwhm_of_mean: np.ndarray
    coa_of_mean: np.ndarray
    points: tuple[int, ...] = ()

    @property
    def fwhm_mean(self) -> np.ndarray:
        """(n_channels,) mean FWHM over cycles, points."""
        return self.fwhm.mean(axis=0)

    @property
    def coa_mean(self) -> np.ndarray:
        """(n_channels,) circular mean of the per-cycle CoA, points."""
        return _circular_mean(self.coa, self.n_points)

    def record(self) -> dict[str, Any]:
        """JSON-able: per channel mean FWHM and CoA (points and % of the cycle), per cycle."""
        pct = 100.0 / self.n_points
        return {
            "n_points": self.n_points,
            "points": list(self.points) or [self.n_points],
            "n_cycles": int(self.fwhm.shape[0]),
            "names": list(self.names),
            "fwhm_points": [round(float(v), 3) for v in self.fwhm_mean],
            "fwhm_percent": [round(float(v) * pct, 2) for v in self.fwhm_mean],
            "coa_points": [round(float(v), 3) for v in self.coa_mean],
            "coa_percent": [round(float(v) * pct, 2) for v in self.coa_mean],
            "fwhm_per_cycle": self.fwhm.astype(int).tolist(),
            "coa_per_cycle": np.round(self.coa, 3).tolist(),
        }

    def to_frame(self):
        """pandas DataFrame, one row per channel: FWHM and CoA in points and % of cycle."""
        import pandas as pd

        pct = 100.0 / self.n_points
        return pd.DataFrame(
            {
                "fwhm_points": self.fwhm_mean,
                "fwhm_percent": self.fwhm_mean * pct,
                "coa_points": self.coa_mean,
                "coa_percent": self.coa_mean * pct,
            },
            index=pd.Index(self.names, name="channel"),
        )


def activation_metrics(cycles: CycleData, *, subtract_min: bool = True) -> CycleMetrics:
    """FWHM and centre of activity of every channel in every cycle (see the module docstring).

    Parameters
    ----------
    cycles
        From :func:`normalize_cycles` (e.g. of synergy activations).
    subtract_min
        Subtract each pattern's minimum before the FWHM.
    """
    data = cycles.data
    widths = np.stack([np.atleast_1d(fwhm(c, subtract_min=subtract_min)) for c in data])
    centres = np.stack([np.atleast_1d(center_of_activity(c)) for c in data])
    mean = cycles.mean
    return CycleMetrics(
        fwhm=widths,
        coa=centres,
        n_points=cycles.n_points,
        names=list(cycles.names),
        fwhm_of_mean=np.atleast_1d(fwhm(mean, subtract_min=subtract_min)),
        coa_of_mean=np.atleast_1d(center_of_activity(mean)),
        points=tuple(cycles.points),
    )
