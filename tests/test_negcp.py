"""negative_components: the threshold, and the guard that rejects rotated (unidentified) bases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

from nwb_synergy.compare import compare_synergies
from nwb_synergy.errors import InputError
from nwb_synergy.factorize.nmf import NMF
from nwb_synergy.negcp import (
    _match_to,
    auto_block,
    block_bootstrap_counts,
    negative_components,
    relative_weights,
)
from nwb_synergy.simulate.synergies import simulate_synergies


def _rotation(k: int, size: float, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((k, k)) * size
    return expm(a - a.T)


def _truth(seed: int = 0):
    return simulate_synergies(12, 4, 1500, snr_db=20.0, negative=True, random_state=seed)


class _Fixed:
    """Stub estimator: every fit returns ``weights`` rotated by a fresh random map (or not)."""

    def __init__(self, weights: np.ndarray, rotate: float = 0.0, random_state: int = 0):
        self.weights = weights
        self.rotate = rotate
        self.random_state = random_state

    def get_params(self) -> dict:
        return {"weights": self.weights, "rotate": self.rotate, "random_state": self.random_state}

    def fit(self, emg):
        w = self.weights
        if self.rotate:
            w = w @ _rotation(w.shape[1], self.rotate, self.random_state)
        self.weights_ = w / np.linalg.norm(w, axis=0)
        return self


def test_threshold_and_relative_weights():
    w = np.array([[1.0, 0.5], [-0.2, 0.5], [-0.05, -0.4], [0.3, 0.2]])
    rel = relative_weights(w)
    np.testing.assert_allclose(np.abs(rel).max(axis=0), 1.0)
    with pytest.warns(UserWarning, match="threshold alone"):
        res = negative_components(w, threshold=0.1)
    assert not res.guarded
    assert res.mask.tolist() == [[False, False], [True, False], [False, True], [False, False]]
    frame = res.to_frame()
    assert len(frame) == 8 and frame["negcp"].sum() == 2
    assert set(frame.columns) >= {"muscle", "synergy", "relative_weight", "p_value", "negcp"}


def test_consistent_restarts_keep_true_negcps_rotations_are_rejected():
    sim = _truth()
    w = sim.weights
    # restarts that agree: the true NegCps are kept
    model = _Fixed(w).fit(None)
    model.restart_weights_ = np.stack([w, w, w])
    model.restart_loss_ = np.array([1.0, 1.0, 1.001])
    res = negative_components(model)
    np.testing.assert_array_equal(res.mask, sim.negative_mask)
    assert res.n_restarts_used == 3 and res.guarded
    # bases rotated inside the span carry spurious negatives that a threshold flags; equally
    # good restarts land on other rotations, so the guard rejects (most of) them
    spurious, kept = 0, 0
    for seed in range(1, 6):
        rotated = w @ _rotation(4, 0.2, seed)
        model = _Fixed(rotated).fit(None)
        others = [_match_to(model.weights_, w @ _rotation(4, 0.2, 10 + s)) for s in range(4)]
        model.restart_weights_ = np.stack([model.weights_, *others])
        model.restart_loss_ = np.ones(5)
        res = negative_components(model)
        c = compare_synergies(w, model.weights_)
        true_neg = sim.negative_mask[:, c.pairs[:, 0]]
        spurious += np.sum(res.candidates[:, c.pairs[:, 1]] & ~true_neg)
        kept += np.sum(res.mask[:, c.pairs[:, 1]] & ~true_neg)
    assert spurious >= 20
    assert kept <= 0.25 * spurious
    # restarts stuck in worse optima do not count
    model.restart_loss_ = np.array([1.0, 2.0, 2.0, 2.0, 2.0])
    assert negative_components(model).n_restarts_used == 1


def test_bootstrap_rejects_an_unidentified_estimator_and_keeps_a_stable_one():
    sim = _truth(1)
    stable = _Fixed(sim.weights).fit(sim.emg)
    res = negative_components(stable, sim.emg, n_boot=20, block=50, random_state=0)
    np.testing.assert_array_equal(res.mask, sim.negative_mask)
    np.testing.assert_allclose(res.p_value[res.mask], 1 / 21)
    assert np.all(res.ci_high[res.mask] < 0)
    assert res.boot_relative.shape == (20, 12, 4) and res.block == 50
    # an estimator whose basis rotates from sample to sample: its NegCps are not significant
    shaky = _Fixed(sim.weights @ _rotation(4, 0.5, 7), rotate=0.5).fit(sim.emg)
    res = negative_components(shaky, sim.emg, n_boot=20, block=50, random_state=0)
    assert res.candidates.sum() >= 3
    assert res.mask.sum() <= 1
    assert np.nanmin(res.p_value) > 0.05 or res.mask.sum() == 1


def test_nmf_has_no_candidates_and_is_not_refitted():
    sim = _truth(2)
    nmf = NMF(4, random_state=0).fit(sim.emg)
    res = negative_components(nmf, sim.emg, n_boot=20)
    assert not res.candidates.any() and not res.mask.any()
    assert res.boot_relative is None  # nothing to test, nothing refitted
    assert np.isnan(res.p_value).all()
    assert res.muscle_names == sim.emg.muscle_names


def test_block_bootstrap_counts_and_auto_block():
    rng = np.random.default_rng(0)
    counts = block_bootstrap_counts(1000, 5, 40, rng)
    assert counts.shape == (5, 1000)
    np.testing.assert_array_equal(counts.sum(axis=1), 1000)
    assert counts.max() < 10  # 25 blocks of 40: a sample is rarely drawn many times
    # AR(1) with coefficient phi: autocorrelation exp(-lag / tau), tau = -1 / ln(phi)
    phi = 0.9
    e = rng.standard_normal((20000, 3))
    x = np.zeros_like(e)
    for t in range(1, len(e)):
        x[t] = phi * x[t - 1] + e[t]
    tau = -1 / np.log(phi)
    assert auto_block(x) == pytest.approx(4 * np.ceil(tau), abs=4)


def test_bad_input():
    w = np.abs(np.random.default_rng(0).standard_normal((5, 2)))
    with pytest.raises(InputError, match="threshold"):
        negative_components(w, threshold=1.5)
    with pytest.raises(InputError, match="alpha"):
        negative_components(w, alpha=0.0)
    with pytest.raises(InputError, match="n_boot"):
        negative_components(w, n_boot=-1)
    with pytest.raises(InputError, match="weights"):
        negative_components(np.array([np.nan, 1.0]))
    with pytest.raises(InputError, match="not fitted"):
        negative_components(NMF(2), np.ones((10, 5)))
    sim = _truth()
    model = _Fixed(sim.weights).fit(None)
    with pytest.raises(InputError, match="does not match"):
        negative_components(model, sim.emg.data[:, :5], n_boot=5)
    with pytest.raises(InputError, match="block"):
        negative_components(model, sim.emg, n_boot=5, block=0)
