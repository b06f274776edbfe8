"""Results-only files: small, valid, clean for DANDI, readable alone, enough for every figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
from pynwb import NWBHDF5IO

from nwb_synergy.errors import InputError
from nwb_synergy.pipeline import analyze_session
from nwb_synergy.plot import report
from nwb_synergy.simulate.session import simulate_session

FAST = {"methods": ("nmf",), "n_synergies": 2, "n_permutations": 50, "progress": False}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """A session with 6.4 MB of raw EMG (8 muscles, 40 s at 5 kHz), analysed twice: results
    only (the default) and with --copy-source."""
    folder = tmp_path_factory.mktemp("results_only")
    source = folder / "session.nwb"
    simulate_session(
        source, n_muscles=8, n_synergies=2, n_units=3, n_inhibitory=1, n_facilitatory=1,
        duration=40.0, rate=5000.0, random_state=4,
    )  # fmt: skip
    only = analyze_session(source, folder / "results.nwb", **FAST)
    full = analyze_session(source, folder / "full.nwb", copy_source=True, **FAST)
    return source, only, full


def test_results_only_file_is_under_a_tenth_of_the_source_and_holds_no_raw_data(analysed):
    source, only, full = analysed
    size = os.path.getsize(only.output)
    assert size <= 0.10 * os.path.getsize(source), (size, os.path.getsize(source))
    assert os.path.getsize(full.output) > os.path.getsize(source)  # --copy-source: everything
    with h5py.File(only.output, "r") as f:
        assert "acquisition" not in f or len(f["acquisition"]) == 0
        assert f["units/spike_times"].shape[0] > 1000  # the spikes the STAs averaged
    with h5py.File(full.output, "r") as f:
        assert f["acquisition/EMG/data"].shape == (200000, 8)


def test_results_only_file_validates_and_is_clean_for_dandi(analysed):
    from nwbinspector import Importance, inspect_nwbfile, load_config
    from pynwb import validate

    _, only, _ = analysed
    assert validate(path=str(only.output)) == []
    serious = [
        f"{m.check_function_name}: {m.message}"
        for m in inspect_nwbfile(str(only.output), config=load_config("dandi"))
        if m.importance in (Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION)
    ]
    assert serious == []


def test_results_only_file_names_its_source_by_identifier_location_and_object_paths(analysed):
    source, only, _ = analysed
    with NWBHDF5IO(str(source), "r") as io:
        src = io.read()
        identifier, emg_id, units_id = src.identifier, src.acquisition["EMG"].object_id, None
        units_id = src.units.object_id
        session_start, subject_id = src.session_start_time, src.subject.subject_id
    with NWBHDF5IO(str(only.output), "r") as io:
        res = io.read()
        assert res.identifier != identifier
        assert res.session_start_time == session_start and res.subject.subject_id == subject_id
        assert identifier in res.notes and str(source) in res.notes
        table = res.processing["ecephys"]["SpikeTriggeredAverages"]
        ref = json.loads(table.provenance)["source"]
        assert ref["identifier"] == identifier and ref["location"] == str(source.resolve())
        assert ref["emg_series"] == ["acquisition/EMG"] and ref["units"] == "units"
        assert ref["object_ids"] == {"acquisition/EMG": emg_id, "units": units_id}
        assert "emg_series" not in table.colnames  # no reference into another file
        nmf = res.processing["behavior"]["MuscleSynergyNMF"]
        assert json.loads(nmf.provenance)["source"] == ref
        # the source's ground truth travels with the results, without its EMG references
        truth = res.processing["behavior"]["MuscleSynergyTruth"]
        assert truth.weights_array().shape == (8, 2) and "emg_series" not in truth.colnames


_FRESH_READER = r"""
import json, sys
for name in ("torch", "nwb_synergy", "ndx_muscle_synergy"):
    sys.modules[name] = None  # any import of them raises ImportError
from pynwb import NWBHDF5IO
with NWBHDF5IO(sys.argv[1], "r") as io:
    f = io.read()
    sta = f.processing["ecephys"]["SpikeTriggeredAverages"]
    rows = sta["unit"].data[:]
    ids = [int(sta["unit"].table.id[r]) for r in rows]
    print(json.dumps({
        "type": type(sta).__name__,
        "n_rows": len(sta),
        "unit_ids": sorted(set(ids)),
        "table_is_units": sta["unit"].table is f.units,
        "n_spikes": int(len(f.units["spike_times"].target.data)),
        "weights": list(f.processing["behavior"]["MuscleSynergyNMF"]["weights"].data.shape),
    }))
"""


def test_results_only_file_opens_alone_in_a_fresh_process_without_the_package(analysed):
    _, only, _ = analysed
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", _FRESH_READER, str(only.output)],
        capture_output=True, text=True, env=env, cwd=only.output.parent, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["type"] == "SpikeTriggeredAverageTable"  # typed from the cached spec
    assert out["n_rows"] == 3 * 8 and out["unit_ids"] == [0, 1, 2] and out["table_is_units"]
    assert out["n_spikes"] == sum(len(t) for t in only.sta.spike_trains.values())
    assert out["weights"] == [8, 2]


def test_report_draws_every_figure_from_the_results_only_file(analysed, tmp_path):
    _, only, full = analysed
    drawn_only = report(only.output, tmp_path / "only", formats=("png",))
    drawn_full = report(full.output, tmp_path / "full", formats=("png",))
    names = sorted(p.name for p in drawn_only)
    assert names == sorted(p.name for p in drawn_full)
    assert {"synergies.png", "activations.png", "muscle_fields.png"} <= set(names)
    assert {f"sta_unit{u}.png" for u in range(3)} <= set(names)
    assert all(p.stat().st_size > 5000 for p in drawn_only)


def test_results_only_output_may_not_be_the_source_itself(analysed):
    source, _, _ = analysed
    before = source.stat().st_mtime_ns
    with pytest.raises(InputError, match="replace the raw data"):
        analyze_session(source, source, overwrite=True, **FAST)
    assert source.stat().st_mtime_ns == before


def test_copy_source_and_results_only_hold_the_same_results(analysed):
    _, only, full = analysed
    with h5py.File(only.output, "r") as a, h5py.File(full.output, "r") as b:
        for name in (
            "processing/behavior/MuscleSynergyNMF/weights",
            "processing/behavior/SynergyActivationNMF/data",
            "processing/ecephys/SpikeTriggeredAverages/sta",
            "processing/ecephys/SpikeTriggeredAverages/unit",
        ):
            np.testing.assert_array_equal(a[name][:], b[name][:], err_msg=name)


def test_results_only_copies_ragged_spike_times_and_observation_intervals_exactly(tmp_path):
    from pynwb.testing.mock.file import mock_NWBFile

    from nwb_synergy.io.save import results_only_nwbfile, source_reference

    source = mock_NWBFile()
    rng = np.random.default_rng(3)
    trains = [np.sort(rng.uniform(0, 10, n)) for n in (5, 0, 12)]
    observed = [[[0.0, 4.0], [6.0, 10.0]], [[0.0, 10.0]], [[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]]]
    for uid, (train, obs) in enumerate(zip(trains, observed, strict=True)):
        source.add_unit(id=10 + uid, spike_times=train, obs_intervals=obs)
    copy = results_only_nwbfile(source, source_reference(source, "session.nwb"))
    path = tmp_path / "copy.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(copy)
    with NWBHDF5IO(str(path), "r") as io:
        units = io.read().units
        assert list(units.id[:]) == [10, 11, 12]
        for row in range(3):
            np.testing.assert_array_equal(units["spike_times"][row], trains[row])
            np.testing.assert_array_equal(units["obs_intervals"][row], observed[row])
