"""Trials: analyses restricted to the intervals of a TimeIntervals table, grouped by a column."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from nwb_synergy.compare import compare_synergies
from nwb_synergy.emg import condition_emg, condition_segments, highpass_rectify_segments
from nwb_synergy.errors import InputError
from nwb_synergy.intervals import Intervals
from nwb_synergy.io.write import group_suffix
from nwb_synergy.pipeline import analyze_session
from nwb_synergy.signals import EMG
from nwb_synergy.simulate.synergies import simulate_synergies
from nwb_synergy.sta import post_spike_effects, spike_triggered_average
from nwb_synergy.testing.mock_files import add_units, mock_nwbfile, write_nwbfile
from nwb_synergy.testing.mock_files import carrier_emg as mock_carrier_emg

RATE, ENV_RATE, DURATION = 1000.0, 100.0, 80.0
N_MUSCLES = 8
NAMES = [f"m{i}" for i in range(N_MUSCLES)]
STARTS = np.arange(1.0, DURATION - 3.0, 3.5)  # 22 trials of 2 s, 1.5 s apart
STOPS = STARTS + 2.0


def unit_columns(pairs: list[list[tuple[int, float]]]) -> np.ndarray:
    """Unit-norm synergies (N_MUSCLES, K) from (muscle, weight) lists."""
    w = np.zeros((N_MUSCLES, len(pairs)))
    for k, col in enumerate(pairs):
        for m, v in col:
            w[m, k] = v
    return w / np.linalg.norm(w, axis=0)


#: synergies active in trials, between trials, and in the trials of a second condition
IN_TRIAL = unit_columns([[(0, 1), (1, 0.6)], [(2, 1), (3, 0.7)], [(1, 0.5), (4, 1), (5, 0.8)]])
BETWEEN = unit_columns([[(0, 1), (2, 1), (6, 0.8)], [(3, 0.9), (5, 1), (7, 0.7)]])
SECOND = unit_columns([[(6, 1), (7, 0.8)], [(0, 0.7), (5, 1)], [(2, 0.6), (3, 1), (4, 0.5)]])


def carrier_emg(envelope: np.ndarray, seed: int) -> np.ndarray:
    """Raw EMG (volts, RATE Hz): band-pass noise (30-300 Hz) scaled by the envelope."""
    return mock_carrier_emg(envelope, ENV_RATE, RATE, amplitude=1e-4, seed=seed)


def activations(k: int, seed: int) -> np.ndarray:
    n = int(DURATION * ENV_RATE)
    sim = simulate_synergies(
        n_muscles=N_MUSCLES, n_synergies=k, n_times=n, negative=False, random_state=seed
    )
    return sim.activations


def in_trials(times: np.ndarray, which: np.ndarray | None = None) -> np.ndarray:
    inside = np.zeros(times.size, dtype=bool)
    for i, (a, b) in enumerate(zip(STARTS, STOPS, strict=True)):
        if which is None or which[i]:
            inside |= (times >= a) & (times < b)
    return inside


def write_file(path, volts: np.ndarray, conditions=None, spikes=None, whole: bool = False):
    from pynwb import TimeSeries

    nwbfile = mock_nwbfile()
    nwbfile.add_acquisition(
        TimeSeries(
            name="EMG",
            data=(volts * 1e6).astype(np.float32),
            unit="volts",
            conversion=1e-6,
            rate=RATE,
            description="Raw EMG.\nmuscles: " + json.dumps(NAMES),
        )
    )
    if conditions is not None:
        nwbfile.add_trial_column("condition", "Task condition of the trial.")
    for i, (a, b) in enumerate(zip(STARTS, STOPS, strict=True)):
        extra = {} if conditions is None else {"condition": conditions[i]}
        nwbfile.add_trial(start_time=float(a), stop_time=float(b), **extra)
    if whole:
        table = nwbfile.create_time_intervals("session", "The whole recording, one interval.")
        table.add_row(start_time=0.0, stop_time=DURATION)
    if spikes is not None:
        add_units(nwbfile, spikes)
    return write_nwbfile(nwbfile, path)


@pytest.fixture(scope="module")
def trial_file(tmp_path_factory):
    """Trials driven by IN_TRIAL synergies, inter-trial periods by other patterns (BETWEEN)."""
    folder = tmp_path_factory.mktemp("trials")
    t = np.arange(int(DURATION * ENV_RATE)) / ENV_RATE
    acts = activations(5, seed=1)
    envelope = np.where(in_trials(t)[:, None], acts[:, :3] @ IN_TRIAL.T, acts[:, 3:] @ BETWEEN.T)
    raw = carrier_emg(envelope, seed=3)
    spikes = {0: np.sort(np.random.default_rng(5).uniform(0.5, DURATION - 0.5, 3000))}
    path = write_file(folder / "trials.nwb", raw, spikes=spikes, whole=True)
    return folder, path, raw, spikes


@pytest.fixture(scope="module")
def condition_file(tmp_path_factory):
    """Two conditions alternating over the trials, each with its own synergy set; rest between."""
    folder = tmp_path_factory.mktemp("conditions")
    t = np.arange(int(DURATION * ENV_RATE)) / ENV_RATE
    conditions = np.array(["reach", "grasp"] * len(STARTS))[: len(STARTS)]
    acts = activations(6, seed=11)
    reach = in_trials(t, conditions == "reach")[:, None]
    grasp = in_trials(t, conditions == "grasp")[:, None]
    envelope = (
        reach * (acts[:, :3] @ IN_TRIAL.T) + grasp * (acts[:, 3:] @ SECOND.T) + 0.01
    )  # a little tonic activity at rest
    raw = carrier_emg(envelope, seed=13)
    return folder, write_file(folder / "conditions.nwb", raw, conditions=conditions)


def test_in_trial_synergies_are_recovered_only_with_intervals(trial_file):
    folder, path, _, _ = trial_file
    options = {"methods": ("nmf",), "sta": False, "progress": False, "overwrite": True}
    whole = analyze_session(path, folder / "whole.nwb", **options)
    trials = analyze_session(path, folder / "in_trials.nwb", intervals="trials", **options)
    w_whole, w_trials = whole.models["nmf"].weights_, trials.models["nmf"].weights_
    # whole recording: the inter-trial patterns are among the synergies
    assert compare_synergies(BETWEEN, w_whole).cosine.min() > 0.9  # measured 0.96
    # trials only: exactly the in-trial synergies, and nothing like the inter-trial ones
    assert w_trials.shape[1] == 3
    assert compare_synergies(IN_TRIAL, w_trials).cosine.min() > 0.97  # measured 0.987
    assert compare_synergies(BETWEEN, w_trials).cosine.max() < 0.7  # measured 0.58
    assert "restricted to the 22 intervals of 'trials' (44.0 s)" in trials.summary_text()


def test_activations_keep_their_times_and_are_zero_between_trials(trial_file):
    folder, path, _, _ = trial_file
    results = analyze_session(
        path,
        folder / "times.nwb",
        methods=("nmf",),
        sta=False,
        intervals="trials",
        progress=False,
        overwrite=True,
    )
    from pynwb import NWBHDF5IO

    segments = results.synergies.segments
    assert segments.n_segments == 22
    with NWBHDF5IO(str(results.output), "r") as io:
        nwbfile = io.read()
        act = nwbfile.processing["behavior"]["SynergyActivationNMF"]
        data, rate, t0 = act.data[:], act.rate, act.starting_time
        table = nwbfile.processing["behavior"]["MuscleSynergyNMF"]
        description = table.description
        vaf = table.variance_accounted_for[:]
    assert rate == 100.0 and t0 == pytest.approx(STARTS[0])
    times = t0 + np.arange(len(data)) / rate
    inside = in_trials(times)
    model = results.models["nmf"]
    assert np.allclose(data[inside], model.activations_, atol=1e-6 * model.activations_.max())
    assert np.all(data[~inside] == 0)
    # each synergy's VAF is that of the trials' samples alone (the gaps do not count)
    x = results.envelope.data
    for k in range(len(vaf)):
        residual = x - np.outer(model.activations_[:, k], model.weights_[:, k])
        assert vaf[k] == pytest.approx(1 - np.sum(residual**2) / np.sum(x**2), rel=1e-6)
    assert "the 22 intervals of table 'trials' (44.0 s)" in description
    assert "set to 0 outside those intervals" in description


def test_one_interval_covering_the_recording_gives_todays_results(trial_file):
    folder, path, _, _ = trial_file
    options = {"methods": ("nmf",), "sta": False, "progress": False, "overwrite": True}
    today = analyze_session(path, folder / "today.nwb", **options)
    session = analyze_session(path, folder / "session.nwb", intervals="session", **options)
    assert np.array_equal(today.envelope.data, session.envelope.data)
    assert np.allclose(today.models["nmf"].weights_, session.models["nmf"].weights_)


def test_filters_run_per_segment_and_nothing_leaks_across_joins():
    rng = np.random.default_rng(0)
    n = 20_000
    x = rng.standard_normal((n, 3)) * 1e-4
    intervals = Intervals([2.0, 9.0, 14.5], [6.0, 12.0, 18.0], name="trials")
    corrupted = x.copy()
    outside = np.ones(n, dtype=bool)
    for a, b in intervals.as_array():
        outside[int(a * RATE) : int(b * RATE)] = False
    corrupted[outside] = 1.0  # a huge artefact everywhere between the intervals
    settings = {"subtract_min": False, "normalize": None}
    clean = condition_segments(EMG(x, RATE), intervals, **settings)
    dirty = condition_segments(EMG(corrupted, RATE), intervals, **settings)
    assert np.array_equal(clean.emg.data, dirty.emg.data)
    # each segment is exactly today's chain run on that segment alone
    for j, (a, b) in enumerate(intervals.as_array()):
        alone = condition_emg(EMG(x[int(a * RATE) : int(b * RATE)], RATE, t_start=a), **settings)
        rows = slice(clean.bounds[j], clean.bounds[j + 1])
        assert np.array_equal(clean.emg.data[rows], alone.data)
        assert np.allclose(clean.times[rows], alone.times)


def test_the_lazy_segment_high_pass_equals_the_eager_one():
    x = np.random.default_rng(4).standard_normal((20_000, 2))
    spans = np.array([[1.0, 6.0], [8.0, 8.02], [9.0, 19.0]])  # the middle one is too short
    eager, used = highpass_rectify_segments(EMG(x, RATE), spans)
    lazy, used_lazy = highpass_rectify_segments(EMG(x, RATE), spans, lazy=True)
    np.testing.assert_allclose(used, [[1.0, 5.999], [9.0, 18.999]])
    assert np.array_equal(used, used_lazy)
    scale = np.abs(eager.data).max()
    for rows in (slice(0, 20_000), slice(5_990, 9_010), slice(12_000, 12_050)):
        np.testing.assert_allclose(lazy.data[rows], eager.data[rows], rtol=0, atol=1e-12 * scale)
    assert not np.any(eager.data[8_000:8_020])  # a segment too short is left at 0


def test_a_segment_too_short_for_the_filters_is_refused_by_name():
    x = np.random.default_rng(1).standard_normal((10_000, 2))
    intervals = Intervals([1.0, 5.0], [4.0, 5.05], name="trials")
    with pytest.raises(InputError, match="too short for the filters") as err:
        condition_segments(EMG(x, RATE), intervals)
    text = str(err.value)
    assert "intervals/trials" in text and "5.000-5.050 s" in text and "at least" in text


def spike_windows_inside(spikes, intervals, window, rate, n_times):
    """Brute force: start sample of each spike whose window lies inside one interval."""
    n_lags = int(np.ceil((window[1] - window[0]) * rate))
    starts = []
    for t in spikes:
        first = int(np.floor((t + window[0]) * rate))
        last = first + n_lags - 1
        if first < 0 or last >= n_times:
            continue
        for a, b in intervals:
            if a <= t + window[0] and t + window[1] <= b and a <= first / rate and last / rate <= b:
                starts.append(first)
                break
    return np.asarray(starts), n_lags


def test_sta_uses_only_spikes_whose_whole_window_lies_inside_an_interval():
    rng = np.random.default_rng(2)
    rate, n = 2000.0, 60_000
    emg = np.abs(rng.standard_normal((n, 3)))
    spikes = np.sort(rng.uniform(0.0, n / rate, 1500))
    spans = np.array([[1.0, 8.0], [10.0, 17.5], [20.0, 29.0]])
    window = (-0.03, 0.05)
    starts, n_lags = spike_windows_inside(spikes, spans, window, rate, n)
    res = spike_triggered_average(
        emg, spikes, rate, window, intervals=spans, baseline="isa", keep_sweeps=False
    )
    assert res.n_used == len(starts) and res.n_unused == len(spikes) - len(starts)
    expected = np.mean([emg[s : s + n_lags] for s in starts], axis=0)
    assert np.allclose(res.mean, expected, rtol=1e-12)
    # nothing outside the intervals is read: a huge artefact there changes nothing, the ISA
    # (shifted windows) and the per-spike effect statistics included
    dirty = emg.copy()
    t = np.arange(n) / rate
    out = np.ones(n, dtype=bool)
    for a, b in spans:
        out[(t >= a) & (t <= b)] = False
    dirty[out] = 1e3
    res_dirty = spike_triggered_average(
        dirty, spikes, rate, window, intervals=spans, baseline="isa", keep_sweeps=False
    )
    assert np.array_equal(res.mean, res_dirty.mean)
    assert np.array_equal(res.isa, res_dirty.isa) and res.isa_n_used < res.n_used
    effects = post_spike_effects(res, fragment_size=100)
    effects_dirty = post_spike_effects(res_dirty, fragment_size=100)
    assert np.allclose(effects["p_value"], effects_dirty["p_value"], equal_nan=True)
    assert np.allclose(effects["mpi"], effects_dirty["mpi"], equal_nan=True)
    assert res.parameters["intervals"] == spans.tolist()


def test_a_unit_without_spikes_is_said_to_have_none():
    emg = np.abs(np.random.default_rng(3).standard_normal((4000, 2)))
    with pytest.warns(RuntimeWarning, match="the unit has no spike at all"):
        spike_triggered_average(emg, {7: np.array([])}, 1000.0)
    with pytest.warns(RuntimeWarning, match="no spike window lies wholly inside the intervals"):
        spike_triggered_average(emg, {7: np.array([0.5])}, 1000.0, intervals=[[1.0, 3.0]])


def test_pipeline_sta_with_intervals_counts_only_spikes_inside(trial_file):
    folder, path, raw, spikes = trial_file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # too few spikes for some fragments
        results = analyze_session(
            path,
            folder / "sta.nwb",
            methods=(),
            intervals="trials",
            progress=False,
            overwrite=True,
            n_permutations=100,
        )
    sta = results.stas[0]
    # each trial is one segment: its last sample closes the span a window may read
    spans = np.column_stack([STARTS, STOPS - 1.0 / RATE])
    starts, _ = spike_windows_inside(spikes[0], spans, (-0.03, 0.05), RATE, len(raw))
    assert sta.n_used == len(starts) > 500
    assert sta.n_unused == len(spikes[0]) - len(starts)


@pytest.fixture(scope="module")
def grouped(condition_file):
    folder, path = condition_file
    return analyze_session(
        path,
        folder / "groups.nwb",
        methods=("nmf",),
        sta=False,
        intervals="trials",
        group_by="condition",
        progress=False,
        overwrite=True,
    )


def test_two_conditions_are_each_recovered_with_group_by(grouped):
    results = grouped
    groups = results.groups
    assert list(groups.groups) == ["grasp", "reach"]
    reach = groups.groups["reach"].models["nmf"].weights_
    grasp = groups.groups["grasp"].models["nmf"].weights_
    assert compare_synergies(IN_TRIAL, reach).cosine.min() > 0.94  # measured 0.959
    assert compare_synergies(SECOND, grasp).cosine.min() > 0.95  # measured 0.977
    (row,) = groups.comparison
    assert row["group_a"] == "grasp" and row["group_b"] == "reach"
    truth = compare_synergies(SECOND, IN_TRIAL).mean_cosine
    assert row["matched_cosine"] == pytest.approx(truth, abs=0.1)
    assert row["matched_cosine"] < 0.6  # measured 0.458 (truth: 0.444)
    text = results.summary_text()
    assert "groups by 'condition' of 'trials':" in text and "reach: 11 intervals" in text

    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(results.output), "r") as io:
        behavior = io.read().processing["behavior"]
        for value in ("reach", "grasp"):
            table = behavior[f"MuscleSynergyNMF_{value}"]
            assert f"SynergyActivationNMF_{value}" in behavior.data_interfaces
            assert f"table 'trials' whose column 'condition' is '{value}'" in table.description
            context = json.loads(table.provenance)["analysis_context"]["group"]
            assert (context["table"], context["column"], context["value"]) == (
                "trials",
                "condition",
                value,
            )
        comparison = behavior["SynergyGroupComparison"].to_dataframe()
        assert comparison["matched_cosine"].tolist() == [row["matched_cosine"]]
        assert "MuscleSynergyNMF" in behavior.data_interfaces  # the pooled fit too


def test_group_results_validate_and_pass_the_dandi_inspection(grouped):
    from nwbinspector import Importance, inspect_nwbfile, load_config
    from pynwb import validate

    path = grouped.output
    assert validate(path=str(path)) == []
    critical = [
        m
        for m in inspect_nwbfile(str(path), config=load_config("dandi"))
        if m.importance == Importance.CRITICAL
    ]
    assert critical == [], [m.message for m in critical]


def test_missing_tables_and_columns_are_named_with_what_exists(condition_file):
    folder, path = condition_file
    options = {"methods": ("nmf",), "sta": False, "progress": False}
    missing_table = r"no TimeIntervals table named 'reaches'; the file has: intervals/trials"
    with pytest.raises(InputError, match=missing_table):
        analyze_session(path, folder / "x.nwb", intervals="reaches", **options)
    missing_column = "no column 'direction' to group by; the table has: condition"
    with pytest.raises(InputError, match=missing_column):
        analyze_session(path, folder / "x.nwb", intervals="trials", group_by="direction", **options)
    with pytest.raises(InputError, match="give intervals"):
        analyze_session(path, folder / "x.nwb", group_by="condition", **options)
    assert not (folder / "x.nwb").exists()


def test_group_values_become_valid_object_names():
    assert group_suffix("nmf", "reach") == "NMF_reach"
    assert group_suffix("rlvm", "left/up 45°") == "RLVM_left_up_45"
    assert group_suffix("nmf", 2.0) == "NMF_2.0"


def test_figures_of_groups_are_drawn_apart_and_say_what_they_show(grouped, tmp_path):
    from nwb_synergy.io.intervals import read_contexts
    from nwb_synergy.plot import context_title, report

    contexts = read_contexts(grouped.output)
    assert context_title(contexts["NMF"]) == "22 intervals of trials"
    assert context_title(contexts["NMF_reach"]) == "trials with condition = reach (11 intervals)"
    np.testing.assert_allclose(contexts["NMF_grasp"]["group"]["starts"], STARTS[1::2])
    names = {p.name for p in report(grouped.output, tmp_path, formats=("png",))}
    for value in ("reach", "grasp"):
        assert {f"synergies_condition_{value}.png", f"activations_condition_{value}.png"} <= names
    assert {"synergies.png", "activations.png"} <= names


def test_command_line_flags_reach_the_analysis(condition_file, capsys):
    from nwb_synergy.cli import main

    folder, path = condition_file
    out = folder / "cli.nwb"
    args = ["extract", str(path), "-o", str(out), "--method", "nmf", "--n-synergies", "3"]
    args += ["--intervals", "trials", "--group-by", "condition", "--conditioning", "raw"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "conditioning: raw chain (high-pass, rectify, low-pass, resample), as asked" in text
    assert "restricted to the 22 intervals of 'trials'" in text
    assert "NMF grasp vs reach: matched cosine" in text
    assert "MuscleSynergyNMF_reach" in text and "SynergyGroupComparison" in text
    # STAs alone take --intervals but not --group-by (synergies only): a usage error
    assert main(["sta", str(path), "--group-by", "condition"]) == 2
