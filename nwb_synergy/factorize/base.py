"""What NMF and RLVM share: input checks, parameters, reconstruction and fit measures.

The estimators are scikit-learn estimators (``BaseEstimator``, ``TransformerMixin``):
parameters are stored unchanged by ``__init__`` and checked by ``fit`` against the declarative
``_parameter_constraints``, ``fit`` returns ``self``, learned attributes end in ``_``. They
pass :func:`sklearn.utils.estimator_checks.check_estimator`, work in pipelines,
:class:`~sklearn.model_selection.GridSearchCV` and ``cross_val_score`` (scored by
:meth:`SynergyModel.score`, the uncentered VAF), and ``set_output(transform="pandas")``.
They also accept an :class:`~nwb_synergy.EMG` wherever an array is accepted.

Attributes every fitted model has
---------------------------------
weights_ : ndarray (n_muscles, n_synergies)
    Synergy weights, unit-norm columns (RLVM's may be negative).
components_ : ndarray (n_synergies, n_muscles)
    ``weights_.T``, the scikit-learn view of the weights (as ``sklearn.decomposition.NMF``).
activations_ : ndarray (n_times, n_synergies)
    Non-negative activation coefficients of the training data.
offset_ : ndarray (n_muscles,)
    Constant added to every reconstructed sample (zeros for NMF, the decoder bias for RLVM).
vaf_, r2_ : float
    Uncentered VAF and centered R^2 of the training fit (see :mod:`.metrics`).
n_synergies_ : int
    Number of synergies of the fit (chosen by the model-order rule when ``"auto"``).
muscle_names_ : list of str or None
    Names of the muscles, when the training data was an :class:`~nwb_synergy.EMG` or a
    DataFrame with string column names.
n_features_in_ : int
    Number of muscles seen in ``fit``.
feature_names_in_ : ndarray of str
    Column names of the training DataFrame (only when fitted on one).
"""

from __future__ import annotations

import re
from numbers import Integral
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.exceptions import NotFittedError as _SklearnNotFittedError
from sklearn.utils._param_validation import Interval, InvalidParameterError
from sklearn.utils.validation import check_array, validate_data

from ..errors import InputError, InputTypeError
from ..provenance import jsonable
from ..signals import EMG
from . import metrics

#: accepted ``random_state`` values: None, a seed, or a NumPy generator
RANDOM_STATE_CONSTRAINT = [None, Interval(Integral, 0, None, closed="left"), np.random.Generator]


class NotFittedError(InputError, _SklearnNotFittedError):
    """A method that needs a fitted model was called before ``fit`` (also scikit-learn's
    :class:`~sklearn.exceptions.NotFittedError`)."""


class ParameterError(InputError, InvalidParameterError):
    """A constructor parameter has a value the estimator does not accept (also
    scikit-learn's ``InvalidParameterError``)."""


def check_n_synergies(
    value: Any,
    *,
    n_muscles: int | None = None,
    auto: bool = True,
    obj: str = "n_synergies",
) -> int | str:
    """Check a number of synergies: a positive integer, or ``"auto"``.

    Parameters
    ----------
    value
        The number of synergies asked for.
    n_muscles
        When given, the number must not exceed it.
    auto
        Whether ``"auto"`` (chosen by a model-order rule) is accepted.
    obj
        Name of the argument, for the error message.

    Returns
    -------
    int or "auto"

    Raises
    ------
    InputError
        Not a positive integer (nor ``"auto"`` when accepted), or more synergies than muscles.
    """
    if isinstance(value, str) and value == "auto" and auto:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        expected = "a positive integer or 'auto'" if auto else "a positive integer"
        raise InputError(f"must be {expected}, got {value!r}", obj=obj)
    if value < 1:
        raise InputError(f"must be at least 1, got {value}", obj=obj)
    if n_muscles is not None and value > n_muscles:
        raise InputError(
            f"{value} synergies asked for but the EMG has only {n_muscles} muscles "
            f"(n_features = {n_muscles})",
            obj=obj,
        )
    return int(value)


def as_emg_array(
    emg: Any,
    *,
    nonnegative: bool = True,
    min_times: int = 2,
    name: str = "emg",
    estimator: BaseEstimator | None = None,
    reset: bool = True,
) -> tuple[np.ndarray, list[str] | None]:
    """Check EMG for factorization and return it as a float64 array with its muscle names.

    Parameters
    ----------
    emg
        :class:`~nwb_synergy.EMG`, array-like or DataFrame of shape (n_times, n_muscles).
    nonnegative
        Refuse negative samples (NMF needs them non-negative; condition the EMG first).
    min_times
        Fewest samples accepted.
    name
        Name of the object for error messages.
    estimator
        When given, the data is validated for it as scikit-learn does
        (:func:`sklearn.utils.validation.validate_data`): ``reset=True`` records
        ``n_features_in_`` (and ``feature_names_in_`` for a DataFrame), ``reset=False``
        checks the data against them.
    reset
        See ``estimator``.

    Returns
    -------
    data : ndarray (n_times, n_muscles), float64
    names : list of str or None
        Muscle names of an EMG, or the string column names of a DataFrame.

    Raises
    ------
    InputError
        Not 2-D, complex, empty, too few samples, NaN or infinite values, negative values
        when refused, another number of muscles than the fit (``reset=False``);
        :class:`InputTypeError` (an InputError) for sparse or non-numeric input.
    """
    file = None
    names = None
    x = emg
    if isinstance(emg, EMG):
        names = list(emg.muscle_names) or None
        if emg.source is not None:
            file = emg.source.file
            if emg.source.series_names:
                name = ", ".join(dict.fromkeys(emg.source.series_names))
        x = emg.to_numpy()
    elif hasattr(emg, "columns"):
        columns = list(emg.columns)
        if columns and all(isinstance(c, str) for c in columns):
            names = columns

    try:
        if not sparse.issparse(x):
            arr = x if hasattr(x, "shape") and hasattr(x, "dtype") else np.asarray(x)
            shape = arr.shape
            if len(shape) != 2:
                raise InputError(
                    f"EMG must be 2-D (n_times, n_muscles), got shape {shape}. Reshape your "
                    "data: one row per sample, one column per muscle",
                    file=file,
                    obj=name,
                )
            if np.iscomplexobj(arr):
                raise InputError(
                    "Complex data not supported: EMG must be real", file=file, obj=name
                )
            if not reset and estimator is not None and hasattr(estimator, "n_features_in_"):
                expected = estimator.n_features_in_
                if shape[1] != expected:
                    raise InputError(
                        f"the EMG has {shape[1]} muscles but the model was fitted on {expected} "
                        f"(X has {shape[1]} features, but {type(estimator).__name__} is "
                        f"expecting {expected} features as input)",
                        file=file,
                        obj=name,
                    )
        checks = dict(dtype=np.float64, ensure_min_samples=min_times, ensure_all_finite=False)
        if estimator is not None:
            data = validate_data(estimator, x, reset=reset, **checks)
        else:
            data = check_array(x, **checks)
    except InputError:
        raise
    except TypeError as err:  # sparse or non-numeric input
        raise InputTypeError(str(err), file=file, obj=name) from None
    except ValueError as err:  # empty, too few samples, strings, ...
        raise InputError(str(err), file=file, obj=name) from None

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
            f"Negative values in data: negative samples in muscle(s) {which}; factorize the "
            "conditioned (rectified, enveloped) EMG, e.g. condition_emg(emg)",
            file=file,
            obj=name,
        )
    return data, names


class SynergyModel(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Base class of the synergy estimators (not used directly)."""

    #: short method name stored with the results ("nmf", "rlvm")
    method: str = ""
    #: whether the weights are constrained to be non-negative
    nonnegative: bool = True

    #: scikit-learn parameter constraints shared by the estimators (``n_synergies`` is
    #: checked by :func:`check_n_synergies`, ``selection`` by each estimator)
    _parameter_constraints: dict = {
        "n_synergies": "no_validation",
        "random_state": RANDOM_STATE_CONSTRAINT,
        "selection_params": [dict, None],
    }

    # -- parameters --------------------------------------------------------------------------
    def _check_params(self) -> None:
        """Check the constructor parameters (``_parameter_constraints``, then
        :func:`check_n_synergies`); an InputError names the parameter."""
        try:
            self._validate_params()
        except InvalidParameterError as err:
            found = re.search(r"The '(\w+)' parameter", str(err))
            raise ParameterError(str(err), obj=found.group(1) if found else None) from None
        check_n_synergies(self.n_synergies)

    def _clone(self, **changes: Any) -> SynergyModel:
        """An unfitted copy with some parameters changed (parameters shared, not copied)."""
        params = self.get_params(deep=False)
        params.update(changes)
        return type(self)(**params)

    def _positive_only(self) -> bool:
        """Whether the data must be non-negative."""
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = self._positive_only()
        return tags

    # -- data --------------------------------------------------------------------------------
    def _validate_emg(
        self, emg: Any, *, reset: bool, min_times: int = 1
    ) -> tuple[np.ndarray, list[str] | None]:
        """The data as a float64 array, checked for this estimator (see :func:`as_emg_array`)."""
        if not reset:
            self._check_fitted()
        return as_emg_array(
            emg,
            nonnegative=self._positive_only(),
            min_times=min_times,
            estimator=self,
            reset=reset,
        )

    # -- fitted state ------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(emg) first",
                obj=type(self).__name__,
            )

    @property
    def components_(self) -> np.ndarray:
        """The weights as scikit-learn lays them out, (n_synergies, n_muscles): ``weights_.T``."""
        return self.weights_.T

    @property
    def _n_features_out(self) -> int:
        """Number of output features of :meth:`transform` (for ``get_feature_names_out``)."""
        return int(self.weights_.shape[1])

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

    def score(self, emg: Any, y: Any = None) -> float:
        """Uncentered VAF of ``emg`` reconstructed from its activations (:meth:`transform`).

        The default score of scikit-learn's model selection (``GridSearchCV``,
        ``cross_val_score``): held-out data reconstructed with the fitted synergies.

        Parameters
        ----------
        emg
            :class:`~nwb_synergy.EMG` or array (n_times, n_muscles).
        y
            Ignored (scikit-learn convention).
        """
        data, _ = self._validate_emg(emg, reset=False)
        return metrics.vaf(data, self.inverse_transform(self._activations(data)))

    def _activations(self, data: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """Activations of checked data (what :meth:`transform` returns, always an array)."""
        raise NotImplementedError

    def transform(self, emg: Any) -> np.ndarray:
        """Activations of EMG with the fitted weights, (n_times, n_synergies).

        Parameters
        ----------
        emg
            :class:`~nwb_synergy.EMG` or array (n_times, n_muscles), same muscles as the fit.
        """
        data, _ = self._validate_emg(emg, reset=False)
        return self._activations(data)

    def _set_fit_scores(self, data: np.ndarray) -> None:
        reconstruction = self.inverse_transform(self.activations_)
        self.vaf_ = metrics.vaf(data, reconstruction)
        self.r2_ = metrics.r2(data, reconstruction)

    def provenance(self) -> dict[str, Any]:
        """What is stored with the results: method, parameters and fit measures (JSON-able)."""
        self._check_fitted()
        params = {k: jsonable(v) for k, v in self.get_params(deep=False).items()}
        out = {
            "method": self.method,
            "nonnegative": self.nonnegative,
            "parameters": params,
            "n_synergies": int(self.weights_.shape[1]),
            "vaf_uncentered": float(self.vaf_),
            "r2_centered": float(self.r2_),
        }
        if getattr(self, "selection_", None) is not None:
            out["model_order"] = self.selection_.to_dict()
        return out
