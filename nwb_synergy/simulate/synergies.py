"""Ground-truth muscle synergies, with or without negative components (NegCps).

The generative model is the one synergy analyses assume, plus what inhibition needs to show::

    clean = tonic + activations @ weights.T          (n_times, n_muscles), >= 0
    emg   = max(clean + noise, 0)

* ``weights`` (n_muscles, K): unit-norm columns. Positive parts are drawn uniformly in [0, 1] and
  sparsened (each synergy has a few strong muscles, as in experimental synergies and in the
  simulations of Tresch et al. 2006 and Cheung et al. 2005). With ``negative=True`` some
  synergies also carry a small negative weight (a NegCp) on a muscle where their positive part
  is zero, of size ``negative_size`` times the largest weight of that synergy (Guo et al. 2025
  report NegCps that are small compared with the main components).
* ``activations`` (n_times, K): non-negative, smooth and bursty: a sum of Gaussian bursts
  (50-200 ms wide) at Poisson-distributed times with random amplitudes, zero between bursts.
* ``tonic`` (n_muscles,): a constant baseline, only on the muscles that carry a NegCp: an
  inhibited muscle must be active for its inhibition to be visible in its EMG. Each such
  baseline is at least large enough for ``clean`` to stay non-negative (so NegCps are never
  hidden by a floor), and at least ``tonic`` times the muscle's phasic peak.
* noise at a set SNR per muscle, ``10 log10(mean(clean_m**2) / mean(noise_m**2))``: Gaussian
  (additive, constant variance) or signal-dependent (standard deviation proportional to the
  clean signal, as for the multiplicative noise of EMG envelopes). Each muscle's noise is
  scaled so that this SNR is exactly ``snr_db`` before rectification.
* EMG envelopes cannot be negative: after the noise is added the EMG is half-wave rectified
  (negative samples set to 0, as in Tresch et al. 2006). ``realized_snr_db`` reports the SNR
  measured after that step.

Guo et al. (IEEE JBHI 2025) simulated EMG from known synergies with NegCps, at several noise
levels, to compare NMF and RLVM; the exact parameters are not public in a form we could read, so
the defaults here (12 muscles, 4 synergies, 40 s at 100 Hz, 20 dB) follow the usual sizes of
upper-limb EMG studies and are documented rather than copied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..signals import EMG


@dataclass
class SimulatedSynergies:
    """Simulated EMG with its ground truth.

    Attributes
    ----------
    emg
        :class:`~nwb_synergy.EMG` of shape (n_times, n_muscles), envelope-like, non-negative,
        at ``rate`` Hz, unit "a.u.".
    weights
        True synergies (n_muscles, n_synergies), unit-norm columns (NegCps negative).
    activations
        True activation coefficients (n_times, n_synergies), >= 0.
    negative_mask
        Boolean (n_muscles, n_synergies): True where a weight is a NegCp.
    tonic
        Baseline of each muscle (n_muscles,), non-zero only on muscles carrying a NegCp.
    clean
        Noise-free EMG (n_times, n_muscles), ``tonic + activations @ weights.T``.
    snr_db
        SNR asked for (dB); ``inf`` for noise-free data.
    realized_snr_db
        SNR per muscle measured on the returned EMG (after rectification), (n_muscles,).
    noise
        Kind of noise ("gaussian" or "signal-dependent").
    parameters
        All arguments of :func:`simulate_synergies`, for provenance.
    """

    emg: EMG
    weights: np.ndarray
    activations: np.ndarray
    negative_mask: np.ndarray
    tonic: np.ndarray
    clean: np.ndarray
    snr_db: float
    realized_snr_db: np.ndarray
    noise: str
    parameters: dict = field(default_factory=dict)

    @property
    def n_synergies(self) -> int:
        return int(self.weights.shape[1])

    @property
    def n_muscles(self) -> int:
        return int(self.weights.shape[0])


def _random_weights(
    rng: np.random.Generator, n_muscles: int, n_synergies: int, sparsity: float
) -> np.ndarray:
    """Non-negative weights: uniform in [0, 1], a fraction ``sparsity`` of each column zeroed.

    Every muscle is used by at least one synergy, every synergy keeps at least two muscles.
    """
    w = rng.uniform(0.0, 1.0, size=(n_muscles, n_synergies))
    n_zero = int(round(sparsity * n_muscles))
    n_zero = min(n_zero, n_muscles - 2)
    for k in range(n_synergies):
        w[rng.choice(n_muscles, size=n_zero, replace=False), k] = 0.0
    for m in np.flatnonzero(~(w > 0).any(axis=1)):
        w[m, rng.integers(n_synergies)] = rng.uniform(0.3, 1.0)
    return w


def _bursty_activations(
    rng: np.random.Generator,
    n_times: int,
    n_synergies: int,
    rate: float,
    burst_rate: float,
    burst_width: tuple[float, float],
) -> np.ndarray:
    """Sum of Gaussian bursts at Poisson times; (n_times, n_synergies), peak about 1."""
    t = np.arange(n_times) / rate
    duration = n_times / rate
    h = np.zeros((n_times, n_synergies))
    for k in range(n_synergies):
        n_bursts = max(1, rng.poisson(burst_rate * duration))
        centers = rng.uniform(0.0, duration, size=n_bursts)
        widths = rng.uniform(*burst_width, size=n_bursts)  # full width at half maximum, s
        amplitudes = rng.uniform(0.3, 1.0, size=n_bursts)
        sd = widths / 2.3548
        for c, s, a in zip(centers, sd, amplitudes, strict=True):
            lo = np.searchsorted(t, c - 4 * s)
            hi = np.searchsorted(t, c + 4 * s)
            h[lo:hi, k] += a * np.exp(-0.5 * ((t[lo:hi] - c) / s) ** 2)
        peak = h[:, k].max()
        if peak > 0:
            h[:, k] /= peak
    return h


def simulate_synergies(
    n_muscles: int = 12,
    n_synergies: int = 4,
    n_times: int = 4000,
    rate: float = 100.0,
    *,
    negative: bool = True,
    n_negative: int | None = None,
    negative_size: float = 0.3,
    tonic: float = 0.2,
    snr_db: float = 20.0,
    noise: str = "gaussian",
    sparsity: float = 0.4,
    burst_rate: float = 0.75,
    burst_width: tuple[float, float] = (0.15, 0.5),
    random_state: int | np.random.Generator | None = None,
) -> SimulatedSynergies:
    """Simulate EMG envelopes from known synergies (see the module docstring for the model).

    Parameters
    ----------
    n_muscles, n_synergies, n_times
        Size of the EMG matrix (n_times, n_muscles) and number of true synergies.
    rate
        Sampling rate of the envelopes in Hz (100 Hz: the usual rate after conditioning).
    negative
        Whether the synergies carry negative components (NegCps).
    n_negative
        Number of NegCps in all (default: one per synergy, ``n_synergies``). Each is placed on a
        muscle where its synergy's positive weight is zero, at most one per muscle when possible.
    negative_size
        Magnitude of each NegCp relative to the largest weight of its synergy (0.3).
    tonic
        Baseline of a muscle carrying a NegCp, as a fraction of that muscle's phasic peak
        (raised further when needed to keep the clean EMG non-negative).
    snr_db
        Signal-to-noise ratio per muscle in dB; ``np.inf`` for no noise.
    noise
        "gaussian" (additive, constant variance) or "signal-dependent" (standard deviation
        proportional to the clean signal).
    sparsity
        Fraction of the muscles with a zero positive weight in each synergy.
    burst_rate
        Mean number of activation bursts per second per synergy.
    burst_width
        Range of the bursts' full width at half maximum, in seconds.
    random_state
        Seed or generator; the same seed gives the same data.

    Returns
    -------
    SimulatedSynergies
        The EMG (non-negative, unit "a.u.") and its ground truth.

    Raises
    ------
    InputError
        Sizes or parameters that cannot be simulated.
    """
    if n_muscles < 2 or n_synergies < 1 or n_synergies > n_muscles:
        raise InputError(
            f"need 2 <= n_muscles and 1 <= n_synergies <= n_muscles, got n_muscles={n_muscles}, "
            f"n_synergies={n_synergies}",
            obj="simulate_synergies",
        )
    if n_times < 10:
        raise InputError(f"n_times must be at least 10, got {n_times}", obj="n_times")
    if noise not in ("gaussian", "signal-dependent"):
        raise InputError(
            f"noise must be 'gaussian' or 'signal-dependent', got {noise!r}", obj="noise"
        )
    if not 0 <= sparsity < 1:
        raise InputError(f"sparsity must be in [0, 1), got {sparsity}", obj="sparsity")
    params = {
        "n_muscles": n_muscles,
        "n_synergies": n_synergies,
        "n_times": n_times,
        "rate": rate,
        "negative": negative,
        "n_negative": n_negative,
        "negative_size": negative_size,
        "tonic": tonic,
        "snr_db": snr_db,
        "noise": noise,
        "sparsity": sparsity,
        "burst_rate": burst_rate,
        "burst_width": list(burst_width),
        "random_state": random_state if isinstance(random_state, (int, type(None))) else "rng",
    }
    rng = np.random.default_rng(random_state)

    w = _random_weights(rng, n_muscles, n_synergies, sparsity)
    mask = np.zeros((n_muscles, n_synergies), dtype=bool)
    if negative:
        n_neg = n_synergies if n_negative is None else int(n_negative)
        if n_neg < 0:
            raise InputError(f"must be >= 0, got {n_negative}", obj="n_negative")
        if not 0 < negative_size <= 1:
            raise InputError(f"must be in (0, 1], got {negative_size}", obj="negative_size")
        used: set[int] = set()
        for i in range(n_neg):
            k = i % n_synergies
            free = np.flatnonzero((w[:, k] == 0) & ~mask[:, k])
            if free.size == 0:
                raise InputError(
                    f"no room for {n_neg} NegCps: synergy {k} has no zero weight left; "
                    "raise sparsity or lower n_negative",
                    obj="n_negative",
                )
            fresh = [m for m in free if m not in used]
            m = int(rng.choice(fresh if fresh else free))
            used.add(m)
            mask[m, k] = True
        for k in range(n_synergies):
            w[mask[:, k], k] = -negative_size * w[:, k].max()
    w /= np.linalg.norm(w, axis=0)

    h = _bursty_activations(rng, n_times, n_synergies, rate, burst_rate, burst_width)
    phasic = h @ w.T
    base = np.zeros(n_muscles)
    inhibited = mask.any(axis=1)
    if inhibited.any():
        peak = np.clip(phasic, 0, None).max(axis=0)
        floor = np.clip(-phasic.min(axis=0), 0, None)
        base[inhibited] = np.maximum(tonic * peak[inhibited], floor[inhibited])
    clean = base + phasic
    clean[clean < 0] = 0.0  # only rounding: base >= -min(phasic) on every inhibited muscle

    if np.isinf(snr_db) and snr_db > 0:
        data = clean.copy()
    else:
        power = np.mean(clean**2, axis=0)
        scale = 10.0 ** (-snr_db / 20.0)
        eps = rng.standard_normal(clean.shape)
        e = eps if noise == "gaussian" else eps * clean  # sd constant or proportional
        # scale each muscle's noise so that its SNR before rectification is exactly snr_db
        e_power = np.maximum(np.mean(e**2, axis=0), 1e-300)
        e *= np.sqrt(power / e_power) * scale
        data = np.clip(clean + e, 0.0, None)
    err = np.mean((data - clean) ** 2, axis=0)
    with np.errstate(divide="ignore"):
        realized = 10 * np.log10(np.mean(clean**2, axis=0) / err)

    names = [f"muscle_{i:02d}" for i in range(n_muscles)]
    emg = EMG(
        data=data,
        rate=rate,
        t_start=0.0,
        muscle_names=names,
        unit="a.u.",
        history=[{"step": "simulate_synergies", **params}],
    )
    return SimulatedSynergies(
        emg=emg,
        weights=w,
        activations=h,
        negative_mask=mask,
        tonic=base,
        clean=clean,
        snr_db=float(snr_db),
        realized_snr_db=realized,
        noise=noise,
        parameters=params,
    )
