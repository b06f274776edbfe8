"""Classes of synergies across sessions: which synergies of different sessions are the same one.

Each session's synergies come out in an arbitrary order, some sessions have one more or one
fewer, and the weights of the same synergy vary a little from session to session. Grouping
them into classes is what lets a study say "synergy 2 of monkey A on day 3 is the wrist-extensor
synergy".

The method (``method="matched"``, the default) is k-means on the unit-norm weight vectors with
one constraint: each session's synergies are matched *one to one* to the class means (the
Hungarian assignment of :func:`scipy.optimize.linear_sum_assignment` maximising the summed
cosine), so that two synergies of one session never share a class. The number of classes is the
most common number of synergies per session; the means start from the synergies of each such
session in turn (the start with the largest summed cosine is kept). A synergy joins a class only
with a cosine of at least ``min_cosine`` to its mean; what is left (a session's extra synergy, or
one unlike every class) is classified again the same way, so an extra synergy found in several
sessions makes a class of its own.

Why not musclesyneRgies's classification (k-means on the time-normalised activation patterns of
gait cycles): activations of different sessions are comparable only when every session is cut
into the same cycles; for trials of free behaviour or sessions of different lengths they are
not aligned in time at all, while the weights, defined over the same muscles, always are. Why
not plain k-means on the weight vectors (``method="kmeans"``, kept for comparison): it needs the
number of classes, puts two synergies of one session in one class when they are alike, and
forces every extra synergy into some class. On simulated sessions sharing 4 true synergies
(12 sessions, 12 muscles, weights perturbed per session by Gaussian noise of SD sigma per muscle,
a quarter of the sessions missing one synergy and a quarter with an extra one; 10 seeds), the
adjusted Rand index with the planted classes was 0.99 (sigma 0.05 to 0.15) and 0.95 (sigma 0.2)
for "matched", against 0.91 and 0.88 for k-means told the true number of classes; an
average-linkage clustering under the same one-per-session constraint did as well at low noise
but needed its cosine threshold tuned to the noise (0.56 at sigma 0.15 with a threshold of 0.8).
tests/test_batch.py checks the first of these numbers.

Weights are compared over the muscles every session has (matched by name), each column scaled
to unit norm over them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InputError

#: default smallest cosine of a synergy to the mean of the class it joins
DEFAULT_MIN_COSINE = 0.5
CLASS_METHODS = ("matched", "kmeans")


@dataclass
class SynergyClasses:
    """Synergies of several sessions grouped into classes.

    Attributes
    ----------
    muscle_names
        The muscles the weights were compared over (those of every session).
    members
        (session, synergy column) of each synergy, in the order of ``labels``.
    weights
        (n_muscles, n_synergies) unit-norm weights over ``muscle_names``, one column per member.
    labels
        (n_synergies,) class of each synergy; classes are numbered by size, 0 the largest.
    centroids
        (n_muscles, n_classes) unit-norm mean weights of each class.
    similarity
        (n_synergies,) cosine of each synergy with its class's centroid.
    method, min_cosine
        How the classes were made.
    """

    muscle_names: list[str]
    members: list[tuple[str, int]]
    weights: np.ndarray
    labels: np.ndarray
    centroids: np.ndarray
    similarity: np.ndarray
    method: str
    min_cosine: float | None

    @property
    def n_classes(self) -> int:
        return int(self.centroids.shape[1])

    def class_sizes(self) -> np.ndarray:
        """(n_classes,) number of synergies in each class."""
        return np.bincount(self.labels, minlength=self.n_classes)

    def of_session(self, session: str) -> list[int]:
        """The class of each synergy of ``session``, in its column order."""
        pairs = sorted(
            (k, int(c)) for (s, k), c in zip(self.members, self.labels, strict=True) if s == session
        )
        return [c for _, c in pairs]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per synergy: session, synergy (0-based column), class, cosine to the class."""
        return [
            {"session": s, "synergy": int(k), "class": int(c), "cosine_to_class": float(cos)}
            for (s, k), c, cos in zip(self.members, self.labels, self.similarity, strict=True)
        ]


def _common_weights(
    weight_sets: Mapping[str, tuple[np.ndarray, Sequence[str]]],
) -> tuple[list[str], list[tuple[str, int]], np.ndarray]:
    """Weights of every session over the muscles they all have, columns at unit norm."""
    if not weight_sets:
        raise InputError("no synergies to classify", obj="weight_sets")
    names = [list(map(str, m)) for _, m in weight_sets.values()]
    common = [m for m in names[0] if all(m in other for other in names[1:])]
    if len(common) < 2:
        raise InputError(
            f"the sessions share {len(common)} muscle(s) ({common}); at least 2 are needed to "
            "compare their synergies",
            obj="muscle_names",
        )
    members, columns = [], []
    for session, (weights, muscles) in weight_sets.items():
        weights = np.asarray(weights, dtype=float)
        muscles = list(map(str, muscles))
        if weights.ndim != 2 or weights.shape[0] != len(muscles):
            raise InputError(
                f"weights of shape {weights.shape} for {len(muscles)} muscles",
                obj=str(session),
            )
        rows = [muscles.index(m) for m in common]
        block = weights[rows]
        norms = np.linalg.norm(block, axis=0)
        for k in range(block.shape[1]):
            members.append((str(session), k))
            columns.append(block[:, k] / norms[k] if norms[k] > 0 else block[:, k])
    return common, members, np.column_stack(columns)


def _matched_round(
    weights: np.ndarray, columns: dict[str, np.ndarray], n_classes: int, min_cosine: float
) -> tuple[np.ndarray, float]:
    """One set of ``n_classes`` classes: labels (-1 = left over) and the summed cosine.

    Started from each session with exactly ``n_classes`` synergies (at most 10) in turn; the best
    start (largest summed cosine of members to their class means) is kept.
    """
    from scipy.optimize import linear_sum_assignment

    starts = [s for s, cols in columns.items() if len(cols) == n_classes][:10]
    best_labels, best_score = None, -np.inf
    for start in starts:
        centroids = weights[:, columns[start]]
        for _ in range(50):
            labels = np.full(weights.shape[1], -1)
            for cols in columns.values():
                cos = centroids.T @ weights[:, cols]
                rows, picked = linear_sum_assignment(cos, maximize=True)
                keep = cos[rows, picked] >= min_cosine
                labels[cols[picked[keep]]] = rows[keep]
            updated = centroids.copy()
            for c in range(n_classes):
                if np.any(labels == c):
                    mean = weights[:, labels == c].mean(axis=1)
                    updated[:, c] = mean / max(np.linalg.norm(mean), 1e-12)
            converged = np.allclose(updated, centroids)
            centroids = updated
            if converged:
                break
        inside = labels >= 0
        score = float(
            np.sum(np.einsum("mk,mk->k", weights[:, inside], centroids[:, labels[inside]]))
        )
        if score > best_score:
            best_labels, best_score = labels, score
    return best_labels, best_score


def _matched(weights: np.ndarray, sessions: np.ndarray, min_cosine: float) -> np.ndarray:
    """Constrained k-means: each session's synergies matched one to one to the class means.

    Rounds: the most common number of synergies per session makes the classes of the first
    round; what no class took (extra synergies, or too unlike every class) is classified again
    the same way, until every synergy has a class.
    """
    labels = np.full(weights.shape[1], -1)
    next_class = 0
    while np.any(labels < 0):
        todo = np.flatnonzero(labels < 0)
        columns = {s: todo[sessions[todo] == s] for s in dict.fromkeys(sessions[todo].tolist())}
        counts = np.bincount([len(c) for c in columns.values()])
        k = int(np.flatnonzero(counts == counts.max())[-1])  # the most common K, the larger
        found, _ = _matched_round(weights[:, todo], _local(columns, todo), k, min_cosine)
        assigned = found >= 0
        if not assigned.any():  # pragma: no cover - a start always keeps its own columns
            labels[todo] = next_class + np.arange(todo.size)
            break
        labels[todo[assigned]] = found[assigned] + next_class
        next_class += k
    return labels


def _local(columns: dict[str, np.ndarray], todo: np.ndarray) -> dict[str, np.ndarray]:
    """Column indices of ``columns`` as positions in ``todo``."""
    position = {int(c): i for i, c in enumerate(todo)}
    return {s: np.array([position[int(c)] for c in cols]) for s, cols in columns.items()}


def _kmeans(weights: np.ndarray, n_classes: int, random_state: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=n_classes, n_init=10, random_state=random_state)
    return model.fit_predict(weights.T)


def classify_synergies(
    weight_sets: Mapping[str, tuple[np.ndarray, Sequence[str]]],
    *,
    method: str = "matched",
    min_cosine: float = DEFAULT_MIN_COSINE,
    n_classes: int | None = None,
    random_state: int = 0,
) -> SynergyClasses:
    """Group the synergies of several sessions into classes (see the module docstring).

    Parameters
    ----------
    weight_sets
        Session name -> (weights (n_muscles, K), muscle names (n_muscles,)).
    method
        "matched" (each session's synergies matched one to one to the class means, the
        default) or "kmeans" (k-means on the unit-norm weight vectors, for comparison; needs
        ``n_classes``).
    min_cosine
        Matched: a synergy joins a class only with at least this cosine to the class mean.
    n_classes
        K-means: the number of classes.
    random_state
        K-means: the seed.

    Returns
    -------
    SynergyClasses

    Raises
    ------
    InputError
        No synergies, fewer than 2 muscles shared by all sessions, weights that do not match
        their muscle names, an unknown method, k-means without ``n_classes``.
    """
    if method not in CLASS_METHODS:
        raise InputError(f"unknown method {method!r}; choose from {CLASS_METHODS}", obj="method")
    common, members, weights = _common_weights(weight_sets)
    sessions = np.array([s for s, _ in members])
    if method == "matched":
        if not -1.0 <= min_cosine <= 1.0:
            raise InputError(f"a cosine in [-1, 1], got {min_cosine}", obj="min_cosine")
        raw = _matched(weights, sessions, min_cosine)
    else:
        if n_classes is None or not 1 <= n_classes <= weights.shape[1]:
            raise InputError(
                f"k-means needs n_classes between 1 and {weights.shape[1]}, got {n_classes}",
                obj="n_classes",
            )
        raw = _kmeans(weights, n_classes, random_state)
    # classes numbered by size (largest first), then by first member
    ids, first, counts = np.unique(raw, return_index=True, return_counts=True)
    order = sorted(range(len(ids)), key=lambda i: (-counts[i], first[i]))
    relabel = {int(ids[i]): new for new, i in enumerate(order)}
    labels = np.array([relabel[int(r)] for r in raw], dtype=np.int64)
    centroids = np.zeros((weights.shape[0], len(ids)))
    for c in range(len(ids)):
        mean = weights[:, labels == c].mean(axis=1)
        norm = np.linalg.norm(mean)
        centroids[:, c] = mean / norm if norm > 0 else mean
    similarity = np.einsum("mk,mk->k", weights, centroids[:, labels])
    return SynergyClasses(
        muscle_names=common,
        members=members,
        weights=weights,
        labels=labels,
        centroids=centroids,
        similarity=similarity,
        method=method,
        min_cosine=min_cosine if method == "matched" else None,
    )


__all__ = ["CLASS_METHODS", "DEFAULT_MIN_COSINE", "SynergyClasses", "classify_synergies"]
