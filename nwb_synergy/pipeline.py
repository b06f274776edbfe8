"""One NWB session end to end: :func:`analyze_session`, a short list of named steps.

::

    results = analyze_session("session.nwb", "results.nwb")
    print(results.summary_text())

The steps, in order (:data:`STEPS`); each is a plain function with typed inputs and outputs,
run by :func:`analyze_session` under a progress bar, and each fills one part of
:class:`~nwb_synergy.results.SessionResults`:

=================  ==================  ============================================  ==========
step               function            does                                          fills
=================  ==================  ============================================  ==========
read EMG           :func:`read_step`   the EMG (any layout, in volts)                ``info``
(read EMG)         :func:`inspect_step`    raw or envelope chain; intervals, cycles  ``info``
condition EMG      :func:`condition_step`  envelopes (high-pass, rectify, low-pass)  ``synergies``
synergies          :func:`synergy_step`    NMF (K by the model-order rule), RLVM     ``synergies``
NegCps             :func:`negcp_step`  NegCps of RLVM, silent latents dropped        ``synergies``
groups             :func:`group_step`  synergies per value of a column, compared     ``groups``
cycles             :func:`cycle_step`  activations per cycle, FWHM, centre           ``cycles``
STA                :func:`sta_step`    STAs, post-spike effects, muscle fields       ``sta``
fields             :func:`field_step`  fields against synergies, correspondence      ``fields``
write              :func:`write_step`  every result into the NWB file (``io.write``)  ``log``
=================  ==================  ============================================  ==========

To add an analysis step: write one function here taking what it needs and returning a typed
result, add its label to :data:`STEPS` and its call to :func:`analyze_session`, and give its
result a part in ``results.py``. To add a result type to the file: one writer in
``io/write.py`` called from :func:`write_step`, and one figure in ``plot.py`` drawn from what
``io/results.py`` reads. Options live in :class:`AnalysisOptions` (stored with the results).

With ``n_synergies="auto"`` NMF chooses K by the model-order rule (musclesyneRgies's linear fit
of the R^2 curve by default) and RLVM, far too slow to fit once per candidate K, is fitted with
NMF's K; the RLVM latents its L1 penalty switches off are then dropped
(:meth:`~nwb_synergy.RLVM.drop_silent_latents`). NMF has no offset, so it spends a synergy on
the tonic activity of the muscles that NegCps inhibit, which RLVM's offset carries instead.

Real files
----------
``conditioning="auto"`` (the default) chooses the raw or the envelope chain from the data
(:func:`~nwb_synergy.emg.choose_conditioning`) and says which and why (log, summary,
provenance); an envelope cannot give spike-triggered averages, so STAs alone are refused and
a full analysis runs synergies only, with a note. ``intervals="trials"`` restricts everything
to the intervals of that ``TimeIntervals`` table: synergies from the concatenated segments
(filters run per segment), STAs from spikes whose whole window lies inside one interval;
activations are written on the regular time grid, 0 outside the intervals (not estimated
there: the extension takes finite, non-negative activations, and the intervals table says
where they hold).
``group_by="condition"`` also fits synergies per value of that column (one pair of tables per
value, ``MuscleSynergy<METHOD>_<value>``) and compares them (``SynergyGroupComparison``).
``cycles="gait_cycles"`` time-normalises the activations per cycle (and restricts the
analyses to the cycles unless ``intervals`` is given) and reports each synergy's FWHM and
centre of activity (:mod:`nwb_synergy.cycles`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError, ResultsExistError
from .factorize.order import DEFAULT_SELECTION
from .results import (
    CycleResults,
    FieldResults,
    GroupResults,
    SessionInfo,
    SessionResults,
    STAResults,
    SynergyResults,
)
from .signals import EMG

log = logging.getLogger("nwb_synergy")

METHODS = ("nmf", "rlvm")
#: the pipeline's steps, in order (labels of the progress bar and of ``log.timings``)
STEPS = (
    "read EMG",
    "condition EMG",
    "synergies",
    "NegCps",
    "groups",
    "cycles",
    "STA",
    "fields",
    "write",
)

#: default EMG conditioning (condition_emg keyword arguments; "chain": auto, raw or envelope)
DEFAULT_CONDITIONING: dict[str, Any] = {
    "chain": "auto",
    "highpass": 50.0,
    "lowpass": 20.0,
    "resample": 100.0,
    "subtract_min": True,
    "normalize": "max",
}
#: default spike-triggered-average window, seconds
DEFAULT_WINDOW = (-0.03, 0.05)
#: bytes of raw EMG the conditioning and the STAs read at a time: the raw recording is never
#: in memory whole (read lazily, conditioned in chunks, high-passed per chunk for the STAs)
CHUNK_BYTES = 16 * 2**20


@dataclass(frozen=True)
class AnalysisOptions:
    """Everything that decides what :func:`analyze_session` computes (stored with the results).

    Attributes
    ----------
    emg_name
        Which EMG series, when the file holds more than one (see :func:`~nwb_synergy.read_emg`).
    methods
        Factorization methods to run, among "nmf" and "rlvm"; empty for STAs only.
    n_synergies
        Number of synergies, or "auto" (NMF chooses with the ``selection`` rule).
    selection
        Model-order rule for "auto": "linear_fit" (musclesyneRgies's rule), "vaf", "shuffle"
        or "cv" (see :func:`~nwb_synergy.select_n_synergies`).
    sta
        Compute spike-triggered averages, effects, muscle fields and the correspondence test
        (skipped, with a note, when the file has no Units).
    random_state
        Seed of every random step (restarts, bootstraps, permutations).
    conditioning
        "auto" (default: raw or envelope chain chosen from the data), "raw" or "envelope";
        or keyword arguments of :func:`~nwb_synergy.condition_emg` (``chain`` among them),
        on top of :data:`DEFAULT_CONDITIONING`.
    nmf_options, rlvm_options
        Extra keyword arguments of :class:`~nwb_synergy.NMF` and :class:`~nwb_synergy.RLVM`.
    negcp_options
        Extra keyword arguments of :func:`~nwb_synergy.negative_components`.
    sta_options
        Extra keyword arguments of :func:`~nwb_synergy.spike_triggered_average` (``window``
        defaults to :data:`DEFAULT_WINDOW`).
    effect_options
        Extra keyword arguments of :func:`~nwb_synergy.post_spike_effects`.
    n_permutations
        Monte Carlo shuffles of the field-synergy similarity and the correspondence test.
    intervals
        Name of a ``TimeIntervals`` table (``"trials"``): restrict every analysis to its
        intervals. None: the whole recording.
    group_by
        A column of the ``intervals`` table: also fit synergies per value of it.
    cycles
        Name of a ``TimeIntervals`` table of cycles (``"gait_cycles"``): time-normalise the
        activations per cycle and measure them (restricts the analyses to the cycles when
        ``intervals`` is None).
    cycle_points
        Points per cycle (or per phase, a tuple); None: 100 per phase when the cycles have a
        phase split (a ``*_time`` column inside every cycle), else 200.
    """

    emg_name: str | None = None
    methods: tuple[str, ...] = METHODS
    n_synergies: int | str = "auto"
    selection: str = DEFAULT_SELECTION
    sta: bool = True
    random_state: int = 0
    conditioning: dict[str, Any] = field(default_factory=dict)
    nmf_options: dict[str, Any] = field(default_factory=dict)
    rlvm_options: dict[str, Any] = field(default_factory=dict)
    negcp_options: dict[str, Any] = field(default_factory=dict)
    sta_options: dict[str, Any] = field(default_factory=dict)
    effect_options: dict[str, Any] = field(default_factory=dict)
    n_permutations: int = 10000
    intervals: str | None = None
    group_by: str | None = None
    cycles: str | None = None
    cycle_points: int | tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        from .factorize.base import check_n_synergies

        methods = (self.methods,) if isinstance(self.methods, str) else (self.methods or ())
        checked: list[str] = []
        for m in methods:
            m = str(m).lower()
            if m not in METHODS:
                raise InputError(f"unknown method {m!r}; choose from {METHODS}", obj="methods")
            if m not in checked:
                checked.append(m)
        if not checked and not self.sta:
            raise InputError("nothing to do: no synergy method and no STA asked", obj="methods")
        check_n_synergies(self.n_synergies)
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "methods", tuple(checked))
        conditioning = self.conditioning
        if isinstance(conditioning, str):
            conditioning = {"chain": conditioning}
        set_(self, "conditioning", {**DEFAULT_CONDITIONING, **dict(conditioning or {})})
        self._check_real_file_options(checked)
        set_(self, "sta_options", {"window": DEFAULT_WINDOW, **dict(self.sta_options or {})})
        for name in ("nmf_options", "rlvm_options", "negcp_options", "effect_options"):
            set_(self, name, dict(getattr(self, name) or {}))

    def _check_real_file_options(self, methods: list[str]) -> None:
        from .emg import CHAINS

        chain = self.conditioning.get("chain")
        if chain not in CHAINS:
            raise InputError(
                f"conditioning must be one of {CHAINS}, got {chain!r}", obj="conditioning"
            )
        for name in ("intervals", "group_by", "cycles"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InputError(f"must be a table or column name, got {value!r}", obj=name)
        if self.group_by is not None and self.intervals is None:
            raise InputError(
                "grouping needs the intervals table whose column it uses: give intervals "
                "(--intervals NAME) too",
                obj="group_by",
            )
        if self.group_by is not None and not methods:
            raise InputError("grouping applies to synergies: no method asked", obj="group_by")

    def model_options(self, method: str, n_synergies: int | str) -> dict[str, Any]:
        """Keyword arguments of the ``method``'s estimator for ``n_synergies``."""
        options = dict(self.nmf_options if method == "nmf" else self.rlvm_options)
        if n_synergies == "auto":
            options.setdefault("selection", self.selection)
        else:
            options.pop("selection", None)
        return {"n_synergies": n_synergies, "random_state": self.random_state, **options}

    def result_names(self, sta: bool) -> list[str]:
        """Paths of the objects a run with these options writes (``sta``: Units present)."""
        from .io.write import CORRESPONDENCE_TABLE, MATCH_TABLE, STA_TABLE

        names = []
        for m in self.methods:
            names += [
                f"processing/behavior/MuscleSynergy{m.upper()}",
                f"processing/behavior/SynergyActivation{m.upper()}",
            ]
        if sta:
            names += [
                f"processing/ecephys/{n}" for n in (STA_TABLE, MATCH_TABLE, CORRESPONDENCE_TABLE)
            ]
        return names


# -- the steps -----------------------------------------------------------------------------------


def read_step(nwbfile, info: SessionInfo, options: AnalysisOptions) -> EMG:
    """Read the raw EMG (in volts, lazily: rows are read when used) and describe it in ``info``."""
    from .io.read import read_emg

    raw = read_emg(nwbfile, options.emg_name, min_muscles=2 if options.methods else 1, load=False)
    if raw.source is not None and raw.source.file is None:
        raw.source = dataclasses.replace(raw.source, file=str(info.source))
    info.emg_series = list(dict.fromkeys(raw.source.series_names)) if raw.source else []
    info.muscle_names = list(raw.muscle_names)
    info.emg_rate = raw.rate
    info.duration = raw.duration
    return raw


def inspect_step(
    nwbfile, raw: EMG, info: SessionInfo, options: AnalysisOptions, notes: list[str]
) -> None:
    """Choose the conditioning chain; read the intervals, groups and cycles asked for.

    Fills ``info.conditioning``, ``info.intervals``, ``info.group_by`` and ``info.cycles``.
    Intervals and cycles not wholly inside the EMG recording are left out, with a note.
    """
    from .emg import RAW_CHAIN, choose_conditioning
    from .io.intervals import read_cycles, read_intervals

    settings = {k: v for k, v in options.conditioning.items() if k in RAW_CHAIN}
    choice = choose_conditioning(raw, options.conditioning["chain"], **settings)
    log.info("EMG conditioning: %s", choice.describe())
    info.conditioning = choice
    if choice.chain == "envelope" and choice.asked == "auto":
        notes.append(f"envelope chain: the EMG {choice.reason}")
    t_first, t_stop = raw.t_start, raw.t_start + raw.duration
    for name in ("intervals", "cycles"):
        table = getattr(options, name)
        if table is None:
            continue
        if name == "intervals":
            found = read_intervals(nwbfile, table, file=info.source)
        else:
            found = read_cycles(nwbfile, table, file=info.source)
        inside = found.within(t_first, t_stop)
        if len(inside) < len(found):
            notes.append(
                f"{len(found) - len(inside)} of the {len(found)} {name} of '{found.name}' "
                "not wholly inside the EMG recording: left out"
            )
        if not len(inside):
            raise found.error(
                f"no interval lies inside the EMG recording ({t_first:g}-{t_stop:g} s)"
            )
        setattr(info, name, inside)
    if options.group_by is not None:
        info.intervals.groups(options.group_by)  # an unknown column fails here, early
        info.group_by = options.group_by


def condition_step(raw: EMG, options: AnalysisOptions, info: SessionInfo | None = None):
    """The envelopes the synergies are fitted on (:func:`~nwb_synergy.condition_emg`).

    The raw EMG is read and filtered :data:`CHUNK_BYTES` at a time (unless the options set
    ``chunk_size``); only the envelopes, at their lower rate, are held whole. With intervals
    (or cycles) in ``info``, a :class:`~nwb_synergy.intervals.Segmented`: the segments
    conditioned one by one (each read whole) and concatenated
    (:func:`~nwb_synergy.emg.condition_segments`).
    """
    from .emg import condition_emg, condition_segments

    settings = dict(options.conditioning)
    settings.setdefault("chunk_size", max(1 << 14, CHUNK_BYTES // (8 * raw.n_muscles)))
    if info is None or info.conditioning is None:
        return condition_emg(raw, **settings)
    restriction = info.restriction()
    if restriction is not None:
        return condition_segments(raw, restriction, chain=info.conditioning)
    return condition_emg(raw, chain=info.conditioning, chunk_size=settings["chunk_size"])


def synergy_step(envelope: Any, options: AnalysisOptions, notes: list[str]) -> SynergyResults:
    """Fit each method; with "auto", NMF chooses K and RLVM is fitted with NMF's K.

    ``envelope`` is the conditioned EMG, or the :class:`~nwb_synergy.intervals.Segmented`
    segments of intervals (the models are fitted on their concatenation).
    """
    from .factorize import NMF, RLVM
    from .intervals import Segmented

    estimators = {"nmf": NMF, "rlvm": RLVM}
    segments = envelope if isinstance(envelope, Segmented) else None
    if segments is not None:
        envelope = segments.emg
    out = SynergyResults(envelope=envelope, segments=segments)
    k = options.n_synergies
    if k == "auto" and "rlvm" in options.methods:
        nmf = NMF(**options.model_options("nmf", "auto")).fit(envelope)
        k = int(nmf.weights_.shape[1])
        if "nmf" in options.methods:
            out.models["nmf"] = nmf
        else:
            notes.append(
                f"RLVM fitted with the {k} synergies NMF chose ({options.selection} rule); "
                "NMF not written"
            )
    for method in options.methods:
        if method not in out.models:
            model = estimators[method](**options.model_options(method, k))
            out.models[method] = model.fit(envelope)
    return out


def negcp_step(synergies: SynergyResults, options: AnalysisOptions, notes: list[str]) -> None:
    """NegCps of the RLVM synergies; then RLVM's silent latents dropped, NMF vs RLVM compared."""
    from .compare import compare_synergies
    from .negcp import negative_components

    full = synergies.models["rlvm"]
    negcps = negative_components(
        full, synergies.envelope, random_state=options.random_state, **options.negcp_options
    )
    model = full.drop_silent_latents(synergies.envelope)
    dropped = model.dropped_latents_
    if dropped["columns"]:
        negcps = negcps.drop_synergies(dropped["columns"])
        notes.append(
            f"RLVM: {len(dropped['columns'])} of {full.weights_.shape[1]} latent(s) switched "
            f"off by the L1 penalty (< {100 * dropped['min_share']:g}% of the EMG's energy) "
            f"dropped; {model.weights_.shape[1]} synergies kept"
        )
    synergies.models["rlvm"] = model
    synergies.negcps = negcps
    if "nmf" in synergies.models:
        synergies.comparison = compare_synergies(synergies.models["nmf"].weights_, model.weights_)


def group_step(
    synergies: SynergyResults, options: AnalysisOptions, info: SessionInfo, notes: list[str]
) -> GroupResults:
    """Synergies per value of ``options.group_by``, and each pair of groups compared.

    Each group's samples are taken from the conditioned segments of all the intervals, so the
    groups share one conditioning (and one amplitude normalisation) and their weights compare.
    """
    from .compare import compare_synergies

    groups = info.intervals.groups(info.group_by)
    out = GroupResults(table=info.intervals.name, column=info.group_by)
    for value, intervals in groups.items():
        part = synergy_step(synergies.segments.subset(intervals), options, notes)
        if "rlvm" in options.methods:
            negcp_step(part, options, notes)
        out.groups[value] = part
        out.intervals[value] = intervals
    values = list(out.groups)
    for method in options.methods:
        for i, a in enumerate(values):
            for b in values[i + 1 :]:
                comp = compare_synergies(
                    out.groups[a].models[method].weights_, out.groups[b].models[method].weights_
                )
                out.comparison.append(
                    {
                        "method": method,
                        "group_a": a,
                        "group_b": b,
                        "n_synergies_a": int(out.groups[a].models[method].weights_.shape[1]),
                        "n_synergies_b": int(out.groups[b].models[method].weights_.shape[1]),
                        "matched_cosine": float(comp.mean_cosine),
                        "subspace_similarity": float(comp.subspace_similarity),
                    }
                )
    if len(values) < 2:
        notes.append(f"'{info.group_by}' has a single value ({values[0]}): nothing to compare")
    return out


def cycle_step(
    synergies: SynergyResults, options: AnalysisOptions, info: SessionInfo, notes: list[str]
) -> CycleResults:
    """Each model's activations time-normalised per cycle; FWHM and centre of activity."""
    from .cycles import activation_metrics, normalize_cycles

    cycles = info.cycles
    out = CycleResults(table=cycles.name, phase_column=cycles.phase_column)
    for method, model in synergies.models.items():
        activations = np.asarray(model.activations_, dtype=float)
        t0 = synergies.envelope.t_start
        if synergies.segments is not None:  # NaN between the segments: no cycle spans them
            activations = synergies.segments.fill(activations)
            t0 = synergies.segments.grid_t_start
        data = normalize_cycles(
            activations,
            cycles,
            points=options.cycle_points,
            rate=synergies.envelope.rate,
            t_start=t0,
        )
        data.names = [f"synergy {k + 1}" for k in range(activations.shape[1])]
        if data.dropped and method == next(iter(synergies.models)):
            notes.append(
                f"{len(data.dropped)} of the {len(cycles)} cycles of '{cycles.name}' left out "
                f"of the time normalisation ({'; '.join(sorted(set(data.dropped.values())))})"
            )
        out.cycles[method] = data
        out.metrics[method] = activation_metrics(data)
    return out


def sta_step(
    nwbfile, raw: EMG, options: AnalysisOptions, notes: list[str], info: SessionInfo | None = None
) -> STAResults:
    """STAs of the rectified high-passed EMG for every unit, their effects and muscle fields.

    With intervals (or cycles) in ``info``: each segment high-passed alone, and only spikes
    whose whole window lies inside one interval averaged.
    """
    from .emg import highpass_rectify, highpass_rectify_segments
    from .io.units import read_spike_trains
    from .sta import muscle_field, post_spike_effects, spike_triggered_average

    trains = read_spike_trains(nwbfile)
    cutoff = options.conditioning.get("highpass") or 50.0
    restriction = None if info is None else info.restriction()
    # lazy: the STAs read the rectified high-passed EMG in ordered chunks, each filtered when read
    if restriction is None:
        hp, spans = highpass_rectify(raw, cutoff=cutoff, lazy=True), None
    else:
        hp, spans = highpass_rectify_segments(raw, restriction.merged(), cutoff=cutoff, lazy=True)
        if not len(spans):
            raise restriction.error("every interval is too short for the high-pass filter")
    out = STAResults(emg=hp, spike_trains=trains)
    t_end = hp.t_start + hp.n_times / hp.rate
    usable = {}
    for uid, spikes in trains.items():
        spikes = np.asarray(spikes, dtype=float)
        inside = (spikes >= hp.t_start) & (spikes < t_end)
        if not inside.any():
            notes.append(f"unit {uid}: no spike inside the EMG recording; skipped")
            continue
        if not inside.all():
            notes.append(
                f"unit {uid}: {int((~inside).sum())} spike(s) outside the EMG recording ignored"
            )
        usable[uid] = spikes
    # all units at once: one pass over the EMG for the averages (and the ISAs), one for the
    # per-spike statistics of the effects
    sta_options = {"chunk_bytes": CHUNK_BYTES, **options.sta_options}
    if options.effect_options.get("method", "isa") == "isa":  # the effects' ISA, same pass
        sta_options.setdefault("baseline", "isa")
    stas = spike_triggered_average(
        hp, usable, outside="exclude", keep_sweeps=False, intervals=spans, **sta_options
    )
    where = "" if spans is None else f" inside the intervals of '{restriction.name}'"
    for uid in list(stas):
        if stas[uid].n_used == 0:
            notes.append(f"unit {uid}: no spike with a full window{where}; skipped")
            del stas[uid]
    out.stas.update(stas)
    if stas:
        effect_options = {"chunk_bytes": CHUNK_BYTES, **options.effect_options}
        out.effects.update(post_spike_effects(stas, **effect_options))
    for uid, frame in out.effects.items():
        out.fields[uid] = np.asarray(muscle_field(frame), dtype=float)
    return out


def field_step(
    sta: STAResults, synergies: SynergyResults | None, options: AnalysisOptions, notes: list[str]
) -> FieldResults | None:
    """Each muscle field against the synergies, and the NegCp-PSpS correspondence test."""
    from .sta import field_synergy_similarity, negcp_psps_correspondence

    method = None if synergies is None else synergies.field_method()
    if method is None:
        notes.append("no synergies: field-synergy similarity and correspondence skipped")
        return None
    if not sta.fields:
        return None
    weights = synergies.models[method].weights_
    out = FieldResults(method=method, synergy_table=f"MuscleSynergy{method.upper()}")
    for uid, vec in sta.fields.items():
        if not np.any(vec != 0):
            continue
        sim = field_synergy_similarity(
            vec,
            weights,
            random_state=options.random_state,
            n_permutations=options.n_permutations,
        )
        out.matches[uid] = {
            "best_synergy": int(sim.best),
            "cosine": float(sim.best_cosine),
            "p_value": float(sim.p_value),
        }
    mask = synergies.negcp_mask()
    if mask is None or not mask.any():
        notes.append("no NegCps: the NegCp-PSpS correspondence test was not run")
    elif not any(v["PSpS"] for v in sta.units_with_effects().values()):
        notes.append("no unit with suppression: the correspondence test was not run")
    else:
        out.correspondence = negcp_psps_correspondence(
            sta.fields,
            mask,
            weights,
            n_permutations=options.n_permutations,
            random_state=options.random_state,
        )
    return out


def write_step(
    nwbfile,
    results: SessionResults,
    options: AnalysisOptions,
    overwrite: bool,
    source: dict[str, Any] | None = None,
) -> list[str]:
    """Write every result with its writer from ``io.write``; returns the paths written.

    ``source`` (:func:`~nwb_synergy.io.save.source_reference`) is stored in the provenance of
    every table: the source's identifier, path or URL, and the object paths of its EMG and Units.
    """
    from .io.write import (
        write_correspondence,
        write_field_matches,
        write_group_comparison,
        write_sta,
    )
    from .provenance import jsonable
    from .sta.effects import DEFAULT_BASELINE, DEFAULT_TEST

    written = []
    provenance = {"analysis_options": jsonable(dataclasses.asdict(options))}
    info = results.info
    if source is not None:
        provenance["source"] = jsonable(source)
    if results.synergies is not None:
        cycles = results.cycles
        written += _write_synergy_set(
            nwbfile,
            results.synergies,
            info,
            provenance,
            overwrite,
            cycles=None if cycles is None else cycles.metrics,
        )
    if results.groups is not None:
        for value, part in results.groups.groups.items():
            written += _write_synergy_set(
                nwbfile,
                part,
                info,
                provenance,
                overwrite,
                group=(results.groups.column, value, results.groups.intervals[value]),
            )
        if results.groups.comparison:
            table = write_group_comparison(
                nwbfile,
                results.groups.comparison,
                table=results.groups.table,
                column=results.groups.column,
                overwrite=overwrite,
            )
            written.append(f"processing/behavior/{table.name}")
    if results.sta is not None and results.sta.stas:
        parameters = {
            "sta": jsonable(options.sta_options),
            "effects": jsonable(
                {"baseline": DEFAULT_BASELINE, "test": DEFAULT_TEST, **options.effect_options}
            ),
            "highpass_hz": options.conditioning.get("highpass"),
            "random_state": options.random_state,
            "n_permutations": options.n_permutations,
        }
        table = write_sta(
            nwbfile,
            results.sta.stas,
            results.sta.effects,
            results.sta.fields,
            emg=results.sta.emg,
            parameters=parameters,
            overwrite=overwrite,
            provenance=provenance,
        )
        written.append(f"processing/ecephys/{table.name}")
    fields = results.fields
    if fields is not None and fields.matches:
        table = write_field_matches(
            nwbfile,
            fields.matches,
            synergy_table=fields.synergy_table,
            n_permutations=options.n_permutations,
            overwrite=overwrite,
        )
        written.append(f"processing/ecephys/{table.name}")
    if fields is not None and fields.correspondence is not None:
        table = write_correspondence(
            nwbfile,
            fields.correspondence,
            synergy_table=fields.synergy_table,
            n_permutations=options.n_permutations,
            overwrite=overwrite,
        )
        written.append(f"processing/ecephys/{table.name}")
    return written


def _analysis_context(
    info: SessionInfo, group: tuple | None = None, cycle_metrics: Any = None
) -> dict[str, Any]:
    """What a synergy table was computed on: chain, intervals, group, cycles (JSON-able)."""
    out: dict[str, Any] = {}
    if info.conditioning is not None:
        out["conditioning"] = info.conditioning.record()
    restriction = info.restriction()
    if restriction is not None:
        out["intervals"] = restriction.record()
    if group is not None:
        column, value, intervals = group
        out["group"] = {
            "table": intervals.name,
            "column": column,
            "value": value,
            **intervals.record(),
        }
    if info.cycles is not None:
        out["cycles"] = {
            "table": info.cycles.name,
            "phase": info.cycles.phase_column,
            "metrics": None if cycle_metrics is None else cycle_metrics.record(),
        }
    return out


def _synergy_description(
    model: Any, method: str, info: SessionInfo, group: tuple | None
) -> str | None:
    """The MuscleSynergy description of a restricted (or grouped) fit; None otherwise."""
    restriction = info.restriction()
    if restriction is None:
        return None
    k, n = model.weights_.shape[1], model.weights_.shape[0]
    if group is not None:
        column, value, intervals = group
        where = (
            f"the {len(intervals)} intervals of table '{intervals.name}' whose column "
            f"'{column}' is '{value}' ({float(intervals.durations.sum()):.1f} s)"
        )
    else:
        where = (
            f"the {len(restriction)} intervals of table '{restriction.name}' "
            f"({float(restriction.durations.sum()):.1f} s)"
        )
    chain = "" if info.conditioning is None else f", {info.conditioning.chain} chain"
    return (
        f"{k} muscle synergies of {n} muscles extracted by {method.upper()} with nwb_synergy "
        f"from the EMG of {where}, each segment conditioned alone{chain}. One row per muscle; "
        "column k of 'weights' is synergy k. Activations on the regular time grid of the "
        "conditioned EMG, set to 0 outside those intervals (not estimated there)."
    )


def _write_synergy_set(
    nwbfile,
    part: SynergyResults,
    info: SessionInfo,
    provenance: dict[str, Any],
    overwrite: bool,
    *,
    group: tuple | None = None,
    cycles: dict[str, Any] | None = None,
) -> list[str]:
    """Write the models of one synergy set (pooled, or one group); returns the paths."""
    from .io.write import Synergies, group_suffix, write_synergies

    written = []
    emg = part.envelope if part.segments is None else part.segments.grid_emg()
    for method, model in part.models.items():
        record: Any = model
        if part.segments is not None:
            record = dataclasses.replace(
                Synergies.from_model(model),
                activations=part.segments.fill(model.activations_, fill_value=0.0),
            )
        context = _analysis_context(info, group, None if cycles is None else cycles.get(method))
        synergy, activation = write_synergies(
            nwbfile,
            record,
            emg,
            name=None if group is None else group_suffix(method, group[1]),
            description=_synergy_description(model, method, info, group),
            overwrite=overwrite,
            negative_components=part.negcps if method == "rlvm" else None,
            matched_nmf_weights=part.negcp_nmf_weights() if method == "rlvm" else None,
            provenance={**provenance, "analysis_context": context} if context else provenance,
        )
        written += [
            f"processing/behavior/{synergy.name}",
            f"processing/behavior/{activation.name}",
        ]
    return written


def _group_result_names(info: SessionInfo, options: AnalysisOptions) -> list[str]:
    from .io.write import GROUP_COMPARISON_TABLE, group_suffix

    names = []
    for value in info.intervals.groups(info.group_by):
        for m in options.methods:
            suffix = group_suffix(m, value)
            names += [
                f"processing/behavior/MuscleSynergy{suffix}",
                f"processing/behavior/SynergyActivation{suffix}",
            ]
    return names + [f"processing/behavior/{GROUP_COMPARISON_TABLE}"]


def _check_after_reading(
    nwbfile, path: Path, info: SessionInfo, options: AnalysisOptions, do_sta: bool, **kw: Any
) -> bool:
    """What can be refused once the EMG is read; returns whether STAs will run."""
    from .io.write import existing_results, remove_results

    notes, overwrite = kw["notes"], kw["overwrite"]
    if do_sta and info.conditioning is not None and info.conditioning.chain == "envelope":
        why = (
            "spike-triggered averages need the raw EMG, high-pass filtered and rectified at "
            "its full rate, and this EMG is an envelope"
        )
        if not options.methods:
            raise InputError(
                f"{why} (it {info.conditioning.reason}); nothing to average (if it is raw EMG "
                "after all, pass conditioning='raw', on the command line --conditioning raw)",
                file=path,
                obj=", ".join(info.emg_series) or "EMG",
            )
        notes.append(why + ": synergies only, no STA")
        do_sta = False
    if info.group_by is not None:
        planned = _group_result_names(info, options)
        if overwrite:
            remove_results(nwbfile, planned)
        elif present := existing_results(nwbfile, planned):
            raise ResultsExistError(
                f"file '{path}': results already present ({', '.join(present)}); pass "
                "overwrite=True to replace them"
            )
    return do_sta


# -- running the steps ---------------------------------------------------------------------------


class _Progress:
    """A tqdm bar over the steps that apply, with the seconds of each step in ``timings``.

    Shown only when enabled and stderr is a terminal (tqdm's ``disable=None``), so that logs
    and captured output get no carriage-return debris.
    """

    def __init__(self, labels: Sequence[str], enabled: bool, timings: dict[str, float]):
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=len(labels),
            disable=None if enabled else True,
            desc="nwb-synergy",
            unit="step",
            leave=False,
        )
        self.timings = timings
        self.enabled = enabled

    def run(self, label: str, func: Callable[..., Any], *args: Any) -> Any:
        from .progress import showing

        self.bar.set_description(label)
        log.info("%s ...", label)
        t0 = time.perf_counter()
        with showing(self.enabled):  # inner bars (RLVM L1 path, NegCp bootstrap)
            out = func(*args)
        self.timings[label] = time.perf_counter() - t0
        self.bar.update(1)
        return out

    def close(self) -> None:
        self.bar.close()


def analyze_session(
    path: Any,
    output: str | Path | None = None,
    options: AnalysisOptions | None = None,
    *,
    copy_source: bool = False,
    overwrite: bool = False,
    replace_read_only: bool = False,
    progress: bool = True,
    **option_values: Any,
) -> SessionResults:
    """Analyse one NWB session and write the results into NWB.

    Parameters
    ----------
    path
        The session with EMG (and Units for STAs): a local path, an ``https://`` or ``s3://``
        URL (streamed: only the EMG and the Units are read), an open h5py.File or binary file
        object, or an NWBFile already read (see :mod:`nwb_synergy.io.files`).
    output
        A new NWB file for the results. By default it holds the results only, with the
        session's metadata, Units (ids and spike times) and intervals, and a reference to the
        source (identifier, path or URL, object paths of the EMG and Units, in ``notes`` and in
        every table's provenance); no raw data. None writes the results into ``path`` itself,
        atomically (a crash leaves the source byte-identical); for an NWBFile, None adds them
        to that NWBFile in memory. A URL or an open file needs an ``output``.
    options
        An :class:`AnalysisOptions`; fields given as keywords (``methods=("nmf",)``,
        ``n_synergies=4``, ``rlvm_options={"l1": 0.1}``, ...) override it.
    copy_source
        Write the whole source (raw data included) plus the results to ``output``: one
        self-contained file.
    overwrite
        Replace results already in the file, and an existing ``output``; otherwise refuse.
    replace_read_only
        Update a read-only source in place (it stays read-only); refused by default.
    progress
        Show a progress bar (tqdm, on stderr) when stderr is a terminal; never in logs.

    Returns
    -------
    SessionResults

    Raises
    ------
    InputError
        Missing file, not NWB, a URL that cannot be read, no usable EMG (none, ambiguous, NaN,
        too short), bad options, STAs alone asked on a file without Units, a URL or open file
        without an ``output``.
    ResultsExistError
        Results already in the file (or ``output`` exists) and ``overwrite`` is False.
    """
    from .io.files import KIND_PATH, source_kind, source_label
    from .io.save import MODE_RESULTS_ONLY, open_results, source_reference
    from .io.write import remove_results

    kind = source_kind(path)
    label = source_label(path)
    if options is None:
        options = AnalysisOptions(**option_values)
    elif option_values:
        options = dataclasses.replace(options, **option_values)
    shown = Path(path) if kind == KIND_PATH else label
    info = SessionInfo(source=shown, output=Path(output) if output is not None else shown)
    results = SessionResults(info=info, options=options)
    notes = results.log.notes

    with open_results(
        path,
        output,
        copy_source=copy_source,
        overwrite=overwrite,
        replace_read_only=replace_read_only,
    ) as opened:
        if opened.output is None:
            info.output = None
        results_only = opened.mode == MODE_RESULTS_ONLY
        units_path = _check_before_computing(
            opened.source, label, opened.target, options, overwrite, notes
        )
        do_sta = units_path is not None
        methods = options.methods
        labels = ["read EMG"]
        if methods:
            labels += ["condition EMG", "synergies"] + (["NegCps"] if "rlvm" in methods else [])
            labels += (["groups"] if options.group_by else []) + (
                ["cycles"] if options.cycles else []
            )
        if do_sta:
            labels += ["STA", "fields"]
        labels.append("write")
        steps = _Progress(labels, progress, results.log.timings)
        try:
            raw = steps.run("read EMG", read_step, opened.source, info, options)
            inspect_step(opened.source, raw, info, options, notes)
            location = str(Path(path).resolve()) if kind == KIND_PATH else label
            reference = source_reference(opened.source, location, info.emg_series, units_path)
            if results_only:
                opened.make_results_only(reference)
                remove_results(opened.target, options.result_names(do_sta))  # older copies
            do_sta = _check_after_reading(
                opened.target, label, info, options, do_sta, notes=notes, overwrite=overwrite
            )
            if methods:
                envelope = steps.run("condition EMG", condition_step, raw, options, info)
                results.synergies = steps.run("synergies", synergy_step, envelope, options, notes)
                if "rlvm" in methods:
                    steps.run("NegCps", negcp_step, results.synergies, options, notes)
                if info.group_by is not None:
                    results.groups = steps.run(
                        "groups", group_step, results.synergies, options, info, notes
                    )
                if info.cycles is not None:
                    results.cycles = steps.run(
                        "cycles", cycle_step, results.synergies, options, info, notes
                    )
            if do_sta:
                results.sta = steps.run("STA", sta_step, opened.source, raw, options, notes, info)
                results.fields = steps.run(
                    "fields", field_step, results.sta, results.synergies, options, notes
                )
            results.log.written += steps.run(
                "write", write_step, opened.target, results, options, overwrite, reference
            )
        finally:
            steps.close()
    log.info("results written to %s", results.output)
    return results


def _check_before_computing(
    nwbfile, label: str, target, options: AnalysisOptions, overwrite: bool, notes: list[str]
) -> str | None:
    """What can be refused before any computation; returns the Units' path when STAs will run.

    ``target`` is the NWBFile the results go to (None for a results-only file, which is new:
    nothing in it to refuse or replace).
    """
    from .io.units import _all_units, find_units
    from .io.write import existing_results, remove_results

    units = find_units(nwbfile, file=label) if options.sta else None
    do_sta = options.sta and units is not None and len(units) > 0
    if options.sta and not do_sta:
        if not options.methods:
            raise InputError(
                "no Units table (or an empty one): there are no spikes to average",
                file=label,
                obj="units",
            )
        notes.append("no Units in the file: synergies only, no STA")
    planned = options.result_names(do_sta)
    if target is None:
        pass
    elif overwrite:
        remove_results(target, planned)  # a second run replaces, never duplicates
    elif present := existing_results(target, planned):
        raise ResultsExistError(
            f"file '{label}': results already present ({', '.join(present)}); pass "
            "overwrite=True to replace them"
        )
    if not do_sta:
        return None
    return next(p for p, t in _all_units(nwbfile) if t is units)


__all__ = [
    "STEPS",
    "AnalysisOptions",
    "SessionResults",
    "analyze_session",
    "condition_step",
    "cycle_step",
    "field_step",
    "group_step",
    "inspect_step",
    "negcp_step",
    "read_step",
    "sta_step",
    "synergy_step",
    "write_step",
]
