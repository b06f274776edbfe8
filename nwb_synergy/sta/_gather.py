"""The gather engine: sums of EMG windows at many spikes, in bounded memory.

Two ways to read the EMG:

* an in-memory ``np.ndarray`` is read in place (no copy);
* any other array-like with ``shape`` and row slicing (an h5py or Zarr dataset, a lazily read
  NWB series) is read in ordered chunks of about ``chunk_bytes``, each chunk once, with just
  enough overlap for the windows that start in it. Several jobs (units, window lengths) share
  the same pass over the data.

The sum over spikes of ``data[s : s + L]`` is accumulated block by block: each window is one
contiguous (L, n_muscles) block of a C-ordered array, so adding it is a single vectorised
operation. Measured on 2,000 spikes x 16 muscles x 400 lags this beats index-array gathers
(``np.take``, fancy indexing, stride tricks) by 3-7x, because no (n_spikes, L, n_muscles)
temporary is ever written.

Per-spike means over boxes of samples (for the effect statistics) use chunked cumulative sums:
two lookups per box, whatever its length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

CHUNK_BYTES = 64 * 2**20


@dataclass
class GatherJob:
    """Windows of one length at sorted start samples, and where to put the results.

    Attributes
    ----------
    starts
        First sample of each window, sorted ascending, int64 (n_spikes,).
    length
        Samples per window.
    sweeps
        Optional output (n_spikes, length, n_muscles) filled in order of ``starts``
        (an ndarray or a ``np.memmap``), or None.
    sums
        Filled by :func:`run_jobs`: sum over the windows, (length, n_muscles) float64.
    """

    starts: np.ndarray
    length: int
    sweeps: Any | None = None
    sums: np.ndarray | None = field(default=None, repr=False)


def _rows_per_chunk(data: Any, min_rows: int, chunk_bytes: int) -> int:
    itemsize = np.dtype(getattr(data, "dtype", np.float64)).itemsize
    rows = chunk_bytes // max(1, itemsize * int(data.shape[1]))
    return int(max(rows, 4 * min_rows, 1))


def _accumulate(block: np.ndarray, rel: np.ndarray, job: GatherJob, first: int) -> None:
    length = job.length
    acc = job.sums
    sweeps = job.sweeps
    if sweeps is None:
        for s in rel.tolist():
            acc += block[s : s + length]
    else:
        for j, s in enumerate(rel.tolist(), start=first):
            window = block[s : s + length]
            sweeps[j] = window
            acc += window


def run_jobs(data: Any, jobs: Sequence[GatherJob], *, chunk_bytes: int = CHUNK_BYTES) -> None:
    """Fill ``job.sums`` (and ``job.sweeps``) for every job, reading ``data`` once.

    Every window must lie inside ``data`` (the caller checks).
    """
    n_muscles = int(data.shape[1])
    for job in jobs:
        job.sums = np.zeros((job.length, n_muscles))
    if not jobs:
        return
    if isinstance(data, np.ndarray):
        for job in jobs:
            _accumulate(data, job.starts, job, 0)
        return
    n_times = int(data.shape[0])
    max_len = max(job.length for job in jobs)
    rows = _rows_per_chunk(data, max_len, chunk_bytes)
    cursor = [0] * len(jobs)
    c0 = 0
    while c0 < n_times:
        c1 = min(c0 + rows, n_times)
        spans = []
        for i, job in enumerate(jobs):
            stop = int(np.searchsorted(job.starts, c1, side="left"))
            spans.append((cursor[i], stop))
        if any(b > a for a, b in spans):
            last = max(
                int(job.starts[b - 1]) + job.length
                for job, (a, b) in zip(jobs, spans, strict=True)
                if b > a
            )
            block = np.asarray(data[c0 : min(last, n_times)])
            for i, (job, (a, b)) in enumerate(zip(jobs, spans, strict=True)):
                if b > a:
                    _accumulate(block, job.starts[a:b] - c0, job, a)
                cursor[i] = b
        c0 = c1


def box_stats(
    data: Any,
    starts: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    weights: np.ndarray,
    *,
    chunk_bytes: int = CHUNK_BYTES,
    max_elements: int = 2**21,
) -> np.ndarray:
    """Linear combinations of per-spike box means.

    For spike ``i`` and box ``b``, the box mean is ``mean(data[s_i + lo[b] : s_i + hi[b]])``
    per muscle; the result is ``sum_b weights[o, b] * boxmean[i, b]``.

    Parameters
    ----------
    data
        EMG (n_times, n_muscles), ndarray or chunk-readable array-like.
    starts
        Sorted reference samples (n_spikes,), int64; every box must lie inside ``data``.
    lo, hi
        Box bounds relative to ``starts`` (n_boxes,), ``hi > lo``.
    weights
        (n_out, n_boxes).

    Returns
    -------
    ndarray (n_spikes, n_out, n_muscles), float64.
    """
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    weights = np.asarray(weights, dtype=float)
    n_times, n_muscles = int(data.shape[0]), int(data.shape[1])
    out = np.empty((len(starts), weights.shape[0], n_muscles))
    if len(starts) == 0:
        return out
    inv_len = 1.0 / (hi - lo)
    w_hi = weights * inv_len
    span_lo, span_hi = int(lo.min()), int(hi.max())
    rows = _rows_per_chunk(data, span_hi - span_lo, chunk_bytes)
    batch = max(1, max_elements // (len(lo) * n_muscles))
    first = 0
    while first < len(starts):
        c0 = int(starts[first])
        last = int(np.searchsorted(starts, c0 + rows, side="left"))
        last = max(last, first + 1)
        r0 = max(0, c0 + span_lo)
        r1 = min(n_times, int(starts[last - 1]) + span_hi)
        block = np.asarray(data[r0:r1], dtype=float)
        cs = np.zeros((r1 - r0 + 1, n_muscles))
        np.cumsum(block, axis=0, out=cs[1:])
        del block
        for b0 in range(first, last, batch):
            b1 = min(b0 + batch, last)
            rel = starts[b0:b1, None] - r0
            # (n, n_boxes, n_muscles) box sums, then the linear combination
            box = cs[rel + hi] - cs[rel + lo]
            out[b0:b1] = np.einsum("ob,nbm->nom", w_hi, box)
        first = last
    return out
