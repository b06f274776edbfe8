"""How many synergies: four model-order rules, the whole curve kept for plotting.

Every rule fits one model per candidate K with ``make_model(k)`` (an unfitted estimator with
``fit``, ``weights_``, ``offset_`` and ``inverse_transform``, e.g. ``NMF`` or ``RLVM``), so the
same rules serve both methods. The uncentered VAF and the centered R^2 of each fit are always
recorded.

Rules (``method``)
------------------
``"linear_fit"`` (default, ``DEFAULT_SELECTION``)
    musclesyneRgies's rule (Santuz et al. 2017): the smallest K from which the curve of centered
    R^2 against K (up to the largest candidate) is a straight line, i.e. the mean squared
    residual of a least-squares line through R^2(K..K_max) is at most ``mse_threshold``
    (:data:`LINEAR_FIT_MSE`, 3e-5; musclesyneRgies uses 1e-4, see below). If no K qualifies,
    K_max - 1 (the first K with only two points left, as in their code).
    It is the default of the estimators, of this function and of the pipeline: it needs one
    fit per K and nothing else (no shuffles, no folds) and has no arbitrary VAF level: on the
    simulation of ``tests/test_order.py`` (4 synergies, 12 muscles, 20 dB) it finds K = 4
    where the usual 90 % VAF threshold stops at fewer. The threshold is 3e-5 rather than
    musclesyneRgies's 1e-4 because 1e-4 sits on the knee of the curves of long recordings, so
    that K flipped with the session: on simulated 16-muscle sessions (4 synergies with NegCps
    plus tonic activity, which NMF spends a fifth synergy on) the MSE at K = 4 measured
    1.0e-4 to 2.3e-4 and at K = 5 1.0e-5 to 1.3e-5 across 3-, 20- and 60-minute sessions and
    seeds; 1e-4 chose 5 or 4 depending on the session, 3e-5 chooses 5 every time, a factor
    of about 3 from either side. Pass ``mse_threshold=1e-4`` to reproduce musclesyneRgies.
``"vaf"``
    Smallest K whose uncentered VAF reaches ``vaf_threshold`` (0.90), optionally with every
    muscle's own VAF reaching ``muscle_vaf_threshold`` (Torres-Oviedo et al. 2006). The
    criterion most studies report, so results stay comparable with the literature; its
    weakness is the arbitrary threshold.
``"shuffle"``
    Cheung et al. (2005): compare the slope of the VAF curve with that of unstructured data
    with the same marginal distributions (each muscle's samples shuffled in time independently,
    averaged over ``n_shuffles`` surrogates). K is the smallest value after which the data's
    curve rises more slowly than ``shuffle_fraction`` (0.75) times the shuffled curve, i.e.
    ``VAF(K+1) - VAF(K) < shuffle_fraction * (VAF_sh(K+1) - VAF_sh(K))``: adding a synergy
    beyond K explains no more structure than it would in noise. (The 75 % fraction is the
    value usually quoted for this rule; we could not check it against the original text.) The
    rule undercounts when a true synergy explains less variance than one more component gains
    on shuffled data, which happens with few muscles per synergy and sparse, bursty EMG (on
    our default simulation it often answers 2 or 3 for 4 true synergies); prefer "cv" or
    "linear_fit" there.
``"cv"``
    Blocked bi-cross-validation. The time axis is cut into ``n_folds`` contiguous blocks; for
    each block the model is fitted on the other blocks, then on the held-out block the
    activations are refitted with the weights fixed (non-negative least squares) from one half
    of the muscles and used to predict the other half, and the reverse. The score is the VAF
    of the predicted muscles. Refitting activations on all muscles of the held-out block would
    reward every extra synergy (a larger cone fits any data better); predicting muscles the
    activations have not seen penalises synergies that fit noise, so the curve has a maximum.
    K is the smallest value whose mean score is within one standard error (over folds) of the
    best mean score (the "one-SE" rule of Hastie et al.). The plain held-out VAF (activations
    refitted on all muscles) is kept in ``details`` too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..signals import EMG
from . import metrics
from ._nnls import nnls_activations
from .base import as_emg_array, check_n_synergies

METHODS = ("vaf", "linear_fit", "shuffle", "cv")
#: the one default model-order rule (estimators, :func:`select_n_synergies`, pipeline)
DEFAULT_SELECTION = "linear_fit"
#: default threshold of the "linear_fit" rule on the line's mean squared residual (see above)
LINEAR_FIT_MSE = 3e-5
#: candidates are fitted on at most this many samples (5 minutes of envelope at 100 Hz)
ORDER_SAMPLES = 30_000
#: restarts of each candidate fit (at most; the model's own number for the chosen K)
SELECTION_RESTARTS = 3


@dataclass
class ModelOrder:
    """The model-order curve and the chosen number of synergies.

    Attributes
    ----------
    n_synergies
        The chosen K.
    k_values
        Candidate K, (n_k,).
    vaf, r2
        Uncentered VAF and centered R^2 of the fit on all data for each K, (n_k,).
    criterion
        The curve the rule reads, (n_k,): VAF ("vaf"), MSE of the line from K to K_max
        ("linear_fit"; NaN for the last point), data slope over shuffled slope ("shuffle"; NaN
        for the last point), mean held-out predicted-muscle VAF ("cv").
    criterion_name
        What ``criterion`` is.
    method
        The rule used.
    details
        Rule-specific extras (thresholds, shuffled VAF curve, per-fold scores, ...).
    """

    n_synergies: int
    k_values: np.ndarray
    vaf: np.ndarray
    r2: np.ndarray
    criterion: np.ndarray
    criterion_name: str
    method: str
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (stored with the results)."""

        def conv(v: Any) -> Any:
            if isinstance(v, np.ndarray):
                return v.tolist()
            if isinstance(v, (np.floating, np.integer)):
                return v.item()
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            return v

        return {
            "n_synergies": int(self.n_synergies),
            "k_values": conv(self.k_values),
            "vaf_uncentered": conv(self.vaf),
            "r2_centered": conv(self.r2),
            "criterion": conv(self.criterion),
            "criterion_name": self.criterion_name,
            "method": self.method,
            "details": conv(self.details),
        }


def _fit_scores(model: Any, data: np.ndarray) -> tuple[float, float, np.ndarray]:
    recon = model.inverse_transform(model.activations_)
    err = np.sum((data - recon) ** 2, axis=0)
    tot = np.sum(data**2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_muscle = np.where(tot > 0, 1.0 - err / tot, np.nan)
    return metrics.vaf(data, recon), metrics.r2(data, recon), per_muscle


def _nnls_signed(x: np.ndarray, w: np.ndarray, n_iter: int = 300) -> np.ndarray:
    """Non-negative activations (n_times, K) for rows of x on weights w of any sign."""
    return nnls_activations(x, w, max_iter=n_iter, tol=1e-8)


def _line_mse(k: np.ndarray, y: np.ndarray) -> float:
    coef = np.polyfit(k, y, 1)
    return float(np.mean((np.polyval(coef, k) - y) ** 2))


def select_n_synergies(
    emg: EMG | np.ndarray,
    make_model: Callable[[int], Any],
    *,
    k_range: Sequence[int] | None = None,
    method: str = DEFAULT_SELECTION,
    vaf_threshold: float = 0.90,
    muscle_vaf_threshold: float | None = None,
    mse_threshold: float = LINEAR_FIT_MSE,
    n_shuffles: int = 5,
    shuffle_fraction: float = 0.75,
    n_folds: int = 4,
    random_state: int | np.random.Generator | None = None,
    nonnegative: bool | None = None,
    max_samples: int | None = ORDER_SAMPLES,
) -> ModelOrder:
    """Choose the number of synergies by one of four rules (see the module docstring).

    Parameters
    ----------
    emg
        :class:`~nwb_synergy.EMG` or array (n_times, n_muscles).
    make_model
        ``make_model(k)`` returns an unfitted estimator for K = k synergies.
    k_range
        Candidate K (default 1 .. n_muscles - round(n_muscles / 4), musclesyneRgies's range).
    method
        "linear_fit" (default), "vaf", "shuffle" or "cv".
    vaf_threshold, muscle_vaf_threshold
        Thresholds of the "vaf" rule (total VAF; optional per-muscle VAF).
    mse_threshold
        Threshold of the "linear_fit" rule (:data:`LINEAR_FIT_MSE`; musclesyneRgies: 1e-4).
    n_shuffles, shuffle_fraction
        Surrogates and slope fraction of the "shuffle" rule.
    n_folds
        Time blocks of the "cv" rule.
    random_state
        Seed of the shuffles and of the muscle split of "cv".
    nonnegative
        Whether the data must be non-negative (default: as the model of K=1 says, by its
        scikit-learn ``positive_only`` tag, else its ``nonnegative`` attribute).
    max_samples
        The candidates are fitted on at most this many samples, every ``step``-th sample of a
        longer recording (``details["sample_step"]``); None: all. Conditioned envelopes are
        low-passed far below their sampling rate, so thinning them leaves the curve of fit
        against K unchanged (``tests/test_order.py``) while the cost of a 60-minute session
        stays that of a 5-minute one (:data:`ORDER_SAMPLES`).

    Returns
    -------
    ModelOrder
        Chosen K and the whole curve.
    """
    if method not in METHODS:
        raise InputError(f"must be one of {METHODS}, got {method!r}", obj="method")
    probe = make_model(1)
    if nonnegative is None:
        if hasattr(probe, "__sklearn_tags__"):
            nonnegative = bool(probe.__sklearn_tags__().input_tags.positive_only)
        else:
            nonnegative = bool(getattr(probe, "nonnegative", True))
    data, _ = as_emg_array(emg, nonnegative=nonnegative)
    step = 1
    if max_samples is not None and data.shape[0] > int(max_samples):
        step = -(-data.shape[0] // int(max_samples))
        data = data[::step]
    n_times, n_muscles = data.shape
    if k_range is None:
        k_max = max(2, n_muscles - int(round(n_muscles / 4)))
        k_values = np.arange(1, min(k_max, n_muscles) + 1)
    else:
        k_values = np.array(
            sorted({check_n_synergies(k, n_muscles=n_muscles, auto=False) for k in k_range})
        )
    if len(k_values) < 2:
        raise InputError("at least two candidate numbers of synergies are needed", obj="k_range")
    rng = np.random.default_rng(random_state)

    vafs, r2s, muscle_vafs = [], [], []
    for k in k_values:
        model = make_model(int(k)).fit(data)
        v, r, per = _fit_scores(model, data)
        vafs.append(v)
        r2s.append(r)
        muscle_vafs.append(per)
    vaf = np.array(vafs)
    r2 = np.array(r2s)
    details: dict[str, Any] = {"muscle_vaf": np.array(muscle_vafs), "sample_step": step}

    if method == "vaf":
        ok = vaf >= vaf_threshold
        if muscle_vaf_threshold is not None:
            ok &= np.all(details["muscle_vaf"] >= muscle_vaf_threshold, axis=1)
        reached = bool(ok.any())
        chosen = int(k_values[np.argmax(ok)]) if reached else int(k_values[-1])
        details.update(
            vaf_threshold=vaf_threshold,
            muscle_vaf_threshold=muscle_vaf_threshold,
            threshold_reached=reached,
        )
        criterion, name = vaf.copy(), "vaf_uncentered"

    elif method == "linear_fit":
        mse = np.full(len(k_values), np.nan)
        for i in range(len(k_values) - 1):
            mse[i] = _line_mse(k_values[i:].astype(float), r2[i:])
        below = np.flatnonzero(mse[:-1] <= mse_threshold)
        chosen = int(k_values[below[0]]) if below.size else int(k_values[-2])
        details.update(mse_threshold=mse_threshold, threshold_reached=bool(below.size))
        criterion, name = mse, "linear_fit_mse"

    elif method == "shuffle":
        sh = np.empty((n_shuffles, len(k_values)))
        for s in range(n_shuffles):
            shuffled = rng.permuted(data, axis=0)
            for i, k in enumerate(k_values):
                model = make_model(int(k)).fit(shuffled)
                sh[s, i] = metrics.vaf(shuffled, model.inverse_transform(model.activations_))
        sh_mean = sh.mean(axis=0)
        slope = np.diff(vaf) / np.diff(k_values)
        slope_sh = np.diff(sh_mean) / np.diff(k_values)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.append(slope / slope_sh, np.nan)
        below = np.flatnonzero(slope < shuffle_fraction * slope_sh)
        chosen = int(k_values[below[0]]) if below.size else int(k_values[-1])
        details.update(
            shuffled_vaf=sh,
            shuffled_vaf_mean=sh_mean,
            shuffle_fraction=shuffle_fraction,
            threshold_reached=bool(below.size),
        )
        criterion, name = ratio, "slope_over_shuffled_slope"

    else:  # cv
        if n_folds < 2:
            raise InputError(f"must be at least 2, got {n_folds}", obj="n_folds")
        if n_times < 10 * n_folds:
            raise InputError(
                f"too few samples ({n_times}) for {n_folds}-fold cross-validation", obj="emg"
            )
        if n_muscles < 2:
            raise InputError("cross-validation needs at least two muscles", obj="emg")
        edges = np.linspace(0, n_times, n_folds + 1).astype(int)
        perm = rng.permutation(n_muscles)
        halves = [np.sort(perm[: n_muscles // 2]), np.sort(perm[n_muscles // 2 :])]
        bcv = np.empty((n_folds, len(k_values)))
        held = np.empty((n_folds, len(k_values)))
        for f in range(n_folds):
            test = slice(edges[f], edges[f + 1])
            train = np.concatenate([data[: edges[f]], data[edges[f + 1] :]])
            x_test = data[test]
            for i, k in enumerate(k_values):
                model = make_model(int(k)).fit(train)
                w = model.weights_
                off = np.asarray(getattr(model, "offset_", np.zeros(n_muscles)), dtype=float)
                xc = x_test - off
                h_all = _nnls_signed(xc, w)
                held[f, i] = metrics.vaf(x_test, h_all @ w.T + off)
                pred = np.empty_like(x_test)
                for a, b in ((halves[0], halves[1]), (halves[1], halves[0])):
                    h = _nnls_signed(xc[:, a], w[a])
                    pred[:, b] = h @ w[b].T + off[b]
                bcv[f, i] = metrics.vaf(x_test, pred)
        mean = bcv.mean(axis=0)
        se = bcv.std(axis=0, ddof=1) / np.sqrt(n_folds)
        best = int(np.argmax(mean))
        within = np.flatnonzero(mean >= mean[best] - se[best])
        chosen = int(k_values[within[0]])
        details.update(
            fold_scores=bcv,
            score_se=se,
            heldout_vaf=held,
            heldout_vaf_mean=held.mean(axis=0),
            fold_edges=edges,
            muscle_halves=[h.tolist() for h in halves],
            best_k=int(k_values[best]),
        )
        criterion, name = mean, "bicv_predicted_vaf"

    return ModelOrder(
        n_synergies=chosen,
        k_values=k_values,
        vaf=vaf,
        r2=r2,
        criterion=criterion,
        criterion_name=name,
        method=method,
        details=details,
    )


def resolve_n_synergies(model: Any, data: np.ndarray) -> tuple[int, ModelOrder | None]:
    """The number of synergies an estimator fits on ``data``, and the model-order curve.

    ``model.n_synergies`` checked against the number of muscles, or, when it is ``"auto"``,
    the number chosen by the rule ``model.selection`` (with ``model.selection_params``; the
    seed defaults to ``model.random_state``), each candidate fitted by a copy of ``model``
    with at most :data:`SELECTION_RESTARTS` restarts.

    Parameters
    ----------
    model
        An estimator with ``n_synergies``, ``selection``, ``selection_params``,
        ``random_state`` and ``_clone(**changes)`` (NMF, RLVM).
    data
        Checked data (n_times, n_muscles).

    Returns
    -------
    k : int
    selection : ModelOrder or None
        The whole curve when ``"auto"``, else None.
    """
    k = check_n_synergies(model.n_synergies, n_muscles=data.shape[1])
    if k != "auto":
        return k, None
    params = dict(model.selection_params or {})
    params.setdefault("random_state", model.random_state)
    # the curve needs each candidate's fit, not its best of many restarts: on a 20-minute
    # session 3 restarts gave NMF's R^2 curve to 5 decimals, in half the time of 10
    fewer = {}
    if isinstance(getattr(model, "n_restarts", None), int):
        fewer = {"n_restarts": min(int(model.n_restarts), SELECTION_RESTARTS)}
    selection = select_n_synergies(
        data, lambda kk: model._clone(n_synergies=kk, **fewer), method=model.selection, **params
    )
    return check_n_synergies(selection.n_synergies, n_muscles=data.shape[1]), selection
