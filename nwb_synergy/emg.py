"""EMG conditioning: high-pass, rectify, low-pass (envelope), resample, baseline, normalise.

The default chain is the Seki-group convention (musclesyneRgies's is the same up to the
normalisation): a 4th-order Butterworth high-pass at 50 Hz, full-wave rectification, a 4th-order
Butterworth low-pass at 20 Hz, resampling to 100 Hz, each channel's minimum subtracted and each
channel divided by its maximum. Both filters are zero-phase (forward-backward,
:func:`scipy.signal.sosfiltfilt`), so the effective order is doubled and the gain at the cutoff
is -6 dB; the cutoffs given are those of the single-pass design.

Edge handling, and why chunked equals whole
-------------------------------------------
Every filter is applied with SciPy's own edge handling, stated explicitly: odd extension of
``padlen`` samples (SciPy's default length for that filter) and steady-state initial
conditions. The whole-signal result is therefore exactly ``sosfiltfilt`` with its defaults, and
it depends on the data near each end only through a transient that decays like the filter's
impulse response. Long recordings (an h5py dataset, or any lazy array with ``shape`` and
slicing) are processed in chunks: each chunk is read with a margin on both sides as long as the
combined settling time of the two filters (the number of samples after which their impulse
responses stay below 1e-13 of their peak), processed by the same code as the whole signal, and
only its centre is kept. Chunks that reach the start or end of the recording include the true
edge, so they see exactly the padding the whole-signal filter sees. The kept samples then equal
the whole-signal result to about 1e-13 relative, and memory is bounded by the chunk size plus
two margins (plus the output at the new rate).

Resampling
----------
The 20 Hz low-pass is the anti-aliasing filter. When the old rate is an integer multiple of the
new one (1 kHz, 2 kHz, 10 kHz ... to 100 Hz), the envelope is decimated: sample ``j`` of the
output is sample ``j * q`` of the input, so ``t_start`` is unchanged and no further filtering
distorts the envelope. Otherwise the low-passed envelope (at least ten times oversampled by
then) is interpolated at the new sample times with a cubic spline (not-a-knot), whose influence
is local to a few dozen samples, so chunks still agree with the whole. The low-pass cutoff must
be below the new Nyquist frequency.

Raw EMG or envelope: the chain chosen from the data
---------------------------------------------------
Labs also store EMG already rectified and smoothed (envelopes, often baseline-subtracted, so
with negative values). High-passing such a signal at 50 Hz keeps 1-3% of it, and the
"envelope" then made of that residue is unrelated to the real one. With
``chain="auto"`` (the pipeline's default; ``condition_emg``'s own default ``"raw"`` applies
the keywords as given), :func:`choose_conditioning` looks at the EMG first
(:func:`inspect_emg`: the share of its power above 20 Hz, its rate, its sign, its
smoothness) and picks:

* the **raw chain** (high-pass, rectify, low-pass, resample) for broadband signals that change
  sign, raw EMG: surface and intramuscular EMG carry most of their power at 20-500 Hz;
* the **envelope chain** (no high-pass, no rectification; low-pass only to protect a
  resampling from aliasing or when the signal holds power above its cutoff; resampling only
  down, never up; then the minimum subtracted, which shifts a baseline-subtracted envelope to
  non-negative values) for signals sampled below 200 Hz, signals with less than half of their
  power above 20 Hz, and non-negative broadband signals (rectified, not yet smoothed EMG).

The choice and its reason are kept (:class:`ConditioningChoice`): logged, recorded in the
returned EMG's ``history`` before the conditioning steps (so in the provenance of every
result) and stated in the pipeline's summary.

Segments
--------
:func:`condition_segments` conditions the samples of some intervals only (trials): each
segment is filtered alone, resampled on the common output grid, and the segments are
concatenated; the minimum and the normalisation are taken over all of them together.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.signal import butter, sosfilt, sosfiltfilt, welch

from .errors import InputError
from .io.pynapple import emg_from_pynapple, is_pynapple
from .signals import EMG

log = logging.getLogger("nwb_synergy")

_SETTLE_TOL = 1e-13
_SPLINE_MARGIN = 40  # samples: the not-a-knot spline's end effect decays as 0.268**n
_DEFAULT_CHUNK = 1 << 20  # samples per chunk for lazy (non-NumPy) data when chunk_size=None
NORMALIZATIONS = ("max", "mean", "unit_variance")


# ----------------------------------------------------------------------------------------------
# input handling
# ----------------------------------------------------------------------------------------------
def _as_emg(emg: EMG | Any, rate: float | None) -> EMG:
    if isinstance(emg, EMG):
        if rate is not None and float(rate) != emg.rate:
            raise InputError(
                f"rate={rate} given but the EMG says {emg.rate} Hz; leave rate out", obj="rate"
            )
        return emg
    if is_pynapple(emg):
        return emg_from_pynapple(emg, rate)
    if rate is None:
        raise InputError(
            "an array was given without its sampling rate; pass rate=... (Hz) or an EMG",
            obj="rate",
        )
    data = emg if hasattr(emg, "shape") and hasattr(emg, "__getitem__") else np.asarray(emg)
    try:
        return EMG(data=data, rate=rate)
    except ValueError as err:
        raise InputError(str(err), obj="emg") from None


def _where(emg: EMG) -> tuple[str | None, str]:
    if emg.source is not None:
        name = ", ".join(dict.fromkeys(emg.source.series_names)) or "emg"
        return emg.source.file, name
    return None, "emg"


def _error(emg: EMG, problem: str) -> InputError:
    file, name = _where(emg)
    return InputError(problem, file=file, obj=name)


def _is_in_memory(data: Any) -> bool:
    return isinstance(data, np.ndarray)


def _read(data: Any, start: int, stop: int) -> np.ndarray:
    return np.asarray(data[start:stop], dtype=float)


def _check_block(emg: EMG, block: np.ndarray, offset: int) -> None:
    bad = ~np.isfinite(block)
    if bad.any():
        cols = np.flatnonzero(bad.any(axis=0))
        first = offset + int(np.flatnonzero(bad.any(axis=1))[0])
        names = [emg.muscle_names[c] for c in cols]
        raise _error(
            emg,
            f"NaN or infinite samples in muscle(s) {names} (first at sample {first}); "
            "interpolate or cut them before conditioning",
        )


# ----------------------------------------------------------------------------------------------
# filters
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Filter:
    kind: str  # "highpass" | "lowpass"
    cutoff: float
    order: int
    rate: float
    sos: np.ndarray
    padlen: int
    settle: int
    min_len: int

    def apply(self, x: np.ndarray) -> np.ndarray:
        return sosfiltfilt(self.sos, x, axis=0, padtype="odd", padlen=self.padlen)

    def record(self) -> dict:
        return {
            "step": self.kind,
            "filter": "butterworth",
            "cutoff_hz": self.cutoff,
            "order": self.order,
            "zero_phase": True,
            "padtype": "odd",
            "padlen": self.padlen,
        }


def _settling_samples(sos: np.ndarray, tol: float = _SETTLE_TOL) -> int:
    """Samples after which the impulse response stays below ``tol`` times its peak."""
    block = 4096
    zi = np.zeros((sos.shape[0], 2))
    x = np.zeros(block)
    x[0] = 1.0
    peak = 0.0
    last_big = 0
    n = 0
    for _ in range(10_000):
        y, zi = sosfilt(sos, x, zi=zi)
        peak = max(peak, float(np.max(np.abs(y))))
        big = np.flatnonzero(np.abs(y) > tol * peak)
        if big.size:
            last_big = n + int(big[-1])
        n += block
        x = np.zeros(block)
        if n - last_big > block and np.max(np.abs(zi)) < tol * peak:
            break
    return last_big + 1


def _make_filter(emg: EMG, kind: str, cutoff: float, order: int) -> _Filter:
    nyquist = emg.rate / 2.0
    if not (isinstance(cutoff, (int, float)) and np.isfinite(cutoff) and cutoff > 0):
        raise _error(emg, f"{kind} cutoff must be a positive number of Hz, got {cutoff!r}")
    if cutoff >= nyquist:
        raise _error(
            emg,
            f"{kind} cutoff {cutoff} Hz is not below the Nyquist frequency {nyquist} Hz "
            f"of EMG sampled at {emg.rate} Hz",
        )
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise _error(emg, f"{kind} order must be a positive integer, got {order!r}")
    sos = butter(int(order), cutoff, btype=kind, fs=emg.rate, output="sos")
    n_zero = min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    padlen = 3 * (2 * len(sos) + 1 - n_zero)  # SciPy's default for sosfiltfilt
    return _Filter(
        kind,
        float(cutoff),
        int(order),
        emg.rate,
        sos,
        padlen,
        _settling_samples(sos),
        _settling_samples(sos, 1e-3),
    )


# ----------------------------------------------------------------------------------------------
# resampling plan
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Resampler:
    old_rate: float
    new_rate: float
    factor: int | None  # integer decimation factor, or None for spline interpolation

    def n_out(self, n_in: int) -> int:
        if self.factor is not None:
            return (n_in - 1) // self.factor + 1
        return int(np.floor((n_in - 1) * self.new_rate / self.old_rate + 1e-9)) + 1

    def first_out_at_or_after(self, i: int) -> int:
        """Index of the first output sample at or after input sample ``i``."""
        if self.factor is not None:
            return -(-i // self.factor)
        return int(np.ceil(i * self.new_rate / self.old_rate - 1e-9))

    def apply(self, block: np.ndarray, start: int, out_lo: int, out_hi: int) -> np.ndarray:
        """Output samples out_lo..out_hi-1 from a block whose first sample is input ``start``."""
        if self.factor is not None:
            idx = np.arange(out_lo, out_hi) * self.factor - start
            return block[idx]
        t_in = (start + np.arange(block.shape[0])) / self.old_rate
        t_out = np.arange(out_lo, out_hi) / self.new_rate
        return CubicSpline(t_in, block, axis=0, bc_type="not-a-knot")(t_out)

    def record(self) -> dict:
        return {
            "step": "resample",
            "rate_hz": self.new_rate,
            "from_rate_hz": self.old_rate,
            "method": "decimate" if self.factor is not None else "cubic_spline",
            "factor": self.factor,
        }

    @property
    def margin(self) -> int:
        return 0 if self.factor is not None else _SPLINE_MARGIN


def _make_resampler(
    emg: EMG, rate: float, lowpass: float | None, check_alias: bool = True
) -> _Resampler:
    if not (isinstance(rate, (int, float)) and np.isfinite(rate) and rate > 0):
        raise _error(emg, f"resample rate must be a positive number of Hz, got {rate!r}")
    rate = float(rate)
    if rate < emg.rate and check_alias:
        if lowpass is None:
            raise _error(
                emg,
                f"resampling from {emg.rate} Hz to {rate} Hz needs a low-pass below "
                f"{rate / 2} Hz first (anti-aliasing); set lowpass",
            )
        if lowpass >= rate / 2:
            raise _error(
                emg,
                f"low-pass cutoff {lowpass} Hz is not below the Nyquist frequency {rate / 2} Hz "
                f"of the new rate {rate} Hz (aliasing)",
            )
    ratio = emg.rate / rate
    factor = int(round(ratio)) if abs(ratio - round(ratio)) < 1e-9 * ratio else None
    if factor is not None and factor < 1:
        factor = None
    return _Resampler(emg.rate, rate, factor)


# ----------------------------------------------------------------------------------------------
# chunked driver
# ----------------------------------------------------------------------------------------------
def _blocks(n: int, chunk: int, margin: int, align: int = 1) -> Iterator[tuple[int, int, int, int]]:
    """(read_start, read_stop, keep_start, keep_stop) in input samples; keep_start aligned."""
    chunk = max(int(chunk), align)
    chunk -= chunk % align
    start = 0
    while start < n:
        stop = min(n, start + chunk)
        if n - stop < max(align, 1):  # do not leave a sliver shorter than one step
            stop = n
        lo = max(0, start - margin)
        hi = min(n, stop + margin)
        yield lo, hi, start, stop
        start = stop


def _process_signal(
    emg: EMG,
    steps: list,
    resampler: _Resampler | None,
    chunk_size: int | None,
    out: Any = None,
) -> np.ndarray | Any:
    """Run filter/rectify steps (and the resampler) over the whole signal or chunk by chunk.

    ``steps`` is a list of callables block -> block (same length); the margin is the sum of
    the settling lengths given alongside as ``step.settle`` (0 for rectification).
    """
    n, m = emg.n_times, emg.n_muscles
    filters = [s for s in steps if isinstance(s, _Filter)]
    need = max([f.padlen + 1 for f in filters] + [2])
    longest = max([f.min_len for f in filters] + [0])
    if n < max(need, longest):
        raise _error(
            emg,
            f"too short for the filters: {n} samples, at least {max(need, longest)} needed "
            "(the impulse response of the filters must fit in the recording)",
        )
    n_out = resampler.n_out(n) if resampler is not None else n
    if out is None:
        out = np.empty((n_out, m))
    elif tuple(out.shape) != (n_out, m):
        raise InputError(f"must have shape {(n_out, m)}, got {tuple(out.shape)}", obj="out")
    lo_val = np.full(m, np.inf)
    hi_val = np.full(m, -np.inf)

    def run(block: np.ndarray) -> np.ndarray:
        for step in steps:
            block = step.apply(block) if isinstance(step, _Filter) else step(block)
        return block

    if chunk_size is None and _is_in_memory(emg.data):
        x = np.asarray(emg.data, dtype=float)
        _check_block(emg, x, 0)
        lo_val, hi_val = x.min(axis=0), x.max(axis=0)
        _check_flat(emg, lo_val, hi_val)
        y = run(x)
        if resampler is not None:
            y = resampler.apply(y, 0, 0, n_out)
        out[...] = y
        return out

    chunk = _DEFAULT_CHUNK if chunk_size is None else int(chunk_size)
    if chunk < 1:
        raise InputError(f"must be a positive number of samples, got {chunk_size!r}", obj="chunk")
    margin = sum(getattr(s, "settle", 0) for s in steps)
    margin += resampler.margin if resampler is not None else 0
    align = resampler.factor if resampler is not None and resampler.factor else 1
    for lo, hi, keep_lo, keep_hi in _blocks(n, chunk, margin, align):
        x = _read(emg.data, lo, hi)
        _check_block(emg, x, lo)
        lo_val = np.minimum(lo_val, x[keep_lo - lo : keep_hi - lo].min(axis=0))
        hi_val = np.maximum(hi_val, x[keep_lo - lo : keep_hi - lo].max(axis=0))
        if hi - lo <= need:  # a tiny final block: widen it backwards
            lo = max(0, hi - need - 1)
            x = _read(emg.data, lo, hi)
        y = run(x)
        if resampler is None:
            out[keep_lo:keep_hi] = y[keep_lo - lo : keep_hi - lo]
        else:
            o_lo = resampler.first_out_at_or_after(keep_lo)
            o_hi = n_out if keep_hi == n else resampler.first_out_at_or_after(keep_hi)
            if o_hi > o_lo:
                out[o_lo:o_hi] = resampler.apply(y, lo, o_lo, o_hi)
    _check_flat(emg, lo_val, hi_val)
    return out


class FilteredRows:
    """Rows of filtered EMG computed on demand, for recordings that must not sit in memory.

    ``view[a:b]`` reads the source rows ``a - margin .. b + margin`` (clipped to the
    recording), runs the same filter steps as the whole-signal path on them and returns rows
    ``a .. b``: the chunked driver's rule, so any slice equals the whole-signal result to about
    1e-13 relative. Slices are what the spike-triggered averages read (in ordered chunks);
    integer arrays and ``np.asarray(view)`` work too (the latter computes everything).

    Parameters
    ----------
    emg
        The source EMG (its ``data`` may be lazy, e.g. an h5py dataset).
    steps
        Filter and rectification steps, as in the chunked driver.
    dtype
        dtype of the rows returned (float64; float32 halves the memory of large reads).
    segments
        ``[first, stop)`` sample rows (m, 2), sorted and disjoint, each filtered as if it were
        the whole recording (its own edges padded, nothing read outside it); rows outside
        them are 0. None: the whole recording is one segment.
    """

    def __init__(
        self, emg: EMG, steps: list, dtype: Any = np.float64, segments: np.ndarray | None = None
    ):
        self.emg = emg
        self.steps = list(steps)
        self.margin = sum(getattr(step, "settle", 0) for step in self.steps)
        filters = [step for step in self.steps if isinstance(step, _Filter)]
        self.need = max([f.padlen + 1 for f in filters] + [2])
        self._dtype = np.dtype(dtype)
        self.segments = None if segments is None else np.asarray(segments, dtype=np.int64)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.emg.n_times, self.emg.n_muscles)

    @property
    def ndim(self) -> int:
        return 2

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    def __len__(self) -> int:
        return self.emg.n_times

    def _rows(self, start: int, stop: int) -> np.ndarray:
        if self.segments is None:
            return self._segment_rows(start, stop, 0, self.emg.n_times)
        out = np.zeros((stop - start, self.emg.n_muscles), dtype=self._dtype)
        for first, end in self.segments.tolist():
            a, b = max(start, first), min(stop, end)
            if b > a:
                out[a - start : b - start] = self._segment_rows(a, b, first, end)
        return out

    def _segment_rows(self, start: int, stop: int, first: int, end: int) -> np.ndarray:
        """Rows ``start..stop`` of the segment ``[first, end)`` filtered as a whole."""
        lo, hi = max(first, start - self.margin), min(end, stop + self.margin)
        if hi - lo <= self.need:  # a tiny block: widen it, as the chunked driver does
            lo = max(first, hi - self.need - 1)
            hi = min(end, lo + self.need + 1)
        block = _read(self.emg.data, lo, hi)
        for step in self.steps:
            block = step.apply(block) if isinstance(step, _Filter) else step(block)
        return np.asarray(block[start - lo : stop - lo], dtype=self._dtype)

    def __getitem__(self, key: Any) -> np.ndarray:
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        n = self.emg.n_times
        if isinstance(rows, (int, np.integer)):
            i = int(rows) + (n if rows < 0 else 0)
            return self._rows(i, i + 1)[0][cols]
        if isinstance(rows, slice):
            start, stop, step = rows.indices(n)
            if stop <= start:
                return np.empty((0, self.emg.n_muscles), dtype=self._dtype)[:, cols]
            return self._rows(start, stop)[::step][:, cols]
        idx = np.arange(n)[rows]
        if idx.size == 0:
            return np.empty((0, self.emg.n_muscles), dtype=self._dtype)[:, cols]
        first = int(idx.min())
        return self._rows(first, int(idx.max()) + 1)[idx - first][:, cols]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.empty(self.shape, dtype=self._dtype)
        for start in range(0, self.emg.n_times, _DEFAULT_CHUNK):
            stop = min(self.emg.n_times, start + _DEFAULT_CHUNK)
            out[start:stop] = self._rows(start, stop)
        return out if dtype is None else out.astype(dtype, copy=False)


def _check_flat(emg: EMG, lo: np.ndarray, hi: np.ndarray) -> None:
    flat = np.flatnonzero(hi <= lo)
    if flat.size:
        names = [emg.muscle_names[c] for c in flat]
        raise _error(emg, f"flat channel(s) {names}: every sample has the same value")


def _rectify(block: np.ndarray) -> np.ndarray:
    return np.abs(block)


# ----------------------------------------------------------------------------------------------
# public step functions
# ----------------------------------------------------------------------------------------------
def highpass_rectify(
    emg: EMG | Any,
    *,
    rate: float | None = None,
    cutoff: float = 50.0,
    order: int = 4,
    chunk_size: int | None = None,
    out: Any = None,
    lazy: bool = False,
) -> EMG:
    """Rectified high-passed EMG at the full rate (the input of spike-triggered averages).

    Parameters
    ----------
    emg
        :class:`~nwb_synergy.EMG`, or an array-like (n_times, n_muscles) with ``rate``.
    rate
        Sampling rate in Hz when ``emg`` is an array.
    cutoff, order
        Butterworth high-pass (zero-phase).
    chunk_size
        Process this many samples at a time (see the module docstring); None: whole signal
        for NumPy data, chunks of 2**20 samples for lazy data (h5py).
    out
        Optional array-like (n_times, n_muscles) to write into (e.g. an h5py dataset), for
        recordings larger than memory.
    lazy
        Compute nothing now: ``data`` is a :class:`FilteredRows` that filters the rows it is
        asked for (with margins, the same numbers to about 1e-13), so a long recording read
        lazily is never held in memory whole. The recording is still checked for NaN and flat
        channels only when rows are read.

    Returns
    -------
    EMG
        Same rate and times, ``|highpass(emg)|``, history extended.
    """
    emg = _as_emg(emg, rate)
    hp = _make_filter(emg, "highpass", cutoff, order)
    history = [*emg.history, hp.record(), {"step": "rectify", "kind": "full-wave"}]
    if lazy:
        if emg.n_times <= hp.padlen:
            raise _error(emg, f"too short for the filters: {emg.n_times} samples")
        return emg.replace(data=FilteredRows(emg, [hp, _rectify]), history=history)
    data = _process_signal(emg, [hp, _rectify], None, chunk_size, out)
    return emg.replace(data=data, history=history)


def highpass(
    emg: EMG | Any, *, rate: float | None = None, cutoff: float = 50.0, order: int = 4
) -> EMG:
    """Zero-phase Butterworth high-pass of every channel (whole signal in memory)."""
    emg = _as_emg(emg, rate)
    f = _make_filter(emg, "highpass", cutoff, order)
    data = _process_signal(emg, [f], None, None)
    return emg.replace(data=data, history=[*emg.history, f.record()])


def lowpass(
    emg: EMG | Any, *, rate: float | None = None, cutoff: float = 20.0, order: int = 4
) -> EMG:
    """Zero-phase Butterworth low-pass of every channel (whole signal in memory)."""
    emg = _as_emg(emg, rate)
    f = _make_filter(emg, "lowpass", cutoff, order)
    data = _process_signal(emg, [f], None, None)
    return emg.replace(data=data, history=[*emg.history, f.record()])


def rectify(emg: EMG | Any, *, rate: float | None = None) -> EMG:
    """Full-wave rectification, ``|x|``."""
    emg = _as_emg(emg, rate)
    return emg.replace(
        data=np.abs(emg.to_numpy()),
        history=[*emg.history, {"step": "rectify", "kind": "full-wave"}],
    )


def resample(
    emg: EMG | Any, new_rate: float = 100.0, *, rate: float | None = None, lowpass: float = 0.0
) -> EMG:
    """Resample an envelope that is already low-passed below the new Nyquist frequency.

    Decimation when the old rate is an integer multiple of ``new_rate``, cubic-spline
    interpolation otherwise (see the module docstring). ``lowpass`` is the cutoff already
    applied (checked against the new Nyquist frequency when down-sampling; 0 to skip).
    """
    emg = _as_emg(emg, rate)
    r = _make_resampler(emg, new_rate, lowpass if lowpass else None, check_alias=bool(lowpass))
    if emg.n_times < 2:
        raise _error(emg, "too short to resample: fewer than 2 samples")
    x = emg.to_numpy()
    data = r.apply(x, 0, 0, r.n_out(emg.n_times))
    return emg.replace(data=data, rate=r.new_rate, history=[*emg.history, r.record()])


def subtract_min(emg: EMG | Any, *, rate: float | None = None) -> EMG:
    """Subtract each channel's minimum (so every channel's lowest value is 0)."""
    emg = _as_emg(emg, rate)
    x = emg.to_numpy()
    low = x.min(axis=0)
    return emg.replace(
        data=x - low, history=[*emg.history, {"step": "subtract_min", "min": low.tolist()}]
    )


def normalize(emg: EMG | Any, kind: str = "max", *, rate: float | None = None) -> EMG:
    """Divide each channel by its maximum, mean or standard deviation (unit "a.u.").

    ``"unit_variance"`` divides by the standard deviation without removing the mean, so a
    non-negative envelope stays non-negative.
    """
    emg = _as_emg(emg, rate)
    x = emg.to_numpy()
    scale = _normalizer(emg, x, kind)
    return emg.replace(
        data=x / scale,
        unit="a.u.",
        history=[*emg.history, {"step": "normalize", "kind": kind, "scale": scale.tolist()}],
    )


def _normalizer(emg: EMG, x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "max":
        scale = np.abs(x).max(axis=0)
    elif kind == "mean":
        scale = x.mean(axis=0)
    elif kind == "unit_variance":
        scale = x.std(axis=0)
    else:
        raise InputError(f"must be one of {NORMALIZATIONS} or None, got {kind!r}", obj="normalize")
    bad = np.flatnonzero(~(scale > 0))
    if bad.size:
        names = [emg.muscle_names[c] for c in bad]
        raise _error(emg, f"cannot normalise by {kind}: it is zero in muscle(s) {names}")
    return scale


# ----------------------------------------------------------------------------------------------
# raw EMG or envelope: inspection and choice of the chain
# ----------------------------------------------------------------------------------------------
#: the keyword arguments of :func:`condition_emg` that make a chain, with their defaults
RAW_CHAIN: dict[str, Any] = {
    "highpass": 50.0,
    "highpass_order": 4,
    "rectify": True,
    "lowpass": 20.0,
    "lowpass_order": 4,
    "resample": 100.0,
    "subtract_min": True,
    "normalize": "max",
}
CHAINS = ("auto", "raw", "envelope")
#: raw EMG carries most of its power above this frequency (surface EMG: 20-500 Hz)
EMG_BAND_LOW = 20.0
#: below this rate a signal cannot hold raw EMG
MIN_RAW_RATE = 200.0
#: share of the power above EMG_BAND_LOW under which a signal is taken for an envelope
ENVELOPE_SHARE = 0.5
#: share of power above the low-pass cutoff from which an envelope is low-passed anyway
LOWPASS_NEEDED_SHARE = 0.01
_MAX_MEAN_TO_SD = 5.0  # rectified EMG: mean / SD about 1-3; a raw signal with a DC offset: more


@dataclass
class EMGInspection:
    """What :func:`inspect_emg` measured (medians over muscles unless said otherwise).

    Attributes
    ----------
    rate
        Sampling rate, Hz.
    freqs, psd
        Welch spectrum of the mean-removed samples read: (n_freqs,) Hz and
        (n_freqs, n_muscles).
    negative_share
        (n_muscles,) fraction of the samples below zero.
    mean_to_sd
        (n_muscles,) mean / standard deviation of the samples.
    roughness
        (n_muscles,) SD of the sample-to-sample differences / SD of the samples: about 0.5-1.4
        for raw EMG, near 0 for a smooth envelope.
    n_samples
        Samples per muscle read for the measurements.
    """

    rate: float
    freqs: np.ndarray
    psd: np.ndarray
    negative_share: np.ndarray
    mean_to_sd: np.ndarray
    roughness: np.ndarray
    n_samples: int

    def share_above(self, cutoff: float) -> float:
        """Median over muscles of the share of the (non-DC) power at ``cutoff`` Hz and above."""
        keep = self.freqs > 0
        total = self.psd[keep].sum(axis=0)
        high = self.psd[keep & (self.freqs >= cutoff)].sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(total > 0, high / total, 0.0)
        return float(np.median(share))

    @property
    def nonnegative(self) -> bool:
        """Whether no sample read is below zero."""
        return bool(np.all(self.negative_share == 0))

    def record(self) -> dict[str, Any]:
        """The measurements, rounded, JSON-able."""
        return {
            "rate_hz": self.rate,
            f"power_above_{EMG_BAND_LOW:g}hz": round(self.share_above(EMG_BAND_LOW), 4),
            "negative_share": round(float(np.median(self.negative_share)), 4),
            "mean_to_sd": round(float(np.median(self.mean_to_sd)), 4),
            "roughness": round(float(np.median(self.roughness)), 4),
            "n_samples": self.n_samples,
        }


def _sample_blocks(emg: EMG, max_samples: int) -> list[np.ndarray]:
    """Up to ``max_samples`` rows per muscle: all of them, or 8 evenly spaced blocks."""
    n = emg.n_times
    if n <= max_samples:
        return [_read(emg.data, 0, n)]
    n_blocks = 8
    length = max_samples // n_blocks
    firsts = np.linspace(0, n - length, n_blocks).astype(np.int64)
    return [_read(emg.data, int(a), int(a) + length) for a in firsts]


def inspect_emg(
    emg: EMG | Any, *, rate: float | None = None, max_samples: int = 1 << 18
) -> EMGInspection:
    """Measure what tells raw EMG from an envelope: spectrum, sign, smoothness.

    Parameters
    ----------
    emg
        :class:`~nwb_synergy.EMG` (data may be an h5py dataset) or an array with ``rate``.
    rate
        Sampling rate in Hz when ``emg`` is an array.
    max_samples
        Samples per muscle read at most (longer recordings: 8 evenly spaced blocks).

    Returns
    -------
    EMGInspection
        The Welch spectrum (segments of 2 s, mean removed, blocks averaged), the share of
        negative samples, mean / SD and the roughness of each muscle.

    Raises
    ------
    InputError
        NaN or infinite samples, fewer than 8 samples.
    """
    emg = _as_emg(emg, rate)
    blocks = _sample_blocks(emg, int(max_samples))
    n_read = sum(len(b) for b in blocks)
    if n_read < 8:
        raise _error(emg, f"too short to inspect: {n_read} samples")
    psd_sum = None
    weight = 0
    for block in blocks:
        _check_block(emg, block, 0)
        nperseg = int(min(len(block), max(8, round(2 * emg.rate))))
        freqs, psd = welch(block, fs=emg.rate, nperseg=nperseg, detrend="constant", axis=0)
        psd_sum = psd * len(block) if psd_sum is None else psd_sum + psd * len(block)
        weight += len(block)
    x = np.concatenate(blocks)
    sd = x.std(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_to_sd = np.where(sd > 0, np.abs(x.mean(axis=0)) / sd, np.inf)
        diffs = np.concatenate([np.diff(b, axis=0) for b in blocks if len(b) > 1])
        roughness = np.where(sd > 0, diffs.std(axis=0) / sd, 0.0)
    return EMGInspection(
        rate=emg.rate,
        freqs=freqs,
        psd=psd_sum / weight,
        negative_share=(x < 0).mean(axis=0),
        mean_to_sd=mean_to_sd,
        roughness=roughness,
        n_samples=n_read,
    )


@dataclass(frozen=True)
class ConditioningChoice:
    """The conditioning chain chosen for an EMG, and why.

    Attributes
    ----------
    chain
        "raw" (high-pass, rectify, low-pass, resample) or "envelope" (no high-pass, no
        rectification).
    asked
        What was asked: "auto", "raw" or "envelope".
    reason
        Why, the end of a sentence whose subject is the EMG ("has 93% of its power above
        20 Hz ...").
    settings
        Keyword arguments of :func:`condition_emg` that run this chain.
    measurements
        What :func:`inspect_emg` measured (empty when nothing was measured).
    """

    chain: str
    asked: str
    reason: str
    settings: dict[str, Any] = field(default_factory=dict)
    measurements: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """History and provenance entry (JSON-able)."""
        return {
            "step": "conditioning_choice",
            "chain": self.chain,
            "asked": self.asked,
            "reason": self.reason,
            "measurements": dict(self.measurements),
        }

    def describe(self) -> str:
        """One line: the chain, what it does, and why."""
        if self.chain == "raw":
            what = "high-pass, rectify, low-pass, resample"
        else:
            parts = ["no high-pass, no rectification"]
            s = self.settings
            parts.append(f"low-pass {s['lowpass']:g} Hz" if s.get("lowpass") else "no low-pass")
            parts.append(f"resample to {s['resample']:g} Hz" if s.get("resample") else "rate kept")
            what = ", ".join(parts)
        if self.asked == "auto":
            return f"{self.chain} chain ({what}), chosen from the data: the EMG {self.reason}"
        return f"{self.chain} chain ({what}), as asked"


def _check_chain(chain: Any) -> str:
    if chain not in CHAINS:
        raise InputError(f"must be one of {CHAINS}, got {chain!r}", obj="conditioning")
    return str(chain)


def choose_conditioning(
    emg: EMG | Any,
    conditioning: str = "auto",
    *,
    rate: float | None = None,
    inspection: EMGInspection | None = None,
    **settings: Any,
) -> ConditioningChoice:
    """Choose the raw or the envelope chain for ``emg`` (see the module docstring).

    Parameters
    ----------
    emg
        :class:`~nwb_synergy.EMG` or an array with ``rate``.
    conditioning
        "auto" (inspect the data), "raw" or "envelope" (force that chain).
    rate
        Sampling rate in Hz when ``emg`` is an array.
    inspection
        Measurements already made by :func:`inspect_emg` (else made here, for "auto" and
        "envelope").
    **settings
        Keyword arguments of :func:`condition_emg` (cutoffs, orders, ``resample``,
        ``subtract_min``, ``normalize``); defaults :data:`RAW_CHAIN`.

    Returns
    -------
    ConditioningChoice
        The chain, the reason, and the :func:`condition_emg` keywords running it: the raw
        chain runs ``settings`` as given; the envelope chain drops the high-pass and the
        rectification, low-passes only before a down-sampling or when more than 1% of the
        power lies above the cutoff, and resamples only down.
    """
    emg = _as_emg(emg, rate)
    asked = _check_chain(conditioning)
    unknown = sorted(set(settings) - set(RAW_CHAIN))
    if unknown:
        raise InputError(f"unknown conditioning setting(s) {unknown}", obj="conditioning")
    settings = {**RAW_CHAIN, **settings}
    if asked == "raw":
        return ConditioningChoice("raw", asked, "raw chain asked for", settings)
    info = inspection if inspection is not None else inspect_emg(emg)
    share = info.share_above(EMG_BAND_LOW)
    if asked == "envelope":
        chain, reason = "envelope", "envelope chain asked for"
    elif emg.rate < MIN_RAW_RATE:
        chain = "envelope"
        reason = (
            f"is sampled at {emg.rate:g} Hz, too slowly for raw EMG (whose power lies at "
            f"{EMG_BAND_LOW:g}-500 Hz): taken for an envelope"
        )
    elif share < ENVELOPE_SHARE:
        chain = "envelope"
        pct = f"{100 * share:.1f}%" if share >= 5e-4 else "less than 0.1%"
        reason = (
            f"has {pct} of its power above {EMG_BAND_LOW:g} Hz (raw EMG: most of it): smooth, "
            "taken for an envelope"
        )
    elif info.nonnegative and float(np.median(info.mean_to_sd)) < _MAX_MEAN_TO_SD:
        chain = "envelope"
        reason = (
            "is broadband but never negative: taken for rectified EMG (high-passed and "
            "rectified again it would lose its envelope)"
        )
    else:
        chain = "raw"
        sign = f"{100 * float(np.median(info.negative_share)):.0f}% of samples negative"
        reason = f"has {100 * share:.0f}% of its power above {EMG_BAND_LOW:g} Hz ({sign}): raw EMG"
    if chain == "envelope":
        settings = _envelope_settings(emg, settings, info)
    return ConditioningChoice(chain, asked, reason, settings, info.record())


def _envelope_settings(emg: EMG, settings: dict[str, Any], info: EMGInspection) -> dict:
    """The envelope chain: no high-pass or rectification; low-pass and resample as needed."""
    out = dict(settings, highpass=None, rectify=False)
    target = settings["resample"]
    down = target is not None and emg.rate > float(target) * (1 + 1e-9)
    cutoff = settings["lowpass"]
    if cutoff is not None and cutoff < emg.rate / 2:
        needed = down or info.share_above(cutoff) > LOWPASS_NEEDED_SHARE
        out["lowpass"] = cutoff if needed else None
    else:
        out["lowpass"] = None
    out["resample"] = float(target) if down else None
    return out


# ----------------------------------------------------------------------------------------------
# the whole chain
# ----------------------------------------------------------------------------------------------
def condition_emg(
    emg: EMG | Any,
    *,
    rate: float | None = None,
    chain: str | ConditioningChoice = "raw",
    highpass: float | None = 50.0,
    highpass_order: int = 4,
    rectify: bool = True,
    lowpass: float | None = 20.0,
    lowpass_order: int = 4,
    resample: float | None = 100.0,
    subtract_min: bool = True,
    normalize: str | None = "max",
    chunk_size: int | None = None,
) -> EMG:
    """Condition EMG into non-negative envelopes ready for synergy extraction.

    Parameters
    ----------
    emg
        :class:`~nwb_synergy.EMG` (data may be an h5py dataset), or an array-like
        (n_times, n_muscles) together with ``rate``.
    rate
        Sampling rate in Hz when ``emg`` is an array.
    chain
        "raw" (default): the steps below as given. "auto": raw EMG or an envelope, chosen
        from the data (:func:`choose_conditioning`); "envelope": no high-pass and no
        rectification, low-pass and resampling only as needed. A
        :class:`ConditioningChoice` runs the chain it holds. Except for "raw", the choice is
        recorded in ``history`` before the steps (and logged when made here).
    highpass, highpass_order
        Butterworth high-pass cutoff (Hz) and order, zero-phase; None to skip.
    rectify
        Full-wave rectification.
    lowpass, lowpass_order
        Butterworth low-pass (envelope) cutoff (Hz) and order, zero-phase; None to skip.
    resample
        New rate in Hz (decimation or cubic spline, see the module docstring); None to keep.
    subtract_min
        Subtract each channel's minimum (after resampling).
    normalize
        "max" (default: each channel's maximum becomes 1), "mean", "unit_variance" or None.
    chunk_size
        Samples per chunk for recordings larger than memory; None: the whole signal at once
        for NumPy data, chunks of 2**20 samples for lazy data (h5py). Chunked and whole give
        the same numbers (to about 1e-13 relative).

    Returns
    -------
    EMG
        At the new rate, same ``t_start``, ``history`` extended with every step and its
        parameters, ``unit`` "a.u." when normalised (else the input's unit).

    Raises
    ------
    InputError
        NaN or infinite samples, a flat channel, a recording too short for the filters, a
        cutoff at or above the Nyquist frequency, a low-pass that does not protect the new
        rate from aliasing, an unknown normalisation or chain.
    """
    emg = _as_emg(emg, rate)
    settings = {
        "highpass": highpass,
        "highpass_order": highpass_order,
        "rectify": rectify,
        "lowpass": lowpass,
        "lowpass_order": lowpass_order,
        "resample": resample,
        "subtract_min": subtract_min,
        "normalize": normalize,
    }
    history = list(emg.history)
    if isinstance(chain, ConditioningChoice) or chain != "raw":
        choice = chain if isinstance(chain, ConditioningChoice) else None
        if choice is None:  # chosen here: say so (a choice passed in was reported already)
            choice = choose_conditioning(emg, _check_chain(chain), **settings)
            log.info("EMG conditioning: %s", choice.describe())
        settings = dict(choice.settings)
        history.append(choice.record())
    _check_normalization(settings["normalize"])
    steps, resampler, history = _chain_steps(emg, settings, history)
    if not steps and resampler is None and chunk_size is None and not _is_in_memory(emg.data):
        chunk_size = _DEFAULT_CHUNK
    if steps or resampler is not None or not _is_in_memory(emg.data):
        data = _process_signal(emg, steps, resampler, chunk_size)
    else:
        data = np.asarray(emg.data, dtype=float).copy()
        _check_block(emg, data, 0)
        _check_flat(emg, data.min(axis=0), data.max(axis=0))
    new_rate = resampler.new_rate if resampler is not None else emg.rate
    data, unit, history = _finish(emg, data, settings, emg.unit, history)
    return emg.replace(data=data, rate=new_rate, unit=unit, history=history)


def _check_normalization(normalize: str | None) -> None:
    if normalize is not None and normalize not in NORMALIZATIONS:
        raise InputError(
            f"must be one of {NORMALIZATIONS} or None, got {normalize!r}", obj="normalize"
        )


def _chain_steps(
    emg: EMG, settings: dict[str, Any], history: list[dict]
) -> tuple[list, _Resampler | None, list[dict]]:
    """The filter/rectify steps and the resampler of a chain, with their history entries."""
    steps: list = []
    history = list(history)
    if settings["highpass"] is not None:
        f = _make_filter(emg, "highpass", settings["highpass"], settings["highpass_order"])
        steps.append(f)
        history.append(f.record())
    if settings["rectify"]:
        steps.append(_rectify)
        history.append({"step": "rectify", "kind": "full-wave"})
    if settings["lowpass"] is not None:
        f = _make_filter(emg, "lowpass", settings["lowpass"], settings["lowpass_order"])
        steps.append(f)
        history.append(f.record())
    resampler = None
    target = settings["resample"]
    if target is not None and float(target) != emg.rate:
        resampler = _make_resampler(emg, target, settings["lowpass"])
        history.append(resampler.record())
    return steps, resampler, history


def _finish(
    emg: EMG, data: np.ndarray, settings: dict[str, Any], unit: str, history: list[dict]
) -> tuple[np.ndarray, str, list[dict]]:
    """Subtract the minimum and normalise (over all samples given), with history entries."""
    if settings["subtract_min"]:
        low = data.min(axis=0)
        data -= low
        history.append({"step": "subtract_min", "min": low.tolist()})
    if settings["normalize"] is not None:
        scale = _normalizer(emg, data, settings["normalize"])
        data /= scale
        unit = "a.u."
        history.append(
            {"step": "normalize", "kind": settings["normalize"], "scale": scale.tolist()}
        )
    return data, unit, history


# ----------------------------------------------------------------------------------------------
# segments (intervals of a TimeIntervals table)
# ----------------------------------------------------------------------------------------------
def _too_short(emg: EMG, steps: list, rows: np.ndarray, intervals: Any) -> None:
    """Refuse segments shorter than the filters' impulse responses, naming them."""
    filters = [s for s in steps if isinstance(s, _Filter)]
    need = max([f.padlen + 1 for f in filters] + [f.min_len for f in filters] + [2])
    short = np.flatnonzero(rows[:, 1] - rows[:, 0] < need)
    if not short.size:
        return
    spans = [
        f"{emg.t_start + rows[i, 0] / emg.rate:.3f}-{emg.t_start + rows[i, 1] / emg.rate:.3f} s"
        for i in short[:5]
    ]
    more = f" and {short.size - 5} more" if short.size > 5 else ""
    raise intervals.error(
        f"{short.size} segment(s) too short for the filters ({', '.join(spans)}{more}): each "
        f"needs at least {need} samples ({need / emg.rate:.3f} s at {emg.rate:g} Hz) for the "
        "filters' impulse responses; drop those intervals or merge them with their neighbours"
    )


def condition_segments(
    emg: EMG | Any,
    intervals: Any,
    *,
    rate: float | None = None,
    chain: str | ConditioningChoice = "raw",
    **settings: Any,
):
    """Condition the EMG of some intervals only: each segment filtered alone, concatenated.

    Parameters
    ----------
    emg
        :class:`~nwb_synergy.EMG` (data may be an h5py dataset: only the segments are read),
        or an array with ``rate``.
    intervals
        An :class:`~nwb_synergy.intervals.Intervals` (or ``[start, stop]`` rows in s).
        Overlapping and abutting intervals make one segment; intervals are clipped to the
        recording.
    rate
        Sampling rate in Hz when ``emg`` is an array.
    chain, **settings
        As in :func:`condition_emg` (the chain is chosen once, on the whole recording).

    Returns
    -------
    Segmented
        The segments' envelopes concatenated (``.emg``), each resampled on the regular output
        grid of the whole recording (so ``.fill`` puts results back at their times), the
        minimum subtracted and the normalisation taken over all segments together.

    Raises
    ------
    InputError
        No interval inside the recording, a segment too short for the filters (the message
        names it), NaN samples inside a segment, and the errors of :func:`condition_emg`.
    """
    from .intervals import Intervals, Segmented, sample_spans

    emg = _as_emg(emg, rate)
    if not isinstance(intervals, Intervals):
        arr = np.asarray(intervals, dtype=float).reshape(-1, 2)
        intervals = Intervals(arr[:, 0], arr[:, 1])
    full = {**RAW_CHAIN, **settings}
    history = list(emg.history)
    if isinstance(chain, ConditioningChoice) or chain != "raw":
        choice = chain if isinstance(chain, ConditioningChoice) else None
        if choice is None:
            choice = choose_conditioning(emg, _check_chain(chain), **full)
            log.info("EMG conditioning: %s", choice.describe())
        full = dict(choice.settings)
        history.append(choice.record())
    _check_normalization(full["normalize"])
    rows = sample_spans(intervals.merged(), emg.rate, emg.t_start, emg.n_times)
    if not len(rows):
        raise intervals.error(
            f"no interval overlaps the EMG recording ({emg.t_start:g}-"
            f"{emg.t_start + emg.duration:g} s)"
        )
    steps, resampler, history = _chain_steps(emg, full, history)
    _too_short(emg, steps, rows, intervals)
    new_rate = resampler.new_rate if resampler is not None else emg.rate
    pieces, positions = [], []
    for first, stop in rows.tolist():
        x = _read(emg.data, first, stop)
        _check_block(emg, x, first)
        for step in steps:
            x = step.apply(x) if isinstance(step, _Filter) else step(x)
        if resampler is None:
            out_first = first
            pieces.append(x)
        else:  # on the grid of the whole recording: output sample i is at time i / new_rate
            out_first = resampler.first_out_at_or_after(first)
            out_stop = int(np.floor((stop - 1) * new_rate / emg.rate + 1e-9)) + 1
            if resampler.factor is not None:
                out_stop = (stop - 1) // resampler.factor + 1
            if out_stop <= out_first:
                continue
            pieces.append(resampler.apply(x, first, out_first, out_stop))
        positions.append(out_first + np.arange(len(pieces[-1])))
    data = np.concatenate(pieces)
    grid = np.concatenate(positions)
    grid_t0 = emg.t_start + grid[0] / new_rate
    segmented = Segmented(
        emg=emg.replace(data=data, rate=new_rate, t_start=grid_t0),
        grid_index=grid - grid[0],
        grid_t_start=grid_t0,
        grid_n_times=int(grid[-1] - grid[0] + 1),
        bounds=np.cumsum([0] + [len(p) for p in pieces]),
        intervals=intervals,
    )
    data, unit, history = _finish(emg, data, full, emg.unit, [*history, segmented.record()])
    segmented.emg = segmented.emg.replace(data=data, unit=unit, history=history)
    return segmented


def highpass_rectify_segments(
    emg: EMG, spans: np.ndarray, *, cutoff: float = 50.0, order: int = 4, lazy: bool = False
) -> tuple[EMG, np.ndarray]:
    """Rectified high-passed EMG at the full rate, each segment filtered alone, zero elsewhere.

    Parameters
    ----------
    emg
        Raw EMG.
    spans
        ``[start, stop]`` rows (m, 2) in s, sorted and disjoint (see
        :meth:`~nwb_synergy.intervals.Intervals.merged`).
    cutoff, order
        Butterworth high-pass (zero-phase).
    lazy
        Compute nothing now: ``data`` is a :class:`FilteredRows` that filters the rows it is
        asked for, segment by segment (the same numbers to about 1e-13).

    Returns
    -------
    EMG
        Same shape and times as ``emg``: ``|highpass(segment)|`` inside the segments, 0
        elsewhere (never to be averaged: restrict the STA to the spans returned).
    used
        ``[first, last]`` sample times (s) of the segments filtered: those long enough for the
        filter's impulse response (shorter ones are left at 0 and out of ``used``).
    """
    from .intervals import sample_spans

    spans = np.asarray(spans, dtype=float).reshape(-1, 2)
    hp = _make_filter(emg, "highpass", cutoff, order)
    rows = sample_spans(spans, emg.rate, emg.t_start, emg.n_times)
    rows = rows[rows[:, 1] - rows[:, 0] >= max(hp.padlen + 1, hp.min_len)]
    # the last filtered sample closes each span: no window may read the zeros after it
    used = np.column_stack(
        [emg.t_start + rows[:, 0] / emg.rate, emg.t_start + (rows[:, 1] - 1) / emg.rate]
    ).reshape(-1, 2)
    history = [
        *emg.history,
        hp.record(),
        {"step": "rectify", "kind": "full-wave"},
        {
            "step": "segments",
            "filters": "run on each segment alone (nothing leaks across joins)",
            "spans_s": used.tolist(),
        },
    ]
    view = FilteredRows(emg, [hp, _rectify], segments=rows)
    if lazy:
        return emg.replace(data=view, history=history), used
    out = np.zeros((emg.n_times, emg.n_muscles))
    for first, stop in rows.tolist():
        x = _read(emg.data, first, stop)
        _check_block(emg, x, first)
        out[first:stop] = np.abs(hp.apply(x))
    return emg.replace(data=out, history=history), used
