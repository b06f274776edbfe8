"""What :func:`~nwb_synergy.analyze_session` found: typed parts and one summary renderer.

:class:`SessionResults` is made of parts, one per kind of result, each filled by one step of
the pipeline (``None`` when the step did not run):

* :class:`SessionInfo`: the source, the output and the EMG that was read;
* :class:`SynergyResults`: the conditioned EMG, the fitted models, their comparison and NegCps;
* :class:`STAResults`: spike trains, spike-triggered averages, post-spike effects, fields;
* :class:`FieldResults`: each muscle field against the synergies, and the correspondence test;
* :class:`GroupResults`: synergies per value of a column of the intervals table, compared;
* :class:`CycleResults`: activations time-normalised per cycle, their FWHM and centre;
* :class:`RunLog`: notes, timings, and what was written where.

:meth:`SessionResults.summary` is the one description of a run (JSON-able);
:meth:`SessionResults.summary_text` renders it for people.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .signals import EMG


@dataclass
class SessionInfo:
    """The analysed file and its EMG.

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
    conditioning
        The :class:`~nwb_synergy.emg.ConditioningChoice` (raw or envelope chain, and why).
    intervals
        The :class:`~nwb_synergy.intervals.Intervals` everything was restricted to, or None.
    group_by
        The column of ``intervals`` the synergies were grouped by, or None.
    cycles
        The cycles (an :class:`~nwb_synergy.intervals.Intervals`) activations were
        time-normalised on, or None.
    """

    source: Path
    output: Path
    emg_series: list[str] = field(default_factory=list)
    muscle_names: list[str] = field(default_factory=list)
    emg_rate: float = float("nan")
    duration: float = float("nan")
    conditioning: Any = None
    intervals: Any = None
    group_by: str | None = None
    cycles: Any = None

    def restriction(self) -> Any:
        """The intervals the analyses are restricted to: ``intervals``, else ``cycles``."""
        return self.intervals if self.intervals is not None else self.cycles


@dataclass
class SynergyResults:
    """Synergies of the conditioned EMG.

    Attributes
    ----------
    envelope
        The conditioned EMG (n_times, n_muscles) the models were fitted on (with intervals:
        their segments, concatenated).
    models
        Method ("nmf", "rlvm") -> fitted model (``weights_``, ``activations_``, ``vaf_``,
        ``r2_``).
    comparison
        :class:`~nwb_synergy.compare.SynergyComparison` of NMF against RLVM, when both ran.
    negcps
        :class:`~nwb_synergy.negcp.NegativeComponents` of the RLVM model, when it ran.
    segments
        :class:`~nwb_synergy.intervals.Segmented` when the EMG was restricted to intervals
        (where each sample of ``envelope`` lies in time), else None.
    """

    envelope: EMG
    models: dict[str, Any] = field(default_factory=dict)
    comparison: Any = None
    negcps: Any = None
    segments: Any = None

    def negcp_mask(self) -> np.ndarray | None:
        """Boolean (n_muscles, K) of the RLVM NegCps, or None."""
        return None if self.negcps is None else np.asarray(self.negcps.mask, dtype=bool)

    def negcp_nmf_weights(self) -> np.ndarray | None:
        """(n_muscles, K) each muscle's relative weight in the NMF synergy matched to each RLVM
        synergy (Guo et al.: NegCp muscles have near-zero NMF weights), or None."""
        if self.negcps is None or "nmf" not in self.models:
            return None
        return self.negcps.matched_nmf_weights(self.models["nmf"])

    def muscle_scale(self) -> np.ndarray:
        """(n_muscles,) what conditioning divided each muscle by (ones without normalising)."""
        from .compare import conditioning_scale

        return conditioning_scale(self.envelope)

    def field_method(self) -> str | None:
        """The method whose synergies muscle fields are compared with (RLVM when it ran)."""
        return next((m for m in ("rlvm", "nmf") if m in self.models), None)


@dataclass
class STAResults:
    """Spike-triggered averages of every unit, their effects and muscle fields.

    Attributes
    ----------
    emg
        The high-pass filtered, rectified EMG at the full rate that was averaged.
    spike_trains
        Unit id -> spike times (s) of the units read.
    stas, effects, fields
        Unit id -> :class:`~nwb_synergy.sta.STAResult`, post-spike effect table (one row per
        muscle), muscle field (n_muscles,); units without a usable spike are left out.
    """

    emg: EMG = field(repr=False)
    spike_trains: dict[int, np.ndarray] = field(default_factory=dict)
    stas: dict[int, Any] = field(default_factory=dict)
    effects: dict[int, Any] = field(default_factory=dict)
    fields: dict[int, np.ndarray] = field(default_factory=dict)

    def units_with_effects(self) -> dict[int, dict[str, list[str]]]:
        """Unit id -> {"PSF": [muscles], "PSpS": [muscles]} for units with any effect."""
        out = {}
        for uid, frame in self.effects.items():
            kinds: dict[str, list[str]] = {"PSF": [], "PSpS": []}
            for muscle, effect in zip(frame.index, frame["effect"], strict=True):
                if effect in kinds:
                    kinds[effect].append(str(muscle))
            if kinds["PSF"] or kinds["PSpS"]:
                out[uid] = kinds
        return out


@dataclass
class FieldResults:
    """Muscle fields against synergies.

    Attributes
    ----------
    method
        The method whose synergies the fields were compared with.
    synergy_table
        Name of that method's MuscleSynergy table.
    matches
        Unit id -> {"best_synergy", "cosine", "p_value"} for units with an effect.
    correspondence
        Result of the NegCp-PSpS correspondence test, or None when it could not run.
    """

    method: str
    synergy_table: str
    matches: dict[int, dict] = field(default_factory=dict)
    correspondence: Any = None


@dataclass
class GroupResults:
    """Synergies fitted per value of a column of the intervals table, and their comparison.

    Attributes
    ----------
    table, column
        The intervals table and the column grouped by.
    groups
        Value (text) -> :class:`SynergyResults` of the intervals with that value.
    intervals
        Value -> the :class:`~nwb_synergy.intervals.Intervals` of that value.
    comparison
        One dict per (method, pair of values): ``method``, ``group_a``, ``group_b``,
        ``n_synergies_a``, ``n_synergies_b``, ``matched_cosine``, ``subspace_similarity``.
    """

    table: str
    column: str
    groups: dict[str, SynergyResults] = field(default_factory=dict)
    intervals: dict[str, Any] = field(default_factory=dict)
    comparison: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CycleResults:
    """Activations time-normalised per cycle, and their FWHM and centre of activity.

    Attributes
    ----------
    table
        The cycles table.
    phase_column
        The column splitting each cycle in phases, or None.
    cycles, metrics
        Method -> :class:`~nwb_synergy.cycles.CycleData` of its activations and
        :class:`~nwb_synergy.cycles.CycleMetrics`.
    """

    table: str
    phase_column: str | None = None
    cycles: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunLog:
    """What happened: notes (what was skipped and why), seconds per step, objects written."""

    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)


@dataclass
class SessionResults:
    """Everything :func:`~nwb_synergy.analyze_session` found, and where it was written.

    The parts are ``info``, ``synergies``, ``sta``, ``fields``, ``groups``, ``cycles`` (None
    when their step did not run) and ``log``; the properties below are shortcuts into them.
    """

    info: SessionInfo
    synergies: SynergyResults | None = None
    sta: STAResults | None = None
    fields: FieldResults | None = None
    log: RunLog = field(default_factory=RunLog)
    options: Any = None
    groups: GroupResults | None = None
    cycles: CycleResults | None = None

    # -- shortcuts -------------------------------------------------------------------------
    @property
    def source(self) -> Path:
        return self.info.source

    @property
    def output(self) -> Path:
        return self.info.output

    @property
    def models(self) -> dict[str, Any]:
        return {} if self.synergies is None else self.synergies.models

    @property
    def envelope(self) -> EMG | None:
        return None if self.synergies is None else self.synergies.envelope

    @property
    def negcps(self) -> Any:
        return None if self.synergies is None else self.synergies.negcps

    @property
    def stas(self) -> dict[int, Any]:
        return {} if self.sta is None else self.sta.stas

    @property
    def effects(self) -> dict[int, Any]:
        return {} if self.sta is None else self.sta.effects

    @property
    def field_matches(self) -> dict[int, dict]:
        return {} if self.fields is None else self.fields.matches

    @property
    def correspondence(self) -> Any:
        return None if self.fields is None else self.fields.correspondence

    @property
    def notes(self) -> list[str]:
        return self.log.notes

    def negcp_mask(self) -> np.ndarray | None:
        """Boolean (n_muscles, K) of the RLVM NegCps, or None."""
        return None if self.synergies is None else self.synergies.negcp_mask()

    def units_with_effects(self) -> dict[int, dict[str, list[str]]]:
        """Unit id -> {"PSF": [muscles], "PSpS": [muscles]} for units with any effect."""
        return {} if self.sta is None else self.sta.units_with_effects()

    # -- the one description of a run -------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """A JSON-able summary of the results."""
        info = self.info
        out: dict[str, Any] = {
            "source": str(info.source),
            "output": str(info.output),
            "emg_series": info.emg_series,
            "n_muscles": len(info.muscle_names),
            "emg_rate_hz": info.emg_rate,
            "duration_s": info.duration,
        }
        if info.conditioning is not None:
            out["conditioning"] = {
                "chain": info.conditioning.chain,
                "asked": info.conditioning.asked,
                "reason": info.conditioning.reason,
                "text": info.conditioning.describe(),
            }
        if info.intervals is not None:
            out["intervals"] = info.intervals.record()
        if info.cycles is not None:
            out["cycle_table"] = info.cycles.record()
        for name, model in self.models.items():
            out[name] = {
                "n_synergies": int(model.weights_.shape[1]),
                "vaf_uncentered": float(model.vaf_),
                "r2_centered": float(model.r2_),
            }
        comparison = None if self.synergies is None else self.synergies.comparison
        if comparison is not None:
            out["nmf_vs_rlvm"] = {
                "matched_cosine": float(comparison.mean_cosine),
                "subspace_similarity": float(comparison.subspace_similarity),
            }
        mask = self.negcp_mask()
        if mask is not None:
            nmf = self.synergies.negcp_nmf_weights()
            out["negcps"] = [
                {"muscle": info.muscle_names[m], "synergy": int(k) + 1}
                | ({} if nmf is None else {"nmf_relative_weight": float(nmf[m, k])})
                for m, k in zip(*np.nonzero(mask), strict=True)
            ]
        if self.stas:
            with_effects = self.units_with_effects()
            out["n_units"] = len(self.stas)
            out["units_with_effects"] = {str(u): v for u, v in with_effects.items()}
        if self.correspondence is not None:
            out["correspondence_p_value"] = float(self.correspondence.p_value)
        if self.groups is not None:
            out["groups"] = {
                "table": self.groups.table,
                "column": self.groups.column,
                "values": {
                    value: {
                        "n_intervals": len(self.groups.intervals[value]),
                        **{m: int(model.weights_.shape[1]) for m, model in part.models.items()},
                    }
                    for value, part in self.groups.groups.items()
                },
                "comparison": list(self.groups.comparison),
            }
        if self.cycles is not None:
            out["cycles"] = {
                "table": self.cycles.table,
                "phase_column": self.cycles.phase_column,
                **{m: metrics.record() for m, metrics in self.cycles.metrics.items()},
            }
        out["notes"] = list(self.log.notes)
        out["written"] = list(self.log.written)
        out["timings_s"] = {k: round(v, 2) for k, v in self.log.timings.items()}
        return out

    def summary_text(self) -> str:
        """:meth:`summary` rendered for people, a few lines."""
        s = self.summary()
        lines = [
            f"{s['source']}: EMG {', '.join(s['emg_series']) or '?'} "
            f"({s['n_muscles']} muscles, {s['emg_rate_hz']:g} Hz, {s['duration_s']:.1f} s)"
        ]
        if "conditioning" in s:
            lines.append(f"  conditioning: {s['conditioning']['text']}")
        if "intervals" in s:
            iv = s["intervals"]
            lines.append(
                f"  restricted to the {iv['n_intervals']} intervals of '{iv['table']}' "
                f"({iv['total_s']:.1f} s)"
            )
        elif "cycle_table" in s:
            iv = s["cycle_table"]
            lines.append(
                f"  restricted to the {iv['n_intervals']} cycles of '{iv['table']}' "
                f"({iv['total_s']:.1f} s)"
            )
        for name in self.models:
            m = s[name]
            lines.append(
                f"  {name.upper()}: {m['n_synergies']} synergies, VAF "
                f"{100 * m['vaf_uncentered']:.1f}% (uncentered), R^2 "
                f"{100 * m['r2_centered']:.1f}% (centered)"
            )
        if "nmf_vs_rlvm" in s:
            c = s["nmf_vs_rlvm"]
            lines.append(
                f"  NMF vs RLVM: matched cosine {c['matched_cosine']:.3f}, subspace "
                f"similarity {c['subspace_similarity']:.3f}"
            )
        if "negcps" in s:
            found = [
                f"{n['muscle']} (syn {n['synergy']}"
                + (
                    f", NMF weight {n['nmf_relative_weight']:.2f})"
                    if "nmf_relative_weight" in n
                    else ")"
                )
                for n in s["negcps"]
            ]
            lines.append(
                f"  NegCps (RLVM): {len(found)}" + (": " + ", ".join(found) if found else "")
            )
        if "n_units" in s:
            with_effects = s["units_with_effects"].values()
            n_psf = sum(1 for v in with_effects if v["PSF"])
            n_psps = sum(1 for v in with_effects if v["PSpS"])
            lines.append(
                f"  STA: {s['n_units']} units, {len(with_effects)} with effects "
                f"({n_psf} with facilitation, {n_psps} with suppression)"
            )
        if "correspondence_p_value" in s:
            lines.append(f"  NegCp-PSpS correspondence: p = {s['correspondence_p_value']:.3g}")
        if "groups" in s:
            g = s["groups"]
            lines.append(f"  groups by '{g['column']}' of '{g['table']}':")
            for value, part in g["values"].items():
                ks = ", ".join(f"{m.upper()} {k}" for m, k in part.items() if m != "n_intervals")
                lines.append(f"    {value}: {part['n_intervals']} intervals, synergies {ks}")
            for row in g["comparison"]:
                lines.append(
                    f"    {row['method'].upper()} {row['group_a']} vs {row['group_b']}: matched "
                    f"cosine {row['matched_cosine']:.3f}, subspace similarity "
                    f"{row['subspace_similarity']:.3f}"
                )
        if "cycles" in s:
            c = s["cycles"]
            phase = f", phases split at '{c['phase_column']}'" if c["phase_column"] else ""
            lines.append(f"  cycles of '{c['table']}'{phase}:")
            for method in self.cycles.metrics:
                rec = c[method]
                parts = [
                    f"syn {k + 1} FWHM {w:.0f}% CoA {a:.0f}%"
                    for k, (w, a) in enumerate(
                        zip(rec["fwhm_percent"], rec["coa_percent"], strict=True)
                    )
                ]
                lines.append(
                    f"    {method.upper()} ({rec['n_cycles']} cycles, % of cycle): "
                    + "; ".join(parts)
                )
        lines += [f"  note: {note}" for note in s["notes"]]
        if s["written"]:
            lines.append(f"  results written to {s['output']}: " + ", ".join(s["written"]))
        return "\n".join(lines)
