"""analyze_session on a simulated session: known answers from the planted truth, and the file."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from nwb_synergy.demo import QUICK_ANALYSIS, score_against_truth
from nwb_synergy.errors import ResultsExistError
from nwb_synergy.pipeline import analyze_session
from nwb_synergy.simulate.session import simulate_session
from nwb_synergy.testing.mock_files import mock_emg_nwbfile, write_nwbfile

SEED = 3


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """A 90-s simulated session (14 muscles, 4 synergies with NegCps, 12 units), analysed."""
    folder = tmp_path_factory.mktemp("pipeline")
    session = simulate_session(folder / "session.nwb", duration=90.0, random_state=SEED)
    results = analyze_session(
        folder / "session.nwb",
        folder / "results.nwb",
        random_state=SEED,
        progress=False,
        n_permutations=2000,
        **QUICK_ANALYSIS,  # fixed RLVM L1 weight, NegCps without bootstrap: seconds, not minutes
    )
    return session, results, score_against_truth(session, results)


def test_number_of_synergies(analysed):
    session, results, scores = analysed
    # RLVM's offset absorbs the tonic activity of the inhibited muscles: it finds the true K
    assert scores["rlvm"]["k"] == session.n_synergies
    assert results.models["nmf"].weights_.shape[1] in (session.n_synergies, session.n_synergies + 1)


def test_rlvm_synergies_match_the_truth(analysed):
    _, _, scores = analysed
    assert scores["rlvm"]["matched_cosine"] > 0.9
    assert scores["rlvm"]["subspace_similarity"] > 0.85


def test_negcps_recovered(analysed):
    session, results, scores = analysed
    neg = scores["negcp"]
    assert neg["planted"] == session.n_synergies == 4
    assert neg["correct"] >= 3  # recall >= 75%
    assert neg["found"] - neg["correct"] <= 1  # at most one spurious NegCp
    assert (results.models["nmf"].weights_ >= 0).all()


def test_planted_effects_recovered(analysed):
    _, results, scores = analysed
    eff = scores["effects"]
    assert eff["planted"] == 14
    assert eff["found"] >= 13
    assert eff["wrong_sign"] == 0
    assert eff["false"] <= 3  # of 12 x 14 - 14 = 154 unaffected pairs
    assert len(results.stas) == 12
    for res in results.stas.values():
        assert res.n_used > 1500 and res.mean.shape[1] == 14


def test_correspondence_detected(analysed):
    _, results, scores = analysed
    assert results.correspondence is not None
    assert scores["correspondence_p"] < 0.01


def test_results_file_holds_everything(analysed):
    session, results, _ = analysed
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(results.output), "r") as io:
        nwbfile = io.read()
        behavior = nwbfile.processing["behavior"]
        rlvm = behavior["MuscleSynergyRLVM"]
        np.testing.assert_allclose(
            rlvm.weights_array(), results.models["rlvm"].weights_, rtol=1e-6, atol=1e-7
        )
        np.testing.assert_array_equal(rlvm["negative_component"].data[:], results.negcp_mask())
        assert behavior["SynergyActivationNMF"].muscle_synergy is behavior["MuscleSynergyNMF"]
        assert "MuscleSynergyTruth" in behavior.data_interfaces  # the source's truth is kept
        ecephys = nwbfile.processing["ecephys"]
        sta = ecephys["SpikeTriggeredAverages"]
        assert len(sta) == 12 * 14
        effects = np.asarray(sta["effect"].data[:]).astype(str)
        n_effects = sum(
            (frame["effect"].isin(["PSF", "PSpS"])).sum() for frame in results.effects.values()
        )
        assert int(np.isin(effects, ["PSF", "PSpS"]).sum()) == n_effects
        corr = ecephys["NegCpPSpSCorrespondence"]
        assert corr["p_value"].data[0] == pytest.approx(results.correspondence.p_value)
        match = ecephys["MuscleFieldSynergyMatch"]
        assert len(match) == len(results.field_matches)
    # the source file got nothing
    with h5py.File(results.source, "r") as f:
        assert "ecephys" not in f.get("processing", {})


def test_in_place_refuses_then_replaces_without_duplicates(tmp_path):
    path = tmp_path / "s.nwb"
    simulate_session(path, duration=30.0, random_state=SEED)
    kwargs = dict(methods=("nmf",), n_synergies=4, progress=False, n_permutations=200)
    analyze_session(path, **kwargs)
    before = path.read_bytes()
    with pytest.raises(ResultsExistError, match="MuscleSynergyNMF"):
        analyze_session(path, **kwargs)
    assert path.read_bytes() == before
    analyze_session(path, overwrite=True, **kwargs)
    with h5py.File(path, "r") as f:
        assert sorted(f["processing/behavior"]) == [
            "MuscleSynergyNMF",
            "MuscleSynergyTruth",
            "SynergyActivationNMF",
            "SynergyActivationTruth",
        ]
        assert sorted(f["processing/ecephys"]) == [
            "MuscleFieldSynergyMatch",
            "SpikeTriggeredAverages",
        ]


def test_file_without_units_gets_synergies_only(tmp_path, capsys):
    nwbfile, _ = mock_emg_nwbfile("per_muscle", units_where=None, n_times=40000)
    path = write_nwbfile(nwbfile, tmp_path / "no_units.nwb")
    results = analyze_session(path, tmp_path / "out.nwb", methods=("nmf",), n_synergies=2)
    assert results.notes == ["no Units in the file: synergies only, no STA"]
    assert "no Units" in results.summary_text()
    assert results.stas == {} and results.log.written == [
        "processing/behavior/MuscleSynergyNMF",
        "processing/behavior/SynergyActivationNMF",
    ]
    assert capsys.readouterr().err == ""  # progress bars stay off when stderr is not a terminal


def test_units_in_a_processing_module_get_their_fields_matched(tmp_path):
    """Regression: Units in processing/ecephys (not nwbfile.units) and a planted effect used to
    crash the match-table writer (AttributeError on nwbfile.units)."""
    from pynwb import NWBHDF5IO, TimeSeries

    from nwb_synergy.simulate import simulate_spikes
    from nwb_synergy.testing.mock_files import add_units, mock_nwbfile

    effects = np.zeros((2, 4))
    effects[0, 1] = 0.4  # unit 5 facilitates muscle 1 strongly; unit 9 has no effect
    sim = simulate_spikes(
        duration=40.0,
        rate=2000.0,
        effects=effects,
        firing_rate=30.0,
        unit_ids=[5, 9],
        random_state=1,
    )
    nwbfile = mock_nwbfile()
    nwbfile.add_acquisition(
        TimeSeries(
            name="EMG",
            data=sim.emg.to_numpy().astype(np.float32),
            unit="volts",
            rate=sim.emg.rate,
            description="EMG\nmuscles: " + ", ".join(sim.emg.muscle_names),
        )
    )
    add_units(nwbfile, sim.spike_times, where="ecephys")
    path = write_nwbfile(nwbfile, tmp_path / "units_in_module.nwb")

    results = analyze_session(
        path,
        tmp_path / "out.nwb",
        methods=("nmf",),
        n_synergies=2,
        n_permutations=200,
        progress=False,
    )
    assert set(results.units_with_effects()) == {5}
    assert results.units_with_effects()[5]["PSF"] == [sim.emg.muscle_names[1]]
    with NWBHDF5IO(str(results.output), "r") as io:
        f = io.read()
        match = f.processing["ecephys"]["MuscleFieldSynergyMatch"]
        units = f.processing["ecephys"]["Units"]
        assert match["unit"].table is units
        assert [int(units.id[r]) for r in match["unit"].data[:]] == [5]
        sta = f.processing["ecephys"]["SpikeTriggeredAverages"]
        assert sta["unit"].table is units


def test_negcp_muscles_have_small_nmf_weights_in_the_file_and_summary(analysed):
    """Guo et al.'s observation, reported per NegCp: the muscle's weight in the matched NMF
    synergy (relative to that synergy's largest) is small where RLVM has a NegCp."""
    from pynwb import NWBHDF5IO

    _, results, _ = analysed
    mask = results.negcp_mask()
    nmf_at = results.synergies.negcp_nmf_weights()
    assert nmf_at.shape == mask.shape and mask.any()
    # the truth's NegCp muscles carry no drive in their synergy: NMF gives them little weight
    assert np.nanmean(nmf_at[mask]) < 0.5 * np.nanmean(nmf_at[~mask])
    listed = results.summary()["negcps"]
    assert [n["nmf_relative_weight"] for n in listed] == pytest.approx(list(nmf_at[mask]))
    with NWBHDF5IO(str(results.output), "r") as io:
        table = io.read().processing["behavior"]["MuscleSynergyRLVM"]
        stored = np.asarray(table["negative_component_nmf_weight"].data[:])
    np.testing.assert_allclose(stored, nmf_at)
