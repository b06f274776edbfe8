"""NMF: recovery of simulated truth, agreement with scikit-learn, NNLS transform, stability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import nnls

from nwb_synergy import compare_synergies
from nwb_synergy.emg import condition_emg
from nwb_synergy.errors import InputError
from nwb_synergy.factorize import metrics
from nwb_synergy.factorize.nmf import NMF, nnls_activations
from nwb_synergy.signals import EMG
from nwb_synergy.simulate import simulate_synergies


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_recovers_nonnegative_truth_at_20db(seed):
    sim = simulate_synergies(negative=False, snr_db=20.0, random_state=seed)
    model = NMF(4, random_state=seed).fit(sim.emg)
    cmp = compare_synergies(sim.weights, model)
    assert cmp.mean_cosine >= 0.95, cmp.cosine
    assert cmp.cosine.min() >= 0.9
    # the activations follow the truth too (matched, correlation over time)
    for i, j in cmp.pairs:
        r = np.corrcoef(sim.activations[:, i], model.activations_[:, j])[0, 1]
        assert r > 0.9


def test_multiplicative_updates_recover_truth_too():
    sim = simulate_synergies(negative=False, random_state=7)
    model = NMF(4, solver="mu", random_state=0).fit(sim.emg)
    assert compare_synergies(sim.weights, model).mean_cosine >= 0.95
    hals = NMF(4, random_state=0).fit(sim.emg)
    assert abs(model.vaf_ - hals.vaf_) < 2e-3  # MU stops a little earlier (slower)


def test_fitted_attributes():
    sim = simulate_synergies(n_muscles=10, n_synergies=3, negative=False, random_state=3)
    model = NMF(3, n_restarts=6, random_state=0).fit(sim.emg)
    assert model.weights_.shape == (10, 3) and model.activations_.shape == (4000, 3)
    np.testing.assert_allclose(np.linalg.norm(model.weights_, axis=0), 1.0)
    assert np.all(model.weights_ >= 0) and np.all(model.activations_ >= 0)
    np.testing.assert_array_equal(model.offset_, np.zeros(10))
    assert model.muscle_names_ == sim.emg.muscle_names
    assert model.n_synergies_ == 3 and 20 < model.n_iter_ <= 1000
    recon = model.inverse_transform(model.activations_)
    data = sim.emg.data
    assert model.vaf_ == pytest.approx(metrics.vaf(data, recon))
    assert model.r2_ == pytest.approx(metrics.r2(data, recon))
    assert model.r2_ < model.vaf_  # centered R^2 is the stricter measure
    # every restart, matched to the best, found (nearly) the same synergies
    assert model.restart_weights_.shape == (6, 10, 3)
    cos = np.einsum("rmk,mk->rk", model.restart_weights_, model.weights_)
    assert cos.min() > 0.99
    assert model.restart_vaf_.max() == pytest.approx(model.vaf_, abs=1e-6)
    # synergies are ordered by decreasing activation energy
    energy = np.sum(model.activations_**2, axis=0)
    assert np.all(np.diff(energy) <= 0)
    prov = model.provenance()
    assert prov["method"] == "nmf" and prov["vaf_uncentered"] == pytest.approx(model.vaf_)


def test_vaf_agrees_with_scikit_learn():
    sklearn = pytest.importorskip("sklearn.decomposition")
    for seed in (0, 1):
        sim = simulate_synergies(negative=seed == 1, random_state=10 + seed)
        x = sim.emg.data
        ours = NMF(4, random_state=0).fit(x)
        best = -np.inf
        for init_seed in range(3):
            sk = sklearn.NMF(
                4, init="random", solver="cd", tol=1e-6, max_iter=2000, random_state=init_seed
            )
            h = sk.fit_transform(x)
            best = max(best, metrics.vaf(x, h @ sk.components_))
        assert abs(ours.vaf_ - best) < 1e-3, (ours.vaf_, best)


def test_float32_and_float64_iterations_agree():
    sim = simulate_synergies(negative=False, random_state=4)
    a = NMF(4, random_state=1).fit(sim.emg)
    b = NMF(4, random_state=1, dtype="float64").fit(sim.emg)
    assert abs(a.vaf_ - b.vaf_) < 1e-5
    assert compare_synergies(a, b).cosine.min() > 0.9999


def test_transform_equals_scipy_nnls():
    rng = np.random.default_rng(0)
    w = np.abs(rng.standard_normal((8, 3)))
    w[:, 2] = 0.7 * w[:, 0] + 0.3 * w[:, 2]  # correlated synergies: a harder problem
    x = np.abs(rng.standard_normal((300, 8)))
    ref = np.array([nnls(w, row)[0] for row in x])
    got = nnls_activations(x, w)
    assert np.max(np.abs(got - ref)) < 1e-9
    assert (got == 0).any()  # the constraint is active somewhere
    # the estimator's transform is the same NNLS with its fitted weights
    sim = simulate_synergies(n_muscles=8, n_synergies=3, negative=False, random_state=2)
    model = NMF(3, n_restarts=4, random_state=0).fit(sim.emg)
    new = sim.emg.data[:200]
    ref = np.array([nnls(model.weights_, row)[0] for row in new])
    np.testing.assert_allclose(model.transform(new), ref, atol=1e-9)
    # signed weights (as from RLVM) work too
    ws = w - 0.3
    ref = np.array([nnls(ws, row)[0] for row in x])
    assert np.max(np.abs(nnls_activations(x, ws) - ref)) < 1e-9


def test_deterministic_under_random_state():
    sim = simulate_synergies(negative=False, random_state=5)
    a = NMF(4, n_restarts=4, random_state=42).fit(sim.emg)
    b = NMF(4, n_restarts=4, random_state=42).fit(sim.emg)
    np.testing.assert_array_equal(a.weights_, b.weights_)
    np.testing.assert_array_equal(a.activations_, b.activations_)
    c = NMF(4, n_restarts=4, random_state=43).fit(sim.emg)
    assert not np.array_equal(a.weights_, c.weights_)


def test_auto_number_of_synergies_keeps_the_curve():
    sim = simulate_synergies(negative=False, sparsity=0.6, random_state=0)
    model = NMF("auto", n_restarts=3, random_state=0).fit(sim.emg)  # linear_fit rule
    assert model.n_synergies_ == 4 and model.weights_.shape == (12, 4)
    sel = model.selection_
    assert sel.method == "linear_fit" and len(sel.k_values) == len(sel.r2) == 9
    assert model.provenance()["model_order"]["n_synergies"] == 4


def test_stable_across_seeds_on_real_walking(walking_dir):
    raw = pd.read_csv(walking_dir / "ID0012_TW_01_raw_emg.csv")
    muscles = list(raw.columns[1:])
    emg = condition_emg(EMG(raw[muscles].to_numpy() * 1e-6, 1000.0, muscle_names=muscles))
    fits = [NMF(4, random_state=seed).fit(emg) for seed in (0, 1, 2)]
    for other in fits[1:]:
        cmp = compare_synergies(fits[0], other)
        assert cmp.mean_cosine >= 0.99, cmp.cosine
    assert fits[0].muscle_names_ == muscles
    assert 0.85 < fits[0].vaf_ < 1.0


def test_errors():
    sim = simulate_synergies(n_muscles=6, n_synergies=2, negative=False, random_state=0)
    x = sim.emg.data
    with pytest.raises(InputError, match="only 6 muscles"):
        NMF(7).fit(x)
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        NMF(2).fit(bad)
    neg = x.copy()
    neg[5, 1] = -0.1
    with pytest.raises(InputError, match="negative"):
        NMF(2).fit(neg)
    with pytest.raises(InputError, match="n_synergies"):
        NMF("many").fit(x)
    with pytest.raises(InputError, match="solver"):
        NMF(2, solver="als").fit(x)
    with pytest.raises(InputError, match="not fitted"):
        NMF(2).transform(x)
    model = NMF(2, n_restarts=2, random_state=0).fit(x)
    with pytest.raises(InputError, match="muscles"):
        model.transform(x[:, :5])
