"""Many sessions at once on Dask distributed: :func:`analyze_many` and its summary.

::

    batch = analyze_many(["sub-01.nwb", "https://dandiarchive.s3.amazonaws.com/blobs/..."],
                         "results/", workers=2, **QUICK_ANALYSIS)
    batch.summary_path   # results/summary.csv, one row per session

One Dask task per session, each running :func:`~nwb_synergy.analyze_session` with the same
options and writing ``DIR/<stem>_results.nwb`` (results only, unless ``copy_source``). The
cluster is a :class:`distributed.LocalCluster` on this machine (``workers`` processes of one
thread each, listening on 127.0.0.1 only, no dashboard) unless ``scheduler`` gives the address of
a running one (or ``client`` a connected :class:`distributed.Client`).

* A session that fails (bad file, no EMG, ...) gets status ``failed`` and its reason; the others
  go on. A worker that dies (killed, out of memory) has its session run again on another worker
  by the scheduler (up to ``distributed.scheduler.allowed-failures`` times, 3 by default).
* A second run skips the sessions whose results file exists (status ``skipped``; their numbers
  are read from that file), unless ``overwrite``.
* Every session writes its own file, so no two tasks ever wait for the same file's lock.
* ``DIR/summary.csv``: one row per session (:data:`SUMMARY_COLUMNS`): the file, the output,
  status (``ok``, ``failed``, ``skipped``), error, K of NMF and RLVM, their VAF (uncentered) and
  R^2 (centered), the number of RLVM NegCps, units with an STA and units with effects, the
  p-value of the NegCp-PSpS correspondence test, the run time, and the class of every synergy
  (``classes_nmf``, ``classes_rlvm``: class ids in synergy order).
* Across sessions the synergies of each method are grouped into classes
  (:func:`~nwb_synergy.classes.classify_synergies`): ``DIR/synergy_classes.csv`` (one row per
  synergy) and the figure ``DIR/synergy_classes_<method>.png``.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from .errors import InputError

log = logging.getLogger("nwb_synergy")

STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"
METHOD_LABELS = ("NMF", "RLVM")
#: columns of summary.csv, in order
SUMMARY_COLUMNS = (
    "file",
    "output",
    "status",
    "error",
    "k_nmf",
    "k_rlvm",
    "vaf_nmf",
    "r2_nmf",
    "vaf_rlvm",
    "r2_rlvm",
    "negcps",
    "n_units",
    "units_with_effects",
    "correspondence_p",
    "run_time_s",
    "classes_nmf",
    "classes_rlvm",
)
SUMMARY_NAME = "summary.csv"
CLASSES_NAME = "synergy_classes.csv"


# -- names ------------------------------------------------------------------------------------


def session_stem(source: str | Path) -> str:
    """The name a session's results are filed under: the file name without ``.nwb``.

    For a URL, the last path segment ending in ``.nwb``, else the last one that is not
    ``download`` (a DANDI asset URL ``.../assets/<id>/download/`` gives ``<id>``).
    """
    from .io.files import is_url
    from .text import safe_filename

    text = str(source)
    if is_url(text):
        segments = [s for s in urlsplit(text.strip()).path.split("/") if s]
        named = [s for s in segments if s.lower().endswith(".nwb")]
        other = [s for s in segments if s.lower() != "download"]
        name = named[-1] if named else (other[-1] if other else urlsplit(text).netloc)
    else:
        name = Path(text).name
    if name.lower().endswith(".nwb"):
        name = name[:-4]
    return safe_filename(name or "session")


def output_paths(sources: Sequence[str | Path], out_dir: str | Path) -> list[Path]:
    """``out_dir/<stem>_results.nwb`` for each source; stems shared by several sources get
    ``-<8 hex digits of the source's hash>`` so that no two sessions write the same file."""
    stems = [session_stem(s) for s in sources]
    counts: dict[str, int] = {}
    for stem in stems:
        counts[stem] = counts.get(stem, 0) + 1
    out = []
    for source, stem in zip(sources, stems, strict=True):
        if counts[stem] > 1:
            stem += "-" + hashlib.sha1(str(source).encode("utf-8")).hexdigest()[:8]
        out.append(Path(out_dir) / f"{stem}_results.nwb")
    return out


# -- one session --------------------------------------------------------------------------------


@dataclass
class SessionSummary:
    """The numbers of one session's results file (a row of summary.csv without its status).

    Attributes
    ----------
    values
        Column of :data:`SUMMARY_COLUMNS` -> value, for the columns the file gives.
    synergies
        "NMF"/"RLVM" -> (weights (n_muscles, K), muscle names), for the classes.
    """

    values: dict[str, Any] = field(default_factory=dict)
    synergies: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)


def read_session_summary(path: str | Path) -> SessionSummary:
    """K, VAF, R^2, NegCps, units, effects and correspondence p-value from a results file.

    Raises
    ------
    InputError
        Not an NWB file, or damaged results (through :mod:`nwb_synergy.io.guards`).
    """
    from .io.files import open_nwb
    from .io.guards import load_json, read_array
    from .io.write import CORRESPONDENCE_TABLE, STA_TABLE
    from .ndx import MuscleSynergy

    path = Path(path)
    out = SessionSummary()
    io, nwbfile = open_nwb(path)
    try:
        for module in nwbfile.processing.values():
            for name, obj in module.data_interfaces.items():
                where = f"processing/{module.name}/{name}"
                label = name[len("MuscleSynergy") :]
                if isinstance(obj, MuscleSynergy) and label in METHOD_LABELS:
                    m = label.lower()
                    weights = read_array(obj["weights"].data, file=path, obj=where)
                    names = [str(n) for n in obj.muscle_names]
                    out.synergies[label] = (np.asarray(weights, dtype=float), names)
                    fit = load_json(obj.provenance or "{}", file=path, obj=where).get("fit", {})
                    out.values[f"k_{m}"] = int(np.shape(weights)[1])
                    out.values[f"vaf_{m}"] = fit.get("vaf_uncentered")
                    out.values[f"r2_{m}"] = fit.get("r2_centered")
                    if label == "RLVM" and "negative_component" in obj.colnames:
                        mask = read_array(obj["negative_component"].data, file=path, obj=where)
                        out.values["negcps"] = int(np.sum(mask))
                elif name == STA_TABLE:
                    rows = np.asarray(read_array(obj["unit"].data, file=path, obj=where))
                    out.values["n_units"] = int(np.unique(rows).size)
                    if "effect" in obj.colnames:
                        effect = np.asarray(read_array(obj["effect"].data, file=path, obj=where))
                        hit = np.isin(effect.astype(str), ("PSF", "PSpS"))
                        out.values["units_with_effects"] = int(np.unique(rows[hit]).size)
                elif name == CORRESPONDENCE_TABLE:
                    p = read_array(obj["p_value"].data, file=path, obj=where)
                    out.values["correspondence_p"] = float(np.ravel(p)[0])
    finally:
        io.close()
    if out.synergies and "n_units" not in out.values:
        out.values["n_units"] = 0
    return out


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def run_session(
    source: str,
    output: str,
    options: Any,
    overwrite: bool = False,
    copy_source: bool = False,
) -> dict[str, Any]:
    """The task of one session: analyse it, write its results file, summarise it.

    Never raises for a failing session: the row says ``failed`` and why. A worker that dies
    takes the task with it (and the results of the tasks it had finished), and the scheduler
    runs them again: a results file that a finished attempt wrote is then read, not redone
    (the caller submits only sessions without results, unless ``overwrite``).

    Returns
    -------
    dict
        ``row`` (the summary.csv columns this task knows) and ``synergies`` (see
        :class:`SessionSummary`).
    """
    from .pipeline import analyze_session

    started = time.perf_counter()
    row: dict[str, Any] = {"file": source, "output": output}
    synergies: dict[str, Any] = {}
    try:
        # the output exists only when an earlier attempt of this task wrote it and its worker
        # died before the result reached us (the scheduler then runs the task again)
        if overwrite or not Path(output).exists():
            analyze_session(
                source,
                output,
                options,
                overwrite=overwrite,
                copy_source=copy_source,
                progress=False,
            )
        summary = read_session_summary(output)
    except Exception as err:  # noqa: BLE001 - one failing session must not stop the others
        row.update(status=STATUS_FAILED, error=_one_line(err))
    else:
        row.update(summary.values, status=STATUS_OK, error="")
        synergies = summary.synergies
    row["run_time_s"] = round(time.perf_counter() - started, 2)
    return {"row": row, "synergies": synergies}


# -- many sessions -------------------------------------------------------------------------------


@dataclass
class BatchResult:
    """What :func:`analyze_many` did.

    Attributes
    ----------
    rows
        One dict per session, in the order given (the columns of :data:`SUMMARY_COLUMNS`).
    summary_path
        ``DIR/summary.csv``.
    classes
        "NMF"/"RLVM" -> :class:`~nwb_synergy.classes.SynergyClasses` (methods found in at least
        two sessions).
    files
        The class table and figures written.
    seconds
        Wall time.
    """

    rows: list[dict[str, Any]]
    summary_path: Path
    classes: dict[str, Any] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r["status"] == status)

    @property
    def n_failed(self) -> int:
        return self.count(STATUS_FAILED)

    def summary_text(self) -> str:
        """A few lines: counts, then one line per failed session."""
        lines = [
            f"{len(self.rows)} sessions: {self.count(STATUS_OK)} ok, "
            f"{self.count(STATUS_SKIPPED)} skipped (results exist), {self.n_failed} failed "
            f"({self.seconds:.0f} s); summary in {self.summary_path}"
        ]
        for label, classes in self.classes.items():
            sizes = classes.class_sizes()
            lines.append(
                f"  {label} synergies of {len({s for s, _ in classes.members})} sessions in "
                f"{classes.n_classes} classes (sizes {', '.join(map(str, sizes))})"
            )
        failed = [r for r in self.rows if r["status"] == STATUS_FAILED]
        lines += [f"  failed: {r['file']}: {r['error']}" for r in failed]
        return "\n".join(lines)


def _previous_rows(path: Path) -> dict[str, dict[str, str]]:
    """Rows of an earlier summary.csv, by file (empty when there is none)."""
    if not path.exists():
        return {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return {row["file"]: row for row in csv.DictReader(f) if "file" in row}
    except (OSError, csv.Error, UnicodeDecodeError):
        return {}


def _skipped_row(source: str, output: Path, previous: dict[str, str] | None) -> dict[str, Any]:
    row: dict[str, Any] = {"file": source, "output": str(output)}
    synergies: dict[str, Any] = {}
    try:
        summary = read_session_summary(output)
    except Exception as err:  # noqa: BLE001 - reported in the row
        row.update(
            status=STATUS_FAILED,
            error=f"existing results file cannot be read ({_one_line(err)}); rerun with "
            "overwrite (--overwrite)",
        )
    else:
        row.update(summary.values, status=STATUS_SKIPPED, error="")
        synergies = summary.synergies
        if previous and previous.get("run_time_s"):
            row["run_time_s"] = previous["run_time_s"]
    return {"row": row, "synergies": synergies}


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Write rows atomically (temporary file, then rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
    os.replace(tmp, path)


def _same_muscles(sets: dict[str, Any], label: str) -> dict[str, Any]:
    """The sessions recorded from the most common set of muscles (the others are left out of
    the classes, with a warning: their synergies live in another space)."""
    groups: dict[frozenset, list[str]] = {}
    for session, (_, muscles) in sets.items():
        groups.setdefault(frozenset(muscles), []).append(session)
    if len(groups) <= 1:
        return sets
    kept = max(groups.values(), key=len)
    left = sorted(set(sets) - set(kept))
    log.warning(
        "%s synergy classes: %d session(s) recorded other muscles and are not classified: %s",
        label,
        len(left),
        ", ".join(left),
    )
    return {s: sets[s] for s in kept}


def _classify(
    done: list[dict[str, Any]], out_dir: Path, figures: bool
) -> tuple[dict[str, Any], list[Path]]:
    """Classes of each method's synergies over the sessions that have them; files written."""
    from .classes import classify_synergies

    classes, files, table = {}, [], []
    for label in METHOD_LABELS:
        sets = _same_muscles(
            {d["row"]["file"]: d["synergies"][label] for d in done if label in d["synergies"]},
            label,
        )
        if len(sets) < 2:
            continue
        try:
            found = classify_synergies(sets)
        except InputError as err:
            log.warning("%s synergies not classified: %s", label, err)
            continue
        classes[label] = found
        for d in done:
            if d["row"]["file"] in sets:
                ids = found.of_session(d["row"]["file"])
                d["row"][f"classes_{label.lower()}"] = " ".join(map(str, ids))
        table += [{"method": label, **r} for r in found.rows()]
        if figures:
            from .plot import plot_synergy_classes, save_figure

            fig = plot_synergy_classes(found, title=f"{label} synergy classes")
            files += save_figure(fig, out_dir / f"synergy_classes_{label.lower()}", ("png",))
    if table:
        path = out_dir / CLASSES_NAME
        columns = ("method", "session", "synergy", "class", "cosine_to_class")
        _write_csv(path, columns, table)
        files.insert(0, path)
    return classes, files


def _cluster(workers: int | None, n_tasks: int, processes: bool):
    """A LocalCluster: one-thread workers on 127.0.0.1 (or threads in process), no dashboard."""
    from distributed import LocalCluster

    n = workers if workers else max(1, min(n_tasks, os.cpu_count() or 1))
    # worker processes talk TCP on the loopback only; threads talk in process (no socket)
    network = {"host": "127.0.0.1"} if processes else {}
    return LocalCluster(
        n_workers=n,
        threads_per_worker=1,
        processes=processes,
        dashboard_address="127.0.0.1:0",  # its HTTP server, on the loopback too
        silence_logs=logging.ERROR,
        **network,
    )


def analyze_many(
    sources: Sequence[str | Path],
    out_dir: str | Path,
    options: Any = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    processes: bool = True,
    overwrite: bool = False,
    copy_source: bool = False,
    progress: bool = True,
    figures: bool = True,
    **option_values: Any,
) -> BatchResult:
    """Analyse many sessions on Dask distributed, one task per session (see the module doc).

    Parameters
    ----------
    sources
        Local paths and ``https://``/``s3://`` URLs of NWB files.
    out_dir
        Folder for ``<stem>_results.nwb``, ``summary.csv`` and the class files (created).
    options
        An :class:`~nwb_synergy.pipeline.AnalysisOptions`; keywords override its fields, as
        for :func:`~nwb_synergy.analyze_session`.
    workers
        Worker processes of the LocalCluster (default: one per core, at most one per session).
    scheduler
        Address of a running Dask scheduler (``tcp://127.0.0.1:8786``) to use instead.
    client
        A connected :class:`distributed.Client` to use instead (left open).
    processes
        LocalCluster workers as processes (default) or as threads of this process.
    overwrite
        Analyse again sessions whose results file exists (default: skip them).
    copy_source
        Results files hold the whole source too (see :func:`~nwb_synergy.analyze_session`).
    progress
        A progress bar over sessions (on stderr, when it is a terminal).
    figures
        Draw the figure of the synergy classes.

    Returns
    -------
    BatchResult

    Raises
    ------
    InputError
        No sources, the same source twice, bad options, an output folder that cannot be made,
        a scheduler that cannot be reached.
    """
    import dataclasses

    from tqdm.auto import tqdm

    from .io.files import is_url
    from .pipeline import AnalysisOptions

    started = time.perf_counter()
    if options is None:
        options = AnalysisOptions(**option_values)
    elif option_values:
        options = dataclasses.replace(options, **option_values)
    sources = [s.strip() if is_url(s) else str(Path(s).resolve()) for s in map(str, sources)]
    if not sources:
        raise InputError("no sessions to analyse", obj="sources")
    repeated = sorted({s for s in sources if sources.count(s) > 1})
    if repeated:
        raise InputError(f"sessions given more than once: {repeated}", obj="sources")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create the output folder ({err})", file=out_dir) from err
    outputs = output_paths(sources, out_dir)
    summary_path = out_dir / SUMMARY_NAME
    previous = _previous_rows(summary_path)

    done: dict[int, dict[str, Any]] = {}
    todo = []
    for i, (source, output) in enumerate(zip(sources, outputs, strict=True)):
        if output.exists() and not overwrite:
            done[i] = _skipped_row(source, output, previous.get(source))
        else:
            todo.append(i)
    bar = tqdm(
        total=len(sources),
        initial=len(done),
        disable=None if progress else True,
        desc="sessions",
        unit="session",
    )
    try:
        if todo:
            _run_on_dask(
                todo, sources, outputs, options, overwrite, copy_source, done, bar,
                workers=workers, scheduler=scheduler, client=client, processes=processes,
            )  # fmt: skip
    finally:
        bar.close()
    ordered = [done[i] for i in range(len(sources))]
    usable = [d for d in ordered if d["row"]["status"] != STATUS_FAILED]
    classes, files = _classify(usable, out_dir, figures)
    rows = [d["row"] for d in ordered]
    _write_csv(summary_path, SUMMARY_COLUMNS, rows)
    result = BatchResult(rows, summary_path, classes, files, time.perf_counter() - started)
    log.info("%s", result.summary_text())
    return result


def _run_on_dask(
    todo, sources, outputs, options, overwrite, copy_source, done, bar, *,
    workers, scheduler, client, processes,
) -> None:  # fmt: skip
    """Submit one task per session in ``todo`` and fill ``done`` as they finish."""
    from distributed import Client, as_completed
    from distributed.scheduler import KilledWorker

    cluster = own_client = None
    try:
        if client is None:
            if scheduler is not None:
                try:
                    own_client = Client(scheduler, timeout="20s")
                except OSError as err:
                    raise InputError(
                        f"cannot reach the Dask scheduler ({_one_line(err)})", obj=scheduler
                    ) from err
            else:
                cluster = _cluster(workers, len(todo), processes)
                own_client = Client(cluster)
            client = own_client
        futures = {}
        for i in todo:
            future = client.submit(
                run_session,
                sources[i],
                str(outputs[i]),
                options,
                overwrite,
                copy_source,
                key=f"nwb-synergy-{i}-{outputs[i].stem}",
                pure=False,
            )
            futures[future] = i
        for future in as_completed(futures):
            i = futures[future]
            try:
                done[i] = future.result()
            except KilledWorker as err:
                reason = f"the worker running it died too often ({_one_line(err)})"
                done[i] = _failed(sources[i], outputs[i], reason)
            except Exception as err:  # noqa: BLE001 - reported in the row
                done[i] = _failed(sources[i], outputs[i], _one_line(err))
            bar.set_postfix_str(f"{session_stem(sources[i])}: {done[i]['row']['status']}")
            bar.update(1)
    finally:
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()


def _failed(source: str, output: Path, reason: str) -> dict[str, Any]:
    row = {"file": source, "output": str(output), "status": STATUS_FAILED, "error": reason}
    return {"row": row, "synergies": {}}


__all__ = [
    "SUMMARY_COLUMNS",
    "BatchResult",
    "SessionSummary",
    "analyze_many",
    "output_paths",
    "read_session_summary",
    "run_session",
    "session_stem",
]
