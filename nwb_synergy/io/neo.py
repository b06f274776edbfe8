"""Adapters between our EMG / spike-train containers and Neo objects.

Built on our own NWB reader, not on ``neo.io.NWBIO``, which reads only what it wrote itself and
simple files: it fails on ElectricalSeries, on Units without ``obs_intervals``, on a
``conversion`` that is not a power of 1000 (an ADC step), on JSON ``comments`` that are not its
own block record and on file ``keywords`` (0.14.6), and ignores ``offset``. The files
nwb_synergy writes avoid all of these, so ``NWBIO(path, mode="r").read_all_blocks()`` opens
them and :func:`read_neo_block` reads its Block back (muscle names from the description). Neo
keeps no Units ids: NWBIO names no trains, and their ids are then their rows. Writing with
NWBIO: once any NWB extension is loaded (ours is, by nwb_synergy), ``write_all_blocks`` writes
the file and then fails its own validation against ``core``; pass ``validate=False``.
Quantities are respected both ways: a signal in mV sampled at kHz with ``t_start`` in ms becomes
volts, Hz and seconds.

Conventions used on the Neo side:

- an EMG is one :class:`neo.AnalogSignal` (time x muscles) with the muscle names in the array
  annotation ``channel_names`` (what Neo's raw IOs use) and in its description, as the last line
  ``muscles: ["A", "B", ...]`` (a JSON list: the form our NWB files use, kept by IOs that drop
  array annotations, NWBIO among them); names are also read from ``muscle_names``,
  ``channel_name`` or ``names``. Provenance is in the annotations ``nwb_series``,
  ``nwb_channels``, ``nwb_electrodes`` (where the samples came from) and ``history`` (JSON text
  of the processing steps, so that every IO that keeps strings keeps it);
- a unit is one :class:`neo.SpikeTrain` named ``"unit <id>"`` (or a name given) and annotated
  ``unit_id=<id>``, from the recording's start to its end (``t_start``, ``t_stop``); the id is
  read back from the annotations ``unit_id``, ``id``, ``unit`` or ``channel_id``, or from the
  digits ending the train's name (``"unit0"``, ``"#3"``), else from its position.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from ..provenance import to_json
from ..signals import EMG, EMGSource

_NAME_KEYS = ("muscle_names", "channel_names", "channel_name", "names")
_ID_KEYS = ("unit_id", "id", "unit", "channel_id")
_TRAILING_INT = re.compile(r"(-?\d+)\s*$")


def _label(obj: Any, kind: str) -> str:
    origin = getattr(obj, "file_origin", None)
    return str(origin) if origin else f"<neo {kind}>"


# --------------------------------------------------------------------------- EMG


def emg_to_neo(emg: EMG):
    """The EMG as a :class:`neo.AnalogSignal`, with its names and provenance.

    Parameters
    ----------
    emg
        EMG with ``data`` (n_times, n_muscles); a lazy array is read whole.

    Returns
    -------
    neo.AnalogSignal
        Shape (n_times, n_muscles), units V (dimensionless for arbitrary units, the unit then in
        the annotation ``unit``), sampling rate in Hz, ``t_start`` in s, ``file_origin`` = the
        source file. Muscle names in the array annotation ``channel_names`` and in the
        description (``muscles: [...]``, JSON); annotations ``history`` (JSON text of
        ``emg.history``) and, when the source is known, ``nwb_series``, ``nwb_channels`` and
        ``nwb_electrodes``.
    """
    import neo
    import quantities as pq

    units = _quantity_unit(emg.unit)
    annotations: dict[str, Any] = {"history": to_json(list(emg.history))}
    source = emg.source
    if source is not None:
        if source.series_names:
            annotations["nwb_series"] = list(source.series_names)
        if len(source.channels) == emg.n_muscles:
            annotations["nwb_channels"] = [int(c) for c in source.channels]
        if source.electrodes is not None:
            annotations["nwb_electrodes"] = [int(e) for e in source.electrodes]
    if units is pq.dimensionless and emg.unit not in ("", "a.u.", "dimensionless"):
        annotations["unit"] = emg.unit
    return neo.AnalogSignal(
        emg.to_numpy(),
        units=units,
        sampling_rate=emg.rate * pq.Hz,
        t_start=emg.t_start * pq.s,
        name="EMG",
        description=f"EMG (time x muscles), {emg.unit}.\nmuscles: "
        + json.dumps(list(emg.muscle_names), ensure_ascii=False),
        file_origin=None if source is None else source.file,
        array_annotations={"channel_names": np.array(emg.muscle_names)},
        **annotations,
    )


def _quantity_unit(unit: str):
    import quantities as pq

    if unit in ("V", "volts", "volt"):
        return pq.V
    try:
        return pq.Quantity(1.0, unit).units
    except (LookupError, ValueError, TypeError, SyntaxError):
        return pq.dimensionless


def _names_from(signal, n: int) -> list[str] | None:
    from .read import _names_from_text

    for source in (signal.array_annotations, signal.annotations):
        for key in _NAME_KEYS:
            values = source.get(key)
            if values is not None and np.ndim(values) == 1 and len(values) == n:
                return [str(v) for v in values]
    return _names_from_text([getattr(signal, "description", None)], n)


def _source_of(signal, obj: str, n: int) -> EMGSource:
    """Where the samples came from: our annotations, else NWBIO's ``nwb_group``, else the name."""
    notes = signal.annotations
    series = notes.get("nwb_series")
    # atleast_1d: NeoMatlabIO gives a one-element list back as its element
    series = [] if series is None else [str(x) for x in np.atleast_1d(series)]
    if not series and notes.get("nwb_group") and getattr(signal, "name", None):
        series = [f"{notes['nwb_group']}/{signal.name}"]  # read by neo.io.NWBIO
    channels = notes.get("nwb_channels")
    electrodes = notes.get("nwb_electrodes")
    return EMGSource(
        file=getattr(signal, "file_origin", None) or None,
        series_names=tuple(series) or (obj,),
        channels=tuple(int(c) for c in np.atleast_1d(channels))
        if channels is not None and np.size(channels) == n
        else tuple(range(n)),
        electrodes=None if electrodes is None else tuple(int(e) for e in np.atleast_1d(electrodes)),
    )


def _history_of(signal, label: str, obj: str) -> list[dict]:
    stored = signal.annotations.get("history")
    if stored is None:
        return []
    if isinstance(stored, str):
        try:
            stored = json.loads(stored)
        except ValueError:
            raise InputError(
                "the 'history' annotation is not JSON text", file=label, obj=obj
            ) from None
    if not isinstance(stored, list) or not all(isinstance(step, dict) for step in stored):
        raise InputError(
            "the 'history' annotation is not a list of steps (dicts)", file=label, obj=obj
        )
    return [dict(step) for step in stored]


def emg_from_neo(signal, muscle_names: Sequence[str] | None = None) -> EMG:
    """An EMG from a :class:`neo.AnalogSignal`, in volts, Hz and seconds.

    Parameters
    ----------
    signal
        AnalogSignal of shape (n_times, n_channels), in any voltage unit (rescaled to V, in
        float64) or in another unit (kept, and named in ``EMG.unit``; dimensionless -> the
        annotation ``unit`` or ``"a.u."``).
    muscle_names
        Names of the channels; default from the array annotation ``channel_names`` (or
        ``muscle_names``, ``channel_name``, ``names``), else from a ``muscles: ...`` line of the
        description (as in our NWB files, so signals read by ``neo.io.NWBIO`` have them), else
        ``muscle_0, ...``.

    Returns
    -------
    EMG
        ``source`` from the annotations ``nwb_series``, ``nwb_channels``, ``nwb_electrodes``
        (NWBIO's ``nwb_group``/name otherwise) and ``file_origin``; ``history`` = the annotation
        ``history`` followed by a ``read_neo`` step.

    Raises
    ------
    InputError
        Not an AnalogSignal (e.g. irregularly sampled), wrong number of names, NaN or infinite
        samples, no samples, a ``history`` annotation that is not a list of steps.
    """
    import neo
    import quantities as pq

    label = _label(signal, "AnalogSignal")
    obj = getattr(signal, "name", None) or "AnalogSignal"
    if not isinstance(signal, neo.AnalogSignal):
        kind = type(signal).__name__
        hint = "; resample it to a regular grid first" if "Irregular" in kind else ""
        raise InputError(f"expected a neo.AnalogSignal, got {kind}{hint}", file=label, obj=obj)
    data = np.asarray(signal.magnitude, dtype=np.float64)
    try:  # scaled in float64: a float32 or integer signal is not rounded to its own dtype
        data = data * float(signal.units.rescale(pq.V).magnitude)
        unit = "V"
    except ValueError:
        dim = signal.dimensionality.string
        unit = str(signal.annotations.get("unit", "a.u.")) if dim == "dimensionless" else dim
    if data.ndim == 1:
        data = data[:, None]
    n_times, n = data.shape
    if n_times == 0:
        raise InputError("the signal has no samples", file=label, obj=obj)
    names = list(muscle_names) if muscle_names is not None else _names_from(signal, n)
    if names is not None and len(names) != n:
        raise InputError(
            f"muscle_names has {len(names)} names for {n} channels", file=label, obj=obj
        )
    bad = ~np.isfinite(data)
    if bad.any():
        i, j = (int(x[0]) for x in np.nonzero(bad))
        who = names[j] if names else f"channel {j}"
        raise InputError(
            f"NaN or infinite samples in '{who}' (first at sample {i})", file=label, obj=obj
        )
    rate = float(signal.sampling_rate.rescale(pq.Hz).magnitude)
    t_start = float(signal.t_start.rescale(pq.s).magnitude)
    history = _history_of(signal, label, obj)
    return EMG(
        data=data,
        rate=rate,
        t_start=t_start,
        muscle_names=names or [],
        unit=unit,
        source=_source_of(signal, obj, n),
        history=[*history, {"step": "read_neo", "signal": obj}],
    )


# --------------------------------------------------------------------------- spike trains


def spike_trains_to_neo(
    spike_trains: Mapping[int, np.ndarray],
    t_stop: float,
    t_start: float | None = None,
    *,
    unit_names: Mapping[int, str] | None = None,
) -> list:
    """One :class:`neo.SpikeTrain` per unit, over the whole recording.

    Parameters
    ----------
    spike_trains
        {unit id: spike times in seconds}.
    t_stop
        End of the recording in seconds (e.g. ``emg.t_start + emg.duration``, or the end of
        the Units' ``obs_intervals``), not the last spike: Neo and Elephant take
        ``t_stop - t_start`` as the time observed (firing rates, surrogates, binning).
    t_start
        Start of the recording in seconds; default the smaller of 0 and the first spike.
    unit_names
        {unit id: name} for some or all units; the others are named ``"unit <id>"``.

    Returns
    -------
    list of neo.SpikeTrain
        In the order of ``spike_trains``, times in s, named as above, annotated ``unit_id``.

    Raises
    ------
    InputError
        Spikes outside ``t_start..t_stop``, ``t_stop`` not after ``t_start`` or not finite,
        names for ids that have no train, two units with one name.
    """
    import neo
    import quantities as pq

    arrays = {int(u): np.asarray(t, dtype=np.float64).ravel() for u, t in spike_trains.items()}
    nonempty = [t for t in arrays.values() if t.size]
    first = min((float(t.min()) for t in nonempty), default=0.0)
    last = max((float(t.max()) for t in nonempty), default=0.0)
    t_start = min(0.0, first) if t_start is None else float(t_start)
    t_stop = float(t_stop)
    if not (np.isfinite(t_stop) and np.isfinite(t_start) and t_stop > t_start):
        raise InputError(
            f"t_stop ({t_stop:g} s) must be finite and after t_start ({t_start:g} s)",
            obj="t_stop",
        )
    if nonempty and (first < t_start or last > t_stop):
        raise InputError(
            f"spike times span {first:g}..{last:g} s, outside t_start..t_stop = "
            f"{t_start:g}..{t_stop:g} s",
            obj="spike_trains",
        )
    given = {int(u): str(v) for u, v in (unit_names or {}).items()}
    unknown = sorted(set(given) - set(arrays))
    if unknown:
        raise InputError(
            f"unit_names names units {unknown} that have no spike train", obj="unit_names"
        )
    names = {uid: given.get(uid, f"unit {uid}") for uid in arrays}
    if len(set(names.values())) < len(names):
        raise InputError(f"two units have the same name: {names}", obj="unit_names")
    return [
        neo.SpikeTrain(
            times * pq.s,
            t_start=t_start * pq.s,
            t_stop=t_stop * pq.s,
            name=names[uid],
            unit_id=uid,
        )
        for uid, times in arrays.items()
    ]


def _unit_id(train, index: int) -> int:
    for key in _ID_KEYS:
        value = train.annotations.get(key)
        if value is None:
            continue
        if isinstance(value, (int, np.integer)):
            return int(value)
        match = _TRAILING_INT.search(str(value))
        if match:
            return int(match.group(1))
    match = _TRAILING_INT.search(str(train.name or ""))
    return int(match.group(1)) if match else index


def spike_trains_from_neo(trains: Iterable) -> dict[int, np.ndarray]:
    """{unit id: spike times in seconds} from Neo SpikeTrains (any time unit).

    Parameters
    ----------
    trains
        Iterable of :class:`neo.SpikeTrain`. The unit id comes from the annotations
        ``unit_id``, ``id``, ``unit`` or ``channel_id`` (digits at the end of a string are
        used, so ``"#3"`` -> 3), else from the digits ending the name, else the position.

    Returns
    -------
    dict
        {unit id (int): float64 array of spike times in seconds, sorted}.

    Raises
    ------
    InputError
        Two trains with the same id, NaN or unsorted spike times.
    """
    import quantities as pq

    out: dict[int, np.ndarray] = {}
    for k, train in enumerate(trains):
        label = _label(train, "SpikeTrain")
        uid = _unit_id(train, k)
        obj = str(train.name or f"spike train {k}")
        if uid in out:
            raise InputError(f"two spike trains have unit id {uid}", file=label, obj=obj)
        times = np.asarray(train.times.rescale(pq.s).magnitude, dtype=np.float64).ravel()
        if not np.all(np.isfinite(times)):
            raise InputError(f"unit {uid} has NaN or infinite spike times", file=label, obj=obj)
        if np.any(np.diff(times) < 0):
            raise InputError(f"spike times of unit {uid} are not sorted", file=label, obj=obj)
        out[uid] = times
    return out


# --------------------------------------------------------------------------- blocks


def _pick_signal(signals: list, emg_name: str | None, label: str, where: str):
    if not signals:
        raise InputError(f"no AnalogSignal in {where}", file=label, obj=where)

    def describe(s) -> str:
        return f"'{s.name}' ({s.shape[1] if s.ndim > 1 else 1} channels, {s.sampling_rate})"

    if emg_name is not None:
        chosen = [k for k, s in enumerate(signals) if s.name == emg_name]
        problem = f"no AnalogSignal named {emg_name!r}"
    elif len(signals) == 1:
        return 0
    else:
        chosen = [k for k, s in enumerate(signals) if "emg" in str(s.name or "").lower()]
        problem = "ambiguous EMG: several AnalogSignals and none or several named like EMG"
    if len(chosen) == 1:
        return chosen[0]
    listing = ", ".join(describe(signals[k]) for k in (chosen or range(len(signals))))
    raise InputError(f"{problem}: {listing}; pass emg_name=", file=label, obj=where)


def read_neo_block(
    block,
    emg_name: str | None = None,
    *,
    segment: int | None = None,
    muscle_names: Sequence[str] | None = None,
) -> tuple[EMG, dict[int, np.ndarray]]:
    """EMG and spike trains from a :class:`neo.Block` read by any Neo IO.

    Parameters
    ----------
    block
        The Block. Its EMG is one AnalogSignal per segment: the only one, the one named
        ``emg_name``, or the only one whose name contains "emg".
    emg_name
        Name of the EMG AnalogSignal when a segment holds several.
    segment
        Read only this segment. By default all segments are used, joined end to end when they
        are trivially contiguous (same signal, channels, units and rate, each segment starting
        one sample after the previous one ends); otherwise an InputError asks for ``segment=``.
    muscle_names
        Names of the channels (default from the signal's array annotations).

    Returns
    -------
    emg : EMG
        In volts, Hz and seconds.
    spike_trains : dict
        {unit id: spike times in seconds}, merged over the segments used; empty when the block
        holds no SpikeTrain.
    """
    import neo
    import quantities as pq

    label = _label(block, "Block")
    if not isinstance(block, neo.Block):
        raise InputError(
            f"expected a neo.Block, got {type(block).__name__}", file=label, obj="block"
        )
    segments = list(block.segments)
    if not segments:
        raise InputError("the Block has no segments", file=label, obj="block")
    if segment is not None:
        if not -len(segments) <= segment < len(segments):
            raise InputError(
                f"segment {segment} does not exist ({len(segments)} segments)",
                file=label,
                obj="segment",
            )
        segments = [segments[segment]]
        first_where = f"segment {segment % len(block.segments)}"
    else:
        first_where = "segment 0"
    k = _pick_signal(list(segments[0].analogsignals), emg_name, label, first_where)
    first = segments[0].analogsignals[k]
    name = first.name
    pieces = [first]
    for s_index, seg in enumerate(segments[1:], start=1):
        where = f"segment {s_index}"
        signals = list(seg.analogsignals)
        same = [s for s in signals if s.name == name] if name else signals[k : k + 1]
        if len(same) != 1:
            raise InputError(
                f"{where} has no single AnalogSignal {name!r} to join; pass segment=",
                file=label,
                obj=where,
            )
        sig, prev = same[0], pieces[-1]
        rate = float(prev.sampling_rate.rescale(pq.Hz).magnitude)
        gap = float((sig.t_start - prev.t_stop).rescale(pq.s).magnitude)
        if (
            sig.shape[1:] != prev.shape[1:]
            or not np.isclose(float(sig.sampling_rate.rescale(pq.Hz).magnitude), rate, rtol=1e-9)
            or sig.units.dimensionality != prev.units.dimensionality
            or abs(gap) > 0.5 / rate
        ):
            raise InputError(
                f"segments are not contiguous: {where} starts at "
                f"{float(sig.t_start.rescale(pq.s).magnitude):g} s, {gap:+g} s after the end "
                "of the previous one (or differs in channels, units or rate); pass segment=",
                file=label,
                obj=where,
            )
        pieces.append(sig)
    emg = emg_from_neo(first, muscle_names=muscle_names)
    if len(pieces) > 1:
        scale = float(first.units.rescale(pq.V).magnitude) if emg.unit == "V" else 1.0
        joined = np.concatenate([np.asarray(p.magnitude, dtype=np.float64) for p in pieces])
        if joined.ndim == 1:
            joined = joined[:, None]
        joined = joined * scale
        if not np.all(np.isfinite(joined)):
            raise InputError("NaN or infinite samples in the joined EMG", file=label, obj=name)
        emg = emg.replace(data=joined)
    emg.source = EMGSource(
        file=getattr(block, "file_origin", None) or emg.source.file,
        series_names=emg.source.series_names,
        channels=emg.source.channels,
    )
    trains: dict[int, list[np.ndarray]] = {}
    for seg in segments:
        for uid, times in spike_trains_from_neo(seg.spiketrains).items():
            trains.setdefault(uid, []).append(times)
    spikes = {uid: np.concatenate(parts) for uid, parts in trains.items()}
    for uid, times in spikes.items():
        if np.any(np.diff(times) < 0):
            raise InputError(
                f"spike times of unit {uid} are not sorted across segments", file=label, obj="block"
            )
    return emg, spikes
