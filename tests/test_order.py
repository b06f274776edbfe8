"""Model order: each rule finds the true number of synergies on a clear simulation."""

from __future__ import annotations

import numpy as np
import pytest

from nwb_synergy.errors import InputError
from nwb_synergy.factorize.nmf import NMF
from nwb_synergy.factorize.order import select_n_synergies
from nwb_synergy.simulate import simulate_synergies


def _make(k: int) -> NMF:
    return NMF(k, n_restarts=3, random_state=0)


@pytest.fixture(scope="module")
def clear():
    """4 well-separated synergies over 12 muscles, 20 dB."""
    return simulate_synergies(negative=False, sparsity=0.6, random_state=1)


def test_vaf_threshold(clear):
    # at 20 dB the noise leaves about 1 % of the energy unexplained, so a 98 % threshold sits
    # between K = 3 (about 96 %) and the true K = 4 (99.5 %)
    order = select_n_synergies(clear.emg, _make, method="vaf", vaf_threshold=0.98)
    assert order.n_synergies == 4
    assert order.k_values.tolist() == list(range(1, 10))  # 1 .. 12 - round(12 / 4)
    assert np.all(np.diff(order.vaf) > -1e-4)  # VAF grows with K
    assert order.vaf[2] < 0.98 <= order.vaf[3]
    assert np.all(order.r2 < order.vaf)
    assert order.details["threshold_reached"]
    # the conventional 90 % would stop earlier: the threshold matters
    low = select_n_synergies(clear.emg, _make, method="vaf", vaf_threshold=0.90)
    assert low.n_synergies < 4
    np.testing.assert_allclose(low.vaf, order.vaf)  # same fits, same curve


def test_linear_fit_rule(clear):
    order = select_n_synergies(clear.emg, _make)  # the default rule
    assert order.method == "linear_fit" and order.n_synergies == 4
    mse = order.criterion
    assert mse[3] <= 1e-4 < mse[2]
    assert np.isnan(mse[-1])


def test_shuffle_rule():
    # Cheung's rule needs each synergy to explain more than a shuffled muscle would: 16
    # muscles and 3 broad synergies
    sim = simulate_synergies(
        n_muscles=16, n_synergies=3, negative=False, sparsity=0.6, random_state=2
    )
    order = select_n_synergies(
        sim.emg, _make, method="shuffle", n_shuffles=2, k_range=range(1, 7), random_state=0
    )
    assert order.n_synergies == 3
    assert order.details["shuffled_vaf"].shape == (2, 6)
    ratio = order.criterion
    assert ratio[2] < 0.75 <= ratio[1]
    # shuffled data are less compressible than the data for the first synergies
    assert order.details["shuffled_vaf_mean"][0] < order.vaf[0]


def test_cross_validation_rule(clear):
    order = select_n_synergies(
        clear.emg, _make, method="cv", n_folds=4, k_range=range(1, 8), random_state=0
    )
    assert order.n_synergies == 4
    scores = order.details["fold_scores"]
    assert scores.shape == (4, 7)
    # predicting held-out muscles peaks near the truth and falls when synergies fit noise
    assert order.criterion[3] > order.criterion[2]
    assert order.criterion[3] > order.criterion[-1]
    # refitting activations on all held-out muscles only ever improves with K
    assert order.details["heldout_vaf_mean"][-1] >= order.details["heldout_vaf_mean"][3] - 1e-3
    d = order.to_dict()
    assert d["method"] == "cv" and d["n_synergies"] == 4


def test_errors(clear):
    with pytest.raises(InputError, match="method"):
        select_n_synergies(clear.emg, _make, method="aic")
    with pytest.raises(InputError, match="two candidate"):
        select_n_synergies(clear.emg, _make, k_range=[3])
    with pytest.raises(InputError, match="n_synergies"):
        select_n_synergies(clear.emg, _make, k_range=[2, 13])


def test_thinning_a_long_recording_leaves_the_curve_and_the_choice_unchanged():
    # 16,000 samples at 100 Hz (160 s): fitted on every 4th sample the R^2 curve moves by less
    # than 0.002 and the rule picks the same K, at about a quarter of the cost
    long = simulate_synergies(negative=False, sparsity=0.6, n_times=16_000, random_state=2)
    full = select_n_synergies(long.emg, _make, max_samples=None)
    thin = select_n_synergies(long.emg, _make, max_samples=4_000)
    assert full.details["sample_step"] == 1 and thin.details["sample_step"] == 4
    assert thin.n_synergies == full.n_synergies == 4
    np.testing.assert_allclose(thin.r2, full.r2, atol=2e-3)
    assert np.max(np.abs(thin.r2 - full.r2)) > 0  # really fitted on other samples


def test_candidates_are_fitted_with_three_restarts_and_the_chosen_k_with_all(clear):
    seen: list[tuple[int, int]] = []

    class Recording(NMF):
        def _fit_k(self, data, k):
            seen.append((k, self.n_restarts))
            super()._fit_k(data, k)

    model = Recording("auto", n_restarts=10, random_state=0).fit(clear.emg)
    candidates, final = seen[:-1], seen[-1]
    assert [k for k, _ in candidates] == model.selection_.k_values.tolist()
    assert {r for _, r in candidates} == {3}
    assert final == (model.n_synergies_, 10) and len(model.restart_vaf_) == 10
