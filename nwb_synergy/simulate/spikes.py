"""Spike trains with planted post-spike effects on raw EMG, with task co-modulation.

The generative model, at the full EMG rate (e.g. 5 kHz)::

    emg[t, m] = amplitude * carrier[t, m] * envelope[t, m] * gain[t, m]
    gain[t, m] = 1 + sum_u effects[u, m] * (number of spikes of unit u in
                                            [t - latency - effect_duration, t - latency))

* ``carrier``: independent Gaussian noise per muscle, band-pass filtered (``carrier_band``,
  4th-order Butterworth), unit RMS: the interference pattern of many motor units. Rectified,
  its mean is proportional to ``envelope * gain``, so a spike of unit u multiplies the
  rectified EMG of muscle m by ``1 + effects[u, m]`` (e.g. +0.05: 5% facilitation, PSF;
  -0.05: 5% suppression, PSpS) during ``effect_duration`` s starting ``latency`` s after it.
* ``envelope``: the slow amplitude of each muscle. Given (e.g. the EMG of
  :func:`nwb_synergy.simulate.simulate_synergies`, at its own rate), or generated as
  ``base[m] * exp(c * z(t) - c**2 / 2)`` from a slow task signal ``z`` (unit variance,
  low-pass ``task_frequency`` Hz) with ``c = comodulation``.
* Spikes: renewal processes (gamma intervals of shape ``regularity``; 1 = Poisson) with
  firing rate ``firing_rate[u] * exp(c * z(t + lead) - c**2 / 2)`` (normalised to mean
  ``firing_rate[u]``) by time rescaling: firing rate and EMG amplitude follow the same task
  signal, the neurons leading the EMG by ``lead`` s. With a given envelope, ``z`` is the
  standardised mean of the envelope over muscles (or ``drive``). This co-modulation puts broad
  humps and ramps into STAs that are not post-spike effects: the trap an effect test must
  avoid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import signal as sps

from ..errors import InputError
from ..signals import EMG

__all__ = ["SimulatedSpikes", "simulate_spikes"]


class PlantedEffects:
    """Views of a signed ``effects`` array (n_units, n_muscles): > 0 PSF, < 0 PSpS."""

    effects: np.ndarray

    @property
    def facilitated(self) -> np.ndarray:
        """Boolean (n_units, n_muscles): planted facilitation (PSF)."""
        return self.effects > 0

    @property
    def suppressed(self) -> np.ndarray:
        """Boolean (n_units, n_muscles): planted suppression (PSpS)."""
        return self.effects < 0


@dataclass
class SimulatedSpikes(PlantedEffects):
    """Raw EMG, spike trains and the planted truth.

    Attributes
    ----------
    emg
        Raw (signed) EMG at the full rate, :class:`~nwb_synergy.EMG` (n_times, n_muscles),
        unit "V". Rectify it (after high-pass filtering, if any) before the STA.
    spike_times
        ``{unit id: spike times in seconds}``, sorted, inside the recording.
    effects
        Planted effects (n_units, n_muscles), signed fractions (+0.05 = 5% PSF).
    unit_ids
        Unit ids, in the row order of ``effects``.
    latency, effect_duration
        When each effect starts after a spike, and how long it lasts (s).
    envelope
        Slow amplitude without spike effects (n_times_env, n_muscles) at ``envelope_rate``.
    envelope_rate
        Rate of ``envelope``, ``task`` and ``firing_rates`` (Hz).
    task
        Standardised slow task signal (n_times_env,) that drives co-modulation.
    firing_rates
        Instantaneous firing rate of each unit (n_times_env, n_units), Hz.
    comodulation, lead
        Co-modulation strength and the lead of firing over EMG amplitude (s).
    parameters
        All arguments, for provenance.
    """

    emg: EMG
    spike_times: dict[Any, np.ndarray]
    effects: np.ndarray
    unit_ids: list
    latency: float
    effect_duration: float
    envelope: np.ndarray
    envelope_rate: float
    task: np.ndarray
    firing_rates: np.ndarray
    comodulation: float
    lead: float
    parameters: dict = field(default_factory=dict, repr=False)

    @property
    def n_units(self) -> int:
        return int(self.effects.shape[0])

    @property
    def n_muscles(self) -> int:
        return int(self.effects.shape[1])

    def rectified(self) -> np.ndarray:
        """``abs(emg)`` as float64 (the carrier has no low-frequency content to filter)."""
        return np.abs(np.asarray(self.emg.data, dtype=float))


def _rng(random_state: Any) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def _standardise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def _task_signal(rng: np.random.Generator, n: int, rate: float, cutoff: float) -> np.ndarray:
    """Smooth zero-mean unit-variance noise, low-passed at ``cutoff`` Hz (zero phase)."""
    pad = int(2 * rate / cutoff)
    white = rng.standard_normal(n + 2 * pad)
    sos = sps.butter(2, cutoff, btype="low", fs=rate, output="sos")
    z = sps.sosfiltfilt(sos, white)[pad : pad + n]
    return _standardise(z)


def _renewal_spikes(
    rng: np.random.Generator,
    rate_env: np.ndarray,
    env_times: np.ndarray,
    duration: float,
    regularity: float,
) -> np.ndarray:
    """Spike times of a gamma renewal process with time-varying rate (time rescaling)."""
    dt = np.diff(env_times, append=env_times[-1] + (env_times[1] - env_times[0]))
    cum = np.concatenate([[0.0], np.cumsum(rate_env * dt)])
    grid = np.concatenate([env_times, [env_times[-1] + dt[-1]]])
    total = cum[-1]
    n_draw = int(total + 6 * np.sqrt(total + 1) + 10)
    intervals = rng.gamma(regularity, 1.0 / regularity, size=n_draw)
    operational = np.cumsum(intervals)
    operational += rng.uniform(0, 1) * intervals[0] - intervals[0]  # random phase
    operational = operational[(operational >= 0) & (operational < total)]
    times = np.interp(operational, cum, grid)
    return times[(times >= 0) & (times < duration)]


def _default_effects(
    rng: np.random.Generator, n_units: int, n_muscles: int, size: float
) -> np.ndarray:
    effects = np.zeros((n_units, n_muscles))
    k = max(1, n_muscles // 4)
    for u in range(n_units):
        idx = rng.choice(n_muscles, size=min(2 * k, n_muscles), replace=False)
        effects[u, idx[:k]] = size
        effects[u, idx[k:]] = -size
    return effects


def simulate_spikes(
    n_units: int = 4,
    n_muscles: int = 8,
    duration: float = 60.0,
    rate: float = 5000.0,
    *,
    effects: np.ndarray | None = None,
    effect_size: float = 0.05,
    latency: float = 0.006,
    effect_duration: float = 0.010,
    firing_rate: float | np.ndarray = 20.0,
    regularity: float = 1.0,
    comodulation: float = 0.5,
    lead: float = 0.05,
    task_frequency: float = 1.0,
    envelope: Any = None,
    envelope_rate: float | None = None,
    envelope_floor: float = 0.05,
    drive: np.ndarray | None = None,
    carrier_band: tuple[float, float] = (30.0, 300.0),
    amplitude: float = 5e-5,
    muscle_names: list[str] | None = None,
    unit_ids: list | None = None,
    dtype: Any = np.float32,
    random_state: int | np.random.Generator | None = None,
) -> SimulatedSpikes:
    """Simulate raw EMG and spike trains whose spikes facilitate or suppress muscles.

    Parameters
    ----------
    n_units, n_muscles
        Sizes; taken from ``effects`` / ``envelope`` when those are given.
    duration
        Seconds (ignored when ``envelope`` is given: its own duration is used).
    rate
        EMG sampling rate, Hz.
    effects
        (n_units, n_muscles) signed fractions: +0.05 multiplies the muscle's EMG amplitude by
        1.05 for ``effect_duration`` after ``latency`` following each spike (PSF), -0.05 by
        0.95 (PSpS), 0 no effect. Default: each unit facilitates ``n_muscles // 4`` random
        muscles and suppresses as many others, by ``effect_size``.
    effect_size
        Size of the default effects.
    latency, effect_duration
        Onset after the spike and duration of each effect, seconds.
    firing_rate
        Mean firing rate per unit (scalar or (n_units,)), Hz.
    regularity
        Shape of the gamma inter-spike intervals (1 = Poisson, larger = more regular).
    comodulation
        Strength ``c`` of the shared slow modulation: log firing rate and log EMG amplitude
        have standard deviation ``c`` (0 = none, 1 = strong: about e-fold swings).
    lead
        The firing rate follows the task signal ``lead`` s before the EMG amplitude does.
    task_frequency
        Cut-off of the slow task signal, Hz.
    envelope
        Optional slow EMG amplitude (n_times_env, n_muscles), non-negative, or an
        :class:`~nwb_synergy.EMG` (e.g. ``simulate_synergies(...).emg``); interpolated to
        ``rate``. Each muscle is floored at ``envelope_floor`` times its mean (a muscle needs
        some activity for suppression to show).
    envelope_rate
        Rate of ``envelope`` (Hz) when it is an array.
    drive
        Optional task signal for the firing rates, (n_times_env,) shared or (n_times_env,
        n_units) per unit, at ``envelope_rate``; default the mean envelope (or the generated
        task signal).
    carrier_band
        Pass band of the EMG carrier, Hz.
    amplitude
        RMS of the EMG at envelope 1, volts.
    muscle_names, unit_ids
        Names; default ``muscle_0..``, ``0..n_units-1``.
    dtype
        dtype of the EMG samples.
    random_state
        Seed or Generator.

    Returns
    -------
    SimulatedSpikes
    """
    rng = _rng(random_state)
    params = {
        k: v
        for k, v in locals().items()
        if k not in {"rng", "envelope", "drive", "effects", "random_state"}
    }
    rate = float(rate)
    if not rate > 0:
        raise InputError(f"rate must be positive, got {rate}", obj="rate")
    if latency < 0 or effect_duration <= 0:
        raise InputError("latency must be >= 0 and effect_duration > 0", obj="latency")
    if comodulation < 0:
        raise InputError(f"comodulation must be >= 0, got {comodulation}", obj="comodulation")

    env_given = envelope is not None
    if env_given:
        if isinstance(envelope, EMG):
            envelope_rate = envelope.rate
            if muscle_names is None:
                muscle_names = list(envelope.muscle_names)
            envelope = envelope.to_numpy()
        envelope = np.asarray(envelope, dtype=float)
        if envelope.ndim != 2 or envelope.shape[0] < 2:
            raise InputError("envelope must be (n_times_env >= 2, n_muscles)", obj="envelope")
        if envelope_rate is None or not envelope_rate > 0:
            raise InputError("envelope_rate (Hz) is needed with an envelope array", obj="envelope")
        if not np.all(np.isfinite(envelope)):
            raise InputError("envelope contains NaN or infinite values", obj="envelope")
        n_muscles = envelope.shape[1]
        env_rate = float(envelope_rate)
        duration = envelope.shape[0] / env_rate
    else:
        env_rate = 200.0
    if effects is not None:
        effects = np.atleast_2d(np.asarray(effects, dtype=float))
        if env_given and effects.shape[1] != n_muscles:
            raise InputError(
                f"effects has {effects.shape[1]} muscles, the envelope {n_muscles}", obj="effects"
            )
        n_units, n_muscles = effects.shape
        if np.any(effects <= -1):
            raise InputError("effects must be > -1 (a fraction of the amplitude)", obj="effects")
    else:
        effects = _default_effects(rng, n_units, n_muscles, effect_size)
    if duration <= 0:
        raise InputError(f"duration must be positive, got {duration}", obj="duration")

    n_env = int(round(duration * env_rate))
    env_times = np.arange(n_env) / env_rate
    c = float(comodulation)
    if env_given:
        mean_env = envelope.mean(axis=0)
        env = np.maximum(envelope, envelope_floor * np.where(mean_env > 0, mean_env, 1.0))
        task = _standardise(env.mean(axis=1))
    else:
        task = _task_signal(rng, n_env, env_rate, task_frequency)
        base = rng.uniform(0.5, 1.5, n_muscles)
        env = base * np.exp(c * task - c**2 / 2)[:, None]
    if drive is not None:
        drive = np.asarray(drive, dtype=float)
        if drive.shape[0] != n_env:
            raise InputError(f"drive must have {n_env} samples (envelope rate)", obj="drive")
        drive = _standardise(drive)
    drive = task if drive is None else drive
    drive = np.broadcast_to(drive.reshape(n_env, -1), (n_env, n_units))

    rates_mean = np.broadcast_to(np.asarray(firing_rate, dtype=float), (n_units,))
    if np.any(rates_mean < 0):
        raise InputError("firing_rate must be >= 0", obj="firing_rate")
    firing = np.empty((n_env, n_units))
    spike_times: dict[Any, np.ndarray] = {}
    unit_ids = list(range(n_units)) if unit_ids is None else list(unit_ids)
    if len(unit_ids) != n_units:
        raise InputError(f"{len(unit_ids)} unit ids for {n_units} units", obj="unit_ids")
    for u, uid in enumerate(unit_ids):
        shifted = np.interp(env_times + lead, env_times, drive[:, u])
        lam = np.exp(c * shifted)
        lam *= rates_mean[u] / lam.mean()
        firing[:, u] = lam
        spike_times[uid] = _renewal_spikes(rng, lam, env_times, duration, regularity)

    n_times = int(round(duration * rate))
    times = np.arange(n_times) / rate
    lat = int(round(latency * rate))
    width = max(1, int(round(effect_duration * rate)))
    sos = sps.butter(4, carrier_band, btype="band", fs=rate, output="sos")
    data = np.empty((n_times, n_muscles), dtype=dtype)
    spike_samples = [np.floor(spike_times[uid] * rate).astype(np.int64) + lat for uid in unit_ids]
    for m in range(n_muscles):
        carrier = sps.sosfilt(sos, rng.standard_normal(n_times))
        carrier /= np.sqrt(np.mean(carrier**2))
        amp = np.interp(times, env_times, env[:, m])
        units = np.flatnonzero(effects[:, m])
        if len(units):
            idx = np.concatenate([spike_samples[u] for u in units])
            wts = np.concatenate([np.full(len(spike_samples[u]), effects[u, m]) for u in units])
            keep = idx < n_times
            impulses = np.bincount(idx[keep], weights=wts[keep], minlength=n_times)
            cum = np.cumsum(impulses)
            box = cum.copy()
            box[width:] -= cum[:-width]
            amp *= 1.0 + box
        data[:, m] = amplitude * carrier * amp
    names = muscle_names or [f"muscle_{i}" for i in range(n_muscles)]
    emg = EMG(
        data=data,
        rate=rate,
        t_start=0.0,
        muscle_names=list(names),
        unit="V",
        history=[{"step": "simulate_spikes", **{k: params[k] for k in ("rate", "comodulation")}}],
    )
    return SimulatedSpikes(
        emg=emg,
        spike_times=spike_times,
        effects=effects,
        unit_ids=unit_ids,
        latency=float(latency),
        effect_duration=float(effect_duration),
        envelope=env,
        envelope_rate=env_rate,
        task=task,
        firing_rates=firing,
        comodulation=c,
        lead=float(lead),
        parameters=params,
    )
