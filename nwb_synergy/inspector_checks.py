"""nwbinspector checks for the ndx-muscle-synergy types.

Importing this module registers the checks with nwbinspector. From the command line::

    nwbinspector session.nwb --modules nwb_synergy.inspector_checks

From Python, import it before calling ``nwbinspector.inspect_nwbfile``. The checks read data
written by any tool, so they never assume that the construction checks of
:mod:`nwb_synergy.ndx` ran.

MuscleSynergy
    weights finite (CRITICAL); no negative weight when ``nonnegative`` (CRITICAL); synergies of
    unit norm (suggestion); ``variance_accounted_for`` one fraction per synergy, at most 1
    (violation).
SynergyActivation
    one column per synergy of the linked MuscleSynergy (CRITICAL); finite, non-negative
    (CRITICAL); time span within that of the source EMG series (violation).
SpikeTriggeredAverageTable
    effect labels from the vocabulary (CRITICAL); p-values in [0, 1] (CRITICAL); ``sta`` has one
    value per lag and lags lie in the window (CRITICAL); field values in [-1, 1] and 0 where no
    effect (violation).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from nwbinspector import Importance, InspectorMessage, register_check

from .ndx import EFFECT_LABELS, MuscleSynergy, SpikeTriggeredAverageTable, SynergyActivation

_NORM_TOLERANCE = 1e-3
_CHUNK_ROWS = 1_000_000


def _column(table, name: str) -> np.ndarray | None:
    if name not in table.colnames:
        return None
    return np.asarray(table[name].data[:])


def _chunks(data) -> Iterator[np.ndarray]:
    n = data.shape[0] if hasattr(data, "shape") else len(data)
    for start in range(0, n, _CHUNK_ROWS):
        yield np.asarray(data[start : start + _CHUNK_ROWS], dtype=float)


# -- MuscleSynergy ---------------------------------------------------------------------------


@register_check(importance=Importance.CRITICAL, neurodata_type=MuscleSynergy)
def check_muscle_synergy_weights_finite(muscle_synergy: MuscleSynergy):
    """Weights must be finite numbers."""
    weights = _column(muscle_synergy, "weights").astype(float)
    bad = int(np.sum(~np.isfinite(weights)))
    if bad:
        return InspectorMessage(message=f"'weights' holds {bad} NaN or infinite value(s).")
    return None


@register_check(importance=Importance.CRITICAL, neurodata_type=MuscleSynergy)
def check_muscle_synergy_weights_sign(muscle_synergy: MuscleSynergy):
    """A method declared non-negative cannot give negative weights."""
    if not bool(muscle_synergy.nonnegative):
        return None
    weights = _column(muscle_synergy, "weights").astype(float)
    negative = np.argwhere(weights < 0)
    if negative.size:
        i, k = (int(v) for v in negative[0])
        return InspectorMessage(
            message=(
                f"nonnegative is True but {len(negative)} weight(s) are negative, e.g. "
                f"{weights[i, k]:g} for row {i} in synergy {k}."
            )
        )
    return None


@register_check(importance=Importance.BEST_PRACTICE_SUGGESTION, neurodata_type=MuscleSynergy)
def check_muscle_synergy_unit_norm(muscle_synergy: MuscleSynergy):
    """Synergies are compared across sessions and methods when scaled to unit norm."""
    weights = _column(muscle_synergy, "weights").astype(float)
    if weights.ndim != 2 or not np.all(np.isfinite(weights)):
        return None
    norms = np.linalg.norm(weights, axis=0)
    off = np.flatnonzero(np.abs(norms - 1.0) > _NORM_TOLERANCE)
    if off.size:
        listed = ", ".join(f"{int(k)}: {norms[k]:.4g}" for k in off[:5])
        return InspectorMessage(
            message=(
                f"synergy weights are not of unit Euclidean norm (synergy: norm {listed}); "
                "scale each column to norm 1 and the activations inversely."
            )
        )
    return None


@register_check(importance=Importance.BEST_PRACTICE_VIOLATION, neurodata_type=MuscleSynergy)
def check_muscle_synergy_vaf(muscle_synergy: MuscleSynergy):
    """variance_accounted_for holds one fraction (<= 1) per synergy."""
    vaf = muscle_synergy.variance_accounted_for
    if vaf is None:
        return None
    vaf = np.asarray(vaf[:], dtype=float)
    k = _column(muscle_synergy, "weights").shape[1]
    if vaf.shape != (k,):
        return InspectorMessage(
            message=f"variance_accounted_for has {vaf.size} value(s) for {k} synergies."
        )
    if np.any(~np.isfinite(vaf)) or np.any(vaf > 1.0):
        return InspectorMessage(
            message=(
                "variance_accounted_for must be finite fractions at most 1 (not percent); "
                f"got {vaf.tolist()}."
            )
        )
    return None


# -- SynergyActivation -----------------------------------------------------------------------


@register_check(importance=Importance.CRITICAL, neurodata_type=SynergyActivation)
def check_synergy_activation_columns(activation: SynergyActivation):
    """One activation column per synergy of the linked MuscleSynergy."""
    shape = np.shape(activation.data)
    synergy = activation.muscle_synergy
    k = _column(synergy, "weights").shape[1]
    if len(shape) != 2 or shape[1] != k:
        return InspectorMessage(
            message=(
                f"data has shape {tuple(shape)} but MuscleSynergy '{synergy.name}' has {k} "
                "synergies: expected (n_times, n_synergies)."
            )
        )
    return None


@register_check(importance=Importance.CRITICAL, neurodata_type=SynergyActivation)
def check_synergy_activation_values(activation: SynergyActivation):
    """Activations are finite and non-negative."""
    n_bad = n_negative = 0
    for block in _chunks(activation.data):
        n_bad += int(np.sum(~np.isfinite(block)))
        n_negative += int(np.sum(block < 0))
    problems = []
    if n_bad:
        problems.append(f"{n_bad} NaN or infinite value(s)")
    if n_negative:
        problems.append(f"{n_negative} negative value(s)")
    if problems:
        return InspectorMessage(
            message="activations must be finite and non-negative; found " + " and ".join(problems)
        )
    return None


def _span(series) -> tuple[float, float] | None:
    """(first sample time, end time = last sample + one period) of a TimeSeries, s."""
    n = np.shape(series.data)[0] if np.ndim(series.data) else 0
    if n == 0:
        return None
    if series.rate is not None:
        start = float(series.starting_time or 0.0)
        return start, start + n / float(series.rate)
    ts = series.timestamps
    if ts is None or len(ts) == 0:
        return None
    first, last = float(ts[0]), float(ts[len(ts) - 1])
    step = (last - first) / (len(ts) - 1) if len(ts) > 1 else 0.0
    return first, last + step


@register_check(importance=Importance.BEST_PRACTICE_VIOLATION, neurodata_type=SynergyActivation)
def check_synergy_activation_span(activation: SynergyActivation):
    """Activations cannot cover more time than the EMG they were computed from."""
    synergy = activation.muscle_synergy
    if "emg_series" not in synergy.colnames:
        return None
    own = _span(activation)
    if own is None:
        return None
    period = 1.0 / float(activation.rate) if activation.rate else 0.0
    seen = set()
    for series in synergy["emg_series"].data[:]:
        if id(series) in seen:
            continue
        seen.add(id(series))
        emg = _span(series)
        if emg is None:
            continue
        tol = period + 1e-9
        if own[0] < emg[0] - tol or own[1] > emg[1] + tol:
            return InspectorMessage(
                message=(
                    f"activations span {own[0]:.6g}-{own[1]:.6g} s but the source EMG "
                    f"'{series.name}' spans {emg[0]:.6g}-{emg[1]:.6g} s: timing or length "
                    "do not match the EMG the synergies were fitted on."
                )
            )
    return None


# -- SpikeTriggeredAverageTable --------------------------------------------------------------


@register_check(importance=Importance.CRITICAL, neurodata_type=SpikeTriggeredAverageTable)
def check_sta_effect_labels(table: SpikeTriggeredAverageTable):
    """Effect labels come from the vocabulary ("PSF", "PSpS", "none")."""
    effect = _column(table, "effect")
    if effect is None:
        return None
    labels = {e.decode() if isinstance(e, bytes) else str(e) for e in effect}
    bad = sorted(labels - set(EFFECT_LABELS))
    if bad:
        return InspectorMessage(
            message=f"effect labels {bad} are not in the vocabulary {list(EFFECT_LABELS)}."
        )
    return None


@register_check(importance=Importance.CRITICAL, neurodata_type=SpikeTriggeredAverageTable)
def check_sta_p_values(table: SpikeTriggeredAverageTable):
    """p-values lie in [0, 1] (NaN allowed for untested rows)."""
    p = _column(table, "p_value")
    if p is None:
        return None
    p = p.astype(float)
    bad = np.flatnonzero(np.isinf(p) | (p < 0) | (p > 1))
    if bad.size:
        return InspectorMessage(
            message=(
                f"{bad.size} p-value(s) outside [0, 1], e.g. {p[bad[0]]:g} in row {int(bad[0])}."
            )
        )
    return None


@register_check(importance=Importance.CRITICAL, neurodata_type=SpikeTriggeredAverageTable)
def check_sta_lags(table: SpikeTriggeredAverageTable):
    """``sta`` has one value per lag, and the lags lie in the window."""
    lags = np.asarray(table.lags[:], dtype=float)
    sta_shape = np.shape(table["sta"].data)
    window = np.asarray(table.window[:], dtype=float)
    if len(sta_shape) != 2 or sta_shape[1] != lags.size:
        return InspectorMessage(
            message=f"sta has shape {tuple(sta_shape)} but there are {lags.size} lags."
        )
    tol = 1e-9 + (1.0 / float(table.emg_rate) if table.emg_rate else 0.0)
    if lags.size and (lags.min() < window[0] - tol or lags.max() > window[1] + tol):
        return InspectorMessage(
            message=(
                f"lags span {lags.min():g} to {lags.max():g} s, outside the window "
                f"{window[0]:g} to {window[1]:g} s."
            )
        )
    return None


@register_check(
    importance=Importance.BEST_PRACTICE_VIOLATION, neurodata_type=SpikeTriggeredAverageTable
)
def check_sta_field_values(table: SpikeTriggeredAverageTable):
    """Muscle-field values are scaled to [-1, 1] and zero where no effect was found."""
    field = _column(table, "field_value")
    if field is None:
        return None
    field = field.astype(float)
    if np.any(~np.isfinite(field)) or np.any(np.abs(field) > 1 + 1e-6):
        return InspectorMessage(
            message="field_value must be finite and scaled to [-1, 1] (max |value| of a unit = 1)."
        )
    effect = _column(table, "effect")
    if effect is not None:
        none = np.array(
            [(e.decode() if isinstance(e, bytes) else str(e)) == "none" for e in effect]
        )
        wrong = np.flatnonzero(none & (field != 0))
        if wrong.size:
            return InspectorMessage(
                message=(
                    f"field_value is non-zero in {wrong.size} row(s) whose effect is 'none' "
                    f"(first: row {int(wrong[0])})."
                )
            )
    return None
