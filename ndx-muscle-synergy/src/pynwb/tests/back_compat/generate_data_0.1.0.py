"""Write 0.1.0_all_types.nwb, read by test_muscle_synergy_back_compat.py in later versions.

Run with ndx-muscle-synergy 0.1.0 (``python generate_data_0.1.0.py``). Every value is written
out here, small and exact, so that the test can check them without this script.
"""

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from pynwb import NWBHDF5IO, NWBFile, TimeSeries
from pynwb.misc import Units

from ndx_muscle_synergy import MuscleSynergy, SpikeTriggeredAverageTable, SynergyActivation


def main(path: Path = Path(__file__).parent / "0.1.0_all_types.nwb") -> Path:
    nwbfile = NWBFile(
        session_description="Three muscles, two units: every ndx-muscle-synergy 0.1.0 type.",
        identifier="ndx-muscle-synergy-0.1.0-back-compat",
        session_start_time=datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc),
    )
    emg = TimeSeries(
        name="EMG",
        description="Rectified EMG of FDS, EDC, BR (columns).",
        data=np.arange(30, dtype=np.float64).reshape(10, 3) * 1e-6,
        unit="V",
        rate=1000.0,
    )
    nwbfile.add_acquisition(emg)
    units = Units(name="units", description="two sorted units", resolution=1 / 30000)
    units.add_unit(spike_times=[0.002, 0.005], id=4)
    units.add_unit(spike_times=[0.003], id=9)
    nwbfile.units = units

    behavior = nwbfile.create_processing_module("behavior", "Muscle synergies of the EMG.")
    synergies = MuscleSynergy(
        name="MuscleSynergyRLVM",
        description="Two synergies of three muscles (RLVM, one negative component).",
        muscle_name=["FDS", "EDC", "BR"],
        weights=np.array([[0.6, 0.0], [0.8, -0.28], [0.0, 0.96]]),
        method="rlvm",
        nonnegative=False,
        parameters={"n_synergies": 2, "l1": 0.1},
        software="ndx-muscle-synergy back-compat generator",
        software_version="0.1.0",
        provenance={"fit": {"vaf_uncentered": 0.93}},
        offset=[0.5, 0.25, 0.0],
        emg_series=[emg] * 3,
        emg_channel=[0, 1, 2],
        variance_accounted_for=[0.6, 0.3],
    )
    behavior.add(synergies)
    behavior.add(
        SynergyActivation(
            name="SynergyActivationRLVM",
            data=np.array([[0.0, 1.0], [0.5, 0.0], [2.0, 0.25], [1.0, 1.0]]),
            muscle_synergy=synergies,
            rate=100.0,
            starting_time=0.0,
            description="Activations of the two synergies.",
        )
    )
    ecephys = nwbfile.create_processing_module("ecephys", "Spike-triggered averages of EMG.")
    ecephys.add(
        SpikeTriggeredAverageTable(
            lags=[-0.001, 0.0, 0.001, 0.002],
            window=(-0.001, 0.002),
            emg_rate=1000.0,
            emg_unit="V",
            parameters={"baseline": [-0.001, 0.0]},
            software="ndx-muscle-synergy back-compat generator",
            software_version="0.1.0",
            unit=[1, 0],
            units_table=units,
            muscle_name=["FDS", "BR"],
            sta=np.array([[1.0, 1.0, 2.0, 1.0], [1.0, 1.0, 0.5, 1.0]]) * 1e-6,
            n_spikes_used=[1, 2],
            n_spikes_excluded=[0, 0],
            effect=["PSF", "PSpS"],
            p_value=[0.01, 0.02],
            field_value=[1.0, -1.0],
            emg_series=[emg] * 2,
            emg_channel=[0, 2],
        )
    )
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return path


if __name__ == "__main__":
    print(main())
