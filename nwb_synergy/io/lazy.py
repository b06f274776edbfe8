"""A lazily scaled view of raw EMG samples stored in NWB (h5py or NumPy datasets)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def shape_of(data) -> tuple[int, ...]:
    shape = getattr(data, "shape", None)
    if shape is None:
        shape = np.shape(data)
    return tuple(int(s) for s in shape)


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
        self._n_times = shape_of(self.datasets[0])[0]

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
            raw = block.reshape(block.shape[0], -1)[:, 0] if col is None else block[:, col]
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
