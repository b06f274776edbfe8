"""Conditioning chosen from the data: raw EMG keeps today's chain, envelopes get their own."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt, welch

from nwb_synergy.cli import main
from nwb_synergy.compare import compare_synergies
from nwb_synergy.emg import RAW_CHAIN, choose_conditioning, condition_emg
from nwb_synergy.errors import InputError
from nwb_synergy.pipeline import AnalysisOptions, analyze_session
from nwb_synergy.signals import EMG
from nwb_synergy.simulate.synergies import simulate_synergies
from nwb_synergy.testing.mock_files import add_units, mock_nwbfile, write_nwbfile
from nwb_synergy.testing.mock_files import carrier_emg as mock_carrier_emg

RATE = 1000.0
ENV_RATE = 100.0
NAMES = [f"m{i}" for i in range(10)]


def carrier_emg(envelope: np.ndarray, seed: int) -> np.ndarray:
    """Raw EMG (volts, RATE Hz): band-pass noise (30-300 Hz) scaled by the envelope."""
    return mock_carrier_emg(envelope, ENV_RATE, RATE, amplitude=5e-5, seed=seed)


def lab_envelope(raw: np.ndarray) -> np.ndarray:
    """A lab's stored envelope: rectified, smoothed (1.5 Hz), baseline subtracted, at 1 kHz."""
    hp = sosfiltfilt(butter(4, 30, "high", fs=RATE, output="sos"), raw, axis=0)
    env = sosfiltfilt(butter(4, 1.5, "low", fs=RATE, output="sos"), np.abs(hp), axis=0)
    return env - np.percentile(env, 10, axis=0)


def write_emg_file(path, volts: np.ndarray, description: str, units: bool = True):
    nwbfile = mock_nwbfile()
    from pynwb import TimeSeries

    nwbfile.add_acquisition(
        TimeSeries(
            name="EMG",
            data=(volts * 1e6).astype(np.float32),
            unit="volts",
            conversion=1e-6,
            rate=RATE,
            description=description + "\nmuscles: " + json.dumps(NAMES),
        )
    )
    if units:
        spikes = np.sort(np.random.default_rng(0).uniform(1.0, 59.0, 1500))
        add_units(nwbfile, {0: spikes})
    return write_nwbfile(nwbfile, path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A raw EMG file (60 s, 10 muscles, 4 synergies) and the envelope file made from it."""
    folder = tmp_path_factory.mktemp("envelopes")
    sim = simulate_synergies(
        n_muscles=10,
        n_synergies=4,
        n_times=6000,
        negative=False,
        snr_db=np.inf,
        burst_width=(0.4, 1.2),
        random_state=2,
    )
    raw = carrier_emg(sim.clean, seed=4)
    env = lab_envelope(raw)
    raw_path = write_emg_file(folder / "raw.nwb", raw, "Raw EMG of 10 forearm muscles.")
    env_path = write_emg_file(
        folder / "envelope.nwb",
        env,
        "EMG envelopes: rectified, low-passed at 1.5 Hz, baseline subtracted.",
    )
    return folder, sim, raw, env, raw_path, env_path


@pytest.fixture(scope="module")
def analysed(files):
    """Both files analysed with the defaults (NMF only, to stay fast)."""
    folder, _, _, _, raw_path, env_path = files
    options = {"methods": ("nmf",), "progress": False, "overwrite": True}
    from_raw = analyze_session(raw_path, folder / "raw_res.nwb", sta=False, **options)
    from_env = analyze_session(env_path, folder / "env_res.nwb", **options)
    return from_raw, from_env


def test_the_simulated_envelope_file_is_like_the_real_one(files):
    _, _, _, env, _, _ = files
    freqs, psd = welch(env, fs=RATE, nperseg=4000, axis=0)
    below_2hz = psd[freqs < 2].sum(axis=0) / psd.sum(axis=0)
    assert below_2hz.min() > 0.99  # the monkey data: 99% of the power below 2 Hz
    assert 0.05 < (env < 0).mean() < 0.2  # negative after baseline subtraction


def test_raw_emg_gets_todays_chain_exactly(files):
    _, _, raw, _, _, _ = files
    emg = EMG(raw, RATE, muscle_names=NAMES)
    choice = choose_conditioning(emg)
    assert choice.chain == "raw" and choice.asked == "auto"
    assert choice.settings == RAW_CHAIN
    assert choice.measurements["power_above_20hz"] > 0.95
    auto = condition_emg(emg, chain="auto")
    today = condition_emg(emg)
    assert np.array_equal(auto.data, today.data)
    assert auto.history[0]["step"] == "conditioning_choice"
    assert auto.history[1:] == today.history


def test_envelope_file_gives_the_raw_files_synergies(files, analysed):
    folder, sim, _, _, _, env_path = files
    from_raw, from_env = analysed
    assert from_raw.info.conditioning.chain == "raw"
    assert from_env.info.conditioning.chain == "envelope"
    w_raw, w_env = from_raw.models["nmf"].weights_, from_env.models["nmf"].weights_
    assert w_raw.shape == w_env.shape == (10, sim.n_synergies)
    assert compare_synergies(w_raw, w_env).cosine.min() >= 0.98  # measured 0.991
    # what the tool did before: a 50 Hz high-pass keeps nothing of an envelope
    forced = analyze_session(
        env_path,
        folder / "forced.nwb",
        methods=("nmf",),
        sta=False,
        conditioning="raw",
        progress=False,
    )
    assert compare_synergies(w_raw, forced.models["nmf"].weights_).mean_cosine < 0.85


def test_the_choice_is_stated_in_summary_notes_and_provenance(analysed):
    results = analysed[1]
    text = results.summary_text()
    assert "conditioning: envelope chain (no high-pass, no rectification" in text
    assert "chosen from the data: the EMG has less than 0.1% of its power above 20 Hz" in text
    # the file has Units: STAs are skipped, and the summary says why
    assert any("this EMG is an envelope: synergies only, no STA" in n for n in results.notes)
    assert results.sta is None
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(results.output), "r") as io:
        table = io.read().processing["behavior"]["MuscleSynergyNMF"]
        provenance = json.loads(table.provenance)
    steps = [s["step"] for s in provenance["conditioning"]]
    first = provenance["conditioning"][steps.index("conditioning_choice")]
    assert first["chain"] == "envelope" and first["asked"] == "auto"
    assert steps[steps.index("conditioning_choice") + 1 :] == [
        "lowpass",
        "resample",
        "subtract_min",
        "normalize",
    ]
    assert provenance["analysis_context"]["conditioning"]["chain"] == "envelope"


def test_sta_on_an_envelope_explains_and_stops(files, capsys):
    folder, _, _, _, _, env_path = files
    with pytest.raises(InputError, match="spike-triggered averages need the raw EMG") as err:
        analyze_session(env_path, folder / "sta.nwb", methods=(), progress=False)
    assert "--conditioning raw" in str(err.value)
    assert not (folder / "sta.nwb").exists()
    code = main(["sta", str(env_path), "-o", str(folder / "sta_cli.nwb"), "-q"])
    assert code == 1
    assert "this EMG is an envelope" in capsys.readouterr().err


def test_envelope_chain_low_passes_and_resamples_only_when_needed():
    rng = np.random.default_rng(0)
    t = np.arange(6000) / ENV_RATE
    smooth = np.column_stack([1.5 + np.sin(2 * np.pi * 0.5 * t + k) for k in range(3)])
    at_100hz = EMG(smooth, ENV_RATE)
    choice = choose_conditioning(at_100hz)
    assert choice.chain == "envelope" and "is sampled at 100 Hz" in choice.reason
    assert choice.settings["lowpass"] is None and choice.settings["resample"] is None
    out = condition_emg(at_100hz, chain=choice)
    assert [h["step"] for h in out.history] == ["conditioning_choice", "subtract_min", "normalize"]
    expected = smooth - smooth.min(axis=0)
    assert np.allclose(out.data, expected / expected.max(axis=0))
    # noisy envelope at 100 Hz: more than 1% of the power above 20 Hz, so low-passed
    noisy = EMG(smooth + 0.3 * rng.standard_normal(smooth.shape), ENV_RATE)
    assert choose_conditioning(noisy).settings["lowpass"] == 20.0
    # at 1 kHz: low-passed (anti-aliasing) and decimated to 100 Hz, never up-sampled
    fine = np.repeat(smooth, 10, axis=0)
    at_1khz = condition_emg(EMG(fine, RATE), chain="envelope")
    assert at_1khz.rate == 100.0
    steps = [h["step"] for h in at_1khz.history]
    assert "highpass" not in steps and "rectify" not in steps
    assert steps[1:3] == ["lowpass", "resample"]


def test_rectified_emg_is_not_rectified_again(files):
    _, _, raw, _, _, _ = files
    choice = choose_conditioning(EMG(np.abs(raw), RATE))
    assert choice.chain == "envelope"
    assert "never negative: taken for rectified EMG" in choice.reason
    assert choice.settings["highpass"] is None and choice.settings["rectify"] is False


def test_bad_conditioning_is_refused_early():
    with pytest.raises(InputError, match="conditioning must be one of"):
        AnalysisOptions(conditioning="smooth")
    with pytest.raises(InputError, match="must be one of"):
        condition_emg(EMG(np.ones((10, 2)) + np.eye(10, 2), RATE), chain="smooth")
    assert AnalysisOptions(conditioning="envelope").conditioning["chain"] == "envelope"


def test_envelope_results_validate_and_pass_the_dandi_inspection(analysed):
    from nwbinspector import Importance, inspect_nwbfile, load_config
    from pynwb import validate

    path = str(analysed[1].output)
    assert validate(path=path) == []
    critical = [
        m
        for m in inspect_nwbfile(path, config=load_config("dandi"))
        if m.importance == Importance.CRITICAL
    ]
    assert critical == [], [m.message for m in critical]
