"""Write all three types to HDF5, validate, read them back typed, export, read again."""

from __future__ import annotations

from datetime import datetime, timezone

import h5py
import numpy as np
import pynwb
from pynwb import NWBHDF5IO, NWBFile, TimeSeries

import ndx_muscle_synergy
from ndx_muscle_synergy import MuscleSynergy, SpikeTriggeredAverageTable, SynergyActivation
from ndx_muscle_synergy.testing.mock import (
    mock_MuscleSynergy,
    mock_SpikeTriggeredAverageTable,
    mock_SynergyActivation,
    mock_weights,
)

MUSCLES = ["FDS", "FDP", "FCR", "FCU", "EDC"]


def _file():
    nwbfile = NWBFile(
        session_description="Mock EMG session for the ndx-muscle-synergy round trip.",
        identifier="ndx-muscle-synergy-roundtrip",
        session_start_time=datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc),
    )
    emg = TimeSeries(
        name="EMG",
        description="Rectified EMG, one column per muscle.",
        data=np.abs(np.random.default_rng(1).standard_normal((400, 5))),
        unit="V",
        rate=1000.0,
    )
    nwbfile.add_acquisition(emg)
    ms = mock_MuscleSynergy(
        nwbfile=nwbfile,
        name="MuscleSynergyRLVM",
        muscle_name=MUSCLES,
        weights=mock_weights(5, 2, nonnegative=False, seed=2),
        method="rlvm",
        nonnegative=False,
        emg_series=emg,
        offset=np.linspace(0.0, 0.4, 5),
        provenance={"fit": {"vaf_uncentered": 0.9}},
    )
    act = mock_SynergyActivation(
        nwbfile=nwbfile, name="SynergyActivationRLVM", muscle_synergy=ms, n_times=120, unit="V"
    )
    sta = mock_SpikeTriggeredAverageTable(
        nwbfile=nwbfile, muscle_name=MUSCLES[:3], emg_series=emg, n_units=2
    )
    return nwbfile, ms, act, sta


def _check(read, ms0, act0, sta0):
    ms = read.processing["behavior"]["MuscleSynergyRLVM"]
    act = read.processing["behavior"]["SynergyActivationRLVM"]
    sta = read.processing["ecephys"]["SpikeTriggeredAverages"]
    assert (type(ms), type(act), type(sta)) == (
        MuscleSynergy,
        SynergyActivation,
        SpikeTriggeredAverageTable,
    )
    np.testing.assert_array_equal(ms.weights_array(), ms0.weights_array())
    assert ms.weights_array().dtype == np.float32 and (ms.weights_array() < 0).sum() == 2
    assert ms.muscle_names == MUSCLES and ms.method == "rlvm" and not ms.nonnegative
    np.testing.assert_allclose(ms.offset_array(), np.linspace(0.0, 0.4, 5), rtol=1e-6)
    assert ms.provenance_dict == {"fit": {"vaf_uncentered": 0.9}}
    assert ms.parameters_dict == ms0.parameters_dict
    assert [s is read.acquisition["EMG"] for s in ms["emg_series"].data[:]] == [True] * 5
    assert act.muscle_synergy is ms and act.unit == "V" and act.rate == 100.0
    np.testing.assert_array_equal(act.data[:], act0.data)
    np.testing.assert_array_equal(sta.sta_array(), sta0.sta_array())
    np.testing.assert_array_equal(sta.window[:], [-0.03, 0.05])
    ids = np.asarray(read.units.id.data[:])[sta.unit_rows()]
    assert ids.tolist() == [10] * 3 + [11] * 3
    assert list(sta["effect"].data[:]) == ["PSF", "PSpS", "none"] * 2
    assert sta["emg_channel"].data[:].tolist() == [0, 1, 2] * 2


def test_write_validate_read_export_read(tmp_path):
    nwbfile, ms0, act0, sta0 = _file()
    first, second = tmp_path / "written.nwb", tmp_path / "exported.nwb"
    with NWBHDF5IO(str(first), "w") as io:
        io.write(nwbfile)
    assert list(pynwb.validate(path=str(first))) == []
    with h5py.File(first, "r") as f:  # the namespace travels with the file
        assert list(f["specifications/ndx-muscle-synergy"]) == [ndx_muscle_synergy.__version__]
    with NWBHDF5IO(str(first), "r") as io:
        read = io.read()
        _check(read, ms0, act0, sta0)
        with NWBHDF5IO(str(second), "w") as out:
            out.export(src_io=io, nwbfile=read)
    assert list(pynwb.validate(path=str(second))) == []
    with NWBHDF5IO(str(second), "r") as io:
        _check(io.read(), ms0, act0, sta0)
