"""The small container that carries EMG between the pipeline stages.

Arrays are time first, as in NWB: ``data`` has shape (n_times, n_muscles).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class EMGSource:
    """Where an EMG matrix came from in an NWB file (for provenance and references).

    Attributes
    ----------
    file
        Path of the NWB file, or None for in-memory objects.
    series_names
        Path of each source series inside the file (e.g. ``acquisition/EMG``); one entry for a
        2-D series or an ElectricalSeries, one per muscle for per-muscle series.
    channels
        For each muscle, the column of its source series (0 for 1-D series).
    electrodes
        Electrode-table row per muscle when the source is an ElectricalSeries, else None.
    series
        The pynwb objects themselves, one per muscle (same object repeated for a 2-D series),
        when the file is still open; None otherwise.
    """

    file: str | None = None
    series_names: tuple[str, ...] = ()
    channels: tuple[int, ...] = ()
    electrodes: tuple[int, ...] | None = None
    series: tuple[Any, ...] | None = field(default=None, compare=False, repr=False)


@dataclass
class EMG:
    """EMG samples with their sampling rate, start time and muscle names.

    Attributes
    ----------
    data
        Array-like of shape (n_times, n_muscles): a NumPy array, or an h5py dataset for
        recordings larger than memory. Volts for raw EMG; arbitrary units after normalisation.
    rate
        Sampling rate in Hz.
    t_start
        Time of the first sample in seconds (session time).
    muscle_names
        One name per column of ``data``.
    unit
        Unit of ``data`` ("V" for raw EMG, "a.u." after normalisation).
    source
        Where the data came from, or None.
    history
        Processing steps applied so far, each a dict of step name and parameters.
    """

    data: Any
    rate: float
    t_start: float = 0.0
    muscle_names: list[str] = field(default_factory=list)
    unit: str = "V"
    source: EMGSource | None = None
    history: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        if getattr(self.data, "ndim", None) == 1:
            self.data = np.asarray(self.data)[:, None]
        if getattr(self.data, "ndim", None) != 2:
            raise InputError(
                f"EMG data must be 2-D (n_times, n_muscles), got {self.data!r}", obj="EMG.data"
            )
        dtype = np.dtype(getattr(self.data, "dtype", np.float64))
        if dtype.kind not in "iuf":
            what = "complex numbers" if dtype.kind == "c" else "not real numbers"
            raise InputError(
                f"EMG samples must be real numbers, got {what} ({dtype})", obj="EMG.data"
            )
        if self.n_muscles == 0:
            raise InputError(f"EMG data has no channels (shape {self.data.shape})", obj="EMG.data")
        self.rate = float(self.rate)
        if not np.isfinite(self.rate) or self.rate <= 0:
            raise InputError(
                f"EMG rate must be a positive number of Hz, got {self.rate}", obj="EMG.rate"
            )
        self.t_start = float(self.t_start)
        if not np.isfinite(self.t_start):
            raise InputError(
                f"EMG start time must be a number of seconds, got {self.t_start}",
                obj="EMG.t_start",
            )
        if not self.muscle_names:
            self.muscle_names = [f"muscle_{i}" for i in range(self.n_muscles)]
        self.muscle_names = [str(m) for m in self.muscle_names]
        if len(self.muscle_names) != self.n_muscles:
            raise InputError(
                f"{len(self.muscle_names)} muscle names for {self.n_muscles} EMG channels",
                obj="EMG.muscle_names",
            )
        repeated = sorted({m for m in self.muscle_names if self.muscle_names.count(m) > 1})
        if repeated:
            raise InputError(
                f"muscle names are not unique: {repeated} repeated", obj="EMG.muscle_names"
            )

    @property
    def n_times(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_muscles(self) -> int:
        return int(self.data.shape[1])

    @property
    def duration(self) -> float:
        """Duration in seconds (n_times / rate)."""
        return self.n_times / self.rate

    @property
    def times(self) -> np.ndarray:
        """Sample times in seconds, shape (n_times,)."""
        return self.t_start + np.arange(self.n_times) / self.rate

    def to_numpy(self) -> np.ndarray:
        """The samples as an in-memory float64 array (reads an h5py dataset whole)."""
        return np.asarray(self.data[()] if hasattr(self.data, "id") else self.data, dtype=float)

    def replace(self, **changes: Any) -> EMG:
        """A copy with some fields changed (``history`` is copied, not shared)."""
        changes.setdefault("history", list(self.history))
        return replace(self, **changes)
