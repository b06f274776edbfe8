"""EMG conditioning: known filter responses, envelopes, resampling, chunked == whole, errors."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy.signal import butter, sosfiltfilt

from nwb_synergy.emg import condition_emg, highpass_rectify, normalize, resample
from nwb_synergy.errors import InputError
from nwb_synergy.signals import EMG, EMGSource


def _sine(freq: float, rate: float, n: int, phase: float = 0.0) -> np.ndarray:
    return np.sin(2 * np.pi * freq * np.arange(n) / rate + phase)


def _bursty_emg(rate: float, seconds: float, n_muscles: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    amp = 1.0 + np.stack(
        [
            np.clip(np.sin(2 * np.pi * (0.7 + 0.3 * m) * t + m), 0, None) * 3
            for m in range(n_muscles)
        ],
        axis=1,
    )
    return rng.standard_normal((n, n_muscles)) * amp * 1e-4  # volts


def test_highpass_removes_10hz_and_keeps_200hz():
    rate, n = 1000.0, 10_000
    slow, fast = _sine(10, rate, n), _sine(200, rate, n, 0.3)
    emg = EMG(np.stack([slow + fast, slow], axis=1), rate)
    out = condition_emg(
        emg, rectify=False, lowpass=None, resample=None, subtract_min=False, normalize=None
    )
    mid = slice(1000, -1000)
    # a 10 Hz sine through a zero-phase 4th-order 50 Hz high-pass: gain (10/50)**8 ~ 2.6e-6
    assert np.max(np.abs(out.data[mid, 1])) < 1e-5
    # 200 Hz passes: the first channel is the 200 Hz sine alone, to within 0.1 %
    assert np.max(np.abs(out.data[mid, 0] - fast[mid])) < 1e-3
    assert out.rate == rate and out.unit == "V"


def test_envelope_tracks_amplitude_modulation():
    rate, n = 2000.0, 40_000
    rng = np.random.default_rng(1)
    t = np.arange(n) / rate
    modulation = 1.0 + 0.8 * np.sin(2 * np.pi * 1.0 * t)
    emg = EMG((rng.standard_normal(n) * modulation)[:, None], rate)
    env = condition_emg(emg, subtract_min=False, normalize=None)
    assert env.rate == 100.0
    truth = 1.0 + 0.8 * np.sin(2 * np.pi * env.times)
    inner = slice(100, -100)
    r = np.corrcoef(env.data[inner, 0], truth[inner])[0, 1]
    assert r > 0.97
    # the envelope is proportional to the modulation: least-squares gain explains it well
    gain = np.dot(env.data[inner, 0], truth[inner]) / np.dot(truth[inner], truth[inner])
    assert np.std(env.data[inner, 0] - gain * truth[inner]) < 0.15 * gain


def test_resampling_rate_times_and_history():
    x = _bursty_emg(1000.0, 10.0, 3, 0)
    emg = EMG(x, 1000.0, t_start=12.5, muscle_names=["a", "b", "c"])
    out = condition_emg(emg)
    assert out.rate == 100.0 and out.t_start == 12.5
    assert out.n_times == (x.shape[0] - 1) // 10 + 1
    assert out.muscle_names == ["a", "b", "c"] and out.unit == "a.u."
    steps = [h["step"] for h in out.history]
    assert steps == ["highpass", "rectify", "lowpass", "resample", "subtract_min", "normalize"]
    assert out.history[3]["method"] == "decimate" and out.history[3]["factor"] == 10
    assert out.history[0]["cutoff_hz"] == 50.0 and out.history[2]["order"] == 4
    np.testing.assert_allclose(out.data.min(axis=0), 0.0, atol=1e-15)
    np.testing.assert_allclose(out.data.max(axis=0), 1.0)
    # decimation picks every 10th sample of the full-rate envelope
    full = condition_emg(emg, resample=None, subtract_min=False, normalize=None)
    part = condition_emg(emg, subtract_min=False, normalize=None)
    np.testing.assert_allclose(part.data, full.data[::10], rtol=0, atol=1e-15)


def test_spline_resampling_of_a_smooth_signal():
    rate, n = 2048.0, 20_480
    slow = 2.0 + _sine(1.5, rate, n)
    emg = EMG(slow[:, None], rate, t_start=3.0)
    out = resample(emg, 100.0)
    assert out.rate == 100.0 and out.t_start == 3.0
    assert out.history[-1]["method"] == "cubic_spline"
    assert out.n_times == int(np.floor((n - 1) * 100.0 / rate)) + 1
    truth = 2.0 + np.sin(2 * np.pi * 1.5 * (out.times - 3.0))
    assert np.max(np.abs(out.data[:, 0] - truth)) < 1e-8


def test_whole_signal_equals_scipy_sosfiltfilt_chain():
    x = _bursty_emg(1000.0, 8.0, 2, 2)
    out = condition_emg(EMG(x, 1000.0), resample=None, subtract_min=False, normalize=None)
    hp = butter(4, 50.0, "highpass", fs=1000.0, output="sos")
    lp = butter(4, 20.0, "lowpass", fs=1000.0, output="sos")
    ref = sosfiltfilt(lp, np.abs(sosfiltfilt(hp, x, axis=0)), axis=0)
    np.testing.assert_array_equal(out.data, ref)


@pytest.mark.parametrize("rate", [1000.0, 2048.0])
def test_chunked_equals_whole_on_h5py(tmp_path, rate):
    x = _bursty_emg(rate, 30.0, 4, 3)
    path = tmp_path / "emg.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("emg", data=x, chunks=(4096, 4))
    whole = condition_emg(EMG(x, rate))
    with h5py.File(path, "r") as f:
        lazy = EMG(f["emg"], rate)
        chunked = condition_emg(lazy, chunk_size=5000)
        default_chunks = condition_emg(lazy)  # lazy data: chunked by default
    assert chunked.data.shape == whole.data.shape
    scale = np.max(np.abs(whole.data))
    assert np.max(np.abs(chunked.data - whole.data)) <= 1e-9 * scale
    assert np.max(np.abs(default_chunks.data - whole.data)) <= 1e-9 * scale
    assert [h["step"] for h in chunked.history] == [h["step"] for h in whole.history]
    np.testing.assert_allclose(chunked.history[-1]["scale"], whole.history[-1]["scale"])


def test_highpass_rectify_chunked_into_h5py(tmp_path):
    rate = 1000.0
    x = _bursty_emg(rate, 20.0, 3, 4)
    whole = highpass_rectify(x, rate=rate)
    assert whole.rate == rate and np.all(whole.data >= 0)
    assert [h["step"] for h in whole.history] == ["highpass", "rectify"]
    path = tmp_path / "rect.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("raw", data=x)
        out = f.create_dataset("rect", shape=x.shape, dtype="f8")
        res = highpass_rectify(EMG(f["raw"], rate), chunk_size=3000, out=out)
        got = res.data[()]
    assert np.max(np.abs(got - whole.data)) <= 1e-9 * np.max(whole.data)


@pytest.mark.parametrize(
    ("kind", "stat"),
    [("max", np.max), ("mean", np.mean), ("unit_variance", np.std)],
)
def test_normalisations(kind, stat):
    x = np.abs(_bursty_emg(100.0, 20.0, 3, 5)) + 0.1
    out = normalize(EMG(x, 100.0), kind)
    np.testing.assert_allclose(stat(out.data, axis=0), 1.0)
    assert out.unit == "a.u." and out.history[-1]["kind"] == kind
    assert np.all(out.data >= 0)


def test_bad_inputs_raise_input_error_naming_the_object():
    rate = 1000.0
    x = _bursty_emg(rate, 2.0, 3, 6)
    src = EMGSource(file="session.nwb", series_names=("acquisition/EMG",) * 3)
    names = ["TA", "SO", "GM"]

    bad = x.copy()
    bad[100, 1] = np.nan
    with pytest.raises(InputError, match=r"session\.nwb.*acquisition/EMG.*NaN.*SO"):
        condition_emg(EMG(bad, rate, muscle_names=names, source=src))
    flat = x.copy()
    flat[:, 2] = 0.5
    with pytest.raises(InputError, match=r"flat channel.*GM"):
        condition_emg(EMG(flat, rate, muscle_names=names, source=src))
    with pytest.raises(InputError, match="too short"):
        condition_emg(EMG(x[:20], rate))
    with pytest.raises(InputError, match="Nyquist"):
        condition_emg(EMG(x, rate), highpass=600.0)
    with pytest.raises(InputError, match="Nyquist"):
        condition_emg(EMG(x, 30.0), highpass=None)  # default 20 Hz low-pass, Nyquist 15 Hz
    with pytest.raises(InputError, match="aliasing"):
        condition_emg(EMG(x, rate), lowpass=60.0)  # new Nyquist is 50 Hz
    with pytest.raises(InputError, match="rate"):
        condition_emg(x)
    with pytest.raises(InputError, match="normalize"):
        condition_emg(EMG(x, rate), normalize="peak")
    with pytest.raises(InputError, match="chunk"):
        condition_emg(EMG(x, rate), chunk_size=0)


def test_real_walking_envelope_matches_musclesynergies(walking_dir):
    """Our conditioning vs musclesyneRgies' own filtered file of the same trial.

    Their file holds three cycles, each time-normalised to 200 points (100 stance, 100 swing),
    after the same chain (50 Hz high-pass, rectify, 20 Hz low-pass, minimum subtracted,
    amplitude normalised). Their normalisation keeps the middle three of the five complete
    cycles (the first and the last are trimmed), so our envelope of cycles 2-4 is interpolated
    to the same 200 points per cycle and compared per muscle.
    """
    raw = pd.read_csv(walking_dir / "ID0012_TW_01_raw_emg.csv")
    cycles = pd.read_csv(walking_dir / "ID0012_TW_01_cycles.csv")
    theirs = pd.read_csv(walking_dir / "ID0012_TW_01_filtered_normalized.csv")
    muscles = list(raw.columns[1:])
    emg = EMG(
        raw[muscles].to_numpy() * 1e-6,
        1000.0,
        t_start=float(raw["time"].iloc[0]),
        muscle_names=muscles,
    )
    env = condition_emg(emg, resample=None)
    td, lo = cycles["touchdown_s"].to_numpy(), cycles["liftoff_s"].to_numpy()
    ours = []
    for i in (1, 2, 3):
        stance = np.linspace(td[i], lo[i], 100, endpoint=False)
        swing = np.linspace(lo[i], td[i + 1], 100, endpoint=False)
        tq = np.concatenate([stance, swing])
        ours.append(np.stack([np.interp(tq, env.times, env.data[:, m]) for m in range(13)], 1))
    ours = np.concatenate(ours)
    ref = theirs[muscles].to_numpy()
    r = np.array([np.corrcoef(ours[:, m], ref[:, m])[0, 1] for m in range(13)])
    assert r.min() > 0.98, dict(zip(muscles, r.round(3), strict=True))
