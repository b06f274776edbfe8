"""A whole simulated session, written as a DANDI-ready NWB file, with its planted truth.

The session imitates a macaque forelimb experiment of the Seki group's kind: raw EMG of 12-16
forelimb muscles and the spikes of a dozen spinal premotor interneurons. It is built from the
two simulators of the package:

1. :func:`~nwb_synergy.simulate.simulate_synergies` draws ``n_synergies`` synergies, each with
   negative components (NegCps) on muscles that keep some tonic activity, and their bursty
   activations; the noise-free envelopes ``tonic + activations @ weights.T`` (100 Hz) are the
   slow amplitude of each muscle.
2. :func:`~nwb_synergy.simulate.simulate_spikes` turns them into raw EMG at the full rate
   (band-limited noise carriers modulated by the envelopes) and draws spike trains whose
   spikes multiply the EMG amplitude of chosen muscles by ``1 +- effect_size`` for 10 ms,
   6 ms after each spike. Each unit's firing rate follows the activation of "its" synergy
   (task co-modulation, leading the EMG by 50 ms), so that STAs carry the broad humps of real
   data.

The planted roles: *inhibitory* units suppress exactly the NegCp muscles of their synergy (the
correspondence Guo et al. 2025 report); *facilitatory* units facilitate the strongest muscles of
their synergy; the remaining units have no effect.

What the NWB file holds
-----------------------
* ``acquisition/EMG``: raw EMG, a 2-D TimeSeries (time x muscles), float32 microvolts with
  ``conversion`` = 1e-6 to volts; the muscle names are the last line of its description,
  ``muscles: ["EDC", "ED23", ...]`` (a JSON list). This layout opens with ``neo.io.NWBIO``
  (which needs a power-of-1000 ``conversion``, no ``offset``, comments that are not JSON and
  no ``keywords``; the file has none).
* ``units``: spike times (resolution 1/30 kHz), ``obs_intervals``, and the planted truth in
  columns ``planted_role``, ``planted_synergy``, ``planted_facilitated``,
  ``planted_suppressed`` and ``planted_effect_size``.
* ``processing/behavior/MuscleSynergyTruth`` and ``SynergyActivationTruth``: the true synergies
  (method ``"ground_truth"``, signed weights, ``offset`` = the tonic baseline,
  ``negative_component`` column = the planted NegCps) and activations. These names never clash
  with the analysis results (``MuscleSynergyNMF``, ``MuscleSynergyRLVM``).
* Subject (``Macaca mulatta``, sex, ISO 8601 age), session and simulation parameters.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, ResultsExistError
from .spikes import PlantedEffects

#: forelimb muscles of macaque EMG studies (Takei et al. 2017 recorded up to 19)
FORELIMB_MUSCLES = (
    "EDC",
    "ED23",
    "ED45",
    "ECU",
    "ECRl",
    "ECRb",
    "APL",
    "FDS",
    "FDP",
    "FCU",
    "FCR",
    "PL",
    "BRD",
    "PT",
    "BB",
    "TB",
)

SPIKE_RESOLUTION = 1.0 / 30000.0  # s, as if sorted from a 30 kHz recording
SESSION_START = datetime(2024, 1, 15, 10, 0, 0, tzinfo=timezone.utc)  # fixed: reproducible files


@dataclass
class SimulatedSession(PlantedEffects):
    """A simulated session and its planted truth.

    Attributes
    ----------
    path
        The NWB file written, or None when only the in-memory file was asked.
    nwbfile
        The in-memory :class:`pynwb.NWBFile` (None after it was written to ``path``).
    muscle_names
        One name per EMG channel.
    weights
        True synergies (n_muscles, n_synergies), unit-norm columns, NegCps negative.
    activations
        True activations (n_env, n_synergies) at ``envelope_rate``.
    negative_mask
        Boolean (n_muscles, n_synergies): the planted NegCps.
    tonic
        Tonic baseline of each muscle (n_muscles,), in envelope units.
    envelope_rate
        Rate of ``activations`` (Hz).
    unit_ids
        Unit ids (rows of ``effects``).
    roles
        Planted role of each unit: "inhibitory", "facilitatory" or "none".
    unit_synergy
        Synergy (0-based) whose activation drives each unit's firing rate.
    effects
        Planted effects (n_units, n_muscles), signed fractions (-0.08 = 8% suppression).
    spike_times
        {unit id: spike times (s)} as written (rounded to the spike-time resolution).
    rate, duration
        EMG rate (Hz) and duration (s).
    parameters
        All arguments, for provenance.
    """

    path: Path | None
    nwbfile: Any
    muscle_names: list[str]
    weights: np.ndarray
    activations: np.ndarray
    negative_mask: np.ndarray
    tonic: np.ndarray
    envelope_rate: float
    unit_ids: list[int]
    roles: list[str]
    unit_synergy: list[int]
    effects: np.ndarray
    spike_times: dict[int, np.ndarray]
    rate: float
    duration: float
    parameters: dict = field(default_factory=dict, repr=False)

    @property
    def n_synergies(self) -> int:
        return int(self.weights.shape[1])

    def planted_pairs(self) -> dict[tuple[int, str], str]:
        """{(unit id, muscle): "PSF" or "PSpS"} for every planted effect."""
        out = {}
        for u, uid in enumerate(self.unit_ids):
            for m, name in enumerate(self.muscle_names):
                if self.effects[u, m] > 0:
                    out[(uid, name)] = "PSF"
                elif self.effects[u, m] < 0:
                    out[(uid, name)] = "PSpS"
        return out


def _muscle_names(n_muscles: int) -> list[str]:
    if n_muscles <= len(FORELIMB_MUSCLES):
        return list(FORELIMB_MUSCLES[:n_muscles])
    return [f"muscle_{i:02d}" for i in range(n_muscles)]


def _assign_roles(
    rng: np.random.Generator,
    n_units: int,
    n_inhibitory: int,
    n_facilitatory: int,
    mask: np.ndarray,
) -> tuple[list[str], list[int]]:
    """Role and driving synergy of each unit (inhibitory units on synergies with NegCps)."""
    n_syn = mask.shape[1]
    with_negcp = [k for k in range(n_syn) if mask[:, k].any()]
    if n_inhibitory and not with_negcp:
        raise InputError("inhibitory units need synergies with NegCps", obj="n_inhibitory")
    roles = (
        ["inhibitory"] * n_inhibitory
        + ["facilitatory"] * n_facilitatory
        + ["none"] * (n_units - n_inhibitory - n_facilitatory)
    )
    synergy = []
    for i, role in enumerate(roles):
        if role == "inhibitory":
            synergy.append(with_negcp[i % len(with_negcp)])
        else:
            synergy.append(int(i % n_syn))
    order = rng.permutation(n_units)  # interleave the roles over unit ids
    return [roles[i] for i in order], [synergy[i] for i in order]


def simulate_session(
    path: str | Path | None = None,
    *,
    n_muscles: int = 14,
    n_synergies: int = 4,
    n_units: int = 12,
    n_inhibitory: int = 4,
    n_facilitatory: int = 5,
    n_facilitated_muscles: int = 2,
    duration: float = 240.0,
    rate: float = 2000.0,
    effect_size: float = 0.08,
    firing_rate: float = 25.0,
    comodulation: float = 0.5,
    negative_size: float = 0.3,
    amplitude: float = 5e-5,
    random_state: int = 0,
    overwrite: bool = False,
) -> SimulatedSession:
    """Simulate a primate-like EMG + spikes session and write it as NWB.

    Parameters
    ----------
    path
        Where to write the NWB file; None keeps it in memory (``result.nwbfile``).
    n_muscles
        EMG channels (12-16 forelimb muscles are named; more get generic names).
    n_synergies
        True synergies, each with one NegCp.
    n_units, n_inhibitory, n_facilitatory
        Units in all, of which inhibitory (suppress the NegCp muscles of their synergy) and
        facilitatory (facilitate the ``n_facilitated_muscles`` strongest muscles of theirs);
        the rest have no effect.
    duration
        Seconds of recording.
    rate
        EMG sampling rate (Hz).
    effect_size
        Size of every planted effect, a fraction of the EMG amplitude (0.08 = 8%).
    firing_rate
        Mean firing rate of every unit (Hz).
    comodulation
        Strength of the co-modulation of firing rate and EMG amplitude (see
        :func:`~nwb_synergy.simulate.simulate_spikes`).
    negative_size
        Size of each NegCp relative to the largest weight of its synergy.
    amplitude
        EMG RMS (V) at envelope 1.
    random_state
        Seed: the same seed gives the same session (and the same file contents).
    overwrite
        Replace an existing file at ``path``.

    Returns
    -------
    SimulatedSession
        The planted truth, and the path (or the in-memory NWBFile).

    Raises
    ------
    InputError
        Impossible sizes (more special units than units, too many muscles per synergy, ...).
    ResultsExistError
        ``path`` exists and ``overwrite`` is False.
    """
    from .spikes import simulate_spikes
    from .synergies import simulate_synergies

    if n_inhibitory < 0 or n_facilitatory < 0 or n_inhibitory + n_facilitatory > n_units:
        raise InputError(
            f"n_inhibitory + n_facilitatory ({n_inhibitory} + {n_facilitatory}) must be at most "
            f"n_units ({n_units})",
            obj="n_units",
        )
    if not 0 < effect_size < 1:
        raise InputError(f"must be in (0, 1), got {effect_size}", obj="effect_size")
    if path is not None:
        path = Path(path)
        if path.exists() and not overwrite:
            raise ResultsExistError(
                f"file '{path}': already exists; pass overwrite=True to replace it"
            )
    params = {
        "n_muscles": n_muscles,
        "n_synergies": n_synergies,
        "n_units": n_units,
        "n_inhibitory": n_inhibitory,
        "n_facilitatory": n_facilitatory,
        "n_facilitated_muscles": n_facilitated_muscles,
        "duration": duration,
        "rate": rate,
        "effect_size": effect_size,
        "firing_rate": firing_rate,
        "comodulation": comodulation,
        "negative_size": negative_size,
        "amplitude": amplitude,
        "random_state": random_state,
    }
    rng = np.random.default_rng(random_state)
    env_rate = 100.0
    syn = simulate_synergies(
        n_muscles=n_muscles,
        n_synergies=n_synergies,
        n_times=int(round(duration * env_rate)),
        rate=env_rate,
        negative=True,
        negative_size=negative_size,
        snr_db=np.inf,  # the noise of real envelopes comes from the EMG carrier below
        random_state=rng,
    )
    names = _muscle_names(n_muscles)
    mask = syn.negative_mask
    roles, unit_synergy = _assign_roles(rng, n_units, n_inhibitory, n_facilitatory, mask)
    effects = np.zeros((n_units, n_muscles))
    for u, (role, k) in enumerate(zip(roles, unit_synergy, strict=True)):
        if role == "inhibitory":
            effects[u, mask[:, k]] = -effect_size
        elif role == "facilitatory":
            strongest = np.argsort(-syn.weights[:, k])[:n_facilitated_muscles]
            effects[u, strongest] = effect_size
    drive = syn.activations[:, unit_synergy]  # each unit follows its synergy
    spikes = simulate_spikes(
        rate=rate,
        effects=effects,
        envelope=syn.clean,
        envelope_rate=env_rate,
        drive=drive,
        firing_rate=firing_rate,
        comodulation=comodulation,
        amplitude=amplitude,
        muscle_names=names,
        unit_ids=list(range(n_units)),
        random_state=rng,
    )
    trains = {
        uid: np.round(np.asarray(t) / SPIKE_RESOLUTION) * SPIKE_RESOLUTION
        for uid, t in spikes.spike_times.items()
    }
    session = SimulatedSession(
        path=path,
        nwbfile=None,
        muscle_names=names,
        weights=syn.weights,
        activations=syn.activations,
        negative_mask=mask,
        tonic=syn.tonic,
        envelope_rate=env_rate,
        unit_ids=list(range(n_units)),
        roles=roles,
        unit_synergy=unit_synergy,
        effects=effects,
        spike_times=trains,
        rate=float(rate),
        duration=float(spikes.emg.duration),
        parameters=params,
    )
    nwbfile = _build_nwbfile(session, spikes.emg.to_numpy(), params)
    if path is None:
        session.nwbfile = nwbfile
    else:
        from ..io.save import save_nwb

        save_nwb(nwbfile, path, overwrite=overwrite)
    return session


def _build_nwbfile(session: SimulatedSession, emg_volts: np.ndarray, params: dict):
    from pynwb import NWBFile, TimeSeries
    from pynwb.file import Subject

    from .. import __version__
    from ..io.write import Synergies, write_synergies

    identifier = str(
        uuid.uuid5(
            uuid.NAMESPACE_URL, "nwb-synergy/simulate_session/" + json.dumps(params, sort_keys=True)
        )
    )
    n_inh = session.roles.count("inhibitory")
    n_fac = session.roles.count("facilitatory")
    nwbfile = NWBFile(
        session_description=(
            f"Simulated session (nwb_synergy {__version__}): raw EMG of "
            f"{len(session.muscle_names)} forelimb muscles at {session.rate:g} Hz generated "
            f"from {session.n_synergies} synergies with negative components, and "
            f"{len(session.unit_ids)} units ({n_inh} inhibitory, {n_fac} facilitatory) with "
            "planted post-spike effects. Not a recording."
        ),
        identifier=identifier,
        session_start_time=SESSION_START,
        session_id=f"simulated-seed{params['random_state']}",
        experiment_description=(
            "Ground truth for muscle synergy, negative component and muscle field analyses "
            "(simulate_session)."
        ),
        institution="Simulated data (no institution)",
        source_script=f"nwb_synergy.simulate.simulate_session (nwb_synergy {__version__})",
        source_script_file_name="nwb_synergy/simulate/session.py",
        notes="Simulation parameters (JSON): " + json.dumps(params, sort_keys=True),
        subject=Subject(
            subject_id="sim-monkey-1",
            species="Macaca mulatta",
            sex="M",
            age="P6Y",
            description="Simulated subject (no animal was recorded).",
        ),
    )
    # Readable by neo.io.NWBIO too: float32 microvolts (NWBIO accepts only power-of-1000
    # conversions and ignores offset; int16 at 1 uV would be too coarse for quiet muscles),
    # names as a JSON list in the description (NWBIO takes JSON comments for its own records)
    # and no file keywords (NWBIO 0.14 fails on them).
    nwbfile.add_acquisition(
        TimeSeries(
            name="EMG",
            data=(emg_volts * 1e6).astype(np.float32),
            unit="volts",
            conversion=1e-6,
            starting_time=0.0,
            rate=session.rate,
            description=(
                "Simulated raw EMG (time x muscles) in microvolts; multiply by 'conversion' for "
                "volts.\nmuscles: " + json.dumps(list(session.muscle_names), ensure_ascii=False)
            ),
        )
    )
    nwbfile.units = None
    units_desc = {
        "planted_role": "Planted role: 'inhibitory' (suppresses the NegCp muscles of its "
        "synergy), 'facilitatory' (facilitates the strongest muscles of its synergy) or 'none'.",
        "planted_synergy": "Synergy (0-based column of MuscleSynergyTruth) whose activation "
        "drives the unit's firing rate.",
        "planted_facilitated": "Muscles the unit facilitates (planted PSF), comma-separated.",
        "planted_suppressed": "Muscles the unit suppresses (planted PSpS), comma-separated.",
        "planted_effect_size": "Size of the planted effects, a fraction of the EMG amplitude.",
    }
    for name, desc in units_desc.items():
        nwbfile.add_unit_column(name=name, description=desc)
    nwbfile.units.resolution = SPIKE_RESOLUTION
    for u, uid in enumerate(session.unit_ids):
        eff = session.effects[u]
        nwbfile.add_unit(
            id=uid,
            spike_times=session.spike_times[uid],
            obs_intervals=[[0.0, session.duration]],
            planted_role=session.roles[u],
            planted_synergy=int(session.unit_synergy[u]),
            planted_facilitated=",".join(np.asarray(session.muscle_names)[eff > 0]),
            planted_suppressed=",".join(np.asarray(session.muscle_names)[eff < 0]),
            planted_effect_size=float(np.abs(eff).max()) if np.any(eff) else 0.0,
        )
    truth = Synergies(
        weights=session.weights,
        activations=session.activations,
        method="ground_truth",
        nonnegative=False,
        offset=session.tonic,
        parameters={k: params[k] for k in ("n_synergies", "negative_size", "random_state")},
        muscle_names=session.muscle_names,
    )
    write_synergies(
        nwbfile,
        truth,
        name="Truth",
        rate=session.envelope_rate,
        t_start=0.0,
        description=(
            "Ground truth of the simulation: the synergies that generated the EMG envelopes "
            "(signed; negative weights are the planted NegCps), with the tonic baseline as "
            "'offset'. One row per muscle."
        ),
        negative_components=session.negative_mask,
    )
    return nwbfile
