"""Writing results (write_synergies, write_sta) and saving them safely (edit_nwb, save_nwb)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pynwb
import pytest
from pynwb import NWBHDF5IO

from nwb_synergy.errors import InputError, ResultsExistError
from nwb_synergy.io.files import file_label
from nwb_synergy.io.read import read_emg
from nwb_synergy.io.save import edit_nwb, save_nwb
from nwb_synergy.io.write import write_sta, write_synergies
from nwb_synergy.ndx import MuscleSynergy, SpikeTriggeredAverageTable, SynergyActivation
from nwb_synergy.signals import EMG, EMGSource
from nwb_synergy.testing.mock_files import mock_emg_nwbfile, write_mock_file

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- stand-ins


class FittedModel:
    """Duck-typed fitted synergy model (what write_synergies needs, nothing more)."""

    method = "nmf"
    nonnegative = True

    def __init__(self, weights, activations, muscle_names=None, random_state=0):
        self.weights_ = np.asarray(weights, dtype=float)
        self.activations_ = np.asarray(activations, dtype=float)
        self.offset_ = np.zeros(self.weights_.shape[0])
        self.muscle_names_ = muscle_names
        self.random_state = random_state

    def get_params(self):
        return {"n_synergies": self.weights_.shape[1], "random_state": self.random_state}


@dataclass
class FakeSTA:
    """Stand-in for nwb_synergy.sta's STAResult (the attributes write_sta reads)."""

    mean: np.ndarray
    lags: np.ndarray
    n_used: int
    n_unused: int
    window: tuple[float, float]
    rate: float
    muscle_names: list[str]


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*.tmp.nwb"))


def _disjoint_synergies(n_times=300, seed=0):
    """EMG = A W^T with two synergies on disjoint muscles: each synergy's VAF is known."""
    rng = np.random.default_rng(seed)
    w = np.zeros((6, 2))
    w[:3, 0] = [0.6, 0.64, 0.48]
    w[3:, 1] = [0.8, 0.36, 0.48]
    a = np.abs(rng.standard_normal((n_times, 2))) * [1.0, 2.0]
    return w, a, a @ w.T


def _emg_for(nwbfile, truth, data, rate=100.0):
    """A conditioned EMG whose source is the 2-D series ``acquisition/EMG`` of nwbfile."""
    series = nwbfile.acquisition["EMG"]
    source = EMGSource(
        file=None,
        series_names=("acquisition/EMG",),
        channels=tuple(range(truth.n_muscles)),
        series=(series,) * truth.n_muscles,
    )
    history = [
        {"step": "read_nwb", "series": ["acquisition/EMG"]},
        {"step": "envelope", "lowpass_hz": 20.0, "rate": rate},
    ]
    return EMG(
        data=data,
        rate=rate,
        t_start=truth.t_start,
        muscle_names=truth.muscle_names,
        unit="a.u.",
        source=source,
        history=history,
    )


# --------------------------------------------------------------------------- write_synergies


def test_write_synergies_contents_timing_vaf_and_provenance(tmp_path):
    nwbfile, truth = mock_emg_nwbfile("2d", n_times=500, n_muscles=6)
    w, a, x = _disjoint_synergies()
    emg = _emg_for(nwbfile, truth, x)
    model = FittedModel(w, a, muscle_names=truth.muscle_names, random_state=7)
    ms, act = write_synergies(nwbfile, model, emg)

    assert (ms.name, act.name) == ("MuscleSynergyNMF", "SynergyActivationNMF")
    assert nwbfile.processing["behavior"]["MuscleSynergyNMF"] is ms
    assert "placeholder" not in nwbfile.processing["behavior"].description.lower()
    assert "2 muscle synergies of 6 muscles extracted by NMF" in ms.description
    np.testing.assert_array_equal(ms.weights_array(), w.astype(np.float32))
    assert ms.muscle_names == truth.muscle_names
    # per-synergy VAF: with disjoint supports, synergy k alone explains |a_k w_k^T|^2 / |X|^2
    expected = [np.sum(np.outer(a[:, k], w[:, k]) ** 2) / np.sum(x**2) for k in range(2)]
    np.testing.assert_allclose(ms.variance_accounted_for, expected, rtol=1e-6)
    assert 0.1 < expected[0] < 0.4 < expected[1]
    # activations timed like the EMG they were fitted on
    assert act.rate == 100.0 and act.starting_time == truth.t_start and act.unit == "a.u."
    np.testing.assert_array_equal(act.data, a.astype(np.float32))
    assert act.muscle_synergy is ms
    # references to the source series and its columns
    assert [s.name for s in ms["emg_series"].data] == ["EMG"] * 6
    np.testing.assert_array_equal(ms["emg_channel"].data, np.arange(6))
    # provenance
    assert ms.method == "nmf" and ms.nonnegative is True
    assert json.loads(ms.parameters) == {"n_synergies": 2, "random_state": 7}
    prov = ms.provenance_dict
    assert prov["conditioning"] == emg.history
    assert prov["versions"]["numpy"] == np.__version__
    assert prov["versions"]["pynwb"] == pynwb.__version__
    assert "torch" in prov["versions"] and "nwb-synergy" in prov["versions"]
    assert prov["emg"]["rate"] == 100.0 and prov["emg"]["n_times"] == 300
    assert ms.software == "nwb_synergy" and ms.software_version == prov["versions"]["nwb-synergy"]
    assert "offset" not in ms.colnames  # NMF: zero offset is not stored

    path = save_nwb(nwbfile, tmp_path / "out.nwb")
    assert list(pynwb.validate(path=str(path))) == []
    with NWBHDF5IO(str(path), "r") as io:
        read = io.read()
        ms2 = read.processing["behavior"]["MuscleSynergyNMF"]
        act2 = read.processing["behavior"]["SynergyActivationNMF"]
        assert ms2["emg_series"].data[0] is read.acquisition["EMG"]
        np.testing.assert_allclose(ms2.variance_accounted_for[:], expected, rtol=1e-6)
        np.testing.assert_array_equal(act2.data[:], a.astype(np.float32))
        assert act2.muscle_synergy is ms2 and act2.starting_time == truth.t_start


def test_write_synergies_names_signed_offset_and_without_emg():
    nwbfile, truth = mock_emg_nwbfile("2d", n_times=200, n_muscles=6)
    w, a, _ = _disjoint_synergies(n_times=50)
    w[0, 1] = -0.2
    model = FittedModel(w, a)
    model.method, model.nonnegative = "rlvm", False
    model.offset_ = np.linspace(0.1, 0.6, 6)
    ms, act = write_synergies(nwbfile, model, name="RLVMWarm", rate=50.0, t_start=2.0)
    assert (ms.name, act.name) == ("MuscleSynergyRLVMWarm", "SynergyActivationRLVMWarm")
    assert ms.nonnegative is False and ms.weights_array()[0, 1] == np.float32(-0.2)
    np.testing.assert_allclose(ms.offset_array(), np.linspace(0.1, 0.6, 6), rtol=1e-6)
    assert act.rate == 50.0 and act.starting_time == 2.0
    assert ms.muscle_names == [f"muscle_{i}" for i in range(6)]
    assert "emg_series" not in ms.colnames and ms.variance_accounted_for is None


def test_write_synergies_bad_input_names_file_and_object():
    nwbfile, truth = mock_emg_nwbfile("2d", n_times=200, n_muscles=6)
    w, a, x = _disjoint_synergies(n_times=60)
    emg = _emg_for(nwbfile, truth, x)
    label = file_label(nwbfile)

    class Unfitted:
        method = "nmf"

    with pytest.raises(InputError, match="has no 'weights_': fit it first") as info:
        write_synergies(nwbfile, Unfitted(), emg)
    assert label in str(info.value)
    with pytest.raises(InputError, match=r"EMG has shape \(60, 6\) but .* imply \(59, 6\)"):
        write_synergies(nwbfile, FittedModel(w, a[:59]), emg)
    with pytest.raises(InputError, match="fitted on muscles"):
        write_synergies(nwbfile, FittedModel(w, a, muscle_names=list("ABCDEF")), emg)
    with pytest.raises(InputError, match="no timing for the activations"):
        write_synergies(nwbfile, FittedModel(w, a))
    bad = FittedModel(w, -a)
    with pytest.raises(InputError, match="activations must be non-negative") as info:
        write_synergies(nwbfile, bad, emg)
    assert "processing/behavior/SynergyActivationNMF" in str(info.value)
    assert "behavior" not in nwbfile.processing  # nothing half-written


@pytest.mark.parametrize("layout", ["2d", "per_muscle", "electrical"])
def test_references_resolve_after_reading_in_every_layout(tmp_path, layout):
    path = tmp_path / f"{layout}.nwb"
    truth = write_mock_file(path, layout=layout, n_times=400, n_muscles=4)
    with edit_nwb(path) as nwbfile:
        emg = read_emg(nwbfile)
        env = emg.replace(data=np.abs(emg.to_numpy()))
        env.history.append({"step": "rectify"})
        rng = np.random.default_rng(1)
        w = rng.uniform(0.1, 1.0, (4, 2))
        w /= np.linalg.norm(w, axis=0)
        write_synergies(nwbfile, FittedModel(w, rng.uniform(0, 1, (400, 2))), env)
    assert list(pynwb.validate(path=str(path))) == []
    with NWBHDF5IO(str(path), "r") as io:
        read = io.read()
        ms = read.processing["behavior"]["MuscleSynergyNMF"]
        assert ms.muscle_names == truth.muscle_names
        for i, (series, channel) in enumerate(
            zip(ms["emg_series"].data[:], ms["emg_channel"].data[:], strict=True)
        ):
            raw = series.data[:]
            column = raw if raw.ndim == 1 else raw[:, channel]
            np.testing.assert_array_equal(column, truth.raw[:, i])
        if layout == "electrical":
            rows = np.asarray(ms["electrodes"].data[:])
            muscles = np.asarray(read.electrodes["muscle"].data[:])[rows]
            assert list(muscles) == truth.muscle_names
        else:
            assert "electrodes" not in ms.colnames
        assert ms.provenance_dict["conditioning"][-1] == {"step": "rectify"}


def test_second_write_refuses_then_overwrite_replaces(tmp_path):
    path = tmp_path / "session.nwb"
    truth = write_mock_file(path, layout="2d", n_times=300, n_muscles=6)
    w, a, x = _disjoint_synergies(n_times=300)
    with edit_nwb(path) as nwbfile:
        write_synergies(nwbfile, FittedModel(w, a), _emg_for(nwbfile, truth, x))
    after_first = _sha(path)

    with pytest.raises(ResultsExistError) as info:
        with edit_nwb(path) as nwbfile:
            write_synergies(nwbfile, FittedModel(w, a), _emg_for(nwbfile, truth, x))
    message = str(info.value)
    assert str(path) in message and "processing/behavior/MuscleSynergyNMF" in message
    assert "overwrite=True" in message
    assert _sha(path) == after_first and _leftovers(tmp_path) == []

    w2 = w[:, ::-1].copy()
    with edit_nwb(path) as nwbfile:
        write_synergies(nwbfile, FittedModel(w2, a[:, ::-1]), _emg_for(nwbfile, truth, x),
                        overwrite=True)  # fmt: skip
    assert list(pynwb.validate(path=str(path))) == []
    with NWBHDF5IO(str(path), "r") as io:
        read = io.read()
        behavior = read.processing["behavior"]
        assert sorted(behavior.data_interfaces) == ["MuscleSynergyNMF", "SynergyActivationNMF"]
        np.testing.assert_array_equal(
            behavior["MuscleSynergyNMF"].weights_array(), w2.astype(np.float32)
        )
        assert behavior["SynergyActivationNMF"].muscle_synergy is behavior["MuscleSynergyNMF"]
    with h5py.File(path, "r") as f:  # the old objects are gone from the HDF5 file itself
        assert sorted(f["processing/behavior"].keys()) == [
            "MuscleSynergyNMF",
            "SynergyActivationNMF",
        ]


def test_write_synergies_from_a_real_nmf_fit(tmp_path):
    from nwb_synergy.factorize import NMF, vaf

    nwbfile, truth = mock_emg_nwbfile("2d", n_times=300, n_muscles=6)
    w, a, x = _disjoint_synergies(n_times=200)
    emg = _emg_for(nwbfile, truth, x)
    model = NMF(n_synergies=2, n_restarts=2, max_iter=200, random_state=3).fit(emg)
    ms, act = write_synergies(nwbfile, model, emg)
    params = json.loads(ms.parameters)
    assert params["random_state"] == 3 and params["n_synergies"] == 2
    assert ms.provenance_dict["fit"]["vaf_uncentered"] == pytest.approx(model.vaf_)
    assert model.vaf_ > 0.999  # exact rank-2 data
    # per-synergy VAF = the model's own reconstruction from that synergy alone
    for k in range(2):
        only_k = np.zeros_like(model.activations_)
        only_k[:, k] = model.activations_[:, k]
        expected = vaf(x, model.inverse_transform(only_k))
        assert ms.variance_accounted_for[k] == pytest.approx(expected, abs=1e-6)
    assert 0.1 < min(ms.variance_accounted_for) < max(ms.variance_accounted_for) < 0.95
    path = save_nwb(nwbfile, tmp_path / "nmf.nwb")
    assert list(pynwb.validate(path=str(path))) == []


# --------------------------------------------------------------------------- write_sta


def _sta_inputs(truth, muscles, unit_ids, n_lags=41, rate=1000.0):
    lags = -0.01 + np.arange(n_lags) / rate
    stas, effects, fields = {}, {}, {}
    for k, uid in enumerate(unit_ids):
        mean = np.full((n_lags, len(muscles)), 1e-5) + 1e-6 * k
        mean[15:25, 0] *= 1.4
        stas[uid] = FakeSTA(mean, lags, 100 + k, k, (-0.01, 0.031), rate, list(muscles))
        effects[uid] = pd.DataFrame(
            {
                "effect": ["PSF", None] + ["PSpS"] * (len(muscles) - 2),
                "mpi": [40.0, np.nan] + [-10.0] * (len(muscles) - 2),
                "ppi": [55.0, np.nan] + [-15.0] * (len(muscles) - 2),
                "p_value": [1e-4, 0.4] + [0.01] * (len(muscles) - 2),
                "onset": [0.005, np.nan] + [0.006] * (len(muscles) - 2),
                "peak_latency": [0.008, np.nan] + [0.009] * (len(muscles) - 2),
                "offset": [0.014, np.nan] + [0.012] * (len(muscles) - 2),
            },
            index=list(muscles),
        ).iloc[::-1]  # rows in another order than the muscles: matched by name
        fields[uid] = np.array([1.0, 0.0] + [-0.25] * (len(muscles) - 2))
    return stas, effects, fields


def test_write_sta_rows_point_to_the_right_units(tmp_path):
    nwbfile, truth = mock_emg_nwbfile("2d", n_times=3000, n_muscles=4)
    unit_ids = [12, 3]  # Units ids are 3, 7, 12: not row numbers, not in table order
    muscles = truth.muscle_names
    stas, effects, fields = _sta_inputs(truth, muscles, unit_ids, rate=truth.rate)
    emg = _emg_for(nwbfile, truth, np.abs(truth.volts), rate=truth.rate)
    with pytest.raises(InputError, match="averages were computed at 1000 Hz but the EMG"):
        write_sta(nwbfile, _sta_inputs(truth, muscles, unit_ids)[0], emg=emg)
    table = write_sta(
        nwbfile, stas, effects, fields, emg=emg, parameters={"test_window": [0.003, 0.015]}
    )
    assert nwbfile.processing["ecephys"]["SpikeTriggeredAverages"] is table
    path = save_nwb(nwbfile, tmp_path / "sta.nwb")
    assert list(pynwb.validate(path=str(path))) == []
    with NWBHDF5IO(str(path), "r") as io:
        read = io.read()
        sta = read.processing["ecephys"]["SpikeTriggeredAverages"]
        assert type(sta) is SpikeTriggeredAverageTable
        ids = np.asarray(read.units.id.data[:])[sta.unit_rows()]
        assert ids.tolist() == [12] * 4 + [3] * 4
        spikes_of_row0 = sta["unit"][0]["spike_times"].iloc[0]
        np.testing.assert_array_equal(spikes_of_row0, truth.spike_times[12])
        df = sta.to_dataframe(index=True)
        assert list(df["muscle_name"]) == muscles * 2
        assert list(df["effect"]) == (["PSF", "none", "PSpS", "PSpS"]) * 2
        np.testing.assert_allclose(df["mpi"].iloc[:4], [40.0, np.nan, -10.0, -10.0])
        np.testing.assert_allclose(df["field_value"], [1.0, 0.0, -0.25, -0.25] * 2)
        assert df["n_spikes_used"].tolist() == [100] * 4 + [101] * 4
        assert df["n_spikes_excluded"].tolist() == [0] * 4 + [1] * 4
        np.testing.assert_allclose(sta.sta_array()[0], stas[12].mean[:, 0], rtol=1e-6)
        np.testing.assert_allclose(sta.lags[:], stas[3].lags)
        np.testing.assert_allclose(sta.window[:], [-0.01, 0.031])
        assert sta.emg_rate == truth.rate and sta.emg_unit == "a.u."
        assert json.loads(sta.parameters) == {"test_window": [0.003, 0.015]}
        assert sta.provenance_dict["conditioning"] == emg.history
        assert sta["emg_series"].data[0] is read.acquisition["EMG"]
        assert sta["emg_channel"].data[:].tolist() == [0, 1, 2, 3] * 2


def test_write_sta_bad_input_and_second_run():
    nwbfile, truth = mock_emg_nwbfile("2d", n_times=300, n_muscles=3)
    stas, effects, fields = _sta_inputs(truth, truth.muscle_names, [3, 7])
    with pytest.raises(InputError, match=r"unit id\(s\) \[99\] are not in the Units table"):
        write_sta(nwbfile, {99: stas[3]})
    with pytest.raises(InputError, match="effects of unit 3 lack muscle"):
        write_sta(nwbfile, stas, {3: effects[3].iloc[:1], 7: effects[7]})
    with pytest.raises(InputError, match=r"muscle field of unit 7 has shape \(2,\)"):
        write_sta(nwbfile, stas, effects, {3: fields[3], 7: fields[7][:2]})
    odd = dict(stas)
    odd[7] = FakeSTA(stas[7].mean, stas[7].lags, 5, 0, (-0.01, 0.031), 1000.0, ["X", "Y", "Z"])
    with pytest.raises(InputError, match="other lags or muscles"):
        write_sta(nwbfile, odd)
    write_sta(nwbfile, stas, effects, fields)
    with pytest.raises(ResultsExistError, match="ecephys/SpikeTriggeredAverages"):
        write_sta(nwbfile, stas)
    table = write_sta(nwbfile, {7: stas[7]}, overwrite=True)
    assert list(nwbfile.processing["ecephys"].data_interfaces) == ["SpikeTriggeredAverages"]
    assert len(table) == 3 and "effect" not in table.colnames

    no_units, _ = mock_emg_nwbfile("2d", n_times=300, n_muscles=3, units_where=None)
    with pytest.raises(InputError, match="no Units table"):
        write_sta(no_units, stas)


def test_write_sta_keeps_units_without_usable_spikes_as_nan():
    nwbfile, truth = mock_emg_nwbfile("2d", n_times=300, n_muscles=3)
    stas, _, _ = _sta_inputs(truth, truth.muscle_names, [3, 7])
    empty = stas[7]
    stas[7] = FakeSTA(np.full_like(empty.mean, np.nan), empty.lags, 0, 30, empty.window,
                      empty.rate, empty.muscle_names)  # fmt: skip
    table = write_sta(nwbfile, stas)
    assert np.isnan(table.sta_array()[3:]).all() and np.isfinite(table.sta_array()[:3]).all()
    stas[3] = FakeSTA(np.full_like(empty.mean, np.nan), empty.lags, 5, 0, empty.window,
                      empty.rate, empty.muscle_names)  # fmt: skip
    with pytest.raises(InputError, match="'sta \\(rows with spikes\\)' has"):
        write_sta(nwbfile, stas, overwrite=True)
    # a failed replacement keeps the previous results
    assert nwbfile.processing["ecephys"]["SpikeTriggeredAverages"] is table


# --------------------------------------------------------------------------- edit_nwb / save_nwb


def test_edit_nwb_exports_to_a_new_file_and_refuses_an_existing_output(tmp_path):
    src = tmp_path / "src.nwb"
    truth = write_mock_file(src, layout="2d", n_times=300, n_muscles=6)
    before = _sha(src)
    out = tmp_path / "out.nwb"
    w, a, x = _disjoint_synergies(n_times=300)
    with edit_nwb(src, out) as nwbfile:
        write_synergies(nwbfile, FittedModel(w, a), _emg_for(nwbfile, truth, x))
    assert _sha(src) == before
    with NWBHDF5IO(str(out), "r") as io:
        read = io.read()
        assert isinstance(read.processing["behavior"]["MuscleSynergyNMF"], MuscleSynergy)
        np.testing.assert_array_equal(read.acquisition["EMG"].data[:], truth.raw)
    with h5py.File(out, "r") as f:  # data copied, not linked to the source
        assert isinstance(f.get("acquisition/EMG/data", getlink=True), h5py.HardLink)
    out_sha = _sha(out)
    with pytest.raises(ResultsExistError, match=f"file '{out}': output file already exists"):
        with edit_nwb(src, out) as nwbfile:
            pass
    assert _sha(out) == out_sha
    with edit_nwb(src, out, overwrite=True) as nwbfile:
        assert "behavior" not in nwbfile.processing
    with NWBHDF5IO(str(out), "r") as io:
        assert "behavior" not in io.read().processing
    assert _leftovers(tmp_path) == []


def test_in_place_edit_keeps_the_file_permissions(tmp_path):
    src = tmp_path / "src.nwb"
    write_mock_file(src, layout="2d", n_times=100, n_muscles=6)
    os.chmod(src, 0o640)
    with edit_nwb(src) as nwbfile:
        write_synergies(nwbfile, FittedModel(np.full((6, 1), 0.5), np.ones((10, 1))), rate=10.0)
    assert src.stat().st_mode & 0o777 == 0o640
    umask = os.umask(0)
    os.umask(umask)
    save_nwb(mock_emg_nwbfile("2d", n_times=50)[0], tmp_path / "new.nwb")
    assert (tmp_path / "new.nwb").stat().st_mode & 0o777 == 0o666 & ~umask


def test_edit_nwb_clear_errors_for_missing_and_non_nwb_files(tmp_path):
    with pytest.raises(InputError, match="file not found") as info:
        with edit_nwb(tmp_path / "missing.nwb"):
            pass
    assert "missing.nwb" in str(info.value)
    text = tmp_path / "notes.nwb"
    text.write_text("not an HDF5 file")
    with pytest.raises(InputError, match="not an NWB file \\(not readable as HDF5\\)"):
        with edit_nwb(text):
            pass
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(InputError, match="without the 'nwb_version' attribute") as info:
        with edit_nwb(plain):
            pass
    assert str(plain) in str(info.value)


def test_error_inside_the_block_leaves_the_source_identical(tmp_path):
    src = tmp_path / "src.nwb"
    write_mock_file(src, layout="2d", n_times=300, n_muscles=6)
    before = _sha(src)
    with pytest.raises(RuntimeError, match="analysis failed"):
        with edit_nwb(src) as nwbfile:
            nwbfile.create_processing_module("behavior", "partial results")
            raise RuntimeError("analysis failed")
    assert _sha(src) == before and _leftovers(tmp_path) == []


def test_full_disk_during_export_leaves_the_source_identical(tmp_path, monkeypatch):
    from hdmf.backends.hdf5 import h5tools

    src = tmp_path / "src.nwb"
    truth = write_mock_file(src, layout="2d", n_times=300, n_muscles=6)
    before = _sha(src)
    original = h5tools.HDF5IO.write_dataset
    calls = {"n": 0}

    def fill_disk(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 6:
            raise OSError(errno.ENOSPC, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(h5tools.HDF5IO, "write_dataset", fill_disk)
    w, a, x = _disjoint_synergies(n_times=300)
    with pytest.raises(OSError, match="No space left on device"):
        with edit_nwb(src) as nwbfile:
            write_synergies(nwbfile, FittedModel(w, a), _emg_for(nwbfile, truth, x))
    assert calls["n"] == 6
    assert _sha(src) == before and _leftovers(tmp_path) == []


_KILLED_WRITER = r"""
import sys, time
from pathlib import Path
import numpy as np
from hdmf.backends.hdf5 import h5tools
from nwb_synergy.io.save import edit_nwb
from nwb_synergy.io.write import write_synergies

src, marker = sys.argv[1], Path(sys.argv[2])
original = h5tools.HDF5IO.write_dataset
calls = {"n": 0}

def slow(self, *args, **kwargs):
    calls["n"] += 1
    if calls["n"] == 8:  # part of the copy is on disk: announce it and wait to be killed
        self._file.flush()
        marker.write_text(self.source)
        time.sleep(120)
    return original(self, *args, **kwargs)

h5tools.HDF5IO.write_dataset = slow

class Model:
    method, nonnegative = "nmf", True
    weights_ = np.full((6, 2), 0.5)
    activations_ = np.ones((100, 2))

with edit_nwb(src) as nwbfile:
    write_synergies(nwbfile, Model(), rate=100.0)
"""


def test_sigkill_during_in_place_write_leaves_the_source_identical(tmp_path):
    src = tmp_path / "src.nwb"
    write_mock_file(src, layout="2d", n_times=2000, n_muscles=6)
    before = _sha(src)
    marker = tmp_path / "writing.txt"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(src), str(marker)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), proc.stderr.read().decode() if proc.poll() is not None else ""
        tmp_file = Path(marker.read_text())
        assert tmp_file.parent == tmp_path and tmp_file.name.startswith(".src.")
        assert tmp_file.exists() and tmp_file.stat().st_size > 0  # killed mid-write
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert _sha(src) == before
    with NWBHDF5IO(str(src), "r") as io:
        assert "behavior" not in io.read().processing
    # the leftover temporary file does not get in the way of the next run
    assert _leftovers(tmp_path) == [tmp_file.name]
    with edit_nwb(src) as nwbfile:
        nwbfile.create_processing_module("behavior", "EMG-derived results")
        write_synergies(
            nwbfile,
            FittedModel(np.full((6, 1), 1 / np.sqrt(6)), np.ones((10, 1))),
            rate=100.0,
        )
    with NWBHDF5IO(str(src), "r") as io:
        assert "MuscleSynergyNMF" in io.read().processing["behavior"].data_interfaces


def test_save_nwb_refuses_existing_file_and_replaces_with_overwrite(tmp_path):
    path = tmp_path / "new.nwb"
    nwbfile, truth = mock_emg_nwbfile("2d", n_times=200, n_muscles=6)
    assert save_nwb(nwbfile, path) == path
    assert list(pynwb.validate(path=str(path))) == []
    first = _sha(path)
    other, _ = mock_emg_nwbfile("2d", n_times=100, n_muscles=6)
    with pytest.raises(ResultsExistError, match=f"file '{path}': already exists"):
        save_nwb(other, path)
    assert _sha(path) == first
    save_nwb(other, path, overwrite=True)
    with NWBHDF5IO(str(path), "r") as io:
        assert io.read().acquisition["EMG"].data.shape == (100, 6)
    with pytest.raises(InputError, match="destination folder does not exist"):
        save_nwb(mock_emg_nwbfile("2d", n_times=50)[0], tmp_path / "nope" / "x.nwb")
    assert _leftovers(tmp_path) == []


def test_save_nwb_exports_a_file_read_from_disk(tmp_path):
    src = tmp_path / "src.nwb"
    truth = write_mock_file(src, layout="per_muscle", n_times=300, n_muscles=4)
    before = _sha(src)
    with NWBHDF5IO(str(src), "r") as io:
        nwbfile = io.read()
        emg = read_emg(nwbfile)
        w = np.full((4, 1), 0.5)
        write_synergies(nwbfile, FittedModel(w, np.ones((300, 1))), emg)
        save_nwb(nwbfile, tmp_path / "copy.nwb")
    assert _sha(src) == before
    assert list(pynwb.validate(path=str(tmp_path / "copy.nwb"))) == []
    with NWBHDF5IO(str(tmp_path / "copy.nwb"), "r") as io:
        read = io.read()
        act = read.processing["behavior"]["SynergyActivationNMF"]
        assert isinstance(act, SynergyActivation) and act.rate == truth.rate
        series = read.processing["behavior"]["MuscleSynergyNMF"]["emg_series"].data[:]
        assert [s.name for s in series] == truth.muscle_names
