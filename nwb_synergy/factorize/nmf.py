"""Non-negative matrix factorization of EMG envelopes, with restarts computed together.

The model is ``X ~ H W^T`` with X (n_times, n_muscles) the conditioned EMG, W (n_muscles, K) the
synergies and H (n_times, K) their activations, both non-negative, minimising the sum of squared
errors. Two solvers:

* ``"hals"``: hierarchical alternating least squares (Cichocki and Phan 2009; Gillis and
  Glineur 2012), each column of H then of W updated in closed form and projected on the
  non-negative orthant. Converges in far fewer iterations than multiplicative updates.
* ``"mu"``: the multiplicative updates of Lee and Seung (2001), the classical algorithm of the
  synergy literature (and of musclesyneRgies).

Restarts are not a Python loop of separate fits: all random initialisations are stored as
batched arrays (W of shape (R, n_muscles, K), H of shape (R, K, n_times)) and updated together
with one matrix product per step, so that NumPy's BLAS calls see large matrices and the
interpreter overhead is paid once. A restart that meets the stopping rule is frozen and dropped
from the batch; the others go on.

Long recordings (at least 20,000 samples) start at a coarser resolution: every
``n_times // 5000``-th sample is fitted first, by the same algorithm and rule, and the full fit
starts from those weights with the activations interpolated in between. It then meets the
stopping rule soon after its first ``patience`` iterations, which roughly halves the work
without changing what is fitted or when it stops.

Stopping rule (musclesyneRgies, Santuz et al. 2017): stop when the centered R^2 of the fit has
improved by less than ``tol`` (relative, 1e-4 = 0.01 %) over the last ``patience`` (20)
iterations, or after ``max_iter`` iterations. The best restart is the one with the smallest
sum of squared errors. Weights are scaled to unit Euclidean norm and the activations scaled
accordingly; synergies are ordered by decreasing activation energy (``sum(H_k**2)``), which
with unit-norm weights is the share of the reconstruction's energy each synergy carries.
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ..compare import match_columns
from ..errors import InputError
from ..signals import EMG
from ._nnls import nnls_activations
from .base import SynergyModel
from .order import DEFAULT_SELECTION, METHODS, resolve_n_synergies

_TINY = 1e-300


class NMF(SynergyModel):
    """Muscle synergies by non-negative matrix factorization.

    A scikit-learn transformer: ``transform`` gives the activations of EMG on the fitted
    synergies, ``score`` the uncentered VAF of its reconstruction, ``components_`` the
    synergies as rows. The data must be non-negative (``positive_only`` tag).

    Parameters
    ----------
    n_synergies
        Number of synergies K, or ``"auto"`` to choose it with
        :func:`~nwb_synergy.factorize.order.select_n_synergies` (``selection`` rule); the
        whole model-order curve is then kept in ``selection_``.
    solver
        ``"hals"`` (default, fast) or ``"mu"`` (Lee and Seung multiplicative updates).
    n_restarts
        Number of random initialisations, updated together; the best fit is kept.
    max_iter
        Largest number of iterations per restart.
    tol
        Relative improvement of the centered R^2 over ``patience`` iterations below which a
        restart stops (1e-4: "less than 0.01 % over 20 iterations").
    patience
        Window of iterations of the stopping rule.
    random_state
        Seed or generator of the initialisations; the same seed gives the same result.
    selection
        Model-order rule used when ``n_synergies="auto"``: "linear_fit" (default), "vaf",
        "shuffle" or "cv" (see :func:`~nwb_synergy.factorize.order.select_n_synergies`).
    selection_params
        Extra keyword arguments for the model-order rule (e.g. ``{"mse_threshold": 1e-4}``).
    transform_max_iter, transform_tol
        Iterations and tolerance of the non-negative least squares of :meth:`transform`.
    dtype
        "float32" (default) or "float64": floating type of the long (n_times) arrays during
        the iterations. float32 halves their memory traffic; W, the fit statistics and all
        reported results are float64, and the fit agrees with a float64 run to about 1e-6.

    Attributes
    ----------
    weights_ : ndarray (n_muscles, n_synergies)
        Synergies, non-negative, unit-norm columns.
    components_ : ndarray (n_synergies, n_muscles)
        ``weights_.T`` (scikit-learn's layout).
    activations_ : ndarray (n_times, n_synergies)
        Activations of the training data, non-negative: the factor H of the fit.
    offset_ : ndarray (n_muscles,)
        Zeros (NMF has no offset; kept for a common interface with RLVM).
    vaf_, r2_ : float
        Uncentered VAF and centered R^2 of the best fit.
    n_iter_ : int
        Iterations of the best restart.
    n_synergies_ : int
        Number of synergies fitted.
    muscle_names_ : list of str or None
        Muscle names, when fitted on an :class:`~nwb_synergy.EMG` (or a DataFrame).
    n_features_in_, feature_names_in_
        Number of muscles, and column names of a training DataFrame (scikit-learn).
    restart_weights_ : ndarray (n_restarts, n_muscles, n_synergies)
        Unit-norm weights of every restart, columns matched to ``weights_``
        (:func:`~nwb_synergy.compare.match_columns`).
    restart_vaf_, restart_r2_ : ndarray (n_restarts,)
        Uncentered VAF and centered R^2 of every restart.
    restart_n_iter_ : ndarray (n_restarts,)
        Iterations of every restart.
    selection_ : ModelOrder or None
        The model-order curve when ``n_synergies="auto"``.
    """

    method = "nmf"
    nonnegative = True

    _parameter_constraints: dict = {
        **SynergyModel._parameter_constraints,
        "solver": [StrOptions({"hals", "mu"})],
        "n_restarts": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "selection": [StrOptions(set(METHODS))],
        "transform_max_iter": [Interval(Integral, 1, None, closed="left")],
        "transform_tol": [Interval(Real, 0, None, closed="left")],
        "dtype": [StrOptions({"float32", "float64"})],
    }

    def __init__(
        self,
        n_synergies: int | str = 4,
        *,
        solver: str = "hals",
        n_restarts: int = 10,
        max_iter: int = 1000,
        tol: float = 1e-4,
        patience: int = 20,
        random_state: int | np.random.Generator | None = None,
        selection: str = DEFAULT_SELECTION,
        selection_params: dict | None = None,
        transform_max_iter: int = 1000,
        transform_tol: float = 1e-10,
        dtype: str = "float32",
    ):
        self.n_synergies = n_synergies
        self.solver = solver
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.tol = tol
        self.patience = patience
        self.random_state = random_state
        self.selection = selection
        self.selection_params = selection_params
        self.transform_max_iter = transform_max_iter
        self.transform_tol = transform_tol
        self.dtype = dtype

    # ------------------------------------------------------------------------------------------
    def fit(self, emg: EMG | np.ndarray, y: Any = None) -> NMF:
        """Fit the synergies to EMG.

        Parameters
        ----------
        emg
            :class:`~nwb_synergy.EMG` or array (n_times, n_muscles), non-negative (conditioned).
        y
            Ignored (scikit-learn convention).

        Returns
        -------
        NMF
            ``self``, fitted.
        """
        self._check_params()
        data, names = self._validate_emg(emg, reset=True, min_times=2)
        if not np.any(data > 0):
            raise InputError("all samples are zero; nothing to factorize", obj="emg")
        k, self.selection_ = resolve_n_synergies(self, data)

        with _single_threaded_blas():
            self._fit_k(data, k)
        self.muscle_names_ = names
        return self

    def _fit_k(self, data: np.ndarray, k: int) -> None:
        rng = np.random.default_rng(self.random_state)
        w, h, sse, n_iter = nmf_batched(
            data,
            k,
            n_restarts=int(self.n_restarts),
            solver=self.solver,
            max_iter=int(self.max_iter),
            tol=float(self.tol),
            patience=int(self.patience),
            rng=rng,
            dtype=np.dtype(self.dtype),
        )
        # nmf_batched returns unit-norm weight columns with the activations scaled accordingly
        best = int(np.argmin(sse))
        h_best = h.astype(float)
        order = np.argsort(-np.sum(h_best**2, axis=1), kind="stable")
        w_best = w[best][:, order]
        h_best = h_best[order]
        del h

        self.weights_ = w_best
        self.activations_ = np.ascontiguousarray(h_best.T)
        self.offset_ = np.zeros(data.shape[1])
        self.n_synergies_ = k
        self.n_iter_ = int(n_iter[best])
        self.restart_weights_ = np.stack([wr[:, match_columns(w_best, wr)[0]] for wr in w])
        xx = float(np.sum(data * data))
        cc = xx - data.size * float(data.mean()) ** 2  # sum((X - grand mean)^2)
        self.restart_vaf_ = 1.0 - sse / xx
        self.restart_r2_ = 1.0 - sse / cc if cc > 0 else np.full_like(sse, np.nan)
        self.restart_n_iter_ = n_iter
        # fit measures of the final factors, exactly (metrics.vaf / metrics.r2 with one SSE)
        residual = data - self.activations_ @ w_best.T
        err = float(np.einsum("ij,ij->", residual, residual))
        self.vaf_ = 1.0 - err / xx
        self.r2_ = 1.0 - err / cc if cc > 0 else float("nan")

    def fit_transform(self, emg: EMG | np.ndarray, y: Any = None) -> np.ndarray:
        """Fit, then return :meth:`transform` of the training data (n_times, n_synergies).

        The same as ``fit(emg).transform(emg)``: the exact non-negative least squares
        activations on the fitted synergies. They differ from ``activations_`` (the last
        iterate of the factorization) by no more than the stopping rule allows.
        """
        self.fit(emg)
        return self._activations(self._validate_emg(emg, reset=False)[0])

    def _activations(self, data: np.ndarray) -> np.ndarray:
        """``argmin_{H >= 0} ||X - H W^T||^2`` with W fixed, for all samples together
        (exact non-negative least squares, as :func:`scipy.optimize.nnls` per sample)."""
        with _single_threaded_blas():
            return nnls_activations(
                data, self.weights_, max_iter=self.transform_max_iter, tol=self.transform_tol
            )

    def provenance(self) -> dict[str, Any]:
        out = super().provenance()
        out["n_iter"] = int(self.n_iter_)
        out["restart_vaf_uncentered"] = [float(v) for v in self.restart_vaf_]
        return out


def _single_threaded_blas() -> Any:
    """Limit BLAS to one thread while iterating (when threadpoolctl is installed).

    The products here are small (K x n_muscles by n_muscles x tile); multi-threaded BLAS
    gains nothing on them and, on a loaded machine, its threads wait on each other for far
    longer than the work takes (measured: 100 times slower with two busy cores).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        from contextlib import nullcontext

        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


# ----------------------------------------------------------------------------------------------
# batched solvers
# ----------------------------------------------------------------------------------------------
def _init(
    x: np.ndarray, k: int, n_restarts: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random initialisation scaled to the data: W (R, M, K), H (R, K, T)."""
    n_times, n_muscles = x.shape
    scale = np.sqrt(max(float(x.mean()), _TINY) / k)
    w = rng.uniform(0.0, 2.0 * scale, size=(n_restarts, n_muscles, k))
    h = rng.uniform(0.0, 2.0 * scale, size=(n_restarts, k, n_times))
    return w, h


def _h_pass(
    x: np.ndarray,
    xt: np.ndarray,
    h: np.ndarray,
    wt: np.ndarray,
    coef: np.ndarray,
    solver: str,
    sweeps: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Update H in place on one slice of time and return its W-step statistics.

    Parameters
    ----------
    x, xt
        The data slice (T_s, M) and its transpose (M, T_s).
    h
        Activations of the slice (R, K, T_s), a view into the full array, updated in place.
    wt
        HALS: rows of W^T divided by diag(W^T W), (R, K, M); MU: W^T.
    coef
        HALS: W^T W with row j divided by its diagonal entry and the diagonal set to 0,
        so that the update of row j is ``h_j = max(0, (W^T x)_j / d_j - coef_j @ H)``;
        MU: W^T W.

    Returns
    -------
    hth : (R, K, K) and xth : (R, K, M)
        ``H H^T`` and ``H X`` of the slice after the update (float64).
    """
    r_act, k, n = h.shape
    xw = (wt.reshape(r_act * k, -1) @ xt).reshape(r_act, k, n)
    if solver == "hals":
        g = np.empty((r_act, 1, n), dtype=h.dtype)
        gj = g[:, 0, :]
        for _ in range(sweeps):
            for j in range(k):
                np.matmul(coef[:, j : j + 1, :], h, out=g)
                hj = h[:, j, :]
                np.subtract(xw[:, j, :], gj, out=hj)
                np.maximum(hj, 0.0, out=hj)
    else:
        den = np.matmul(coef, h)
        np.maximum(den, _TINY, out=den)
        h *= xw
        h /= den
    hth = np.matmul(h, h.transpose(0, 2, 1)).astype(float)
    xth = (h.reshape(r_act * k, n) @ x).reshape(r_act, k, -1).astype(float)
    return hth, xth


def _slices(n: int, tile: int) -> list[slice]:
    edges = list(range(0, n, max(1, tile))) + [n]
    if len(edges) > 2 and edges[-1] - edges[-2] < tile // 2:  # merge a short last tile
        edges.pop(-2)
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def nmf_batched(
    x: np.ndarray,
    k: int,
    *,
    n_restarts: int = 10,
    solver: str = "hals",
    max_iter: int = 1000,
    tol: float = 1e-4,
    patience: int = 20,
    rng: np.random.Generator | None = None,
    init: tuple[np.ndarray, np.ndarray] | None = None,
    dtype: Any = np.float32,
    w_sweeps: int = 5,
    h_sweeps: int = 1,
    tile: int = 8192,
    n_threads: int = 1,
    subsample: int | None = None,
    all_h: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``n_restarts`` NMFs of ``x`` together.

    One iteration is one pass over time (in tiles of ``tile`` samples, which keeps the
    working set of every restart in cache) that updates H and accumulates ``H H^T`` and
    ``X^T H``, followed by ``w_sweeps`` cheap HALS sweeps over W (which is only
    n_muscles x K per restart). The fit is computed from those statistics without forming
    the reconstruction: ``SSE = |X|^2 - 2 <W, X^T H> + <W^T W, H H^T>``.

    Parameters
    ----------
    x
        Non-negative data (n_times, n_muscles).
    k
        Number of synergies.
    init
        Optional starting (W (R, M, K), H (R, K, T)); random otherwise.
    dtype
        Floating type of the n_times-long arrays (float32 halves their memory traffic; W
        and all fit statistics are kept in float64).
    w_sweeps
        HALS sweeps over the columns of W per iteration.
    tile
        Samples per time tile of the H pass.
    n_threads
        Threads sharing the tiles (NumPy releases the GIL in these operations).
    subsample
        Multi-resolution start: first fit every ``subsample``-th sample (with the same rule),
        then start the full fit from those weights and the activations linearly interpolated
        in between. The full fit then usually meets the stopping rule soon after its
        ``patience`` window. None: every ``n_times // 5000``-th sample when there are at least
        20,000 samples, else off; 1: off.
    all_h
        Return the activations of every restart; by default only those of the best restart
        are kept (saves memory: the others are dropped as soon as a better one finishes).

    Returns
    -------
    w : ndarray (R, n_muscles, K)
        Weights of every restart (float64, unit-norm columns).
    h : ndarray (K, n_times), or (R, K, n_times) with ``all_h``
        Activations of the best restart (smallest SSE), or of every restart (time last, in
        ``dtype``).
    sse : ndarray (R,)
        Final sum of squared errors.
    n_iter : ndarray (R,)
        Iterations run by each restart.
    """
    with _single_threaded_blas():
        return _nmf_batched_core(
            x,
            k,
            n_restarts=n_restarts,
            solver=solver,
            max_iter=max_iter,
            tol=tol,
            patience=patience,
            rng=rng,
            init=init,
            dtype=dtype,
            w_sweeps=w_sweeps,
            h_sweeps=h_sweeps,
            tile=tile,
            n_threads=n_threads,
            subsample=subsample,
            all_h=all_h,
        )


def _nmf_batched_core(
    x: np.ndarray,
    k: int,
    *,
    n_restarts: int = 10,
    solver: str = "hals",
    max_iter: int = 1000,
    tol: float = 1e-4,
    patience: int = 20,
    rng: np.random.Generator | None = None,
    init: tuple[np.ndarray, np.ndarray] | None = None,
    dtype: Any = np.float32,
    w_sweeps: int = 5,
    h_sweeps: int = 1,
    tile: int = 8192,
    n_threads: int = 1,
    subsample: int | None = None,
    all_h: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The iterations of :func:`nmf_batched` (BLAS threads already limited)."""
    rng = np.random.default_rng(rng)
    x64 = np.asarray(x, dtype=float)
    n_times, n_muscles = x64.shape
    step = _warm_step(n_times) if subsample is None else int(subsample)
    if init is None and step > 1:
        # multi-resolution start: fit every step-th sample first (same rule), then start the
        # full fit from those weights and the activations interpolated in between
        w_sub, h_sub, _, _ = _nmf_batched_core(
            x64[::step],
            k,
            n_restarts=n_restarts,
            solver=solver,
            max_iter=max_iter,
            tol=tol,
            patience=patience,
            rng=rng,
            dtype=dtype,
            w_sweeps=w_sweeps,
            h_sweeps=h_sweeps,
            tile=tile,
            n_threads=n_threads,
            subsample=1,
            all_h=True,
        )
        init = (w_sub, _interpolate_time(h_sub, step, n_times))
    x = np.ascontiguousarray(x64, dtype=dtype)
    xt = np.ascontiguousarray(x.T)  # (M, T)
    if init is None:
        w, h = _init(x64, k, n_restarts, rng)
    else:
        w = np.array(init[0], dtype=float)
        h = np.asarray(init[1], dtype=dtype)
        n_restarts = w.shape[0]
    w = np.ascontiguousarray(w, dtype=float)  # W is small: keep it in float64
    h = np.ascontiguousarray(h, dtype=dtype)
    xx = float(np.sum(x64 * x64))
    centered = float(np.sum((x64 - x64.mean()) ** 2))
    denom = centered if centered > 0 else xx
    tiles = _slices(n_times, tile)
    pool = None
    if n_threads > 1 and len(tiles) > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(max_workers=int(n_threads))

    out_w = np.empty((n_restarts, n_muscles, k))
    out_h = np.empty((n_restarts if all_h else 1, k, n_times), dtype=dtype)
    best_sse, best_idx = np.inf, -1
    out_sse = np.empty(n_restarts)
    out_iter = np.zeros(n_restarts, dtype=int)
    active = np.arange(n_restarts)
    history = np.full((n_restarts, max_iter), -np.inf)

    try:
        for it in range(max_iter):
            r_act = len(active)
            # ---- H step, tile by tile: H (R, K, T) given W (R, M, K)
            wtw64 = np.matmul(w.transpose(0, 2, 1), w)  # (R, K, K)
            if solver == "hals":
                d = np.maximum(np.einsum("rkk->rk", wtw64), _TINY)[:, :, None]
                coef64 = wtw64 / d
                coef64[:, np.arange(k), np.arange(k)] = 0.0
                wt64 = w.transpose(0, 2, 1) / d
            else:
                coef64, wt64 = wtw64, w.transpose(0, 2, 1)
            wt = np.ascontiguousarray(wt64, dtype=dtype)  # (R, K, M)
            coef = np.ascontiguousarray(coef64, dtype=dtype)

            def run(sl: slice, h=h, wt=wt, coef=coef) -> tuple[np.ndarray, np.ndarray]:
                return _h_pass(x[sl], xt[:, sl], h[:, :, sl], wt, coef, solver, h_sweeps)

            parts = list(pool.map(run, tiles)) if pool is not None else [run(t) for t in tiles]
            hth = sum(p[0] for p in parts)  # (R, K, K)
            xth = sum(p[1] for p in parts).transpose(0, 2, 1)  # (R, M, K) = X^T H
            # ---- W step given H (float64, small)
            if solver == "hals":
                inv_h = 1.0 / np.maximum(np.einsum("rkk->rk", hth), _TINY)
                for _ in range(w_sweeps):
                    for j in range(k):
                        grad = xth[:, :, j] - np.matmul(w, hth[:, :, j : j + 1])[:, :, 0]
                        w[:, :, j] = np.maximum(w[:, :, j] + grad * inv_h[:, j, None], 0.0)
            else:
                w *= xth / np.maximum(np.matmul(w, hth), _TINY)
            # ---- fit: SSE = |X|^2 - 2 <W, X^T H> + <W^T W, H H^T>
            wtw64 = np.matmul(w.transpose(0, 2, 1), w)
            sse = xx - 2.0 * np.einsum("rmk,rmk->r", w, xth)
            sse += np.einsum("rkl,rkl->r", wtw64, hth)
            sse = np.maximum(sse, 0.0)
            fit = 1.0 - sse / denom
            history[active, it] = fit
            # ---- unit-norm W columns; the scale moves into H lazily (W^T X^T and W^T W
            # are recomputed from W, so only the product matters), applied every 10
            # iterations and at the end to keep the two factors balanced
            if it % 10 == 9:
                _balance(w, h, dtype)
            # ---- stopping rule per restart
            if it >= patience:
                gain = fit - history[active, it - patience]
                done = gain < tol * np.abs(fit)
            else:
                done = np.zeros(r_act, dtype=bool)
            if it == max_iter - 1:
                done[:] = True
            if done.any():
                idx = active[done]
                wd, hd = w[done], h[done]
                _balance(wd, hd, dtype)
                out_w[idx] = wd
                if all_h:
                    out_h[idx] = hd
                else:  # keep the best so far; ties go to the lowest index, as np.argmin
                    for pos, (i, e) in enumerate(zip(idx, sse[done], strict=True)):
                        if e < best_sse or (e == best_sse and i < best_idx):
                            best_sse, best_idx = float(e), int(i)
                            out_h[0] = hd[pos]
                out_sse[idx] = sse[done]
                out_iter[idx] = it + 1
                keep = ~done
                active = active[keep]
                if not len(active):
                    break
                w = np.ascontiguousarray(w[keep])
                h = np.ascontiguousarray(h[keep])
    finally:
        if pool is not None:
            pool.shutdown()
    return out_w, (out_h if all_h else out_h[0]), out_sse, out_iter


def _warm_step(n_times: int) -> int:
    return n_times // 5000 if n_times >= 20_000 else 1


def _interpolate_time(h: np.ndarray, step: int, n_times: int) -> np.ndarray:
    """Activations (R, K, T_sub) at every step-th sample -> (R, K, n_times), linearly."""
    t = np.arange(n_times)
    idx = np.minimum(t // step, h.shape[-1] - 1)
    nxt = np.minimum(idx + 1, h.shape[-1] - 1)
    frac = ((t - idx * step) / step).astype(h.dtype)
    frac[idx == nxt] = 0.0
    out = h[..., idx]
    out *= 1 - frac
    out += h[..., nxt] * frac
    return out


def _balance(w: np.ndarray, h: np.ndarray, dtype: Any) -> None:
    """Scale W columns to unit norm and H rows inversely, in place (product unchanged)."""
    norms = np.linalg.norm(w, axis=1)  # (R, K)
    scale = np.where(norms > 0, norms, 1.0)
    w /= scale[:, None, :]
    h *= scale[:, :, None].astype(dtype)
