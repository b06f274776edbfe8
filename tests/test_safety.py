"""Nothing lost, nothing misleading: plain failures exit 1 in one line, bad input is refused
early and by name, files and links are updated safely, one writer at a time, no leftovers,
no raw escape codes on the terminal, and Ctrl-C stops a run."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import multiprocessing
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

import filelock  # noqa: F401 - imported before any privilege drop (see _unprivileged)
import h5py
import numpy as np
import pytest
from cli_helpers import one_error_line, run
from pynwb import NWBHDF5IO, TimeSeries
from pynwb.misc import Units

import nwb_synergy.emg  # noqa: F401 - imported before any privilege drop
import nwb_synergy.io.write  # noqa: F401
import nwb_synergy.pipeline  # noqa: F401
from nwb_synergy import cli
from nwb_synergy.cli import EXIT_INPUT, EXIT_INTERRUPTED, EXIT_OK, main
from nwb_synergy.errors import InputError, OutputError
from nwb_synergy.io import save
from nwb_synergy.io.guards import json_depth, load_json, read_array
from nwb_synergy.io.read import read_emg
from nwb_synergy.io.save import edit_nwb
from nwb_synergy.io.units import find_units, read_spike_trains
from nwb_synergy.signals import EMG
from nwb_synergy.testing.mock_files import (
    add_units,
    make_truth,
    mock_emg_nwbfile,
    mock_nwbfile,
    write_nwbfile,
)
from nwb_synergy.text import printable, safe_filename

ROOT = Path(__file__).resolve().parents[1]
NOBODY = 65534


def small_emg_file(path: Path, **kwargs) -> Path:
    """2-D int16 EMG of 6 named muscles, 2 s at 2034.5 Hz (fast to factorize)."""
    kwargs.setdefault("units_where", None)
    nwbfile, _ = mock_emg_nwbfile("2d", n_times=4000, **kwargs)
    return write_nwbfile(nwbfile, path)


def named_emg_file(path: Path, name: str, description: str, n_muscles: int, n_times: int) -> Path:
    """A file whose EMG series and description are given as they are (hostile names)."""
    truth = make_truth(n_times=n_times, n_muscles=n_muscles)
    nwbfile = mock_nwbfile()
    nwbfile.add_acquisition(
        TimeSeries(
            name=name,
            data=truth.raw,
            unit="V",
            conversion=truth.conversion,
            rate=truth.rate,
            description=description,
        )
    )
    return write_nwbfile(nwbfile, path)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp.nwb"))


def processing_names(path: Path) -> set[str]:
    with h5py.File(path, "r") as f:
        return set(f["processing"].keys()) if "processing" in f else set()


@pytest.fixture
def shared_dir():
    """A folder every user can read (tests dropping root privileges need one)."""
    folder = Path(tempfile.mkdtemp(prefix="nwb_synergy_safety_"))
    folder.chmod(0o755)
    yield folder
    for sub in folder.rglob("*"):
        if sub.is_dir():
            sub.chmod(0o755)
    shutil.rmtree(folder, ignore_errors=True)


def _unprivileged(func, *args):
    """Run ``func(*args)`` as a user that file permissions bind (root is not bound by them).

    As root, in a forked child that has dropped to ``nobody`` (every module it needs is
    imported above, before the drop); otherwise directly. Returns what ``func`` returns.
    """
    if os.geteuid() != 0:
        return func(*args)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()

    def child():
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            queue.put(("ok", func(*args)))
        except BaseException as err:  # noqa: BLE001 - reported to the parent
            queue.put(("error", f"{type(err).__name__}: {err}"))

    proc = ctx.Process(target=child)
    proc.start()
    status, value = queue.get(timeout=120)
    proc.join(timeout=30)
    assert status == "ok", value
    return value


# -- plain failures: exit 1 and one line, not "unexpected" (exit 4) ----------------------------


def _devfull_temp_path(destination: Path) -> Path:
    """A temporary file that is a link to /dev/full: every write fails with ENOSPC."""
    tmp = destination.parent / f".{destination.stem}.devfull.tmp.nwb"
    os.symlink("/dev/full", tmp)
    return tmp


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_exits_1_naming_the_output_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    src = small_emg_file(tmp_path / "s.nwb")
    out = tmp_path / "out.nwb"
    monkeypatch.setattr(save, "_temp_path", _devfull_temp_path)
    code, _, err = run(
        ["extract", src, "-o", out, "--n-synergies", "2", "-q", "--copy-source"], capsys
    )
    line = one_error_line(err)
    assert code == EXIT_INPUT, line
    assert "No space left on device" in line and str(out) in line
    assert not out.exists() and leftovers(tmp_path) == []


def test_h5py_runtime_error_of_a_full_disk_exits_1(tmp_path, capsys, monkeypatch):
    import pynwb

    def disk_full(self, *args, **kwargs):  # the text h5py gives when HDF5 cannot flush
        raise RuntimeError(
            "Disable slist on flush dest failure failed (file write failed: time = Tue Dec  1 "
            f"15:49:20 2026\n, filename = '{tmp_path / '.out.x1y2z3a4.tmp.nwb'}', file "
            "descriptor = 5, errno = 28, error message = 'No space left on device', buf = "
            "0x55d5c2f1e2a0, total write size = 2048, bytes this sub-write = 2048, offset = 0)"
        )

    src = small_emg_file(tmp_path / "s.nwb")
    monkeypatch.setattr(pynwb.NWBHDF5IO, "export", disk_full)
    out = tmp_path / "out.nwb"
    code, _, err = run(
        ["extract", src, "-o", out, "--n-synergies", "2", "-q", "--copy-source"], capsys
    )
    line = one_error_line(err)
    assert code == EXIT_INPUT, line
    assert "No space left on device" in line and str(out) in line
    assert not out.exists() and leftovers(tmp_path) == []


def test_running_out_of_memory_exits_1_in_one_line(tmp_path, capsys, monkeypatch):
    import nwb_synergy.pipeline as pipeline

    def too_big(*args, **kwargs):
        raise MemoryError(
            "Unable to allocate 18.6 GiB for an array with shape (2500000000,) and data type "
            "float64"
        )

    monkeypatch.setattr(pipeline, "analyze_session", too_big)
    code, _, err = run(["analyze", tmp_path / "any.nwb"], capsys)
    line = one_error_line(err)
    assert code == EXIT_INPUT
    assert "not enough memory" in line and "18.6 GiB" in line


def _refused_before_entering(src: Path, out: Path) -> dict:
    entered = False
    try:
        with edit_nwb(src, out):
            entered = True
    except OutputError as err:
        message = str(err)
    else:
        message = ""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = main(["extract", str(src), "-o", str(out), "--n-synergies", "2", "-q"])
    return {"entered": entered, "message": message, "code": code, "stderr": stderr.getvalue()}


def test_unwritable_output_folder_is_refused_before_any_computation(shared_dir):
    src = small_emg_file(shared_dir / "s.nwb")
    src.chmod(0o644)
    locked = shared_dir / "read_only_folder"
    locked.mkdir()
    locked.chmod(0o555)
    out = locked / "out.nwb"
    result = _unprivileged(_refused_before_entering, src, out)
    assert not result["entered"]  # refused on entering, not after the computation
    assert "not writable" in result["message"] and str(locked) in result["message"]
    assert result["code"] == EXIT_INPUT
    line = one_error_line(result["stderr"])
    assert "permission denied" in line and str(out) in line
    assert list(locked.iterdir()) == []


def test_deeply_nested_json_is_refused_with_the_file_and_object():
    deep = "[" * 20000 + "]" * 20000
    with pytest.raises(RecursionError):
        json.loads(deep)  # what reading such an attribute did
    with pytest.raises(InputError) as info:
        load_json(deep, file="results.nwb", obj="processing/behavior/MuscleSynergyNMF/provenance")
    message = str(info.value)
    assert "results.nwb" in message and "MuscleSynergyNMF/provenance" in message
    assert "nested 20000 levels" in message
    text = json.dumps({"fit": {"model_order": {"k_values": [1, 2, [3, "]]]"]]}}, "a": "{"})
    assert json_depth(text) == 5
    assert load_json(text.encode(), file="f", obj="o") == json.loads(text)
    with pytest.raises(InputError, match="not valid JSON"):
        load_json("{'single': 'quotes'}", file="f", obj="o")


def test_a_dataset_declaring_20_gb_is_refused_without_allocating_it(tmp_path):
    path = tmp_path / "declared.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("big", shape=(2_500_000_000,), dtype="f8", chunks=(1 << 16,))
        f["small"] = np.arange(12.0).reshape(3, 4)
        f["scalar"] = 3.5
    assert path.stat().st_size < 100_000  # 20 GB declared, nothing stored
    with h5py.File(path, "r") as f:
        tracemalloc.start()
        try:
            with pytest.raises(InputError) as info:
                read_array(f["big"], file=path, obj="processing/behavior/Act/data")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        np.testing.assert_array_equal(
            read_array(f["small"], file=path, obj="small"), f["small"][()]
        )
        assert read_array(f["scalar"], file=path, obj="scalar") == 3.5
    message = str(info.value)
    assert str(path) in message and "processing/behavior/Act/data" in message
    assert "20 GB" in message and "(2500000000,)" in message
    assert peak < 1_000_000


def _results_file(tmp_path: Path, capsys) -> Path:
    src = small_emg_file(tmp_path / "s.nwb")
    out = tmp_path / "results.nwb"
    assert run(["extract", src, "-o", out, "--n-synergies", "2", "-q"], capsys)[0] == EXIT_OK
    return out


def test_report_on_deeply_nested_provenance_exits_1_naming_it(tmp_path, capsys):
    path = _results_file(tmp_path, capsys)
    with h5py.File(path, "a") as f:
        f["processing/behavior/MuscleSynergyNMF"].attrs["provenance"] = "[" * 20000 + "]" * 20000
    code, _, err = run(["report", path, "--out", tmp_path / "figs"], capsys)
    line = one_error_line(err)
    assert code == EXIT_INPUT
    assert str(path) in line and "MuscleSynergyNMF" in line and "nested" in line


def test_report_on_a_dataset_declaring_a_petabyte_exits_1_naming_it(tmp_path, capsys):
    path = _results_file(tmp_path, capsys)
    with h5py.File(path, "a") as f:
        group = f["processing/behavior/SynergyActivationNMF"]
        attrs = dict(group["data"].attrs)
        del group["data"]
        data = group.create_dataset("data", shape=(2**46, 2), dtype="f8", chunks=(1 << 12, 2))
        for key, value in attrs.items():
            data.attrs[key] = value
    code, _, err = run(["report", path, "--out", tmp_path / "figs"], capsys)
    line = one_error_line(err)
    assert code == EXIT_INPUT
    assert str(path) in line and "SynergyActivationNMF" in line and "declares" in line


# -- refused early: before the first fit --------------------------------------------------------


def test_duplicate_muscle_names_are_refused_by_read_emg(tmp_path):
    path = named_emg_file(tmp_path / "dup.nwb", "EMG", "EMG of 3 muscles: FDS, ECR, FDS", 3, 500)
    with pytest.raises(InputError) as info:
        read_emg(path)
    message = str(info.value)
    assert str(path) in message and "acquisition/EMG" in message
    assert "'FDS' names channels 0 and 2" in message
    with pytest.raises(InputError, match="'ECR' names channels 1 and 2"):
        read_emg(path, muscle_names=["FDS", "ECR", "ECR"])
    assert read_emg(path, muscle_names=["A", "B", "C"]).muscle_names == ["A", "B", "C"]


def test_find_units_returns_the_one_table_wherever_it_is():
    nwbfile, truth = mock_emg_nwbfile("2d", n_times=100, units_where="ecephys")
    table = find_units(nwbfile)
    assert table is nwbfile.processing["ecephys"]["Units"]
    assert sorted(int(i) for i in table.id.data) == sorted(truth.spike_times)
    nwbfile.units = Units(name="units", description="empty root table")  # no rows: ignored
    assert find_units(nwbfile) is table
    assert find_units(mock_emg_nwbfile("2d", n_times=100, units_where=None)[0]) is None


def test_two_units_tables_and_units_without_spike_times_are_refused_by_name():
    nwbfile, _ = mock_emg_nwbfile("2d", n_times=100, units_where="root")
    add_units(nwbfile, {1: np.array([0.5])}, where="ecephys")
    with pytest.raises(InputError) as info:
        find_units(nwbfile, file="two.nwb")
    message = str(info.value)
    assert "two.nwb" in message and "units, processing/ecephys/Units" in message
    with pytest.raises(InputError, match="ambiguous Units"):
        read_spike_trains(nwbfile)

    nwbfile, _ = mock_emg_nwbfile("2d", n_times=100, units_where=None)
    nwbfile.units = Units(name="units", description="sorted units without spike times")
    nwbfile.units.add_unit(obs_intervals=[[0.0, 1.0]], id=5)
    with pytest.raises(InputError) as info:
        find_units(nwbfile, file="nospikes.nwb")
    message = str(info.value)
    assert "nospikes.nwb" in message and "object 'units'" in message
    assert "no spike_times column" in message and "obs_intervals" in message


@pytest.mark.parametrize("problem", ["two tables", "no spike_times"])
def test_analyze_refuses_bad_units_before_fitting(problem, tmp_path, capsys, monkeypatch):
    from nwb_synergy.factorize.nmf import NMF

    nwbfile, truth = mock_emg_nwbfile("2d", n_times=4000, units_where=None)
    if problem == "two tables":
        add_units(nwbfile, truth.spike_times, where="root")
        add_units(nwbfile, {1: np.array([13.0])}, where="ecephys")
    else:
        nwbfile.units = Units(name="units", description="no spike times")
        nwbfile.units.add_unit(obs_intervals=[[0.0, 1.0]], id=5)
    path = write_nwbfile(nwbfile, tmp_path / "units.nwb")

    def fit(*args, **kwargs):
        raise AssertionError("synergies fitted before the Units were checked")

    monkeypatch.setattr(NMF, "fit", fit)
    code, _, err = run(["analyze", path, "-o", tmp_path / "out.nwb", "-q"], capsys)
    line = one_error_line(err)
    assert code == EXIT_INPUT, line
    assert str(path) in line and ("ambiguous Units" in line or "spike_times" in line)


# -- silent garbage: refused by name ------------------------------------------------------------


def _emg_file(tmp_path: Path, name: str, data, **series_kwargs) -> Path:
    nwbfile = mock_nwbfile()
    series_kwargs.setdefault("rate", 1000.0)
    nwbfile.add_acquisition(
        TimeSeries(
            name="EMG", data=data, unit="V", description="muscles: FDS, ECR, EDC", **series_kwargs
        )
    )
    return write_nwbfile(nwbfile, tmp_path / name)


def test_complex_emg_is_refused_not_truncated_to_its_real_part(tmp_path):
    path = _emg_file(tmp_path, "complex.nwb", np.ones((200, 3)))
    with h5py.File(path, "a") as f:  # pynwb cannot write complex data; h5py can
        group = f["acquisition/EMG"]
        attrs = dict(group["data"].attrs)
        del group["data"]
        group.create_dataset("data", data=np.ones((200, 3)) * (1 + 2j))
        for key, value in attrs.items():
            group["data"].attrs[key] = value
    for source in (path, None):
        if source is None:  # the same data in an NWBFile built in memory
            nwbfile = mock_nwbfile()
            nwbfile.add_acquisition(
                TimeSeries(name="EMG", data=np.ones((200, 3)) * 1j, unit="V", rate=1000.0)
            )
            source = nwbfile
        with pytest.raises(InputError) as info:
            read_emg(source)
        assert "acquisition/EMG" in str(info.value) and "complex" in str(info.value)
    assert str(path) in str(pytest.raises(InputError, read_emg, path).value)
    with pytest.raises(InputError, match="complex"):
        EMG(np.ones((10, 2), dtype=complex), rate=100.0)


def test_nan_starting_time_is_refused(tmp_path):
    path = _emg_file(tmp_path, "nan.nwb", np.ones((200, 3)), starting_time=float("nan"))
    with pytest.raises(InputError) as info:
        read_emg(path)
    message = str(info.value)
    assert (
        str(path) in message and "acquisition/EMG" in message and "starting_time is nan" in message
    )
    with pytest.raises(InputError, match="start time"):
        EMG(np.ones((10, 2)), rate=100.0, t_start=float("inf"))


def test_text_samples_are_refused_by_name_not_with_a_type_error(tmp_path):
    path = _emg_file(tmp_path, "text.nwb", np.array([["a", "b", "c"]] * 50))
    with pytest.raises(InputError) as info:
        read_emg(path)
    message = str(info.value)
    assert str(path) in message and "acquisition/EMG" in message and "text" in message


def test_a_zero_channel_dataset_says_it_has_no_channels(tmp_path):
    path = _emg_file(tmp_path, "zero.nwb", np.ones((200, 0)))
    with pytest.raises(InputError) as info:
        read_emg(path)
    message = str(info.value)
    assert str(path) in message and "acquisition/EMG" in message
    assert "no channels" in message and "(200, 0)" in message and "1-D" not in message


def test_one_muscle_is_refused_by_name_when_synergies_need_two(tmp_path):
    truth = make_truth(n_times=500, n_muscles=1)
    nwbfile = mock_nwbfile()
    nwbfile.add_acquisition(
        TimeSeries(
            name="EMG_FDS", data=truth.raw[:, 0], unit="V", rate=truth.rate, description="EMG"
        )
    )
    path = write_nwbfile(nwbfile, tmp_path / "one.nwb")
    assert read_emg(path).muscle_names == ["FDS"]  # fine for spike-triggered averages
    with pytest.raises(InputError) as info:
        read_emg(path, min_muscles=2)
    message = str(info.value)
    assert str(path) in message and "acquisition" in message
    assert "only 1 EMG channel ('FDS')" in message and "at least 2 muscles" in message


def test_extract_on_one_muscle_names_the_file_and_the_muscle(tmp_path, capsys):
    truth = make_truth(n_times=4000, n_muscles=1)
    nwbfile = mock_nwbfile()
    nwbfile.add_acquisition(
        TimeSeries(name="EMG_FDS", data=truth.raw[:, 0], unit="V", rate=truth.rate)
    )
    path = write_nwbfile(nwbfile, tmp_path / "one.nwb")
    code, _, err = run(["extract", path, "-o", tmp_path / "out.nwb"], capsys)
    line = one_error_line(err)
    assert code == EXIT_INPUT
    assert str(path) in line and "'FDS'" in line and "at least 2 muscles" in line


def test_two_units_with_the_same_id_are_refused(tmp_path):
    nwbfile, _ = mock_emg_nwbfile("2d", n_times=100, units_where=None)
    nwbfile.units = Units(name="units", description="a unit id repeated")
    for uid, times in ((3, [0.1, 0.2]), (7, [0.3]), (3, [0.5])):
        nwbfile.units.add_unit(spike_times=times, id=uid)
    path = write_nwbfile(nwbfile, tmp_path / "dup_ids.nwb")
    with pytest.raises(InputError) as info:
        read_spike_trains(path)
    message = str(info.value)
    assert str(path) in message and "units/id" in message
    assert "id 3 in rows [0, 2]" in message


# -- files and links ----------------------------------------------------------------------------


def test_a_symlink_updated_in_place_stays_a_link_and_its_target_gets_the_results(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    target = small_emg_file(data / "session.nwb")
    link = tmp_path / "link.nwb"
    link.symlink_to(target)
    with edit_nwb(link) as nwbfile:
        nwbfile.create_processing_module("behavior", "results")
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert processing_names(target) == {"behavior"}
    assert leftovers(tmp_path) == [] and leftovers(data) == []


def test_a_read_only_source_is_not_replaced_unless_asked(tmp_path, capsys):
    path = small_emg_file(tmp_path / "ro.nwb")
    path.chmod(0o444)
    before = path.read_bytes()
    entered = False
    with pytest.raises(InputError) as info:
        with edit_nwb(path):
            entered = True
    assert not entered and "read-only (-r--r--r--)" in str(info.value)
    code, _, err = run(["extract", path, "--n-synergies", "2", "-q"], capsys)
    assert code == EXIT_INPUT and "read-only" in one_error_line(err)
    assert path.read_bytes() == before
    with edit_nwb(path, replace_read_only=True) as nwbfile:
        nwbfile.create_processing_module("behavior", "results")
    assert processing_names(path) == {"behavior"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


def test_replace_read_only_flag_updates_a_read_only_file(tmp_path, capsys):
    path = small_emg_file(tmp_path / "ro.nwb")
    path.chmod(0o444)
    argv = ["extract", path, "--n-synergies", "2", "-q", "--replace-read-only"]
    code, _, err = run(argv, capsys)
    assert code == EXIT_OK, err
    assert processing_names(path) == {"behavior"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o444


# -- leftovers and one writer at a time ----------------------------------------------------------


def test_temporary_files_of_killed_runs_are_removed_by_the_next_write(tmp_path, caplog):
    src = small_emg_file(tmp_path / "src.nwb")
    stale = tmp_path / ".src.k3x_9q2a.tmp.nwb"
    stale.write_bytes(b"\0" * 4096)
    kept = [tmp_path / ".other.k3x_9q2a.tmp.nwb", tmp_path / ".src.NOT-OURS.tmp.nwb"]
    for path in kept:
        path.write_bytes(b"x")
    with caplog.at_level(logging.WARNING, logger="nwb_synergy"):
        with edit_nwb(src) as nwbfile:
            nwbfile.create_processing_module("behavior", "results")
    assert not stale.exists() and all(p.exists() for p in kept)
    assert "interrupted run" in caplog.text and stale.name in caplog.text
    assert processing_names(src) == {"behavior"}


def test_the_temporary_file_of_a_run_in_progress_is_left_alone(tmp_path):
    from filelock import FileLock

    src = small_emg_file(tmp_path / "src.nwb")
    busy = tmp_path / ".src.abcd1234.tmp.nwb"
    with FileLock(save._lock_path(src)):  # another run is writing src
        busy.write_bytes(b"being written")
        started = time.monotonic()
        with pytest.raises(OutputError) as info:
            with edit_nwb(src, lock_timeout=0.5):
                pass
        assert 0.4 < time.monotonic() - started < 10
    assert busy.read_bytes() == b"being written"
    assert "another run" in str(info.value) and str(src) in str(info.value)


def _add_module_while_others_run(path: str, name: str, barrier) -> None:
    barrier.wait(timeout=120)  # both processes enter edit_nwb together
    with edit_nwb(path, lock_timeout=120) as nwbfile:
        nwbfile.create_processing_module(name, f"results of run {name}")
        time.sleep(1.0)


def test_two_processes_updating_one_file_lose_nothing(tmp_path):
    path = small_emg_file(tmp_path / "shared.nwb")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_add_module_while_others_run, args=(str(path), name, barrier))
        for name in ("run_a", "run_b")
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    assert processing_names(path) == {"run_a", "run_b"}
    assert leftovers(tmp_path) == []
    with NWBHDF5IO(str(path), "r") as nwb_io:
        assert nwb_io.read().acquisition["EMG"].data.shape == (4000, 6)


# -- escape codes never reach the terminal --------------------------------------------------------


def test_printable_escapes_control_characters_and_keeps_letters():
    assert printable("EMG\x1b[2J") == "EMG\\x1b[2J"
    assert printable("a\rb\nc\td\x07\x9b") == "a\\rb\\nc\\td\\x07\\x9b"
    assert printable("FDS\u202eSDE") == "FDS\\u202eSDE"  # right-to-left override
    assert printable("Müller, α-motoneuron 3") == "Müller, α-motoneuron 3"
    message = str(InputError("no such \x1b[31mseries", file="f\x1b]0;x\x07.nwb", obj="E\rMG"))
    assert not any(ord(c) < 32 or ord(c) == 127 for c in message)
    assert "\\x1b[31m" in message and "\\x1b]0;x\\x07" in message and "E\\rMG" in message


def test_safe_filename_keeps_a_safe_alphabet_and_never_merges_two_names():
    assert safe_filename("sta_unit12") == "sta_unit12"
    names = ["EMG 1", "EMG/1", "EMG\x1b1", "../EMG1", ".EMG1", "-EMG1", "CON", "nul.png", ""]
    names += ["x" * 300, "Müller", "a\u202eb", "\udcff"]
    files = [safe_filename(n) for n in names]
    assert len(set(files)) == len(names)
    for name in files:
        assert name and set(name) <= set(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
        )
        assert not name.startswith((".", "-")) and len(name) <= 89
        assert name.split(".")[0].upper() not in ("CON", "NUL")


def test_cli_escapes_names_from_files_in_errors_and_in_the_summary(tmp_path, capsys):
    path = named_emg_file(
        tmp_path / "esc.nwb", "EMG\x1b[2J", "muscles: FDS, ECR\x1b[31m, EDC, FCU", 4, 4000
    )
    code, out, err = run(
        ["extract", path, "--emg", "X\x1b]0;pwned\x07", "-o", tmp_path / "o.nwb"], capsys
    )
    assert code == EXIT_INPUT
    line = one_error_line(err)
    assert "\x1b" not in err and "\x07" not in err and "X\\x1b]0;pwned\\x07" in line
    code, out, err = run(["extract", path, "-o", tmp_path / "o.nwb", "--n-synergies", "2"], capsys)
    assert code == EXIT_OK, err
    assert "\x1b" not in out + err and "EMG\\x1b[2J" in out


# -- interrupts ------------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_stops_analyze_within_seconds_even_when_the_shell_ignored_it(tmp_path):
    from nwb_synergy.simulate.session import simulate_session

    path = tmp_path / "session.nwb"
    simulate_session(path, duration=15.0, n_muscles=8, n_units=3, n_inhibitory=1, n_facilitatory=1)
    before = path.read_bytes()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "nwb_synergy.cli", "analyze", str(path), "-v"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as '&' in a shell script starts it: SIGINT ignored, so Python would not handle it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        log_lines = []
        for line in proc.stderr:
            log_lines.append(line)
            if "synergies ..." in line:  # the synergy step has started
                break
        assert proc.poll() is None, "".join(log_lines)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=60)
        stopped_after = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == EXIT_INTERRUPTED, err
    assert stopped_after < 20
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("nwb-synergy: error: interrupted")
    assert out == ""
    assert path.read_bytes() == before and leftovers(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_ends_a_command_with_143_and_restores_the_handler(tmp_path, capsys, monkeypatch):
    import nwb_synergy.pipeline as pipeline

    def long_analysis(*args, **kwargs):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.01)
        raise AssertionError("not terminated")

    def terminate_when_ready():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # only once our handler is there: never kill pytest
            if signal.getsignal(signal.SIGTERM) is getattr(cli, "_raise_terminated", None):
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.01)

    monkeypatch.setattr(pipeline, "analyze_session", long_analysis)
    previous = signal.getsignal(signal.SIGTERM)
    killer = threading.Thread(target=terminate_when_ready)
    killer.start()
    started = time.monotonic()
    code, out, err = run(["analyze", tmp_path / "x.nwb"], capsys)
    killer.join()
    assert code == 143 and time.monotonic() - started < 15
    assert "terminated (SIGTERM)" in one_error_line(err)
    assert signal.getsignal(signal.SIGTERM) is previous
