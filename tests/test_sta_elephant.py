"""The elephant drop-in: elephant's own STA test cases, and elephant's numbers on random data.

elephant's test case class (``elephant/test/test_sta.py``, installed with elephant) is run with
the function it tests rebound to :func:`nwb_synergy.sta.elephant.spike_triggered_average`: the
cases call ``sta.spike_triggered_average`` through their module's global ``sta``, which is
swapped for a namespace holding ours (and a counter proving ours ran) for each case.
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace
from unittest import mock

import elephant.test.test_sta as elephant_cases  # elephant's own STA test cases
import neo
import numpy as np
import pytest
import quantities as pq
from elephant.sta import spike_triggered_average as elephant_sta

from nwb_synergy.errors import InputError
from nwb_synergy.sta.elephant import NO_SPIKE_WARNING, spike_triggered_average


class TestElephantSTACasesRunOnOurDropIn(elephant_cases.sta_TestCase):
    """Every case of elephant's ``sta_TestCase``, calling our function instead of elephant's."""

    def setUp(self) -> None:
        super().setUp()
        self.calls = 0

        def ours(*args, **kwargs):
            self.calls += 1
            return spike_triggered_average(*args, **kwargs)

        patcher = mock.patch.object(
            elephant_cases, "sta", SimpleNamespace(spike_triggered_average=ours)
        )
        patcher.start()
        self.addCleanup(patcher.stop)
        self.addCleanup(lambda: self.assertGreater(self.calls, 0, "our function never ran"))


# --------------------------------------------------------------------------- random data


def _signal(rng: np.random.Generator, n_times: int, n_columns: int, **kwargs) -> neo.AnalogSignal:
    kwargs.setdefault("units", "mV")
    kwargs.setdefault("sampling_rate", 5 * pq.kHz)
    return neo.AnalogSignal(np.abs(rng.standard_normal((n_times, n_columns))), **kwargs)


def _train(rng: np.random.Generator, signal: neo.AnalogSignal, n: int, units: str = "s"):
    t0 = float(signal.t_start.rescale(units).magnitude)
    t1 = float(signal.t_stop.rescale(units).magnitude)
    times = np.sort(rng.uniform(t0, t1, n))
    return neo.SpikeTrain(times, units=units, t_start=t0, t_stop=t1)


def _assert_same_sta(ours: neo.AnalogSignal, theirs: neo.AnalogSignal, tol: float) -> None:
    assert ours.shape == theirs.shape
    assert ours.units == theirs.units
    assert ours.sampling_rate == theirs.sampling_rate
    assert ours.t_start == theirs.t_start
    for count in ("used_spikes", "unused_spikes"):
        np.testing.assert_array_equal(ours.annotations[count], theirs.annotations[count])
    nan = np.isnan(theirs.magnitude)
    np.testing.assert_array_equal(np.isnan(ours.magnitude), nan)
    diff = np.abs(ours.magnitude[~nan] - theirs.magnitude[~nan])
    assert diff.size == 0 or diff.max() <= tol


def test_one_train_for_all_columns_gives_elephants_average_to_1e_12():
    rng = np.random.default_rng(11)
    signal = _signal(rng, 5000, 3, t_start=0.25 * pq.s)
    train = _train(rng, signal, 70)
    window = (-8 * pq.ms, 12 * pq.ms)
    ours = spike_triggered_average(signal, train, window)
    theirs = elephant_sta(signal, train, window)
    _assert_same_sta(ours, theirs, 1e-12)
    # spikes within 8 ms of the start or 12 ms of the end (1.25 s) do not fit
    t = train.magnitude
    n_out = int(np.count_nonzero((t - 0.008 < 0.25) | (t + 0.012 > 1.25)))
    assert n_out > 0
    assert list(ours.annotations["unused_spikes"]) == [n_out] * 3


def test_one_train_per_column_pairs_train_i_with_column_i_as_elephant_does():
    rng = np.random.default_rng(12)
    signal = _signal(rng, 4000, 3, units="uV", sampling_rate=2000 * pq.Hz)
    trains = [_train(rng, signal, n, units="ms") for n in (30, 0, 50)]
    window = (-5.25 * pq.ms, 7 * pq.ms)  # not a multiple of the sampling interval
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # elephant's 0/0 for the empty train
        theirs = elephant_sta(signal, trains, window)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ours warns of nothing: spikes were used
        ours = spike_triggered_average(signal, trains, window)
    _assert_same_sta(ours, theirs, 1e-12)
    assert list(ours.annotations["used_spikes"])[1] == 0
    assert np.isnan(ours.magnitude[:, 1]).all() and np.isfinite(ours.magnitude[:, [0, 2]]).all()
    # column 2 is the average of train 2 only: differs from averaging it with train 0
    alone = spike_triggered_average(signal[:, 2:3], trains[2], window)
    np.testing.assert_allclose(ours.magnitude[:, 2], alone.magnitude[:, 0], rtol=0, atol=1e-12)


def test_unsorted_spikes_give_elephants_average_to_rounding():
    rng = np.random.default_rng(13)
    signal = _signal(rng, 3000, 2)
    times = rng.uniform(0, 0.6, 50)  # not in time order: sums taken in another order
    train = neo.SpikeTrain(times, units="s", t_stop=0.6)
    window = (-3 * pq.ms, 3 * pq.ms)
    _assert_same_sta(
        spike_triggered_average(signal, train, window), elephant_sta(signal, train, window), 1e-12
    )


def test_no_spike_gives_only_elephants_warning_and_nan():
    rng = np.random.default_rng(14)
    signal = _signal(rng, 1000, 2)
    train = neo.SpikeTrain([], units="s", t_stop=signal.t_stop)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = spike_triggered_average(signal, train, (-1 * pq.ms, 1 * pq.ms))
    assert [(w.category, str(w.message)) for w in caught] == [(UserWarning, NO_SPIKE_WARNING)]
    assert ours.shape == (10, 2) and np.isnan(ours.magnitude).all()
    assert list(ours.annotations["used_spikes"]) == [0, 0]


def test_spike_times_as_time_quantity_equal_the_same_spiketrain():
    rng = np.random.default_rng(15)
    signal = _signal(rng, 2500, 3)
    train = _train(rng, signal, 40)
    window = (-4 * pq.ms, 6 * pq.ms)
    as_quantity = pq.Quantity(train.magnitude * 1000.0, "ms")  # elephant: AttributeError
    ours = spike_triggered_average(signal, as_quantity, window)
    _assert_same_sta(ours, elephant_sta(signal, train, window), 1e-12)


def test_spike_times_without_units_are_a_type_error_naming_the_train():
    rng = np.random.default_rng(16)
    signal = _signal(rng, 1000, 2)
    with pytest.raises(TypeError, match="no time units") as info:
        trains = [np.array([0.05]), np.array([0.1])]
        spike_triggered_average(signal, trains, (-1 * pq.ms, 1 * pq.ms))
    assert isinstance(info.value, InputError) and info.value.obj == "spiketrains[0]"


def test_elephants_value_errors_are_our_input_errors():
    signal = neo.AnalogSignal(np.zeros((100, 1)), units="mV", sampling_rate=1 * pq.kHz)
    late = neo.SpikeTrain([0.05], units="s", t_stop=1.0)  # signal stops at 0.1 s
    with pytest.raises(InputError, match="stops later"):
        spike_triggered_average(signal, late, (-1 * pq.ms, 1 * pq.ms))
    with pytest.raises(ValueError, match="earlier than the stop"):
        spike_triggered_average(signal, late, (1 * pq.ms, 1 * pq.ms))


def test_drop_in_averages_an_elephant_sized_input_like_elephant_on_a_shifted_clock():
    """2,000 spikes x 16 channels at 5 kHz (the benchmark's shape), signal starting at 3 s."""
    rng = np.random.default_rng(17)
    signal = _signal(rng, 5000 * 20, 16, t_start=3 * pq.s)
    train = _train(rng, signal, 2000)
    window = (-30 * pq.ms, 50 * pq.ms)
    ours = spike_triggered_average(signal, train, window)
    # elephant takes ~8 ms per spike and column: check it on the first 12 spikes
    head = train[:12]
    _assert_same_sta(
        spike_triggered_average(signal, head, window), elephant_sta(signal, head, window), 1e-12
    )
    # the whole average, against a direct NumPy computation of elephant's sample choice
    start = np.floor((train.magnitude - 0.03 - 3.0) * 5000.0).astype(int)
    keep = (train.magnitude - 0.03 >= 3.0) & (train.magnitude + 0.05 <= 23.0)
    windows = np.stack([signal.magnitude[s : s + 400] for s in start[keep]])
    np.testing.assert_allclose(ours.magnitude, windows.mean(axis=0), rtol=0, atol=1e-12)
    assert list(ours.annotations["used_spikes"]) == [int(keep.sum())] * 16
