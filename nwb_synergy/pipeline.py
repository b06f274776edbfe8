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
condition EMG      :func:`condition_step`  envelopes (high-pass, rectify, low-pass)  ``synergies``
synergies          :func:`synergy_step`    NMF (K by the model-order rule), RLVM     ``synergies``
NegCps             :func:`negcp_step`  NegCps of RLVM, silent latents dropped        ``synergies``
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
    FieldResults,
    SessionInfo,
    SessionResults,
    STAResults,
    SynergyResults,
)
from .signals import EMG

log = logging.getLogger("nwb_synergy")

METHODS = ("nmf", "rlvm")
#: the pipeline's steps, in order (labels of the progress bar and of ``log.timings``)
STEPS = ("read EMG", "condition EMG", "synergies", "NegCps", "STA", "fields", "write")

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
        Keyword arguments of :func:`~nwb_synergy.condition_emg`, on top of
        :data:`DEFAULT_CONDITIONING`.
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
        set_(self, "conditioning", {**DEFAULT_CONDITIONING, **dict(self.conditioning or {})})
        set_(self, "sta_options", {"window": DEFAULT_WINDOW, **dict(self.sta_options or {})})
        for name in ("nmf_options", "rlvm_options", "negcp_options", "effect_options"):
            set_(self, name, dict(getattr(self, name) or {}))

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
    """Read the raw EMG (in volts) and describe it in ``info``."""
    from .io.read import read_emg

    raw = read_emg(nwbfile, options.emg_name, min_muscles=2 if options.methods else 1)
    if raw.source is not None and raw.source.file is None:
        raw.source = dataclasses.replace(raw.source, file=str(info.source))
    info.emg_series = list(dict.fromkeys(raw.source.series_names)) if raw.source else []
    info.muscle_names = list(raw.muscle_names)
    info.emg_rate = raw.rate
    info.duration = raw.duration
    return raw


def condition_step(raw: EMG, options: AnalysisOptions) -> EMG:
    """The envelopes the synergies are fitted on (:func:`~nwb_synergy.condition_emg`)."""
    from .emg import condition_emg

    return condition_emg(raw, **options.conditioning)


def synergy_step(envelope: EMG, options: AnalysisOptions, notes: list[str]) -> SynergyResults:
    """Fit each method; with "auto", NMF chooses K and RLVM is fitted with NMF's K."""
    from .factorize import NMF, RLVM

    estimators = {"nmf": NMF, "rlvm": RLVM}
    out = SynergyResults(envelope=envelope)
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


def sta_step(nwbfile, raw: EMG, options: AnalysisOptions, notes: list[str]) -> STAResults:
    """STAs of the rectified high-passed EMG for every unit, their effects and muscle fields."""
    from .emg import highpass_rectify
    from .io.units import read_spike_trains
    from .sta import muscle_field, post_spike_effects, spike_triggered_average

    trains = read_spike_trains(nwbfile)
    hp = highpass_rectify(raw, cutoff=options.conditioning.get("highpass") or 50.0)
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
    # all units at once: one pass over the EMG for the averages, one for the effects
    stas = spike_triggered_average(
        hp, usable, outside="exclude", keep_sweeps=False, **options.sta_options
    )
    for uid in list(stas):
        if stas[uid].n_used == 0:
            notes.append(f"unit {uid}: no spike with a full window; skipped")
            del stas[uid]
    out.stas.update(stas)
    if stas:
        out.effects.update(post_spike_effects(stas, **options.effect_options))
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
    from .io.write import write_correspondence, write_field_matches, write_sta, write_synergies
    from .provenance import jsonable
    from .sta.effects import DEFAULT_BASELINE, DEFAULT_TEST

    written = []
    provenance = {"analysis_options": jsonable(dataclasses.asdict(options))}
    if source is not None:
        provenance["source"] = jsonable(source)
    if results.synergies is not None:
        for method, model in results.synergies.models.items():
            synergy, activation = write_synergies(
                nwbfile,
                model,
                results.synergies.envelope,
                overwrite=overwrite,
                negative_components=results.synergies.negcps if method == "rlvm" else None,
                provenance=provenance,
            )
            written += [
                f"processing/behavior/{synergy.name}",
                f"processing/behavior/{activation.name}",
            ]
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

    def run(self, label: str, func: Callable[..., Any], *args: Any) -> Any:
        self.bar.set_description(label)
        log.info("%s ...", label)
        t0 = time.perf_counter()
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
        if do_sta:
            labels += ["STA", "fields"]
        labels.append("write")
        steps = _Progress(labels, progress, results.log.timings)
        try:
            raw = steps.run("read EMG", read_step, opened.source, info, options)
            location = str(Path(path).resolve()) if kind == KIND_PATH else label
            reference = source_reference(opened.source, location, info.emg_series, units_path)
            if results_only:
                opened.make_results_only(reference)
                remove_results(opened.target, options.result_names(do_sta))  # older copies
            if methods:
                envelope = steps.run("condition EMG", condition_step, raw, options)
                results.synergies = steps.run("synergies", synergy_step, envelope, options, notes)
                if "rlvm" in methods:
                    steps.run("NegCps", negcp_step, results.synergies, options, notes)
            if do_sta:
                results.sta = steps.run("STA", sta_step, opened.source, raw, options, notes)
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
    "field_step",
    "negcp_step",
    "read_step",
    "sta_step",
    "synergy_step",
    "write_step",
]
