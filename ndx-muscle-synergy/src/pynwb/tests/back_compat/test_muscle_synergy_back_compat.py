"""Files written by earlier versions of the extension still read, typed, with their values.

Each file was written by ``generate_data_<version>.py`` with that version; the values checked
here are the ones that script writes out explicitly.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pynwb
from pynwb import NWBHDF5IO

from ndx_muscle_synergy import MuscleSynergy, SpikeTriggeredAverageTable, SynergyActivation

HERE = Path(__file__).parent


def _open(path: Path) -> NWBHDF5IO:
    with warnings.catch_warnings():  # the cached spec may be older than the loaded one
        warnings.filterwarnings("ignore", message=r"Ignoring (the following )?cached namespace")
        return NWBHDF5IO(str(path), "r")


def test_0_1_0_file_reads_every_type():
    path = HERE / "0.1.0_all_types.nwb"
    assert list(pynwb.validate(path=str(path))) == []
    with _open(path) as io:
        nwbfile = io.read()
        emg = nwbfile.acquisition["EMG"]
        ms = nwbfile.processing["behavior"]["MuscleSynergyRLVM"]
        act = nwbfile.processing["behavior"]["SynergyActivationRLVM"]
        sta = nwbfile.processing["ecephys"]["SpikeTriggeredAverages"]
        assert (type(ms), type(act), type(sta)) == (
            MuscleSynergy,
            SynergyActivation,
            SpikeTriggeredAverageTable,
        )
        np.testing.assert_array_equal(
            ms.weights_array(), np.float32([[0.6, 0.0], [0.8, -0.28], [0.0, 0.96]])
        )
        assert ms.muscle_names == ["FDS", "EDC", "BR"] and ms.n_synergies == 2
        assert (ms.method, ms.nonnegative) == ("rlvm", False)
        assert ms.parameters_dict == {"n_synergies": 2, "l1": 0.1}
        assert ms.provenance_dict == {"fit": {"vaf_uncentered": 0.93}}
        np.testing.assert_array_equal(ms.offset_array(), [0.5, 0.25, 0.0])
        np.testing.assert_allclose(ms.variance_accounted_for[:], [0.6, 0.3], rtol=1e-7)
        assert all(s is emg for s in ms["emg_series"].data[:])
        assert ms["emg_channel"].data[:].tolist() == [0, 1, 2]

        assert act.muscle_synergy is ms and act.rate == 100.0 and act.unit == "a.u."
        np.testing.assert_array_equal(
            act.data[:], [[0.0, 1.0], [0.5, 0.0], [2.0, 0.25], [1.0, 1.0]]
        )

        np.testing.assert_array_equal(sta.lags[:], [-0.001, 0.0, 0.001, 0.002])
        np.testing.assert_array_equal(sta.window[:], [-0.001, 0.002])
        assert (sta.emg_rate, sta.emg_unit) == (1000.0, "V")
        ids = np.asarray(nwbfile.units.id.data[:])[sta.unit_rows()]
        assert ids.tolist() == [9, 4]  # rows point to units by row, not by id
        np.testing.assert_allclose(
            sta.sta_array(), np.array([[1, 1, 2, 1], [1, 1, 0.5, 1]]) * 1e-6, rtol=1e-6
        )
        df = sta.to_dataframe()
        assert list(df["muscle_name"]) == ["FDS", "BR"] and list(df["effect"]) == ["PSF", "PSpS"]
        assert df["n_spikes_used"].tolist() == [1, 2]
        assert df["p_value"].tolist() == [0.01, 0.02]
        assert df["field_value"].tolist() == [1.0, -1.0]
        assert sta["emg_channel"].data[:].tolist() == [0, 2]
