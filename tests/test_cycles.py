"""Cycles: time normalisation and activation metrics against musclesyneRgies's definitions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nwb_synergy.cycles import (
    activation_metrics,
    center_of_activity,
    fwhm,
    normalize_cycles,
)
from nwb_synergy.errors import InputError
from nwb_synergy.signals import EMG

TRIAL = "ID0012_TW_01"


# -- musclesyneRgies's definitions, written out literally as the reference ----------------------


def reference_coa(x: np.ndarray) -> float:
    """musclesyneRgies's CoA: a loop over points, atan and its four quadrant corrections."""
    points = len(x)
    aa = bb = 0.0
    for pp in range(1, points + 1):
        alpha = 360 * (pp - 1) / (points - 1) * math.pi / 180
        aa += x[pp - 1] * math.cos(alpha)
        bb += x[pp - 1] * math.sin(alpha)
    coat = math.atan(bb / aa) * 180 / math.pi
    if aa < 0 < bb or (aa < 0 and bb < 0):
        coat += 180
    elif aa > 0 > bb:
        coat += 360
    return coat * points / 360


def reference_fwhm(x: np.ndarray, sub_minimum: bool = True) -> int:
    """musclesyneRgies's FWHM: minimum subtracted, divided by the maximum, points above 0.5."""
    x = np.asarray(x, dtype=float)
    if sub_minimum:
        x = x - x.min()
    return int(np.count_nonzero(x / x.max() > 0.5))


def test_fwhm_and_coa_give_musclesynergies_own_test_answers():
    # the package's unit tests: a symmetric bump is centred at half its length
    bump = np.array([0, 1, 2, 3, 3, 2, 1, 0], dtype=float)
    twice = np.concatenate([np.zeros(10), bump, np.zeros(10), bump, np.zeros(10)])
    assert center_of_activity(bump) == pytest.approx(len(bump) / 2)
    assert center_of_activity(twice) == pytest.approx(len(twice) / 2)
    plateau = np.array([10, 10, 10, 11, 11, 11, 10, 10, 10], dtype=float)
    assert fwhm(plateau) == 3
    assert fwhm(plateau, subtract_min=False) == len(plateau)


def test_fwhm_and_coa_equal_the_literal_definitions_on_random_patterns():
    rng = np.random.default_rng(0)
    patterns = np.abs(rng.standard_normal((200, 40))).cumsum(axis=0) % 7.0
    ours_coa = center_of_activity(patterns)
    ours_fwhm = fwhm(patterns)
    for j in range(patterns.shape[1]):
        assert ours_coa[j] == pytest.approx(reference_coa(patterns[:, j]), abs=1e-9)
        assert ours_fwhm[j] == reference_fwhm(patterns[:, j])


def test_centre_of_activity_is_circular():
    n = 200
    i = np.arange(n)
    # a bump at point 60: its centre is 60 on musclesyneRgies's scale (i * n / (n - 1))
    bump = np.exp(-0.5 * ((i - 60) / 6.0) ** 2)
    assert center_of_activity(bump) == pytest.approx(60 * n / (n - 1), abs=1e-6)
    # a bump across the end of the cycle is centred near 0, not in the middle
    wrapped = np.roll(bump, -60)
    assert min(center_of_activity(wrapped), n - center_of_activity(wrapped)) < 1.0
    # the mean over cycles is circular too: centres near 198 and 2 average to about 0, not 100
    cycles = np.stack([np.roll(bump, 138)[:, None], np.roll(bump, -58)[:, None]])
    from nwb_synergy.cycles import CycleData

    data = CycleData(cycles, np.zeros(2), np.ones(2), None, (n,), ["s"], np.arange(2))
    metrics = activation_metrics(data)
    assert metrics.coa[:, 0] == pytest.approx([198.0, 2.0], abs=1.0)
    assert min(metrics.coa_mean[0], n - metrics.coa_mean[0]) < 0.5
    rect = np.zeros(n)
    rect[50:80] = 1.0
    assert fwhm(rect) == 30


def test_normalize_cycles_takes_the_samples_of_each_phase_and_spreads_them():
    rate, t0 = 100.0, 0.5
    n = 1000
    times = t0 + np.arange(n) / rate
    signal = np.column_stack([times, 2 * times])  # the signal is its own clock
    touchdowns = np.array([1.0, 2.005, 3.4])  # 1.0 falls on a sample
    liftoffs = np.array([1.6, 2.5])
    cycles = normalize_cycles(
        EMG(signal, rate, t_start=t0), touchdowns, phase_starts=liftoffs, points=(50, 30)
    )
    assert cycles.data.shape == (2, 80, 2) and cycles.phase_bounds == [50]
    # phase [a, b): from the first sample at or after a to the last before b, linearly
    np.testing.assert_allclose(cycles.data[0, :50, 0], np.linspace(1.0, 1.59, 50))
    np.testing.assert_allclose(cycles.data[0, 50:, 0], np.linspace(1.6, 2.0, 30))
    np.testing.assert_allclose(cycles.data[1, :50, 0], np.linspace(2.01, 2.49, 50))
    np.testing.assert_allclose(cycles.data[1, 50:, 1], 2 * np.linspace(2.5, 3.39, 30))
    # without phases: 200 points by default, each cycle ending where the next starts
    whole = normalize_cycles(signal, touchdowns, rate=rate, t_start=t0)
    np.testing.assert_allclose(whole.data[1, :, 0], np.linspace(2.01, 3.39, 200))


def test_cycles_outside_the_signal_or_with_gaps_are_left_out_with_a_reason():
    rate = 100.0
    x = np.ones((500, 1))
    x[250:260] = np.nan  # not analysed there
    cycles = normalize_cycles(x, [0.5, 1.5, 2.2, 3.0, 4.0, 6.0], rate=rate)
    assert cycles.used.tolist() == [0, 1, 3]
    assert cycles.dropped == {
        2: "NaN samples inside (outside the analysed intervals)",
        4: "not wholly inside the signal",
    }
    with pytest.raises(InputError, match="no usable cycle"):
        normalize_cycles(x, [10.0, 11.0], rate=rate)
    with pytest.raises(InputError, match="strictly inside their cycle"):
        normalize_cycles(x, [0.5, 1.5], phase_starts=[1.7], rate=rate)


@pytest.fixture
def walking(walking_dir, tmp_path):
    """The real walking trial (skipped when absent) and its NWB conversion."""
    from nwb_synergy.convert import convert_walking

    return walking_dir, convert_walking(walking_dir, tmp_path / "walking.nwb")


@pytest.mark.realdata
def test_cycle_normalisation_reproduces_musclesynergies_output(walking):
    from nwb_synergy import condition_emg, read_emg
    from nwb_synergy.io.files import open_nwb
    from nwb_synergy.io.intervals import read_cycles

    data_dir, path = walking
    emg = read_emg(path)
    io, nwbfile = open_nwb(path)
    try:
        cycles = read_cycles(nwbfile, "gait_cycles")
    finally:
        io.close()
    # the table's sixth, open cycle is left out; lift-offs split stance from swing
    assert len(cycles) == 5 and cycles.phase_column == "liftoff_time"
    # musclesyneRgies's filtEMG: the same filters, then non-positive values raised to the
    # smallest positive one; min and max taken over the whole trial (edges included, where
    # R's filtfilt and SciPy's differ: compared up to a gain and an offset per muscle)
    env = condition_emg(emg, resample=None, subtract_min=False, normalize=None)
    x = env.to_numpy()
    x[x <= 0] = x[x > 0].min()
    ours = normalize_cycles(env.replace(data=x), cycles, points=(100, 100))
    assert ours.data.shape == (5, 200, 13)
    ref = pd.read_csv(data_dir / f"{TRIAL}_filtered_normalized.csv")[emg.muscle_names]
    theirs = ref.to_numpy().reshape(3, 200, 13)  # it drops the first and the last cycle
    mine = ours.data[1:4]
    for m in range(13):
        a, b = np.polyfit(theirs[:, :, m].ravel(), mine[:, :, m].ravel(), 1)
        residual = mine[:, :, m] - (a * theirs[:, :, m] + b)
        assert a > 0
        assert np.abs(residual).max() < 1e-4 * np.abs(mine[:, :, m]).max()  # measured 5e-5
    # and the metrics of their patterns follow their definitions
    for c in range(3):
        for m in range(13):
            assert center_of_activity(theirs[c, :, m]) == pytest.approx(
                reference_coa(theirs[c, :, m]), abs=1e-9
            )
            assert fwhm(theirs[c, :, m]) == reference_fwhm(theirs[c, :, m])


@pytest.mark.realdata
def test_walking_synergies_per_cycle_are_measured_written_and_drawn(walking, tmp_path):
    from nwbinspector import Importance, inspect_nwbfile, load_config
    from pynwb import validate

    from nwb_synergy.pipeline import analyze_session
    from nwb_synergy.plot import report

    _, path = walking
    results = analyze_session(
        path,
        tmp_path / "results.nwb",
        methods=("nmf",),
        n_synergies=5,
        cycles="gait_cycles",
        progress=False,
    )
    model = results.models["nmf"]
    part = results.cycles
    assert part.phase_column == "liftoff_time"
    data = part.cycles["nmf"]
    assert data.data.shape == (5, 200, model.weights_.shape[1]) and data.points == (100, 100)
    # the metrics are those of the activations, normalised again here from the model
    again = normalize_cycles(
        model.activations_,
        data.starts,
        stops=data.stops,
        phase_starts=data.phase_starts,
        rate=results.envelope.rate,
        t_start=results.envelope.t_start,
    )
    np.testing.assert_allclose(again.data, data.data)
    metrics = part.metrics["nmf"]
    np.testing.assert_array_equal(metrics.fwhm, [fwhm(c) for c in again.data])
    np.testing.assert_allclose(metrics.coa, [center_of_activity(c) for c in again.data])
    assert np.all((metrics.fwhm > 0) & (metrics.fwhm < 100))
    text = results.summary_text()
    assert "restricted to the 5 cycles of 'gait_cycles'" in text
    assert "cycles of 'gait_cycles', phases split at 'liftoff_time':" in text
    figures = report(results.output, tmp_path / "figures", formats=("png",))
    assert "cycle_activations.png" in {p.name for p in figures}
    assert validate(path=str(results.output)) == []
    critical = [
        m
        for m in inspect_nwbfile(str(results.output), config=load_config("dandi"))
        if m.importance == Importance.CRITICAL
    ]
    assert critical == [], [m.message for m in critical]
