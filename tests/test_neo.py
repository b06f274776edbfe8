"""Neo adapters: round trips through Neo objects and through real Neo IOs."""

from __future__ import annotations

import neo
import numpy as np
import pytest
import quantities as pq
from neo.io import ExampleIO, NeoMatlabIO, PickleIO

from nwb_synergy.errors import InputError
from nwb_synergy.io.neo import (
    emg_from_neo,
    emg_to_neo,
    read_neo_block,
    spike_trains_from_neo,
    spike_trains_to_neo,
)
from nwb_synergy.io.read import read_emg, read_spike_trains
from nwb_synergy.signals import EMG
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
    trains = spike_trains_to_neo(spikes)
    assert [t.annotations["unit_id"] for t in trains] == [3, 7, 12]
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


def test_block_through_matlab_io_loses_names_but_keeps_numbers(session, tmp_path):
    path, truth = session
    emg = read_emg(path)
    emg_mv = emg.replace(data=emg.data * 1e3, unit="mV")  # stored in mV in the .mat file
    file = tmp_path / "block.mat"
    NeoMatlabIO(str(file)).write_block(_block(emg_mv, truth.spike_times))
    block = NeoMatlabIO(str(file)).read_block()
    assert block.segments[0].analogsignals[0].units == pq.mV
    got_emg, got_spikes = read_neo_block(block, muscle_names=truth.muscle_names)
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
