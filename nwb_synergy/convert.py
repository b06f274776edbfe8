"""Convert the CSV walking trial of musclesyneRgies into a proper NWB file.

Layout read (one trial, files named ``<trial>_raw_emg.csv`` and ``<trial>_cycles.csv``):

* ``<trial>_raw_emg.csv``: a ``time`` column in seconds (regular, e.g. 1 kHz), then one column
  per muscle, raw surface EMG in microvolts as recorded.
* ``<trial>_cycles.csv``: ``touchdown_s`` and ``liftoff_s`` of each recorded gait cycle.

Written:

* ``acquisition/EMG``: one 2-D :class:`pynwb.TimeSeries` (time x muscles), float32
  microvolts (which keep the CSV's 6 significant digits) with ``conversion`` = 1e-6 to volts.
  The muscle names (column order) are the last line of its description, a JSON list
  (``muscles: ["ME", "MA", ...]``, after the full names), which is where
  :func:`nwb_synergy.read_emg` looks for them. The file opens with ``neo.io.NWBIO`` too, which
  needs a power-of-1000 ``conversion`` (not an ADC step), comments that are not JSON and no
  ``keywords`` (the file has none).
* ``intervals/gait_cycles``: one row per touchdown, ``start_time`` = touchdown, ``stop_time`` =
  next touchdown (the end of the recording for the last one), a ``liftoff_time`` column and a
  ``complete`` column (False for the last, open cycle).
* Subject (``Homo sapiens``), licence and source in the file's metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .errors import InputError, ResultsExistError

#: full names of the muscles of the musclesyneRgies example data (right leg)
WALKING_MUSCLES: dict[str, str] = {
    "ME": "gluteus medius",
    "MA": "gluteus maximus",
    "FL": "tensor fasciae latae",
    "RF": "rectus femoris",
    "VM": "vastus medialis",
    "VL": "vastus lateralis",
    "ST": "semitendinosus",
    "BF": "biceps femoris (long head)",
    "TA": "tibialis anterior",
    "PL": "peroneus longus",
    "GM": "gastrocnemius medialis",
    "GL": "gastrocnemius lateralis",
    "SO": "soleus",
}

SOURCE_DOI = "10.1016/j.isci.2019.100796"
LICENCE = (
    "Example data of the R package musclesyneRgies (A. Santuz), MIT licence, "
    "copyright 2021 Alessandro Santuz; source study doi:" + SOURCE_DOI + "."
)
# The recording date was not distributed with the data: the session start is set to the
# publication date of the source study (iScience 23(1), 24 January 2020) and said so in the file.
DEFAULT_START = datetime(2020, 1, 24, tzinfo=timezone.utc)


@dataclass
class WalkingTrial:
    """One walking trial read from CSV.

    Attributes
    ----------
    trial
        Trial name (file prefix), e.g. ``ID0012_TW_01``.
    emg_uv
        Raw EMG in microvolts, (n_times, n_muscles).
    rate
        Sampling rate in Hz.
    t_start
        Time of the first sample in seconds.
    muscle_names
        Column names of the muscles.
    touchdown, liftoff
        Gait events in seconds, (n_cycles,).
    files
        The CSV files read.
    """

    trial: str
    emg_uv: np.ndarray
    rate: float
    t_start: float
    muscle_names: list[str]
    touchdown: np.ndarray
    liftoff: np.ndarray
    files: tuple[Path, Path]


def find_trials(directory: str | Path) -> list[str]:
    """Names of the trials in a folder (prefixes of ``*_raw_emg.csv`` files), sorted."""
    directory = Path(directory)
    return sorted(p.name[: -len("_raw_emg.csv")] for p in directory.glob("*_raw_emg.csv"))


def read_walking_trial(directory: str | Path, trial: str | None = None) -> WalkingTrial:
    """Read one trial of the musclesyneRgies CSV layout.

    Parameters
    ----------
    directory
        Folder holding ``<trial>_raw_emg.csv`` and ``<trial>_cycles.csv``.
    trial
        Trial name; may be omitted when the folder holds exactly one.

    Raises
    ------
    InputError
        Folder or files missing, several trials and none chosen, irregular time column,
        non-numeric or non-finite samples, cycles outside the recording.
    """
    import pandas as pd

    directory = Path(directory)
    if not directory.is_dir():
        raise InputError("folder not found", file=directory)
    trials = find_trials(directory)
    if trial is None:
        if not trials:
            raise InputError("no '<trial>_raw_emg.csv' file in this folder", file=directory)
        if len(trials) > 1:
            raise InputError(
                f"{len(trials)} trials in this folder ({', '.join(trials)}); choose one",
                file=directory,
            )
        trial = trials[0]
    emg_file = directory / f"{trial}_raw_emg.csv"
    cycles_file = directory / f"{trial}_cycles.csv"
    for f in (emg_file, cycles_file):
        if not f.exists():
            raise InputError("file not found", file=f)

    table = pd.read_csv(emg_file)
    if "time" not in table.columns or table.shape[1] < 2:
        raise InputError("expected a 'time' column and one column per muscle", file=emg_file)
    muscles = [str(c) for c in table.columns if c != "time"]
    try:
        data = table[muscles].to_numpy(dtype=float)
        time = table["time"].to_numpy(dtype=float)
    except ValueError as err:
        raise InputError(f"non-numeric values: {err}", file=emg_file) from None
    if len(time) < 2:
        raise InputError("fewer than two samples", file=emg_file)
    if not np.isfinite(data).all():
        bad = [muscles[i] for i in np.flatnonzero(~np.isfinite(data).all(axis=0))]
        raise InputError(f"missing or non-finite samples in muscle(s) {bad}", file=emg_file)
    step = np.diff(time)
    period = float(np.median(step))
    if period <= 0 or np.abs(step - period).max() > 0.01 * period:
        raise InputError("the 'time' column is not regularly sampled", file=emg_file, obj="time")

    cycles = pd.read_csv(cycles_file)
    for col in ("touchdown_s", "liftoff_s"):
        if col not in cycles.columns:
            raise InputError(f"missing column '{col}'", file=cycles_file)
    touchdown = cycles["touchdown_s"].to_numpy(dtype=float)
    liftoff = cycles["liftoff_s"].to_numpy(dtype=float)
    t_end = time[-1] + period
    if (
        not np.isfinite(touchdown).all()
        or np.any(np.diff(touchdown) <= 0)
        or touchdown[0] < time[0]
        or touchdown[-1] >= t_end
    ):
        raise InputError(
            "touchdowns must be increasing times inside the recording", file=cycles_file
        )
    if np.any(liftoff <= touchdown) or np.any(liftoff[:-1] >= touchdown[1:]):
        raise InputError(
            "each lift-off must fall between its touchdown and the next one", file=cycles_file
        )
    return WalkingTrial(
        trial=trial,
        emg_uv=data,
        rate=round(1.0 / period, 6),
        t_start=float(time[0]),
        muscle_names=muscles,
        touchdown=touchdown,
        liftoff=liftoff,
        files=(emg_file, cycles_file),
    )


def walking_trial_to_nwb(
    trial: WalkingTrial,
    *,
    session_start_time: datetime | None = None,
    subject_id: str | None = None,
    sex: str = "U",
    age: str = "P18Y/",
):
    """Build an in-memory :class:`pynwb.NWBFile` from a :class:`WalkingTrial`.

    Parameters
    ----------
    trial
        The trial read by :func:`read_walking_trial`.
    session_start_time
        Default: the publication date of the source study (the recording date is not
        distributed); the session description says so.
    subject_id
        Default: the part of the trial name before the first underscore (``ID0012``).
    sex
        "U" (unknown, the default: the example data do not say), "M", "F" or "O".
    age
        ISO 8601 duration or range; default ``"P18Y/"`` (an adult: 18 years or older), since
        the participants of the source study were healthy adults and their ages are not
        distributed per participant.
    """
    from pynwb import NWBFile, TimeSeries
    from pynwb.file import Subject

    from . import __version__

    start = session_start_time or DEFAULT_START
    subject_id = subject_id or trial.trial.split("_")[0]
    full = [
        f"{m} ({WALKING_MUSCLES[m]})" if m in WALKING_MUSCLES else m for m in trial.muscle_names
    ]
    nwbfile = NWBFile(
        session_description=(
            f"Treadmill walking trial {trial.trial}: raw surface EMG of {len(full)} right-leg "
            f"muscles at {trial.rate:g} Hz and {len(trial.touchdown)} touchdowns. Converted from "
            "the CSV export of the musclesyneRgies example data by nwb_synergy "
            f"{__version__}. The recording date was not distributed: session_start_time is the "
            "publication date of the source study."
        ),
        identifier=f"musclesyneRgies-{trial.trial}",
        session_start_time=start,
        session_id=trial.trial,
        experiment_description="Human treadmill locomotion, muscle synergy analysis.",
        related_publications=[f"doi:{SOURCE_DOI}"],
        source_script=f"nwb_synergy.convert.convert_walking (nwb_synergy {__version__})",
        source_script_file_name="nwb_synergy/convert.py",
        notes=LICENCE,
        subject=Subject(
            subject_id=subject_id,
            species="Homo sapiens",
            sex=sex,
            age=age,
            description="Healthy adult participant of the source study (age range only).",
        ),
    )
    # No ADC-step conversion, no JSON comments, no keywords: neo.io.NWBIO could not read them.
    nwbfile.add_acquisition(
        TimeSeries(
            name="EMG",
            data=trial.emg_uv.astype(np.float32),
            unit="volts",
            conversion=1e-6,
            starting_time=trial.t_start,
            rate=float(trial.rate),
            description=(
                f"Raw surface EMG of {len(full)} right-leg muscles (time x muscles) in "
                "microvolts: "
                + "; ".join(full)
                + ".\nmuscles: "
                + json.dumps(list(trial.muscle_names), ensure_ascii=False)
            ),
        )
    )
    t_end = trial.t_start + len(trial.emg_uv) / trial.rate
    cycles = nwbfile.create_time_intervals(
        name="gait_cycles",
        description=(
            "Gait cycles from one touchdown to the next (the last runs to the end of the "
            "recording and is marked incomplete)."
        ),
    )
    cycles.add_column("liftoff_time", "Lift-off (toe-off) time of the cycle, in seconds.")
    cycles.add_column("complete", "True when the cycle ends at the next touchdown.")
    n = len(trial.touchdown)
    for i in range(n):
        stop = trial.touchdown[i + 1] if i + 1 < n else t_end
        cycles.add_row(
            start_time=float(trial.touchdown[i]),
            stop_time=float(stop),
            liftoff_time=float(trial.liftoff[i]),
            complete=bool(i + 1 < n),
        )
    return nwbfile


def convert_walking(
    directory: str | Path,
    output: str | Path,
    *,
    trial: str | None = None,
    overwrite: bool = False,
    **metadata,
) -> Path:
    """Convert a musclesyneRgies CSV trial to an NWB file.

    Parameters
    ----------
    directory
        Folder of the CSV files.
    output
        The NWB file to write.
    trial
        Trial name when the folder holds several.
    overwrite
        Replace ``output`` if it exists (otherwise refuse).
    **metadata
        Passed to :func:`walking_trial_to_nwb` (``session_start_time``, ``subject_id``, ``sex``,
        ``age``).

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    InputError
        Bad input files (see :func:`read_walking_trial`).
    ResultsExistError
        ``output`` exists and ``overwrite`` is False.
    """
    from .io.save import save_nwb

    output = Path(output)
    if output.exists() and not overwrite:
        raise ResultsExistError(
            f"file '{output}': already exists; pass overwrite=True (--overwrite) to replace it"
        )
    nwbfile = walking_trial_to_nwb(read_walking_trial(directory, trial), **metadata)
    if not output.parent.is_dir():
        output.parent.mkdir(parents=True)
    return save_nwb(nwbfile, output, overwrite=overwrite)
