"""Write synergy and spike-triggered-average results into an NWBFile (in memory).

The writers only add objects to an open :class:`pynwb.NWBFile`; saving is done by
:func:`nwb_synergy.io.save.edit_nwb` (edit a file atomically, or export it to a new one) or
:func:`nwb_synergy.io.save.save_nwb` (write an in-memory file atomically)::

    with edit_nwb("session.nwb") as nwbfile:
        emg = condition_emg(read_emg(nwbfile))
        write_synergies(nwbfile, NMF(n_synergies=4).fit(emg), emg)

Naming
------
Synergies go to ``processing["behavior"]`` as a pair named ``MuscleSynergy<NAME>`` and
``SynergyActivation<NAME>``, where ``NAME`` defaults to the method in capitals ("NMF", "RLVM"):
one pair per method, and ``name="RLVMWarm"`` (say) for a second pair of the same method.
Spike-triggered averages go to ``processing["ecephys"]`` under ``name``
(default ``"SpikeTriggeredAverages"``).

Running twice
-------------
A second write under the same name raises :class:`~nwb_synergy.errors.ResultsExistError`
naming the file and the object, unless ``overwrite=True``: once the new objects are built
(and checked), the old ones are removed from the file's tree (so that an export writes only
the new ones) and the new ones added. Results are replaced, never duplicated; a failed
replacement leaves the old results in place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from ..errors import InputError, ResultsExistError
from ..ndx import MuscleSynergy, SpikeTriggeredAverageTable, SynergyActivation
from ..provenance import jsonable, library_versions, software_version

SOFTWARE = "nwb_synergy"

MODULE_DESCRIPTIONS = {
    "behavior": (
        "Processed behavioral data: muscle synergies extracted from the conditioned EMG and "
        "their activations over time (written by nwb_synergy)."
    ),
    "ecephys": (
        "Processed extracellular electrophysiology: spike-triggered averages of rectified EMG, "
        "post-spike effects and muscle fields of the recorded units (written by nwb_synergy)."
    ),
}

_EFFECT_COLUMNS = ("mpi", "ppi", "p_value", "onset", "peak_latency", "offset")


# -- shared helpers --------------------------------------------------------------------------


def _file_label(nwbfile) -> str:
    source = getattr(nwbfile, "container_source", None)
    return str(source) if source else f"<in-memory NWBFile '{nwbfile.identifier}'>"


def _module(nwbfile, name: str):
    if name in nwbfile.processing:
        return nwbfile.processing[name]
    return nwbfile.create_processing_module(name=name, description=MODULE_DESCRIPTIONS[name])


def _remove(module, name: str) -> None:
    """Detach ``module[name]`` so that neither a write nor an export keeps it."""
    obj = module.data_interfaces[name]
    module.data_interfaces.pop(name)
    obj.reset_parent()


def _existing(nwbfile, module_name: str, names: Sequence[str], overwrite: bool) -> list[str]:
    """Names already used in the module: refused unless ``overwrite`` (then returned)."""
    if module_name not in nwbfile.processing:
        return []
    module = nwbfile.processing[module_name]
    existing = [n for n in names if n in module.data_interfaces]
    if existing and not overwrite:
        where = ", ".join(f"processing/{module_name}/{n}" for n in existing)
        raise ResultsExistError(
            f"file '{_file_label(nwbfile)}', object '{where}': results of this name are already "
            "in the file; pass overwrite=True to replace them (or choose another name)"
        )
    return existing


def _store(nwbfile, module_name: str, objects: Sequence[Any], replace: Sequence[str]) -> None:
    """Remove the objects named in ``replace``, then add ``objects`` to the module."""
    module = _module(nwbfile, module_name)
    for n in replace:
        _remove(module, n)
    for obj in objects:
        module.add(obj)


def _lookup(nwbfile, path: str):
    """The object at ``path`` ("acquisition/EMG", "processing/behavior/EMG/FDS"), or None."""
    parts = [p for p in str(path).strip("/").split("/") if p]
    if len(parts) < 2:
        return None
    try:
        if parts[0] == "acquisition":
            obj = nwbfile.acquisition[parts[1]]
        elif parts[0] == "processing":
            obj = nwbfile.processing[parts[1]]
        else:
            return None
        for part in parts[2:]:
            obj = obj[part]
    except (KeyError, TypeError, AttributeError):
        return None
    return obj


@dataclass
class _EMGReferences:
    series: list | None = None
    channels: np.ndarray | None = None
    electrodes: np.ndarray | None = None
    paths: list[str] | None = None


def emg_references(nwbfile, emg, n_muscles: int) -> _EMGReferences:
    """Source series (objects of ``nwbfile``), channels and electrode rows of each muscle.

    The series objects of ``emg.source`` are used when they belong to ``nwbfile``; otherwise
    they are looked up by their paths (an EMG read from the same file by path). When the
    sources cannot be found in ``nwbfile`` no references are made.
    """
    source = getattr(emg, "source", None)
    if source is None or not source.series_names:
        return _EMGReferences()
    names = list(source.series_names)
    if len(names) == 1:
        names = names * n_muscles
    if len(names) != n_muscles:
        return _EMGReferences()
    in_file = nwbfile.objects
    given = list(source.series) if source.series else [None] * n_muscles
    series = []
    for obj, path in zip(given, names, strict=True):
        if obj is not None and obj.object_id in in_file and in_file[obj.object_id] is obj:
            series.append(obj)
        else:
            found = _lookup(nwbfile, path)
            if found is None:
                return _EMGReferences()
            series.append(found)
    channels = np.asarray(source.channels, dtype=np.int64)
    if channels.shape != (n_muscles,):
        channels = None
    electrodes = None
    if source.electrodes is not None and nwbfile.electrodes is not None:
        rows = np.asarray(source.electrodes, dtype=np.int64)
        if rows.shape == (n_muscles,) and rows.size and rows.max() < len(nwbfile.electrodes):
            electrodes = rows
    return _EMGReferences(series, channels, electrodes, names)


def _emg_summary(emg) -> dict[str, Any]:
    source = getattr(emg, "source", None)
    return {
        "file": None if source is None else source.file,
        "series": [] if source is None else list(dict.fromkeys(source.series_names)),
        "rate": float(emg.rate),
        "t_start": float(emg.t_start),
        "n_times": int(emg.n_times),
        "unit": emg.unit,
        "muscle_names": list(emg.muscle_names),
    }


# -- synergies -------------------------------------------------------------------------------


def _suffix(method: str) -> str:
    cleaned = re.sub(r"[^0-9A-Za-z_]", "", str(method))
    return cleaned.upper() or "SYNERGY"


def _model_arrays(model, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    for attr in ("weights_", "activations_"):
        if not hasattr(model, attr):
            raise InputError(
                f"the model has no '{attr}': fit it first (write_synergies needs a fitted model "
                "with weights_ (n_muscles, K) and activations_ (n_times, K))",
                file=label,
                obj=type(model).__name__,
            )
    weights = np.asarray(model.weights_, dtype=float)
    activations = np.asarray(model.activations_, dtype=float)
    if weights.ndim != 2 or activations.ndim != 2 or weights.shape[1] != activations.shape[1]:
        raise InputError(
            f"weights_ {weights.shape} and activations_ {activations.shape} must be "
            "(n_muscles, K) and (n_times, K)",
            file=label,
            obj=type(model).__name__,
        )
    offset = getattr(model, "offset_", None)
    if offset is not None:
        offset = np.asarray(offset, dtype=float).ravel()
        if offset.shape != (weights.shape[0],):
            raise InputError(
                f"offset_ has shape {offset.shape}, expected ({weights.shape[0]},)",
                file=label,
                obj=type(model).__name__,
            )
    return weights, activations, offset


def _per_synergy_vaf(
    data: np.ndarray, weights: np.ndarray, activations: np.ndarray, offset: np.ndarray | None
) -> np.ndarray:
    """Uncentered VAF of the reconstruction from each synergy alone (plus the offset)."""
    total = float(np.sum(data * data))
    base = data - (0.0 if offset is None else offset[None, :])
    out = np.empty(weights.shape[1])
    for k in range(weights.shape[1]):
        residual = base - np.outer(activations[:, k], weights[:, k])
        out[k] = 1.0 - float(np.sum(residual * residual)) / total if total > 0 else np.nan
    return out


def write_synergies(
    nwbfile,
    model,
    emg=None,
    *,
    name: str | None = None,
    description: str | None = None,
    overwrite: bool = False,
    rate: float | None = None,
    t_start: float = 0.0,
) -> tuple[MuscleSynergy, SynergyActivation]:
    """Add a fitted model's synergies and activations to ``nwbfile.processing["behavior"]``.

    Parameters
    ----------
    nwbfile
        An open pynwb NWBFile (in memory, or from :func:`~nwb_synergy.io.save.edit_nwb`).
    model
        A fitted model with ``weights_`` (n_muscles, K) and ``activations_`` (n_times, K);
        used when present: ``provenance()``, ``get_params()``, ``method``, ``nonnegative``,
        ``offset_`` (n_muscles,), ``muscle_names_``.
    emg
        The :class:`~nwb_synergy.EMG` the model was fitted on (conditioned): its ``rate`` and
        ``t_start`` time the activations, its names label the rows, its ``source`` gives the
        references to the EMG series (and electrodes) of ``nwbfile``, its ``history`` the
        conditioning, and its data the per-synergy VAF.
    name
        Suffix of the two objects' names (``MuscleSynergy<name>``, ``SynergyActivation<name>``);
        default: the method in capitals.
    description
        Description of the MuscleSynergy; a factual one is made by default.
    overwrite
        Replace results already stored under these names instead of refusing.
    rate, t_start
        Timing of the activations (Hz, s) when no ``emg`` is given.

    Returns
    -------
    (MuscleSynergy, SynergyActivation)

    Raises
    ------
    InputError
        Unfitted model, shapes that disagree with the EMG, muscle names that differ, no timing.
    ResultsExistError
        Results of the same name exist and ``overwrite`` is False.
    """
    label = _file_label(nwbfile)
    weights, activations, offset = _model_arrays(model, label)
    n_muscles, k = weights.shape
    prov = dict(model.provenance()) if callable(getattr(model, "provenance", None)) else {}
    method = str(prov.pop("method", None) or getattr(model, "method", "") or type(model).__name__)
    method = method.lower()
    nonnegative = bool(prov.pop("nonnegative", getattr(model, "nonnegative", weights.min() >= 0)))
    params = prov.pop("parameters", None)
    if params is None and callable(getattr(model, "get_params", None)):
        params = model.get_params()
    params = jsonable(params or {})

    names = getattr(model, "muscle_names_", None)
    if emg is not None:
        if names is not None and list(names) != list(emg.muscle_names):
            raise InputError(
                f"the model was fitted on muscles {list(names)} but the EMG has "
                f"{list(emg.muscle_names)}",
                file=label,
                obj="emg",
            )
        names = list(emg.muscle_names)
        if emg.n_muscles != n_muscles or emg.n_times != activations.shape[0]:
            raise InputError(
                f"the EMG has shape ({emg.n_times}, {emg.n_muscles}) but the model's activations "
                f"and weights imply ({activations.shape[0]}, {n_muscles}): pass the conditioned "
                "EMG the model was fitted on",
                file=label,
                obj="emg",
            )
        rate, t_start = emg.rate, emg.t_start
    if rate is None:
        raise InputError(
            "no timing for the activations: pass the EMG the model was fitted on (or rate=)",
            file=label,
            obj="emg",
        )
    if names is None:
        names = [f"muscle_{i}" for i in range(n_muscles)]
    if len(names) != n_muscles:
        raise InputError(
            f"{len(names)} muscle names for {n_muscles} weight rows", file=label, obj="model"
        )

    suffix = name if name is not None else _suffix(method)
    ms_name, act_name = f"MuscleSynergy{suffix}", f"SynergyActivation{suffix}"
    replace = _existing(nwbfile, "behavior", (ms_name, act_name), overwrite)

    extra: dict[str, Any] = {}
    provenance: dict[str, Any] = {"fit": jsonable(prov), "versions": library_versions()}
    provenance["model_class"] = f"{type(model).__module__}.{type(model).__qualname__}"
    provenance["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if emg is not None:
        provenance["conditioning"] = jsonable(list(emg.history))
        provenance["emg"] = _emg_summary(emg)
        refs = emg_references(nwbfile, emg, n_muscles)
        if refs.series is not None:
            extra["emg_series"] = refs.series
            if refs.channels is not None:
                extra["emg_channel"] = refs.channels
            if refs.electrodes is not None:
                extra["electrodes"] = refs.electrodes
                extra["electrodes_table"] = nwbfile.electrodes
        data = emg.to_numpy()
        extra["variance_accounted_for"] = _per_synergy_vaf(data, weights, activations, offset)
    if offset is not None and np.any(offset != 0):
        extra["offset"] = offset
    if description is None:
        description = (
            f"{k} muscle synergies of {n_muscles} muscles extracted by {method.upper()} with "
            f"{SOFTWARE} ({'non-negative' if nonnegative else 'signed'} weights, unit-norm "
            "columns). One row per muscle; column k of 'weights' is synergy k; activations in "
            f"{act_name}."
        )
    try:
        synergy = MuscleSynergy(
            name=ms_name,
            description=description,
            muscle_name=list(names),
            weights=weights,
            method=method,
            nonnegative=nonnegative,
            parameters=params,
            software=SOFTWARE,
            software_version=software_version(),
            provenance=provenance,
            **extra,
        )
        activation = SynergyActivation(
            name=act_name,
            data=activations,
            muscle_synergy=synergy,
            unit=emg.unit if emg is not None else "a.u.",
            rate=float(rate),
            starting_time=float(t_start),
            description=(
                f"Activation coefficients of the {k} synergies in {ms_name} (non-negative); "
                f"column k belongs to column k of its weights. Sampled like the conditioned EMG."
            ),
        )
    except InputError as err:
        raise InputError(err.problem, file=label, obj=f"processing/behavior/{err.obj}") from None
    _store(nwbfile, "behavior", (synergy, activation), replace)
    return synergy, activation


# -- spike-triggered averages ----------------------------------------------------------------


def _unit_rows(nwbfile, unit_ids: Sequence[int], label: str):
    units = nwbfile.units
    if units is None:
        for module in nwbfile.processing.values():
            for obj in module.data_interfaces.values():
                if type(obj).__name__ == "Units":
                    units = obj
                    break
    if units is None or len(units) == 0:
        raise InputError(
            "no Units table (or an empty one) to point the STA rows to", file=label, obj="units"
        )
    ids = np.asarray(units.id.data[:], dtype=np.int64)
    row_of = {int(u): i for i, u in enumerate(ids)}
    missing = [u for u in unit_ids if int(u) not in row_of]
    if missing:
        raise InputError(
            f"unit id(s) {missing} are not in the Units table (ids {ids.tolist()[:20]})",
            file=label,
            obj="stas",
        )
    return units, [row_of[int(u)] for u in unit_ids]


def _missing(value: Any) -> bool:
    """None, NaN or pandas' NA."""
    import pandas as pd

    return value is None or bool(np.all(pd.isna(value)))


def _looks_like_emg(obj: Any) -> bool:
    return all(hasattr(obj, a) for a in ("muscle_names", "history", "unit", "rate", "source"))


def _effects_for(frame, muscles: Sequence[str], unit_id, label: str) -> dict[str, list]:
    out: dict[str, list] = {"effect": [], **{c: [] for c in _EFFECT_COLUMNS}}
    index = [str(i) for i in frame.index]
    missing = [m for m in muscles if m not in index]
    if missing:
        raise InputError(
            f"effects of unit {unit_id} lack muscle(s) {missing}", file=label, obj="effects"
        )
    for muscle in muscles:
        row = frame.iloc[index.index(muscle)]
        label_value = row.get("effect", None)
        out["effect"].append("none" if _missing(label_value) else str(label_value))
        for col in _EFFECT_COLUMNS:
            value = row.get(col, None)
            out[col].append(np.nan if _missing(value) else float(value))
    return out


def write_sta(
    nwbfile,
    stas: Mapping[int, Any],
    effects: Mapping[int, Any] | None = None,
    fields: Mapping[int, Any] | None = None,
    *,
    emg=None,
    name: str = "SpikeTriggeredAverages",
    parameters: Mapping[str, Any] | None = None,
    description: str | None = None,
    overwrite: bool = False,
) -> SpikeTriggeredAverageTable:
    """Add spike-triggered averages (and effects, fields) to ``processing["ecephys"]``.

    Parameters
    ----------
    nwbfile
        An open pynwb NWBFile holding the Units the averages were triggered on.
    stas
        {unit id: result} where result has ``mean`` (n_lags, n_muscles), ``lags`` (n_lags,) s,
        ``n_used``, ``n_unused``, ``window`` (start, stop) s, ``rate`` Hz, ``muscle_names``.
        Unit ids are those of the Units table; all results share lags and muscles order.
    effects
        {unit id: pandas DataFrame indexed by muscle name} with columns ``effect`` ("PSF",
        "PSpS" or None), ``mpi``, ``ppi``, ``p_value``, ``onset``, ``peak_latency``,
        ``offset``; optional.
    fields
        {unit id: array (n_muscles,)} of signed muscle-field values (0 where not significant);
        optional.
    emg
        The :class:`~nwb_synergy.EMG` that was averaged (rectified, high-pass filtered): its
        ``source`` gives references to the EMG series of ``nwbfile``, its ``history`` the
        conditioning, its ``unit`` the unit of the averages. Default: the results' own
        ``source`` when it is an EMG.
    name
        Name of the table.
    parameters
        Parameters of the analysis (window, baseline, test window, fragment size, ...), stored
        as JSON, on top of the results' own ``parameters`` when they have some.
    description
        Description of the table; a factual one by default.
    overwrite
        Replace a table of the same name instead of refusing.

    Returns
    -------
    SpikeTriggeredAverageTable
    """
    label = _file_label(nwbfile)
    if not stas:
        raise InputError("no spike-triggered averages to write", file=label, obj="stas")
    unit_ids = list(stas)
    first = stas[unit_ids[0]]
    lags = np.asarray(first.lags, dtype=float)
    muscles = [str(m) for m in first.muscle_names]
    window = np.asarray(first.window, dtype=float)
    for uid in unit_ids:
        res = stas[uid]
        if list(map(str, res.muscle_names)) != muscles or not np.allclose(res.lags, lags):
            raise InputError(
                f"the STA of unit {uid} has other lags or muscles than that of unit "
                f"{unit_ids[0]}; write them as separate tables (name=...)",
                file=label,
                obj="stas",
            )
        if np.shape(res.mean) != (lags.size, len(muscles)):
            raise InputError(
                f"the STA of unit {uid} has shape {np.shape(res.mean)}, expected "
                f"({lags.size}, {len(muscles)}) (n_lags, n_muscles)",
                file=label,
                obj="stas",
            )
    units, rows = _unit_rows(nwbfile, unit_ids, label)
    replace = _existing(nwbfile, "ecephys", (name,), overwrite)

    m = len(muscles)
    columns: dict[str, Any] = {
        "unit": np.repeat(rows, m),
        "muscle_name": muscles * len(unit_ids),
        "sta": np.concatenate([np.asarray(stas[u].mean, dtype=float).T for u in unit_ids]),
        "n_spikes_used": np.repeat([int(stas[u].n_used) for u in unit_ids], m),
        "n_spikes_excluded": np.repeat([int(stas[u].n_unused) for u in unit_ids], m),
    }
    if effects is not None:
        merged: dict[str, list] = {"effect": [], **{c: [] for c in _EFFECT_COLUMNS}}
        for uid in unit_ids:
            if uid not in effects:
                raise InputError(f"no effects for unit {uid}", file=label, obj="effects")
            for key, values in _effects_for(effects[uid], muscles, uid, label).items():
                merged[key].extend(values)
        columns.update(merged)
    if fields is not None:
        values = []
        for uid in unit_ids:
            if uid not in fields:
                raise InputError(f"no muscle field for unit {uid}", file=label, obj="fields")
            field = np.asarray(fields[uid], dtype=float).ravel()
            if field.shape != (m,):
                raise InputError(
                    f"muscle field of unit {uid} has shape {field.shape}, expected ({m},)",
                    file=label,
                    obj="fields",
                )
            values.append(field)
        columns["field_value"] = np.concatenate(values)

    provenance: dict[str, Any] = {"versions": library_versions()}
    provenance["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    emg_unit = str(getattr(first, "unit", "a.u."))
    if emg is None and _looks_like_emg(getattr(first, "source", None)):
        emg = first.source  # the EMG the averages were computed from
    if emg is not None:
        emg_unit = emg.unit
        provenance["conditioning"] = jsonable(list(emg.history))
        provenance["emg"] = _emg_summary(emg)
        if not np.isclose(float(emg.rate), float(first.rate), rtol=1e-9, atol=0.0):
            raise InputError(
                f"the averages were computed at {float(first.rate):g} Hz but the EMG is sampled "
                f"at {float(emg.rate):g} Hz: pass the EMG that was averaged",
                file=label,
                obj="emg",
            )
        if list(emg.muscle_names) != muscles:
            raise InputError(
                f"the STA muscles {muscles} differ from the EMG's {list(emg.muscle_names)}",
                file=label,
                obj="emg",
            )
        refs = emg_references(nwbfile, emg, m)
        if refs.series is not None:
            columns["emg_series"] = refs.series * len(unit_ids)
            if refs.channels is not None:
                columns["emg_channel"] = np.tile(refs.channels, len(unit_ids))
    if description is None:
        description = (
            f"Spike-triggered averages of rectified EMG ({m} muscles) around the spikes of "
            f"{len(unit_ids)} unit(s), window {window[0] * 1e3:g} to {window[1] * 1e3:g} ms, "
            "with post-spike effects and muscle fields; one row per (unit, muscle) pair "
            f"(written by {SOFTWARE})."
        )
    try:
        table = SpikeTriggeredAverageTable(
            name=name,
            description=description,
            lags=lags,
            window=window,
            emg_rate=float(first.rate),
            emg_unit=emg_unit,
            units_table=units,
            parameters=jsonable(
                {**dict(getattr(first, "parameters", None) or {}), **dict(parameters or {})}
            ),
            software=SOFTWARE,
            software_version=software_version(),
            provenance=provenance,
            **columns,
        )
    except InputError as err:
        raise InputError(err.problem, file=label, obj=f"processing/ecephys/{err.obj}") from None
    _store(nwbfile, "ecephys", (table,), replace)
    return table
