"""Muscle fields, field-synergy similarity and the NegCp-PSpS correspondence test."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from nwb_synergy import InputError
from nwb_synergy.simulate import simulate_spikes, simulate_synergies
from nwb_synergy.sta import (
    field_synergy_similarity,
    muscle_field,
    negcp_psps_correspondence,
    post_spike_effects,
    spike_triggered_average,
)


def _table(effects, mpi):
    index = [f"m{i}" for i in range(len(mpi))]
    return pd.DataFrame(
        {"effect": pd.Series(effects, index=index, dtype=object), "mpi": mpi}, index=index
    )


def test_muscle_field_scaling_signs_and_zeros():
    table = _table(["PSF", None, "PSpS", "PSF", None], [4.0, 9.0, -8.0, 2.0, -30.0])
    field = muscle_field(table)
    # non-significant muscles are 0 however large their MPI; max |.| = 1; signs from effects
    np.testing.assert_allclose(field, [0.5, 0.0, -1.0, 0.25, 0.0])
    none = muscle_field(_table([None, None], [5.0, -5.0]))
    np.testing.assert_array_equal(none, [0.0, 0.0])
    both = muscle_field({"a": table, "b": _table([None, "PSF"], [1.0, 3.0])})
    np.testing.assert_allclose(both["b"], [0.0, 1.0])
    with pytest.raises(InputError, match="effect"):
        muscle_field(pd.DataFrame({"x": [1.0]}))


def test_similarity_of_a_synergy_and_of_random_fields():
    rng = np.random.default_rng(0)
    weights = np.abs(rng.standard_normal((12, 4))) * (rng.random((12, 4)) < 0.5)
    weights[:, 2] += 0.01
    weights[3, 1] = -0.3
    exact = field_synergy_similarity(weights[:, 1], weights, random_state=1)
    assert exact.best == 1 and exact.best_cosine == pytest.approx(1.0)
    assert exact.p_value < 0.001
    assert exact.null.shape == (10000,)
    p_random = [
        field_synergy_similarity(rng.standard_normal(12), weights, 2000, random_state=s).p_value
        for s in range(30)
    ]
    assert np.median(p_random) > 0.2
    assert np.mean(np.array(p_random) < 0.05) <= 0.15
    zero = field_synergy_similarity(np.zeros(12), weights)
    assert zero.best is None and zero.p_value == 1.0
    with pytest.raises(InputError, match="muscles"):
        field_synergy_similarity(np.ones(5), weights)


def test_similarity_p_value_matches_exact_enumeration():
    """The vectorised Monte Carlo null equals the exact permutation distribution."""
    rng = np.random.default_rng(4)
    weights = np.abs(rng.standard_normal((6, 3)))
    field = weights[:, 0] + 1.5 * rng.standard_normal(6)
    res = field_synergy_similarity(field, weights, n_permutations=40000, random_state=2)
    w = weights / np.linalg.norm(weights, axis=0)
    f = field / np.linalg.norm(field)
    exact = np.mean(
        [
            (f[list(p)] @ w).max() >= res.best_cosine - 1e-12
            for p in itertools.permutations(range(6))
        ]
    )
    assert 0.01 < exact < 0.9
    assert res.p_value == pytest.approx(exact, abs=0.005)


def _inhibitory_fields(seed: int, coincide: bool, n_units: int = 8):
    """Fields of inhibitory units: each facilitates the two main muscles of one synergy and
    suppresses either that synergy's NegCp muscles (coincide) or muscles chosen at random among
    those it does not facilitate."""
    rng = np.random.default_rng(seed)
    truth = simulate_synergies(n_muscles=12, n_synergies=4, negative=True, random_state=seed)
    weights, negcp = truth.weights, truth.negative_mask
    fields = {}
    for u in range(n_units):
        k = u % 4
        f = np.zeros(12)
        main = np.argsort(weights[:, k])[-2:]
        f[main] = rng.uniform(0.5, 1.0, 2)
        if coincide:
            target = np.flatnonzero(negcp[:, k])
        else:
            target = rng.choice(
                np.flatnonzero(f == 0), size=max(1, negcp[:, k].sum()), replace=False
            )
        f[target] = -rng.uniform(0.3, 1.0, len(target))
        fields[f"unit{u}"] = f / np.abs(f).max()
    return fields, negcp, weights


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_correspondence_when_suppression_hits_negcps(seed):
    fields, negcp, weights = _inhibitory_fields(seed, coincide=True)
    res = negcp_psps_correspondence(fields, negcp, weights, random_state=seed)
    assert res.p_value < 0.01
    assert res.coincidences == res.n_suppressed  # every suppressed muscle is a NegCp
    assert res.statistic == pytest.approx(res.coincidences - res.expected)
    assert res.units == list(fields)
    assert all(res.best_synergy[f"unit{u}"] == u % 4 for u in range(8))


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_no_correspondence_when_suppression_is_elsewhere(seed):
    fields, negcp, weights = _inhibitory_fields(seed + 10, coincide=False)
    assert negcp_psps_correspondence(fields, negcp, weights, random_state=seed).p_value > 0.05


def test_correspondence_p_values_are_calibrated_under_the_null():
    p = [
        negcp_psps_correspondence(
            *_inhibitory_fields(100 + s, coincide=False), n_permutations=1000, random_state=s
        ).p_value
        for s in range(40)
    ]
    assert np.mean(np.array(p) < 0.05) <= 0.1
    assert np.mean(np.array(p) < 0.5) <= 0.7


def test_correspondence_inputs():
    fields, negcp, weights = _inhibitory_fields(0, coincide=True)
    as_array = np.array(list(fields.values()))
    a = negcp_psps_correspondence(fields, negcp, weights, random_state=0)
    b = negcp_psps_correspondence(as_array, negcp, weights, random_state=0)
    assert a.statistic == b.statistic and a.p_value == b.p_value
    only = negcp_psps_correspondence(fields, negcp, weights, units=["unit0"], random_state=0)
    assert only.units == ["unit0"]
    with pytest.raises(InputError, match="negcp_mask"):
        negcp_psps_correspondence(fields, negcp[:, :2], weights)
    with pytest.raises(InputError, match="not in fields"):
        negcp_psps_correspondence(fields, negcp, weights, units=["nobody"])


@pytest.mark.parametrize("coincide", [True, False])
def test_end_to_end_on_simulated_spikes(coincide):
    """Synergy envelopes with NegCps -> raw EMG with inhibitory units -> STA -> effects ->
    fields -> correspondence."""
    truth = simulate_synergies(
        n_muscles=10, n_synergies=3, n_times=12000, negative=True, random_state=7
    )
    weights, negcp = truth.weights, truth.negative_mask
    rng = np.random.default_rng(7)
    effects = np.zeros((6, 10))
    for u in range(6):
        k = u % 3
        effects[u, np.argsort(weights[:, k])[-2:]] = 0.1
        if coincide:
            effects[u, negcp[:, k]] = -0.1
        else:
            free = np.flatnonzero((effects[u] == 0) & ~negcp.any(axis=1))
            effects[u, rng.choice(free, size=negcp[:, k].sum(), replace=False)] = -0.1
    sim = simulate_spikes(
        envelope=truth.emg, effects=effects, firing_rate=30.0, comodulation=0.5, random_state=7
    )
    stas = spike_triggered_average(
        sim.rectified(), sim.spike_times, rate=sim.emg.rate, keep_sweeps=False
    )
    fields = muscle_field(post_spike_effects(stas))
    found = np.array([fields[u] for u in sim.unit_ids])
    # the suppressions were found where planted
    assert np.mean((found < 0) == (effects < 0)) >= 0.95
    res = negcp_psps_correspondence(fields, negcp, weights, random_state=0)
    if coincide:
        assert res.p_value < 0.01
    else:
        assert res.p_value > 0.05
