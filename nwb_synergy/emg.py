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
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.signal import butter, sosfilt, sosfiltfilt

from .errors import InputError
from .io.pynapple import emg_from_pynapple, is_pynapple
from .signals import EMG

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
    """

    def __init__(self, emg: EMG, steps: list, dtype: Any = np.float64):
        self.emg = emg
        self.steps = list(steps)
        self.margin = sum(getattr(step, "settle", 0) for step in self.steps)
        filters = [step for step in self.steps if isinstance(step, _Filter)]
        self.need = max([f.padlen + 1 for f in filters] + [2])
        self._dtype = np.dtype(dtype)

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
        n = self.emg.n_times
        lo, hi = max(0, start - self.margin), min(n, stop + self.margin)
        if hi - lo <= self.need:  # a tiny block: widen it, as the chunked driver does
            lo = max(0, hi - self.need - 1)
            hi = min(n, lo + self.need + 1)
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
# the whole chain
# ----------------------------------------------------------------------------------------------
def condition_emg(
    emg: EMG | Any,
    *,
    rate: float | None = None,
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
    """Condition raw EMG into non-negative envelopes ready for synergy extraction.

    Parameters
    ----------
    emg
        :class:`~nwb_synergy.EMG` (data may be an h5py dataset), or an array-like
        (n_times, n_muscles) together with ``rate``.
    rate
        Sampling rate in Hz when ``emg`` is an array.
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
        rate from aliasing, an unknown normalisation.
    """
    emg = _as_emg(emg, rate)
    if normalize is not None and normalize not in NORMALIZATIONS:
        raise InputError(
            f"must be one of {NORMALIZATIONS} or None, got {normalize!r}", obj="normalize"
        )
    steps: list = []
    history = list(emg.history)
    if highpass is not None:
        f = _make_filter(emg, "highpass", highpass, highpass_order)
        steps.append(f)
        history.append(f.record())
    if rectify:
        steps.append(_rectify)
        history.append({"step": "rectify", "kind": "full-wave"})
    if lowpass is not None:
        f = _make_filter(emg, "lowpass", lowpass, lowpass_order)
        steps.append(f)
        history.append(f.record())
    resampler = None
    if resample is not None and float(resample) != emg.rate:
        resampler = _make_resampler(emg, resample, lowpass)
        history.append(resampler.record())
    if not steps and resampler is None and chunk_size is None and not _is_in_memory(emg.data):
        chunk_size = _DEFAULT_CHUNK
    if steps or resampler is not None or not _is_in_memory(emg.data):
        data = _process_signal(emg, steps, resampler, chunk_size)
    else:
        data = np.asarray(emg.data, dtype=float).copy()
        _check_block(emg, data, 0)
        _check_flat(emg, data.min(axis=0), data.max(axis=0))
    new_rate = resampler.new_rate if resampler is not None else emg.rate
    unit = emg.unit
    if subtract_min:
        low = data.min(axis=0)
        data -= low
        history.append({"step": "subtract_min", "min": low.tolist()})
    if normalize is not None:
        scale = _normalizer(emg, data, normalize)
        data /= scale
        unit = "a.u."
        history.append({"step": "normalize", "kind": normalize, "scale": scale.tolist()})
    return emg.replace(data=data, rate=new_rate, unit=unit, history=history)
