"""The ``nwb-synergy`` command.

Subcommands::

    nwb-synergy demo [--out DIR]                  simulate a session, analyse it, NWB + figures
    nwb-synergy extract FILE.nwb [--method nmf|rlvm|both] [--n-synergies K|auto] [-o OUT.nwb]
    nwb-synergy sta FILE.nwb [-o OUT.nwb]         spike-triggered averages, effects, fields
    nwb-synergy analyze FILE.nwb [-o OUT.nwb]     synergies, NegCps, STA, correspondence
    nwb-synergy batch FILES_OR_URLS... --out DIR [--workers N | --scheduler ADDRESS]
                                                  many sessions on Dask, summary.csv, classes
    nwb-synergy report FILE.nwb [--out DIR]       figures from a results file
    nwb-synergy convert-walking DIR -o OUT.nwb    the musclesyneRgies CSV walking trial to NWB

extract, sta and analyze also take --conditioning auto|raw|envelope and --intervals NAME;
extract and analyze take --group-by COLUMN and --cycles NAME.

FILE may be an https:// or s3:// URL (streamed; only the EMG and the Units are read), which needs
``-o``. ``-o OUT.nwb`` writes the results with the session's metadata, Units and a reference to
FILE, not the raw data; ``--copy-source`` copies the whole of FILE into OUT.nwb as well.

Exit codes:

* 0: success;
* 1: bad input or user error (missing file, not NWB, no or ambiguous EMG, bad option value);
  for ``batch``: any session failed (the others were analysed, and summary.csv says why);
* 2: usage error (unknown option, missing argument; argparse's own code);
* 1 also: the output cannot be written (no space left, no write permission, a read-only file
  without ``--replace-read-only``, another run writing it for too long), not enough memory;
* 3: results already in the output file (or the output exists) and ``--overwrite`` not given;
* 4: unexpected internal error (a bug: run again with ``--debug`` and report the traceback);
* 130: interrupted (Ctrl-C, or SIGINT even when started in the background by a shell);
* 143: terminated (SIGTERM, e.g. a cluster job reaching its time limit).

An interrupted or terminated run stops within seconds and leaves no half-written file: the
file being updated stays as it was and its temporary copy is removed.

Errors are printed as one line on stderr, ``nwb-synergy: error: <message>``; ``--debug`` adds
the traceback. Names read from files are printed with control characters escaped.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path

EXIT_OK = 0
EXIT_INPUT = 1
EXIT_USAGE = 2
EXIT_EXISTS = 3
EXIT_INTERNAL = 4
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

PROG = "nwb-synergy"
log = logging.getLogger("nwb_synergy")


def _n_synergies(text: str) -> int | str:
    if text == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}")
    return value


def _l1(text: str) -> float | str:
    if text == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a weight >= 0, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def _methods(text: str) -> tuple[str, ...]:
    return ("nmf", "rlvm") if text == "both" else (text,)


def _common() -> argparse.ArgumentParser:
    """Options every subcommand accepts (defaults suppressed so either position works)."""
    common = argparse.ArgumentParser(add_help=False)
    verbosity = common.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print nothing but errors (no progress bars, no summary)",
    )
    verbosity.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="also log each step and its parameters",
    )
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback on errors",
    )
    return common


def _add_input(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        metavar="FILE.nwb|URL",
        help="NWB file to analyse: a path, or an https:// or s3:// URL (streamed; needs -o)",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT.nwb",
        help="write the results to this new file: the results, the session's metadata, Units "
        "and a reference to FILE, no raw data (default: into FILE.nwb itself, atomically)",
    )
    parser.add_argument(
        "--copy-source",
        action="store_true",
        help="with -o: copy the whole of FILE (raw data included) into OUT.nwb too, one "
        "self-contained file",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace results already in the output file (default: refuse, exit code 3)",
    )
    parser.add_argument(
        "--emg",
        metavar="NAME",
        help="name of the EMG series when the file holds more than one",
    )
    parser.add_argument(
        "--replace-read-only",
        action="store_true",
        help="allow replacing a read-only file (FILE.nwb updated in place, or OUT.nwb with "
        "--overwrite); by default it is refused",
    )


def _add_real_file_options(parser: argparse.ArgumentParser, *, synergies: bool) -> None:
    """--conditioning and --intervals; with synergies also --group-by and --cycles."""
    parser.add_argument(
        "--conditioning",
        choices=("auto", "raw", "envelope"),
        default="auto",
        help="EMG conditioning: 'raw' (high-pass, rectify, low-pass, resample), 'envelope' "
        "(already rectified and smoothed: no high-pass, no rectification) or 'auto' to "
        "choose from the data (default: auto)",
    )
    parser.add_argument(
        "--intervals",
        metavar="NAME",
        help="restrict every analysis to the intervals of this TimeIntervals table "
        "(e.g. trials): synergies from those segments, STAs from spikes whose whole window "
        "lies inside one",
    )
    if not synergies:
        return
    parser.add_argument(
        "--group-by",
        metavar="COLUMN",
        help="also fit synergies per value of this column of the --intervals table and "
        "compare them (tables MuscleSynergy<METHOD>_<value>)",
    )
    parser.add_argument(
        "--cycles",
        metavar="NAME",
        help="time-normalise the activations per cycle of this TimeIntervals table (e.g. "
        "gait_cycles; a *_time column inside every cycle splits it in two phases) and report "
        "each synergy's FWHM and centre of activity",
    )


def _add_synergy_options(parser: argparse.ArgumentParser, *, default_method: str) -> None:
    parser.add_argument(
        "--method",
        choices=("nmf", "rlvm", "both"),
        default=default_method,
        help=f"factorisation method (default: {default_method})",
    )
    parser.add_argument(
        "--n-synergies",
        type=_n_synergies,
        default="auto",
        metavar="K|auto",
        help="number of synergies, or 'auto' to choose it from the data (default: auto)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed of the factorisations (default: 0)"
    )
    parser.add_argument(
        "--l1",
        type=_l1,
        default="auto",
        metavar="auto|WEIGHT",
        help="RLVM's L1 penalty on the activations; 'auto' chooses it by cross-validated "
        "stability (default: auto; a fixed weight is much faster)",
    )
    parser.add_argument(
        "--bootstrap",
        type=_non_negative_int,
        default=50,
        metavar="N",
        help="block-bootstrap refits testing each RLVM NegCp (default: 50; 0 keeps only the "
        "threshold and restart-consistency guards)",
    )


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _add_analysis_options(parser: argparse.ArgumentParser) -> None:
    """The options of 'analyze', which 'batch' shares (add new analysis options here)."""
    _add_synergy_options(parser, default_method="both")
    _add_real_file_options(parser, synergies=True)
    parser.add_argument("--no-sta", action="store_true", help="skip spike-triggered averages")


def _analysis_values(args: argparse.Namespace) -> dict:
    """AnalysisOptions fields from the options of :func:`_add_analysis_options`."""
    return {
        "methods": _methods(args.method),
        "n_synergies": args.n_synergies,
        "sta": not args.no_sta,
        "random_state": args.seed,
        **_rlvm_options(args),
        **_real_file_options(args),
    }


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``nwb-synergy`` (exposed for documentation and tests)."""
    from . import __version__

    common = _common()
    parser = argparse.ArgumentParser(
        prog=PROG,
        parents=[common],
        description=(
            "Muscle synergies (NMF, RLVM), negative components, spike-triggered averages and "
            "muscle fields from NWB files, written back into NWB."
        ),
        epilog=(
            "exit codes: 0 ok, 1 bad input, 2 usage error, 3 results exist (use --overwrite), "
            "4 internal error, 130 interrupted, 143 terminated (1 also for an output that "
            "cannot be written). Run '%(prog)s COMMAND --help' for each command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "demo",
        parents=[common],
        help="simulate a session, analyse it, write NWB files and figures",
        description=(
            "Simulate a primate-like session (EMG of 14 muscles, synergies with negative "
            "components, units that facilitate or suppress muscles), write it as NWB, analyse "
            "it, write the results file and figures, and compare what was found with the "
            "planted truth."
        ),
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("nwb_synergy_demo"),
        metavar="DIR",
        help="folder for the files (default: ./nwb_synergy_demo; its demo files are replaced)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--fast",
        action="store_true",
        help="a shorter session and fewer restarts (for tests; the numbers are noisier)",
    )
    p.add_argument("--no-figures", action="store_true", help="skip the figures")

    p = sub.add_parser(
        "extract",
        parents=[common],
        help="extract muscle synergies from the EMG of an NWB file",
        description=(
            "Condition the EMG (high-pass, rectify, low-pass, resample, normalise), extract "
            "synergies and write them (MuscleSynergy + SynergyActivation in "
            "processing/behavior). With both methods, RLVM's negative components are flagged."
        ),
    )
    _add_input(p)
    _add_synergy_options(p, default_method="nmf")
    _add_real_file_options(p, synergies=True)

    p = sub.add_parser(
        "sta",
        parents=[common],
        help="spike-triggered averages, post-spike effects and muscle fields",
        description=(
            "Spike-triggered averages of the high-pass filtered, rectified EMG for every unit, "
            "post-spike facilitation and suppression, and muscle fields, written to a "
            "SpikeTriggeredAverageTable in processing/ecephys."
        ),
    )
    _add_input(p)
    _add_real_file_options(p, synergies=False)

    p = sub.add_parser(
        "analyze",
        parents=[common],
        help="the whole analysis: synergies, NegCps, STA, muscle fields, correspondence",
        description=(
            "NMF and RLVM synergies (number chosen automatically unless given), their "
            "comparison and negative components, then spike-triggered averages, effects and "
            "muscle fields for every unit and the NegCp-PSpS correspondence test. A file "
            "without units gets synergies only."
        ),
    )
    _add_input(p)
    _add_analysis_options(p)
    p.add_argument(
        "--figures", type=Path, metavar="DIR", help="also draw the figures into this folder"
    )

    p = sub.add_parser(
        "batch",
        parents=[common],
        help="analyse many sessions on Dask (one task per session), with a summary",
        description=(
            "Run 'analyze' on every session, one Dask task each, on a local cluster (--workers) "
            "or a running scheduler (--scheduler). Writes DIR/<stem>_results.nwb per session "
            "(results only, unless --copy-source), DIR/summary.csv (one row per session: "
            "status ok/failed/skipped, error, K, VAF, R^2, NegCps, units, units with effects, "
            "correspondence p-value, run time, synergy classes), DIR/synergy_classes.csv and "
            "the figures of the synergy classes across sessions. A failing session does not "
            "stop the others; a second run skips sessions whose results exist. Exit code 0 "
            "when every session succeeded, 1 when any failed."
        ),
    )
    p.add_argument(
        "files", nargs="+", metavar="FILE_OR_URL", help="NWB files (paths or https/s3 URLs)"
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for results")
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="worker processes of the local Dask cluster (default: one per core)",
    )
    where.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running Dask scheduler (e.g. tcp://127.0.0.1:8786) instead",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="analyse again the sessions whose results exist (default: skip them)",
    )
    p.add_argument(
        "--copy-source",
        action="store_true",
        help="results files hold the whole session too (raw data included)",
    )
    p.add_argument("--emg", metavar="NAME", help="name of the EMG series in every file")
    _add_analysis_options(p)

    p = sub.add_parser(
        "report",
        parents=[common],
        help="draw the figures of a results file",
        description=(
            "Figures (PNG and SVG) drawn from the results stored in an NWB file: synergy "
            "weights with negative components, activations, model order, STA grids, muscle "
            "fields."
        ),
    )
    p.add_argument("file", type=Path, metavar="FILE.nwb", help="NWB file holding results")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder for the figures (default: FILE_figures next to the file)",
    )
    p.add_argument(
        "--format",
        dest="formats",
        default="png,svg",
        help="comma-separated figure formats (default: png,svg)",
    )

    p = sub.add_parser(
        "convert-walking",
        parents=[common],
        help="convert the musclesyneRgies CSV walking trial to NWB",
        description=(
            "Convert '<trial>_raw_emg.csv' (time in s, raw EMG in microvolts) and "
            "'<trial>_cycles.csv' (touchdown_s, liftoff_s) into an NWB file with the EMG in "
            "acquisition and the gait cycles in intervals."
        ),
    )
    p.add_argument("directory", type=Path, metavar="DIR", help="folder of the CSV files")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.nwb")
    p.add_argument("--trial", help="trial name when the folder holds several")
    p.add_argument("--overwrite", action="store_true", help="replace OUT.nwb if it exists")
    return parser


# -- commands -------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace, progress: bool) -> str:
    from .demo import run_demo

    result = run_demo(
        args.out,
        fast=args.fast,
        random_state=args.seed,
        figures=not args.no_figures,
        progress=progress,
    )
    return result.text


def _cmd_analyze(args: argparse.Namespace, progress: bool, **options) -> str:
    from .pipeline import analyze_session

    if args.replace_read_only:
        options["replace_read_only"] = True
    if args.copy_source:
        options["copy_source"] = True

    results = analyze_session(
        args.file,
        args.output,
        emg_name=args.emg,
        overwrite=args.overwrite,
        progress=progress,
        **options,
    )
    text = results.summary_text()
    figures = getattr(args, "figures", None)
    if figures is not None:
        from .plot import report

        paths = report(results.output, figures)
        text += f"\nfigures: {len(paths)} files in {figures}"
    return text


class _BatchFailed(Exception):
    """Some sessions of a batch failed: the summary is printed and the exit code is 1."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


def _cmd_batch(args: argparse.Namespace, progress: bool) -> str:
    from .batch import analyze_many

    result = analyze_many(
        args.files,
        args.out,
        workers=args.workers,
        scheduler=args.scheduler,
        overwrite=args.overwrite,
        copy_source=args.copy_source,
        progress=progress,
        emg_name=args.emg,
        **_analysis_values(args),
    )
    text = result.summary_text()
    if result.n_failed:
        raise _BatchFailed(text)
    return text


def _cmd_report(args: argparse.Namespace, progress: bool) -> str:
    from .plot import report

    out = args.out or args.file.with_name(args.file.stem + "_figures")
    formats = tuple(f.strip().lower() for f in args.formats.split(",") if f.strip())
    paths = report(args.file, out, formats=formats)
    return f"{len(paths)} figure files written to {out}:\n" + "\n".join(
        f"  {p.name}" for p in paths
    )


def _cmd_convert(args: argparse.Namespace, progress: bool) -> str:
    from .convert import convert_walking

    path = convert_walking(args.directory, args.output, trial=args.trial, overwrite=args.overwrite)
    return f"wrote {path}"


def _rlvm_options(args: argparse.Namespace) -> dict:
    return {"rlvm_options": {"l1": args.l1}, "negcp_options": {"n_boot": args.bootstrap}}


def _real_file_options(args: argparse.Namespace) -> dict:
    """The options of --conditioning, --intervals, --group-by and --cycles."""
    out = {"conditioning": args.conditioning, "intervals": args.intervals}
    for name in ("group_by", "cycles"):
        if getattr(args, name, None) is not None:
            out[name] = getattr(args, name)
    return out


def _dispatch(args: argparse.Namespace, progress: bool) -> str:
    if args.command == "demo":
        return _cmd_demo(args, progress)
    if args.command == "extract":
        return _cmd_analyze(
            args,
            progress,
            methods=_methods(args.method),
            n_synergies=args.n_synergies,
            sta=False,
            random_state=args.seed,
            **_rlvm_options(args),
            **_real_file_options(args),
        )
    if args.command == "sta":
        return _cmd_analyze(args, progress, methods=(), sta=True, **_real_file_options(args))
    if args.command == "analyze":
        return _cmd_analyze(args, progress, **_analysis_values(args))
    if args.command == "batch":
        return _cmd_batch(args, progress)
    if args.command == "report":
        return _cmd_report(args, progress)
    if args.command == "convert-walking":
        return _cmd_convert(args, progress)
    raise AssertionError(f"unknown command {args.command}")  # argparse prevents this


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text or type(err).__name__


def _printable_lines(text: str) -> str:
    """``text`` with control characters escaped in each line (line breaks kept)."""
    from .text import printable

    return "\n".join(printable(line) for line in text.split("\n"))


_H5_FILENAME = re.compile(r"filename = '([^']*)'")


def _environment_problem(err: BaseException) -> str | None:
    """One line for a failure of the machine rather than of the code, else None.

    Not enough memory, no space left, a refused permission, a missing or wrong path, and the
    other operating-system errors with an errno: the user can act on them, they are no bug.
    """
    from .errors import os_error_problem

    if isinstance(err, MemoryError):
        detail = _one_line(err) if str(err) else "MemoryError"
        return f"not enough memory ({detail})"
    problem = os_error_problem(err)
    if problem is None and isinstance(err, OSError) and err.errno is not None:
        problem = (err.strerror or _one_line(err)).rstrip(".")
    if problem is None:
        return None
    filename = getattr(err, "filename", None)
    if filename is None:
        match = _H5_FILENAME.search(str(err))
        filename = match.group(1) if match else None
    return f"file '{filename}': {problem}" if filename else problem


class _Terminated(BaseException):
    """SIGTERM arrived (a BaseException, so that no ``except Exception`` swallows it)."""


def _raise_terminated(signum, frame) -> None:
    raise _Terminated()


def _install_signal_handlers() -> dict:
    """Make SIGINT raise KeyboardInterrupt and SIGTERM raise _Terminated; returns the old ones.

    Python turns SIGINT into KeyboardInterrupt only when the parent left it at its default: a
    command started in the background by a non-interactive shell (``cmd &`` in a script) has
    SIGINT ignored, and ``kill -INT`` did nothing. SIGTERM would end the process without
    running any cleanup. Handlers are only set from the main thread, and only where the
    signal is not already handled by someone else.
    """
    import threading

    old: dict = {}
    if threading.current_thread() is not threading.main_thread():
        return old
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
        old[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        old[signal.SIGTERM] = signal.signal(signal.SIGTERM, _raise_terminated)
    return old


def _restore_signal_handlers(old: dict) -> None:
    for signum, handler in old.items():
        signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one escaped line: ``nwb-synergy: warning: <message>``."""
    text = " ".join(str(message).split())
    print(f"{PROG}: warning: {_printable_lines(text)}", file=sys.stderr)


class _PrintableFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _printable_lines(super().format(record))


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nwb-synergy``; returns the exit code (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version (0) and usage errors (2)
        return int(exit_.code or 0)
    quiet = getattr(args, "quiet", False)
    verbose = getattr(args, "verbose", False)
    debug = getattr(args, "debug", False)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING,
        handlers=[handler],
    )

    from .errors import InputError, NWBSynergyError, ResultsExistError

    error: BaseException | None = None
    old_handlers = _install_signal_handlers()
    try:
        with warnings.catch_warnings():
            if not debug:
                warnings.showwarning = _show_warning
            text = _dispatch(args, progress=not quiet)
    except _BatchFailed as err:  # the summary goes to stdout, as on success
        if not quiet:
            print(_printable_lines(err.text))
        return EXIT_INPUT
    except ResultsExistError as err:
        error, code = err, EXIT_EXISTS
        message = _one_line(err).replace("overwrite=True", "--overwrite")
    except (InputError, NWBSynergyError) as err:
        error, code, message = err, EXIT_INPUT, _one_line(err)
    except KeyboardInterrupt as err:
        error, code = err, EXIT_INTERRUPTED
        message = "interrupted (SIGINT); stopped, and no file was left half-written"
    except _Terminated as err:
        error, code = err, EXIT_TERMINATED
        message = "terminated (SIGTERM); stopped, and no file was left half-written"
    except Exception as err:  # noqa: BLE001 - the last resort of a command-line tool
        error = err
        problem = _environment_problem(err)
        if problem is not None:
            code, message = EXIT_INPUT, problem
        else:
            code = EXIT_INTERNAL
            message = f"unexpected {type(err).__name__}: {_one_line(err)}" + (
                "" if debug else " (run again with --debug for the traceback)"
            )
    else:
        if not quiet and text:
            print(_printable_lines(text))
        return EXIT_OK
    finally:
        _restore_signal_handlers(old_handlers)
    if debug:
        traceback.print_exception(error, file=sys.stderr)
    print(f"{PROG}: error: {_printable_lines(message)}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
