"""One NWB session end to end: read, condition, factorize, compare, STA, write.

:func:`analyze_session` is what ``nwb-synergy analyze`` (and ``extract``, ``sta``) runs::

    results = analyze_session("session.nwb", "results.nwb")
    print(results.summary_text())

Steps (each optional through the arguments):

1. read the EMG (any of the three layouts, in volts) and, when STAs are asked, the Units;
2. condition the EMG into envelopes (high-pass 50 Hz, rectify, low-pass 20 Hz, 100 Hz,
   minimum subtracted, each muscle divided by its maximum);
3. extract synergies with each method (NMF, RLVM). With ``n_synergies="auto"`` NMF chooses K
   by the model-order rule (``selection``, musclesyneRgies's linear fit of the R^2 curve by
   default), and RLVM, far too slow to fit once per candidate K, is fitted with NMF's K; the
   RLVM latents that its L1 penalty switches off (zero on nearly every sample: less than 0.1%
   of the EMG's energy) are then dropped. This matters: NMF has no offset, so it spends a
   synergy on the tonic activity of the muscles that NegCps inhibit, which RLVM's offset
   carries instead, and RLVM ends with one synergy fewer (e.g. 4 true synergies: NMF 5,
   RLVM 4). RLVM alone is fitted the same way (NMF is then used for K only);
4. compare the two sets (matched cosine, principal angles) and flag the negative components
   (NegCps) of the RLVM synergies with their statistical guard;
5. spike-triggered averages of the high-passed, rectified EMG at the full rate for every unit,
   post-spike effects (PSF, PSpS) and muscle fields;
6. the similarity of each muscle field to the synergies and the NegCp-PSpS correspondence test;
7. write everything, with parameters, seeds and versions, into ``output`` (a new file) or into
   the source file atomically (written to a temporary copy, then renamed).

Where the results go in the file:

* ``processing/behavior/MuscleSynergy<METHOD>`` and ``SynergyActivation<METHOD>``
  (``METHOD`` = NMF, RLVM); the RLVM table has two extra columns, ``negative_component``
  (bool, muscles x synergies) and ``negative_component_p_value``;
* ``processing/ecephys/SpikeTriggeredAverages``: one row per (unit, muscle): STA, spike counts,
  effect, MPI, p-value, latencies, muscle-field value;
* ``processing/ecephys/MuscleFieldSynergyMatch``: one row per unit with an effect: the
  best-matching synergy, its cosine with the field and the Monte Carlo p-value;
* ``processing/ecephys/NegCpPSpSCorrespondence``: one row: the correspondence test.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, ResultsExistError

log = logging.getLogger("nwb_synergy")

METHODS = ("nmf", "rlvm")
STA_TABLE = "SpikeTriggeredAverages"
MATCH_TABLE = "MuscleFieldSynergyMatch"
CORRESPONDENCE_TABLE = "NegCpPSpSCorrespondence"

#: default EMG conditioning (condition_emg keyword arguments)
DEFAULT_CONDITIONING: dict[str, Any] = {
    "highpass": 50.0,
    "lowpass": 20.0,
    "resample": 100.0,
    "subtract_min": True,
    "normalize": "max",
}
#: default spike-triggered-average window, seconds
DEFAULT_WINDOW = (-0.03, 0.05)


@dataclass
class SessionResults:
    """Everything :func:`analyze_session` found, and where it was written.

    Attributes
    ----------
    source, output
        The analysed file and the file the results were written to (the same for in place).
    emg_series
        Paths of the EMG series analysed, inside the file.
    muscle_names
        One name per EMG channel.
    emg_rate, duration
        Rate of the raw EMG (Hz) and its duration (s).
    envelope
        The conditioned EMG the synergies were fitted on (None when no synergies were asked).
    models
        Method name -> fitted model (``weights_``, ``activations_``, ``vaf_``, ``r2_``).
    comparison
        :class:`~nwb_synergy.compare.SynergyComparison` of NMF against RLVM, when both ran.
    negcps
        Result of :func:`~nwb_synergy.negative_components` on the RLVM model, when it ran.
    spike_trains
        Unit id -> spike times (s) of the units analysed.
    stas, effects, fields
        Unit id -> STA result, post-spike effect table (one row per muscle), muscle field.
    field_matches
        Unit id -> dict(best synergy, cosine, p-value) for units with an effect.
    correspondence
        Result of the NegCp-PSpS correspondence test, or None.
    notes
        What was skipped and why (e.g. no Units in the file).
    timings
        Seconds spent in each step.
    written
        Paths (inside the output file) of the objects written.
    sta_emg
        The high-pass filtered, rectified EMG at the full rate that was averaged (None
        without STAs).
    field_method
        The method whose synergies the muscle fields were compared with ("rlvm" when it ran).
    """

    source: Path
    output: Path
    emg_series: list[str] = field(default_factory=list)
    muscle_names: list[str] = field(default_factory=list)
    emg_rate: float = float("nan")
    duration: float = float("nan")
    envelope: Any = None
    models: dict[str, Any] = field(default_factory=dict)
    comparison: Any = None
    negcps: Any = None
    spike_trains: dict[int, np.ndarray] = field(default_factory=dict)
    stas: dict[int, Any] = field(default_factory=dict)
    effects: dict[int, Any] = field(default_factory=dict)
    fields: dict[int, np.ndarray] = field(default_factory=dict)
    field_matches: dict[int, dict] = field(default_factory=dict)
    correspondence: Any = None
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)
    sta_emg: Any = field(default=None, repr=False)
    field_method: str | None = None

    # -- derived -----------------------------------------------------------------------------
    def negcp_mask(self) -> np.ndarray | None:
        """Boolean (n_muscles, K) of the RLVM NegCps, or None."""
        if self.negcps is None:
            return None
        return np.asarray(_attr(self.negcps, "mask", "negative_mask", "flags"), dtype=bool)

    def units_with_effects(self) -> dict[int, dict[str, list[str]]]:
        """Unit id -> {"PSF": [muscles], "PSpS": [muscles]} for units with any effect."""
        out = {}
        for uid, frame in self.effects.items():
            kinds = {"PSF": [], "PSpS": []}
            for muscle, effect in zip(frame.index, frame["effect"], strict=True):
                if effect in kinds:
                    kinds[effect].append(str(muscle))
            if kinds["PSF"] or kinds["PSpS"]:
                out[uid] = kinds
        return out

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary of the results."""
        out: dict[str, Any] = {
            "source": str(self.source),
            "output": str(self.output),
            "emg_series": self.emg_series,
            "n_muscles": len(self.muscle_names),
            "emg_rate_hz": self.emg_rate,
            "duration_s": self.duration,
        }
        for name, model in self.models.items():
            out[name] = {
                "n_synergies": int(model.weights_.shape[1]),
                "vaf_uncentered": float(model.vaf_),
                "r2_centered": float(model.r2_),
            }
        if self.comparison is not None:
            out["nmf_vs_rlvm"] = {
                "matched_cosine": float(self.comparison.mean_cosine),
                "subspace_similarity": float(self.comparison.subspace_similarity),
            }
        mask = self.negcp_mask()
        if mask is not None:
            out["negcps"] = [
                {"muscle": self.muscle_names[m], "synergy": int(k) + 1}
                for m, k in zip(*np.nonzero(mask), strict=True)
            ]
        if self.stas:
            out["n_units"] = len(self.stas)
            out["units_with_effects"] = {str(u): v for u, v in self.units_with_effects().items()}
        if self.correspondence is not None:
            out["correspondence_p_value"] = _p_value(self.correspondence)
        out["notes"] = list(self.notes)
        out["written"] = list(self.written)
        out["timings_s"] = {k: round(v, 2) for k, v in self.timings.items()}
        return out

    def summary_text(self) -> str:
        """A short human-readable summary."""
        lines = [
            f"{self.source}: EMG {', '.join(self.emg_series) or '?'} "
            f"({len(self.muscle_names)} muscles, {self.emg_rate:g} Hz, {self.duration:.1f} s)"
        ]
        for name, model in self.models.items():
            lines.append(
                f"  {name.upper()}: {model.weights_.shape[1]} synergies, VAF "
                f"{100 * model.vaf_:.1f}% (uncentered), R^2 {100 * model.r2_:.1f}% (centered)"
            )
        if self.comparison is not None:
            lines.append(
                f"  NMF vs RLVM: matched cosine {self.comparison.mean_cosine:.3f}, subspace "
                f"similarity {self.comparison.subspace_similarity:.3f}"
            )
        mask = self.negcp_mask()
        if mask is not None:
            found = [
                f"{self.muscle_names[m]} (syn {k + 1})"
                for m, k in zip(*np.nonzero(mask), strict=True)
            ]
            lines.append(
                f"  NegCps (RLVM): {len(found)}" + (": " + ", ".join(found) if found else "")
            )
        if self.stas:
            with_effects = self.units_with_effects()
            n_psf = sum(1 for v in with_effects.values() if v["PSF"])
            n_psps = sum(1 for v in with_effects.values() if v["PSpS"])
            lines.append(
                f"  STA: {len(self.stas)} units, {len(with_effects)} with effects "
                f"({n_psf} with facilitation, {n_psps} with suppression)"
            )
        if self.correspondence is not None:
            lines.append(f"  NegCp-PSpS correspondence: p = {_p_value(self.correspondence):.3g}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        if self.written:
            lines.append(f"  results written to {self.output}: " + ", ".join(self.written))
        return "\n".join(lines)


# -- helpers ----------------------------------------------------------------------------------


def _attr(obj: Any, *names: str) -> Any:
    """The first of ``names`` that ``obj`` has (attribute or mapping key)."""
    for name in names:
        if isinstance(obj, Mapping) and name in obj:
            return obj[name]
        if hasattr(obj, name):
            return getattr(obj, name)
    raise AttributeError(f"{type(obj).__name__} has none of {names}")


def _p_value(result: Any) -> float:
    return float(_attr(result, "p_value", "pvalue"))


def _check_methods(methods: Sequence[str] | str | None) -> tuple[str, ...]:
    if methods is None:
        return ()
    if isinstance(methods, str):
        methods = (methods,)
    out = []
    for m in methods:
        m = str(m).lower()
        if m not in METHODS:
            raise InputError(f"unknown method {m!r}; choose from {METHODS}", obj="methods")
        if m not in out:
            out.append(m)
    return tuple(out)


def _has_units(nwbfile) -> bool:
    from pynwb.misc import Units

    if nwbfile.units is not None and len(nwbfile.units) > 0:
        return True
    return any(
        isinstance(obj, Units) and len(obj) > 0
        for module in nwbfile.processing.values()
        for obj in module.data_interfaces.values()
    )


def _emg_choice(nwbfile, emg_name: str | None) -> str | None:
    """The EMG to read: ``emg_name``, or the only candidate that is not a result of ours.

    The activations we write (SynergyActivation, a 2-D TimeSeries whose description mentions
    EMG) look like EMG to the reader; a file we wrote results into must still be analysable
    again without naming its EMG.
    """
    if emg_name is not None:
        return emg_name
    from .io.read import find_emg_candidates
    from .ndx import SynergyActivation

    candidates = find_emg_candidates(nwbfile)
    ours = [c for c in candidates if any(isinstance(s, SynergyActivation) for s in c.series)]
    others = [c for c in candidates if c not in ours]
    if ours and len(others) == 1:
        return others[0].path
    return None  # let read_emg decide (and explain an ambiguity)


def _planned_names(methods: Sequence[str], sta: bool) -> list[tuple[str, str]]:
    names = []
    for m in methods:
        names += [
            ("behavior", f"MuscleSynergy{m.upper()}"),
            ("behavior", f"SynergyActivation{m.upper()}"),
        ]
    if sta:
        names += [
            ("ecephys", STA_TABLE),
            ("ecephys", MATCH_TABLE),
            ("ecephys", CORRESPONDENCE_TABLE),
        ]
    return names


def _refuse_existing(nwbfile, planned: list[tuple[str, str]], label: Path) -> None:
    """Raise ResultsExistError before any computation when results are already there."""
    present = [
        f"processing/{module}/{name}"
        for module, name in planned
        if module in nwbfile.processing and name in nwbfile.processing[module].data_interfaces
    ]
    if present:
        raise ResultsExistError(
            f"file '{label}': results already present ({', '.join(present)}); pass "
            "overwrite=True to replace them"
        )


def _remove_stale(nwbfile, planned: list[tuple[str, str]]) -> None:
    """With overwrite: drop our own extra tables of an earlier run (the writers drop theirs)."""
    for module, name in planned:
        if name in (MATCH_TABLE, CORRESPONDENCE_TABLE) and module in nwbfile.processing:
            interfaces = nwbfile.processing[module].data_interfaces
            if name in interfaces:
                interfaces.pop(name)


class _Steps:
    """A tqdm progress bar over the pipeline's steps plus timings.

    Shown only when enabled and stderr is a terminal (tqdm's ``disable=None``), so that logs
    and captured output get no carriage-return debris.
    """

    def __init__(self, total: int, enabled: bool, timings: dict[str, float]):
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=total,
            disable=None if enabled else True,
            desc="nwb-synergy",
            unit="step",
            leave=False,
        )
        self.timings = timings

    def run(self, label: str, func, *args, **kwargs):
        self.bar.set_description(label)
        log.info("%s ...", label)
        t0 = time.perf_counter()
        out = func(*args, **kwargs)
        self.timings[label] = self.timings.get(label, 0.0) + time.perf_counter() - t0
        self.bar.update(1)
        return out

    def close(self) -> None:
        self.bar.close()


# -- synergies --------------------------------------------------------------------------------


def _make_model(method: str, n_synergies: int | str, random_state: int, options: Mapping):
    if method == "nmf":
        from .factorize.nmf import NMF

        return NMF(n_synergies=n_synergies, random_state=random_state, **dict(options))
    from .factorize.rlvm import RLVM

    return RLVM(n_synergies=n_synergies, random_state=random_state, **dict(options))


_K_ATTRIBUTES = {  # fitted attributes of RLVM with a synergy axis, and that axis
    "weights_": 1,
    "activations_": 1,
    "encoder_weights_": 1,
    "encoder_bias_": 0,
    "restart_weights_": 2,
    "activity_": 0,
}


def _drop_silent_latents(model, data: np.ndarray, min_share: float = 1e-3):
    """A copy of a fitted RLVM without the latents that (nearly) never contribute.

    A latent is dropped when its part of the reconstruction, ``activation_k * weights_k``,
    carries less than ``min_share`` of the energy (sum of squares) of the data: what the L1
    penalty leaves of a synergy the data do not need (usually exactly zero; a few isolated
    samples may survive, depending on floating-point details). The fit measures of the copy are
    recomputed. Returns the model (the same object when nothing is dropped) and the dropped
    column indices.
    """
    import copy

    acts = np.asarray(model.activations_, dtype=float)
    weights = np.asarray(model.weights_, dtype=float)
    total = float(np.sum(np.asarray(data, dtype=float) ** 2))
    share = (acts**2).sum(axis=0) * (weights**2).sum(axis=0) / max(total, 1e-300)
    silent = np.flatnonzero(share < min_share)
    if silent.size == 0 or silent.size == acts.shape[1]:
        return model, []
    keep = np.setdiff1d(np.arange(acts.shape[1]), silent)
    pruned = copy.copy(model)
    for name, axis in _K_ATTRIBUTES.items():
        value = getattr(model, name, None)
        if isinstance(value, np.ndarray) and value.ndim > axis:
            setattr(pruned, name, np.take(value, keep, axis=axis))
    pruned.n_synergies_ = int(keep.size)
    pruned._set_fit_scores(np.asarray(data, dtype=float))
    original = model.provenance

    def provenance() -> dict:
        out = original()
        out.update(
            n_synergies=int(keep.size),
            vaf_uncentered=float(pruned.vaf_),
            r2_centered=float(pruned.r2_),
            dropped_latents={
                "columns": [int(i) for i in silent],
                "energy_share": [float(share[i]) for i in silent],
                "min_share": min_share,
            },
        )
        return out

    pruned.provenance = provenance
    return pruned, [int(i) for i in silent]


def _drop_negcp_columns(negcps, dropped: list[int], k: int):
    """The NegCp result without the synergy columns ``dropped`` (see _drop_silent_latents)."""
    import dataclasses

    keep = np.setdiff1d(np.arange(k), dropped)
    changes = {}
    for f in dataclasses.fields(negcps):
        value = getattr(negcps, f.name)
        if isinstance(value, np.ndarray) and value.ndim >= 2 and value.shape[-1] == k:
            changes[f.name] = np.take(value, keep, axis=-1)
    return dataclasses.replace(negcps, **changes)


def _add_negcp_columns(table, negcps, n_synergies: int) -> None:
    mask = np.asarray(_attr(negcps, "mask", "negative_mask", "flags"), dtype=bool)
    if mask.shape != (len(table), n_synergies):
        raise AssertionError(f"NegCp mask shape {mask.shape} does not match the weights")
    table.add_column(
        name="negative_component",
        description=(
            "True where the weight is a negative component (NegCp): clearly below zero and "
            "consistently so across restarts and block-bootstrap resamples (see "
            "negative_component_p_value); muscles x synergies."
        ),
        data=mask,
    )
    try:
        p = np.asarray(_attr(negcps, "p_value", "p_values", "pvalue"), dtype=float)
    except AttributeError:
        return
    if p.shape == mask.shape:
        table.add_column(
            name="negative_component_p_value",
            description=(
                "p-value of the NegCp test of each weight (that it is not below zero); "
                "muscles x synergies."
            ),
            data=np.where(np.isfinite(p), p, 1.0).astype(np.float64),
        )


# -- STA ----------------------------------------------------------------------------------------


def _field_matches(fields, weights, negcp_mask, options, random_state) -> dict[int, dict]:
    from .sta import field_synergy_similarity

    out = {}
    for uid, vec in fields.items():
        vec = np.asarray(vec, dtype=float)
        if not np.any(vec != 0):
            continue
        sim = field_synergy_similarity(vec, weights, random_state=random_state, **dict(options))
        out[uid] = {
            "best_synergy": int(sim.best),
            "cosine": float(sim.best_cosine),
            "p_value": _p_value(sim),
        }
    return out


def _write_match_table(nwbfile, matches: dict[int, dict], synergy_table: str, n_permutations: int):
    from hdmf.common import DynamicTable, DynamicTableRegion, VectorData

    units = nwbfile.units
    ids = np.asarray(units.id.data[:], dtype=np.int64)
    row_of = {int(u): i for i, u in enumerate(ids)}
    uids = list(matches)
    table = DynamicTable(
        name=MATCH_TABLE,
        description=(
            f"For each unit with a post-spike effect: the synergy of {synergy_table} most "
            "similar (cosine) to its muscle field, and the Monte Carlo p-value of that cosine "
            f"against {n_permutations} shuffles of the muscle labels (written by nwb_synergy)."
        ),
        columns=[
            DynamicTableRegion(
                name="unit",
                description="Row of the Units table.",
                data=[row_of[int(u)] for u in uids],
                table=units,
            ),
            VectorData(
                name="synergy_table",
                description="Name of the MuscleSynergy table the synergy belongs to.",
                data=[synergy_table] * len(uids),
            ),
            VectorData(
                name="best_synergy",
                description="Column of that table's weights (0-based) best matching the field.",
                data=np.array([matches[u]["best_synergy"] for u in uids], dtype=np.int64),
            ),
            VectorData(
                name="cosine",
                description="Cosine similarity of the muscle field and that synergy.",
                data=np.array([matches[u]["cosine"] for u in uids], dtype=float),
            ),
            VectorData(
                name="p_value",
                description="Monte Carlo p-value of the cosine (muscle labels shuffled).",
                data=np.array([matches[u]["p_value"] for u in uids], dtype=float),
            ),
        ],
    )
    return table


def _write_correspondence_table(result: Any, synergy_table: str, n_permutations: int):
    from hdmf.common import DynamicTable, VectorData

    values = {
        "p_value": float(result.p_value),
        "statistic": float(result.statistic),
        "coincidences": int(result.coincidences),
        "expected": float(result.expected),
        "n_suppressed": int(result.n_suppressed),
        "n_permutations": int(n_permutations),
    }
    descriptions = {
        "p_value": "Permutation p-value: that the suppressed muscles of inhibitory units "
        "coincide with the NegCps of their best-matching synergy no more than by chance.",
        "statistic": "Coincidences in excess of chance, summed over the inhibitory units: "
        "sum over units of (|suppressed & NegCps of the best synergy| - expected).",
        "coincidences": "Suppressed muscles that are NegCps of the unit's best synergy, summed "
        "over the inhibitory units.",
        "expected": "The same expected by chance given the numbers of suppressed muscles and "
        "NegCps.",
        "n_suppressed": "Suppressed (unit, muscle) pairs over the inhibitory units.",
        "n_permutations": "Number of permutations of the null distribution.",
    }
    columns = [
        VectorData(name=k, description=descriptions[k], data=np.array([v]))
        for k, v in values.items()
    ]
    columns.append(
        VectorData(
            name="synergy_table",
            description="MuscleSynergy table whose NegCps were tested.",
            data=[synergy_table],
        )
    )
    return DynamicTable(
        name=CORRESPONDENCE_TABLE,
        description=(
            "NegCp-PSpS correspondence test (Guo et al. 2025): do the muscles suppressed by "
            "inhibitory units coincide with the negative components of their best-matching "
            "synergy more often than chance? One row (written by nwb_synergy)."
        ),
        columns=columns,
    )


# -- the pipeline -----------------------------------------------------------------------------


def analyze_session(
    path: str | Path,
    output: str | Path | None = None,
    *,
    emg_name: str | None = None,
    methods: Sequence[str] | str | None = METHODS,
    n_synergies: int | str = "auto",
    sta: bool = True,
    overwrite: bool = False,
    random_state: int = 0,
    progress: bool = True,
    conditioning: Mapping[str, Any] | None = None,
    selection: str = "linear_fit",
    nmf_options: Mapping[str, Any] | None = None,
    rlvm_options: Mapping[str, Any] | None = None,
    negcp_options: Mapping[str, Any] | None = None,
    sta_options: Mapping[str, Any] | None = None,
    effect_options: Mapping[str, Any] | None = None,
    n_permutations: int = 10000,
) -> SessionResults:
    """Analyse one NWB session and write the results into NWB.

    Parameters
    ----------
    path
        The NWB file with EMG (and Units for STAs).
    output
        A new NWB file for the source plus the results; None writes them into ``path`` itself,
        atomically (a crash leaves the source byte-identical).
    emg_name
        Which EMG series, when the file holds more than one (see :func:`~nwb_synergy.read_emg`).
    methods
        Factorization methods to run, among "nmf" and "rlvm"; empty for STAs only.
    n_synergies
        Number of synergies, or "auto" (each method chooses with the ``selection`` rule).
    sta
        Compute spike-triggered averages, effects, muscle fields and the correspondence test
        (skipped, with a note, when the file has no Units).
    overwrite
        Replace results already in the file, and an existing ``output``; otherwise refuse.
    random_state
        Seed of every random step (restarts, bootstraps, permutations); stored in the file.
    progress
        Show progress bars (tqdm, on stderr) when stderr is a terminal; never in logs.
    conditioning
        Keyword arguments of :func:`~nwb_synergy.condition_emg` (default
        :data:`DEFAULT_CONDITIONING`).
    selection
        Model-order rule for ``"auto"``: "linear_fit" (default: musclesyneRgies's rule, the
        smallest K from which the centered R^2 curve is a straight line), "vaf" (90% VAF),
        "shuffle" or "cv" (see :func:`~nwb_synergy.select_n_synergies`).
    nmf_options, rlvm_options
        Extra keyword arguments of :class:`~nwb_synergy.NMF` and :class:`~nwb_synergy.RLVM`.
    negcp_options
        Extra keyword arguments of :func:`~nwb_synergy.negative_components`.
    sta_options
        Extra keyword arguments of :func:`~nwb_synergy.spike_triggered_average` (``window``
        defaults to -30..+50 ms).
    effect_options
        Extra keyword arguments of :func:`~nwb_synergy.post_spike_effects`.
    n_permutations
        Monte Carlo shuffles of the field-synergy similarity and the correspondence test.

    Returns
    -------
    SessionResults

    Raises
    ------
    InputError
        Missing file, not NWB, no usable EMG (none, ambiguous, NaN, too short), bad options,
        STAs alone asked on a file without Units.
    ResultsExistError
        Results already in the file (or ``output`` exists) and ``overwrite`` is False.
    """
    from .emg import condition_emg, highpass_rectify
    from .io.read import read_emg
    from .io.save import edit_nwb
    from .io.units import read_spike_trains
    from .io.write import write_sta, write_synergies

    path = Path(path)
    methods = _check_methods(methods)
    if not methods and not sta:
        raise InputError("nothing to do: no synergy method and no STA asked", obj="methods")
    if n_synergies != "auto":
        if isinstance(n_synergies, bool) or not isinstance(n_synergies, (int, np.integer)):
            raise InputError(
                f"must be a positive integer or 'auto', got {n_synergies!r}", obj="n_synergies"
            )
    cond = {**DEFAULT_CONDITIONING, **dict(conditioning or {})}
    sta_opts = {"window": DEFAULT_WINDOW, **dict(sta_options or {})}
    options = {"nmf": dict(nmf_options or {}), "rlvm": dict(rlvm_options or {})}
    if n_synergies == "auto":
        for m in METHODS:  # NMF chooses K for RLVM too
            options[m].setdefault("selection", selection)
    results = SessionResults(source=path, output=Path(output) if output is not None else path)

    with edit_nwb(path, output, overwrite=overwrite) as nwbfile:
        do_sta = sta and _has_units(nwbfile)
        if sta and not do_sta:
            if not methods:
                raise InputError(
                    "no Units table (or an empty one): there are no spikes to average",
                    file=path,
                    obj="units",
                )
            results.notes.append("no Units in the file: synergies only, no STA")
        planned = _planned_names(methods, do_sta)
        if overwrite:
            _remove_stale(nwbfile, planned)
        else:
            _refuse_existing(nwbfile, planned, path)

        n_steps = (
            1
            + (1 + len(methods) if methods else 0)
            + (1 if methods == ("rlvm",) and n_synergies == "auto" else 0)
            + (1 if "rlvm" in methods else 0)
            + (3 if do_sta else 0)
        )
        steps = _Steps(n_steps, progress, results.timings)
        try:
            raw = steps.run("read EMG", read_emg, nwbfile, _emg_choice(nwbfile, emg_name))
            results.emg_series = list(dict.fromkeys(raw.source.series_names)) if raw.source else []
            results.muscle_names = list(raw.muscle_names)
            results.emg_rate = raw.rate
            results.duration = raw.duration
            if raw.source is not None and raw.source.file is None:
                raw.source = type(raw.source)(
                    file=str(path),
                    series_names=raw.source.series_names,
                    channels=raw.source.channels,
                    electrodes=raw.source.electrodes,
                    series=raw.source.series,
                )

            if methods:
                env = steps.run("condition EMG", condition_emg, raw, **cond)
                results.envelope = env
                k_for = {m: n_synergies for m in methods}
                if n_synergies == "auto" and "rlvm" in methods:
                    # RLVM is too slow to fit once per candidate K: it gets NMF's choice,
                    # then drops the latents its L1 penalty switched off (see the docstring)
                    nmf = _make_model("nmf", "auto", random_state, options["nmf"])
                    nmf = steps.run("NMF synergies", nmf.fit, env)
                    if "nmf" in methods:
                        results.models["nmf"] = nmf
                    else:
                        results.notes.append(
                            f"RLVM fitted with the {nmf.weights_.shape[1]} synergies NMF chose "
                            f"({options['nmf']['selection']} rule); NMF not written"
                        )
                    k_for["rlvm"] = int(nmf.weights_.shape[1])
                    options["rlvm"].pop("selection", None)
                for m in methods:
                    if m in results.models:
                        continue
                    model = _make_model(m, k_for[m], random_state, options[m])
                    results.models[m] = steps.run(f"{m.upper()} synergies", model.fit, env)
                if "rlvm" in results.models:
                    from .negcp import negative_components

                    full = results.models["rlvm"]
                    negcps = steps.run(
                        "NegCps",
                        negative_components,
                        full,
                        env,
                        random_state=random_state,
                        **dict(negcp_options or {}),
                    )
                    model, dropped = _drop_silent_latents(full, env.to_numpy())
                    if dropped:
                        results.models["rlvm"] = model
                        negcps = _drop_negcp_columns(negcps, dropped, full.weights_.shape[1])
                        results.notes.append(
                            f"RLVM: {len(dropped)} of {full.weights_.shape[1]} latent(s) "
                            "switched off by the L1 penalty (< 0.1% of the EMG's energy) "
                            f"dropped; {model.weights_.shape[1]} synergies kept"
                        )
                    results.negcps = negcps
                if "nmf" in results.models and "rlvm" in results.models:
                    from .compare import compare_synergies

                    results.comparison = compare_synergies(
                        results.models["nmf"].weights_, results.models["rlvm"].weights_
                    )

            if do_sta:
                _run_sta(
                    results,
                    nwbfile,
                    raw,
                    steps,
                    read_spike_trains,
                    highpass_rectify,
                    cond,
                    sta_opts,
                    dict(effect_options or {}),
                    n_permutations,
                    random_state,
                    progress,
                )

            # -- write ---------------------------------------------------------------
            t0 = time.perf_counter()
            for m, model in results.models.items():
                synergy, activation = write_synergies(
                    nwbfile, model, results.envelope, overwrite=overwrite
                )
                if m == "rlvm" and results.negcps is not None:
                    _add_negcp_columns(synergy, results.negcps, model.weights_.shape[1])
                results.written += [
                    f"processing/behavior/{synergy.name}",
                    f"processing/behavior/{activation.name}",
                ]
            if results.stas:
                parameters = {
                    "sta": {k: _jsonable(v) for k, v in sta_opts.items()},
                    "effects": {k: _jsonable(v) for k, v in (effect_options or {}).items()},
                    "highpass_hz": cond.get("highpass"),
                    "random_state": random_state,
                    "n_permutations": n_permutations,
                }
                table = write_sta(
                    nwbfile,
                    results.stas,
                    results.effects,
                    results.fields,
                    emg=results.sta_emg,
                    parameters=parameters,
                    overwrite=overwrite,
                )
                results.written.append(f"processing/ecephys/{table.name}")
                module = nwbfile.processing["ecephys"]
                synergy_table = "MuscleSynergy" + (results.field_method or "").upper()
                if results.field_matches:
                    module.add(
                        _write_match_table(
                            nwbfile, results.field_matches, synergy_table, n_permutations
                        )
                    )
                    results.written.append(f"processing/ecephys/{MATCH_TABLE}")
                if results.correspondence is not None:
                    module.add(
                        _write_correspondence_table(
                            results.correspondence, synergy_table, n_permutations
                        )
                    )
                    results.written.append(f"processing/ecephys/{CORRESPONDENCE_TABLE}")
            results.timings["write"] = time.perf_counter() - t0
        finally:
            steps.close()
    log.info("results written to %s", results.output)
    return results


def _run_sta(
    results: SessionResults,
    nwbfile,
    raw,
    steps: _Steps,
    read_spike_trains,
    highpass_rectify,
    cond: Mapping[str, Any],
    sta_opts: Mapping[str, Any],
    effect_opts: Mapping[str, Any],
    n_permutations: int,
    random_state: int,
    progress: bool,
) -> None:

    from .sta import (
        muscle_field,
        negcp_psps_correspondence,
        post_spike_effects,
        spike_triggered_average,
    )

    trains = steps.run("read units", read_spike_trains, nwbfile)
    results.spike_trains = trains
    hp = steps.run(
        "high-pass + rectify", highpass_rectify, raw, cutoff=cond.get("highpass") or 50.0
    )
    results.sta_emg = hp
    t0 = time.perf_counter()
    t_end = hp.t_start + hp.n_times / hp.rate
    usable = {}
    for uid, spikes in trains.items():
        spikes = np.asarray(spikes, dtype=float)
        inside = (spikes >= hp.t_start) & (spikes < t_end)
        if not inside.any():
            results.notes.append(f"unit {uid}: no spike inside the EMG recording; skipped")
            continue
        if not inside.all():
            results.notes.append(
                f"unit {uid}: {int((~inside).sum())} spike(s) outside the EMG recording ignored"
            )
        usable[uid] = spikes
    # all units at once: one pass over the EMG for the averages, one for the effects
    stas = spike_triggered_average(hp, usable, outside="exclude", keep_sweeps=False, **sta_opts)
    for uid in list(stas):
        if stas[uid].n_used == 0:
            results.notes.append(f"unit {uid}: no spike with a full window; skipped")
            del stas[uid]
    results.stas.update(stas)
    if stas:
        results.effects.update(post_spike_effects(stas, **effect_opts))
    for uid, frame in results.effects.items():
        results.fields[uid] = np.asarray(muscle_field(frame), dtype=float)
    results.timings["STA, effects, fields"] = time.perf_counter() - t0
    steps.bar.update(1)

    field_method = (
        "rlvm" if "rlvm" in results.models else ("nmf" if "nmf" in results.models else None)
    )
    results.field_method = field_method
    if field_method is None or not results.fields:
        if field_method is None:
            results.notes.append(
                "no synergies: field-synergy similarity and correspondence skipped"
            )
        return
    weights = results.models[field_method].weights_
    t0 = time.perf_counter()
    results.field_matches = _field_matches(
        results.fields,
        weights,
        results.negcp_mask(),
        {"n_permutations": n_permutations},
        random_state,
    )
    mask = results.negcp_mask()
    if mask is None or not mask.any():
        results.notes.append("no NegCps: the NegCp-PSpS correspondence test was not run")
    elif not any(v["PSpS"] for v in results.units_with_effects().values()):
        results.notes.append("no unit with suppression: the correspondence test was not run")
    else:
        results.correspondence = negcp_psps_correspondence(
            results.fields,
            mask,
            weights,
            n_permutations=n_permutations,
            random_state=random_state,
        )
    results.timings["field similarity, correspondence"] = time.perf_counter() - t0


def _jsonable(value: Any) -> Any:
    from .provenance import jsonable

    return json.loads(json.dumps(jsonable(value)))
