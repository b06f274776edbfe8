"""Building the types: what they check, what they store, the error class, the mocks, imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hdmf.common import DynamicTableRegion
from pynwb.testing.mock.base import mock_TimeSeries

import ndx_muscle_synergy
from ndx_muscle_synergy import (
    InvalidDataError,
    MuscleSynergy,
    SpikeTriggeredAverageTable,
    SynergyActivation,
    set_error_class,
)
from ndx_muscle_synergy.testing.mock import (
    mock_MuscleSynergy,
    mock_SpikeTriggeredAverageTable,
    mock_SynergyActivation,
    mock_weights,
)


def _ms_kwargs(**changes):
    kwargs = dict(
        name="MuscleSynergyRLVM",
        muscle_name=["A", "B", "C"],
        weights=np.array([[0.6, 0.0], [0.8, -0.28], [0.0, 0.96]]),
        method="rlvm",
        nonnegative=False,
        software="my_analysis",
        software_version="1.0",
    )
    kwargs.update(changes)
    return kwargs


def _sta_kwargs(**changes):
    units = mock_SpikeTriggeredAverageTable(n_units=2).unit.table
    kwargs = dict(
        lags=[-0.002, -0.001, 0.0, 0.001],
        window=(-0.002, 0.001),
        emg_rate=1000.0,
        emg_unit="V",
        software="my_analysis",
        software_version="1.0",
        unit=[0, 0, 1],
        units_table=units,
        muscle_name=["A", "B", "A"],
        sta=np.ones((3, 4)),
        n_spikes_used=[10, 10, 12],
        n_spikes_excluded=[0, 1, 0],
    )
    kwargs.update(changes)
    return kwargs


# --------------------------------------------------------------------------- MuscleSynergy


def test_one_dimensional_weights_are_one_synergy_and_json_round_trips():
    ms = MuscleSynergy(
        **_ms_kwargs(
            weights=[0.6, 0.8, 0.0],
            parameters={"n_synergies": 1, "l1": 0.1},
            provenance='{"fit": {"vaf": 0.5}}',
        )
    )
    assert ms.n_synergies == 1 and ms.weights_array().shape == (3, 1)
    # dicts are stored as sorted JSON text, JSON text as given
    assert ms.parameters == '{"l1": 0.1, "n_synergies": 1}'
    assert ms.parameters_dict == {"n_synergies": 1, "l1": 0.1}
    assert ms.provenance_dict == {"fit": {"vaf": 0.5}}
    assert "rlvm" in ms.description  # a default description that says what the table is


def test_muscle_synergy_references_a_source_series_column_by_column():
    emg = mock_TimeSeries(name="EMG", data=np.zeros((50, 3)))
    ms = MuscleSynergy(**_ms_kwargs(emg_series=[emg] * 3, emg_channel=[2, 1, 0]))
    assert [s is emg for s in ms["emg_series"].data] == [True] * 3
    assert ms["emg_channel"].data.dtype == np.uint32
    assert ms["emg_channel"].data.tolist() == [2, 1, 0]
    with pytest.raises(InvalidDataError, match="'emg_channel' 3 is outside series 'EMG'"):
        MuscleSynergy(**_ms_kwargs(emg_series=[emg] * 3, emg_channel=[0, 1, 3]))
    with pytest.raises(InvalidDataError, match="one pynwb TimeSeries per muscle"):
        MuscleSynergy(**_ms_kwargs(emg_series=[emg, emg, "EMG"]))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"muscle_name": ["A", " ", "C"]}, "empty muscle name"),
        ({"weights": np.ones((3, 0))}, "n_synergies >= 1), got (3, 0)"),
        ({"emg_channel": [0, 1.5, 2]}, "'emg_channel' must hold whole numbers"),
        ({"parameters": {"seed": object()}}, "'parameters' cannot be stored as JSON"),
        ({"provenance": '"just text"'}, "'provenance' must be a JSON object, got str"),
    ],
)
def test_muscle_synergy_names_the_problem(changes, message):
    with pytest.raises(InvalidDataError) as info:
        MuscleSynergy(**_ms_kwargs(**changes))
    assert message in info.value.problem
    assert info.value.obj == "MuscleSynergyRLVM"
    assert str(info.value) == f"object 'MuscleSynergyRLVM': {info.value.problem}"
    assert isinstance(info.value, ValueError)


def test_electrode_region_must_be_named_electrodes():
    table = mock_SpikeTriggeredAverageTable().unit.table
    region = DynamicTableRegion(name="rows", data=[0, 1, 0], description="d", table=table)
    with pytest.raises(InvalidDataError, match="region must be named 'electrodes', got 'rows'"):
        MuscleSynergy(**_ms_kwargs(electrodes=region))


# --------------------------------------------------------------------------- SynergyActivation


def test_activation_takes_lists_and_stores_float32_with_the_fitted_unit():
    ms = MuscleSynergy(**_ms_kwargs())
    act = SynergyActivation(
        name="SynergyActivationRLVM", data=[[0, 1], [2, 3]], muscle_synergy=ms, rate=50.0
    )
    assert act.data.dtype == np.float32 and act.data.tolist() == [[0, 1], [2, 3]]
    assert act.unit == "a.u." and act.muscle_synergy is ms
    with pytest.raises(InvalidDataError, match="no time points"):
        SynergyActivation(name="A", data=np.zeros((0, 2)), muscle_synergy=ms, rate=50.0)


# ---------------------------------------------------------------- SpikeTriggeredAverageTable


def test_sta_may_be_nan_only_in_rows_without_spikes():
    sta = np.ones((3, 4))
    sta[1] = np.nan
    table = SpikeTriggeredAverageTable(**_sta_kwargs(sta=sta, n_spikes_used=[10, 0, 12]))
    assert np.isnan(table.sta_array()[1]).all() and np.isfinite(table.sta_array()[[0, 2]]).all()
    with pytest.raises(InvalidDataError, match=r"'sta \(rows with spikes\)' has 4 NaN"):
        SpikeTriggeredAverageTable(**_sta_kwargs(sta=sta))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"window": (0.001, -0.002)}, "'window' must be (start, stop) with start < stop"),
        ({"lags": [-0.002, 0.0, -0.001, 0.001]}, "'lags' must be strictly increasing"),
        ({"lags": []}, "'lags' is empty"),
        ({"emg_rate": 0.0}, "'emg_rate' must be a positive number of Hz, got 0.0"),
        ({"unit": [0, 0]}, "'unit' has 2 entries for 3 rows"),
        ({"n_spikes_excluded": [0, 1]}, "'n_spikes_excluded' has 2 entries for 3 rows"),
        ({"muscle_name": None}, "'muscle_name' is required"),
    ],
)
def test_sta_table_names_the_problem(changes, message):
    with pytest.raises(InvalidDataError) as info:
        SpikeTriggeredAverageTable(**_sta_kwargs(**changes))
    assert message in info.value.problem and info.value.obj == "SpikeTriggeredAverages"


# --------------------------------------------------------------------------- the error class


def test_a_package_on_top_can_raise_its_own_subclass():
    class PipelineError(Exception):
        pass

    class Both(PipelineError, InvalidDataError):
        pass

    previous = set_error_class(Both)
    try:
        with pytest.raises(PipelineError) as info:
            MuscleSynergy(**_ms_kwargs(muscle_name=["A", "A", "C"]))
        assert isinstance(info.value, InvalidDataError)
        assert info.value.problem == "duplicate muscle names ['A']"
    finally:
        assert set_error_class(previous) is Both
    with pytest.raises(TypeError, match="subclass of InvalidDataError"):
        set_error_class(ValueError)


# --------------------------------------------------------------------------- mocks


def test_mocks_plant_the_effects_they_describe():
    table = mock_SpikeTriggeredAverageTable(n_units=3, n_muscles=4)
    df = table.to_dataframe()
    assert len(df) == 12 and table.unit_rows().tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert list(df["effect"]) == ["PSF", "PSpS", "none", "none"] * 3
    assert list(df["field_value"]) == [1.0, -0.5, 0.0, 0.0] * 3
    # the averages rise by MPI percent inside the 6-15 ms effect window (noise: 5% per sample)
    lags = np.asarray(table.lags)
    inside, before = (lags >= 0.006) & (lags <= 0.015), lags < 0
    sta = table.sta_array().astype(float)
    change = 100 * (sta[:, inside].mean(axis=1) / sta[:, before].mean(axis=1) - 1)
    np.testing.assert_allclose(change[:2], [40.0, -20.0], atol=5.0)
    np.testing.assert_allclose(change[2:4], [0.0, 0.0], atol=5.0)

    weights = mock_weights(5, 2, nonnegative=False, seed=4)
    np.testing.assert_allclose(np.linalg.norm(weights, axis=0), [1.0, 1.0], rtol=1e-6)
    assert (weights < 0).sum(axis=0).tolist() == [1, 1]
    ms = mock_MuscleSynergy(weights=weights, nonnegative=False, method="rlvm")
    act = mock_SynergyActivation(muscle_synergy=ms, n_times=100)
    assert act.data.shape == (100, 2) and act.data.min() == 0.0 and act.data.max() > 0.99
    assert ms.software == "ndx_muscle_synergy.testing"
    assert ms.software_version == ndx_muscle_synergy.__version__


# --------------------------------------------------------------------------- dependencies

_IMPORT_PROBE = r"""
import json, sys
for name in ("torch", "nwb_synergy"):
    sys.modules[name] = None  # any import of them raises ImportError
sys.path.insert(0, sys.argv[1])
import h5py, hdmf, numpy, pynwb
before = set(sys.modules)
import ndx_muscle_synergy
import ndx_muscle_synergy.testing.mock
added = {name.split(".")[0] for name in set(sys.modules) - before}
print(json.dumps({
    "file": ndx_muscle_synergy.__file__,
    "added": sorted(added - set(sys.stdlib_module_names)),
}))
"""


def test_the_package_imports_nothing_beyond_pynwb_hdmf_numpy(tmp_path):
    package_dir = Path(ndx_muscle_synergy.__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, str(package_dir)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(out["file"]).resolve() == Path(ndx_muscle_synergy.__file__).resolve()
    assert out["added"] == ["ndx_muscle_synergy"]
