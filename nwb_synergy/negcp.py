"""Negative components (NegCps) of synergies, with a statistical guard against rotations.

A NegCp (Guo et al., IEEE JBHI 2025) is a muscle weight of a synergy that is clearly negative:
the synergy, when active, pulls that muscle below its tonic level. The simple rule flags a
weight below ``-threshold * max|w|`` of its synergy (a *candidate*). A threshold alone is not
enough: a signed factorization (RLVM) is identified only up to the invertible maps of the
synergy space that keep the activations non-negative, and a basis rotated inside the right
subspace carries spurious negative weights as large as true ones. Such weights are not
reproducible: they change from one starting point to another and from one sample of the data
to another. So a candidate is kept only when it is also

1. **consistent across restarts**: negative beyond the threshold in at least
   ``min_consistency`` of the model's restarts that reached (nearly) the best loss
   (``restart_weights_``, columns matched to the final synergies); and
2. **significant under a block bootstrap over time, with the false discovery rate controlled**:

   * the model is refitted on circular block-bootstrap resamples of the EMG (blocks of
     ``block`` samples keep the temporal dependence) and each refit's synergies are matched to
     the original ones (:func:`nwb_synergy.compare.match_columns`); an RLVM is also restarted
     ``n_rotations`` times on the EMG itself from its fit rotated at random inside the
     synergy span (see below), and the restarts that fit as well as the fit are kept;
   * the error of each relative weight ``r`` is the root-mean-square deviation of the refits
     and of those restarts from it, ``s^2 = mean_b (r_b - r)^2 + mean_j (r_j - r)^2``: the
     bootstrap error (sampling) plus the spread of the bases that explain the data equally
     well (identification). A weight that either does not reproduce gets a large ``s``;
   * the one-sided p-value of ``r < 0`` is the normal (Wald) one, ``p = Phi(r / s)``: a
     continuous number, not limited to multiples of ``1 / (n_refits + 1)`` as a count of
     refits on the wrong side of zero is;
   * p-values are adjusted over all candidates of the fit by Benjamini-Hochberg
     (``q_value``), which controls the false discovery rate among the flagged NegCps at
     ``alpha``;
   * ``s`` is estimated from a finite number of refits, so each ``r / s`` has a Monte Carlo
     standard error (delta method, from the spread of the squared deviations). While moving
     every ``r / s`` by 2.58 of its errors towards or away from zero would change a BH
     decision, the refits (and the restarts) are doubled, up to ``max_boot`` refits;
   * a candidate is flagged only when BH rejects it even with every ``r / s`` moved 2.58
     Monte Carlo errors towards zero (a BH on larger p-values, so the FDR stays controlled);
     candidates still within the Monte Carlo error after ``max_boot`` refits are reported as
     ``undecided`` and not flagged. So a weight whose decision is a coin flip (``q`` within
     the Monte Carlo error of ``alpha``) is not flagged whatever the seed; a seed can only
     change a decision at the edge of that band.

RLVM refits are fast. Bootstrap refits are solved in batches, start from the fitted parameters
(a warm start), keep the fit's L1 weight ``l1_``, and carry the curvature of the full-data
loss at the fit (its Hessian, by central differences of the gradient) as their L-BFGS memory,
so that they behave like Newton iterations: on simulated envelopes they converge in about 10
iterations instead of 200-400, to the same weights. The rotated restarts use the same memory;
their rotation (an orthogonal map ``expm(A - A^T)``, A Gaussian with SD ``START_ROTATION`` =
0.3, as :meth:`~nwb_synergy.RLVM.fit_resamples`) probes identification: a basis that the data
and the L1 penalty pin down comes back to the same weights (default RLVM on simulated data:
within 2e-4), one they do not pin down (the reference RLVM, without L1) ends elsewhere at the
same loss, so its weights spread and are not flagged. Restarts and refits are capped at
``REFIT_MAX_ITER`` iterations. Other models are refitted with their ``fit_resamples`` when
they have it, else one new fit per resample, and get no rotated restarts.

NMF weights are non-negative by construction, so NMF never has candidates and nothing is
refitted. :meth:`NegativeComponents.matched_nmf_weights` reports, for each NegCp, the weight of
the same muscle in the matched NMF synergy (Guo et al. observed that NegCp muscles have
near-zero NMF weights).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.stats import false_discovery_control, norm

from .compare import match_columns
from .errors import InputError
from .progress import counter
from .signals import EMG

#: Monte Carlo band (in standard errors of ``r / s``) within which a decision is not yet clear
MC_BAND = 2.576
#: the bootstrap resamples of a longer envelope are drawn from every q-th sample,
#: q = ceil(n_times / BOOT_SAMPLES) (5 minutes at 100 Hz: shorter recordings are not thinned);
#: the rotated restarts always use every sample
BOOT_SAMPLES = 30_000
#: finite-difference step of the Hessian that preconditions the RLVM refits (scaled units)
HESSIAN_STEP = 1e-3
#: standard deviation of the random rotations of the RLVM's rotated restarts
START_ROTATION = 0.3
#: most L-BFGS iterations of an RLVM refit (warm-started refits that return take tens)
REFIT_MAX_ITER = 250
#: longest L-BFGS history of an RLVM refit (the Hessian's flattest directions when it is longer)
MAX_HISTORY = 512
#: memory budget (bytes) of one batch of RLVM refits' L-BFGS histories
REFIT_MEMORY = 64 * 2**20


@dataclass
class NegativeComponents:
    """Result of :func:`negative_components`.

    Attributes
    ----------
    mask
        NegCps that pass every test, with decisions clear of the Monte Carlo error of the
        refits, bool (n_muscles, n_synergies).
    candidates
        Weights below ``-threshold`` times the largest absolute weight of their synergy (in
        synergies that are active: a latent the L1 penalty silenced, ``activity_ == 0``, has
        none), bool (n_muscles, K).
    relative
        Weights divided by the largest absolute weight of their synergy (n_muscles, K).
    restart_fraction
        Fraction of the near-best restarts in which the weight is a candidate too (NaN when
        the model has no restarts).
    p_value
        One-sided p-value of ``relative < 0``, ``Phi(relative / std_error)`` (NaN where not
        tested: non-candidates, or no bootstrap).
    q_value
        Benjamini-Hochberg adjusted p-value over all candidates (NaN where not tested).
    std_error
        Root-mean-square deviation from ``relative`` of the bootstrap refits plus (RLVM) that
        of the rotated restarts, in quadrature (NaN where not tested).
    mc_error
        Monte Carlo standard error of the Wald statistic ``relative / std_error`` due to the
        finite number of refits (NaN where not tested).
    undecided
        Candidates (passing the restart check) whose BH decision is within ``2.58 mc_error``
        of changing after all refits: not flagged, but more refits might flag them, bool.
    ci_low, ci_high
        Bootstrap percentile interval (level ``1 - alpha``, two-sided) of ``relative``.
    threshold, alpha, min_consistency
        The criteria used (``alpha``: the false discovery rate).
    n_boot
        Refits asked for in the first round (0 when no bootstrap was run).
    block
        Bootstrap block length in samples (0 when no bootstrap was run).
    n_restarts_used
        Restarts within ``restart_tol`` of the best loss that entered ``restart_fraction``.
    guarded
        False when only the threshold could be applied (bare weights, no EMG and no restarts).
    method
        The tests applied, in words (for tables and provenance).
    n_refits
        Bootstrap refits run in all (``n_boot`` plus those added while decisions were
        unclear).
    muscle_names
        Muscle names when known.
    boot_relative
        Relative weights of every bootstrap refit (n_refits, n_muscles, K), matched.
    rotated_relative
        Relative weights of the RLVM's rotated restarts that fit as well as the fit
        (n, n_muscles, K), matched; None for other models.
    """

    mask: np.ndarray
    candidates: np.ndarray
    relative: np.ndarray
    restart_fraction: np.ndarray
    p_value: np.ndarray
    q_value: np.ndarray
    std_error: np.ndarray
    mc_error: np.ndarray
    undecided: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    threshold: float
    alpha: float
    min_consistency: float
    n_boot: int
    block: int
    n_restarts_used: int
    guarded: bool
    method: str = ""
    n_refits: int = 0
    muscle_names: list[str] | None = None
    boot_relative: np.ndarray | None = field(default=None, repr=False)
    rotated_relative: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_negative(self) -> int:
        """Number of NegCps flagged."""
        return int(self.mask.sum())

    @property
    def n_synergies(self) -> int:
        """Number of synergy columns K."""
        return int(self.mask.shape[1])

    def drop_synergies(self, columns: Sequence[int]) -> NegativeComponents:
        """A new result without the synergy columns ``columns`` (e.g. latents switched off).

        Every per-synergy array loses those columns. The Benjamini-Hochberg adjustment is
        redone over the candidates that remain (the family the FDR statement is about), and
        ``mask`` with it; p-values, intervals and restart fractions are unchanged.

        Raises
        ------
        InputError
            A column that is not an integer in ``[0, n_synergies)``.
        """
        k = self.n_synergies
        cols = np.asarray(list(columns))
        if cols.size and (
            not np.issubdtype(cols.dtype, np.integer) or cols.min() < 0 or cols.max() >= k
        ):
            raise InputError(
                f"synergy columns must be integers in [0, {k}), got {list(columns)!r}",
                obj="columns",
            )
        keep = np.setdiff1d(np.arange(k), cols)
        take = {
            name: np.take(getattr(self, name), keep, axis=-1)
            for name in _PER_SYNERGY
            if getattr(self, name) is not None
        }
        out = replace(self, **take)
        if self.n_refits > 0:
            out.q_value, out.mask, out.undecided = decide(
                out.p_value, out.mc_error, out.candidates, out._consistent(), out.alpha
            )
        return out

    def _consistent(self) -> np.ndarray:
        """Weights that pass the restart check (all when there were no restarts)."""
        if self.n_restarts_used == 0:
            return np.ones(self.mask.shape, dtype=bool)
        return self.restart_fraction >= self.min_consistency

    def matched_nmf_weights(self, nmf_weights: Any) -> np.ndarray:
        """NMF weight of every muscle in the NMF synergy matched to each synergy here.

        Synergies are matched one to one by :func:`nwb_synergy.compare.match_columns` (signed
        cosine; the relative weights have the same cosines as the weights). Values are relative
        to the largest weight of their NMF synergy, like ``relative``; NegCp muscles, where Guo
        et al. found NMF weights near zero, are read off at ``mask``.

        Parameters
        ----------
        nmf_weights
            NMF weights (n_muscles, K_nmf), or a fitted NMF (``weights_``).

        Returns
        -------
        ndarray (n_muscles, K)
            Column j: the matched NMF synergy of synergy j (NaN when K_nmf < K left it
            unmatched).
        """
        nmf, _, pairs = self._match_nmf(nmf_weights)
        out = np.full(self.relative.shape, np.nan)
        for j, i in pairs:
            out[:, j] = nmf[:, i]
        return out

    def records(self, nmf_weights: Any = None) -> list[dict[str, Any]]:
        """One dict per NegCp: muscle, synergy, relative weight and the tests' numbers.

        With ``nmf_weights`` (array or fitted NMF) each record also has ``nmf_synergy`` (the
        matched NMF column), ``nmf_cosine`` (the match's cosine) and ``nmf_relative_weight``
        (that muscle's weight in it, relative to the NMF synergy's largest weight).
        """
        n = self.mask.shape[0]
        names = self.muscle_names or [f"muscle_{i}" for i in range(n)]
        nmf_col: dict[int, tuple[int, float]] = {}
        nmf = None
        if nmf_weights is not None:
            nmf, cos, pairs = self._match_nmf(nmf_weights)
            nmf_col = {j: (i, c) for (j, i), c in zip(pairs, cos, strict=True)}
        out = []
        for m, j in zip(*np.nonzero(self.mask), strict=True):
            rec: dict[str, Any] = {
                "muscle": names[m],
                "muscle_index": int(m),
                "synergy": int(j),
                "relative_weight": float(self.relative[m, j]),
                "restart_fraction": float(self.restart_fraction[m, j]),
                "p_value": float(self.p_value[m, j]),
                "q_value": float(self.q_value[m, j]),
                "std_error": float(self.std_error[m, j]),
            }
            if nmf is not None:
                i, c = nmf_col.get(int(j), (None, np.nan))
                rec["nmf_synergy"] = i
                rec["nmf_cosine"] = float(c)
                rec["nmf_relative_weight"] = float(nmf[m, i]) if i is not None else np.nan
            out.append(rec)
        return out

    def _match_nmf(self, nmf_weights: Any) -> tuple[np.ndarray, np.ndarray, list]:
        """NMF relative weights, match cosines and (synergy here, NMF column) pairs."""
        w = getattr(nmf_weights, "weights_", nmf_weights)
        w = np.asarray(w, dtype=float)
        if w.ndim != 2 or w.shape[0] != self.relative.shape[0] or not np.all(np.isfinite(w)):
            raise InputError(
                f"NMF weights must be a finite (n_muscles={self.relative.shape[0]}, K) array, "
                f"got shape {w.shape}",
                obj="nmf_weights",
            )
        nmf = relative_weights(w)
        k, k_nmf = self.relative.shape[1], w.shape[1]
        if k_nmf >= k:
            order, cos = match_columns(self.relative, nmf)
            pairs = [(j, int(order[j])) for j in range(k)]
        else:
            order, cos = match_columns(nmf, self.relative)
            pairs = [(int(order[i]), i) for i in range(k_nmf)]
        return nmf, np.asarray(cos), pairs

    def to_frame(self, nmf_weights: Any = None):
        """One row per (muscle, synergy) with every measure, as a pandas DataFrame.

        With ``nmf_weights`` a column ``nmf_relative_weight`` (see
        :meth:`matched_nmf_weights`) is added.
        """
        import pandas as pd

        n, k = self.mask.shape
        names = self.muscle_names or [f"muscle_{i}" for i in range(n)]
        rows = {
            "muscle": np.repeat(np.asarray(names, dtype=object), k),
            "synergy": np.tile(np.arange(k), n),
            "relative_weight": self.relative.ravel(),
            "candidate": self.candidates.ravel(),
            "restart_fraction": self.restart_fraction.ravel(),
            "std_error": self.std_error.ravel(),
            "p_value": self.p_value.ravel(),
            "q_value": self.q_value.ravel(),
            "undecided": self.undecided.ravel(),
            "ci_low": self.ci_low.ravel(),
            "ci_high": self.ci_high.ravel(),
            "negcp": self.mask.ravel(),
        }
        if nmf_weights is not None:
            rows["nmf_relative_weight"] = self.matched_nmf_weights(nmf_weights).ravel()
        return pd.DataFrame(rows)


#: fields of NegativeComponents whose last axis is the synergy
_PER_SYNERGY = (
    "mask",
    "candidates",
    "relative",
    "restart_fraction",
    "p_value",
    "q_value",
    "std_error",
    "mc_error",
    "undecided",
    "ci_low",
    "ci_high",
    "boot_relative",
    "rotated_relative",
)


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
    x = np.asarray(data)
    n_times = x.shape[0]
    nfft = 1 << int(np.ceil(np.log2(2 * n_times)))
    total = np.zeros(n_times)
    n_used = 0
    for column in x.T:  # one muscle at a time: a few arrays of one column, not of all
        xc = np.asarray(column, dtype=float) - float(np.mean(column))
        spec = np.fft.rfft(xc, n=nfft)
        acf = np.fft.irfft(spec * np.conj(spec), n=nfft)[:n_times]
        if acf[0] > 0:
            total += acf / acf[0]
            n_used += 1
    if not n_used:
        return 1
    mean_acf = total / n_used
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


def bootstrap_test(
    relative: np.ndarray,
    boot_relative: np.ndarray,
    tested: np.ndarray,
    rotated_relative: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wald test of ``relative < 0`` with the root-mean-square error of the refits.

    Parameters
    ----------
    relative
        Fitted relative weights (n_muscles, K).
    boot_relative
        Bootstrap refits' relative weights (n_refits, n_muscles, K), matched.
    tested
        Which weights to test, bool (n_muscles, K).
    rotated_relative
        Optional relative weights of restarts on the same data (n_rotations, n_muscles, K),
        matched: their spread around ``relative`` (bases the data fit equally well) is added
        to the bootstrap's.

    Returns
    -------
    p_value
        ``Phi(relative / s)`` with ``s^2 = mean_b (boot_b - relative)^2 + mean_r (rotated_r -
        relative)^2`` (0 or 1 when ``s = 0``); NaN where not tested.
    std_error
        ``s``; NaN where not tested.
    mc_error
        Monte Carlo standard error of ``relative / s`` from the spread of the squared
        deviations (delta method: ``|z| sd(s^2) / (2 s^2)``); NaN where not tested.
    """
    parts = [np.asarray(boot_relative, dtype=float)]
    if rotated_relative is not None and len(rotated_relative):
        parts.append(np.asarray(rotated_relative, dtype=float))
    msd = np.zeros(relative.shape)
    msd_var = np.zeros(relative.shape)
    for part in parts:
        dev2 = (part - relative) ** 2
        msd = msd + dev2.mean(axis=0)
        if dev2.shape[0] > 1:
            msd_var = msd_var + dev2.var(axis=0, ddof=1) / dev2.shape[0]
        else:
            msd_var = msd_var + np.where(dev2[0] > 0, np.inf, 0.0)
    s = np.sqrt(msd)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(s > 0, relative / s, np.where(relative < 0, -np.inf, np.inf))
        mc_err = np.where(s > 0, np.abs(z) * np.sqrt(msd_var) / (2.0 * msd), 0.0)
    p = norm.cdf(z)
    nan = np.nan
    return np.where(tested, p, nan), np.where(tested, s, nan), np.where(tested, mc_err, nan)


def _bh(p_value: np.ndarray, tested: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values over the tested weights (NaN elsewhere)."""
    q = np.full(p_value.shape, np.nan)
    sel = tested & np.isfinite(p_value)
    if sel.any():
        q[sel] = false_discovery_control(p_value[sel], method="bh")
    return q


def _restart_losses(model: Any) -> np.ndarray | None:
    loss = getattr(model, "restart_loss_", None)
    if loss is not None:
        return np.asarray(loss, dtype=float)
    vaf = getattr(model, "restart_vaf_", None)
    if vaf is not None:
        return 1.0 - np.asarray(vaf, dtype=float)
    return None


# ----------------------------------------------------------------------------------------------
# refits
# ----------------------------------------------------------------------------------------------
Draw = Callable[[int], np.ndarray]  # n -> counts (n, n_times) of the next n resamples


def _is_fast_rlvm(model: Any) -> bool:
    from .factorize.rlvm import RLVM

    return isinstance(model, RLVM) and hasattr(model, "_params") and hasattr(model, "l1_")


class _RLVMRefits:
    """Fast refits of a fitted RLVM: bootstrap resamples, and rotated restarts on the data.

    The Hessian of the full-data loss at the fitted parameters is computed once (central
    differences of the batched analytic gradient, step ``HESSIAN_STEP``), its eigenvalues taken
    in absolute value and floored at ``1e-8`` of the largest, and written as L-BFGS curvature
    pairs (eigenvectors ``s_i``, ``y_i = lambda_i s_i``, largest first so that new pairs push
    out the stiffest directions first; ``gamma = 1 / lambda_max``; at most ``MAX_HISTORY``
    pairs, the flattest directions). Every refit starts with this memory and uses the model's
    L1 weight ``l1_`` and L-BFGS settings (a history long enough to hold the pairs, at most
    ``REFIT_MAX_ITER`` iterations). Batches are sized so that their L-BFGS histories stay
    within ``REFIT_MEMORY``.
    """

    def __init__(self, model: Any, data: np.ndarray, step: int = 1):
        import torch

        from .factorize import _rlvm_core as core

        self.core, self.torch, self.model = core, torch, model
        self.theta = np.asarray(model._params, dtype=float)
        n_muscles = data.shape[1]
        n_params = self.theta.shape[0]
        tied = bool(model.tied)
        self.k = (n_params - n_muscles) // ((1 if tied else 2) * n_muscles + 1)
        self.layout = core._Layout(n_muscles, self.k, tied)
        self.x = data / model.scale_  # the rotated restarts: every sample
        self.x_boot = self.x[::step]  # the resamples (and the curvature): every step-th
        self.fit_kw = dict(model._fit_kw())
        self.device = core._resolve_device(self.fit_kw["device"])
        hist = min(n_params, MAX_HISTORY)
        self.fit_kw["history_size"] = hist
        self.fit_kw["max_iter"] = min(int(self.fit_kw["max_iter"]), REFIT_MAX_ITER)
        per_refit = 8 * 3 * 2 * hist * (n_params + hist) + 8 * 2 * self.x.shape[0]
        self.chunk = int(max(1, REFIT_MEMORY // per_refit))
        with core.torch_threads(model.n_threads):
            # the curvature of the (per-sample mean) loss, from the resamples' samples
            self.xt = torch.as_tensor(self.x_boot, dtype=torch.float64, device=self.device)
            th = torch.as_tensor(self.theta, dtype=torch.float64, device=self.device)
            step = HESSIAN_STEP * torch.eye(n_params, dtype=torch.float64, device=self.device)
            _, grad = self._objective(2 * n_params)(
                torch.cat([th + step, th - step]), torch.arange(2 * n_params)
            )
            hess = (grad[:n_params] - grad[n_params:]) / (2.0 * HESSIAN_STEP)
            lam, vec = torch.linalg.eigh(0.5 * (hess + hess.T))
        lam = lam.abs()
        lam = lam.clamp_min(1e-8 * float(lam.max()) if float(lam.max()) > 0 else 1.0)
        self.gamma = 1.0 / float(lam.max())
        order = torch.argsort(lam, descending=True)[n_params - hist :]
        self.lam, vec = lam[order], vec[:, order]
        self.s_pairs = vec.T.contiguous()  # (P, P), rows oldest first
        self.y_pairs = self.s_pairs * self.lam[:, None]

    def _objective(self, n: int, counts: np.ndarray | None = None) -> Any:
        torch = self.torch
        return self.core._Objective(
            self.xt,
            self.layout,
            loss=self.model.loss,
            l2_weights=float(self.model.l2_weights),
            l2_biases=float(self.model.l2_biases),
            l1=torch.full((n,), float(self.model.l1_), dtype=torch.float64, device=self.device),
            sample_weight=None
            if counts is None
            else torch.as_tensor(counts, dtype=torch.float64, device=self.device),
        )

    def _memory(self, r: int) -> Any:
        from .factorize._lbfgs import LBFGSMemory

        torch, dev = self.torch, self.device
        hist = self.lam.shape[0]
        memory = LBFGSMemory(
            s=_repeat(self.s_pairs, r),
            y=_repeat(self.y_pairs, r),
            sy=_repeat(torch.diag(self.lam), r),
            yy=_repeat(torch.diag(self.lam * self.lam), r),
            valid=torch.ones((r, hist), dtype=torch.bool, device=dev),
            gamma=torch.full((r,), self.gamma, dtype=torch.float64, device=dev),
        )
        return _to_dtype(memory, self.fit_kw["dtype"])

    def _fit(self, starts: np.ndarray, counts: np.ndarray | None) -> Any:
        return self.core.fit_batched(
            self.x if counts is None else self.x_boot,
            starts,
            k=self.k,
            tied=self.layout.tied,
            l1=float(self.model.l1_),
            sample_weight=counts,
            memory=self._memory(starts.shape[0]),
            **self.fit_kw,
        )

    def _weights(self, params: np.ndarray) -> list[np.ndarray]:
        split, ref, active = self.core._split, self.model.weights_, _active(self.model)
        return [_matched_unit(ref, split(p, self.layout)[1], active) for p in params]

    def resamples(self, draw: Draw, n: int) -> np.ndarray:
        """Matched unit-norm synergies of ``n`` bootstrap refits (n, N, K).

        Each refit starts at the fitted parameters (a warm start) and fits the resample that
        ``draw`` gives.
        """
        out: list[np.ndarray] = []
        with self.core.torch_threads(self.model.n_threads):
            for first in range(0, n, self.chunk):
                r = min(self.chunk, n - first)
                res = self._fit(np.repeat(self.theta[None], r, axis=0), draw(r))
                out += self._weights(res.params)
        return np.stack(out)

    def rotations(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Restarts on the full data from the fit rotated at random inside the synergy span.

        Rotations ``expm(A - A^T)``, A Gaussian with SD ``START_ROTATION`` (as
        :meth:`~nwb_synergy.RLVM.fit_resamples`). Returns their matched unit-norm synergies
        (n, N, K) and final penalised losses (n,) (the units of ``restart_loss_``).
        """
        if n == 0:
            return np.zeros((0,) + self.model.weights_.shape), np.zeros(0)
        starts = self.core.rotate_starts(
            np.repeat(self.theta[None], n, axis=0),
            self.layout,
            int(rng.integers(0, 2**62)),
            size=START_ROTATION,
            keep_first=False,
        )
        weights: list[np.ndarray] = []
        losses: list[np.ndarray] = []
        with self.core.torch_threads(self.model.n_threads):
            for first in range(0, n, self.chunk):
                res = self._fit(starts[first : first + self.chunk], None)
                weights += self._weights(res.params)
                losses.append(np.asarray(res.loss, dtype=float))  # on every sample
        return np.stack(weights), np.concatenate(losses)


def _repeat(a: Any, n: int) -> Any:
    """``n`` stacked copies of a tensor (n, *a.shape)."""
    return a.unsqueeze(0).expand(n, *a.shape).clone()


def _to_dtype(memory: Any, dtype: Any) -> Any:
    from .factorize import _rlvm_core as core

    dt = core._resolve_dtype(dtype)
    for name in ("s", "y", "sy", "yy", "gamma"):
        setattr(memory, name, getattr(memory, name).to(dt))
    return memory


def _matched_unit(
    reference: np.ndarray, other: np.ndarray, active: np.ndarray | None = None
) -> np.ndarray:
    """Columns of ``other`` at unit norm, matched to ``reference`` (N, K_ref).

    Only the ``active`` columns of ``reference`` (default: all) take part in the matching (the
    weights of a latent the L1 penalty silenced are arbitrary and would steal matches); its
    other columns get ``other``'s unmatched columns, in order.
    """
    norms = np.linalg.norm(other, axis=0)
    unit = other / np.where(norms > 0, norms, 1.0)
    k_ref = reference.shape[1]
    if active is None or active.all() or not active.any():
        order, _ = match_columns(reference, unit)
        return unit[:, order[:k_ref]]
    order, _ = match_columns(reference[:, active], unit)
    n_active = int(active.sum())
    out = np.zeros((unit.shape[0], k_ref))
    out[:, active] = unit[:, order[:n_active]]
    rest = order[n_active : n_active + (k_ref - n_active)]
    out[:, np.flatnonzero(~active)[: rest.size]] = unit[:, rest]
    return out


def _active(model: Any) -> np.ndarray | None:
    """Synergies whose latent is active (``activity_ > 0``), or None when unknown."""
    activity = getattr(model, "activity_", None)
    if activity is None or np.shape(activity) != (np.shape(model.weights_)[1],):
        return None
    return np.asarray(activity, dtype=float) > 0


def _generic_refits(
    model: Any, data: np.ndarray, rng: np.random.Generator
) -> Callable[[Draw, int], np.ndarray]:
    """Refits by ``fit_resamples`` when the model has it, else one new fit per resample."""
    reference = np.asarray(model.weights_, dtype=float)
    active = _active(model)

    def refit(draw: Draw, n: int) -> np.ndarray:
        counts = draw(n)
        if hasattr(model, "fit_resamples"):
            boot = np.asarray(model.fit_resamples(data, counts, random_state=rng), dtype=float)
            return np.stack([_matched_unit(reference, w, active) for w in boot])
        params = dict(model.get_params())
        out = []
        for row in counts:
            idx = np.repeat(np.arange(data.shape[0]), row.astype(int))
            if "random_state" in params:
                params["random_state"] = int(rng.integers(0, 2**31))
            refit_model = type(model)(**params).fit(data[idx])
            refit_w = np.asarray(refit_model.weights_, dtype=float)
            out.append(_matched_unit(reference, refit_w, active))
        return np.stack(out)

    return refit


def decide(
    p_value: np.ndarray,
    mc_error: np.ndarray,
    candidates: np.ndarray,
    consistent: np.ndarray,
    alpha: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Benjamini-Hochberg decisions that hold whatever the Monte Carlo error of the refits.

    Every Wald statistic ``z = Phi^-1(p)`` is moved by ``MC_BAND`` of its Monte Carlo standard
    error towards zero (every p-value up) and away from zero (every p-value down), and BH is
    run on both sets. BH is monotone in the p-values, so a weight rejected in the first is
    rejected in the second.

    Parameters
    ----------
    p_value, mc_error
        Wald p-values and the Monte Carlo standard errors of their ``z`` (n_muscles, K), NaN
        where not tested.
    candidates
        The tested family, bool (n_muscles, K).
    consistent
        Weights that pass the restart check, bool (n_muscles, K).
    alpha
        False discovery rate.

    Returns
    -------
    q_value
        BH adjusted p-values of ``p_value`` over the candidates.
    mask
        Candidates that pass the restart check and BH with every p-value moved up.
    undecided
        Candidates passing the restart check that BH rejects with the p-values moved down
        but not with them moved up: more refits could go either way.
    """
    q_value = _bh(p_value, candidates)
    with np.errstate(invalid="ignore"):
        z = norm.ppf(p_value)
        shift = MC_BAND * np.nan_to_num(mc_error, nan=0.0, posinf=np.inf)
        upper = _bh(norm.cdf(z + shift), candidates) <= alpha
        lower = _bh(norm.cdf(z - shift), candidates) <= alpha
    keep = candidates & consistent
    return q_value, keep & upper, keep & lower & ~upper


# ----------------------------------------------------------------------------------------------
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
    max_boot: int | None = None,
    n_rotations: int = 10,
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
        Block-bootstrap refits of the first round (0: no bootstrap). p-values are continuous
        (normal approximation with the bootstrap error), so any number works; fewer refits
        mean a larger Monte Carlo error and more refits added.
    block
        Block length in samples, or "auto" (:func:`auto_block`).
    alpha
        False discovery rate over the candidates (Benjamini-Hochberg), and the level of the
        percentile interval.
    min_consistency
        Smallest fraction of near-best restarts in which the weight must be a candidate.
    restart_tol
        Restarts whose loss is within this relative distance of the best enter the
        consistency check (rotated solutions fit equally well, so they are included;
        restarts stuck in worse optima are not).
    max_boot
        Most refits in all: while a decision is within the Monte Carlo error of the refits,
        their number is doubled up to this (default ``4 * n_boot``; ``n_boot``: never add).
    n_rotations
        RLVM only, with ``emg``: restarts on the EMG from the fit rotated at random inside the
        synergy span, added to the model's restarts in the consistency check (0: none).
    random_state
        Seed or generator of the resampling, the rotations and the refits.

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
    for name, value in (("n_boot", n_boot), ("n_rotations", n_rotations)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise InputError(f"must be a non-negative integer, got {value!r}", obj=name)
    if max_boot is None:
        max_boot = 4 * int(n_boot)
    if (
        isinstance(max_boot, bool)
        or not isinstance(max_boot, (int, np.integer))
        or max_boot < n_boot
    ):
        raise InputError(
            f"must be an integer >= n_boot ({n_boot}), got {max_boot!r}", obj="max_boot"
        )
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
    data = None
    if emg is not None and is_model:
        data = emg.to_numpy().astype(float) if isinstance(emg, EMG) else np.asarray(emg, float)
        if data.ndim != 2 or data.shape[1] != n_muscles:
            raise InputError(
                f"EMG of shape {data.shape} does not match the model's {n_muscles} muscles",
                obj="emg",
            )

    # 1. consistency across the model's restarts
    frac, n_used = nan.copy(), 0
    if is_model:
        frac, n_used = _restart_consistency(model_or_weights, threshold, restart_tol, frac)
    consistent = frac >= min_consistency if n_used > 0 else np.ones_like(cand)

    # 2. block bootstrap over time (and rotated restarts), Benjamini-Hochberg
    boot = _Bootstrap(
        p_value=nan.copy(),
        std_error=nan.copy(),
        mc_error=nan.copy(),
        ci_low=nan.copy(),
        ci_high=nan.copy(),
    )
    blk, step = 0, 1
    did_boot = data is not None and n_boot > 0
    if did_boot:
        if block == "auto":
            blk = auto_block(data)
        elif isinstance(block, (int, np.integer)) and not isinstance(block, bool) and block >= 1:
            blk = int(block)
        else:
            raise InputError(f"must be a positive integer or 'auto', got {block!r}", obj="block")
        step = -(-data.shape[0] // BOOT_SAMPLES)
        if cand.any():
            # a long conditioned envelope (low-passed far below its rate) thinned keeps its
            # information about the weights: the resamples' spread is that of the full data's
            # estimate (or a little wider, the safe side), at the cost of a 5-minute session;
            # the rotated restarts probe the fit itself, so they stay on every sample
            boot = _bootstrap(
                model_or_weights,
                data,
                rel,
                cand,
                consistent,
                step=step,
                block=max(1, -(-blk // step)),
                n_boot=int(n_boot),
                max_boot=int(max_boot),
                n_rotations=int(n_rotations),
                restart_tol=float(restart_tol),
                alpha=float(alpha),
                rng=np.random.default_rng(random_state),
            )

    guarded = did_boot or n_used > 0
    if not guarded and cand.any():
        warnings.warn(
            "negative_components: no restarts and no bootstrap (give a fitted model and its "
            "EMG); NegCps are flagged by the threshold alone, which rotations can fool",
            UserWarning,
            stacklevel=2,
        )
    if did_boot:
        qval, mask, undecided = decide(boot.p_value, boot.mc_error, cand, consistent, alpha)
    else:
        qval, mask, undecided = nan.copy(), cand & consistent, np.zeros_like(cand)
    n_rot = 0 if boot.rotated_relative is None else len(boot.rotated_relative)
    method = [f"candidates: relative weight < -{threshold:g}"]
    if n_used:
        method.append(f"negative in >= {min_consistency:g} of {n_used} near-best restarts")
    if did_boot:
        thinned = f" on 1 sample in {step}" if step > 1 else ""
        method.append(
            f"circular block bootstrap ({blk}-sample blocks, {boot.n_refits} warm-started "
            f"refits{thinned}) and {n_rot} restarts from the fit rotated in the synergy span; "
            "one-sided "
            "Wald p-value Phi(w / s), s the RMS deviation of refits and restarts from w; "
            f"Benjamini-Hochberg FDR <= {alpha:g} over the {int(cand.sum())} candidates, "
            f"decisions beyond {MC_BAND:g} Monte Carlo errors ({int(undecided.sum())} undecided)"
        )
    else:
        method.append("no bootstrap")
    return NegativeComponents(
        mask=mask,
        candidates=cand,
        relative=rel,
        restart_fraction=frac,
        p_value=boot.p_value,
        q_value=qval,
        std_error=boot.std_error,
        mc_error=boot.mc_error,
        undecided=undecided,
        ci_low=boot.ci_low,
        ci_high=boot.ci_high,
        threshold=float(threshold),
        alpha=float(alpha),
        min_consistency=float(min_consistency),
        n_boot=int(n_boot) if did_boot else 0,
        block=blk,
        n_restarts_used=n_used,
        guarded=guarded,
        method="; ".join(method),
        n_refits=boot.n_refits,
        muscle_names=list(names) if names is not None else None,
        boot_relative=boot.boot_relative,
        rotated_relative=boot.rotated_relative,
    )


def _restart_consistency(
    model: Any, threshold: float, restart_tol: float, empty: np.ndarray
) -> tuple[np.ndarray, int]:
    """Fraction of near-best restarts in which each weight is a candidate, and their number."""
    restarts = getattr(model, "restart_weights_", None)
    if restarts is None:
        return empty, 0
    restarts = np.asarray(restarts, dtype=float)
    losses = _restart_losses(model)
    keep = np.ones(restarts.shape[0], dtype=bool)
    if losses is not None and losses.shape[0] == restarts.shape[0]:
        best = np.nanmin(losses)
        keep = losses <= best + restart_tol * abs(best)
    if not keep.any():
        return empty, 0
    return np.mean(relative_weights(restarts[keep]) < -threshold, axis=0), int(keep.sum())


@dataclass
class _Bootstrap:
    """What :func:`_bootstrap` measured (NaN where not tested)."""

    p_value: np.ndarray
    std_error: np.ndarray
    mc_error: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_refits: int = 0
    boot_relative: np.ndarray | None = None
    rotated_relative: np.ndarray | None = None


def _bootstrap(
    model: Any,
    data: np.ndarray,
    rel: np.ndarray,
    cand: np.ndarray,
    consistent: np.ndarray,
    *,
    step: int = 1,
    block: int,
    n_boot: int,
    max_boot: int,
    n_rotations: int,
    restart_tol: float,
    alpha: float,
    rng: np.random.Generator,
) -> _Bootstrap:
    """Refits on block-bootstrap resamples (and RLVM rotated restarts) until decisions are clear.

    Rounds of refits: ``n_boot``, then as many again while :func:`decide` leaves a candidate
    undecided, up to ``max_boot`` in all; an RLVM also gets ``n_rotations`` rotated restarts
    on the full data per ``n_boot`` refits, those within ``restart_tol`` of the fit's loss
    entering the error. The resamples are drawn from every ``step``-th sample (``block`` in
    those samples); the rotated restarts use every sample.
    """
    count_rng, refit_rng = (np.random.default_rng(rng.integers(0, 2**63)) for _ in range(2))
    rotated: list[np.ndarray] = []
    if _is_fast_rlvm(model):
        fast = _RLVMRefits(model, data, step=step)
        refit = fast.resamples
        fit_loss = float(model.loss_)

        def rotate(n: int) -> None:
            if n > 0:
                w, loss = fast.rotations(n, refit_rng)
                near = loss <= fit_loss + restart_tol * abs(fit_loss)
                rotated.append(relative_weights(w[near]))

    else:
        refit = _generic_refits(model, data[::step], refit_rng)

        def rotate(n: int) -> None:
            return None

    n_drawn = -(-data.shape[0] // step)  # len(data[::step])

    def draw(n: int) -> np.ndarray:
        return block_bootstrap_counts(n_drawn, n, block, count_rng)

    rounds: list[np.ndarray] = []
    batch = n_boot
    bar = counter(desc="NegCp bootstrap", total=max_boot)
    while True:
        rotate(int(round(n_rotations * batch / n_boot)))
        rounds.append(refit(draw, batch))
        bar.update(batch)
        boot_rel = relative_weights(np.concatenate(rounds))
        rot_rel = np.concatenate(rotated) if rotated else None
        pval, serr, mc_err = bootstrap_test(rel, boot_rel, cand, rot_rel)
        _, _, undecided = decide(pval, mc_err, cand, consistent, alpha)
        if len(boot_rel) >= max_boot or not undecided.any():
            break
        batch = min(len(boot_rel), max_boot - len(boot_rel))
    bar.close()
    return _Bootstrap(
        p_value=pval,
        std_error=serr,
        mc_error=mc_err,
        ci_low=np.where(cand, np.quantile(boot_rel, alpha / 2, axis=0), np.nan),
        ci_high=np.where(cand, np.quantile(boot_rel, 1 - alpha / 2, axis=0), np.nan),
        n_refits=len(boot_rel),
        boot_relative=boot_rel,
        rotated_relative=rot_rel,
    )
