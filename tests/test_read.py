"""Reading EMG and spike trains from NWB files in every layout, and bad input."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest
from pynwb import NWBHDF5IO, TimeSeries, validate
from pynwb.misc import Units

from nwb_synergy.errors import InputError
from nwb_synergy.io.read import (
    NamesWarning,
    ScaledArray,
    find_emg_candidates,
    open_emg,
    read_emg,
    read_spike_trains,
)
from nwb_synergy.testing.mock_files import (
    add_emg,
    add_units,
    make_truth,
    mock_emg_nwbfile,
    mock_nwbfile,
    write_mock_file,
    write_nwbfile,
)

CASES = [
    ("2d", "acquisition"),
    ("2d", "behavior"),
    ("per_muscle", "acquisition"),
    ("per_muscle", "behavior"),
    ("per_muscle", "behavior/EMG"),
    ("electrical", "acquisition"),
    ("electrical", "ecephys/EMG"),
]


def assert_volts(emg, truth) -> None:
    data = np.asarray(emg.data)
    assert data.shape == truth.volts.shape
    scale = np.abs(truth.volts).max()
    np.testing.assert_allclose(data, truth.volts, rtol=0, atol=1e-12 * scale)
    assert emg.rate == pytest.approx(truth.rate, rel=1e-12)
    assert emg.t_start == pytest.approx(truth.t_start, rel=1e-12)
    assert emg.muscle_names == truth.muscle_names
    assert emg.unit == "V"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One mock file per (layout, where), written once for the module."""
    folder = tmp_path_factory.mktemp("layouts")
    out = {}
    for layout, where in CASES:
        path = folder / f"{layout}_{where.replace('/', '_')}.nwb"
        units_where = "ecephys" if where == "behavior" else "root"
        out[layout, where] = (
            path,
            write_mock_file(path, layout, where=where, units_where=units_where),
        )
    return out


@pytest.mark.parametrize("layout, where", CASES)
def test_every_layout_from_disk_gives_volts_rate_start_and_names(files, layout, where):
    path, truth = files[layout, where]
    emg = read_emg(path)
    assert_volts(emg, truth)
    # conversion, offset and gains really were needed: the raw integers are far from volts
    assert np.abs(truth.raw).max() > 100
    assert truth.rate != 1000 and truth.t_start != 0
    src = emg.source
    assert src.file == str(path)
    assert src.series is None  # the file was opened and closed by read_emg
    if layout == "per_muscle":
        assert src.series_names == tuple(
            f"{'acquisition' if where == 'acquisition' else 'processing/' + where}/{m}"
            for m in truth.muscle_names
        )
        assert src.channels == (0,) * truth.n_muscles
        assert not np.allclose(truth.gains, 1.0)  # per-series conversion differs
    else:
        prefix = "acquisition" if where == "acquisition" else f"processing/{where}"
        assert src.series_names == (f"{prefix}/EMG",)
        assert src.channels == tuple(range(truth.n_muscles))
    if layout == "electrical":
        assert src.electrodes == tuple(range(truth.n_muscles))
        assert not np.allclose(truth.gains, 1.0)  # channel_conversion must be applied
    else:
        assert src.electrodes is None


@pytest.mark.parametrize("layout, where", [CASES[1], CASES[4], CASES[6]])
def test_in_memory_nwbfile_with_timestamps_gives_the_same(layout, where):
    nwbfile, truth = mock_emg_nwbfile(layout, where=where, timestamps=True, n_times=1500)
    emg = read_emg(nwbfile)
    assert_volts(emg, truth)
    # the series objects are kept (nothing was closed), one per muscle
    assert len(emg.source.series) == truth.n_muscles
    assert all(s.timestamps is not None for s in emg.source.series)


def test_matches_pynwb_get_data_in_units_for_an_electrical_series(files):
    path, truth = files["electrical", "ecephys/EMG"]
    with NWBHDF5IO(str(path), "r") as io:
        nwbfile = io.read()
        series = nwbfile.processing["ecephys"]["EMG"]["EMG"]
        reference = series.get_data_in_units()
        emg = read_emg(nwbfile)
        assert emg.source.series[0] is series
    np.testing.assert_allclose(emg.data, reference, rtol=1e-12)


def test_mock_files_are_valid_nwb_and_pass_the_dandi_inspection(files):
    from nwbinspector import inspect_nwbfile, load_config

    for path, _ in files.values():
        assert validate(path=str(path)) == []
    config = load_config("dandi")
    for key in (("2d", "acquisition"), ("per_muscle", "behavior"), ("electrical", "ecephys/EMG")):
        findings = list(inspect_nwbfile(nwbfile_path=str(files[key][0]), config=config))
        assert [(m.importance.name, m.message) for m in findings] == []


def test_muscle_names_from_json_comments_and_location_column():
    nwbfile, truth = mock_emg_nwbfile("2d", names_in="comments", n_times=500)
    assert read_emg(nwbfile).muscle_names == truth.muscle_names
    nwbfile, truth = mock_emg_nwbfile("electrical", names_in="location", n_times=500)
    emg = read_emg(nwbfile)
    assert emg.muscle_names == truth.muscle_names
    assert_volts(emg, truth)


def test_unnamed_columns_warn_and_muscle_names_fills_them():
    nwbfile, truth = mock_emg_nwbfile("2d", names_in="none", n_times=500, n_muscles=4)
    with pytest.warns(NamesWarning, match="muscle_names="):
        emg = read_emg(nwbfile)
    assert emg.muscle_names == ["muscle_0", "muscle_1", "muscle_2", "muscle_3"]
    names = ["a", "b", "c", "d"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emg = read_emg(nwbfile, muscle_names=names)
    assert emg.muscle_names == names
    np.testing.assert_array_equal(emg.data, truth.volts)
    with pytest.raises(InputError, match="3 names for 4 EMG channels"):
        read_emg(nwbfile, muscle_names=names[:3])


def test_per_muscle_names_pick_and_order_series_and_strip_emg_prefix():
    truth = make_truth(n_times=400, n_muscles=3)
    nwbfile = mock_nwbfile()
    for k, m in enumerate(truth.muscle_names):
        nwbfile.add_acquisition(
            TimeSeries(
                name=f"EMG_{m}",
                data=truth.raw[:, k],
                unit="mV",  # millivolts: the reader must divide by 1000
                conversion=truth.conversion * 1e3,
                offset=truth.offset * 1e3,
                rate=truth.rate,
                starting_time=truth.t_start,
                description="surface electrode",
            )
        )
    emg = read_emg(nwbfile)
    order = np.argsort(truth.muscle_names)
    assert emg.muscle_names == [truth.muscle_names[k] for k in order]
    np.testing.assert_allclose(emg.data, truth.volts[:, order], rtol=1e-12)
    wanted = [truth.muscle_names[2], truth.muscle_names[0]]
    emg = read_emg(nwbfile, muscle_names=wanted)
    assert emg.muscle_names == wanted
    np.testing.assert_allclose(emg.data, truth.volts[:, [2, 0]], rtol=1e-12)
    assert emg.source.series_names == (
        f"acquisition/EMG_{wanted[0]}",
        f"acquisition/EMG_{wanted[1]}",
    )
    with pytest.raises(InputError, match=r"\['nope'\] match no series"):
        read_emg(nwbfile, muscle_names=["nope"])


@pytest.fixture(scope="module")
def two_emg_file(tmp_path_factory):
    """A 2-D EMG in acquisition and per-muscle EMG in processing/behavior."""
    nwbfile, truth2d = mock_emg_nwbfile("2d", n_times=600, n_muscles=5, seed=1, units_where=None)
    truth_pm = make_truth(n_times=800, n_muscles=3, rate=1111.0, t_start=3.0, seed=2)
    add_emg(nwbfile, truth_pm, "per_muscle", where="behavior")
    path = tmp_path_factory.mktemp("two") / "two_emg.nwb"
    write_nwbfile(nwbfile, path)
    order = np.argsort(truth_pm.muscle_names)
    return path, truth2d, truth_pm, order


def test_candidates_are_listed_and_selected_by_name(two_emg_file):
    path, truth2d, truth_pm, order = two_emg_file
    cands = find_emg_candidates(path)
    assert [(c.name, c.layout, c.n_muscles, c.rate) for c in cands] == [
        ("EMG", "2-D TimeSeries", 5, truth2d.rate),
        ("behavior", "per-muscle TimeSeries", 3, 1111.0),
    ]
    with pytest.raises(InputError) as info:
        read_emg(path)
    msg = str(info.value)
    assert "two_emg.nwb" in msg and "ambiguous EMG" in msg and "pass name=" in msg
    assert "object 'acquisition/EMG, processing/behavior'" in msg
    assert "'EMG' (2-D TimeSeries at acquisition/EMG, 5 muscles" in msg
    assert "'behavior' (per-muscle TimeSeries at processing/behavior, 3 muscles, 1111 Hz)" in msg
    for name in ("EMG", "acquisition/EMG"):
        assert_volts(read_emg(path, name), truth2d)
    for name in ("behavior", "processing/behavior"):
        emg = read_emg(path, name)
        np.testing.assert_allclose(emg.data, truth_pm.volts[:, order], rtol=1e-12)
        assert (emg.rate, emg.t_start) == (1111.0, 3.0)
    with pytest.raises(InputError, match="no series or container named 'Force'") as info:
        read_emg(path, "Force")
    assert "two_emg.nwb" in str(info.value) and "object 'Force'" in str(info.value)


def test_per_muscle_series_stored_as_single_columns():
    truth = make_truth(n_times=250, n_muscles=2)
    nwbfile = mock_nwbfile()
    module = nwbfile.create_processing_module("ecephys", "EMG")
    for k, m in enumerate(truth.muscle_names):
        module.add(
            TimeSeries(
                name=m,
                data=truth.raw[:, k : k + 1],  # shape (n_times, 1)
                unit="uV",
                conversion=truth.conversion * 1e6,
                offset=truth.offset * 1e6,
                rate=truth.rate,
                starting_time=truth.t_start,
                description=f"EMG {m}",
            )
        )
    emg = read_emg(nwbfile)
    assert emg.source.series_names == tuple(
        f"processing/ecephys/{m}" for m in sorted(truth.muscle_names)
    )
    order = np.argsort(truth.muscle_names)
    np.testing.assert_allclose(emg.data, truth.volts[:, order], rtol=1e-12)
    np.testing.assert_allclose(
        read_emg(nwbfile, load=False).data[7:9], truth.volts[7:9, order], rtol=1e-12
    )


def test_a_series_not_recognised_as_emg_is_read_when_named():
    truth = make_truth(n_times=300, n_muscles=4)
    nwbfile = mock_nwbfile()
    nwbfile.add_acquisition(
        TimeSeries(
            name="Muscles",
            data=truth.raw,
            unit="V",
            conversion=truth.conversion,
            offset=truth.offset,
            rate=truth.rate,
            starting_time=truth.t_start,
            description="muscles: " + "; ".join(truth.muscle_names),
        )
    )
    with pytest.raises(InputError, match="no EMG found") as info:
        read_emg(nwbfile)
    assert "object 'acquisition'" in str(info.value)
    assert "in-memory NWBFile" in str(info.value)
    assert_volts(read_emg(nwbfile, "Muscles"), truth)


def test_lazy_reading_scales_every_kind_of_slice_and_keeps_the_file_open(files):
    path, truth = files["electrical", "ecephys/EMG"]
    emg = read_emg(path, load=False)
    try:
        assert isinstance(emg.data, ScaledArray)
        assert emg.data.shape == truth.volts.shape and emg.data.dtype == np.float64
        v = truth.volts
        for key in (
            np.s_[100:250],
            np.s_[100:250, 2:5],
            np.s_[-7],
            np.s_[5, 3],
            np.s_[::-97, 1],
            np.s_[[40, 3, 3, 900]],
            np.s_[...],
        ):
            np.testing.assert_allclose(emg.data[key], v[key], rtol=1e-12, err_msg=str(key))
        # rows and columns are selected independently (orthogonal indexing, as in h5py)
        mask = v[:, 0] > 0
        np.testing.assert_allclose(emg.data[mask, [4, 0]], v[mask][:, [4, 0]], rtol=1e-12)
        assert emg.source.series is not None  # still open, series usable
        np.testing.assert_allclose(emg.to_numpy(), v, rtol=1e-12)
    finally:
        emg.data.close()
    with open_emg(path) as emg:
        series = emg.source.series[0]
        assert emg.data[10, 0] == pytest.approx(v[10, 0], rel=1e-12)
    with pytest.raises(Exception):  # noqa: B017 - h5py raises its own error on a closed file
        np.asarray(series.data[:2])


def test_lazy_reading_of_per_muscle_series_in_memory():
    nwbfile, truth = mock_emg_nwbfile("per_muscle", where="behavior", n_times=700)
    emg = read_emg(nwbfile, load=False)
    np.testing.assert_allclose(emg.data[50:60, ::2], truth.volts[50:60, ::2], rtol=1e-12)


# --------------------------------------------------------------------------- bad EMG


def _float_emg_file(path, bad_value, *, where=(123, 2)):
    truth = make_truth(n_times=500, n_muscles=4)
    data = truth.volts.astype(np.float32)
    data[where] = bad_value
    nwbfile = mock_nwbfile()
    nwbfile.add_acquisition(
        TimeSeries(
            name="EMG",
            data=data,
            unit="V",
            rate=truth.rate,
            starting_time=truth.t_start,
            description="EMG, muscles: " + ", ".join(truth.muscle_names),
        )
    )
    write_nwbfile(nwbfile, path)
    return truth


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("load", [True, False])
def test_nan_or_infinite_samples_are_refused(tmp_path, bad, load, monkeypatch):
    import nwb_synergy.io.read as read_module

    monkeypatch.setattr(read_module, "_CHUNK_ROWS", 64)  # chunk-wise scan over several chunks
    path = tmp_path / "nan.nwb"
    truth = _float_emg_file(path, bad)
    with pytest.raises(InputError, match="NaN or infinite") as info:
        read_emg(path, load=load)
    msg = str(info.value)
    assert "nan.nwb" in msg and "acquisition/EMG" in msg
    assert f"muscle '{truth.muscle_names[2]}'" in msg and "sample 123" in msg


def _per_muscle_file(path, *, rates=(2000.0, 2000.0), lengths=(300, 300), starts=(1.0, 1.0)):
    nwbfile = mock_nwbfile()
    module = nwbfile.create_processing_module("behavior", "EMG per muscle")
    for k, (r, n, t0) in enumerate(zip(rates, lengths, starts, strict=True)):
        module.add(
            TimeSeries(
                name=f"M{k}",
                data=np.arange(n, dtype=np.int16),
                unit="V",
                conversion=1e-6,
                rate=r,
                starting_time=t0,
                description=f"EMG of muscle M{k}",
            )
        )
    write_nwbfile(nwbfile, path)


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"rates": (2000.0, 2048.0)}, "different rates: M0 2000 Hz, M1 2048 Hz"),
        ({"lengths": (300, 299)}, "different lengths: M0 300 samples, M1 299 samples"),
        ({"starts": (1.0, 1.5)}, "different start times: M0 1 s, M1 1.5 s"),
    ],
)
def test_per_muscle_series_that_disagree_are_refused(tmp_path, kwargs, problem):
    path = tmp_path / "mixed.nwb"
    _per_muscle_file(path, **kwargs)
    with pytest.raises(InputError, match=problem) as info:
        read_emg(path)
    assert "mixed.nwb" in str(info.value) and "object 'processing/behavior'" in str(info.value)


def test_irregular_timestamps_are_refused(tmp_path):
    truth = make_truth(n_times=200, n_muscles=2)
    times = truth.t_start + np.arange(200) / truth.rate
    times[100:] += 0.3 / truth.rate  # a jump of a third of a sample
    nwbfile = mock_nwbfile()
    nwbfile.add_acquisition(
        TimeSeries(name="EMG", data=truth.raw, unit="V", timestamps=times, description="EMG")
    )
    path = write_nwbfile(nwbfile, tmp_path / "jitter.nwb")
    with pytest.raises(InputError, match="timestamps are irregular") as info:
        read_emg(path, muscle_names=["a", "b"])
    assert "jitter.nwb" in str(info.value) and "acquisition/EMG" in str(info.value)


def test_no_emg_in_a_file(tmp_path):
    nwbfile, _ = mock_emg_nwbfile("2d", n_times=100)
    nwbfile.acquisition.pop("EMG")
    path = write_nwbfile(nwbfile, tmp_path / "noemg.nwb")
    with pytest.raises(InputError, match="no EMG found") as info:
        read_emg(path)
    assert "noemg.nwb" in str(info.value) and "object 'acquisition'" in str(info.value)


def test_files_that_are_not_nwb(tmp_path):
    text = tmp_path / "notes.nwb"
    text.write_text("this is not an NWB file\n")
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.arange(3)
    missing = tmp_path / "missing.nwb"
    for path, problem in (
        (text, "not an NWB file: it is not even HDF5"),
        (plain, "an HDF5 file but not NWB"),
        (missing, "file not found"),
    ):
        for reader in (read_emg, read_spike_trains):
            with pytest.raises(InputError, match=problem) as info:
                reader(path)
            assert path.name in str(info.value) and "object '/'" in str(info.value)


# --------------------------------------------------------------------------- spike trains


def test_spike_trains_at_root_and_in_a_processing_module(files):
    for key in (("2d", "acquisition"), ("2d", "behavior")):
        path, truth = files[key]
        trains = read_spike_trains(path)
        assert list(trains) == [3, 7, 12]
        for uid, times in truth.spike_times.items():
            np.testing.assert_array_equal(trains[uid], times)
            assert trains[uid].dtype == np.float64
    path, truth = files["2d", "behavior"]
    assert list(read_spike_trains(path, units="ecephys", unit_ids=[12, 3])) == [12, 3]
    with pytest.raises(InputError, match=r"unit ids \[5\] are not in the table"):
        read_spike_trains(path, unit_ids=[5])


def test_two_units_tables_need_a_choice():
    nwbfile, truth = mock_emg_nwbfile("2d", n_times=300, obs_intervals=True)
    add_units(nwbfile, {1: np.array([13.0, 13.1])}, where="ecephys")
    with pytest.raises(InputError, match="ambiguous Units") as info:
        read_spike_trains(nwbfile)
    assert "units, processing/ecephys/Units" in str(info.value)
    assert list(read_spike_trains(nwbfile, units="units")) == [3, 7, 12]
    np.testing.assert_array_equal(
        read_spike_trains(nwbfile, units="processing/ecephys/Units")[1], [13.0, 13.1]
    )


def test_missing_empty_and_unsorted_units(tmp_path):
    nwbfile, _ = mock_emg_nwbfile("2d", n_times=100, units_where=None)
    path = write_nwbfile(nwbfile, tmp_path / "nounits.nwb")
    with pytest.raises(InputError, match="no Units table") as info:
        read_spike_trains(path)
    assert "nounits.nwb" in str(info.value) and "object 'units'" in str(info.value)

    nwbfile, _ = mock_emg_nwbfile("2d", n_times=100, units_where=None)
    nwbfile.units = Units(name="units", description="no spikes", resolution=1e-4)
    nwbfile.units.add_unit(spike_times=[], id=0)
    nwbfile.units.add_unit(spike_times=[], id=1)
    path = write_nwbfile(nwbfile, tmp_path / "empty.nwb")
    with pytest.raises(InputError, match="empty \\(no spikes at all\\)") as info:
        read_spike_trains(path)
    assert "empty.nwb" in str(info.value) and "object 'units'" in str(info.value)

    nwbfile, _ = mock_emg_nwbfile("2d", n_times=100, units_where=None)
    add_units(nwbfile, {4: np.array([1.0, 2.0]), 9: np.array([1.0, 3.0, 2.5])}, where="ecephys")
    path = write_nwbfile(nwbfile, tmp_path / "unsorted.nwb")
    with pytest.raises(InputError, match="spike times of unit 9 are not sorted") as info:
        read_spike_trains(path)
    msg = str(info.value)
    assert "unsorted.nwb" in msg and "processing/ecephys/Units/spike_times" in msg


def test_our_synergy_activations_are_not_taken_for_emg():
    """A results file (EMG plus our SynergyActivation, described as derived from EMG) reads
    its EMG without a name: the extension's own series are never EMG candidates."""
    from nwb_synergy.testing import mock_SynergyActivation

    nwbfile, truth = mock_emg_nwbfile("2d")
    activation = mock_SynergyActivation(
        nwbfile=nwbfile, description="Activations of synergies extracted from the EMG."
    )
    assert "EMG" in activation.description
    paths = [c.path for c in find_emg_candidates(nwbfile)]
    assert len(paths) == 1 and "SynergyActivation" not in paths[0]
    emg = read_emg(nwbfile)
    np.testing.assert_allclose(emg.data, truth.volts, rtol=1e-12)
