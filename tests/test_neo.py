"""Neo adapters: round trips through Neo objects and through real Neo IOs."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import neo
import numpy as np
import pytest
import quantities as pq
from neo.io import NWBIO, ExampleIO, NeoMatlabIO, PickleIO

from nwb_synergy import analyze_session
from nwb_synergy.errors import InputError
from nwb_synergy.io.neo import (
    emg_from_neo,
    emg_to_neo,
    read_neo_block,
    spike_trains_from_neo,
    spike_trains_to_neo,
)
from nwb_synergy.io.read import read_emg, read_spike_trains
from nwb_synergy.signals import EMG, EMGSource
from nwb_synergy.simulate import simulate_session
from nwb_synergy.testing.mock_files import write_mock_file


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    path = tmp_path_factory.mktemp("neo") / "electrical.nwb"
    truth = write_mock_file(path, "electrical", where="ecephys/EMG", n_times=2000)
    return path, truth


def _block(emg: EMG, spikes: dict, file_origin: str | None = None) -> neo.Block:
    block = neo.Block(name="session", file_origin=file_origin)
    seg = neo.Segment(name="trial")
    block.segments.append(seg)
    seg.analogsignals.append(emg_to_neo(emg))
    seg.spiketrains.extend(spike_trains_to_neo(spikes, t_stop=emg.t_start + emg.duration))
    return block


def test_nwb_to_neo_and_back_is_exact(session):
    path, truth = session
    emg = read_emg(path)
    signal = emg_to_neo(emg)
    assert signal.units == pq.V and signal.shape == truth.volts.shape
    assert float(signal.sampling_rate.rescale("Hz")) == truth.rate
    assert float(signal.t_start.rescale("s")) == truth.t_start
    assert list(signal.array_annotations["channel_names"]) == truth.muscle_names
    back = emg_from_neo(signal)
    np.testing.assert_array_equal(back.data, emg.data)
    assert (back.rate, back.t_start, back.muscle_names, back.unit) == (
        emg.rate,
        emg.t_start,
        emg.muscle_names,
        "V",
    )
    assert back.source.series_names == ("processing/ecephys/EMG/EMG",)
    assert back.source.file == str(path)

    spikes = read_spike_trains(path)
    trains = spike_trains_to_neo(spikes, t_stop=emg.t_start + emg.duration)
    assert [t.annotations["unit_id"] for t in trains] == [3, 7, 12]
    assert [t.name for t in trains] == ["unit 3", "unit 7", "unit 12"]
    again = spike_trains_from_neo(trains)
    assert list(again) == list(spikes)
    for uid in spikes:
        np.testing.assert_array_equal(again[uid], spikes[uid])


def test_quantities_are_respected():
    rng = np.random.default_rng(1)
    millivolts = rng.standard_normal((300, 3))
    signal = neo.AnalogSignal(
        millivolts,
        units="mV",
        sampling_rate=2.5 * pq.kHz,
        t_start=1250.0 * pq.ms,
        array_annotations={"channel_names": np.array(["TA", "SOL", "GM"])},
    )
    emg = emg_from_neo(signal)
    np.testing.assert_allclose(emg.data, millivolts * 1e-3, rtol=1e-15)
    assert emg.rate == pytest.approx(2500.0, rel=1e-15)
    assert emg.t_start == pytest.approx(1.25, rel=1e-15)
    assert emg.muscle_names == ["TA", "SOL", "GM"]
    assert emg_from_neo(signal, muscle_names=["a", "b", "c"]).muscle_names == ["a", "b", "c"]

    train = neo.SpikeTrain([5.0, 7.5, 9.0] * pq.ms, t_stop=20 * pq.ms, name="unit 4")
    np.testing.assert_allclose(spike_trains_from_neo([train])[4], [0.005, 0.0075, 0.009])

    # an envelope in arbitrary units keeps its unit instead of pretending to be volts
    envelope = neo.AnalogSignal(np.ones((10, 2)), units=pq.dimensionless, sampling_rate=100 * pq.Hz)
    emg = emg_from_neo(envelope)
    assert emg.unit == "a.u."
    assert emg_to_neo(emg).units == pq.dimensionless


def test_block_through_pickle_io(session, tmp_path):
    path, truth = session
    emg = read_emg(path)
    spikes = read_spike_trains(path)
    file = tmp_path / "block.pkl"
    PickleIO(str(file)).write_block(_block(emg, spikes))
    block = PickleIO(str(file)).read_block()
    got_emg, got_spikes = read_neo_block(block)
    np.testing.assert_array_equal(got_emg.data, emg.data)
    np.testing.assert_allclose(got_emg.data, truth.volts, rtol=1e-12)
    assert (got_emg.rate, got_emg.t_start) == (truth.rate, truth.t_start)
    assert got_emg.muscle_names == truth.muscle_names
    assert list(got_spikes) == [3, 7, 12]
    for uid, times in truth.spike_times.items():
        np.testing.assert_array_equal(got_spikes[uid], times)


def test_block_through_matlab_io_keeps_names_in_the_description(session, tmp_path):
    path, truth = session
    emg = read_emg(path)
    emg_mv = emg.replace(data=emg.data * 1e3, unit="mV")  # stored in mV in the .mat file
    file = tmp_path / "block.mat"
    NeoMatlabIO(str(file)).write_block(_block(emg_mv, truth.spike_times))
    block = NeoMatlabIO(str(file)).read_block()
    signal = block.segments[0].analogsignals[0]
    assert signal.units == pq.mV
    assert len(signal.array_annotations) == 0  # the .mat file drops the channel names...
    got_emg, got_spikes = read_neo_block(block)
    assert got_emg.muscle_names == truth.muscle_names  # ...the description keeps them
    assert got_emg.source.series_names == ("processing/ecephys/EMG/EMG",)
    assert got_emg.history[:-1] == emg.history
    np.testing.assert_allclose(got_emg.data, truth.volts, rtol=1e-12)
    assert got_emg.rate == pytest.approx(truth.rate, rel=1e-12)
    assert got_emg.t_start == pytest.approx(truth.t_start, rel=1e-12)
    for uid, times in truth.spike_times.items():
        np.testing.assert_allclose(got_spikes[uid], times, rtol=1e-15)


def test_contiguous_segments_are_joined_and_gaps_refused():
    rng = np.random.default_rng(2)
    data = rng.standard_normal((1000, 2))
    rate = 500.0
    block = neo.Block()
    for k in range(2):
        seg = neo.Segment()
        seg.analogsignals.append(
            neo.AnalogSignal(
                data[500 * k : 500 * (k + 1)] * 1e3,
                units="uV",
                sampling_rate=rate * pq.Hz,
                t_start=(2.0 + k) * pq.s,
                name="EMG",
            )
        )
        seg.spiketrains.append(
            neo.SpikeTrain(
                [2.1 + k, 2.5 + k] * pq.s, t_start=(2 + k) * pq.s, t_stop=(3 + k) * pq.s, unit_id=5
            )
        )
        block.segments.append(seg)
    emg, spikes = read_neo_block(block)
    np.testing.assert_allclose(emg.data, data * 1e-3, rtol=1e-14)
    assert (emg.rate, emg.t_start, emg.n_times) == (rate, 2.0, 1000)
    np.testing.assert_allclose(spikes[5], [2.1, 2.5, 3.1, 3.5])
    emg1, spikes1 = read_neo_block(block, segment=1)
    assert (emg1.t_start, emg1.n_times) == (3.0, 500)
    np.testing.assert_allclose(spikes1[5], [3.1, 3.5])


def test_block_from_example_io_with_gaps_and_several_signals():
    block = ExampleIO("fake.fake").read_block()  # Neo's own generator: 2 segments with a gap
    with pytest.raises(InputError, match="ambiguous EMG") as info:
        read_neo_block(block)
    assert "'stream 0' (8 channels" in str(info.value) and "segment 0" in str(info.value)
    with pytest.raises(InputError, match="segments are not contiguous") as info:
        read_neo_block(block, "stream 0")
    assert "object 'segment 1'" in str(info.value) and "pass segment=" in str(info.value)
    emg, spikes = read_neo_block(block, "stream 0", segment=1)
    signal = block.segments[1].analogsignals[0]
    np.testing.assert_allclose(emg.data, signal.magnitude * 1e-6, rtol=1e-12)  # uV -> V
    assert (emg.rate, emg.t_start, emg.n_muscles) == (10000.0, 15.0, 8)
    assert emg.muscle_names == [str(c) for c in signal.array_annotations["channel_names"]]
    assert sorted(spikes) == list(range(len(block.segments[1].spiketrains)))  # from "#0", "#1", ...
    np.testing.assert_array_equal(spikes[0], block.segments[1].spiketrains[0].times.magnitude)


def test_bad_neo_input():
    irregular = neo.IrregularlySampledSignal(
        [0.0, 0.1, 0.3] * pq.s, [1.0, 2.0, 3.0] * pq.mV, name="EMG"
    )
    with pytest.raises(InputError, match="IrregularlySampledSignal; resample") as info:
        emg_from_neo(irregular)
    assert "object 'EMG'" in str(info.value)
    nan = neo.AnalogSignal(
        np.array([[1.0], [np.nan]]),
        units="V",
        sampling_rate=1 * pq.kHz,
        name="raw",
        file_origin="rec.smr",
    )
    with pytest.raises(
        InputError, match="NaN or infinite samples in 'channel 0' \\(first at sample 1\\)"
    ) as info:
        emg_from_neo(nan)
    assert "file 'rec.smr'" in str(info.value) and "object 'raw'" in str(info.value)
    trains = [neo.SpikeTrain([1.0, 2.0] * pq.s, t_stop=3 * pq.s, unit_id=1)] * 2
    with pytest.raises(InputError, match="two spike trains have unit id 1"):
        spike_trains_from_neo(trains)
    with pytest.raises(InputError, match="outside t_start..t_stop"):
        spike_trains_to_neo({1: np.array([0.5, 4.0])}, t_stop=3.0)
    with pytest.raises(InputError, match="no AnalogSignal in segment 0"):
        read_neo_block(_empty_block())


def _empty_block() -> neo.Block:
    block = neo.Block(file_origin="empty.nix")
    block.segments.append(neo.Segment())
    return block


# --------------------------------------------------------------------------- neo.io.NWBIO

N_MUSCLES, RATE, DURATION = 6, 1000.0, 4.0


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    """A small simulated session and its NMF results file, both written by nwb_synergy."""
    folder = tmp_path_factory.mktemp("nwbio")
    session = simulate_session(
        folder / "session.nwb",
        n_muscles=N_MUSCLES,
        n_synergies=2,
        n_units=3,
        n_inhibitory=1,
        n_facilitatory=1,
        duration=DURATION,
        rate=RATE,
    )
    results = folder / "results.nwb"
    analyze_session(
        session.path, results, methods=("nmf",), sta=False, progress=False, copy_source=True
    )
    return session, results


def _read_with_nwbio(path) -> list:
    io = NWBIO(str(path), mode="r")
    try:
        return io.read_all_blocks()  # not lazy: every sample is read before the file closes
    finally:
        io.close()


def _volts(signal) -> np.ndarray:
    """Samples of a Neo signal in volts, scaled in float64 (Quantity.rescale keeps float32)."""
    return signal.magnitude.astype(np.float64) * float(signal.units.rescale(pq.V).magnitude)


@pytest.mark.parametrize("which", ["session", "results"])
def test_nwbio_reads_our_files_with_our_numbers(simulated, which):
    session, results = simulated
    path = session.path if which == "session" else results
    blocks = _read_with_nwbio(path)
    signals = [sig for block in blocks for seg in block.segments for sig in seg.analogsignals]
    assert [sig.name for sig in signals] == ["EMG"]
    (signal,) = signals
    ours = read_emg(path)
    assert signal.shape == ours.data.shape == (int(DURATION * RATE), N_MUSCLES)
    assert float(signal.sampling_rate.rescale("Hz").magnitude) == RATE
    assert float(signal.t_start.rescale("s").magnitude) == 0.0
    assert np.std(ours.data) > 1e-6  # real EMG, not zeros
    np.testing.assert_allclose(_volts(signal), ours.data, rtol=1e-9, atol=0)
    # our Neo reader takes the muscle names from the description NWBIO passes on
    emg, spikes = read_neo_block(blocks[0])
    assert emg.muscle_names == session.muscle_names == ours.muscle_names
    assert emg.source.series_names == ("acquisition/EMG",) and emg.source.file == str(path)
    np.testing.assert_allclose(emg.data, ours.data, rtol=1e-9, atol=0)
    # spike trains: all units, over the whole recording (obs_intervals), in table order
    truth = read_spike_trains(path)
    trains = blocks[0].segments[0].spiketrains
    assert len(trains) == len(truth) == 3
    for train, times in zip(trains, truth.values(), strict=True):
        np.testing.assert_array_equal(train.times.rescale("s").magnitude, times)
        assert float(train.t_stop.rescale("s").magnitude) == session.duration == DURATION
    assert list(spikes) == list(truth) == [0, 1, 2]  # NWBIO keeps rows, not ids: here 0..n-1


def _nwbfile_with(series):
    from pynwb import NWBFile

    nwbfile = NWBFile(
        session_description="names test",
        identifier="names-test",
        session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc),
    )
    nwbfile.add_acquisition(series)
    return nwbfile


def test_names_with_commas_from_the_description_list_and_from_old_json_comments(tmp_path):
    from pynwb import NWBHDF5IO, TimeSeries

    names = ["FDP, deep head", "ECR; long", "EDC"]  # separators inside names
    volts = np.random.default_rng(4).standard_normal((400, 3)) * 2e-5
    # the layout we write now: float32 microvolts, names as a JSON list in the description
    new = TimeSeries(
        name="EMG",
        data=(volts * 1e6).astype(np.float32),
        unit="volts",
        conversion=1e-6,
        rate=RATE,
        starting_time=0.25,
        description="Raw EMG in microvolts.\nmuscles: " + json.dumps(names),
    )
    # the layout of earlier files: int16 counts, JSON in comments, ambiguous text in description
    step = float(np.abs(volts).max()) / 32000.0  # volts per count
    old = TimeSeries(
        name="EMG",
        data=np.round(volts / step).astype(np.int16),
        unit="volts",
        conversion=step,
        rate=RATE,
        starting_time=0.25,
        description="Raw EMG, int16 counts.\nmuscles: " + ", ".join(names),
        comments=json.dumps({"muscle_names": names}),
    )
    peak = float(np.abs(volts).max())
    for label, series, atol in (("new", new, 6e-8 * peak), ("old", old, 0.5 * step)):
        path = tmp_path / f"{label}.nwb"
        with NWBHDF5IO(str(path), "w") as io:
            io.write(_nwbfile_with(series))
        emg = read_emg(path)
        assert emg.muscle_names == names, label
        np.testing.assert_allclose(emg.data, volts, rtol=0, atol=atol * (1 + 1e-9))
    # only the new layout opens in Neo, with the names
    (block,) = _read_with_nwbio(tmp_path / "new.nwb")
    emg, _ = read_neo_block(block)
    assert emg.muscle_names == names and emg.t_start == 0.25
    np.testing.assert_allclose(emg.data, read_emg(tmp_path / "new.nwb").data, rtol=1e-9, atol=0)


@pytest.mark.realdata
def test_nwbio_reads_the_converted_walking_trial(walking_dir, tmp_path):
    from nwb_synergy.convert import convert_walking

    out = convert_walking(walking_dir, tmp_path / "walking.nwb")
    (block,) = _read_with_nwbio(out)
    (signal,) = block.segments[0].analogsignals
    ours = read_emg(out)
    assert signal.shape == ours.data.shape == (7618, 13)
    assert float(signal.sampling_rate.rescale("Hz").magnitude) == pytest.approx(1000.0, rel=1e-12)
    np.testing.assert_allclose(_volts(signal), ours.data, rtol=1e-9, atol=0)
    emg, spikes = read_neo_block(block)
    header = (walking_dir / "ID0012_TW_01_raw_emg.csv").read_text().split("\n")[0].split(",")
    assert emg.muscle_names == header[1:] and spikes == {}
    first = np.loadtxt(
        walking_dir / "ID0012_TW_01_raw_emg.csv", delimiter=",", skiprows=1, max_rows=200
    )[:, 1:]
    np.testing.assert_allclose(emg.data[:200] * 1e6, first, rtol=1e-6)  # float32 keeps 6 digits


# --------------------------------------------------------------------------- annotations


def test_emg_round_trip_keeps_names_source_history_and_unit(tmp_path):
    rng = np.random.default_rng(3)
    emg = EMG(
        data=rng.standard_normal((200, 3)),
        rate=500.0,
        t_start=1.5,
        muscle_names=["FDS", "FDP, deep", "ECU"],
        unit="z-score",
        source=EMGSource(
            file="rec.nwb",
            series_names=("acquisition/ElectricalSeries",),
            channels=(2, 0, 1),
            electrodes=(4, 5, 6),
        ),
        history=[
            {"step": "read_nwb", "file": "rec.nwb", "series": ["acquisition/ElectricalSeries"]},
            {"step": "normalize", "kind": "std", "scale": [1.0, 2.5, 0.5]},
        ],
    )
    signal = emg_to_neo(emg)
    assert signal.units == pq.dimensionless and signal.annotations["unit"] == "z-score"
    file = tmp_path / "emg.pkl"
    block = neo.Block()
    block.segments.append(neo.Segment())
    block.segments[0].analogsignals.append(signal)
    PickleIO(str(file)).write_block(block)
    again = PickleIO(str(file)).read_block().segments[0].analogsignals[0]
    for back in (emg_from_neo(signal), emg_from_neo(again)):
        np.testing.assert_array_equal(back.data, emg.data)
        assert (back.rate, back.t_start, back.unit) == (500.0, 1.5, "z-score")
        assert back.muscle_names == emg.muscle_names
        assert back.source == emg.source  # file, series, channels and electrodes
        assert back.history == [*emg.history, {"step": "read_neo", "signal": "EMG"}]
    signal.annotations["history"] = "not json"
    with pytest.raises(InputError, match="'history' annotation is not JSON"):
        emg_from_neo(signal)


def test_spike_trains_keep_the_recording_end_ids_and_names(tmp_path):
    from elephant.statistics import mean_firing_rate

    spikes = {3: [0.2, 0.9], 7: [1.1], 12: []}
    trains = spike_trains_to_neo(spikes, t_stop=5.0, unit_names={7: "MN 7 (FDS)"})
    assert [float(t.t_stop.rescale("s").magnitude) for t in trains] == [5.0, 5.0, 5.0]
    assert [float(t.t_start.rescale("s").magnitude) for t in trains] == [0.0, 0.0, 0.0]
    assert [t.name for t in trains] == ["unit 3", "MN 7 (FDS)", "unit 12"]
    # Elephant divides by t_stop - t_start: 2 spikes in the 5 s recording, not in 0.9 s
    rate = mean_firing_rate(trains[0])
    assert float(rate.rescale("Hz").magnitude) == pytest.approx(0.4, rel=1e-12)
    for io_class, suffix in ((PickleIO, "pkl"), (NeoMatlabIO, "mat")):
        file = tmp_path / f"trains.{suffix}"
        block = neo.Block()
        block.segments.append(neo.Segment())
        block.segments[0].spiketrains.extend(trains)
        io_class(str(file)).write_block(block)
        back = io_class(str(file)).read_block().segments[0].spiketrains
        assert [t.name for t in back] == ["unit 3", "MN 7 (FDS)", "unit 12"], suffix
        assert [float(t.t_stop.rescale("s").magnitude) for t in back] == [5.0] * 3, suffix
        got = spike_trains_from_neo(back)
        assert list(got) == [3, 7, 12], suffix  # from the unit_id annotation, not the name
        for uid, times in spikes.items():
            np.testing.assert_array_equal(got[uid], times)
    # NWBIO writes name and t_stop (obs_intervals) but no annotations; write_all_blocks fails
    # its own validation once any NWB extension is loaded (ours is), so validate=False
    file = tmp_path / "trains.nwb"
    writer = NWBIO(
        str(file),
        mode="w",
        session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc),
        identifier="trains",
        session_description="spike trains written by neo",
    )
    block = neo.Block(name="block")
    block.segments.append(neo.Segment(name="segment"))
    block.segments[0].spiketrains.extend(trains)
    writer.write_all_blocks([block], validate=False)
    (read_back,) = _read_with_nwbio(file)
    back = read_back.segments[0].spiketrains
    assert [t.name for t in back] == ["unit 3", "MN 7 (FDS)", "unit 12"]
    assert [float(t.t_stop.rescale("s").magnitude) for t in back] == [5.0] * 3
    got = spike_trains_from_neo(back)
    assert list(got) == [3, 1, 12]  # ids from the names "unit <id>"; the free name: its row
    np.testing.assert_array_equal(got[1], spikes[7])
    with pytest.raises(InputError, match="must be finite and after t_start"):
        spike_trains_to_neo(spikes, t_stop=0.0, t_start=0.0)
    with pytest.raises(InputError, match=r"names units \[99\] that have no spike train"):
        spike_trains_to_neo(spikes, t_stop=5.0, unit_names={99: "x"})
    with pytest.raises(InputError, match="two units have the same name"):
        spike_trains_to_neo(spikes, t_stop=5.0, unit_names={3: "unit 7", 7: "unit 7"})
