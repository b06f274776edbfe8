"""pynapple objects as inputs (EMG, spikes, intervals) and pynapple objects as outputs.

Every pynapple result is checked against the same computation on plain arrays; restrictions
against counts known by construction.
"""

from __future__ import annotations

import sys
from unittest import mock

import numpy as np
import pynapple as nap
import pytest

from nwb_synergy.emg import condition_emg
from nwb_synergy.errors import InputError
from nwb_synergy.factorize import NMF
from nwb_synergy.io.pynapple import (
    intervals_from_pynapple,
    pynapple_samples,
    restrict_emg,
    to_pynapple,
)
from nwb_synergy.sta import spike_triggered_average, spike_triggered_averages

RATE = 2000.0
WINDOW = (-0.01, 0.02)
MUSCLES = ["TA", "GM", "SOL"]


@pytest.fixture(scope="module")
def emg_array() -> np.ndarray:
    rng = np.random.default_rng(5)
    return np.abs(rng.standard_normal((int(10 * RATE), 3)))


def _frame(x: np.ndarray, t_start: float = 0.0, **kwargs):
    kwargs.setdefault("columns", MUSCLES)
    return nap.TsdFrame(t=t_start + np.arange(len(x)) / RATE, d=x, **kwargs)


def _group(trains: dict) -> object:
    return nap.TsGroup(
        {unit: nap.Ts(t=np.asarray(t)) for unit, t in trains.items()},
        time_support=nap.IntervalSet(0, 1000),
    )


def test_tsdframe_and_tsgroup_give_the_array_sta_of_every_unit(emg_array):
    rng = np.random.default_rng(6)
    # spikes halfway between samples: no sample choice hangs on rounding
    trains = {3: (rng.choice(19_000, 60, replace=False) + 500.5) / RATE, 8: [0.004, 2.5, 9.999]}
    t0 = 1.5
    ours = spike_triggered_average(
        _frame(emg_array, t0),
        _group({k: np.sort(v) + t0 for k, v in trains.items()}),
        window=WINDOW,
        baseline="isa",
    )
    assert set(ours) == {3, 8}
    for unit, times in trains.items():
        ref = spike_triggered_average(
            emg_array, np.sort(times) + t0, rate=RATE, t_start=t0, window=WINDOW, baseline="isa"
        )
        got = ours[unit]
        assert got.rate == RATE and got.t_start == t0 and got.muscle_names == MUSCLES
        assert (got.n_used, got.n_unused) == (ref.n_used, ref.n_unused)
        np.testing.assert_array_equal(got.mean, ref.mean)
        np.testing.assert_array_equal(got.isa, ref.isa)
        np.testing.assert_array_equal(got.window_starts, ref.window_starts)
    # unit 8: the spikes at 4 ms and 9.999 s (of 1.5 + 10 s) have no room for the window
    assert (ours[8].n_used, ours[8].n_unused) == (1, 2)


def test_a_tsd_and_a_ts_are_one_muscle_and_one_unit(emg_array):
    times = np.array([1.00025, 4.20025, 7.77775])
    tsd = nap.Tsd(t=np.arange(len(emg_array)) / RATE, d=emg_array[:, 1])
    got = spike_triggered_average(tsd, nap.Ts(t=times), window=WINDOW)
    ref = spike_triggered_average(emg_array[:, 1:2], times, rate=RATE, window=WINDOW)
    assert got.muscle_names == ["muscle_0"]
    np.testing.assert_array_equal(got.mean, ref.mean)


def test_metadata_names_the_muscles_and_default_columns_do_not(emg_array):
    named = _frame(emg_array, columns=None, metadata={"muscle": ["BF", "RF", "VL"]})
    assert pynapple_samples(named).muscle_names == ["BF", "RF", "VL"]
    assert pynapple_samples(_frame(emg_array, columns=None)).muscle_names == [
        "muscle_0",
        "muscle_1",
        "muscle_2",
    ]


def _restriction_case(emg_array):
    """30 spikes: 20 with windows inside [1, 3] or [5, 8] s, 6 outside, 4 straddling an edge."""
    inside = np.concatenate([1.2 + 0.1 * np.arange(10), 5.5 + 0.2 * np.arange(10)]) + 0.00025
    outside = np.array([0.5, 3.5, 4.0, 4.5, 8.5, 9.5]) + 0.00025
    straddling = np.array([1.005, 2.985, 4.995, 7.99]) + 0.00025  # window -10..+20 ms
    spikes = np.sort(np.concatenate([inside, outside, straddling]))
    intervals = nap.IntervalSet(start=[1.0, 5.0], end=[3.0, 8.0])
    ref = spike_triggered_average(emg_array, np.sort(inside), rate=RATE, window=WINDOW)
    return spikes, intervals, ref


def test_intervalset_restriction_drops_the_spikes_whose_window_leaves_the_intervals(emg_array):
    spikes, intervals, ref = _restriction_case(emg_array)
    got = spike_triggered_average(restrict_emg(_frame(emg_array), intervals), spikes, window=WINDOW)
    assert (got.n_used, got.n_unused) == (20, 10)
    np.testing.assert_array_equal(got.mean, ref.mean)
    np.testing.assert_array_equal(got.spike_times, ref.spike_times)
    # the same restriction of an array, and of our EMG, by [start, end] rows in seconds
    from_array = spike_triggered_average(
        restrict_emg(emg_array, [[5.0, 8.0], [1.0, 3.0]], rate=RATE), spikes, window=WINDOW
    )
    np.testing.assert_array_equal(from_array.mean, ref.mean)


def test_a_restricted_tsdframe_is_read_piece_by_piece_and_never_outside(emg_array):
    spikes, intervals, ref = _restriction_case(emg_array)
    # EMG outside the intervals is NaN: any sample read from there would spoil the average
    poisoned = np.full_like(emg_array, np.nan)
    keep = _frame(emg_array).restrict(intervals)
    rows = np.round(keep.t * RATE).astype(int)
    poisoned[rows] = emg_array[rows]
    frame = _frame(poisoned).restrict(intervals)
    got = spike_triggered_averages(frame, _group({1: spikes}), window=WINDOW, outside="exclude")[1]
    assert (got.n_used, got.n_unused) == (20, 10)
    np.testing.assert_array_equal(got.mean, ref.mean)
    # and the full poisoned recording restricted by the IntervalSet reads only inside too
    full = spike_triggered_average(
        restrict_emg(_frame(poisoned), intervals), spikes, window=WINDOW, keep_sweeps=False
    )
    np.testing.assert_array_equal(full.mean, ref.mean)


def test_condition_emg_and_nmf_of_a_tsdframe_equal_those_of_the_array():
    rng = np.random.default_rng(7)
    n, rate = 40_000, 2000.0
    t = np.arange(n) / rate
    drive = np.column_stack([1 + np.sin(2 * np.pi * 1.0 * t), 1 + np.cos(2 * np.pi * 0.7 * t)])
    weights = np.array([[1.0, 0.0], [0.7, 0.3], [0.1, 0.9], [0.0, 1.0]])
    raw = (drive @ weights.T) * rng.standard_normal((n, 4))
    frame = nap.TsdFrame(t=3.0 + t, d=raw, columns=["m1", "m2", "m3", "m4"])
    ours = condition_emg(frame)
    ref = condition_emg(raw, rate=rate)
    assert ours.rate == ref.rate == 100.0 and ours.t_start == 3.0
    assert ours.muscle_names == ["m1", "m2", "m3", "m4"]
    np.testing.assert_array_equal(ours.data, ref.data)
    fitted = NMF(2, n_restarts=2, random_state=0).fit(ours)
    expected = NMF(2, n_restarts=2, random_state=0).fit(ref.data)
    np.testing.assert_array_equal(fitted.weights_, expected.weights_)
    assert fitted.muscle_names_ == ["m1", "m2", "m3", "m4"]
    activations = to_pynapple(fitted, ours)
    np.testing.assert_array_equal(activations.values, fitted.activations_)
    np.testing.assert_allclose(activations.t, ours.times, rtol=0, atol=1e-9)
    assert list(activations.columns) == ["synergy_0", "synergy_1"]


def test_sta_results_become_tsdframes_indexed_by_lag(emg_array):
    results = spike_triggered_averages(
        _frame(emg_array), _group({2: [2.00025, 6.00025]}), window=WINDOW, detrend=True
    )
    frames = to_pynapple(results)
    frame = frames[2]
    np.testing.assert_allclose(frame.t, results[2].lags, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(frame.values, results[2].mean)
    assert list(frame.columns) == MUSCLES
    corrected = to_pynapple(results[2], values="corrected")
    np.testing.assert_array_equal(corrected.values, results[2].mean - results[2].trend)
    with pytest.raises(InputError, match="no 'isa'"):
        to_pynapple(results[2], values="isa")


def test_bad_pynapple_inputs_are_one_clear_input_error(emg_array):
    t = np.arange(len(emg_array)) / RATE
    jittered = t + np.random.default_rng(8).uniform(0, 0.3 / RATE, len(t))
    with pytest.raises(InputError, match="not regularly spaced"):
        spike_triggered_average(nap.TsdFrame(t=jittered, d=emg_array), [1.0], window=WINDOW)
    restricted = _frame(emg_array).restrict(nap.IntervalSet([1, 5], [3, 8]))
    with pytest.raises(InputError, match="2 separate pieces"):
        condition_emg(restricted)
    with pytest.raises(InputError, match="TsGroup holds several units"):
        spike_triggered_averages(emg_array, {0: _group({0: [1.0, 2.0]})}, rate=RATE, window=WINDOW)
    with pytest.raises(InputError, match="start <= end"):
        intervals_from_pynapple([[2.0, 1.0]])


def test_without_pynapple_conversion_asks_for_it(emg_array):
    result = spike_triggered_average(emg_array, [2.0], rate=RATE, window=WINDOW)
    with mock.patch.dict(sys.modules, {"pynapple": None}):
        with pytest.raises(InputError, match="pip install pynapple"):
            to_pynapple(result)
