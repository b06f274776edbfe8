"""simulate_synergies: the ground truth is what it says it is."""

from __future__ import annotations

import numpy as np
import pytest

from nwb_synergy.errors import InputError
from nwb_synergy.simulate import simulate_synergies


def test_truth_with_negative_components():
    sim = simulate_synergies(random_state=0)
    w, h, mask = sim.weights, sim.activations, sim.negative_mask
    assert w.shape == (12, 4) and h.shape == (4000, 4) and sim.emg.data.shape == (4000, 12)
    np.testing.assert_allclose(np.linalg.norm(w, axis=0), 1.0)
    assert np.all(h >= 0) and np.all(h.max(axis=0) == pytest.approx(1.0))
    # one NegCp per synergy, on distinct muscles, exactly the negative weights
    assert mask.sum() == 4 and np.all(mask.sum(axis=0) == 1)
    np.testing.assert_array_equal(mask, w < 0)
    assert len(set(np.flatnonzero(mask.any(axis=1)))) == 4
    # each NegCp is 0.3 x the largest weight of its synergy
    for k in range(4):
        assert w[mask[:, k], k][0] == pytest.approx(-0.3 * w[:, k].max())
    # tonic activity only on inhibited muscles, and enough to keep the clean EMG >= 0
    inhibited = mask.any(axis=1)
    assert np.all(sim.tonic[inhibited] > 0) and np.all(sim.tonic[~inhibited] == 0)
    np.testing.assert_allclose(sim.clean, sim.tonic + h @ w.T, atol=1e-12)
    assert sim.clean.min() >= 0
    # the inhibition shows: inhibited muscles dip below their tonic level
    assert np.all(sim.clean[:, inhibited].min(axis=0) < sim.tonic[inhibited] - 1e-3)
    assert np.all(sim.emg.data >= 0) and sim.emg.rate == 100.0 and sim.emg.unit == "a.u."


@pytest.mark.parametrize("noise", ["gaussian", "signal-dependent"])
def test_noise_at_the_requested_snr(noise):
    sim = simulate_synergies(negative=False, snr_db=15.0, noise=noise, random_state=1)
    # rectification at 0 only ever shrinks an error, so the realized SNR is at least the
    # requested one (up to sampling error) and a little higher where the signal rests at 0
    assert np.all(sim.realized_snr_db > 15.0 - 0.3), sim.realized_snr_db
    assert np.all(sim.realized_snr_db < 15.0 + 3.0), sim.realized_snr_db
    assert np.all(sim.tonic == 0) and not sim.negative_mask.any()
    assert np.all(sim.weights >= 0)
    if noise == "signal-dependent":  # no noise where the clean signal is zero
        quiet = sim.clean == 0
        assert quiet.any() and np.all(sim.emg.data[quiet] == 0)
    clean = simulate_synergies(negative=False, snr_db=np.inf, random_state=1)
    np.testing.assert_array_equal(clean.emg.data, clean.clean)


def test_deterministic_and_recorded():
    a = simulate_synergies(random_state=3)
    b = simulate_synergies(random_state=3)
    np.testing.assert_array_equal(a.emg.data, b.emg.data)
    assert a.emg.history[0]["step"] == "simulate_synergies"
    assert a.parameters["snr_db"] == 20.0
    c = simulate_synergies(random_state=4)
    assert not np.array_equal(a.weights, c.weights)


def test_errors():
    with pytest.raises(InputError, match="n_synergies"):
        simulate_synergies(n_muscles=4, n_synergies=5)
    with pytest.raises(InputError, match="noise"):
        simulate_synergies(noise="pink")
    with pytest.raises(InputError, match="NegCps"):
        simulate_synergies(n_muscles=4, n_synergies=2, sparsity=0.0, negative=True)
