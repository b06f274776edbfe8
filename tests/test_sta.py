"""Spike-triggered averages: equality with elephant, counts, baselines, bounded-memory paths."""

from __future__ import annotations

import warnings

import h5py
import neo
import numpy as np
import pytest
import quantities as pq
from elephant.sta import spike_triggered_average as elephant_sta

from nwb_synergy import EMG, InputError
from nwb_synergy.sta import (
    LazySweeps,
    spike_triggered_average,
    spike_triggered_averages,
)


def _elephant(x, rate_q, t0_q, spikes_q, t_stop_q, window_q):
    signal = neo.AnalogSignal(x, units="mV", sampling_rate=rate_q, t_start=t0_q)
    train = neo.SpikeTrain(spikes_q, t_start=t0_q.rescale(spikes_q.units), t_stop=t_stop_q)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return elephant_sta(signal, train, window_q)


def _edge_spikes(rng, t0, t_stop, n, window):
    """Random spikes plus spikes at and around both edges, some exactly at window reach."""
    w0, w1 = window
    edges = [t0, t0 + 1e-4, t0 - w0, t0 - w0 - 1e-4, t_stop, t_stop - w1, t_stop - w1 + 1e-4]
    edges = [e for e in edges if t0 <= e <= t_stop]
    return np.sort(np.concatenate([rng.uniform(t0, t_stop, n), edges]))


CONFIGS = [
    # rate (Hz), window (s), t_start (s), spike unit, rate unit, window unit
    (5000.0, (-0.03, 0.05), 0.0, "s", "Hz", "s"),
    (1000.0, (-0.0123, 0.0417), 2.5, "ms", "kHz", "ms"),
    (2000.0, (-0.01, 0.02), 1.0, "ms", "Hz", "s"),
    (4096.0, (-0.0301, 0.0503), 0.3, "s", "kHz", "ms"),
    (3000.0, (0.002, 0.0111), 7.0, "ms", "kHz", "s"),
]


@pytest.mark.parametrize("rate, window, t0, st_unit, rate_unit, win_unit", CONFIGS)
def test_equals_elephant_on_neo_inputs(rate, window, t0, st_unit, rate_unit, win_unit):
    rng = np.random.default_rng(int(rate))
    n_times = int(4 * rate)
    x = np.abs(rng.standard_normal((n_times, 3)))
    t_stop = t0 + n_times / rate
    spikes = _edge_spikes(rng, t0, t_stop, 150, window)
    rate_q = (rate * pq.Hz).rescale(rate_unit)
    t0_q = (t0 * pq.s).rescale("ms")
    spikes_q = (spikes * pq.s).rescale(st_unit)
    t_stop_q = (t_stop * pq.s).rescale(st_unit)
    window_q = tuple((w * pq.s).rescale(win_unit) for w in window)
    ref = _elephant(x, rate_q, t0_q, spikes_q, t_stop_q, window_q)

    signal = neo.AnalogSignal(x, units="mV", sampling_rate=rate_q, t_start=t0_q)
    train = neo.SpikeTrain(spikes_q, t_start=t0_q.rescale(st_unit), t_stop=t_stop_q)
    ours = spike_triggered_average(signal, train, window=window_q)

    assert ours.mean.shape == ref.shape
    np.testing.assert_allclose(ours.mean, ref.magnitude, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.lags, ref.times.rescale("s").magnitude, rtol=0, atol=1e-12)
    assert ours.n_used == ref.annotations["used_spikes"][0]
    assert ours.n_unused == ref.annotations["unused_spikes"][0]
    assert ours.n_unused >= 3  # the edge spikes really were excluded
    assert ours.rate == pytest.approx(rate)
    assert ours.window == pytest.approx(window)


@pytest.mark.parametrize(
    "rate, window, t0", [(5000.0, (-0.03, 0.05), 0.0), (997.0, (-0.011, 0.029), 1.7)]
)
def test_equals_elephant_on_plain_arrays(rate, window, t0):
    rng = np.random.default_rng(7)
    n_times = int(3 * rate)
    x = rng.gamma(2.0, size=(n_times, 4))
    t_stop = t0 + n_times / rate
    spikes = _edge_spikes(rng, t0, t_stop, 120, window)
    ref = _elephant(
        x, rate * pq.Hz, t0 * pq.s, spikes * pq.s, t_stop * pq.s, tuple(w * pq.s for w in window)
    )
    ours = spike_triggered_average(x, spikes, rate=rate, window=window, t_start=t0)
    np.testing.assert_allclose(ours.mean, ref.magnitude, rtol=0, atol=1e-9)
    assert (ours.n_used, ours.n_unused) == (
        ref.annotations["used_spikes"][0],
        ref.annotations["unused_spikes"][0],
    )
    # the sweeps are the windows elephant averaged, in time order
    assert ours.sweeps.shape == (ours.n_used, ours.n_lags, 4)
    np.testing.assert_allclose(ours.sweeps.mean(axis=0), ref.magnitude, atol=1e-9)
    first = ours.window_starts[0]
    np.testing.assert_array_equal(ours.sweeps[0], x[first : first + ours.n_lags])
    assert np.all(np.diff(ours.spike_times) >= 0)


def test_emg_container_and_quantity_units_agree():
    rng = np.random.default_rng(3)
    x = np.abs(rng.standard_normal((10000, 2)))
    spikes = np.sort(rng.uniform(0.1, 1.9, 200))
    emg = EMG(x, rate=5000.0, t_start=0.05, muscle_names=["biceps", "triceps"])
    a = spike_triggered_average(emg, spikes + 0.05, window=(-0.01, 0.02))
    b = spike_triggered_average(
        x,
        ((spikes + 0.05) * 1000) * pq.ms,
        rate=5 * pq.kHz,
        t_start=0.05,
        window=(-10 * pq.ms, 20 * pq.ms),
    )
    # same spikes given in ms, a rate in kHz and a window in ms: same samples
    np.testing.assert_array_equal(a.window_starts, b.window_starts)
    np.testing.assert_allclose(a.mean, b.mean, atol=1e-12)
    assert a.muscle_names == ["biceps", "triceps"]
    assert a.n_used == 200 and a.n_lags == 150


def test_many_units_equal_single_calls():
    rng = np.random.default_rng(4)
    x = np.abs(rng.standard_normal((20000, 3)))
    trains = {f"u{i}": np.sort(rng.uniform(0, 4, 300)) for i in range(3)}
    many = spike_triggered_average(x, trains, rate=5000.0, baseline="isa")
    assert set(many) == set(trains)
    for unit, spikes in trains.items():
        one = spike_triggered_average(x, spikes, rate=5000.0, baseline="isa")
        np.testing.assert_allclose(many[unit].mean, one.mean, atol=1e-12)
        np.testing.assert_allclose(many[unit].isa, one.isa, atol=1e-12)
        assert many[unit].n_unused == one.n_unused
    same = spike_triggered_averages(x, trains, rate=5000.0)
    np.testing.assert_allclose(same["u1"].mean, many["u1"].mean, atol=1e-12)


def test_isa_equals_average_of_shifted_elephant_stas():
    """ISA (Davidson 2007): the average of STAs triggered by copies of the spikes shifted by
    each increment. Checked against elephant on the explicitly shifted trains."""
    rate, window = 1000.0, (-0.01, 0.02)
    rng = np.random.default_rng(5)
    n_times = 3000
    x = rng.gamma(3.0, size=(n_times, 2))
    spikes = np.sort(rng.uniform(0.5, 2.4, 40)) + 0.0002  # away from the edges, off-grid
    span, step = 0.004, 0.001
    ours = spike_triggered_average(
        x, spikes, rate=rate, window=window, baseline="isa", isa_span=span, isa_step=step
    )
    assert ours.isa_n_used == 40
    refs = []
    for j in range(-4, 5):
        shifted = spikes + j * step
        ref = _elephant(
            x,
            rate * pq.Hz,
            0 * pq.s,
            shifted * pq.s,
            n_times / rate * pq.s,
            (window[0] * pq.s, window[1] * pq.s),
        )
        refs.append(ref.magnitude)
    np.testing.assert_allclose(ours.isa, np.mean(refs, axis=0), atol=1e-9)


def test_isa_and_trend_keep_a_linear_signal():
    """A moving average and a line fit both reproduce a linear STA exactly."""
    rate = 2000.0
    t = np.arange(8000) / rate
    x = np.column_stack([1 + 0.5 * t, 3 - 0.2 * t])
    spikes = np.linspace(0.3, 3.6, 50)
    sta = spike_triggered_average(x, spikes, rate=rate, baseline="isa", detrend=True)
    np.testing.assert_allclose(sta.isa, sta.mean, atol=1e-9)
    np.testing.assert_allclose(sta.trend, sta.mean, atol=1e-9)
    np.testing.assert_allclose(sta.corrected, 0, atol=1e-9)


def test_isa_removes_a_ramp_but_keeps_a_spike_locked_bump():
    rate = 5000.0
    n = 50000
    spikes = np.arange(0.2, 9.8, 0.097)
    bump = np.zeros(n)
    idx = np.floor(spikes * rate).astype(int)
    for i in idx:
        bump[i + 40 : i + 90] += 0.2  # +8..+18 ms
    ramp = 1 + 0.3 * np.sin(2 * np.pi * 0.5 * np.arange(n) / rate)
    sta = spike_triggered_average((ramp + bump)[:, None], spikes, rate=rate, baseline="isa")
    corrected = sta.mean[:, 0] - sta.isa[:, 0]
    in_bump = (sta.lags >= 0.009) & (sta.lags <= 0.017)
    far = sta.lags <= -0.015
    # the 10-ms bump keeps ~7/8 of its size; the pre-spike part is flat
    assert corrected[in_bump].mean() == pytest.approx(0.2 * (1 - 10 / 81), rel=0.05)
    assert np.abs(corrected[far]).max() < 0.04


@pytest.fixture
def h5_emg(tmp_path):
    rng = np.random.default_rng(11)
    x = np.abs(rng.standard_normal((60000, 5))).astype(np.float32)
    path = tmp_path / "emg.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("emg", data=x, chunks=(4096, 5))
    f = h5py.File(path, "r")
    yield x, f["emg"]
    f.close()


def test_bounded_memory_path_equals_in_memory(h5_emg):
    x, dataset = h5_emg
    rng = np.random.default_rng(12)
    trains = {u: np.sort(rng.uniform(0, 12, 700)) for u in ("a", "b")}
    emg_disk = EMG(dataset, rate=5000.0)
    # tiny chunks: many chunk boundaries, windows straddling them
    disk = spike_triggered_average(
        emg_disk, trains, baseline="isa", chunk_bytes=20 * 5 * 4 * 100, keep_sweeps=True
    )
    memory = spike_triggered_average(x, trains, rate=5000.0, baseline="isa")
    for u in trains:
        np.testing.assert_allclose(disk[u].mean, memory[u].mean, rtol=0, atol=1e-12)
        np.testing.assert_allclose(disk[u].isa, memory[u].isa, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(disk[u].sweeps, memory[u].sweeps)
        assert disk[u].n_unused == memory[u].n_unused
    # sweeps too large for memory become lazy, and read the same windows
    lazy = spike_triggered_average(emg_disk, trains["a"], max_sweep_bytes=1000)
    assert isinstance(lazy.sweeps, LazySweeps)
    assert lazy.sweeps.shape == memory["a"].sweeps.shape
    np.testing.assert_array_equal(lazy.sweeps[5:9], memory["a"].sweeps[5:9])
    np.testing.assert_array_equal(lazy.sweeps[-1, :, 2], memory["a"].sweeps[-1, :, 2])
    none = spike_triggered_average(x, trains["a"], rate=5000.0, keep_sweeps=False)
    assert none.sweeps is None
    np.testing.assert_allclose(none.mean, memory["a"].mean, atol=1e-12)


def test_counts_and_outside_spikes():
    x = np.ones((1000, 1))
    rate = 1000.0
    spikes = np.array([0.0, 0.005, 0.01, 0.5, 0.96, 0.97, 1.0])
    with pytest.raises(InputError, match="outside the EMG"):
        spike_triggered_average(x, np.append(spikes, 1.2), rate=rate, window=(-0.01, 0.04))
    sta = spike_triggered_average(x, spikes, rate=rate, window=(-0.01, 0.04))
    # used: t - 0.01 >= 0 and t + 0.04 <= 1.0 -> 0.01, 0.5, 0.96
    assert (sta.n_used, sta.n_unused) == (3, 4)
    excl = spike_triggered_average(
        x, np.append(spikes, [1.2, -0.1]), rate=rate, window=(-0.01, 0.04), outside="exclude"
    )
    assert (excl.n_used, excl.n_unused) == (3, 6)


def test_bad_inputs_raise_input_error():
    x = np.ones((1000, 2))
    with pytest.raises(InputError, match="rate"):
        spike_triggered_average(x, [0.5])
    with pytest.raises(InputError, match="NaN"):
        spike_triggered_average(x, [0.5, np.nan], rate=1000.0)
    bad = x.copy()
    bad[500, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        spike_triggered_average(bad, [0.5], rate=1000.0)
    with pytest.raises(InputError, match="longer than the EMG"):
        spike_triggered_average(x, [0.5], rate=1000.0, window=(-1.0, 1.0))
    with pytest.raises(InputError, match="start < stop"):
        spike_triggered_average(x, [0.5], rate=1000.0, window=(0.02, -0.01))
    with pytest.raises(InputError, match="disagrees"):
        spike_triggered_average(EMG(x, rate=1000.0), [0.5], rate=2000.0)
    with pytest.warns(RuntimeWarning, match="no spike"):
        sta = spike_triggered_average(x, [0.0], rate=1000.0)
    assert sta.n_used == 0 and np.all(np.isnan(sta.mean))
