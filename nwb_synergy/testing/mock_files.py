"""Small, realistic NWB files holding EMG in each layout seen in real data, plus Units.

The EMG is stored as raw ``int16`` samples with a ``conversion`` factor and an ``offset``
(and per-channel gains where the layout allows them), so a reader must apply
``volts = raw * conversion * gain + offset`` to get the right numbers. The start time is not 0
and the rate is not 1000 Hz, so that forgetting either shows.

Layouts (``layout=``):

``"2d"``
    One 2-D TimeSeries (time x muscles) named ``EMG``. Muscle names are written in the
    description, in the form most real files use (``"... muscles: FDS, FDP, ECR"``), or as JSON in
    ``comments`` (``{"muscle_names": [...]}``), or not at all (``names_in=``).
``"per_muscle"``
    One 1-D TimeSeries per muscle, named after the muscle, each with its own ``conversion``
    (per-channel gain) and a description ``"EMG of <muscle>"``. HDF5 lists them by name, so
    the truth returned with them has its columns sorted by muscle name.
``"electrical"``
    One ElectricalSeries named ``EMG`` whose electrode rows name the muscles: a custom ``muscle``
    column of the electrodes table (``names_in="muscle"``) or its ``location`` column
    (``names_in="location"``); per-channel gains in ``channel_conversion``.

``where=`` puts the EMG in ``"acquisition"``, directly in a processing module (``"behavior"``,
``"ecephys"``), or inside a container of a processing module (``"behavior/EMG"``: a
BehavioralTimeSeries for TimeSeries, a FilteredEphys for an ElectricalSeries).

Every file has subject metadata good enough for DANDI (subject id, sex, Latin species, ISO-8601
age) and, unless ``units_where=None``, a Units table with ``resolution`` (optionally
``obs_intervals``) at the root (``"root"``) or in a processing module (``"ecephys"``).

Examples
--------
>>> nwbfile, truth = mock_emg_nwbfile("per_muscle", where="behavior")  # doctest: +SKIP
>>> truth = write_mock_file(tmp_path / "s.nwb", layout="electrical")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

LAYOUTS = ("2d", "per_muscle", "electrical")

MACAQUE_MUSCLES = (
    "FDS",
    "FDP",
    "FCR",
    "FCU",
    "PL",
    "EDC",
    "ECR",
    "ECU",
    "BR",
    "ED23",
    "ED45",
    "APL",
)
HUMAN_MUSCLES = ("TA", "SOL", "GM", "GL", "VL", "VM", "RF", "BF", "ST", "GMAX", "GMED", "PL")


@dataclass
class MockTruth:
    """What a correct reader must return for a mock file.

    Attributes
    ----------
    volts
        EMG in volts, shape (n_times, n_muscles), float64:
        ``raw * (conversion * gains) + offset``.
    raw
        The stored integer samples, shape (n_times, n_muscles), int16.
    conversion, offset
        The series-level ``conversion`` and ``offset`` attributes.
    gains
        Per-muscle gain, shape (n_muscles,): ``channel_conversion`` of an ElectricalSeries, the
        extra factor in each per-muscle series' ``conversion``, all ones for a 2-D TimeSeries.
    rate
        Sampling rate in Hz.
    t_start
        Time of the first sample in seconds.
    muscle_names
        One name per column.
    spike_times
        {unit id: sorted spike times in seconds}.
    layout, where, units_where
        Where the factory put things (see the module docstring).
    """

    volts: np.ndarray
    raw: np.ndarray
    conversion: float
    offset: float
    gains: np.ndarray
    rate: float
    t_start: float
    muscle_names: list[str]
    spike_times: dict[int, np.ndarray] = field(default_factory=dict)
    layout: str = "2d"
    where: str = "acquisition"
    units_where: str | None = "root"

    @property
    def n_times(self) -> int:
        return int(self.volts.shape[0])

    @property
    def n_muscles(self) -> int:
        return int(self.volts.shape[1])


def make_truth(
    n_times: int = 3000,
    n_muscles: int = 6,
    *,
    rate: float = 2034.5,
    t_start: float = 12.75,
    conversion: float = 0.195e-6,
    offset: float = -2.5e-5,
    gains: np.ndarray | None = None,
    species: str = "Macaca mulatta",
    unit_ids: tuple[int, ...] = (3, 7, 12),
    seed: int = 0,
) -> MockTruth:
    """Raw int16 EMG-like samples, their values in volts, and spike times.

    Parameters
    ----------
    n_times, n_muscles
        Shape of the EMG, (n_times, n_muscles).
    rate, t_start
        Sampling rate (Hz) and time of the first sample (s).
    conversion, offset
        Series-level scaling: ``volts = raw * conversion * gain + offset``.
    gains
        Per-muscle gains, shape (n_muscles,); all ones when None.
    species
        ``"Macaca mulatta"`` gives forearm muscle names, anything else leg muscle names.
    unit_ids
        Ids of the units whose spike times are drawn (non-contiguous on purpose).
    seed
        Seed of the random generator.

    Returns
    -------
    MockTruth
    """
    rng = np.random.default_rng(seed)
    names_pool = MACAQUE_MUSCLES if species == "Macaca mulatta" else HUMAN_MUSCLES
    if n_muscles > len(names_pool):
        names = [f"{names_pool[i % len(names_pool)]}_{i}" for i in range(n_muscles)]
    else:
        names = list(names_pool[:n_muscles])
    t = np.arange(n_times) / rate
    # bursts of noise under slowly varying envelopes, about +-200 uV, plus a little DC
    phase = rng.uniform(0, 2 * np.pi, n_muscles)
    envelope = 0.6 + 0.5 * np.sin(2 * np.pi * 1.3 * t[:, None] + phase[None, :])
    signal_uv = 80.0 * envelope * rng.standard_normal((n_times, n_muscles))
    raw = np.clip(np.round(signal_uv / 0.195), -32768, 32767).astype(np.int16)
    gains = np.ones(n_muscles) if gains is None else np.asarray(gains, dtype=float)
    if gains.shape != (n_muscles,):
        raise ValueError(f"gains must have shape ({n_muscles},), got {gains.shape}")
    volts = raw.astype(np.float64) * (conversion * gains) + offset
    t_end = t_start + n_times / rate
    spikes = {}
    for k, uid in enumerate(unit_ids):
        n_spikes = 20 + 15 * k
        spikes[int(uid)] = np.sort(rng.uniform(t_start, t_end, n_spikes))
    return MockTruth(
        volts=volts,
        raw=raw,
        conversion=float(conversion),
        offset=float(offset),
        gains=gains,
        rate=float(rate),
        t_start=float(t_start),
        muscle_names=names,
        spike_times=spikes,
    )


def mock_nwbfile(species: str = "Macaca mulatta", *, identifier: str | None = None):
    """An empty NWBFile with the metadata DANDI asks for (subject id, sex, species, age).

    Parameters
    ----------
    species
        Latin species name, e.g. ``"Macaca mulatta"`` or ``"Homo sapiens"``.
    identifier
        The file's identifier; a fresh UUID4 when None (DANDI wants unique identifiers).

    Returns
    -------
    pynwb.NWBFile
    """
    from pynwb.file import Subject
    from pynwb.testing.mock.file import mock_NWBFile

    monkey = species == "Macaca mulatta"
    subject = Subject(
        subject_id="M1" if monkey else "P01",
        sex="M" if monkey else "F",
        species=species,
        age="P5Y" if monkey else "P27Y",
        description="adult macaque trained on a wrist task" if monkey else "healthy adult",
    )
    return mock_NWBFile(
        session_description="mock session: EMG of forearm muscles and premotor interneuron spikes",
        identifier=identifier or str(uuid.uuid4()),
        keywords=["EMG", "muscle synergies", "spike-triggered average"],
        session_start_time=datetime(2024, 3, 5, 10, 30, tzinfo=timezone.utc),
        experimenter=["Doe, Jane"],
        lab="Mock Lab",
        institution="Mock Institute",
        experiment_description="Simultaneous EMG and spinal interneuron recordings (simulated).",
        subject=subject,
    )


def _container(nwbfile, where: str, electrical: bool):
    """The function adding a series at ``where`` ("acquisition", "module", "module/container")."""
    from pynwb.behavior import BehavioralTimeSeries
    from pynwb.ecephys import FilteredEphys

    if where == "acquisition":
        return nwbfile.add_acquisition
    module_name, _, inner = where.partition("/")
    descriptions = {
        "behavior": "behavioral signals, here the EMG of the recorded muscles",
        "ecephys": "extracellular electrophysiology: EMG and sorted units",
    }
    if module_name in nwbfile.processing:
        module = nwbfile.processing[module_name]
    else:
        module = nwbfile.create_processing_module(
            module_name, descriptions.get(module_name, f"{module_name} data (EMG)")
        )
    if not inner:
        return module.add
    holder = (FilteredEphys if electrical else BehavioralTimeSeries)(name=inner)
    module.add(holder)
    return holder.add_electrical_series if electrical else holder.add_timeseries


def add_emg(
    nwbfile,
    truth: MockTruth,
    layout: str = "2d",
    *,
    where: str = "acquisition",
    names_in: str = "description",
    timestamps: bool = False,
    name: str = "EMG",
) -> None:
    """Add the EMG of ``truth`` to ``nwbfile`` in the given layout.

    Parameters
    ----------
    nwbfile
        The pynwb NWBFile to add to.
    truth
        Samples and metadata from :func:`make_truth`.
    layout
        ``"2d"``, ``"per_muscle"`` or ``"electrical"``.
    where
        ``"acquisition"``, a processing module name, or ``"module/container"``.
    names_in
        Where the muscle names go. ``"2d"``: ``"description"`` (text ``muscles: A, B``),
        ``"comments"`` (JSON ``{"muscle_names": [...]}``) or ``"none"``. ``"electrical"``:
        ``"muscle"`` (custom electrodes column) or ``"location"``. Ignored for ``"per_muscle"``
        (the series names are the muscle names).
    timestamps
        Store explicit (regular) timestamps instead of ``rate`` and ``starting_time``.
    name
        Name of the 2-D TimeSeries or ElectricalSeries.
    """
    from pynwb import TimeSeries
    from pynwb.ecephys import ElectricalSeries

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    add = _container(nwbfile, where, electrical=layout == "electrical")
    n = truth.n_times
    if timestamps:
        timing = {"timestamps": truth.t_start + np.arange(n) / truth.rate}
    else:
        timing = {"rate": truth.rate, "starting_time": truth.t_start}
    names = truth.muscle_names
    if layout == "2d":
        if not np.allclose(truth.gains, 1.0):
            raise ValueError("a 2-D TimeSeries has no per-channel gains: use gains=None")
        description = f"Raw surface EMG (bipolar), {len(names)} muscles"
        comments = "no comments"
        if names_in == "description":
            description += ": " + ", ".join(names)
        elif names_in == "comments":
            comments = json.dumps({"muscle_names": names})
        elif names_in != "none":
            raise ValueError(
                f"names_in for a 2-D TimeSeries: description, comments or none, not {names_in!r}"
            )
        add(
            TimeSeries(
                name=name,
                data=truth.raw,
                unit="V",
                conversion=truth.conversion,
                offset=truth.offset,
                description=description,
                comments=comments,
                **timing,
            )
        )
    elif layout == "per_muscle":
        for k, muscle in enumerate(names):
            add(
                TimeSeries(
                    name=muscle,
                    data=truth.raw[:, k],
                    unit="V",
                    conversion=float(truth.conversion * truth.gains[k]),
                    offset=truth.offset,
                    description=f"EMG of {muscle} (bipolar surface electrodes)",
                    **timing,
                )
            )
    else:
        device = nwbfile.create_device(name="EMGAmp", description="32-channel EMG amplifier")
        group = nwbfile.create_electrode_group(
            name="emg_electrodes",
            description="bipolar EMG wires implanted in forearm muscles",
            location="right forearm",
            device=device,
        )
        if names_in == "muscle":
            nwbfile.add_electrode_column("muscle", "muscle the EMG electrode is implanted in")
        elif names_in != "location":
            raise ValueError(
                f"names_in for an ElectricalSeries: muscle or location, not {names_in!r}"
            )
        for muscle in names:
            extra = {"muscle": muscle} if names_in == "muscle" else {}
            location = f"right forearm, {muscle}" if names_in == "muscle" else muscle
            nwbfile.add_electrode(group=group, location=location, **extra)
        region = nwbfile.create_electrode_table_region(
            list(range(len(names))), "electrodes of the EMG channels"
        )
        add(
            ElectricalSeries(
                name=name,
                data=truth.raw,
                electrodes=region,
                conversion=truth.conversion,
                offset=truth.offset,
                # stored as float32 by the schema: keep gains exactly representable
                channel_conversion=truth.gains,
                description="Raw intramuscular EMG",
                **timing,
            )
        )


def add_units(
    nwbfile,
    spike_times: dict[int, np.ndarray],
    *,
    where: str = "root",
    resolution: float = 1.0 / 30000.0,
    obs_intervals: tuple[float, float] | None = None,
) -> None:
    """Add a Units table holding ``spike_times`` at the root or in a processing module.

    Parameters
    ----------
    nwbfile
        The pynwb NWBFile to add to.
    spike_times
        {unit id: spike times in seconds}.
    where
        ``"root"`` (``nwbfile.units``) or a processing module name (e.g. ``"ecephys"``).
    resolution
        Smallest possible difference between two spike times, seconds.
    obs_intervals
        One (start, stop) observation interval shared by all units, or None for no column.
    """
    from pynwb.misc import Units

    units = Units(
        name="units" if where == "root" else "Units",
        description="sorted single units (simulated premotor interneurons)",
        resolution=resolution,
    )
    for uid, times in spike_times.items():
        extra = {"obs_intervals": [list(obs_intervals)]} if obs_intervals is not None else {}
        units.add_unit(spike_times=np.asarray(times, dtype=float), id=int(uid), **extra)
    if where == "root":
        nwbfile.units = units
    else:
        if where in nwbfile.processing:
            module = nwbfile.processing[where]
        else:
            module = nwbfile.create_processing_module(where, "extracellular electrophysiology")
        module.add(units)


def mock_emg_nwbfile(
    layout: str = "2d",
    *,
    where: str = "acquisition",
    names_in: str | None = None,
    units_where: str | None = "root",
    obs_intervals: bool = False,
    timestamps: bool = False,
    species: str = "Macaca mulatta",
    truth: MockTruth | None = None,
    **truth_kwargs,
):
    """An in-memory NWBFile with EMG in ``layout`` and Units, and its ground truth.

    Parameters
    ----------
    layout, where, names_in, timestamps
        See :func:`add_emg`. ``names_in`` defaults to ``"description"`` for ``"2d"`` and
        ``"muscle"`` for ``"electrical"``.
    units_where
        ``"root"``, a processing module name, or None for no Units.
    obs_intervals
        Give the Units an ``obs_intervals`` column covering the recording.
    species
        Subject species (also picks the muscle names).
    truth
        Use these samples instead of drawing new ones (not modified; the returned truth is a
        copy, with per-muscle columns sorted by name as :func:`~nwb_synergy.io.read.read_emg`
        returns them).
    **truth_kwargs
        Passed to :func:`make_truth` (n_times, n_muscles, rate, t_start, conversion, offset,
        gains, unit_ids, seed). Per-channel gains default to unequal values for the per-muscle
        and electrical layouts.

    Returns
    -------
    nwbfile : pynwb.NWBFile
    truth : MockTruth
    """
    if truth is None:
        if layout != "2d" and "gains" not in truth_kwargs:
            n_muscles = truth_kwargs.get("n_muscles", 6)
            truth_kwargs["gains"] = np.array([1.0, 0.5, 2.0, 1.25, 0.75, 4.0] * n_muscles)[
                :n_muscles
            ]
        truth = make_truth(species=species, **truth_kwargs)
    if layout == "per_muscle":
        # per-muscle series are read back sorted by name (HDF5 lists group members by name)
        order = np.argsort(truth.muscle_names, kind="stable")
        truth = replace(
            truth,
            raw=truth.raw[:, order],
            volts=truth.volts[:, order],
            gains=truth.gains[order],
            muscle_names=[truth.muscle_names[k] for k in order],
        )
    truth = replace(truth, layout=layout, where=where, units_where=units_where)
    if names_in is None:
        names_in = {"2d": "description", "electrical": "muscle"}.get(layout, "")
    nwbfile = mock_nwbfile(species)
    add_emg(nwbfile, truth, layout, where=where, names_in=names_in, timestamps=timestamps)
    if units_where is not None:
        interval = (truth.t_start, truth.t_start + truth.n_times / truth.rate)
        add_units(
            nwbfile,
            truth.spike_times,
            where=units_where,
            obs_intervals=interval if obs_intervals else None,
        )
    return nwbfile, truth


def write_nwbfile(nwbfile, path: str | Path) -> Path:
    """Write ``nwbfile`` to ``path`` (HDF5) and return the path."""
    from pynwb import NWBHDF5IO

    path = Path(path)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return path


def write_mock_file(path: str | Path, layout: str = "2d", **kwargs) -> MockTruth:
    """Write a mock NWB file (see :func:`mock_emg_nwbfile`) to ``path``; return its truth."""
    nwbfile, truth = mock_emg_nwbfile(layout, **kwargs)
    write_nwbfile(nwbfile, path)
    return truth


def carrier_emg(
    envelope: np.ndarray,
    envelope_rate: float,
    rate: float,
    *,
    amplitude: float = 5e-5,
    band: tuple[float, float] = (30.0, 300.0),
    seed: int = 0,
) -> np.ndarray:
    """Raw EMG (volts) whose envelope is ``envelope``: band-pass noise scaled by it.

    Parameters
    ----------
    envelope
        (n_env, n_muscles) non-negative amplitudes sampled at ``envelope_rate`` Hz.
    envelope_rate, rate
        Rates (Hz) of the envelope and of the EMG made.
    amplitude
        Volts of a unit envelope (the noise has unit RMS before scaling).
    band
        Pass band of the noise carrier, Hz.
    seed
        Seed of the noise.

    Returns
    -------
    np.ndarray
        (n_env * rate / envelope_rate, n_muscles) EMG in volts.
    """
    from scipy.signal import butter, sosfiltfilt

    rng = np.random.default_rng(seed)
    n = int(envelope.shape[0] * rate / envelope_rate)
    t = np.arange(n) / rate
    env_t = np.arange(envelope.shape[0]) / envelope_rate
    up = np.column_stack([np.interp(t, env_t, e) for e in envelope.T])
    sos = butter(4, band, btype="band", fs=rate, output="sos")
    noise = sosfiltfilt(sos, rng.standard_normal(up.shape), axis=0)
    return amplitude * up * noise / noise.std(axis=0)
