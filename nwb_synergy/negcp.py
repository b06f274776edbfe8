"""Negative components (NegCps) of synergies, with a statistical guard against rotations.

A NegCp (Guo et al., IEEE JBHI 2025) is a muscle weight of a synergy that is clearly negative:
the synergy, when active, pulls that muscle below its tonic level. The simple rule flags a
weight below ``-threshold * max|w|`` of its synergy. A threshold alone is not enough: a signed
factorization (RLVM) is identified only up to the invertible maps of the synergy space that
keep the activations non-negative, and a basis rotated inside the right subspace carries
spurious negative weights as large as true ones. Such weights are not reproducible: they
change size and sign from one starting point to another and from one sample of the data to
another. So a candidate is kept only when it is also

1. **consistent across restarts**: negative beyond the threshold in at least
   ``min_consistency`` of the model's restarts that reached (nearly) the best loss
   (``restart_weights_``, columns matched to the final synergies); and
2. **significant under a block bootstrap over time**: the model is refitted on ``n_boot``
   circular block-bootstrap resamples of the EMG (blocks of ``block`` samples keep the
   temporal dependence), each refit's synergies are matched to the original ones by the
   assignment that maximises the summed cosine (``scipy.optimize.linear_sum_assignment``), and
   the one-sided bootstrap p-value ``(1 + #{b: w_b >= 0}) / (n_boot + 1)`` of each candidate
   must be below ``alpha``. The percentile interval of the relative weight is reported too.

NMF weights are non-negative by construction, so NMF never has candidates and nothing is
refitted.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from .errors import InputError
from .signals import EMG


@dataclass
class NegativeComponents:
    """Result of :func:`negative_components`.

    Attributes
    ----------
    mask
        NegCps that pass every test, bool (n_muscles, n_synergies).
    candidates
        Weights below ``-threshold`` times the largest absolute weight of their synergy (in
        synergies that are active: a latent the L1 penalty silenced, ``activity_ == 0``, has
        none).
    relative
        Weights divided by the largest absolute weight of their synergy (n_muscles, K).
    restart_fraction
        Fraction of the near-best restarts in which the weight is a candidate too (NaN when
        the model has no restarts).
    p_value
        One-sided block-bootstrap p-value of ``w < 0`` (NaN where not tested: non-candidates,
        or no bootstrap).
    ci_low, ci_high
        Bootstrap percentile interval (level ``1 - alpha``, two-sided) of ``relative``.
    threshold, alpha, min_consistency
        The criteria used.
    n_boot, block
        Bootstrap resamples and block length in samples (0 when no bootstrap was run).
    n_restarts_used
        Restarts within ``restart_tol`` of the best loss that entered ``restart_fraction``.
    guarded
        False when only the threshold could be applied (bare weights, no EMG and no restarts).
    muscle_names
        Muscle names when known.
    boot_relative
        Relative weights of every bootstrap refit (n_boot, n_muscles, K), matched.
    """

    mask: np.ndarray
    candidates: np.ndarray
    relative: np.ndarray
    restart_fraction: np.ndarray
    p_value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    threshold: float
    alpha: float
    min_consistency: float
    n_boot: int
    block: int
    n_restarts_used: int
    guarded: bool
    muscle_names: list[str] | None = None
    boot_relative: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_negative(self) -> int:
        """Number of NegCps flagged."""
        return int(self.mask.sum())

    def drop_synergies(self, columns) -> NegativeComponents:
        """A copy without the synergy ``columns`` (e.g. latents dropped from the model)."""
        import dataclasses

        k = self.mask.shape[1]
        keep = np.setdiff1d(np.arange(k), np.asarray(columns, dtype=int))
        changes = {
            f.name: np.take(getattr(self, f.name), keep, axis=-1)
            for f in dataclasses.fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
            and getattr(self, f.name).ndim >= 2
            and getattr(self, f.name).shape[-1] == k
        }
        return dataclasses.replace(self, **changes)

    def to_frame(self):
        """One row per (muscle, synergy) with every measure, as a pandas DataFrame."""
        import pandas as pd

        n, k = self.mask.shape
        names = self.muscle_names or [f"muscle_{i}" for i in range(n)]
        rows = {
            "muscle": np.repeat(np.asarray(names, dtype=object), k),
            "synergy": np.tile(np.arange(k), n),
            "relative_weight": self.relative.ravel(),
            "candidate": self.candidates.ravel(),
            "restart_fraction": self.restart_fraction.ravel(),
            "p_value": self.p_value.ravel(),
            "ci_low": self.ci_low.ravel(),
            "ci_high": self.ci_high.ravel(),
            "negcp": self.mask.ravel(),
        }
        return pd.DataFrame(rows)


def relative_weights(weights: np.ndarray) -> np.ndarray:
    """Weights divided by the largest absolute weight of their synergy, (..., N, K)."""
    w = np.asarray(weights, dtype=float)
    top = np.max(np.abs(w), axis=-2, keepdims=True)
    return w / np.where(top > 0, top, 1.0)


def auto_block(data: np.ndarray, *, factor: float = 4.0) -> int:
    """Block length for the bootstrap: ``factor`` times the e-folding lag of the EMG.

    The lag is where the autocorrelation of the centred data, averaged over muscles, first
    drops below 1/e (computed by FFT). Clipped to [1, n_times // 10].
    """
    x = np.asarray(data, dtype=float)
    n_times = x.shape[0]
    xc = x - x.mean(axis=0)
    nfft = 1 << int(np.ceil(np.log2(2 * n_times)))
    spec = np.fft.rfft(xc, n=nfft, axis=0)
    acf = np.fft.irfft(spec * np.conj(spec), n=nfft, axis=0)[:n_times]
    var = acf[0]
    ok = var > 0
    if not ok.any():
        return 1
    mean_acf = np.mean(acf[:, ok] / var[ok], axis=1)
    below = np.flatnonzero(mean_acf < np.exp(-1.0))
    lag = int(below[0]) if below.size else n_times // 10
    return int(np.clip(round(factor * lag), 1, max(1, n_times // 10)))


def block_bootstrap_counts(
    n_times: int, n_boot: int, block: int, rng: np.random.Generator
) -> np.ndarray:
    """Circular block bootstrap: how many times each sample enters each resample.

    Returns
    -------
    ndarray (n_boot, n_times) of integer counts (each row sums to ``n_times``).
    """
    n_blocks = int(np.ceil(n_times / block))
    counts = np.zeros((n_boot, n_times))
    offsets = np.arange(block)
    for b in range(n_boot):
        starts = rng.integers(0, n_times, size=n_blocks)
        idx = ((starts[:, None] + offsets[None, :]) % n_times).ravel()[:n_times]
        counts[b] = np.bincount(idx, minlength=n_times)
    return counts


def _match_to(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Columns of ``other`` permuted to best match ``reference`` (max summed cosine)."""

    def unit(a):
        n = np.linalg.norm(a, axis=0)
        return a / np.where(n > 0, n, 1.0)

    rows, cols = linear_sum_assignment(-(unit(reference).T @ unit(other)))
    perm = np.empty(reference.shape[1], dtype=int)
    perm[rows] = cols
    return other[:, perm]


def _restart_losses(model: Any) -> np.ndarray | None:
    loss = getattr(model, "restart_loss_", None)
    if loss is not None:
        return np.asarray(loss, dtype=float)
    vaf = getattr(model, "restart_vaf_", None)
    if vaf is not None:
        return 1.0 - np.asarray(vaf, dtype=float)
    return None


def _bootstrap(
    model: Any, data: np.ndarray, counts: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Matched synergies of the model refitted on every resample, (n_boot, N, K)."""
    if hasattr(model, "fit_resamples"):
        return np.asarray(model.fit_resamples(data, counts, random_state=rng))
    out = []
    params = model.get_params()
    if "random_state" in params:
        params = dict(params)
    for row in counts:
        idx = np.repeat(np.arange(data.shape[0]), row.astype(int))
        if "random_state" in params:
            params["random_state"] = int(rng.integers(0, 2**31))
        refit = type(model)(**params).fit(data[idx])
        out.append(_match_to(model.weights_, np.asarray(refit.weights_, dtype=float)))
    return np.stack(out)


def negative_components(
    model_or_weights: Any,
    emg: EMG | np.ndarray | None = None,
    *,
    threshold: float = 0.1,
    n_boot: int = 50,
    block: int | str = "auto",
    alpha: float = 0.05,
    min_consistency: float = 0.8,
    restart_tol: float = 0.01,
    random_state: int | np.random.Generator | None = None,
) -> NegativeComponents:
    """Flag the negative components of synergies, guarded against rotations (module docstring).

    Parameters
    ----------
    model_or_weights
        A fitted model (``weights_``; ``restart_weights_`` and a way to refit are used when
        present) or a weight matrix (n_muscles, n_synergies) (then only the threshold applies).
    emg
        The EMG the model was fitted on (:class:`~nwb_synergy.EMG` or (n_times, n_muscles)),
        needed for the bootstrap; None skips it.
    threshold
        A candidate weighs less than ``-threshold`` times the largest absolute weight of its
        synergy.
    n_boot
        Block-bootstrap refits (0: none). With ``alpha = 0.05``, 20 is the fewest that can
        reach significance; p-values are per weight, uncorrected for the number of candidates
        (the test guards candidates picked by the threshold, it does not screen all weights).
    block
        Block length in samples, or "auto" (:func:`auto_block`).
    alpha
        Level of the bootstrap test and of the percentile interval.
    min_consistency
        Smallest fraction of near-best restarts in which the weight must be a candidate.
    restart_tol
        Restarts whose loss is within this relative distance of the best enter the
        consistency check (rotated solutions fit equally well, so they are included;
        restarts stuck in worse optima are not).
    random_state
        Seed or generator of the resampling and of the refits.

    Returns
    -------
    NegativeComponents

    Raises
    ------
    InputError
        Bad thresholds, an unfitted model, EMG that does not match the model.
    """
    if not (isinstance(threshold, (int, float)) and 0 <= threshold < 1):
        raise InputError(f"must be in [0, 1), got {threshold!r}", obj="threshold")
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise InputError(f"must be in (0, 1), got {alpha!r}", obj="alpha")
    if not (isinstance(min_consistency, (int, float)) and 0 <= min_consistency <= 1):
        raise InputError(f"must be in [0, 1], got {min_consistency!r}", obj="min_consistency")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise InputError(f"must be a non-negative integer, got {n_boot!r}", obj="n_boot")
    is_model = hasattr(model_or_weights, "weights_") or hasattr(model_or_weights, "get_params")
    if is_model:
        if not hasattr(model_or_weights, "weights_"):
            raise InputError(
                "the model is not fitted yet; call fit(emg) first",
                obj=type(model_or_weights).__name__,
            )
        weights = np.asarray(model_or_weights.weights_, dtype=float)
        names = getattr(model_or_weights, "muscle_names_", None)
    else:
        weights = np.asarray(model_or_weights, dtype=float)
        names = None
    if weights.ndim != 2 or weights.size == 0 or not np.all(np.isfinite(weights)):
        raise InputError(
            f"weights must be a finite 2-D array (n_muscles, n_synergies), got shape "
            f"{weights.shape}",
            obj="weights",
        )
    n_muscles, k = weights.shape
    rel = relative_weights(weights)
    cand = rel < -threshold
    activity = getattr(model_or_weights, "activity_", None) if is_model else None
    if activity is not None:  # a silenced latent's weights mean nothing
        cand &= (np.asarray(activity, dtype=float) > 0)[None, :]
    nan = np.full((n_muscles, k), np.nan)
    rng = np.random.default_rng(random_state)

    # 1. consistency across restarts
    frac = nan.copy()
    n_used = 0
    restarts = getattr(model_or_weights, "restart_weights_", None) if is_model else None
    if restarts is not None:
        restarts = np.asarray(restarts, dtype=float)
        losses = _restart_losses(model_or_weights)
        keep = np.ones(restarts.shape[0], dtype=bool)
        if losses is not None and losses.shape[0] == restarts.shape[0]:
            best = np.nanmin(losses)
            keep = losses <= best + restart_tol * abs(best)
        if keep.any():
            rrel = relative_weights(restarts[keep])
            frac = np.mean(rrel < -threshold, axis=0)
            n_used = int(keep.sum())

    # 2. block bootstrap over time
    pval, lo, hi = nan.copy(), nan.copy(), nan.copy()
    boot_rel = None
    blk = 0
    did_boot = False
    if emg is not None and n_boot > 0 and is_model:
        if isinstance(emg, EMG):
            data = emg.to_numpy().astype(float)
        else:
            data = np.asarray(emg, dtype=float)
        if data.ndim != 2 or data.shape[1] != n_muscles:
            raise InputError(
                f"EMG of shape {data.shape} does not match the model's {n_muscles} muscles",
                obj="emg",
            )
        if block == "auto":
            blk = auto_block(data)
        elif isinstance(block, (int, np.integer)) and not isinstance(block, bool) and block >= 1:
            blk = int(block)
        else:
            raise InputError(f"must be a positive integer or 'auto', got {block!r}", obj="block")
        if cand.any():
            counts = block_bootstrap_counts(data.shape[0], int(n_boot), blk, rng)
            boot_w = _bootstrap(model_or_weights, data, counts, rng)
            boot_rel = relative_weights(boot_w)
            pval = (1.0 + np.sum(boot_rel >= 0, axis=0)) / (n_boot + 1.0)
            lo = np.quantile(boot_rel, alpha / 2, axis=0)
            hi = np.quantile(boot_rel, 1 - alpha / 2, axis=0)
            pval = np.where(cand, pval, np.nan)
        did_boot = True

    guarded = did_boot or n_used > 0
    if not guarded and cand.any():
        warnings.warn(
            "negative_components: no restarts and no bootstrap (give a fitted model and its "
            "EMG); NegCps are flagged by the threshold alone, which rotations can fool",
            UserWarning,
            stacklevel=2,
        )
    mask = cand.copy()
    if n_used > 0:
        mask &= frac >= min_consistency
    if did_boot and cand.any():
        mask &= pval < alpha
    return NegativeComponents(
        mask=mask,
        candidates=cand,
        relative=rel,
        restart_fraction=frac,
        p_value=pval,
        ci_low=lo,
        ci_high=hi,
        threshold=float(threshold),
        alpha=float(alpha),
        min_consistency=float(min_consistency),
        n_boot=int(n_boot) if did_boot else 0,
        block=blk,
        n_restarts_used=n_used,
        guarded=guarded,
        muscle_names=list(names) if names is not None else None,
        boot_relative=boot_rel,
    )
