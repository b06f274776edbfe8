"""Non-negative least squares of many samples on fixed weights (NMF's transform, the
bi-cross-validation of the model-order rules)."""

from __future__ import annotations

import numpy as np

_TINY = 1e-300


def nnls_activations(
    x: np.ndarray,
    weights: np.ndarray,
    *,
    max_iter: int = 1000,
    tol: float = 1e-10,
) -> np.ndarray:
    """Non-negative least squares of every sample on fixed weights, all samples together.

    Solves ``min_{h_t >= 0} ||x_t - W h_t||^2`` for each row of ``x`` (any sign of W). Rows are
    first improved by coordinate descent (HALS with W fixed) from the clipped unconstrained
    solution; then, for groups of rows sharing the same set of positive coefficients, the
    least-squares problem restricted to that set is solved exactly and accepted where it
    satisfies the optimality (KKT) conditions: coefficients positive on the set, gradient
    non-negative off it. Rows that fail go back to coordinate descent, and so on. The result
    is the exact NNLS solution (as :func:`scipy.optimize.nnls`) for all accepted rows; rows
    not accepted after ``max_iter`` sweeps keep the coordinate-descent iterate.

    Parameters
    ----------
    x
        Data (n_times, n_muscles).
    weights
        Fixed weights (n_muscles, K).
    max_iter
        Largest number of coordinate-descent sweeps.
    tol
        Relative tolerance of the optimality check.

    Returns
    -------
    ndarray (n_times, K)
        The non-negative activations.
    """
    x = np.asarray(x, dtype=float)
    w = np.asarray(weights, dtype=float)
    n, k = x.shape[0], w.shape[1]
    if n == 0:
        return np.zeros((0, k))
    wtw = w.T @ w
    xw = x @ w  # (T, K)
    h = np.linalg.lstsq(w, x.T, rcond=None)[0].T
    np.maximum(h, 0.0, out=h)
    diag = np.maximum(np.diag(wtw), _TINY)
    scale = max(float(np.max(np.abs(xw))), _TINY)
    todo = np.arange(n)
    sweeps = 0
    block = 5
    while todo.size and sweeps < max_iter:
        ht, xwt = h[todo], xw[todo]
        for _ in range(min(block, max_iter - sweeps)):
            for j in range(k):
                ht[:, j] += (xwt[:, j] - ht @ wtw[j]) / diag[j]
                np.maximum(ht[:, j], 0.0, out=ht[:, j])
        sweeps += block
        h[todo] = ht
        done = _exact_on_support(h, xw, wtw, todo, tol * scale)
        todo = todo[~done]
        block = min(2 * block, 80)
    return h


def _exact_on_support(
    h: np.ndarray, xw: np.ndarray, wtw: np.ndarray, rows: np.ndarray, atol: float
) -> np.ndarray:
    """Solve each row exactly on its current support; accept rows meeting the KKT conditions.

    Accepted rows of ``h`` are overwritten with the exact solution. Returns a boolean mask over
    ``rows``.
    """
    k = h.shape[1]
    support = h[rows] > 0
    codes = support @ (1 << np.arange(k))
    uniq, inverse = np.unique(codes, return_inverse=True)
    accepted = np.zeros(rows.size, dtype=bool)
    if uniq.size > 512:  # too many patterns to be worth it; keep iterating
        return accepted
    for u, code in enumerate(uniq):
        sel = np.flatnonzero(inverse == u)
        r = rows[sel]
        s = np.flatnonzero((int(code) >> np.arange(k)) & 1)
        sol = np.zeros((r.size, k))
        if s.size:
            try:
                sol[:, s] = np.linalg.solve(wtw[np.ix_(s, s)], xw[r][:, s].T).T
            except np.linalg.LinAlgError:
                continue
        grad = sol @ wtw - xw[r]  # gradient of 0.5 ||x - W h||^2
        ok = np.all(sol[:, s] > 0, axis=1) if s.size else np.ones(r.size, dtype=bool)
        off = np.setdiff1d(np.arange(k), s)
        if off.size:
            ok &= np.all(grad[:, off] >= -atol, axis=1)
        h[r[ok]] = sol[ok]
        accepted[sel[ok]] = True
    return accepted
