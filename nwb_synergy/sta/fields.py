"""Muscle fields and how they relate to muscle synergies.

* :func:`muscle_field`: a neuron's signed effect on each muscle: its MPI where the effect is
  significant (PSF positive, PSpS negative), 0 elsewhere, scaled so that max |.| = 1.
* :func:`field_synergy_similarity`: cosine between a field and each synergy, the best match,
  and a Monte Carlo p-value for the best cosine from shuffled muscle labels.
* :func:`negcp_psps_correspondence`: do the muscles that inhibitory neurons suppress coincide
  with the negative components (NegCps) of the synergy each neuron matches best, more often
  than chance? (Guo et al., IEEE JBHI 2025.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = [
    "muscle_field",
    "field_synergy_similarity",
    "negcp_psps_correspondence",
    "FieldSimilarity",
    "Correspondence",
]


def _rng(random_state: Any) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    return np.random.default_rng(random_state)


def muscle_field(effects: Any) -> np.ndarray | dict[Any, np.ndarray]:
    """Signed muscle field from a post-spike-effect table.

    Parameters
    ----------
    effects
        The DataFrame of :func:`~nwb_synergy.sta.post_spike_effects` (columns ``effect`` and
        ``mpi``), or a mapping unit -> DataFrame (giving a dict of fields).

    Returns
    -------
    ndarray (n_muscles,)
        ``|MPI|`` with the sign of the effect (PSF +, PSpS -) where an effect was found, 0
        elsewhere, divided by its largest absolute value; all zeros when no effect was found.
        Muscles in the table's row order.
    """
    if isinstance(effects, Mapping):
        return {unit: muscle_field(table) for unit, table in effects.items()}
    if not isinstance(effects, pd.DataFrame) or not {"effect", "mpi"} <= set(effects.columns):
        raise InputError(
            "effects must be a DataFrame with columns 'effect' and 'mpi' (from post_spike_effects)",
            obj="effects",
        )
    kind = effects["effect"].to_numpy(dtype=object)
    mpi = np.abs(effects["mpi"].to_numpy(dtype=float))
    sign = np.where(kind == "PSF", 1.0, np.where(kind == "PSpS", -1.0, 0.0))
    values = np.where(np.isfinite(mpi), sign * mpi, 0.0)
    top = np.abs(values).max(initial=0.0)
    return values / top if top > 0 else np.zeros(len(values))


def _check_weights(weights: Any, n_muscles: int | None, obj: str = "weights") -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    if w.ndim == 1:
        w = w[:, None]
    if w.ndim != 2 or w.shape[1] == 0:
        raise InputError(f"weights must be (n_muscles, n_synergies), got {w.shape}", obj=obj)
    if n_muscles is not None and w.shape[0] != n_muscles:
        raise InputError(
            f"weights have {w.shape[0]} muscles but the field has {n_muscles}", obj=obj
        )
    if not np.all(np.isfinite(w)):
        raise InputError("weights contain NaN or infinite values", obj=obj)
    norms = np.linalg.norm(w, axis=0)
    if np.any(norms == 0):
        raise InputError("a synergy has all-zero weights", obj=obj)
    return w / norms


@dataclass
class FieldSimilarity:
    """Result of :func:`field_synergy_similarity`.

    Attributes
    ----------
    cosine
        Signed cosine between the field and each synergy (n_synergies,).
    best
        Index of the best-matching synergy (largest cosine), or None for a zero field.
    best_cosine
        Its cosine.
    p_value
        Monte Carlo p-value of ``best_cosine``: ``(1 + #{null >= best_cosine}) /
        (1 + n_permutations)``, the null being the best cosine over synergies after shuffling
        the field's muscle labels; 1 for a zero field.
    null
        The permutation distribution (n_permutations,).
    """

    cosine: np.ndarray
    best: int | None
    best_cosine: float
    p_value: float
    null: np.ndarray = field(repr=False)


def field_synergy_similarity(
    field: Any,
    weights: Any,
    n_permutations: int = 10000,
    random_state: int | np.random.Generator | None = None,
) -> FieldSimilarity:
    """Cosine similarity of a muscle field with each synergy, with a shuffled-label null.

    Parameters
    ----------
    field
        Muscle field (n_muscles,), e.g. from :func:`muscle_field`.
    weights
        Synergy weights (n_muscles, n_synergies), signs allowed (RLVM, NegCps).
    n_permutations
        Number of shuffles of the field's muscle labels (vectorised, in batches).
    random_state
        Seed or Generator.

    Returns
    -------
    FieldSimilarity
    """
    f = np.asarray(field, dtype=float).ravel()
    if not np.all(np.isfinite(f)):
        raise InputError("field contains NaN or infinite values", obj="field")
    w = _check_weights(weights, len(f))
    n_permutations = int(n_permutations)
    if n_permutations < 1:
        raise InputError(f"n_permutations must be >= 1, got {n_permutations}", obj="n_permutations")
    norm = np.linalg.norm(f)
    if norm == 0:
        return FieldSimilarity(np.zeros(w.shape[1]), None, 0.0, 1.0, np.zeros(0))
    f = f / norm
    cosine = f @ w
    best = int(np.argmax(cosine))
    rng = _rng(random_state)
    null = np.empty(n_permutations)
    batch = max(1, 2**20 // len(f))
    for b0 in range(0, n_permutations, batch):
        b1 = min(b0 + batch, n_permutations)
        shuffled = rng.permuted(np.broadcast_to(f, (b1 - b0, len(f))), axis=1)
        null[b0:b1] = (shuffled @ w).max(axis=1)
    p = (1 + np.count_nonzero(null >= cosine[best] - 1e-12)) / (1 + n_permutations)
    return FieldSimilarity(cosine, best, float(cosine[best]), float(p), null)


@dataclass
class Correspondence:
    """Result of :func:`negcp_psps_correspondence`.

    Attributes
    ----------
    statistic
        ``sum_u (C_u - E_u)``: coincidences in excess of chance, summed over inhibitory units.
    p_value
        Permutation p-value ``(1 + #{null >= statistic}) / (1 + n_permutations)``.
    coincidences
        ``sum_u C_u``: suppressed muscles that are NegCps of the unit's best synergy.
    expected
        ``sum_u E_u``: the same expected by chance given the numbers of suppressed muscles and
        NegCps (``S_u Q_k / n_muscles``).
    n_suppressed
        Total suppressed (unit, muscle) pairs over the inhibitory units.
    units
        The inhibitory units tested.
    best_synergy
        ``{unit: index of its best-matching synergy}``.
    null
        Permutation distribution of the statistic (n_permutations,).
    """

    statistic: float
    p_value: float
    coincidences: int
    expected: float
    n_suppressed: int
    units: list
    best_synergy: dict
    null: np.ndarray = field(repr=False)


def _as_fields(fields: Any) -> tuple[list, np.ndarray]:
    if isinstance(fields, Mapping):
        units = list(fields)
        rows = []
        for u in units:
            v = fields[u]
            rows.append(muscle_field(v) if isinstance(v, pd.DataFrame) else np.ravel(v))
        lengths = {len(r) for r in rows}
        if len(lengths) > 1:
            raise InputError(f"fields have different lengths {sorted(lengths)}", obj="fields")
        mat = np.asarray(rows, dtype=float).reshape(len(units), -1)
    else:
        mat = np.atleast_2d(np.asarray(fields, dtype=float))
        units = list(range(mat.shape[0]))
    if not np.all(np.isfinite(mat)):
        raise InputError("fields contain NaN or infinite values", obj="fields")
    return units, mat


def _best_and_hits(
    fields: np.ndarray, w_unit: np.ndarray, negcp: np.ndarray, q_frac: np.ndarray
) -> np.ndarray:
    """Excess coincidences per field row: C - E for its best-matching synergy.

    ``fields`` (..., n_muscles); returns (...,).
    """
    cos = fields @ w_unit  # (..., K); norms are constant per row, so argmax is the cosine's
    best = np.argmax(cos, axis=-1)
    supp = (fields < 0).astype(float)
    hits = np.einsum("...m,...m->...", supp, np.take(negcp.T, best, axis=0).astype(float))
    expected = supp.sum(axis=-1) * q_frac[best]
    return hits - expected


def negcp_psps_correspondence(
    fields: Any,
    negcp_mask: Any,
    weights: Any,
    *,
    units: Sequence | None = None,
    n_permutations: int = 10000,
    random_state: int | np.random.Generator | None = None,
) -> Correspondence:
    """Test whether inhibitory neurons suppress the NegCp muscles of their best synergy.

    For each inhibitory unit u (by default: every unit whose field has a suppressed muscle),
    let ``k_u`` be the synergy whose weights have the largest signed cosine with the unit's
    field, ``S_u`` the set of muscles it suppresses (field < 0) and ``N_k`` the NegCp muscles of
    synergy k. The statistic is the number of coincidences in excess of chance::

        T = sum_u ( |S_u & N_{k_u}| - |S_u| |N_{k_u}| / n_muscles )

    The null distribution comes from permutations: for each unit independently, the values of
    the field on the muscles it does not facilitate (zeros and suppressions) are shuffled among
    those muscles, and ``k_u`` and T are recomputed. Facilitated muscles stay in place, so a
    neuron that matches a synergy through its facilitation keeps that match under the null;
    only where its suppression falls is randomised. Recomputing ``k_u`` in every permutation
    accounts for the match itself being partly driven by the suppressed muscles. p =
    ``(1 + #{T_null >= T}) / (1 + n_permutations)``.

    Parameters
    ----------
    fields
        ``{unit: field (n_muscles,) or post_spike_effects DataFrame}`` or an array
        (n_units, n_muscles).
    negcp_mask
        Boolean (n_muscles, n_synergies): True where a synergy weight is a NegCp.
    weights
        Synergy weights (n_muscles, n_synergies).
    units
        The units to test (keys of ``fields``, or row indices); default all units with a
        suppressed muscle.
    n_permutations
        Number of permutations (vectorised).
    random_state
        Seed or Generator.

    Returns
    -------
    Correspondence
    """
    unit_ids, mat = _as_fields(fields)
    n_muscles = mat.shape[1]
    w = _check_weights(weights, n_muscles)
    negcp = np.asarray(negcp_mask, dtype=bool)
    if negcp.shape != w.shape:
        raise InputError(
            f"negcp_mask has shape {negcp.shape}, the weights {w.shape}", obj="negcp_mask"
        )
    if units is None:
        chosen = [i for i in range(len(unit_ids)) if np.any(mat[i] < 0)]
    else:
        index = {u: i for i, u in enumerate(unit_ids)}
        missing = [u for u in units if u not in index]
        if missing:
            raise InputError(f"units {missing} are not in fields", obj="units")
        chosen = [index[u] for u in units]
    n_permutations = int(n_permutations)
    if n_permutations < 1:
        raise InputError(f"n_permutations must be >= 1, got {n_permutations}", obj="n_permutations")
    q_frac = negcp.sum(axis=0) / n_muscles
    sub = mat[chosen]
    if len(chosen) == 0:
        return Correspondence(0.0, 1.0, 0, 0.0, 0, [], {}, np.zeros(0))
    excess = _best_and_hits(sub, w, negcp, q_frac)
    statistic = float(excess.sum())
    best = np.argmax(sub @ w, axis=1)
    supp = sub < 0
    coincidences = int(np.count_nonzero(supp & negcp.T[best]))
    expected = float((supp.sum(axis=1) * q_frac[best]).sum())

    rng = _rng(random_state)
    null = np.zeros(n_permutations)
    batch = max(1, 2**20 // max(1, n_muscles * len(chosen)))
    for b0 in range(0, n_permutations, batch):
        b1 = min(b0 + batch, n_permutations)
        total = np.zeros(b1 - b0)
        for row in sub:
            free = np.flatnonzero(row <= 0)
            perm = np.broadcast_to(row, (b1 - b0, n_muscles)).copy()
            if len(free) > 1:
                perm[:, free] = rng.permuted(
                    np.broadcast_to(row[free], (b1 - b0, len(free))), axis=1
                )
            total += _best_and_hits(perm, w, negcp, q_frac)
        null[b0:b1] = total
    p = (1 + np.count_nonzero(null >= statistic - 1e-9)) / (1 + n_permutations)
    return Correspondence(
        statistic=statistic,
        p_value=float(p),
        coincidences=coincidences,
        expected=expected,
        n_suppressed=int(supp.sum()),
        units=[unit_ids[i] for i in chosen],
        best_synergy={unit_ids[i]: int(k) for i, k in zip(chosen, best, strict=True)},
        null=null,
    )
