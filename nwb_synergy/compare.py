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
