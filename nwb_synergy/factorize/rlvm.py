"""Rectified latent variable model (RLVM): synergies whose weights may be negative.

The RLVM (Whiteway and Butts, J Neurophysiol 2017) is an autoencoder with one rectified hidden
layer. For EMG X (n_times T, n_muscles N) and K synergies::

    Z    = relu(X W1 + b1)          activations, (T, K), >= 0      (encoder)
    Xhat = Z W2 + b2                reconstruction, (T, N)         (decoder)

The synergies are the columns of ``W2^T`` (N, K), free in sign; the activations are
non-negative. Guo et al. (IEEE JBHI 2025) used it on EMG and found small negative components
(NegCps) that NMF cannot express.

Configurations
--------------
``RLVM.reference(K)`` is the model of Whiteway's reference code (github.com/themattinthehatt/rlvm,
``AutoSubunit`` and ``fit_weights_latent_vars``): tied weights (``W1 = W2^T``); Gaussian loss
``SSE / (2 T N)``; L2 penalties ``0.5 * 1e-4 * |W|^2`` on the encoder and on the decoder weights
(so ``1e-4 * |W|^2`` when tied) and ``0.5 * 1e-5 * |b|^2`` on each bias, not divided by T N; no
penalty on the latents; full-batch L-BFGS (1000 iterations, history 100); weights uniform in
``+-4 sqrt(6) / sqrt(N + K + 1)``, biases 0; latents ordered by decreasing standard deviation.
Differences: our L-BFGS uses a weak-Wolfe line search (minFunc's is a strong-Wolfe one), and
the data are divided by their RMS first (``normalize=True``; Whiteway's examples standardise
the data too; the fit is otherwise the same, ``relu`` being positively homogeneous).

``RLVM(K)`` (the default) is the configuration that identified simulated synergies best:
untied weights, warm start from NMF, and an L1 penalty ``l1 * sum(Z) / T`` on the latents (as
Whiteway's ``l1_hid``) whose weight is chosen by cross-validated stability inside ``fit``
(``l1="auto"``, see :class:`RLVM`). Why: the model ``Z W2^T + b2`` with ``Z >= 0`` is only
identified up to the invertible maps of the synergy space that keep ``Z >= 0``; a plain RLVM
finds the right *subspace* but a rotated basis inside it, whose spurious negative weights are
as large as true NegCps. Among the bases that explain the data, the one with the sparsest
activations is the true one when every synergy is sometimes silent (the smallest cone that
holds the data), and an L1 penalty on ``Z`` selects it. A tied encoder cannot produce such
sparse activations (its penalised fits lose the data), hence untied weights.

Restarts, and the cross-validation fits, are solved together by one batched L-BFGS run
(:mod:`._lbfgs`), each with its own curvature pairs, line search and stopping rule.

Data scaling and the offset
---------------------------
With ``normalize=True`` the EMG is divided by its root mean square before fitting, so that the
penalty constants mean the same on data in volts or in normalised units; results are scaled
back. ``offset_`` is the decoder bias ``b2`` in data units. It has no NMF counterpart: it
carries the tonic activity of each muscle, which is what lets a negative weight pull a muscle
below its baseline. ``vaf_`` and ``r2_`` measure the full reconstruction ``Z W^T + b2``
(:meth:`inverse_transform` adds ``offset_``, as for every model), i.e. the model as fitted,
with N more parameters than NMF; ``offset_vaf_`` reports the VAF of the offset alone, so that
the share of the fit owed to the constant is visible.

Everything that needs PyTorch is here and in the private ``_rlvm_core`` and ``_lbfgs`` modules,
which only this module imports; ``import nwb_synergy`` does not import torch.
"""

from __future__ import annotations

import copy
import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions

from ..compare import match_columns
from ..errors import InputError
from ..signals import EMG
from . import metrics
from .base import SynergyModel
from .order import DEFAULT_SELECTION, METHODS, resolve_n_synergies

LOSSES = ("gaussian", "poisson")
INITS = ("nmf", "random")
LATENTS = ("encoder", "refit")
#: share of the data's energy (sum of squares) below which a latent is silent: its part of the
#: reconstruction, ``activation_k * weights_k``, carries less. ``fit`` switches such a latent off
#: exactly and :meth:`RLVM.drop_silent_latents` removes it (see :func:`latent_energy_share`).
SILENT_SHARE = 1e-3
#: fitted attributes of RLVM with a synergy axis, and that axis
SYNERGY_AXIS = {
    "weights_": 1,
    "activations_": 1,
    "encoder_weights_": 1,
    "encoder_bias_": 0,
    "restart_weights_": 2,
    "activity_": 0,
}
#: L1 weights searched by ``l1="auto"`` (per unit of the RMS-normalised data)
DEFAULT_L1_GRID = (0.003, 0.01, 0.03, 0.1, 0.3)
#: samples the L1 path (and its search) runs on; longer data are thinned to every q-th sample
#: for the path, then the last step is refitted on all samples from the path's solution
PATH_SAMPLES = 8000


class RLVM(SynergyModel):
    """Muscle synergies by a rectified latent variable model (signed weights, activations >= 0).

    Parameters
    ----------
    n_synergies
        Number of synergies K, or ``"auto"`` (chosen by
        :func:`~nwb_synergy.factorize.order.select_n_synergies` with rule ``selection``; the
        curve is kept in ``selection_``).
    tied
        Encoder weights equal to the transposed decoder (``W1 = W2^T``, the reference) or free.
    init
        ``"nmf"``: start from NMF restarts (the decoder at the NMF synergies, the offset at each
        muscle's floor, the encoder at their pseudo-inverse); restarts after the first are
        rotated at random inside the synergy span. ``"random"``: Whiteway's uniform
        initialisation.
    l1
        Weight of the L1 penalty ``l1 * sum(Z) / T`` on the latents, or ``"auto"``: chosen by
        blocked cross-validation inside ``fit`` (see Notes).
    l1_grid
        Candidate weights for ``"auto"`` (ascending; default ``DEFAULT_L1_GRID``).
    l2_weights, l2_biases
        L2 penalties ``0.5 * l2_weights * (|W1|^2 + |W2|^2)`` and
        ``0.5 * l2_biases * (|b1|^2 + |b2|^2)`` (Whiteway's 1e-4 and 1e-5).
    loss
        ``"gaussian"`` (``SSE / (2 T N)``) or ``"poisson"`` (``sum(mu - X log mu) / sum(X)`` with
        ``mu = softplus(Z W2 + b2)``; data must be non-negative, no normalisation).
    latents
        How activations are obtained once the weights are fitted: ``"encoder"`` (the model's
        own ``relu(X W1 + b1)``; exact and instantaneous) or ``"refit"`` (non-negative
        least squares on the fixed decoder with the ``refit_l1`` and ``smoothness`` penalties,
        Whiteway's second stage; smoother activations, slower).
    smoothness, refit_l1
        Penalties of the ``"refit"`` latents: ``smoothness * |D2 Z|^2 / (2 T)`` (second
        difference in time) and ``refit_l1 * sum(Z) / T``, on the normalised data with
        unit-norm synergies.
    n_restarts
        Starting points fitted together (one batched L-BFGS run); the best training loss wins.
    cv_folds
        Contiguous time blocks of the cross-validation of ``l1="auto"``.
    stability_tol
        Smallest tolerance of the one-SE rule: stability differences below the larger of this
        and the best stability's standard error are ties, broken toward the larger L1 weight.
    path_samples
        Longer data run the L1 path (with the search of ``l1="auto"``) on every q-th sample,
        q = ceil(n_times / path_samples), and then refit the chosen weight on every sample,
        started from the path's solutions. The model is a function of each sample alone (no
        dynamics), so the thinned data pose the same problem with fewer, still spread, samples:
        the cost of the path stops growing with the recording's length, and only the final
        refit is linear in it. None: the path on all samples.
    max_iter, history_size, tol_grad, tol_change
        L-BFGS settings (as ``torch.optim.LBFGS``; Whiteway: 1000 iterations, history 100).
    normalize
        Divide the data by its RMS before fitting (see the module docstring).
    device
        ``"cpu"`` or ``"cuda"`` (an InputError when no GPU is visible).
    dtype
        ``"float64"`` (default) or ``"float32"`` (faster, on GPUs especially).
    n_threads
        PyTorch intra-op threads while fitting (the previous setting is restored after):
        1 by default, which is the fastest for envelope-sized data (every operation is small)
        and, above all, immune to the oversubscription that makes multi-threaded runs crawl on
        a busy machine; more for very long recordings on an idle one; None leaves torch's
        setting alone. (Global to the process while a fit runs.)
    random_state
        Seed or NumPy generator (it seeds NumPy for the NMF starts and a torch generator for
        the random ones). The same seed gives the same result on the same device, dtype and
        thread count: CPU reductions are deterministic for a fixed thread count, but other
        thread counts or a GPU round differently, and rounding grows along the nearly flat
        directions of the loss. For small data (a few thousand samples) one torch thread
        (``torch.set_num_threads(1)``) is as fast and much faster on a busy machine.
    selection, selection_params
        Model-order rule and its parameters for ``n_synergies="auto"`` ("linear_fit" by
        default; see :func:`~nwb_synergy.factorize.order.select_n_synergies`).

    Attributes
    ----------
    weights_ : ndarray (n_muscles, n_synergies)
        Synergies: the decoder columns (``W2^T``) scaled to unit norm, signed.
    activations_ : ndarray (n_times, n_synergies)
        Activations of the training data (>= 0), scaled inversely to the weights so that
        ``activations_ @ weights_.T + offset_`` is the model's reconstruction.
    offset_ : ndarray (n_muscles,)
        Decoder bias ``b2`` in data units (tonic activity).
    encoder_weights_, encoder_bias_ : ndarray (n_muscles, K), (K,)
        Encoder in data units: ``activations = relu(emg @ encoder_weights_ + encoder_bias_)``.
    vaf_, r2_ : float
        Uncentered VAF and centered R^2 of ``activations_ @ weights_.T + offset_``.
    offset_vaf_ : float
        Uncentered VAF of the offset alone.
    activity_ : ndarray (n_synergies,)
        Share of the activations' energy (``sum(activations_**2)``, unit-norm weights) carried
        by each synergy. A latent the L1 penalty silenced has 0: the optimizer only approaches
        zero, so a latent whose part of the reconstruction carries less than ``SILENT_SHARE``
        (1e-3) of the data's energy is switched off exactly (its encoder bias lowered until it
        is zero on every training sample). Its weights are meaningless;
        :meth:`drop_silent_latents` removes it.
    loss_ : float
        Penalised training loss of the best restart (on the normalised data).
    n_iter_ : int
        L-BFGS iterations of the best restart (last step of the L1 path).
    l1_ : float
        The L1 weight used (chosen one with ``"auto"``).
    cv_ : dict or None
        With ``l1="auto"``: ``l1_grid``, ``stability`` (mean pairwise matched cosine of the
        fold fits), ``heldout_mse`` (per fold, normalised units), ``chosen``.
    restart_weights_ : ndarray (n_restarts, n_muscles, K)
        Unit-norm synergies of every restart, columns matched to ``weights_``.
    restart_loss_, restart_n_iter_ : ndarray (n_restarts,)
        Final penalised loss and iterations of every restart.
    scale_ : float
        The RMS the data was divided by (1 without normalisation).
    n_synergies_, muscle_names_, selection_, n_features_in_, feature_names_in_
        As for NMF.
    components_ : ndarray (n_synergies, n_muscles)
        ``weights_.T`` (scikit-learn's layout).
    dropped_latents_ : dict or None
        None after ``fit``; on a model returned by :meth:`drop_silent_latents`, the columns
        dropped (indices in the model they were dropped from), their energy shares and the
        threshold.

    Notes
    -----
    **Choosing the L1 weight (``l1="auto"``).** Held-out reconstruction error cannot choose it:
    every basis of the synergy span reconstructs the data equally well, and the penalty only
    shrinks the activations, so held-out error always prefers ``l1 = 0`` (it is recorded in
    ``cv_["heldout_mse"]`` all the same). What the penalty buys is *identification*: without it
    the basis is arbitrary and depends on the starting point and the sample. So the criterion
    is stability (as in stability-based model selection; Lange et al. 2004, Wu et al. 2016):
    the data are cut into ``cv_folds`` contiguous blocks, one fit leaves out each block,
    starting from NMF of its training blocks rotated at random inside the synergy span, and
    the L1 weight whose fits agree best (largest mean pairwise matched cosine) is chosen; ties
    within one standard error of the best (the SD of the pairwise cosines over the square root
    of their number; at least ``stability_tol``) go to the larger weight (the sparser, more
    identified solution: the one-SE rule). On long recordings the error is tiny and the rule
    is the plain maximum; on short ones the fold fits differ by more than the L1 weight moves
    them, and the rule keeps the seed from choosing the weight.
    The fold fits and the full-data restarts run in the same batched L-BFGS run, stepping
    through the grid in ascending order (each fit starting from the previous one).

    **Default configuration, and the numbers behind it.** Untied weights, NMF start,
    ``l1="auto"`` over ``DEFAULT_L1_GRID`` (0.003 to 0.3; 0 is left out because it does not
    identify the basis, and the path starts at 0.003 straight from NMF). On simulated EMG
    (``examples/paper_simulation.py``: 12 muscles x 4000 samples, 4 synergies each with a
    NegCp of 0.3, 5 seeds) the matched cosine with the true synergies was 0.999 at 20 dB,
    30 dB and without noise and 0.992 at 10 dB (subspace similarity >= 0.997), against
    0.87-0.90 for the reference RLVM (subspace 0.985-1.000: right span, rotated basis) and
    0.78-0.81 for NMF (subspace 0.82-0.83). During development, on 3 seeds at 20 dB
    (12 x 3000, L1 raised along a path): untied + NMF start + L1 0.01-0.1 gave 0.996-0.999;
    the same with tied weights 0.79-0.95 (a tied encoder cannot produce sparse activations
    and keep the fit); untied with random starts and L1 anywhere from -0.08 to 0.999 (a
    latent is often silenced for good); NMF start without L1 0.81-0.94.
    The chosen L1 grows with the noise (0.1 at 20 dB and above, 0.1-0.3 at 10 dB, with
    4000 samples), as did the fixed value that was best against the truth in development.
    The price: the L1 penalty shrinks the activations, so the VAF is a little lower than the
    reference RLVM's (0.988 against 0.995 at 20 dB).
    """

    method = "rlvm"
    nonnegative = False

    _parameter_constraints: dict = {
        **SynergyModel._parameter_constraints,
        "tied": ["boolean"],
        "init": [StrOptions(set(INITS))],
        "l1": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "l1_grid": ["array-like", None],
        "l2_weights": [Interval(Real, 0, None, closed="left")],
        "l2_biases": [Interval(Real, 0, None, closed="left")],
        "loss": [StrOptions(set(LOSSES))],
        "latents": [StrOptions(set(LATENTS))],
        "smoothness": [Interval(Real, 0, None, closed="left")],
        "refit_l1": [Interval(Real, 0, None, closed="left")],
        "n_restarts": [Interval(Integral, 1, None, closed="left")],
        "cv_folds": [Interval(Integral, 1, None, closed="left")],
        "stability_tol": [Interval(Real, 0, None, closed="left")],
        "path_samples": [Interval(Integral, 10, None, closed="left"), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "history_size": [Interval(Integral, 1, None, closed="left")],
        "tol_grad": [Interval(Real, 0, None, closed="left")],
        "tol_change": [Interval(Real, 0, None, closed="left")],
        "normalize": ["boolean"],
        "device": "no_validation",  # checked by PyTorch (_rlvm_core._resolve_device)
        "dtype": "no_validation",  # str, NumPy or torch type (_rlvm_core._resolve_dtype)
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
        "selection": [StrOptions(set(METHODS))],
    }

    def __init__(
        self,
        n_synergies: int | str = 4,
        *,
        tied: bool = False,
        init: str = "nmf",
        l1: float | str = "auto",
        l1_grid: tuple | list | None = None,
        l2_weights: float = 1e-4,
        l2_biases: float = 1e-5,
        loss: str = "gaussian",
        latents: str = "encoder",
        smoothness: float = 0.0,
        refit_l1: float = 0.0,
        n_restarts: int = 3,
        cv_folds: int = 4,
        stability_tol: float = 5e-4,
        path_samples: int | None = PATH_SAMPLES,
        max_iter: int = 1000,
        history_size: int = 100,
        tol_grad: float = 1e-7,
        tol_change: float = 1e-9,
        normalize: bool = True,
        device: str = "cpu",
        dtype: str = "float64",
        n_threads: int | None = 1,
        random_state: int | np.random.Generator | None = None,
        selection: str = DEFAULT_SELECTION,
        selection_params: dict | None = None,
    ):
        self.n_synergies = n_synergies
        self.tied = tied
        self.init = init
        self.l1 = l1
        self.l1_grid = l1_grid
        self.l2_weights = l2_weights
        self.l2_biases = l2_biases
        self.loss = loss
        self.latents = latents
        self.smoothness = smoothness
        self.refit_l1 = refit_l1
        self.n_restarts = n_restarts
        self.cv_folds = cv_folds
        self.stability_tol = stability_tol
        self.path_samples = path_samples
        self.max_iter = max_iter
        self.history_size = history_size
        self.tol_grad = tol_grad
        self.tol_change = tol_change
        self.normalize = normalize
        self.device = device
        self.n_threads = n_threads
        self.dtype = dtype
        self.random_state = random_state
        self.selection = selection
        self.selection_params = selection_params

    # ------------------------------------------------------------------------------------------
    @classmethod
    def reference(cls, n_synergies: int | str = 4, **changes: Any) -> RLVM:
        """The configuration of Whiteway's reference code (see the module docstring).

        Tied weights, random uniform start, no L1, Gaussian loss, L2 1e-4 / 1e-5, L-BFGS with
        1000 iterations and history 100, one fit (``n_restarts=1``), latents from the encoder.
        Keyword arguments change any parameter (e.g. ``n_restarts=10``).
        """
        params: dict[str, Any] = dict(
            tied=True,
            init="random",
            l1=0.0,
            l2_weights=1e-4,
            l2_biases=1e-5,
            loss="gaussian",
            latents="encoder",
            n_restarts=1,
            max_iter=1000,
            history_size=100,
        )
        params.update(changes)
        return cls(n_synergies, **params)

    def _check_params(self) -> None:
        super()._check_params()
        if isinstance(self.l1, str) and self.cv_folds < 2:
            raise InputError(
                f"l1='auto' needs at least 2 folds, got {self.cv_folds}", obj="cv_folds"
            )
        grid = self._grid()
        if len(grid) == 0 or any((not np.isfinite(g)) or g < 0 for g in grid):
            raise InputError(f"must be non-negative numbers, got {self.l1_grid!r}", obj="l1_grid")
        from ._rlvm_core import _resolve_device, _resolve_dtype

        _resolve_device(self.device)
        _resolve_dtype(self.dtype)

    def _positive_only(self) -> bool:
        return self.loss == "poisson"

    def _grid(self) -> list[float]:
        grid = DEFAULT_L1_GRID if self.l1_grid is None else self.l1_grid
        try:
            return sorted({float(g) for g in np.atleast_1d(np.asarray(grid, dtype=float))})
        except (TypeError, ValueError):
            raise InputError(f"must be numbers, got {grid!r}", obj="l1_grid") from None

    def _fit_kw(self) -> dict[str, Any]:
        return dict(
            loss=self.loss,
            l2_weights=float(self.l2_weights),
            l2_biases=float(self.l2_biases),
            max_iter=int(self.max_iter),
            history_size=int(self.history_size),
            tol_grad=float(self.tol_grad),
            tol_change=float(self.tol_change),
            device=self.device,
            dtype=self.dtype,
        )

    def _path(self, l1: float) -> list[float]:
        """Continuation path to a fixed L1 weight: the grid values below it, then it."""
        if l1 <= 0:
            return [0.0]
        return [g for g in self._grid() if g < l1] + [float(l1)]

    def _starts(self, x: np.ndarray, k: int, n: int, seed: int, *, rotate_first: bool = False):
        from ._rlvm_core import _Layout, nmf_init, random_init, rotate_starts

        layout = _Layout(x.shape[1], k, bool(self.tied))
        if self.init == "nmf":
            x0 = nmf_init(x, k, n, tied=bool(self.tied), seed=seed)
            return rotate_starts(x0, layout, seed + 1, keep_first=not rotate_first)
        return random_init(x.shape[1], k, n, tied=bool(self.tied), seed=seed)

    # ------------------------------------------------------------------------------------------
    def _prepare(self, emg: EMG | np.ndarray) -> tuple[np.ndarray, list[str] | None]:
        data, names = self._validate_emg(emg, reset=True, min_times=4)
        if not np.any(data != 0):
            raise InputError("all samples are zero; nothing to factorize", obj="emg")
        flat = np.flatnonzero(np.ptp(data, axis=0) == 0)
        if flat.size:
            which = [names[c] for c in flat] if names else flat.tolist()
            raise InputError(f"flat (constant) channel(s) {which}; remove them first", obj="emg")
        return data, names

    def fit(self, emg: EMG | np.ndarray, y: Any = None) -> RLVM:
        """Fit the synergies to EMG.

        Parameters
        ----------
        emg
            :class:`~nwb_synergy.EMG` or array (n_times, n_muscles), usually the conditioned
            (non-negative) envelopes; signed data is accepted with the Gaussian loss.
        y
            Ignored (scikit-learn convention).

        Returns
        -------
        RLVM
            ``self``, fitted.
        """
        from ._rlvm_core import torch_threads

        self._check_params()
        with torch_threads(self.n_threads):
            return self._fit(emg)

    def _fit(self, emg: EMG | np.ndarray) -> RLVM:
        from ._rlvm_core import _Layout, _seed, fit_path

        data, names = self._prepare(emg)
        n_times, n_muscles = data.shape
        k, self.selection_ = resolve_n_synergies(self, data)

        scale = (
            float(np.sqrt(np.mean(data**2)))
            if (self.normalize and self.loss == "gaussian")
            else 1.0
        )
        x_all = data / scale
        step = 1
        if self.path_samples is not None and n_times > int(self.path_samples):
            step = -(-n_times // int(self.path_samples))
        x = x_all[::step]
        n_times = x.shape[0]
        seed = _seed(self.random_state)
        layout = _Layout(n_muscles, k, bool(self.tied))
        starts = self._starts(x, k, int(self.n_restarts), seed)
        if self.l1 == "auto":
            folds = int(self.cv_folds)
            if n_times < 10 * folds:
                raise InputError(
                    f"too few samples ({n_times}) for l1='auto' with {folds} folds "
                    f"(at least {10 * folds}); give l1 a number",
                    obj="emg",
                )
            edges = np.linspace(0, n_times, folds + 1).astype(int)
            masks = np.ones((folds, n_times))
            fold_starts = []
            for f in range(folds):
                masks[f, edges[f] : edges[f + 1]] = 0.0
                train = x[masks[f] > 0]
                fold_starts.append(
                    self._starts(train, k, 1, seed + 7919 * (f + 1), rotate_first=True)
                )
            path = fit_path(
                x,
                starts,
                self._grid(),
                k=k,
                tied=bool(self.tied),
                fold_starts=np.concatenate(fold_starts),
                fold_masks=masks,
                stability_tol=float(self.stability_tol),
                **self._fit_kw(),
            )
            self.cv_ = {
                "l1_grid": path.grid.tolist(),
                "stability": path.stability.tolist(),
                "stability_se": path.stability_se.tolist(),
                "heldout_mse": path.heldout_mse.tolist(),
                "fold_edges": edges.tolist(),
                "chosen": int(path.chosen),
                "criterion": "the largest l1 whose stability (mean pairwise matched cosine of "
                "fold fits) is within one standard error of the best (at least "
                f"{self.stability_tol})",
            }
        else:
            path = fit_path(
                x, starts, self._path(float(self.l1)), k=k, tied=bool(self.tied), **self._fit_kw()
            )
            self.cv_ = None
        self.l1_ = float(path.grid[path.chosen])
        res = path.fit
        if step > 1:  # the chosen weight on every sample, from the thinned path's solutions
            res = fit_path(
                x_all, res.params, [self.l1_], k=k, tied=bool(self.tied), **self._fit_kw()
            ).fit
            if self.cv_ is not None:
                self.cv_["path_step"] = int(step)
        self._store(data, x_all, scale, layout, res, names)
        return self

    def _store(self, data, x, scale, layout, res, names) -> None:
        from ._rlvm_core import _split, unit_columns

        best = int(np.argmin(np.where(np.isfinite(res.loss), res.loss, np.inf)))
        self._params = np.array(res.params[best], dtype=float)  # scaled units, fit order
        w1, d, b1, b2 = _split(res.params[best], layout)
        d_unit, norms = unit_columns(d)
        dead = norms <= 0
        if dead.any():
            warnings.warn(
                f"RLVM: synergy/ies {np.flatnonzero(dead).tolist()} ended inactive (zero weights)",
                RuntimeWarning,
                stacklevel=3,
            )
        # activations in data units with unit-norm weights: Z_data = scale * Z * norm
        enc_w = w1 * norms
        enc_b = scale * b1 * norms
        lin = data @ enc_w
        z = np.maximum(lin + enc_b, 0.0)
        # latents the L1 penalty silenced: the optimizer only approaches zero asymptotically,
        # so a latent whose part of the reconstruction carries less than SILENT_SHARE of the
        # data's energy is switched off exactly (encoder bias lowered until it is zero on every
        # training sample)
        share = latent_energy_share(z, d_unit, data)
        for j in np.flatnonzero((share > 0) & (share < SILENT_SHARE)):
            enc_b[j] = min(enc_b[j], -float(np.max(lin[:, j])))
            z[:, j] = 0.0
        order = np.argsort(-z.std(axis=0), kind="stable")
        self._params_columns = order  # column of _params (fit order) of each synergy
        self.weights_ = np.ascontiguousarray(d_unit[:, order])
        self.encoder_weights_ = np.ascontiguousarray(enc_w[:, order])
        self.encoder_bias_ = np.ascontiguousarray(enc_b[order])
        self.offset_ = b2 * scale
        self.activity_ = _activation_shares(z[:, order])
        self.scale_ = scale
        self.n_synergies_ = int(layout.k)
        self.muscle_names_ = names
        self.loss_ = float(res.loss[best])
        self.n_iter_ = int(res.n_iter[best])
        self.stop_reason_ = res.reason[best]
        self.restart_loss_ = np.asarray(res.loss, dtype=float)
        self.restart_n_iter_ = np.asarray(res.n_iter)
        rw = []
        for r in range(res.params.shape[0]):
            dr = unit_columns(_split(res.params[r], layout)[1])[0]
            rw.append(dr[:, match_columns(self.weights_, dr)[0]])
        self.restart_weights_ = np.stack(rw)
        self.dropped_latents_ = None
        if self.latents == "refit":
            self.activations_ = self._refit(data)
        else:
            self.activations_ = np.ascontiguousarray(z[:, order])
        self._set_fit_scores(data)
        self.offset_vaf_ = metrics.vaf(data, np.broadcast_to(self.offset_, data.shape))

    # ------------------------------------------------------------------------------------------
    def _refit(self, data: np.ndarray) -> np.ndarray:
        from ._rlvm_core import refit_latents

        x = data / self.scale_
        start = np.maximum(data @ self.encoder_weights_ + self.encoder_bias_, 0.0) / self.scale_
        z = refit_latents(
            x,
            self.weights_,
            self.offset_ / self.scale_,
            l1=float(self.refit_l1),
            smoothness=float(self.smoothness),
            start=start,
        )
        return z * self.scale_

    def _activations(self, data: np.ndarray) -> np.ndarray:
        """Activations of checked data: with ``latents="encoder"`` (default) the encoder of the
        fitted model, ``relu(emg @ encoder_weights_ + encoder_bias_)``, the same function that
        produced ``activations_`` (so ``transform(training data) == activations_``); with
        ``latents="refit"`` the activations refitted on the fixed synergies and offset
        (non-negative, with the ``refit_l1`` and ``smoothness`` penalties)."""
        if self.latents == "refit":
            return self._refit(data)
        return np.maximum(data @ self.encoder_weights_ + self.encoder_bias_, 0.0)

    def fit_transform(self, emg: EMG | np.ndarray, y: Any = None) -> np.ndarray:
        """Fit and return the activations of the training data (n_times, n_synergies).

        ``activations_``, which is what ``fit(emg).transform(emg)`` computes again.
        """
        return self.fit(emg).activations_

    def inverse_transform(self, activations: np.ndarray) -> np.ndarray:
        """Reconstruction ``activations @ weights_.T + offset_`` (Poisson: its softplus)."""
        out = super().inverse_transform(activations)
        if self.loss == "poisson":
            out = np.logaddexp(0.0, out / self.scale_) * self.scale_
        return out

    def provenance(self) -> dict[str, Any]:
        out = super().provenance()
        out.update(
            l1=float(self.l1_),
            offset_vaf_uncentered=float(self.offset_vaf_),
            n_iter=int(self.n_iter_),
            loss=float(self.loss_),
            restart_loss=[float(v) for v in self.restart_loss_],
            scale=float(self.scale_),
        )
        if self.cv_ is not None:
            out["l1_cv"] = self.cv_
        if self.dropped_latents_ is not None:
            out["dropped_latents"] = copy.deepcopy(self.dropped_latents_)
        return out

    def drop_silent_latents(self, emg: EMG | np.ndarray, min_share: float = SILENT_SHARE) -> RLVM:
        """A new fitted RLVM without the latents that (nearly) never contribute.

        A latent is dropped when its part of the reconstruction, ``activation_k * weights_k``,
        carries less than ``min_share`` of the energy (sum of squares) of the data
        (:func:`latent_energy_share`): what the L1 penalty leaves of a synergy the data do
        not need. Every fitted attribute with a synergy axis (``SYNERGY_AXIS``) loses those
        columns (with ``latents="refit"`` the kept activations are not refitted);
        ``activity_`` is renormalised, ``vaf_`` and ``r2_`` are recomputed on the data,
        ``provenance()`` records the new number of synergies and scores and
        ``dropped_latents``; ``loss_`` and the ``restart_*`` losses stay those of the fit.
        The model itself is not changed, nor are its parameters (``n_synergies`` is the number
        fitted; ``n_synergies_`` the number kept). When every latent is silent, none is
        dropped.

        Parameters
        ----------
        emg
            The EMG the model was fitted on (:class:`~nwb_synergy.EMG` or array
            (n_times, n_muscles)).
        min_share
            Threshold on the share of the data's energy (default ``SILENT_SHARE``, 1e-3, the
            one ``fit`` switches latents off with).

        Returns
        -------
        RLVM
            The pruned copy; its ``dropped_latents_`` is ``{"columns", "energy_share",
            "min_share"}`` (columns of this model, empty when none is dropped).
        """
        from ._rlvm_core import _Layout, select_latents

        data, _ = self._validate_emg(emg, reset=False)
        if data.shape[0] != self.activations_.shape[0]:
            raise InputError(
                f"the EMG has {data.shape[0]} samples but the model was fitted on "
                f"{self.activations_.shape[0]}; pass the EMG it was fitted on",
                obj="emg",
            )
        if isinstance(min_share, bool) or not (
            isinstance(min_share, (int, float, np.floating)) and 0 <= min_share < 1
        ):
            raise InputError(f"must be a number in [0, 1), got {min_share!r}", obj="min_share")
        share = latent_energy_share(self.activations_, self.weights_, data)
        silent = np.flatnonzero(share < min_share)
        if silent.size == share.size:
            silent = silent[:0]
        keep = np.setdiff1d(np.arange(share.size), silent)

        pruned = copy.copy(self)
        others = {k: v for k, v in vars(self).items() if k not in SYNERGY_AXIS}
        pruned.__dict__.update(copy.deepcopy(others))
        for name, axis in SYNERGY_AXIS.items():
            setattr(pruned, name, np.take(getattr(self, name), keep, axis=axis))
        pruned.activity_ = _activation_shares(pruned.activations_)
        pruned.n_synergies_ = int(keep.size)
        layout = _Layout(data.shape[1], int(share.size), bool(self.tied))
        fit_columns = np.sort(self._params_columns[keep])
        pruned._params = select_latents(self._params, layout, fit_columns)
        pruned._params_columns = np.searchsorted(fit_columns, self._params_columns[keep])
        pruned._set_fit_scores(data)
        pruned.dropped_latents_ = {
            "columns": [int(i) for i in silent],
            "energy_share": [float(share[i]) for i in silent],
            "min_share": float(min_share),
        }
        return pruned

    # ------------------------------------------------------------------------------------------
    def fit_resamples(
        self,
        emg: EMG | np.ndarray,
        sample_weight: np.ndarray,
        *,
        random_state: int | np.random.Generator | None = None,
    ) -> np.ndarray:
        """Refit the model on weighted copies of the data, all in one batch (for bootstraps).

        Each row of ``sample_weight`` (n_resamples, n_times) gives how many times every sample
        enters a resample (a block bootstrap's counts). Every refit keeps the model's
        configuration and its L1 weight ``l1_`` (not chosen again) and starts from the fitted
        solution rotated at random inside the synergy span (an orthogonal map
        ``expm(A - A^T)``, A Gaussian with SD 0.3), so that a basis the data and penalty do
        not pin down drifts away while an identified one returns.

        Returns
        -------
        ndarray (n_resamples, n_muscles, n_synergies)
            Unit-norm synergies of every refit, columns matched to ``weights_``.
        """
        from ._rlvm_core import (
            _Layout,
            _seed,
            _split,
            fit_batched,
            rotate_starts,
            torch_threads,
            unit_columns,
        )

        data, _ = self._validate_emg(emg, reset=False)
        sw = np.asarray(sample_weight, dtype=float)
        if (
            sw.ndim != 2
            or sw.shape[1] != data.shape[0]
            or np.any(sw < 0)
            or np.any(sw.sum(axis=1) <= 0)
        ):
            raise InputError(
                f"sample_weight must be non-negative counts of shape (n_resamples, "
                f"{data.shape[0]}) with positive rows, got shape {sw.shape}",
                obj="sample_weight",
            )
        x = data / self.scale_
        k = self.n_synergies_
        layout = _Layout(x.shape[1], k, bool(self.tied))
        starts = np.repeat(self._params[None], sw.shape[0], axis=0)
        starts = rotate_starts(starts, layout, _seed(random_state), keep_first=False)
        with torch_threads(self.n_threads):
            res = fit_batched(
                x,
                starts,
                k=k,
                tied=bool(self.tied),
                l1=self.l1_,
                sample_weight=sw,
                **self._fit_kw(),
            )
        out = []
        for b in range(sw.shape[0]):
            d = unit_columns(_split(res.params[b], layout)[1])[0]
            out.append(d[:, match_columns(self.weights_, d)[0]])
        return np.stack(out)


def latent_energy_share(
    activations: np.ndarray, weights: np.ndarray, data: np.ndarray
) -> np.ndarray:
    """Share of the data's energy carried by each latent's part of the reconstruction.

    Parameters
    ----------
    activations
        (n_times, K).
    weights
        (n_muscles, K).
    data
        (n_times, n_muscles).

    Returns
    -------
    ndarray (K,)
        ``sum((activations[:, k, None] * weights[None, :, k])**2) / sum(data**2)``, i.e.
        ``|activations_k|^2 |weights_k|^2 / |data|^2``.
    """
    acts = np.asarray(activations, dtype=float)
    w = np.asarray(weights, dtype=float)
    total = float(np.sum(np.asarray(data, dtype=float) ** 2))
    return (acts**2).sum(axis=0) * (w**2).sum(axis=0) / max(total, 1e-300)


def _activation_shares(activations: np.ndarray) -> np.ndarray:
    """Share of the activations' energy carried by each column, (K,) (zeros if all zero)."""
    energy = np.sum(activations * activations, axis=0)
    total = float(energy.sum())
    return energy / total if total > 0 else np.zeros(energy.shape)
