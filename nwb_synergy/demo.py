"""``nwb-synergy demo``: simulate a session, analyse it, compare with the planted truth.

:func:`run_demo` writes into one folder:

* ``session.nwb``: the simulated session (:func:`~nwb_synergy.simulate.simulate_session`);
* ``session_results.nwb``: the same plus every result (:func:`~nwb_synergy.analyze_session`);
* ``figures/``: the figures, drawn from ``session_results.nwb`` alone
  (:func:`~nwb_synergy.plot.report`);

and returns a short text that sets what was found against what was planted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: quick settings for tests and examples (seconds, not a minute): RLVM's L1 weight fixed at 0.1
#: instead of chosen by stability (``l1="auto"``), 4 restarts, and NegCps guarded by their
#: consistency across the restarts without the block-bootstrap refits (``n_boot=50`` by default)
QUICK_ANALYSIS: dict[str, Any] = {
    "rlvm_options": {"l1": 0.1, "n_restarts": 4},
    "negcp_options": {"n_boot": 0},
}
#: settings of the full demo (the true defaults of analyze_session) and of the fast one (tests)
DEMO_SETTINGS: dict[str, dict[str, Any]] = {
    "full": {
        "duration": 180.0,
        "n_permutations": 10000,
        "analysis": {},
        "note": "full defaults of 'nwb-synergy analyze': RLVM L1 weight chosen by stability "
        "(l1='auto'), NegCps under the block-bootstrap guard",
    },
    "fast": {
        "duration": 60.0,
        "n_permutations": 1000,
        "analysis": QUICK_ANALYSIS,
        "note": "fast settings: RLVM L1 weight fixed at 0.1, NegCps guarded by consistency over "
        "4 restarts without the bootstrap; 'nwb-synergy demo' without --fast runs the full "
        "defaults",
    },
}
#: the units in which synergies are scored against a simulated truth
SCORE_UNITS = "conditioned (each muscle divided by its conditioning scale, truth too)"


@dataclass
class DemoResult:
    """What :func:`run_demo` made and found.

    Attributes
    ----------
    session_path, results_path, figures_dir
        The files and folder written.
    session
        The :class:`~nwb_synergy.simulate.session.SimulatedSession` (planted truth).
    results
        The :class:`~nwb_synergy.pipeline.SessionResults`.
    scores
        Found-versus-planted numbers (see :func:`score_against_truth`).
    figures
        Figure files written.
    seconds
        Wall time of the whole demo.
    text
        The printed summary.
    """

    session_path: Path
    results_path: Path
    figures_dir: Path | None
    session: Any
    results: Any
    scores: dict[str, Any]
    figures: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    text: str = ""


def score_against_truth(session, results) -> dict[str, Any]:
    """Compare the results of :func:`analyze_session` with a simulated session's truth.

    The synergies are scored in the units they were fitted in: the true weights (in the
    simulator's envelope units, proportional to volts) are divided by the per-muscle scale the
    conditioning applied (:func:`~nwb_synergy.compare.conditioning_scale`), as the envelopes
    were, before cosines and principal angles are taken.

    Returns
    -------
    dict
        ``k_true``; ``units`` (:data:`SCORE_UNITS`); per method ``k`` and ``matched_cosine``
        (mean cosine of the optimally matched pairs, truth vs found) and
        ``subspace_similarity``; ``negcp``: planted, found,
        correct (a found NegCp is correct when its muscle carries a planted NegCp in the true
        synergy its synergy was matched to); ``effects``: planted pairs, found planted pairs
        (right sign), wrong sign, false pairs, units with effects planted and found;
        ``correspondence_p``.
    """
    from .compare import compare_synergies, conditioning_scale, weights_in_conditioned_units

    scores: dict[str, Any] = {"k_true": session.n_synergies, "units": SCORE_UNITS}
    truth = session.weights
    if results.envelope is not None:
        truth = weights_in_conditioned_units(truth, conditioning_scale(results.envelope))
    for name, model in results.models.items():
        comp = compare_synergies(truth, model.weights_)
        scores[name] = {
            "k": int(model.weights_.shape[1]),
            "matched_cosine": float(comp.mean_cosine),
            "subspace_similarity": float(comp.subspace_similarity),
            "pairs": comp.pairs,
        }
    mask = results.negcp_mask()
    planted = int(session.negative_mask.sum())
    neg = {"planted": planted, "found": 0, "correct": 0}
    if mask is not None and "rlvm" in scores:
        neg["found"] = int(mask.sum())
        true_of = {int(b): int(a) for a, b in scores["rlvm"]["pairs"]}
        for m, k in zip(*np.nonzero(mask), strict=True):
            t = true_of.get(int(k))
            if t is not None and session.negative_mask[m, t]:
                neg["correct"] += 1
    scores["negcp"] = neg
    pairs = session.planted_pairs()
    eff = {
        "planted": len(pairs),
        "found": 0,
        "wrong_sign": 0,
        "false": 0,
        "units_planted": sum(1 for u in range(len(session.unit_ids)) if np.any(session.effects[u])),
        "units_found": len(results.units_with_effects()),
        "n_units": len(session.unit_ids),
    }
    for uid, frame in results.effects.items():
        for muscle, effect in zip(frame.index, frame["effect"], strict=True):
            truth = pairs.get((uid, str(muscle)))
            if effect not in ("PSF", "PSpS"):
                continue
            if truth == effect:
                eff["found"] += 1
            elif truth is not None:
                eff["wrong_sign"] += 1
            else:
                eff["false"] += 1
    scores["effects"] = eff
    scores["correspondence_p"] = (
        None
        if results.correspondence is None
        else float(getattr(results.correspondence, "p_value", np.nan))
    )
    return scores


def format_summary(session, results, scores: dict[str, Any], paths: dict[str, Any]) -> str:
    """The demo's printed summary: found against planted."""
    n_inh = session.roles.count("inhibitory")
    n_fac = session.roles.count("facilitatory")
    lines = [
        f"Simulated session: {len(session.muscle_names)} muscles at {session.rate:g} Hz for "
        f"{session.duration:g} s, {session.n_synergies} synergies with "
        f"{int(session.negative_mask.sum())} NegCps, {len(session.unit_ids)} units "
        f"({n_inh} inhibitory, {n_fac} facilitatory)",
        f"  session  {paths['session']}",
        f"  results  {paths['results']}",
    ]
    if paths.get("figures"):
        lines.append(f"  figures  {paths['figures']}/ ({paths['n_figures']} files)")
    lines.append("")

    def row(label: str, found: str, planted: str = "") -> None:
        lines.append(f"  {label:<27}{found:<34}{planted}".rstrip())

    row("", "found", "planted")
    for name in ("nmf", "rlvm"):
        if name in scores:
            row(f"synergies, {name.upper()}", f"K = {scores[name]['k']}", f"K = {scores['k_true']}")
    units_said = False  # the units of the scores, on the first match row
    for name in ("nmf", "rlvm"):
        if name in scores:
            s = scores[name]
            row(
                f"match to truth, {name.upper()}",
                f"cosine {s['matched_cosine']:.3f}, subspace {s['subspace_similarity']:.3f}",
                "" if units_said else "(truth / each muscle's scale)",
            )
            units_said = True
    neg = scores["negcp"]
    if "rlvm" in scores:
        row("NegCps, RLVM", f"{neg['found']} ({neg['correct']} correct)", str(neg["planted"]))
    if "nmf" in scores:
        row("NegCps, NMF", "0 (cannot be negative)", str(neg["planted"]))
    eff = scores["effects"]
    row(
        "units with effects",
        f"{eff['units_found']} of {eff['n_units']}",
        f"{eff['units_planted']} of {eff['n_units']}",
    )
    row(
        "unit-muscle effects",
        f"{eff['found']} right, {eff['wrong_sign']} wrong sign, {eff['false']} false",
        str(eff["planted"]),
    )
    p = scores["correspondence_p"]
    if p is not None:
        row("NegCp-PSpS correspondence", f"p = {p:.2g}", "NegCp muscles = suppressed ones")
    if "nmf" in scores and scores["nmf"]["k"] == scores["k_true"] + 1:
        lines.append(
            "  (NMF has no offset: its extra synergy carries the tonic activity of the muscles "
            "that NegCps inhibit)"
        )
    for note in results.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def run_demo(
    out: str | Path = "nwb_synergy_demo",
    *,
    fast: bool = False,
    random_state: int = 0,
    figures: bool = True,
    progress: bool = True,
    **session_options: Any,
) -> DemoResult:
    """Simulate a session, analyse it, draw the figures and compare with the truth.

    Parameters
    ----------
    out
        Folder for the files (created; the demo's own files in it are replaced).
    fast
        A shorter session (60 s instead of 180 s), fewer permutations and the STA figures of
        four units only: for tests.
    random_state
        Seed of the simulation and of the analysis.
    figures
        Draw the figures.
    progress
        Progress bars.
    **session_options
        Passed to :func:`~nwb_synergy.simulate.simulate_session` (e.g. ``n_units``).

    Returns
    -------
    DemoResult
    """
    from .pipeline import analyze_session
    from .simulate.session import simulate_session

    t0 = time.perf_counter()
    settings = DEMO_SETTINGS["fast" if fast else "full"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    session_path = out / "session.nwb"
    results_path = out / "session_results.nwb"
    options = {"duration": settings["duration"], **session_options}
    session = simulate_session(session_path, random_state=random_state, overwrite=True, **options)
    results = analyze_session(  # the session plus its results: one self-contained file
        session_path,
        results_path,
        copy_source=True,
        overwrite=True,
        random_state=random_state,
        progress=progress,
        n_permutations=settings["n_permutations"],
        **settings["analysis"],
    )
    paths: dict[str, Any] = {"session": session_path, "results": results_path}
    written: list[Path] = []
    fig_dir = None
    if figures:
        from .plot import report

        fig_dir = out / "figures"
        # fast: the STA grids of four units only (those with effects first)
        written = report(results_path, fig_dir, max_units=4 if fast else None)
        paths["figures"] = fig_dir
        paths["n_figures"] = len(written)
    scores = score_against_truth(session, results)
    seconds = time.perf_counter() - t0
    text = (
        format_summary(session, results, scores, paths)
        + f"\n  {settings['note']}\n  wall time {seconds:.0f} s"
    )
    return DemoResult(
        session_path=session_path,
        results_path=results_path,
        figures_dir=fig_dir,
        session=session,
        results=results,
        scores=scores,
        figures=written,
        seconds=seconds,
        text=text,
    )
