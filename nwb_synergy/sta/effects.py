"""Post-spike effects: which muscles a neuron facilitates (PSF) or suppresses (PSpS).

Two methods, both built on the multiple-fragment analysis (MFA) of Perlmutter et al.
(J Neurosci Methods 79:143, 1998): the used spikes, in time order, are cut into fragments of
``fragment_size`` (100) consecutive spikes; for each fragment and muscle the mean EMG in the
test window and in the baseline window (relative to the spikes) are compared by a paired
t-test across fragments, and the p-values are Bonferroni-corrected across muscles. Fragments
are nearly independent even when windows of neighbouring spikes overlap, so the test's
variance is honest (a t-test over single spikes is not).

``method="isa"`` (the default): MFA on **ISA-corrected, normalised** per-spike differences
(Davidson et al., J Neurosci Methods 163:283, 2007). For spike i and muscle m::

    d_i = [test_i - base_i] - mean_j [test_i(j) - base_i(j)]
    level_i = mean_j [test_i(j) + base_i(j)] / 2
    statistic_i = d_i / level_i

where ``test_i`` and ``base_i`` are the mean EMG in the test and baseline windows after spike
i, and ``(j)`` marks the same windows after its increment-shifted triggers (+-40 ms in 1 ms
steps by default, 81 of them). The subtracted term is the expected test-minus-baseline
difference when the spike is dithered uniformly by +-40 ms: the surrogate that keeps slow
co-modulation of firing rate and EMG amplitude (and so the broad humps and ramps it puts into
an STA) but smears a 10-ms spike-locked effect thinly. Dithering keeps linear trends exactly
and the paired difference removes the constant curvature term, so ramps and broad humps
cancel, while a real effect loses only the ~1/8 of itself the shifted triggers pick up.
Dividing by the spike's local EMG level (taken from the shifted triggers only) turns each
difference into a fraction of the current EMG amplitude, so spikes fired while the muscle is
strongly active do not dominate the variance: under strong co-modulation this raises the
power by about the factor ``sqrt(1 + CV^2)`` of the amplitude (1.6x for e-fold swings). The
fragment means of ``statistic_i`` are tested against 0 (t-test, Bonferroni). No peak
criterion: it costs power on weak effects in noisy 5 kHz averages. The dithering expectation
is computed exactly (cumulative sums of cumulative sums: four lookups per window, whatever
the number of shifts), not by drawing surrogates, so it is fast and free of Monte Carlo
error; ``tests/test_effects.py`` checks the ISA against the mean STA over elephant's
``dither_spikes`` surrogates. Measured on :func:`~nwb_synergy.simulate.simulate_spikes`
(5% effects, ~6,000 spikes, 12 muscles): all planted pairs found and no false positive with
and without strong co-modulation, where the lab standard has 15% false positives. Limit:
co-modulation much faster than the ISA span (task signals above ~2-3 Hz, STA humps narrower
than ~100 ms) is not slow any more and can leak into the test (7% false positives at 3 Hz).

``method="fragments"`` (lab standard, Takei/Seki conventions): MFA on the raw sweeps, plus the
requirement that the STA's peak (trough) in the test window exceeds the baseline mean by
``n_sd`` (2) standard deviations of the baseline. It is fooled by co-modulation ramps.

Reported for every muscle: MPI = 100 x (mean of the (corrected) STA over the effect window -
its baseline mean) / the raw STA's baseline mean, where the effect window is the contiguous
run of samples around the peak beyond baseline +- ``n_sd`` SD (``onset`` .. ``offset``) when the
peak crosses that threshold, else the test window; PPI = 100 x (peak - baseline mean) /
baseline mean on the lightly smoothed curve; ``peak_latency`` the lag of the peak (s).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.ndimage import uniform_filter1d

from ..errors import InputError
from ._gather import CHUNK_BYTES, box_stats
from ._inputs import SignalInput, as_signal
from .average import (
    STAResult,
    increment_shifted_average,
    increment_shifted_averages,
    isa_shifts,
)

__all__ = ["post_spike_effects", "EFFECT_COLUMNS"]

#: default control and test windows of the effect tests, seconds relative to the spike
DEFAULT_BASELINE = (-0.03, -0.01)
DEFAULT_TEST = (0.003, 0.015)
#: spikes whose per-spike statistics are computed together (bounds the memory they take)
SPIKE_BATCH = 65_536

EFFECT_COLUMNS = [
    "effect",
    "mpi",
    "ppi",
    "p_value",
    "p_adjusted",
    "onset",
    "peak_latency",
    "offset",
    "n_spikes",
    "n_fragments",
]

_METHODS = {"isa": "isa", "fragments": "fragments", "lab": "fragments", "mfa": "fragments"}


def _lag_range(lags: np.ndarray, win: tuple[float, float], name: str) -> tuple[int, int]:
    """First and last index of the lags inside ``win`` (closed, with rounding slack)."""
    a, b = (float(v) for v in win)
    if not b > a:
        raise InputError(f"{name} window must have start < stop, got {win}", obj=name)
    tol = 1e-3 * (float(lags[1] - lags[0]) if len(lags) > 1 else 1.0)
    idx = np.flatnonzero((lags >= a - tol) & (lags <= b + tol))
    if len(idx) == 0 or a < lags[0] - tol or b > lags[-1] + tol:
        raise InputError(
            f"{name} window {win} s is not inside the STA lags [{lags[0]:g}, {lags[-1]:g}] s",
            obj=name,
        )
    return int(idx[0]), int(idx[-1])


def _fragment_test(d: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-sided t-test of the fragment means of ``d`` (n_spikes, n_muscles) against 0.

    Spikes are cut, in order, into ``n_spikes // size`` fragments of (about) ``size``
    consecutive spikes. NaN entries (a spike whose windows do not fit, or a muscle silent
    around a spike) are left out of their fragment's mean, per muscle.

    Returns p-values, spikes used and fragments used, each (n_muscles,).
    """
    n, n_muscles = d.shape
    valid = ~np.isnan(d)
    n_spikes = valid.sum(axis=0)
    n_frag = n // size
    if n_frag < 2:
        return np.full(n_muscles, np.nan), n_spikes, np.zeros(n_muscles, dtype=int)
    starts = np.linspace(0, n, n_frag + 1).astype(int)[:-1]
    sums = np.add.reduceat(np.where(valid, d, 0.0), starts, axis=0)
    counts = np.add.reduceat(valid.astype(float), starts, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = np.where(counts > 0, sums / counts, np.nan)
    used = (counts > 0).sum(axis=0)
    p = np.full(n_muscles, np.nan)
    ok = used >= 2
    if np.any(ok):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mu = np.nanmean(means[:, ok], axis=0)
            sd = np.nanstd(means[:, ok], axis=0, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = mu / (sd / np.sqrt(used[ok]))
        p_ok = 2 * stats.t.sf(np.abs(t), used[ok] - 1)
        p[ok] = np.where(sd > 0, p_ok, np.where(mu != 0, 0.0, 1.0))
    return p, n_spikes, used


def _signal_for(sta: STAResult, emg: Any) -> SignalInput:
    intervals = getattr(sta, "intervals", None)
    if emg is not None:
        sig = as_signal(emg, sta.rate, sta.t_start, intervals=intervals)
        if not np.isclose(sig.rate, sta.rate) or sig.n_muscles != sta.n_muscles:
            raise InputError(
                f"emg ({sig.n_muscles} muscles at {sig.rate} Hz) is not the EMG of this STA "
                f"({sta.n_muscles} muscles at {sta.rate} Hz)",
                obj="emg",
            )
        return sig
    if sta.source is None:
        raise InputError(
            "per-spike statistics need the EMG the STA was computed from: pass emg=...",
            obj="sta",
        )
    return as_signal(sta.source, sta.rate, sta.t_start, intervals=intervals)


def _per_spike_difference(
    signal: SignalInput,
    starts: np.ndarray,
    test: tuple[int, int],
    base: tuple[int, int],
    shifts: np.ndarray | None,
    chunk_bytes: int,
    normalize: bool = False,
) -> np.ndarray:
    """(test mean - baseline mean) per spike and muscle, ISA-corrected if ``shifts``.

    Returned as float32 (n_spikes, n_muscles): the statistics are computed in float64 and
    only stored in single precision (relative 6e-8, far below any fragment's spread), which
    halves the largest array of a long recording (600,000 spikes x 16 muscles in 20 minutes).

    With ``normalize``, divided by the spike's local EMG level: the mean over its shifted
    test and baseline boxes (ISA), or of its test and baseline means. Rows of spikes whose
    boxes (shifted ones included) do not fit in the EMG, or whose level is 0, are NaN.
    """
    lo = np.array([test[0], base[0]])
    hi = np.array([test[1] + 1, base[1] + 1])
    direct = np.array([[1.0, -1.0], [0.5, 0.5]])
    comb = {}
    reach = 0  # how far the comb's shifted boxes reach beyond lo/hi
    if shifts is not None:
        n = len(shifts)
        comb_weights = np.array([[-1.0 / n, 1.0 / n], [0.5 / n, 0.5 / n]])
        direct = np.array([[1.0, -1.0], [0.0, 0.0]])  # the level comes from the shifts only
        step = int(shifts[1] - shifts[0]) if n > 1 else 1
        regular = n > 1 and step > 0 and np.array_equal(shifts, (np.arange(n) - n // 2) * step)
        if regular:  # 4 lookups per box, whatever the number of shifts
            comb = dict(comb=(step, n // 2), comb_lo=lo, comb_hi=hi, comb_weights=comb_weights)
            reach = (n // 2) * step
        else:  # explicit shifted boxes
            lo = np.concatenate([lo, test[0] + shifts, base[0] + shifts])
            hi = np.concatenate([hi, test[1] + 1 + shifts, base[1] + 1 + shifts])
            direct = np.concatenate([direct, np.repeat(comb_weights, n, axis=1)], axis=1)
    first = int(lo.min()) - reach
    ok = signal.windows_fit(starts + first, int(hi.max()) + reach - first)
    out = np.full((len(starts), signal.n_muscles), np.nan, dtype=np.float32)
    order = np.argsort(starts[ok], kind="stable")
    idx = np.flatnonzero(ok)[order]
    # spikes in time order, a batch at a time: consecutive stretches of the EMG, each read
    # once, and per-spike arrays that stay small whatever the number of spikes
    for b0 in range(0, len(idx), SPIKE_BATCH):
        sel = idx[b0 : b0 + SPIKE_BATCH]
        vals = box_stats(signal.data, starts[sel], lo, hi, direct, chunk_bytes=chunk_bytes, **comb)
        if normalize:
            level = vals[:, 1, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                out[sel] = np.where(level > 0, vals[:, 0, :] / level, np.nan)
        else:
            out[sel] = vals[:, 0, :]
    return out


def _effect_window(
    curve: np.ndarray, thresh_ok: np.ndarray, peak: int, first_post: int
) -> tuple[int, int]:
    """Contiguous run of ``thresh_ok`` around ``peak``, not before lag index ``first_post``."""
    i0 = peak
    while i0 - 1 >= first_post and thresh_ok[i0 - 1]:
        i0 -= 1
    i1 = peak
    while i1 + 1 < len(curve) and thresh_ok[i1 + 1]:
        i1 += 1
    return i0, i1


def post_spike_effects(
    sta: STAResult | Mapping[Any, STAResult],
    *,
    baseline: tuple[float, float] = DEFAULT_BASELINE,
    test: tuple[float, float] = DEFAULT_TEST,
    method: str = "isa",
    alpha: float = 0.05,
    fragment_size: int = 100,
    correction: str = "bonferroni",
    n_sd: float = 2.0,
    require_peak: bool | None = None,
    normalize: bool | None = None,
    smooth: float = 0.001,
    isa_span: float | None = None,
    isa_step: float | None = None,
    emg: Any = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> pd.DataFrame | dict[Any, pd.DataFrame]:
    """Classify each muscle's post-spike effect (PSF, PSpS or none) and measure it.

    Parameters
    ----------
    sta
        A :class:`~nwb_synergy.sta.STAResult` (or a mapping unit -> STAResult, giving a dict
        of tables). Its EMG (kept by reference in ``sta.source``) is read again for per-spike
        statistics; pass ``emg=`` when the result has none.
    baseline, test
        Control and test windows relative to the spike, seconds (closed intervals of lags).
    method
        "isa" (default): multiple-fragment test on ISA-corrected sweeps, robust to slow
        co-modulation of firing rate and EMG amplitude. "fragments" (alias "lab"): the lab
        standard, multiple-fragment test on raw sweeps plus the peak beyond ``n_sd`` SD of the
        baseline. See the module docstring.
    alpha
        Family-wise error rate per neuron.
    fragment_size
        Spikes per fragment (consecutive in time). Fewer than two fragments give p = NaN.
    correction
        "bonferroni" across muscles, or "none".
    n_sd
        Threshold, in baseline standard deviations, for the peak criterion and for the
        onset/offset of the effect window.
    require_peak
        Also require the peak beyond ``n_sd`` SD for significance; default True for
        "fragments", False for "isa".
    normalize
        Divide each spike's test-minus-baseline difference by its local EMG level before the
        fragment test (a percent change per spike), so that spikes fired while the muscle is
        strongly active do not dominate the variance; default True for "isa", False for
        "fragments".
    smooth
        Width (s) of the moving average applied to the curve before locating peak, onset and
        offset (0: none).
    isa_span, isa_step
        ISA shifts for ``method="isa"``; default those of ``sta`` (+-40 ms, 1 ms).
    emg
        The EMG of the STA, when ``sta.source`` is None.
    chunk_bytes
        Chunk size for reading an on-disk EMG.

    Returns
    -------
    pandas.DataFrame
        One row per muscle (index: muscle names) with columns ``effect`` ("PSF", "PSpS" or
        None), ``mpi``, ``ppi`` (%), ``p_value`` (uncorrected), ``p_adjusted``, ``onset``,
        ``peak_latency``, ``offset`` (s; NaN where not significant or not located),
        ``n_spikes`` (spikes in the test) and ``n_fragments``. ``df.attrs`` holds the method
        and parameters.
    """
    if method not in _METHODS:
        raise InputError(f"method must be one of {sorted(_METHODS)}, got {method!r}", obj="method")
    method = _METHODS[method]
    if correction not in ("bonferroni", "none"):
        raise InputError(f"correction must be 'bonferroni' or 'none', got {correction!r}")
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha}", obj="alpha")
    if int(fragment_size) < 1:
        raise InputError(f"fragment_size must be >= 1, got {fragment_size}", obj="fragment_size")
    if require_peak is None:
        require_peak = method == "fragments"
    if normalize is None:
        normalize = method == "isa"
    kwargs = dict(
        baseline=baseline,
        test=test,
        method=method,
        alpha=alpha,
        fragment_size=int(fragment_size),
        correction=correction,
        n_sd=n_sd,
        require_peak=bool(require_peak),
        normalize=bool(normalize),
        smooth=smooth,
        isa_span=isa_span,
        isa_step=isa_step,
        emg=emg,
        chunk_bytes=chunk_bytes,
    )
    if not isinstance(sta, Mapping):
        return _effects_one(sta, None, **kwargs)
    for unit, r in sta.items():
        if not isinstance(r, STAResult):
            raise InputError(f"expected an STAResult, got {type(r).__name__}", obj=f"sta[{unit!r}]")
    # units sharing one EMG and one lag grid: per-spike statistics in one pass over the EMG
    groups: dict[tuple, list] = {}
    for unit, r in sta.items():
        sig = _signal_for(r, emg)
        key = (id(sig.data), float(r.rate), r.n_lags, float(r.lags[0]), r.isa_span, r.isa_step)
        groups.setdefault(key, []).append(unit)
    diffs: dict[Any, np.ndarray] = {}
    isas: dict[Any, np.ndarray] = {}
    for units in groups.values():
        first = sta[units[0]]
        setup = _setup(first, **kwargs)
        isas.update(_missing_isas({u: sta[u] for u in units}, setup, chunk_bytes))
        starts = np.concatenate([np.asarray(sta[u].window_starts, dtype=np.int64) for u in units])
        d = _per_spike_difference(
            setup["signal"],
            starts,
            setup["t_rng"],
            setup["b_rng"],
            setup["shifts"],
            chunk_bytes,
            kwargs["normalize"],
        )
        bounds = np.cumsum([0] + [len(sta[u].window_starts) for u in units])
        for i, u in enumerate(units):
            diffs[u] = d[bounds[i] : bounds[i + 1]]
    return {
        unit: _effects_one(r, diffs[unit], isa=isas.get(unit), **kwargs) for unit, r in sta.items()
    }


def _missing_isas(
    stas: Mapping[Any, STAResult], setup: dict, chunk_bytes: int
) -> dict[Any, np.ndarray]:
    """ISAs of the units (sharing one EMG and lag grid) whose result lacks the one needed.

    All of them from one pass over the EMG (a lazily filtered EMG is filtered once, not once
    per unit).
    """
    shifts = setup["shifts"]
    if shifts is None:
        return {}
    need = {u: r.window_starts for u, r in stas.items() if _stored_isa(r, setup) is None}
    if not need:
        return {}
    n_lags = next(iter(stas.values())).n_lags
    isas = increment_shifted_averages(
        setup["signal"], need, n_lags, shifts, chunk_bytes=chunk_bytes
    )
    return {u: isa for u, (isa, _) in isas.items()}


def _stored_isa(sta: STAResult, setup: dict) -> np.ndarray | None:
    """``sta.isa`` when it was computed with the shifts asked for, else None."""
    same = np.isclose(setup["span"], sta.isa_span) and np.isclose(setup["step"], sta.isa_step)
    return sta.isa if sta.isa is not None and same else None


def _setup(
    sta: STAResult,
    *,
    baseline: tuple[float, float],
    test: tuple[float, float],
    method: str,
    isa_span: float | None,
    isa_step: float | None,
    emg: Any,
    **_: Any,
) -> dict:
    lags = np.asarray(sta.lags)
    shifts = None
    if method == "isa":
        span = sta.isa_span if isa_span is None else isa_span
        step = sta.isa_step if isa_step is None else isa_step
        shifts = isa_shifts(sta.rate, span, step)
    return {
        "t_rng": _lag_range(lags, test, "test"),
        "b_rng": _lag_range(lags, baseline, "baseline"),
        "signal": _signal_for(sta, emg),
        "shifts": shifts,
        "span": None if shifts is None else span,
        "step": None if shifts is None else step,
    }


def _effects_one(
    sta: STAResult,
    d: np.ndarray | None,
    *,
    isa: np.ndarray | None = None,
    baseline: tuple[float, float],
    test: tuple[float, float],
    method: str,
    alpha: float,
    fragment_size: int,
    correction: str,
    n_sd: float,
    require_peak: bool,
    normalize: bool,
    smooth: float,
    isa_span: float | None,
    isa_step: float | None,
    emg: Any,
    chunk_bytes: int,
) -> pd.DataFrame:
    if not isinstance(sta, STAResult):
        raise InputError(f"sta must be an STAResult, got {type(sta).__name__}", obj="sta")
    setup = _setup(
        sta,
        baseline=baseline,
        test=test,
        method=method,
        isa_span=isa_span,
        isa_step=isa_step,
        emg=emg,
    )
    t_rng, b_rng, signal, shifts = setup["t_rng"], setup["b_rng"], setup["signal"], setup["shifts"]
    lags = np.asarray(sta.lags)
    n_muscles = sta.n_muscles
    starts = np.asarray(sta.window_starts, dtype=np.int64)
    curve = np.asarray(sta.mean, dtype=float)
    if shifts is not None:
        if isa is None:
            isa = _stored_isa(sta, setup)
        if isa is None:
            isa, _ = increment_shifted_average(
                signal, starts, sta.n_lags, shifts, chunk_bytes=chunk_bytes
            )
        curve = curve - isa
    if d is None:
        d = _per_spike_difference(signal, starts, t_rng, b_rng, shifts, chunk_bytes, normalize)
    p, n_spikes, n_frag = _fragment_test(d, int(fragment_size))
    if np.any(n_frag < 2):
        warnings.warn(
            f"{d.shape[0]} spikes make fewer than 2 usable fragments of {fragment_size} "
            "spikes for some muscles: those are not tested",
            RuntimeWarning,
            stacklevel=2,
        )
    n_tests = n_muscles if correction == "bonferroni" else 1
    p_adj = np.minimum(1.0, p * n_tests)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        direction = np.nan_to_num(np.sign(np.nanmean(d, axis=0))) if len(d) else np.zeros(n_muscles)

    width = int(round(smooth * sta.rate))
    smoothed = uniform_filter1d(curve, size=width, axis=0, mode="nearest") if width > 1 else curve
    b_sl = slice(b_rng[0], b_rng[1] + 1)
    t_sl = slice(t_rng[0], t_rng[1] + 1)
    level = np.asarray(sta.mean, dtype=float)[b_sl].mean(axis=0)
    mu_b = curve[b_sl].mean(axis=0)
    mu_bs = smoothed[b_sl].mean(axis=0)
    sd_bs = smoothed[b_sl].std(axis=0, ddof=1) if b_rng[1] > b_rng[0] else np.zeros(n_muscles)
    first_post = int(np.searchsorted(lags, -1e-12))

    rows = []
    for m in range(n_muscles):
        sgn = direction[m] if direction[m] != 0 else 1.0
        dev = sgn * (smoothed[:, m] - mu_bs[m])
        beyond = dev > n_sd * sd_bs[m]
        peak = t_rng[0] + int(np.argmax(dev[t_sl]))
        significant = bool(np.isfinite(p_adj[m]) and p_adj[m] < alpha)
        if require_peak:
            significant = significant and bool(beyond[peak])
        effect = ("PSF" if sgn > 0 else "PSpS") if significant and direction[m] != 0 else None
        onset = offset = latency = np.nan
        e_sl = t_sl
        if effect is not None:
            latency = float(lags[peak])
            if beyond[peak]:
                i0, i1 = _effect_window(dev, beyond, peak, first_post)
                onset, offset = float(lags[i0]), float(lags[i1])
                e_sl = slice(i0, i1 + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            mpi = 100 * (curve[e_sl, m].mean() - mu_b[m]) / level[m]
            ppi = 100 * (smoothed[peak, m] - mu_bs[m]) / level[m]
        if not level[m] > 0:
            mpi = ppi = np.nan
        rows.append(
            {
                "effect": effect,
                "mpi": float(mpi),
                "ppi": float(ppi),
                "p_value": float(p[m]),
                "p_adjusted": float(p_adj[m]),
                "onset": onset,
                "peak_latency": latency,
                "offset": offset,
                "n_spikes": int(n_spikes[m]),
                "n_fragments": int(n_frag[m]),
            }
        )
    table = pd.DataFrame(rows, index=pd.Index(list(sta.muscle_names), name="muscle"))
    table = table[EFFECT_COLUMNS]
    table["effect"] = pd.Series([r["effect"] for r in rows], index=table.index, dtype=object)
    table.attrs.update(
        {
            "method": method,
            "baseline": [float(v) for v in baseline],
            "test": [float(v) for v in test],
            "alpha": float(alpha),
            "fragment_size": int(fragment_size),
            "correction": correction,
            "n_sd": float(n_sd),
            "require_peak": bool(require_peak),
            "normalize": bool(normalize),
            "smooth": float(smooth),
            "isa_shifts_s": None if shifts is None else (shifts / sta.rate).tolist(),
        }
    )
    return table
