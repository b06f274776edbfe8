"""compare_synergies: known permutations, rotations and angles."""

from __future__ import annotations

import numpy as np
import pytest

from nwb_synergy.compare import compare_synergies
from nwb_synergy.errors import InputError


def _orthonormal(n: int, k: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, k)))
    return q


def test_permutation_and_scaling_are_undone():
    w = np.abs(np.random.default_rng(0).standard_normal((10, 4)))
    perm = [2, 0, 3, 1]
    res = compare_synergies(w, 3.0 * w[:, perm])
    # column i of a matches the column of b that holds it
    assert res.pairs.tolist() == [[0, 1], [1, 3], [2, 0], [3, 2]]
    np.testing.assert_allclose(res.cosine, 1.0)
    np.testing.assert_allclose(res.pearson, 1.0)
    np.testing.assert_allclose(res.principal_angles, 0.0, atol=1e-7)
    assert res.subspace_similarity == pytest.approx(1.0)
    assert res.mean_cosine == pytest.approx(1.0)


def test_rotation_inside_the_span():
    q = _orthonormal(12, 3, 1)
    theta = 0.4
    rot = np.array(
        [[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]]
    )
    res = compare_synergies(q, q @ rot)
    # the first two synergies are rotated by theta: cosine cos(theta); the third unchanged
    np.testing.assert_allclose(np.sort(res.cosine), [np.cos(theta), np.cos(theta), 1.0])
    # ...but the span is the same: every principal angle is 0
    np.testing.assert_allclose(res.principal_angles, 0.0, atol=1e-7)
    assert res.subspace_similarity == pytest.approx(1.0)


def test_known_principal_angles_and_similarity():
    q = _orthonormal(8, 4, 2)
    e1, e2, e3, e4 = q.T
    a = np.stack([e1, e2], axis=1)
    angle = 0.3
    b = np.stack([np.cos(angle) * e1 + np.sin(angle) * e3, e4], axis=1)
    res = compare_synergies(a, b)
    # largest first: e2 is orthogonal to span(b), then the 0.3 rad tilt
    np.testing.assert_allclose(res.principal_angles, [np.pi / 2, angle], atol=1e-9)
    assert res.subspace_similarity == pytest.approx(np.cos(angle) ** 2 / 2)
    assert res.cosine_matrix.shape == (2, 2)


def test_pearson_and_sign_handling():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((9, 2))
    v = w + 0.3 * rng.standard_normal((9, 2))
    res = compare_synergies(w, v)
    for (i, j), r in zip(res.pairs, res.pearson, strict=True):
        assert r == pytest.approx(np.corrcoef(w[:, i], v[:, j])[0, 1])
    # signed matching keeps a flipped synergy apart; abs_cosine matches it and reports +1
    flipped = compare_synergies(w, -w, match="abs_cosine")
    np.testing.assert_allclose(flipped.cosine, 1.0)
    np.testing.assert_allclose(flipped.pearson, 1.0)
    signed = compare_synergies(w[:, :1], -w[:, :1])
    assert signed.cosine[0] == pytest.approx(-1.0)


def test_unequal_numbers_and_models():
    q = _orthonormal(10, 4, 4)

    class Fitted:
        weights_ = q[:, :3]

    res = compare_synergies(q, Fitted())
    assert res.pairs.shape == (3, 2) and res.principal_angles.shape == (3,)
    np.testing.assert_allclose(res.cosine, 1.0)
    assert res.to_dict()["subspace_similarity"] == pytest.approx(1.0)


def test_errors():
    w = np.ones((5, 2))
    with pytest.raises(InputError, match="different numbers of muscles"):
        compare_synergies(w, np.ones((6, 2)))
    with pytest.raises(InputError, match="all zero"):
        compare_synergies(w, np.zeros((5, 2)))
    bad = w.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        compare_synergies(bad, w)
    with pytest.raises(InputError, match="match"):
        compare_synergies(w, w, match="pearson")
