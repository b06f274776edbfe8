"""Post-spike effects on simulated EMG with planted PSF / PSpS, with and without co-modulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import quantities as pq
from elephant.spike_train_surrogates import dither_spikes
from neo import SpikeTrain

from nwb_synergy import InputError
from nwb_synergy.simulate import simulate_spikes
from nwb_synergy.sta import post_spike_effects, spike_triggered_average
from nwb_synergy.sta._gather import box_stats

N_UNITS, N_MUSCLES = 8, 12


def _simulate(comodulation: float, seed: int):
    # about 6,000 spikes per unit (20 Hz for 300 s); each unit facilitates 3 muscles by 5% and
    # suppresses 3 others by 5%, 6 ms after its spikes, for 10 ms
    return simulate_spikes(
        n_units=N_UNITS,
        n_muscles=N_MUSCLES,
        duration=300.0,
        effect_size=0.05,
        comodulation=comodulation,
        lead=0.05,
        random_state=seed,
    )


def _score(sim, tables) -> dict:
    """Detections, misses, sign errors and false positives over all (unit, muscle) pairs."""
    out = dict(planted=0, found=0, sign_errors=0, null=0, false_pos=0)
    for u, unit in enumerate(sim.unit_ids):
        found = tables[unit]["effect"].to_numpy(dtype=object)
        for m, truth in enumerate(sim.effects[u]):
            if truth != 0:
                out["planted"] += 1
                if found[m] is not None:
                    if (found[m] == "PSF") == (truth > 0):
                        out["found"] += 1
                    else:
                        out["sign_errors"] += 1
            else:
                out["null"] += 1
                out["false_pos"] += found[m] is not None
    return out


@pytest.fixture(scope="module")
def results():
    """Default and lab-standard effects on three simulations (two strongly co-modulated)."""
    out = {}
    for name, comod, seed in [("none", 0.0, 1), ("strong", 1.0, 2), ("strong2", 1.0, 3)]:
        sim = _simulate(comod, seed)
        stas = spike_triggered_average(sim.rectified(), sim.spike_times, rate=sim.emg.rate)
        tables = post_spike_effects(stas)
        out[name] = dict(
            sim=sim,
            n_spikes=[s.n_used for s in stas.values()],
            default=_score(sim, tables),
            lab=_score(sim, post_spike_effects(stas, method="fragments")),
            p_null=np.concatenate(
                [
                    tables[unit]["p_value"].to_numpy()[sim.effects[u] == 0]
                    for u, unit in enumerate(sim.unit_ids)
                ]
            ),
        )
        del stas
    return out


def test_planted_effects_found_without_false_positives(results):
    for name in ("none", "strong", "strong2"):
        r = results[name]
        assert 5000 < np.mean(r["n_spikes"]) < 7000
    pooled = {k: sum(results[n]["default"][k] for n in results) for k in results["none"]["default"]}
    # 144 planted pairs and 144 unaffected pairs in all
    assert pooled["planted"] == 144 and pooled["null"] == 144
    assert pooled["found"] / pooled["planted"] >= 0.95
    assert pooled["false_pos"] / pooled["null"] <= 0.05
    assert pooled["sign_errors"] == 0
    strong = {k: results["strong"]["default"][k] + results["strong2"]["default"][k] for k in pooled}
    assert strong["found"] / strong["planted"] >= 0.95
    assert strong["false_pos"] / strong["null"] <= 0.05


def test_default_is_at_least_as_powerful_as_the_lab_standard(results):
    for name in results:
        assert results[name]["default"]["found"] >= results[name]["lab"]["found"]


def test_lab_standard_is_fooled_by_comodulation_and_the_default_is_not(results):
    # firing leads EMG amplitude by 50 ms: the STA ramps up through the test window
    lab_fp = results["strong"]["lab"]["false_pos"] + results["strong2"]["lab"]["false_pos"]
    default_fp = (
        results["strong"]["default"]["false_pos"] + results["strong2"]["default"]["false_pos"]
    )
    assert lab_fp >= 10
    assert default_fp <= 2
    # and the default's p-values are calibrated on unaffected pairs (uncorrected, 48 pairs)
    p = results["strong"]["p_null"]
    assert len(p) == 48
    assert np.mean(p < 0.05) <= 0.15
    assert np.mean(p < 0.5) == pytest.approx(0.5, abs=0.2)


def test_lab_standard_textbook_case():
    """20% PSF and PSpS, 6-16 ms after the spike, 3,000 spikes, no co-modulation."""
    sim = simulate_spikes(
        n_muscles=4,
        duration=150.0,
        effects=np.array([[0.2, -0.2, 0.0, 0.0]]),
        comodulation=0.0,
        random_state=3,
    )
    sta = spike_triggered_average(sim.rectified(), sim.spike_times[0], rate=sim.emg.rate)
    table = post_spike_effects(sta, method="fragments")
    assert isinstance(table, pd.DataFrame)
    assert list(table.index) == sim.emg.muscle_names
    assert list(table["effect"]) == ["PSF", "PSpS", None, None]
    assert table["p_value"].iloc[:2].max() < 1e-10
    assert table["p_value"].iloc[2:].min() > 0.01
    # onset and offset within 1 ms of the planted 6 and 16 ms; MPI near +-20%
    np.testing.assert_allclose(table["onset"].iloc[:2], 0.006, atol=0.001)
    np.testing.assert_allclose(table["offset"].iloc[:2], 0.016, atol=0.001)
    assert np.all(
        (table["peak_latency"].iloc[:2] > 0.006) & (table["peak_latency"].iloc[:2] < 0.016)
    )
    np.testing.assert_allclose(table["mpi"].iloc[:2], [20.0, -20.0], atol=3.0)
    assert np.all(np.abs(table["ppi"].iloc[:2]) > np.abs(table["mpi"].iloc[:2]))
    assert table["n_fragments"].iloc[0] == sta.n_used // 100
    assert np.isnan(table["onset"].iloc[2])
    # the default reports the same picture, also with irregular ISA shifts (1.3 ms = 6.5
    # samples, summed box by box instead of through the comb)
    for step in (0.001, 0.0013):
        default = post_spike_effects(sta, isa_step=step)
        assert list(default["effect"]) == ["PSF", "PSpS", None, None]
        np.testing.assert_allclose(default["mpi"].iloc[:2], [20.0, -20.0], atol=3.0)


def test_isa_is_the_expected_sta_under_elephant_dithering():
    """The ISA over +-J in 1-sample steps is the mean STA of spikes dithered uniformly by +-J
    (elephant.spike_train_surrogates.dither_spikes), up to Monte Carlo error."""
    rate = 1000.0
    rng = np.random.default_rng(8)
    n = 20000
    spikes = np.sort(rng.uniform(0.2, 19.8, 400))
    x = 1.0 + 0.2 * rng.standard_normal(n)
    for i in np.floor(spikes * rate).astype(int):
        x[i + 5 : i + 15] += 1.0  # a strong spike-locked bump
    x = x[:, None]
    span = 0.02
    sta = spike_triggered_average(
        x, spikes, rate=rate, window=(-0.03, 0.05), baseline="isa", isa_span=span, isa_step=1 / rate
    )
    train = SpikeTrain(spikes * pq.s, t_start=0 * pq.s, t_stop=n / rate * pq.s)
    np.random.seed(8)  # noqa: NPY002 - elephant dithers with NumPy's global generator
    surrogates = dither_spikes(train, dither=span * pq.s, n_surrogates=200)
    means = [
        spike_triggered_average(x, s.rescale("s").magnitude, rate=rate, keep_sweeps=False).mean
        for s in surrogates
    ]
    means = np.array(means)[:, :, 0]
    mc = means.mean(axis=0)
    se = means.std(axis=0, ddof=1) / np.sqrt(len(means))
    # the bump is smeared over +-20 ms; a continuous dither rounds to samples slightly
    # differently from 41 integer shifts, so allow Monte Carlo error plus 1% of the bump
    assert np.all(np.abs(sta.isa[:, 0] - mc) < 4 * se + 0.01)
    # and the bump really is smeared: the ISA varies 3x less than the STA
    assert np.ptp(sta.isa[:, 0]) < np.ptp(sta.mean[:, 0]) / 3


def test_comb_sums_equal_explicit_shifted_boxes():
    """The 4-lookup comb used for ISA-corrected statistics equals summing 81 shifted boxes."""
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, size=(30000, 3)).astype(np.float32)
    step, n = 5, 40
    starts = np.sort(rng.integers(n * step, 30000 - 226 - n * step, 2000))
    starts[[0, -1]] = n * step, 30000 - 226 - n * step  # shifted boxes touching both ends
    shifts = np.arange(-n, n + 1) * step
    lo, hi = np.array([165, 0]), np.array([226, 101])
    cw = np.array([[-1.0, 1.0], [0.5, 0.5]]) / len(shifts)
    direct = np.array([[1.0, -1.0], [0.0, 0.0]])
    explicit = box_stats(
        x,
        starts,
        np.concatenate([lo, lo[0] + shifts, lo[1] + shifts]),
        np.concatenate([hi, hi[0] + shifts, hi[1] + shifts]),
        np.concatenate([direct, np.repeat(cw, len(shifts), axis=1)], axis=1),
    )
    for chunk in (2**26, 2**14):
        comb = box_stats(
            x,
            starts,
            lo,
            hi,
            direct,
            comb=(step, n),
            comb_lo=lo,
            comb_hi=hi,
            comb_weights=cw,
            chunk_bytes=chunk,
        )
        np.testing.assert_allclose(comb, explicit, rtol=0, atol=1e-8)
    s = starts[7]
    mean = lambda a, b: x[s + a : s + b].astype(float).mean(axis=0)  # noqa: E731
    brute = mean(165, 226) - mean(0, 101)
    brute -= np.mean([mean(165 + d, 226 + d) - mean(d, 101 + d) for d in shifts], axis=0)
    np.testing.assert_allclose(explicit[7, 0], brute, atol=1e-12)


def test_on_disk_emg_gives_the_same_table(tmp_path):
    h5py = pytest.importorskip("h5py")
    sim = simulate_spikes(n_units=2, n_muscles=3, duration=40.0, effect_size=0.2, random_state=5)
    x = sim.rectified()
    with h5py.File(tmp_path / "emg.h5", "w") as f:
        f.create_dataset("emg", data=x)
    memory = post_spike_effects(spike_triggered_average(x, sim.spike_times, rate=sim.emg.rate))
    with h5py.File(tmp_path / "emg.h5", "r") as f:
        stas = spike_triggered_average(
            f["emg"], sim.spike_times, rate=sim.emg.rate, chunk_bytes=2**16, keep_sweeps=False
        )
        disk = post_spike_effects(stas, chunk_bytes=2**16)
    for unit in sim.unit_ids:
        pd.testing.assert_frame_equal(disk[unit], memory[unit], rtol=1e-9)


def test_a_silent_muscle_is_left_untested_and_the_others_are_not():
    sim = simulate_spikes(
        n_muscles=3, duration=60.0, effects=np.array([[0.3, 0.0, 0.0]]), random_state=2
    )
    x = sim.rectified()
    x[:, 2] = 0.0  # no EMG at all: no level to normalise by
    sta = spike_triggered_average(x, sim.spike_times[0], rate=sim.emg.rate)
    with pytest.warns(RuntimeWarning, match="usable fragments"):
        table = post_spike_effects(sta)
    assert list(table["effect"]) == ["PSF", None, None]
    assert np.isnan(table["p_value"].iloc[2]) and table["n_fragments"].iloc[2] == 0
    assert table["n_fragments"].iloc[0] == sta.n_used // 100


def test_bad_arguments():
    rng = np.random.default_rng(0)
    x = np.abs(rng.standard_normal((20000, 2)))
    sta = spike_triggered_average(x, np.sort(rng.uniform(0.1, 3.9, 150)), rate=5000.0)
    with pytest.raises(InputError, match="not inside the STA lags"):
        post_spike_effects(sta, test=(0.04, 0.08))
    with pytest.raises(InputError, match="method"):
        post_spike_effects(sta, method="magic")
    sta.source = None
    with pytest.raises(InputError, match="pass emg="):
        post_spike_effects(sta)
    with pytest.warns(RuntimeWarning, match="fewer than 2 usable fragments"):
        table = post_spike_effects(sta, emg=x)
    assert table["effect"].isna().all() and table["p_value"].isna().all()
