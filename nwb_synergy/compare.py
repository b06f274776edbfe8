"""How alike two sets of synergies are: matched cosines, Pearson r and principal angles.

Synergies come out of a factorization in arbitrary order, so two sets are first matched one to
one, by the assignment that maximises the summed cosine similarity
(:func:`scipy.optimize.linear_sum_assignment`, the Hungarian algorithm). The signed cosine is
used by default: activations are non-negative, so a synergy and its negative are different
synergies and must not be matched (``match="abs_cosine"`` matches on ``|cos|`` instead, for
factorizations whose sign is arbitrary such as PCA or ICA).

Two measures of the whole set complement the per-pair ones:

* principal angles between the spans of the two sets (:func:`scipy.linalg.subspace_angles`,
  largest first), which do not depend on how each set is rotated inside its span;
* subspace similarity, the mean of ``cos^2`` of the principal angles (1 for the same span,
  0 for orthogonal spans).

Units
-----
Cosines and principal angles depend on the scale of each muscle, so two sets must be compared
in the same units. Conditioning (:func:`~nwb_synergy.condition_emg`) divides each muscle's
envelope by a per-muscle scale (its maximum by default) before the factorization, so fitted
weights are in those *conditioned* units while, e.g., a simulator's truth is in the source's
units. :func:`conditioning_scale` gives the per-muscle scale a conditioning applied (from the
envelope, the results or the provenance stored in the NWB file), and
:func:`weights_in_conditioned_units` / :func:`weights_in_source_units` convert weights between
the two. The package scores against a truth in conditioned units (the truth divided by the
scale), i.e. in the units the factorization saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.linalg import subspace_angles
from scipy.optimize import linear_sum_assignment

from .errors import InputError


@dataclass
class SynergyComparison:
    """Result of :func:`compare_synergies`.

    Attributes
    ----------
    pairs
        Matched column indices, shape (n_pairs, 2): column ``pairs[i, 0]`` of ``a`` matches
        column ``pairs[i, 1]`` of ``b``; n_pairs = min(K_a, K_b), ordered by the columns of a.
    cosine
        Cosine similarity of each matched pair (n_pairs,).
    pearson
        Pearson correlation over muscles of each matched pair (n_pairs,).
    mean_cosine, mean_pearson
        Their means.
    principal_angles
        Principal angles between the spans of ``a`` and ``b`` in radians, largest first,
        (min(K_a, K_b),).
    subspace_similarity
        ``mean(cos(principal_angles)**2)``.
    cosine_matrix
        All cosines, (K_a, K_b).
    match
        The matching criterion ("cosine" or "abs_cosine").
    """

    pairs: np.ndarray
    cosine: np.ndarray
    pearson: np.ndarray
    mean_cosine: float
    mean_pearson: float
    principal_angles: np.ndarray
    subspace_similarity: float
    cosine_matrix: np.ndarray
    match: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "pairs": self.pairs.tolist(),
            "cosine": self.cosine.tolist(),
            "pearson": self.pearson.tolist(),
            "mean_cosine": float(self.mean_cosine),
            "mean_pearson": float(self.mean_pearson),
            "principal_angles_rad": self.principal_angles.tolist(),
            "subspace_similarity": float(self.subspace_similarity),
            "match": self.match,
        }


def _as_weights(x: Any, name: str) -> np.ndarray:
    """Weight matrix (n_muscles, K) from an array or a fitted model (``weights_``)."""
    if hasattr(x, "weights_"):
        x = x.weights_
    elif hasattr(x, "weights") and not isinstance(x, np.ndarray):
        x = x.weights
    w = np.asarray(x, dtype=float)
    if w.ndim == 1:
        w = w[:, None]
    if w.ndim != 2 or w.shape[0] < 1 or w.shape[1] < 1:
        raise InputError(
            f"synergy weights must be 2-D (n_muscles, n_synergies), got shape {w.shape}", obj=name
        )
    if not np.all(np.isfinite(w)):
        raise InputError("synergy weights contain NaN or infinite values", obj=name)
    norms = np.linalg.norm(w, axis=0)
    if np.any(norms == 0):
        raise InputError(
            f"synergy column(s) {np.flatnonzero(norms == 0).tolist()} are all zero", obj=name
        )
    return w


def conditioning_scale(source: Any) -> np.ndarray:
    """The per-muscle factor by which conditioning divided the envelopes, (n_muscles,).

    Read from the ``"normalize"`` records of a processing history (the product when there are
    several; ones when the envelopes were not normalised).

    Parameters
    ----------
    source
        An :class:`~nwb_synergy.EMG` (its ``history``), anything with an ``envelope`` EMG
        (:class:`~nwb_synergy.results.SessionResults`, ``SynergyResults``), a history (list of
        step records), or a synergy table's provenance (dict, or its JSON text, with the history
        under ``"conditioning"``, as :func:`~nwb_synergy.io.write.write_synergies` stores it).

    Returns
    -------
    np.ndarray
        (n_muscles,) positive scale; weights fitted on the envelopes times this scale are in
        the units of the envelopes before normalisation.

    Raises
    ------
    InputError
        No history found, or a scale that is not positive and finite.
    """
    import json

    obj = source
    if isinstance(obj, (str, bytes)):
        obj = json.loads(obj)
    if getattr(obj, "envelope", None) is not None:
        obj = obj.envelope
    if hasattr(obj, "history") and hasattr(obj, "n_muscles"):
        history, n_muscles = obj.history, obj.n_muscles
    elif isinstance(obj, dict) and "conditioning" in obj:
        history, n_muscles = obj["conditioning"], None
    elif isinstance(obj, (list, tuple)):
        history, n_muscles = obj, None
    else:
        raise InputError(
            "needs an EMG, results with an envelope, a history or a provenance dict with "
            f"'conditioning'; got {type(source).__name__}",
            obj="source",
        )
    scales = [
        np.asarray(step["scale"], dtype=float)
        for step in history
        if isinstance(step, dict) and step.get("step") == "normalize"
    ]
    if not scales:
        if n_muscles is None:
            raise InputError(
                "the history has no 'normalize' step and does not say how many muscles",
                obj="source",
            )
        return np.ones(n_muscles)
    scale = np.prod(np.stack(scales), axis=0)
    if not np.all(np.isfinite(scale) & (scale > 0)):
        raise InputError("the conditioning scale is not positive and finite", obj="source")
    return scale


def _scaled(weights: Any, scale: Any, power: int) -> np.ndarray:
    w = np.asarray(getattr(weights, "weights_", weights), dtype=float)
    s = np.asarray(scale, dtype=float).reshape(-1)
    if w.ndim != 2 or w.shape[0] != s.size:
        raise InputError(
            f"weights of shape {w.shape} and a scale of {s.size} muscles do not match",
            obj="scale",
        )
    return w * (s[:, None] ** power)


def weights_in_source_units(weights: Any, scale: Any) -> np.ndarray:
    """Weights fitted on conditioned envelopes, expressed in the source's units.

    Each muscle's row multiplied by its conditioning scale (:func:`conditioning_scale`):
    ``weights_in_source_units(W, s) @ h`` is the envelope before normalisation.

    Parameters
    ----------
    weights
        (n_muscles, K) array or a fitted model (``weights_``).
    scale
        (n_muscles,) conditioning scale.

    Returns
    -------
    np.ndarray
        (n_muscles, K); columns are not renormalised.
    """
    return _scaled(weights, scale, 1)


def weights_in_conditioned_units(weights: Any, scale: Any) -> np.ndarray:
    """Weights in the source's units (e.g. a simulated truth) as the factorization sees them.

    Each muscle's row divided by its conditioning scale (:func:`conditioning_scale`): the
    inverse of :func:`weights_in_source_units`. Compare fitted weights with a truth converted
    this way.

    Parameters
    ----------
    weights
        (n_muscles, K) array or a fitted model (``weights_``).
    scale
        (n_muscles,) conditioning scale.

    Returns
    -------
    np.ndarray
        (n_muscles, K); columns are not renormalised.
    """
    return _scaled(weights, scale, -1)


def match_columns(reference: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one-to-one matching of synergy columns used everywhere in the package.

    The Hungarian assignment (:func:`scipy.optimize.linear_sum_assignment`) that maximises the
    summed signed cosine of matched pairs. All-zero columns have cosine 0 with everything.

    Parameters
    ----------
    reference, other
        Weights (n_muscles, K1) and (n_muscles, K2).

    Returns
    -------
    order
        (K2,) column indices of ``other``: first the column matched to each reference column in
        order (min(K1, K2) of them), then ``other``'s unmatched columns in increasing order.
        ``other[:, order[:K1]]`` lines ``other`` up with ``reference`` when K2 >= K1.
    cosine
        (min(K1, K2),) cosine of each matched pair, in the order of ``order``.
    """
    a = np.asarray(reference, dtype=float)
    b = np.asarray(other, dtype=float)
    na = np.linalg.norm(a, axis=0)
    nb = np.linalg.norm(b, axis=0)
    cos = (a / np.where(na > 0, na, 1.0)).T @ (b / np.where(nb > 0, nb, 1.0))
    rows, cols = linear_sum_assignment(cos, maximize=True)
    by_row = np.argsort(rows)
    matched = cols[by_row]
    rest = np.setdiff1d(np.arange(b.shape[1]), matched)
    return np.concatenate([matched, rest]).astype(int), cos[rows[by_row], matched]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = np.sqrt(np.sum(a * a) * np.sum(b * b))
    return float(np.sum(a * b) / den) if den > 0 else float("nan")


def compare_synergies(a: Any, b: Any, *, match: str = "cosine") -> SynergyComparison:
    """Compare two synergy sets over the same muscles.

    Parameters
    ----------
    a, b
        Weight matrices (n_muscles, K_a) and (n_muscles, K_b), or fitted models with a
        ``weights_`` attribute (or objects with ``weights``, such as simulated truth).
    match
        "cosine" (default, signed) or "abs_cosine": what the one-to-one matching maximises.

    Returns
    -------
    SynergyComparison
        Matched pairs with their cosine and Pearson r, principal angles and subspace
        similarity.

    Raises
    ------
    InputError
        Different numbers of muscles, NaN, all-zero synergies, unknown ``match``.
    """
    if match not in ("cosine", "abs_cosine"):
        raise InputError(f"must be 'cosine' or 'abs_cosine', got {match!r}", obj="match")
    wa = _as_weights(a, "a")
    wb = _as_weights(b, "b")
    if wa.shape[0] != wb.shape[0]:
        raise InputError(
            f"the two synergy sets have different numbers of muscles: {wa.shape[0]} and "
            f"{wb.shape[0]}",
            obj="a, b",
        )
    ua = wa / np.linalg.norm(wa, axis=0)
    ub = wb / np.linalg.norm(wb, axis=0)
    cos = ua.T @ ub
    score = np.abs(cos) if match == "abs_cosine" else cos
    rows, cols = linear_sum_assignment(score, maximize=True)
    order = np.argsort(rows)
    rows, cols = rows[order], cols[order]
    pair_cos = cos[rows, cols]
    if match == "abs_cosine":  # report each pair with the sign that matched
        sign = np.where(pair_cos < 0, -1.0, 1.0)
    else:
        sign = np.ones(len(rows))
    pair_r = np.array(
        [_pearson(wa[:, i], s * wb[:, j]) for i, j, s in zip(rows, cols, sign, strict=True)]
    )
    angles = subspace_angles(wa, wb)
    return SynergyComparison(
        pairs=np.stack([rows, cols], axis=1),
        cosine=pair_cos * sign,
        pearson=pair_r,
        mean_cosine=float(np.mean(pair_cos * sign)),
        mean_pearson=float(np.nanmean(pair_r)) if np.any(np.isfinite(pair_r)) else float("nan"),
        principal_angles=angles,
        subspace_similarity=float(np.mean(np.cos(angles) ** 2)),
        cosine_matrix=cos,
        match=match,
    )
