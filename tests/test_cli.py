"""The ``nwb-synergy`` command: every error path, exit codes, help, and the demo end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from cli_helpers import one_error_line, run

from nwb_synergy.cli import EXIT_EXISTS, EXIT_INPUT, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, main
from nwb_synergy.testing.mock_files import (
    add_emg,
    make_truth,
    mock_emg_nwbfile,
    mock_nwbfile,
    write_nwbfile,
)

ROOT = Path(__file__).resolve().parents[1]
SUBCOMMANDS = ("demo", "extract", "sta", "analyze", "report", "convert-walking")


@pytest.fixture(scope="module")
def emg_file(tmp_path_factory) -> Path:
    """A small NWB file: 2-D int16 EMG of 6 muscles (20 s at 2034.5 Hz), no Units."""
    nwbfile, _ = mock_emg_nwbfile("2d", units_where=None, n_times=40000)
    return write_nwbfile(nwbfile, tmp_path_factory.mktemp("cli") / "emg.nwb")


# -- help and usage -------------------------------------------------------------------------


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_of_each_subcommand(command, capsys):
    code, out, _ = run([command, "--help"], capsys)
    assert code == EXIT_OK
    assert out.startswith(f"usage: nwb-synergy {command}")
    assert "--quiet" in out and "--debug" in out


def test_top_level_help_lists_commands_and_exit_codes(capsys):
    code, out, _ = run(["--help"], capsys)
    assert code == EXIT_OK
    for command in SUBCOMMANDS:
        assert command in out
    assert "3 results exist" in out
    assert "130 interrupted" in " ".join(out.split())


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["extract"],
        ["extract", "x.nwb", "--n-synergies", "0"],
        ["extract", "x.nwb", "--method", "pca"],
        ["analyze", "x.nwb", "--quiet", "--verbose"],
        ["analyze", "x.nwb", "--l1", "-1"],
        ["extract", "x.nwb", "--bootstrap", "many"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    code, _, err = run(argv, capsys)
    assert code == EXIT_USAGE
    assert "usage: nwb-synergy" in err


# -- bad input: one clear line, exit code 1 -------------------------------------------------


def test_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.nwb"
    code, out, err = run(["analyze", missing], capsys)
    assert code == EXIT_INPUT
    line = one_error_line(err)
    assert str(missing) in line and "not found" in line
    assert out == ""


def test_not_nwb_text_file(tmp_path, capsys):
    path = tmp_path / "notes.nwb"
    path.write_text("this is not an NWB file\n")
    code, _, err = run(["extract", path], capsys)
    assert code == EXIT_INPUT
    line = one_error_line(err)
    assert str(path) in line and "not an NWB file" in line


def test_hdf5_but_not_nwb(tmp_path, capsys):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(3)
    code, _, err = run(["sta", path], capsys)
    assert code == EXIT_INPUT
    assert "not an NWB file" in one_error_line(err)


def test_no_emg(tmp_path, capsys):
    nwbfile = mock_nwbfile()
    path = write_nwbfile(nwbfile, tmp_path / "empty.nwb")
    code, _, err = run(["analyze", path], capsys)
    assert code == EXIT_INPUT
    line = one_error_line(err)
    assert str(path) in line and "EMG" in line


def test_ambiguous_emg_names_candidates_and_emg_option_resolves_it(tmp_path, capsys):
    truth = make_truth(n_times=40000)
    nwbfile = mock_nwbfile()
    add_emg(nwbfile, truth, "2d", name="EMG")
    add_emg(nwbfile, truth, "2d", name="EMG_copy")
    path = write_nwbfile(nwbfile, tmp_path / "two.nwb")
    code, _, err = run(["extract", path, "-o", tmp_path / "out.nwb", "-q"], capsys)
    assert code == EXIT_INPUT
    line = one_error_line(err)
    assert "ambiguous" in line and "EMG_copy" in line
    code, _, err = run(
        [
            "extract",
            path,
            "-o",
            tmp_path / "out.nwb",
            "-q",
            "--emg",
            "EMG_copy",
            "--n-synergies",
            "2",
        ],
        capsys,
    )
    assert code == EXIT_OK, err


def test_sta_on_a_file_without_units(emg_file, tmp_path, capsys):
    code, _, err = run(["sta", emg_file, "-o", tmp_path / "o.nwb"], capsys)
    assert code == EXIT_INPUT
    assert "Units" in one_error_line(err)
    assert not (tmp_path / "o.nwb").exists()


def test_k_larger_than_muscles(emg_file, tmp_path, capsys):
    code, _, err = run(
        ["extract", emg_file, "-o", tmp_path / "o.nwb", "--n-synergies", "9"], capsys
    )
    assert code == EXIT_INPUT
    line = one_error_line(err)
    assert "9" in line and "6 muscles" in line


def test_report_on_file_without_results(emg_file, tmp_path, capsys):
    code, _, err = run(["report", emg_file, "--out", tmp_path / "figs"], capsys)
    assert code == EXIT_INPUT
    assert "no results" in one_error_line(err)


def test_convert_walking_missing_folder(tmp_path, capsys):
    code, _, err = run(["convert-walking", tmp_path / "absent", "-o", tmp_path / "w.nwb"], capsys)
    assert code == EXIT_INPUT
    assert "folder not found" in one_error_line(err)


def test_debug_prints_the_traceback(tmp_path, capsys):
    code, _, err = run(["analyze", tmp_path / "nope.nwb", "--debug"], capsys)
    assert code == EXIT_INPUT
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("nwb-synergy: error: ")


def test_unexpected_error_exit_4(monkeypatch, emg_file, capsys):
    import nwb_synergy.pipeline as pipeline

    def boom(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(pipeline, "analyze_session", boom)
    code, _, err = run(["analyze", emg_file], capsys)
    assert code == EXIT_INTERNAL
    line = one_error_line(err)
    assert "RuntimeError: simulated bug" in line and "--debug" in line


# -- results exist: exit code 3, never duplicated -------------------------------------------


def test_results_exist_in_place_then_overwrite(tmp_path, capsys):
    nwbfile, _ = mock_emg_nwbfile("2d", units_where=None, n_times=40000)
    path = write_nwbfile(nwbfile, tmp_path / "s.nwb")
    argv = ["extract", path, "--n-synergies", "2", "-q"]
    assert run(argv, capsys)[0] == EXIT_OK
    before = path.read_bytes()
    code, _, err = run(argv, capsys)
    assert code == EXIT_EXISTS
    line = one_error_line(err)
    assert "MuscleSynergyNMF" in line and "--overwrite" in line
    assert path.read_bytes() == before  # refused before touching the file
    assert run([*argv, "--overwrite"], capsys)[0] == EXIT_OK
    with h5py.File(path, "r") as f:
        names = sorted(f["processing/behavior"].keys())
    assert names == ["MuscleSynergyNMF", "SynergyActivationNMF"]


def test_output_exists(emg_file, tmp_path, capsys):
    out = tmp_path / "exists.nwb"
    out.write_bytes(b"x")
    code, _, err = run(["extract", emg_file, "-o", out, "--n-synergies", "2"], capsys)
    assert code == EXIT_EXISTS
    assert "--overwrite" in one_error_line(err)
    assert out.read_bytes() == b"x"


# -- the console entry points ---------------------------------------------------------------


def test_python_dash_m_runs_the_cli():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "nwb_synergy", "sta", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: nwb-synergy sta")


# -- real data ------------------------------------------------------------------------------


@pytest.mark.realdata
def test_convert_walking_real_trial(walking_dir, tmp_path, capsys):
    from pynwb import NWBHDF5IO, validate

    from nwb_synergy.io.read import read_emg

    out = tmp_path / "walking.nwb"
    code, stdout, err = run(["convert-walking", walking_dir, "-o", out], capsys)
    assert code == EXIT_OK, err
    assert str(out) in stdout
    assert validate(path=str(out)) == []
    emg = read_emg(out)
    assert emg.muscle_names[:3] == ["ME", "MA", "FL"] and emg.n_muscles == 13
    assert emg.rate == pytest.approx(1000.0) and emg.t_start == pytest.approx(0.014)
    # int16 counts times the ADC step give the CSV's microvolts back (6 significant digits)
    first = np.loadtxt(
        walking_dir / "ID0012_TW_01_raw_emg.csv", delimiter=",", skiprows=1, max_rows=200
    )[:, 1:]
    np.testing.assert_allclose(emg.data[:200] * 1e6, first, rtol=1e-5, atol=1e-3)
    with NWBHDF5IO(str(out), "r") as io:
        nwbfile = io.read()
        cycles = nwbfile.intervals["gait_cycles"].to_dataframe()
        assert nwbfile.subject.species == "Homo sapiens"
        assert "MIT" in nwbfile.notes
    assert len(cycles) == 6 and cycles["complete"].sum() == 5
    np.testing.assert_allclose(cycles["start_time"].iloc[1], 2.448)
    code, _, err = run(["convert-walking", walking_dir, "-o", out], capsys)
    assert code == EXIT_EXISTS


# -- the demo end to end --------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """``nwb-synergy demo --fast`` run once; its folder and printed summary."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("demo")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main(["demo", "--out", str(out), "--fast"])
    return code, out, stdout.getvalue()


def test_demo_writes_files_and_compares_with_truth(demo):
    code, out, text = demo
    assert code == EXIT_OK, text
    assert (out / "session.nwb").exists() and (out / "session_results.nwb").exists()
    pngs = sorted(p.name for p in (out / "figures").glob("*.png"))
    svgs = sorted(p.name for p in (out / "figures").glob("*.svg"))
    assert "synergies.png" in pngs and "muscle_fields.png" in pngs
    assert [p[:-4] for p in pngs] == [p[:-4] for p in svgs]
    for needle in (
        "synergies, NMF",
        "synergies, RLVM",
        "match to truth, RLVM",
        "NegCps, RLVM",
        "units with effects",
        "NegCp-PSpS correspondence  p = ",
        "wall time",
    ):
        assert needle in text, text


def test_demo_files_validate_and_pass_the_dandi_inspection(demo):
    from nwbinspector import Importance, inspect_nwbfile, load_config
    from pynwb import validate

    _, out, _ = demo
    for name in ("session.nwb", "session_results.nwb"):
        path = str(out / name)
        assert validate(path=path) == []
        critical = [
            m
            for m in inspect_nwbfile(path, config=load_config("dandi"))
            if m.importance == Importance.CRITICAL
        ]
        assert critical == [], [m.message for m in critical]


def test_demo_results_open_without_nwb_synergy(demo):
    _, out, _ = demo
    code = (
        "import sys\n"
        "from pynwb import NWBHDF5IO\n"
        f"with NWBHDF5IO({str(out / 'session_results.nwb')!r}, 'r') as io:\n"
        "    f = io.read()\n"
        "    ms = f.processing['behavior']['MuscleSynergyRLVM']\n"
        "    act = f.processing['behavior']['SynergyActivationRLVM']\n"
        "    sta = f.processing['ecephys']['SpikeTriggeredAverages']\n"
        "    print(type(ms).__name__, ms['weights'].data.shape, act.muscle_synergy.name,\n"
        "          type(sta).__name__, len(sta), int(ms['negative_component'].data[:].sum()))\n"
        "assert 'nwb_synergy' not in sys.modules\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=out, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    kind, *rest = proc.stdout.split()
    assert kind == "MuscleSynergy"
    assert "MuscleSynergyRLVM" in proc.stdout and "SpikeTriggeredAverageTable" in proc.stdout


def test_second_analyze_refuses_then_replaces_without_duplicates(demo, capsys):
    _, out, _ = demo
    results = out / "session_results.nwb"

    def objects():
        with h5py.File(results, "r") as f:
            return {m: sorted(f["processing"][m]) for m in f["processing"]}

    before_objects, before_bytes = objects(), results.read_bytes()
    code, _, err = run(["analyze", results, "-q"], capsys)
    assert code == EXIT_EXISTS
    assert "results already present" in one_error_line(err)
    assert results.read_bytes() == before_bytes
    # a fixed L1 weight and no NegCp bootstrap: the same analysis in seconds, not minutes
    fast = ["--l1", "0.1", "--bootstrap", "0"]
    code, _, err = run(["analyze", results, "-q", "--overwrite", *fast], capsys)
    assert code == EXIT_OK, err
    assert objects() == before_objects


def test_extract_rlvm_alone_takes_k_from_nmf(emg_file, tmp_path, capsys):
    out = tmp_path / "rlvm.nwb"
    argv = ["extract", emg_file, "-o", out, "--method", "rlvm", "--l1", "0.1", "--bootstrap", "0"]
    code, stdout, err = run(argv, capsys)
    assert code == EXIT_OK, err
    assert "NMF chose" in stdout and "NMF not written" in stdout
    with h5py.File(out, "r") as f:
        assert sorted(f["processing/behavior"]) == ["MuscleSynergyRLVM", "SynergyActivationRLVM"]
        assert f["processing/behavior/MuscleSynergyRLVM/weights"].shape[0] == 6


def test_report_draws_the_truth_in_the_units_the_demo_scores_it(demo):
    import re

    from nwb_synergy.compare import compare_synergies
    from nwb_synergy.io.results import read_results
    from nwb_synergy.plot import _truth_in_fitted_units

    _, out, text = demo
    records = read_results(out / "session_results.nwb").synergies
    labels = {lab.lower(): lab for lab in records}
    weights = {lab: rec.weights for lab, rec in records.items()}
    drawn, note = _truth_in_fitted_units(records, weights)
    assert "conditioning scale" in note
    truth, rlvm = drawn[labels["truth"]], weights[labels["rlvm"]]
    np.testing.assert_allclose(np.linalg.norm(truth, axis=0), 1.0)
    printed = float(re.search(r"match to truth, RLVM\s+cosine ([0-9.]+)", text).group(1))
    # the figure's truth gives the cosine the summary prints; the raw truth does not
    assert compare_synergies(truth, rlvm).mean_cosine == pytest.approx(printed, abs=6e-4)
    raw = compare_synergies(weights[labels["truth"]], rlvm).mean_cosine
    assert raw < printed - 0.01
