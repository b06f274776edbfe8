"""The ndx-muscle-synergy extension as nwb_synergy uses it: checks, round trips, inspector."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pynwb
import pytest
from pynwb import NWBHDF5IO

import nwb_synergy.ndx
from nwb_synergy.errors import InputError
from nwb_synergy.ndx import (
    MuscleSynergy,
    SpikeTriggeredAverageTable,
    SynergyActivation,
    spec_path,
)
from nwb_synergy.testing.mock_files import mock_emg_nwbfile
from nwb_synergy.testing.mock_types import (
    mock_MuscleSynergy,
    mock_SpikeTriggeredAverageTable,
    mock_SynergyActivation,
    mock_weights,
)

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = ROOT / "ndx-muscle-synergy"
NAMESPACE_YAML = EXTENSION / "spec" / "ndx-muscle-synergy.namespace.yaml"


# --------------------------------------------------------------------------- the package
# (the spec's own tests moved with it: ndx-muscle-synergy/src/pynwb/tests/unit/)


def test_nwb_synergy_ndx_is_the_extension_package():
    import ndx_muscle_synergy

    for name in ("MuscleSynergy", "SynergyActivation", "SpikeTriggeredAverageTable"):
        assert getattr(nwb_synergy.ndx, name) is getattr(ndx_muscle_synergy, name)
    assert nwb_synergy.ndx.EFFECT_LABELS == ("PSF", "PSpS", "none")
    assert spec_path() == NAMESPACE_YAML  # a source checkout or an editable install
    namespace = pynwb.get_type_map().namespace_catalog.get_namespace("ndx-muscle-synergy")
    assert namespace["version"] == ndx_muscle_synergy.__version__ == "0.1.0"
    assert namespace["author"] == ["nwb_synergy developers"]


def test_extension_errors_are_both_input_errors_and_the_extensions_own():
    from ndx_muscle_synergy import InvalidDataError

    with pytest.raises(InputError) as info:
        MuscleSynergy(**_ms_kwargs(muscle_name=["A", "B"]))
    err = info.value
    assert isinstance(err, InvalidDataError) and isinstance(err, ValueError)
    assert err.problem == "'weights' must have shape (n_muscles=2, n_synergies >= 1), got (3, 2)"
    assert err.obj == "MuscleSynergyNMF" and err.file is None
    assert str(err) == f"object 'MuscleSynergyNMF': {err.problem}"


# --------------------------------------------------------------------------- construction


def _ms_kwargs(**changes):
    kwargs = dict(
        name="MuscleSynergyNMF",
        muscle_name=["A", "B", "C"],
        weights=np.array([[0.6, 0.0], [0.8, 0.6], [0.0, 0.8]]),
        method="nmf",
        nonnegative=True,
        parameters={"n_synergies": 2},
        software="nwb_synergy",
        software_version="0.1.0",
    )
    kwargs.update(changes)
    return kwargs


def test_muscle_synergy_stores_float32_and_keeps_negative_weights_when_signed():
    weights = np.array([[0.6, -0.1], [0.8, 0.6], [0.0, 0.79]])
    ms = MuscleSynergy(**_ms_kwargs(weights=weights, method="rlvm", nonnegative=False))
    assert ms.weights_array().dtype == np.float32
    np.testing.assert_array_equal(ms.weights_array(), weights.astype(np.float32))
    assert ms.n_synergies == 2 and ms.muscle_names == ["A", "B", "C"]
    assert json.loads(ms.parameters) == {"n_synergies": 2}
    np.testing.assert_array_equal(ms.offset_array(), np.zeros(3))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"weights": np.ones((2, 2))}, "must have shape (n_muscles=3"),
        ({"weights": np.array([[1, 0], [np.nan, 1], [0, 1.0]])}, "NaN or infinite"),
        ({"weights": np.array([[1, 0], [-0.2, 1], [0, 1.0]])}, "muscle 'B' in synergy 0"),
        ({"muscle_name": ["A", "B", "A"]}, "duplicate muscle names ['A']"),
        ({"variance_accounted_for": [0.5, 0.2, 0.1]}, "3 entries for 2 synergies"),
        ({"parameters": "{not json"}, "'parameters' is not valid JSON"),
        ({"parameters": "[1, 2]"}, "must be a JSON object"),
        ({"offset": [0.0, np.inf, 0.0]}, "'offset' has 1 NaN or infinite"),
        ({"emg_channel": [0, 1]}, "'emg_channel' has 2 entries for 3 muscles"),
    ],
)
def test_muscle_synergy_rejects_bad_input(changes, message):
    with pytest.raises(InputError) as info:
        MuscleSynergy(**_ms_kwargs(**changes))
    assert message in str(info.value)
    assert "MuscleSynergyNMF" in str(info.value)


def test_muscle_synergy_electrode_rows_need_a_valid_table():
    nwbfile, _ = mock_emg_nwbfile("electrical", n_muscles=3, n_times=100)
    with pytest.raises(InputError, match="points to row 5 but table 'electrodes' has 3 rows"):
        MuscleSynergy(**_ms_kwargs(electrodes=[0, 1, 5], electrodes_table=nwbfile.electrodes))
    with pytest.raises(InputError, match="needs the table"):
        MuscleSynergy(**_ms_kwargs(electrodes=[0, 1, 2]))


def test_synergy_activation_checks_columns_sign_and_finiteness():
    ms = MuscleSynergy(**_ms_kwargs())
    good = SynergyActivation(name="A", data=np.ones((5, 2)), muscle_synergy=ms, rate=100.0)
    assert good.data.dtype == np.float32 and good.unit == "a.u."
    with pytest.raises(InputError, match="3 columns but MuscleSynergy 'MuscleSynergyNMF' has 2"):
        SynergyActivation(name="A", data=np.ones((5, 3)), muscle_synergy=ms, rate=100.0)
    with pytest.raises(InputError, match="synergy 1 is -0.5 at sample 3"):
        data = np.ones((5, 2))
        data[3, 1] = -0.5
        SynergyActivation(name="A", data=data, muscle_synergy=ms, rate=100.0)
    with pytest.raises(InputError, match="NaN or infinite"):
        SynergyActivation(name="A", data=np.full((5, 2), np.nan), muscle_synergy=ms, rate=100.0)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"with_effects": False, "effect": ["PSF", "LTP"] + ["none"] * 6}, "unknown effect label"),
        ({"with_effects": False, "p_value": [1.5] + [0.5] * 7}, "'p_value' must lie in [0, 1]"),
        ({"with_effects": False, "field_value": [2.0] + [0.0] * 7}, "must lie in [-1, 1]"),
        (
            {"with_effects": False, "effect": ["none"] * 8, "field_value": [0.5] + [0.0] * 7},
            "must be 0 where effect is 'none' (row 0)",
        ),
        ({"lags": np.arange(-40, 41) / 1000}, "span [-0.04, 0.04] s, outside window"),
        ({"sta": np.zeros((8, 3))}, "'sta' must have shape (n_rows=8, n_lags=81)"),
        ({"n_spikes_used": [-1] * 8}, "'n_spikes_used' must not be negative"),
        ({"muscle_name": ["FDS"] * 8}, "the same (unit, muscle) pair appears"),
    ],
)
def test_sta_table_rejects_bad_input(changes, message):
    with pytest.raises(InputError) as info:
        mock_SpikeTriggeredAverageTable(**changes)
    assert message in str(info.value)
    assert "SpikeTriggeredAverages" in str(info.value)


def test_sta_table_takes_integer_rate_and_row_indices():
    units = mock_SpikeTriggeredAverageTable(n_units=3).unit.table
    table = SpikeTriggeredAverageTable(
        lags=[-0.001, 0.0, 0.001],
        window=(-0.001, 0.002),
        emg_rate=1000,
        emg_unit="V",
        software="x",
        software_version="1",
        unit=[2, 0],
        units_table=units,
        muscle_name=["A", "A"],
        sta=np.ones((2, 3)),
        n_spikes_used=[4, 5],
        n_spikes_excluded=[0, 1],
    )
    assert table.emg_rate == 1000.0 and isinstance(table.emg_rate, float)
    assert table["unit"].table is units
    assert np.asarray(units.id.data)[table.unit_rows()].tolist() == [12, 10]


def test_sta_table_unit_rows_must_exist():
    units = mock_SpikeTriggeredAverageTable().unit.table
    with pytest.raises(InputError, match="points to row 2 but table 'units' has 2 rows"):
        SpikeTriggeredAverageTable(
            lags=[0.0, 0.001],
            window=(-0.01, 0.01),
            emg_rate=1000.0,
            emg_unit="V",
            software="x",
            software_version="1",
            unit=[2],
            units_table=units,
            muscle_name=["A"],
            sta=np.zeros((1, 2)),
            n_spikes_used=[1],
            n_spikes_excluded=[0],
        )


# --------------------------------------------------------------------------- round trip


def _realistic_file():
    """A DANDI-ready NWBFile (subject, session metadata) with EMG, Units and all our types."""
    nwbfile, truth = mock_emg_nwbfile("electrical", n_times=4000, n_muscles=6)
    emg = nwbfile.acquisition["EMG"]
    names = truth.muscle_names
    ms = mock_MuscleSynergy(
        nwbfile=nwbfile,
        muscle_name=names,
        weights=mock_weights(6, 3, nonnegative=False),
        method="rlvm",
        nonnegative=False,
        emg_series=emg,
        electrodes=list(range(6)),
        electrodes_table=nwbfile.electrodes,
        offset=np.linspace(0.0, 0.5, 6),
        provenance={"fit": {"vaf_uncentered": 0.93}},
    )
    act = mock_SynergyActivation(
        nwbfile=nwbfile,
        muscle_synergy=ms,
        n_times=150,
        rate=100.0,
        starting_time=truth.t_start,
        unit="V",
    )
    sta = mock_SpikeTriggeredAverageTable(
        nwbfile=nwbfile, muscle_name=names[:4], emg_series=emg, n_units=3
    )
    return nwbfile, truth, ms, act, sta


def _assert_same(ms, act, sta, ms0, act0, sta0, truth):
    np.testing.assert_array_equal(ms.weights_array(), ms0.weights_array())
    assert ms.weights_array().dtype == np.float32
    assert ms.muscle_names == truth.muscle_names
    assert ms.method == "rlvm" and not ms.nonnegative
    assert ms.parameters_dict == ms0.parameters_dict
    assert ms.provenance_dict == {"fit": {"vaf_uncentered": 0.93}}
    np.testing.assert_allclose(ms.variance_accounted_for[:], ms0.variance_accounted_for)
    np.testing.assert_allclose(ms.offset_array(), np.linspace(0.0, 0.5, 6), rtol=1e-6)
    # references: series and electrode rows resolve to the right objects
    series = ms["emg_series"].data[:]
    assert [s.name for s in series] == ["EMG"] * 6
    assert series[0].object_id == ms0["emg_series"].data[0].object_id
    np.testing.assert_array_equal(ms["emg_channel"].data[:], np.arange(6))
    rows = np.asarray(ms["electrodes"].data[:])
    np.testing.assert_array_equal(rows, np.arange(6))
    muscles_of_rows = np.asarray(ms["electrodes"].table["muscle"].data[:])[rows]
    assert list(muscles_of_rows) == truth.muscle_names
    # activation
    assert act.muscle_synergy is ms
    assert act.data.dtype == np.float32
    np.testing.assert_array_equal(act.data[:], act0.data)
    assert act.rate == 100.0 and act.starting_time == truth.t_start and act.unit == "V"
    # STA table: rows point to the right units
    np.testing.assert_array_equal(sta.sta_array(), sta0.sta_array())
    np.testing.assert_array_equal(sta.lags[:], sta0.lags)
    np.testing.assert_array_equal(sta.window[:], [-0.03, 0.05])
    assert sta.emg_rate == 1000.0 and sta.emg_unit == "V"
    unit_ids = np.asarray(sta["unit"].table.id.data[:])[sta.unit_rows()]
    assert unit_ids.tolist() == [3] * 4 + [7] * 4 + [12] * 4
    df = sta.to_dataframe(index=True)
    assert list(df["effect"][:4]) == ["PSF", "PSpS", "none", "none"]
    np.testing.assert_array_equal(df["field_value"].to_numpy(), sta0["field_value"].data)
    assert np.isnan(df["onset"].iloc[2]) and df["onset"].iloc[0] == 0.006
    assert [s.name for s in sta["emg_series"].data[:]] == ["EMG"] * 12


def test_round_trip_write_read_export_validate(tmp_path):
    nwbfile, truth, ms0, act0, sta0 = _realistic_file()
    first, second = tmp_path / "written.nwb", tmp_path / "exported.nwb"
    with NWBHDF5IO(str(first), "w") as io:
        io.write(nwbfile)
    assert list(pynwb.validate(path=str(first))) == []
    with NWBHDF5IO(str(first), "r") as io:
        read = io.read()
        behavior, ecephys = read.processing["behavior"], read.processing["ecephys"]
        ms, act = behavior["MuscleSynergyNMF"], behavior["SynergyActivationNMF"]
        sta = ecephys["SpikeTriggeredAverages"]
        assert type(ms) is MuscleSynergy and type(act) is SynergyActivation
        assert type(sta) is SpikeTriggeredAverageTable
        _assert_same(ms, act, sta, ms0, act0, sta0, truth)
        assert ms["emg_series"].data[0] is read.acquisition["EMG"]
        with NWBHDF5IO(str(second), "w") as out:
            out.export(src_io=io, nwbfile=read)
    assert list(pynwb.validate(path=str(second))) == []
    with NWBHDF5IO(str(second), "r") as io:
        read = io.read()
        behavior, ecephys = read.processing["behavior"], read.processing["ecephys"]
        _assert_same(
            behavior["MuscleSynergyNMF"],
            behavior["SynergyActivationNMF"],
            ecephys["SpikeTriggeredAverages"],
            ms0,
            act0,
            sta0,
            truth,
        )


_FRESH_READER = r"""
import json, sys
import numpy as np
from pynwb import NWBHDF5IO
with NWBHDF5IO(sys.argv[1], "r") as io:
    f = io.read()
    ms = f.processing["behavior"]["MuscleSynergyNMF"]
    act = f.processing["behavior"]["SynergyActivationNMF"]
    sta = f.processing["ecephys"]["SpikeTriggeredAverages"]
    out = {
        "types": [type(o).__name__ for o in (ms, act, sta)],
        "weights": np.asarray(ms["weights"].data[:]).tolist(),
        "method": ms.fields["method"],
        "link": act.fields["muscle_synergy"].name,
        "act_sum": float(np.asarray(act.data[:], dtype=float).sum()),
        "effect": [str(e) for e in sta["effect"].data[:]],
        "lags": len(sta.fields["lags"]),
        "series": ms["emg_series"].data[0].name,
        "imported": sorted(m for m in sys.modules if m.startswith("nwb_synergy")),
    }
print(json.dumps(out))
"""


def test_written_file_opens_in_fresh_process_without_nwb_synergy(tmp_path):
    nwbfile, truth, ms0, act0, sta0 = _realistic_file()
    path = tmp_path / "fresh.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_READER, str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repository: nwb_synergy is not importable from here
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["imported"] == []
    assert out["types"] == ["MuscleSynergy", "SynergyActivation", "SpikeTriggeredAverageTable"]
    np.testing.assert_array_equal(np.float32(out["weights"]), ms0.weights_array())
    assert out["method"] == "rlvm" and out["link"] == "MuscleSynergyNMF"
    assert out["act_sum"] == pytest.approx(float(act0.data.astype(float).sum()), rel=1e-6)
    assert out["effect"] == list(sta0["effect"].data)
    assert out["lags"] == len(sta0.lags) == 81
    assert out["series"] == "EMG"


_STANDALONE_READER = r"""
import json, sys
for name in ("torch", "nwb_synergy"):
    sys.modules[name] = None  # any import of them raises ImportError
sys.path.insert(0, sys.argv[2])  # the extension's source folder
import h5py, hdmf, numpy, pynwb
before = set(sys.modules)
import ndx_muscle_synergy as ndx
added = {name.split(".")[0] for name in set(sys.modules) - before}
from pynwb import NWBHDF5IO
with NWBHDF5IO(sys.argv[1], "r") as io:
    f = io.read()
    ms = f.processing["behavior"]["MuscleSynergyNMF"]
    act = f.processing["behavior"]["SynergyActivationNMF"]
    sta = f.processing["ecephys"]["SpikeTriggeredAverages"]
    out = {
        "package": ndx.__file__,
        "added": sorted(added - set(sys.stdlib_module_names)),
        "typed": [type(ms) is ndx.MuscleSynergy, type(act) is ndx.SynergyActivation,
                  type(sta) is ndx.SpikeTriggeredAverageTable],
        "weights": ms.weights_array().tolist(),
        "muscles": ms.muscle_names,
        "parameters": ms.parameters_dict,
        "linked": act.muscle_synergy is ms,
        "activations": numpy.asarray(act.data[:]).tolist(),
        "sta": numpy.nan_to_num(sta.sta_array(), nan=-1.0).tolist(),
        "unit_rows": sta.unit_rows().tolist(),
        "effects": [str(e) for e in sta["effect"].data[:]],
    }
loaded = [m for m, mod in sys.modules.items()
          if m.split(".")[0] in ("torch", "nwb_synergy") and mod is not None]
out["loaded"] = loaded
print(json.dumps(out))
"""


@pytest.mark.filterwarnings("ignore:.*usable fragments:RuntimeWarning")
def test_results_file_reads_with_the_extension_alone(tmp_path):
    """A file analysed by nwb_synergy reads typed with ndx_muscle_synergy, no torch, no us."""
    from nwb_synergy.pipeline import analyze_session
    from nwb_synergy.testing.mock_files import write_nwbfile

    nwbfile, truth = mock_emg_nwbfile("2d", n_times=20000, n_muscles=6)
    source = write_nwbfile(nwbfile, tmp_path / "session.nwb")
    results = analyze_session(
        source, tmp_path / "results.nwb", methods=("nmf",), n_synergies=2, progress=False,
        n_permutations=100,
    )  # fmt: skip
    assert results.log.written[-1] == "processing/ecephys/SpikeTriggeredAverages"
    with h5py.File(results.output, "r") as f:  # cache_spec=True: the namespace is in the file
        assert list(f["specifications/ndx-muscle-synergy"]) == ["0.1.0"]
    source_dir = EXTENSION / "src" / "pynwb"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, "-c", _STANDALONE_READER, str(results.output), str(source_dir)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(out["package"]).parent == source_dir / "ndx_muscle_synergy"
    assert out["added"] == ["ndx_muscle_synergy"] and out["loaded"] == []
    assert out["typed"] == [True, True, True] and out["linked"]
    # the same numbers nwb_synergy fitted and reads back
    model = results.models["nmf"]
    np.testing.assert_array_equal(np.float32(out["weights"]), model.weights_.astype(np.float32))
    np.testing.assert_array_equal(
        np.float32(out["activations"]), model.activations_.astype(np.float32)
    )
    assert out["muscles"] == truth.muscle_names
    assert out["parameters"]["n_synergies"] == 2
    with NWBHDF5IO(str(results.output), "r") as io:
        sta = io.read().processing["ecephys"]["SpikeTriggeredAverages"]
        np.testing.assert_array_equal(
            np.float32(out["sta"]), np.nan_to_num(sta.sta_array(), nan=-1.0)
        )
        assert out["unit_rows"] == sta.unit_rows().tolist()
        assert out["effects"] == [str(e) for e in sta["effect"].data[:]]
    assert len(out["unit_rows"]) == 3 * 6  # 3 units x 6 muscles


# --------------------------------------------------------------------------- inspector checks


def _messages(check, obj):
    result = check(obj)
    if result is None:
        return []
    return result if isinstance(result, list) else [result]


def test_inspector_checks_silent_on_good_objects():
    from nwb_synergy import inspector_checks as ic

    nwbfile, truth, ms, act, sta = _realistic_file()
    checks = [getattr(ic, n) for n in dir(ic) if n.startswith("check_")]
    assert len(checks) == 11
    for check in checks:
        target = check.neurodata_type
        obj = {MuscleSynergy: ms, SynergyActivation: act, SpikeTriggeredAverageTable: sta}[target]
        assert _messages(check, obj) == [], check.__name__


def test_inspector_checks_fire_on_bad_objects():
    from nwbinspector import Importance

    from nwb_synergy import inspector_checks as ic

    ms = mock_MuscleSynergy(weights=mock_weights(4, 2) * 2.0, variance_accounted_for=[90, 5])
    (msg,) = _messages(ic.check_muscle_synergy_unit_norm, ms)
    assert "norm 0: 2" in msg.message and msg.importance == Importance.BEST_PRACTICE_SUGGESTION
    (msg,) = _messages(ic.check_muscle_synergy_vaf, ms)
    assert "not percent" in msg.message
    ms["weights"].data[1, 0] = -0.25  # written by some other tool
    (msg,) = _messages(ic.check_muscle_synergy_weights_sign, ms)
    assert "-0.25 for row 1 in synergy 0" in msg.message and msg.importance == Importance.CRITICAL
    ms["weights"].data[0, 1] = np.nan
    assert "1 NaN" in _messages(ic.check_muscle_synergy_weights_finite, ms)[0].message

    act = mock_SynergyActivation(n_times=50)
    act.data[3, 0] = -1.0
    act.data[4, 1] = np.inf
    (msg,) = _messages(ic.check_synergy_activation_values, act)
    assert "1 NaN or infinite value(s) and 1 negative value(s)" in msg.message
    other = mock_MuscleSynergy(n_synergies=2)
    act.muscle_synergy = None
    act.fields["muscle_synergy"] = other
    (msg,) = _messages(ic.check_synergy_activation_columns, act)
    assert "has 2 synergies" in msg.message

    nwbfile, truth = mock_emg_nwbfile("2d", n_times=2000, n_muscles=6)  # 0.98 s of EMG
    ms = mock_MuscleSynergy(emg_series=nwbfile.acquisition["EMG"], muscle_name=truth.muscle_names)
    too_long = mock_SynergyActivation(
        muscle_synergy=ms, n_times=150, rate=100.0, starting_time=truth.t_start
    )
    (msg,) = _messages(ic.check_synergy_activation_span, too_long)
    assert "span 12.75-14.25 s but the source EMG 'EMG' spans 12.75-13.733" in msg.message
    fits = mock_SynergyActivation(
        muscle_synergy=ms, n_times=98, rate=100.0, starting_time=truth.t_start
    )
    assert _messages(ic.check_synergy_activation_span, fits) == []

    sta = mock_SpikeTriggeredAverageTable()
    sta["effect"].data[1] = "PSpX"
    sta["p_value"].data[2] = -0.1
    sta["field_value"].data[3] = 0.7
    assert "['PSpX']" in _messages(ic.check_sta_effect_labels, sta)[0].message
    assert "-0.1 in row 2" in _messages(ic.check_sta_p_values, sta)[0].message
    assert "(first: row 3)" in _messages(ic.check_sta_field_values, sta)[0].message
    sta.fields["lags"] = sta.lags[:-1]
    assert "there are 80 lags" in _messages(ic.check_sta_lags, sta)[0].message


def test_nwbinspector_dandi_config_on_written_files(tmp_path):
    from nwbinspector import Importance, inspect_nwbfile, load_config

    import nwb_synergy.inspector_checks  # noqa: F401  (registers our checks)

    nwbfile, *_ = _realistic_file()
    good = tmp_path / "good.nwb"
    with NWBHDF5IO(str(good), "w") as io:
        io.write(nwbfile)
    messages = list(inspect_nwbfile(str(good), config=load_config("dandi")))
    serious = [m for m in messages if m.importance.value >= Importance.CRITICAL.value]
    assert serious == [], [(m.check_function_name, m.message) for m in serious]
    ours = [m for m in messages if m.object_type in {"MuscleSynergy", "SynergyActivation"}]
    ours += [m for m in messages if m.object_type == "SpikeTriggeredAverageTable"]
    assert ours == [], [(m.check_function_name, m.message) for m in ours]

    # the same checks run on a file with a planted problem (they are registered)
    nwbfile, *_, sta = _realistic_file()
    sta["p_value"].data[0] = 3.0
    bad = tmp_path / "bad.nwb"
    with NWBHDF5IO(str(bad), "w") as io:
        io.write(nwbfile)
    messages = list(inspect_nwbfile(str(bad), config=load_config("dandi")))
    critical = [m.check_function_name for m in messages if m.importance == Importance.CRITICAL]
    assert critical == ["check_sta_p_values"]
