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
            del block  # free it before the next chunk is read
        c0 = c1


def _offset_coefficients(
    offsets: list[np.ndarray], coefs: list[np.ndarray], n_out: int
) -> tuple[np.ndarray, np.ndarray]:
    """Merge (offset, coefficient column) pairs into distinct offsets and a (n_out, K) matrix."""
    if not offsets:
        return np.zeros(0, dtype=np.int64), np.zeros((n_out, 0))
    all_off = np.concatenate(offsets)
    all_coef = np.concatenate(coefs, axis=1)
    uniq, inverse = np.unique(all_off, return_inverse=True)
    mat = np.zeros((n_out, len(uniq)))
    np.add.at(mat.T, inverse, all_coef.T)
    return uniq, mat


def _cumsum_rows(a: np.ndarray, out: np.ndarray, block: int = 256) -> None:
    """``out[:] = cumsum(a, axis=0)`` in float64, for 2-D C-ordered ``a``.

    NumPy's cumsum down the rows of a (rows, width) array runs at a fraction of memory
    speed; summing within blocks of rows (inner axis contiguous) and then adding the running
    block totals is 2-3x faster and gives the same sums up to rounding.
    """
    n, width = a.shape
    full = (n // block) * block
    if full:
        view = out[:full].reshape(-1, block, width)
        np.cumsum(a[:full].reshape(-1, block, width), axis=1, dtype=float, out=view)
        totals = np.cumsum(view[:, -1, :], axis=0)
        view[1:] += totals[:-1, None, :]
    if full < n:
        np.cumsum(a[full:], axis=0, dtype=float, out=out[full:])
        if full:
            out[full:] += out[full - 1]


def _comb_cumsum(cs: np.ndarray, step: int) -> np.ndarray:
    """``cc[t] = cs[t] + cs[t - step] + cs[t - 2 step] + ...`` (down to index 0)."""
    n, width = cs.shape
    pad = (-n) % step
    padded = np.concatenate([cs, np.zeros((pad, width))]) if pad else cs
    flat = padded.reshape(-1, step * width)
    cc = np.empty_like(flat)
    _cumsum_rows(flat, cc)
    return cc.reshape(-1, width)[:n]


def box_stats(
    data: Any,
    starts: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    weights: np.ndarray,
    *,
    comb: tuple[int, int] | None = None,
    comb_lo: np.ndarray | None = None,
    comb_hi: np.ndarray | None = None,
    comb_weights: np.ndarray | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    max_elements: int = 2**21,
) -> np.ndarray:
    """Linear combinations of per-spike box means, optionally summed over a comb of shifts.

    For spike ``i`` and box ``b``, the box mean is ``mean(data[s_i + lo[b] : s_i + hi[b]])``
    per muscle. The result is ``sum_b weights[o, b] * boxmean[i, b]`` plus, with
    ``comb=(step, n)``, ``sum_c comb_weights[o, c] * sum_{j=-n..n} combmean[i, c, j]`` where
    ``combmean`` is the mean of box ``[comb_lo[c], comb_hi[c])`` shifted by ``j * step``.

    Box sums are differences of cumulative sums (2 lookups per box, whatever its length); comb
    sums are differences of a cumulative sum taken every ``step`` samples of that cumulative
    sum (4 lookups per comb, whatever ``n``), computed per chunk so that magnitudes, and so
    rounding errors, stay small (relative ~1e-9 at worst).

    Parameters
    ----------
    data
        EMG (n_times, n_muscles), ndarray or chunk-readable array-like.
    starts
        Sorted reference samples (n_spikes,), int64; every box (and shifted box) must lie
        inside ``data``.
    lo, hi
        Box bounds relative to ``starts`` (n_boxes,), ``hi > lo``.
    weights
        (n_out, n_boxes).
    comb, comb_lo, comb_hi, comb_weights
        Optional ``(step, n)`` and the comb boxes (n_combs,) with weights (n_out, n_combs).
    chunk_bytes
        About how much EMG (as float64) to hold at once.
    max_elements
        Size of the per-batch gather.

    Returns
    -------
    ndarray (n_spikes, n_out, n_muscles), float64.
    """
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    weights = np.asarray(weights, dtype=float)
    n_out = weights.shape[0]
    n_times, n_muscles = int(data.shape[0]), int(data.shape[1])
    out = np.empty((len(starts), n_out, n_muscles))
    if len(starts) == 0:
        return out
    per_box = weights / (hi - lo)
    off_a, coef_a = _offset_coefficients([hi, lo], [per_box, -per_box], n_out)
    off_c = np.zeros(0, dtype=np.int64)
    coef_c = np.zeros((n_out, 0))
    step = 1
    if comb is not None:
        step, n = int(comb[0]), int(comb[1])
        c_lo = np.asarray(comb_lo, dtype=np.int64)
        c_hi = np.asarray(comb_hi, dtype=np.int64)
        per_comb = np.asarray(comb_weights, dtype=float) / (c_hi - c_lo)
        up, down = n * step, (n + 1) * step
        off_c, coef_c = _offset_coefficients(
            [c_hi + up, c_hi - down, c_lo + up, c_lo - down],
            [per_comb, -per_comb, -per_comb, per_comb],
            n_out,
        )
    # samples needed: the boxes and the shifted boxes (the comb's lowest lookup is one step
    # below its data and reads a zero row)
    needed = [off_a] if comb is None else [off_a, off_c[[0, -1]] + [step, 0]]
    every = np.concatenate(needed)
    span_lo, span_hi = int(every.min()), int(every.max())
    rows = _rows_per_chunk(np.empty((0, n_muscles)), span_hi - span_lo, chunk_bytes // 2)
    batch = max(1, max_elements // ((len(off_a) + len(off_c)) * n_muscles))
    first = 0
    while first < len(starts):
        c0 = int(starts[first])
        last = int(np.searchsorted(starts, c0 + rows, side="left"))
        last = max(last, first + 1)
        # cs[k] = sum of data[r0 : r0 + k]; lookups cs[s - r0 + offset]
        r0 = max(0, c0 + span_lo)
        r1 = min(n_times, int(starts[last - 1]) + span_hi)
        cs = np.zeros((r1 - r0 + 1, n_muscles))
        _cumsum_rows(np.asarray(data[r0:r1]), cs[1:])
        cc = None
        if len(off_c):
            cc = np.concatenate([np.zeros((step, n_muscles)), _comb_cumsum(cs, step)])
        for b0 in range(first, last, batch):
            b1 = min(b0 + batch, last)
            rel = starts[b0:b1, None] - r0
            # (n, n_offsets, n_muscles) cumulative sums, combined per output
            res = np.matmul(coef_a, cs[rel + off_a])
            if cc is not None:
                res += np.matmul(coef_c, cc[rel + off_c + step])
            out[b0:b1] = res
        del cs, cc
        first = last
    return out
