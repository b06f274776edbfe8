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
(default ``"SpikeTriggeredAverages"``). Synergies fitted per group of intervals (a value of a
column of a ``TimeIntervals`` table) are named ``MuscleSynergy<METHOD>_<value>`` and
``SynergyActivation<METHOD>_<value>`` (:func:`group_suffix`); the comparison of the groups
goes to ``processing["behavior"]/SynergyGroupComparison`` (:func:`write_group_comparison`).

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
from .files import file_label

SOFTWARE = "nwb_synergy"
#: names of the tables the pipeline writes to processing["ecephys"]
STA_TABLE = "SpikeTriggeredAverages"
MATCH_TABLE = "MuscleFieldSynergyMatch"
CORRESPONDENCE_TABLE = "NegCpPSpSCorrespondence"
#: name of the table comparing synergies fitted per group of intervals (processing["behavior"])
GROUP_COMPARISON_TABLE = "SynergyGroupComparison"

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


def processing_module(nwbfile, name: str):
    """``nwbfile.processing[name]``, created with our description when missing."""
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
            f"file '{file_label(nwbfile)}', object '{where}': results of this name are already "
            "in the file; pass overwrite=True to replace them (or choose another name)"
        )
    return existing


def _store(nwbfile, module_name: str, objects: Sequence[Any], replace: Sequence[str]) -> None:
    """Remove the objects named in ``replace``, then add ``objects`` to the module."""
    module = processing_module(nwbfile, module_name)
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


def _provenance(emg, **extra: Any) -> dict[str, Any]:
    """The provenance stored with every result: versions, time, the EMG and its conditioning."""
    out: dict[str, Any] = {
        "versions": library_versions(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if emg is not None:
        out["conditioning"] = jsonable(list(emg.history))
        out["emg"] = _emg_summary(emg)
    out.update(jsonable(extra))
    return out


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


@dataclass(frozen=True)
class Synergies:
    """What :func:`write_synergies` stores: a synergy set with its activations and provenance.

    Build one with :meth:`from_model` from any fitted model (``weights_``, ``activations_``;
    optionally ``offset_``, ``provenance()``, ``get_params()``, ``method``, ``nonnegative``,
    ``muscle_names_``), or directly (e.g. a simulation's ground truth).

    Attributes
    ----------
    weights
        (n_muscles, K) synergy weights.
    activations
        (n_times, K) activations.
    method
        Name of the method, lower case ("nmf", "rlvm", "ground_truth").
    nonnegative
        Whether the method forces the weights to be non-negative.
    offset
        (n_muscles,) decoder offset (RLVM), or None.
    parameters
        Parameters of the method (JSON-able).
    fit
        Fit measures and anything else the model reports (JSON-able).
    muscle_names
        One name per weight row, or None (the EMG's names are used).
    model_class
        Import path of the model's class.
    """

    weights: np.ndarray
    activations: np.ndarray
    method: str
    nonnegative: bool
    offset: np.ndarray | None = None
    parameters: Mapping[str, Any] | None = None
    fit: Mapping[str, Any] | None = None
    muscle_names: Sequence[str] | None = None
    model_class: str | None = None

    @classmethod
    def from_model(cls, model: Any, label: str = "") -> Synergies:
        """The synergies of a fitted model (an InputError naming ``label`` when unfitted)."""
        if isinstance(model, Synergies):
            return model
        for attr in ("weights_", "activations_"):
            if not hasattr(model, attr):
                raise InputError(
                    f"the model has no '{attr}': fit it first (write_synergies needs a fitted "
                    "model with weights_ (n_muscles, K) and activations_ (n_times, K))",
                    file=label,
                    obj=type(model).__name__,
                )
        prov = dict(model.provenance()) if callable(getattr(model, "provenance", None)) else {}
        weights = np.asarray(model.weights_, dtype=float)
        method = prov.pop("method", None) or getattr(model, "method", "") or type(model).__name__
        default_nonneg = bool(weights.size and weights.min() >= 0)
        nonnegative = bool(prov.pop("nonnegative", getattr(model, "nonnegative", default_nonneg)))
        params = prov.pop("parameters", None)
        if params is None and callable(getattr(model, "get_params", None)):
            params = model.get_params()
        offset = getattr(model, "offset_", None)
        return cls(
            weights=weights,
            activations=np.asarray(model.activations_, dtype=float),
            method=str(method).lower(),
            nonnegative=nonnegative,
            offset=None if offset is None else np.asarray(offset, dtype=float).ravel(),
            parameters=jsonable(params or {}),
            fit=jsonable(prov),
            muscle_names=getattr(model, "muscle_names_", None),
            model_class=f"{type(model).__module__}.{type(model).__qualname__}",
        )

    def check(self, label: str) -> None:
        """Raise InputError (naming ``label``) when the shapes disagree."""
        w, a = self.weights, self.activations
        if w.ndim != 2 or a.ndim != 2 or w.shape[1] != a.shape[1]:
            raise InputError(
                f"weights {w.shape} and activations {a.shape} must be (n_muscles, K) and "
                "(n_times, K)",
                file=label,
                obj=self.method,
            )
        if self.offset is not None and self.offset.shape != (w.shape[0],):
            raise InputError(
                f"offset has shape {self.offset.shape}, expected ({w.shape[0]},)",
                file=label,
                obj=self.method,
            )


def _negcp_columns(negative_components: Any, shape: tuple[int, int], label: str) -> dict:
    """The NegCp columns of a MuscleSynergy table: a mask, or a result with mask and p-values.

    ``negative_components`` is a boolean array (n_muscles, K) (e.g. planted truth) or an
    object with ``mask`` and optionally ``p_value`` (and ``q_value``) arrays of that shape
    (:class:`~nwb_synergy.negcp.NegativeComponents`).
    """
    if isinstance(negative_components, np.ndarray) or isinstance(negative_components, list):
        mask, p_value, q_value = negative_components, None, None
    else:
        mask = negative_components.mask
        p_value = getattr(negative_components, "p_value", None)
        q_value = getattr(negative_components, "q_value", None)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != shape:
        raise InputError(
            f"NegCp mask of shape {mask.shape} for weights of shape {shape}",
            file=label,
            obj="negative_components",
        )
    out = {"negative_component": mask}
    for key, value in (
        ("negative_component_p_value", p_value),
        ("negative_component_q_value", q_value),
    ):
        if value is not None and np.shape(value) == shape:
            value = np.asarray(value, dtype=np.float64)
            out[key] = np.where(np.isfinite(value), value, 1.0)
    return out


_NEGCP_DESCRIPTIONS = {
    "negative_component": (
        "True where the weight is a negative component (NegCp): a weight clearly below zero "
        "that passes the statistical guard of the method (see the p-value columns, if any); "
        "muscles x synergies."
    ),
    "negative_component_p_value": (
        "p-value of the NegCp test of each weight (null: the weight is not below zero); "
        "muscles x synergies."
    ),
    "negative_component_nmf_weight": (
        "Weight of the muscle in the NMF synergy matched one to one (cosine) to each synergy, "
        "relative to that NMF synergy's largest weight (NaN where none was matched): Guo et "
        "al. found NegCp muscles to have near-zero NMF weights; muscles x synergies."
    ),
    "negative_component_q_value": (
        "Benjamini-Hochberg adjusted p-value of the NegCp test over all candidates of the fit; "
        "muscles x synergies."
    ),
}


def _per_synergy_vaf(
    data: np.ndarray, weights: np.ndarray, activations: np.ndarray, offset: np.ndarray | None
) -> np.ndarray:
    """Uncentered VAF of the reconstruction from each synergy alone (plus the offset).

    NaN samples (times outside the analysed intervals) are left out.
    """
    total = float(np.nansum(data * data))
    base = data - (0.0 if offset is None else offset[None, :])
    out = np.empty(weights.shape[1])
    for k in range(weights.shape[1]):
        residual = base - np.outer(activations[:, k], weights[:, k])
        out[k] = 1.0 - float(np.nansum(residual * residual)) / total if total > 0 else np.nan
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
    negative_components: Any = None,
    matched_nmf_weights: np.ndarray | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> tuple[MuscleSynergy, SynergyActivation]:
    """Add a fitted model's synergies and activations to ``nwbfile.processing["behavior"]``.

    Parameters
    ----------
    nwbfile
        An open pynwb NWBFile (in memory, or from :func:`~nwb_synergy.io.save.edit_nwb`).
    model
        A fitted model with ``weights_`` (n_muscles, K) and ``activations_`` (n_times, K)
        (used when present: ``provenance()``, ``get_params()``, ``method``, ``nonnegative``,
        ``offset_`` (n_muscles,), ``muscle_names_``), or a :class:`Synergies` record.
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
    negative_components
        NegCps of the weights: a boolean (n_muscles, K) array, or a result with ``mask`` and
        ``p_value`` (and ``q_value``) arrays (:func:`~nwb_synergy.negative_components`);
        written as the columns ``negative_component`` (and ``negative_component_p_value``,
        ``negative_component_q_value``).
    matched_nmf_weights
        (n_muscles, K): each muscle's weight in the NMF synergy matched to each synergy,
        relative to that NMF synergy's largest weight
        (:meth:`~nwb_synergy.negcp.NegativeComponents.matched_nmf_weights`); written as
        ``negative_component_nmf_weight`` (NaN where no NMF synergy was matched).
    provenance
        More provenance to store (e.g. the options of the analysis that produced the model).

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
    label = file_label(nwbfile)
    synergies = Synergies.from_model(model, label)
    synergies.check(label)
    weights, activations, offset = synergies.weights, synergies.activations, synergies.offset
    n_muscles, k = weights.shape
    method, nonnegative, params = synergies.method, synergies.nonnegative, synergies.parameters
    names = synergies.muscle_names
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
    provenance = _provenance(emg, fit=dict(synergies.fit or {}), **dict(provenance or {}))
    if synergies.model_class:
        provenance["model_class"] = synergies.model_class
    if emg is not None:
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
    if negative_components is not None:
        for column, values in _negcp_columns(negative_components, weights.shape, label).items():
            synergy.add_column(name=column, description=_NEGCP_DESCRIPTIONS[column], data=values)
    if matched_nmf_weights is not None:
        values = np.asarray(matched_nmf_weights, dtype=np.float64)
        if values.shape != weights.shape:
            raise InputError(
                f"matched NMF weights of shape {values.shape} for weights of shape {weights.shape}",
                file=label,
                obj="matched_nmf_weights",
            )
        synergy.add_column(
            name="negative_component_nmf_weight",
            description=_NEGCP_DESCRIPTIONS["negative_component_nmf_weight"],
            data=values,
        )
    _store(nwbfile, "behavior", (synergy, activation), replace)
    return synergy, activation


# -- spike-triggered averages ----------------------------------------------------------------


def _unit_rows(nwbfile, unit_ids: Sequence[int], label: str):
    """The Units table (wherever it is) and the rows of ``unit_ids`` in it."""
    from .units import find_units

    units = find_units(nwbfile, file=label)
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
    name: str = STA_TABLE,
    parameters: Mapping[str, Any] | None = None,
    description: str | None = None,
    overwrite: bool = False,
    provenance: Mapping[str, Any] | None = None,
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
    provenance
        More provenance to store (e.g. the options of the analysis).

    Returns
    -------
    SpikeTriggeredAverageTable
    """
    label = file_label(nwbfile)
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

    emg_unit = str(getattr(first, "unit", "a.u."))
    if emg is None and _looks_like_emg(getattr(first, "source", None)):
        emg = first.source  # the EMG the averages were computed from
    provenance = _provenance(emg, **dict(provenance or {}))
    if emg is not None:
        emg_unit = emg.unit
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


# -- muscle fields against synergies ------------------------------------------------------------


def write_field_matches(
    nwbfile,
    matches: Mapping[int, Mapping[str, Any]],
    *,
    synergy_table: str,
    n_permutations: int,
    overwrite: bool = False,
):
    """Add the best-matching synergy of each unit's muscle field to ``processing["ecephys"]``.

    Parameters
    ----------
    nwbfile
        An open NWBFile holding the Units (at the root or in a processing module).
    matches
        {unit id: {"best_synergy": int, "cosine": float, "p_value": float}}.
    synergy_table
        Name of the MuscleSynergy table whose columns ``best_synergy`` indexes.
    n_permutations
        Number of muscle-label shuffles behind the p-values.
    overwrite
        Replace a table of the same name instead of refusing.

    Returns
    -------
    hdmf.common.DynamicTable
        ``MuscleFieldSynergyMatch``, one row per unit, with a ``unit`` region of the Units.
    """
    from hdmf.common import DynamicTable, DynamicTableRegion, VectorData

    label = file_label(nwbfile)
    uids = list(matches)
    units, rows = _unit_rows(nwbfile, uids, label)
    replace = _existing(nwbfile, "ecephys", (MATCH_TABLE,), overwrite)

    def column(key: str, dtype, description: str) -> VectorData:
        values = np.array([matches[u][key] for u in uids], dtype=dtype)
        return VectorData(name=key, description=description, data=values)

    table = DynamicTable(
        name=MATCH_TABLE,
        description=(
            f"For each unit with a post-spike effect: the synergy of {synergy_table} most "
            "similar (cosine) to its muscle field, and the Monte Carlo p-value of that cosine "
            f"against {n_permutations} shuffles of the muscle labels (written by {SOFTWARE})."
        ),
        columns=[
            DynamicTableRegion(
                name="unit", description="Row of the Units table.", data=rows, table=units
            ),
            VectorData(
                name="synergy_table",
                description="Name of the MuscleSynergy table the synergy belongs to.",
                data=[synergy_table] * len(uids),
            ),
            column(
                "best_synergy",
                np.int64,
                "Column of that table's weights (0-based) best matching the field.",
            ),
            column("cosine", float, "Cosine similarity of the muscle field and that synergy."),
            column("p_value", float, "Monte Carlo p-value of the cosine (muscle labels shuffled)."),
        ],
    )
    _store(nwbfile, "ecephys", (table,), replace)
    return table


def group_suffix(method: str, value: Any) -> str:
    """Name suffix of a group's synergy tables: ``"NMF_reach"`` for method nmf, value reach.

    Characters NWB names cannot hold, and any other than letters, digits, ``-``, ``.`` and
    ``_``, become ``_`` (the value itself is kept in the table's description).
    """
    text = re.sub(r"[^0-9A-Za-z_.-]", "_", str(value)).strip("_") or "value"
    return f"{_suffix(method)}_{text}"


_GROUP_COLUMNS = {
    "method": (str, "Factorization method of the two synergy sets compared."),
    "group_a": (
        str,
        "First value of the grouping column (its tables: MuscleSynergy<METHOD>_<value>).",
    ),
    "group_b": (str, "Second value of the grouping column."),
    "n_synergies_a": (np.int64, "Number of synergies of the first group."),
    "n_synergies_b": (np.int64, "Number of synergies of the second group."),
    "matched_cosine": (
        float,
        "Mean cosine similarity of the synergies paired one to one (Hungarian matching).",
    ),
    "subspace_similarity": (
        float,
        "Mean squared cosine of the principal angles between the spans of the two sets.",
    ),
}


def write_group_comparison(
    nwbfile,
    rows: Sequence[Mapping[str, Any]],
    *,
    table: str,
    column: str,
    overwrite: bool = False,
):
    """Add the comparison of synergies fitted per group to ``processing["behavior"]``.

    Parameters
    ----------
    nwbfile
        An open NWBFile.
    rows
        One mapping per (method, pair of groups) with the keys of the columns:
        ``method``, ``group_a``, ``group_b``, ``n_synergies_a``, ``n_synergies_b``,
        ``matched_cosine``, ``subspace_similarity``.
    table, column
        The ``TimeIntervals`` table and the column the groups are values of.
    overwrite
        Replace a table of the same name instead of refusing.

    Returns
    -------
    hdmf.common.DynamicTable
        ``SynergyGroupComparison``, one row per pair of groups and method.
    """
    from hdmf.common import DynamicTable, VectorData

    label = file_label(nwbfile)
    if not rows:
        raise InputError("no group comparison to write", file=label, obj="rows")
    missing = [k for k in _GROUP_COLUMNS if any(k not in r for r in rows)]
    if missing:
        raise InputError(f"comparison rows lack {missing}", file=label, obj="rows")
    replace = _existing(nwbfile, "behavior", (GROUP_COMPARISON_TABLE,), overwrite)
    columns = []
    for key, (dtype, text) in _GROUP_COLUMNS.items():
        values = [r[key] for r in rows]
        data = [str(v) for v in values] if dtype is str else np.asarray(values, dtype=dtype)
        columns.append(VectorData(name=key, description=text, data=data))
    out = DynamicTable(
        name=GROUP_COMPARISON_TABLE,
        description=(
            f"Synergies fitted separately on the intervals of table '{table}' grouped by its "
            f"column '{column}', compared pair by pair (written by {SOFTWARE})."
        ),
        columns=columns,
    )
    _store(nwbfile, "behavior", (out,), replace)
    return out


_CORRESPONDENCE_COLUMNS = {
    "p_value": (
        float,
        "Permutation p-value: that the suppressed muscles of inhibitory units coincide with the "
        "NegCps of their best-matching synergy no more than by chance.",
    ),
    "statistic": (
        float,
        "Coincidences in excess of chance, summed over the inhibitory units: sum over units of "
        "(|suppressed & NegCps of the best synergy| - expected).",
    ),
    "coincidences": (
        np.int64,
        "Suppressed muscles that are NegCps of the unit's best synergy, summed over the "
        "inhibitory units.",
    ),
    "expected": (
        float,
        "The same expected by chance given the numbers of suppressed muscles and NegCps.",
    ),
    "n_suppressed": (np.int64, "Suppressed (unit, muscle) pairs over the inhibitory units."),
}


def write_correspondence(
    nwbfile,
    result: Any,
    *,
    synergy_table: str,
    n_permutations: int,
    overwrite: bool = False,
):
    """Add the NegCp-PSpS correspondence test (one row) to ``processing["ecephys"]``.

    Parameters
    ----------
    nwbfile
        An open NWBFile.
    result
        The test's result (:func:`~nwb_synergy.negcp_psps_correspondence`): ``p_value``,
        ``statistic``, ``coincidences``, ``expected``, ``n_suppressed``.
    synergy_table
        Name of the MuscleSynergy table whose NegCps were tested.
    n_permutations
        Number of permutations of the null distribution.
    overwrite
        Replace a table of the same name instead of refusing.

    Returns
    -------
    hdmf.common.DynamicTable
        ``NegCpPSpSCorrespondence``.
    """
    from hdmf.common import DynamicTable, VectorData

    replace = _existing(nwbfile, "ecephys", (CORRESPONDENCE_TABLE,), overwrite)
    columns = [
        VectorData(name=key, description=text, data=np.array([getattr(result, key)], dtype=dtype))
        for key, (dtype, text) in _CORRESPONDENCE_COLUMNS.items()
    ]
    columns.append(
        VectorData(
            name="n_permutations",
            description="Number of permutations of the null distribution.",
            data=np.array([n_permutations], dtype=np.int64),
        )
    )
    columns.append(
        VectorData(
            name="synergy_table",
            description="MuscleSynergy table whose NegCps were tested.",
            data=[synergy_table],
        )
    )
    table = DynamicTable(
        name=CORRESPONDENCE_TABLE,
        description=(
            "NegCp-PSpS correspondence test (Guo et al. 2025): do the muscles suppressed by "
            "inhibitory units coincide with the negative components of their best-matching "
            f"synergy more often than chance? One row (written by {SOFTWARE})."
        ),
        columns=columns,
    )
    _store(nwbfile, "ecephys", (table,), replace)
    return table


# -- results already in a file ------------------------------------------------------------------


def existing_results(nwbfile, paths: Sequence[str]) -> list[str]:
    """Which of ``paths`` ("processing/<module>/<name>") are already in ``nwbfile``."""
    return [p for p in paths if _lookup(nwbfile, p) is not None]


def remove_results(nwbfile, paths: Sequence[str]) -> list[str]:
    """Detach the objects at ``paths`` from ``nwbfile`` (those present); returns them."""
    removed = []
    for path in existing_results(nwbfile, paths):
        _, module, name = path.split("/", 2)
        _remove(nwbfile.processing[module], name)
        removed.append(path)
    return removed
