"""What NMF and RLVM share: input checks, parameters, reconstruction and fit measures.

Estimators follow scikit-learn's conventions: parameters are stored unchanged by ``__init__``,
``fit`` returns ``self``, learned attributes end in ``_``.

Attributes every fitted model has
---------------------------------
weights_ : ndarray (n_muscles, n_synergies)
    Synergy weights, unit-norm columns (RLVM's may be negative).
activations_ : ndarray (n_times, n_synergies)
    Non-negative activation coefficients of the training data.
offset_ : ndarray (n_muscles,)
    Constant added to every reconstructed sample (zeros for NMF, the decoder bias for RLVM).
vaf_, r2_ : float
    Uncentered VAF and centered R^2 of the training fit (see :mod:`.metrics`).
n_synergies_ : int
    Number of synergies of the fit (chosen by the model-order rule when ``"auto"``).
muscle_names_ : list of str
    Names of the muscles, when the training data was an :class:`~nwb_synergy.EMG`.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from ..errors import InputError
from ..provenance import jsonable
from ..signals import EMG
from . import metrics


def as_emg_array(
    emg: EMG | np.ndarray,
    *,
    nonnegative: bool = True,
    min_times: int = 2,
    name: str = "emg",
) -> tuple[np.ndarray, list[str] | None]:
    """Check EMG for factorization and return it as a float64 array with its muscle names.

    Parameters
    ----------
    emg
        :class:`~nwb_synergy.EMG` or array of shape (n_times, n_muscles).
    nonnegative
        Refuse negative samples (NMF needs them non-negative; condition the EMG first).
    min_times
        Fewest samples accepted.
    name
        Name of the object for error messages.

    Raises
    ------
    InputError
        Not 2-D, too few samples, NaN or infinite values, or negative values when refused.
    """
    file = None
    names = None
    if isinstance(emg, EMG):
        names = list(emg.muscle_names)
        if emg.source is not None:
            file = emg.source.file
            if emg.source.series_names:
                name = ", ".join(dict.fromkeys(emg.source.series_names))
        data = emg.to_numpy()
    else:
        data = np.asarray(emg, dtype=float)
    if data.ndim != 2:
        raise InputError(
            f"EMG must be 2-D (n_times, n_muscles), got shape {data.shape}", file=file, obj=name
        )
    if data.shape[0] < min_times:
        raise InputError(
            f"too few samples: {data.shape[0]} time points, at least {min_times} needed",
            file=file,
            obj=name,
        )
    bad = ~np.isfinite(data)
    if bad.any():
        cols = np.flatnonzero(bad.any(axis=0))
        which = [names[c] for c in cols] if names else cols.tolist()
        raise InputError(
            f"{int(bad.sum())} NaN or infinite samples in muscle(s) {which}", file=file, obj=name
        )
    if nonnegative and (data < 0).any():
        cols = np.flatnonzero((data < 0).any(axis=0))
        which = [names[c] for c in cols] if names else cols.tolist()
        raise InputError(
            f"negative samples in muscle(s) {which}; factorize the conditioned "
            "(rectified, enveloped) EMG, e.g. condition_emg(emg)",
            file=file,
            obj=name,
        )
    return data, names


def check_n_synergies(n_synergies: int, n_muscles: int, name: str = "n_synergies") -> int:
    """Check a number of synergies against the number of muscles."""
    if isinstance(n_synergies, bool) or not isinstance(n_synergies, (int, np.integer)):
        raise InputError(f"must be a positive integer or 'auto', got {n_synergies!r}", obj=name)
    if n_synergies < 1:
        raise InputError(f"must be at least 1, got {n_synergies}", obj=name)
    if n_synergies > n_muscles:
        raise InputError(
            f"{n_synergies} synergies asked for but the EMG has only {n_muscles} muscles",
            obj=name,
        )
    return int(n_synergies)


class SynergyModel:
    """Base class of the synergy estimators (not used directly)."""

    #: short method name stored with the results ("nmf", "rlvm")
    method: str = ""
    #: whether the weights are constrained to be non-negative
    nonnegative: bool = True

    # -- scikit-learn style parameters -------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, as given."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> SynergyModel:
        """Change constructor parameters (scikit-learn convention)."""
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"{type(self).__name__} has no parameter {key!r}")
            setattr(self, key, value)
        return self

    def _clone(self, **changes: Any) -> SynergyModel:
        """An unfitted copy with some parameters changed."""
        params = self.get_params()
        params.update(changes)
        return type(self)(**params)

    def _resolve_n_synergies(self, data: np.ndarray) -> int:
        """The number of synergies to fit: ``n_synergies`` checked against the muscle count,
        or, when it is ``"auto"``, the one chosen by the model-order rule ``selection`` (with
        ``selection_params``), whose whole curve is kept in ``selection_``."""
        self.selection_ = None
        k = self.n_synergies
        if isinstance(k, str):
            if k != "auto":
                raise InputError(
                    f"must be a positive integer or 'auto', got {k!r}", obj="n_synergies"
                )
            from .order import select_n_synergies

            params = dict(self.selection_params or {})
            params.setdefault("random_state", self.random_state)
            self.selection_ = select_n_synergies(
                data, lambda kk: self._clone(n_synergies=kk), method=self.selection, **params
            )
            k = self.selection_.n_synergies
        return check_n_synergies(k, data.shape[1])

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"

    # -- fitted state ------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise InputError(
                f"this {type(self).__name__} is not fitted yet; call fit(emg) first",
                obj=type(self).__name__,
            )

    def inverse_transform(self, activations: np.ndarray) -> np.ndarray:
        """Reconstruct EMG from activations.

        Parameters
        ----------
        activations
            Array (n_times, n_synergies).

        Returns
        -------
        ndarray (n_times, n_muscles)
            ``activations @ weights_.T + offset_``.
        """
        self._check_fitted()
        activations = np.asarray(activations, dtype=float)
        if activations.ndim != 2 or activations.shape[1] != self.weights_.shape[1]:
            raise InputError(
                f"activations must have shape (n_times, {self.weights_.shape[1]}), "
                f"got {activations.shape}",
                obj="activations",
            )
        offset = getattr(self, "offset_", None)
        out = activations @ self.weights_.T
        return out + offset if offset is not None else out

    def score(self, emg: EMG | np.ndarray) -> float:
        """Uncentered VAF of ``emg`` reconstructed with the fitted weights."""
        data, _ = as_emg_array(emg, nonnegative=self.nonnegative)
        return metrics.vaf(data, self.inverse_transform(self.transform(emg)))

    def _set_fit_scores(self, data: np.ndarray) -> None:
        reconstruction = self.inverse_transform(self.activations_)
        self.vaf_ = metrics.vaf(data, reconstruction)
        self.r2_ = metrics.r2(data, reconstruction)

    def provenance(self) -> dict[str, Any]:
        """What is stored with the results: method, parameters and fit measures (JSON-able)."""
        self._check_fitted()
        params = {k: jsonable(v) for k, v in self.get_params().items()}
        out = {
            "method": self.method,
            "nonnegative": self.nonnegative,
            "parameters": params,
            "n_synergies": int(self.weights_.shape[1]),
            "vaf_uncentered": float(self.vaf_),
            "r2_centered": float(self.r2_),
        }
        return out

    def transform(self, emg: EMG | np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError
