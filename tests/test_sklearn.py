"""NMF and RLVM as scikit-learn estimators: check_estimator, model selection, pandas output."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score, cross_validate
from sklearn.utils import estimator_checks
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

from nwb_synergy.errors import InputError
from nwb_synergy.factorize import metrics
from nwb_synergy.factorize.base import check_n_synergies
from nwb_synergy.factorize.nmf import NMF
from nwb_synergy.factorize.order import DEFAULT_SELECTION, select_n_synergies
from nwb_synergy.factorize.rlvm import RLVM
from nwb_synergy.pipeline import AnalysisOptions
from nwb_synergy.simulate import simulate_synergies

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny problems: threads only contend on a busy machine
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def envelope():
    """3 synergies over 8 muscles, 1200 samples at 20 dB, non-negative weights."""
    return simulate_synergies(8, 3, 1200, negative=False, random_state=3)


# ----------------------------------------------------------------------------------------------
# scikit-learn's own checks
# ----------------------------------------------------------------------------------------------
# The data of check_estimator has 1 to 5 features and 10 to 150 samples, so the instances ask
# for 2 synergies. NMF keeps every other default. RLVM keeps its NMF warm start and an L1
# continuation path (0.003 then 0.01) but not l1="auto": its cross-validation needs 10 samples
# per fold, more than several checks provide; 10 L-BFGS iterations keep it fast.
@parametrize_with_checks(
    [NMF(2), RLVM(2, l1=0.01, n_restarts=1, max_iter=10)],
)
def test_estimators_pass_scikit_learn_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", [NMF(), RLVM(), RLVM.reference()])
def test_default_estimators_are_valid(estimator):
    # the API checks that do not fit, on the estimators as constructed by default
    name = type(estimator).__name__
    for check in (
        estimator_checks.check_estimator_cloneable,
        estimator_checks.check_parameters_default_constructible,
        estimator_checks.check_no_attributes_set_in_init,
        estimator_checks.check_get_params_invariance,
        estimator_checks.check_set_params,
        estimator_checks.check_estimator_repr,
        estimator_checks.check_valid_tag_types,
        estimator_checks.check_mixin_order,
        estimator_checks.check_do_not_raise_errors_in_init_or_set_params,
    ):
        check(name, estimator)
    estimator._check_params()  # the defaults satisfy the parameter constraints
    tags = estimator.__sklearn_tags__()
    assert tags.input_tags.positive_only is isinstance(estimator, NMF)
    assert not tags.input_tags.sparse and not tags.input_tags.allow_nan


def test_tags_say_what_the_estimators_accept():
    x = np.abs(np.random.default_rng(0).standard_normal((60, 4)))
    assert RLVM(loss="poisson").__sklearn_tags__().input_tags.positive_only
    # signed data: refused where the tag says positive only, accepted otherwise
    with pytest.raises(InputError, match="Negative values in data"):
        NMF(2).fit(x - 1.0)
    with pytest.raises(InputError, match="Negative values in data"):
        RLVM(2, loss="poisson", l1=0.0).fit(x - 1.0)
    fitted = RLVM(2, l1=0.0, init="random", n_restarts=1, max_iter=20, random_state=0)
    assert fitted.fit(x - 1.0).weights_.shape == (4, 2)


# ----------------------------------------------------------------------------------------------
# transform, fit_transform, scikit-learn attributes
# ----------------------------------------------------------------------------------------------
def test_fit_transform_equals_fit_then_transform(envelope):
    x = envelope.emg.data
    # NMF stopped after 5 iterations: its activations_ are far from the exact NNLS on its
    # weights, and fit_transform returns the latter, as fit().transform() does
    model = NMF(3, n_restarts=2, max_iter=5, random_state=0)
    h = model.fit_transform(x)
    np.testing.assert_array_equal(
        h, NMF(3, n_restarts=2, max_iter=5, random_state=0).fit(x).transform(x)
    )
    assert np.max(np.abs(model.activations_ - h)) > 1e-2 * np.max(h)
    assert metrics.vaf(x, h @ model.components_) >= model.vaf_
    # converged: the two agree closely
    model = NMF(3, random_state=0)
    h = model.fit_transform(x)
    assert np.max(np.abs(model.activations_ - h)) < 1e-3 * np.max(h)
    # RLVM: the encoder gives the activations of the fit
    rlvm = RLVM(3, l1=0.01, n_restarts=1, max_iter=200, random_state=0)
    z = rlvm.fit_transform(x)
    np.testing.assert_array_equal(z, rlvm.activations_)
    np.testing.assert_allclose(rlvm.transform(x), z, atol=1e-12)
    np.testing.assert_array_equal(rlvm.components_, rlvm.weights_.T)


def test_pandas_output_and_feature_names(envelope):
    names = envelope.emg.muscle_names
    df = pd.DataFrame(envelope.emg.data, columns=names, index=np.arange(1200) * 0.01)
    model = NMF(3, n_restarts=2, random_state=0).set_output(transform="pandas").fit(df)
    assert model.n_features_in_ == 8
    assert list(model.feature_names_in_) == names and model.muscle_names_ == names
    out = model.transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(model.get_feature_names_out()) == ["nmf0", "nmf1", "nmf2"]
    np.testing.assert_array_equal(out.index, df.index)
    np.testing.assert_allclose(
        out.to_numpy(), NMF(3, n_restarts=2, random_state=0).fit(df).transform(df)
    )
    assert model.components_.shape == (3, 8)
    np.testing.assert_array_equal(model.components_, model.weights_.T)
    # columns in another order than in fit: refused (scikit-learn's check), as an InputError
    with pytest.raises(InputError, match="feature names"):
        model.transform(df[names[::-1]])


def test_emg_objects_are_accepted_as_before(envelope):
    emg = envelope.emg
    model = NMF(3, n_restarts=2, random_state=0).fit(emg)
    assert model.muscle_names_ == emg.muscle_names and model.n_features_in_ == 8
    assert not hasattr(model, "feature_names_in_")  # an EMG is not a DataFrame
    np.testing.assert_array_equal(model.transform(emg), model.transform(emg.data))
    assert model.score(emg) == model.score(emg.data)
    array = NMF(3, n_restarts=2, random_state=0).fit(emg.data)
    np.testing.assert_array_equal(array.weights_, model.weights_)
    assert array.muscle_names_ is None


# ----------------------------------------------------------------------------------------------
# model selection
# ----------------------------------------------------------------------------------------------
def test_cross_validation_scores_are_the_held_out_vaf(envelope):
    x = envelope.emg.data
    cv = KFold(3)
    model = NMF(3, n_restarts=3, random_state=0)
    res = cross_validate(model, x, cv=cv, return_estimator=True, return_indices=True)
    for fitted, test, score in zip(
        res["estimator"], res["indices"]["test"], res["test_score"], strict=True
    ):
        held = x[test]
        expected = metrics.vaf(held, fitted.inverse_transform(fitted.transform(held)))
        assert score == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(cross_val_score(model, x, cv=cv), res["test_score"], atol=1e-12)
    assert res["test_score"].min() > 0.95  # the true K reconstructs held-out data well

    rlvm = RLVM(3, l1=0.01, n_restarts=1, max_iter=200, random_state=0)
    res = cross_validate(rlvm, x, cv=cv, return_estimator=True, return_indices=True)
    for fitted, test, score in zip(
        res["estimator"], res["indices"]["test"], res["test_score"], strict=True
    ):
        held = x[test]
        expected = metrics.vaf(held, fitted.inverse_transform(fitted.transform(held)))
        assert score == pytest.approx(expected, abs=1e-12)
    assert res["test_score"].min() > 0.9


def test_grid_search_over_the_number_of_synergies(envelope):
    x = envelope.emg.data
    cv = KFold(3)
    grid = GridSearchCV(NMF(n_restarts=3, random_state=0), {"n_synergies": [1, 2, 3, 4]}, cv=cv)
    grid.fit(x)
    scores = grid.cv_results_["mean_test_score"]
    # the held-out VAF (activations refitted on all muscles) only grows with K, so the grid
    # picks the largest K; the gain stops at the true K = 3
    assert np.all(np.diff(scores) > 0)
    assert scores[2] - scores[1] > 0.02 > scores[3] - scores[2]
    assert grid.best_params_ == {"n_synergies": 4}
    assert grid.best_estimator_.n_synergies_ == 4 and grid.best_estimator_.n_features_in_ == 8
    # the grid's scores are those of the estimator alone
    alone = cross_val_score(NMF(3, n_restarts=3, random_state=0), x, cv=cv)
    np.testing.assert_allclose(
        [grid.cv_results_[f"split{i}_test_score"][2] for i in range(3)], alone, atol=1e-12
    )


# ----------------------------------------------------------------------------------------------
# errors, parameters
# ----------------------------------------------------------------------------------------------
def test_bad_input_gives_input_errors_that_scikit_learn_recognises(envelope):
    x = envelope.emg.data
    for model in (NMF(2), RLVM(2, l1=0.0)):
        with pytest.raises(InputError, match=r"0 sample\(s\)"):
            model.fit(np.empty((0, 3)))
        with pytest.raises(InputError, match=r"0 feature\(s\)"):
            model.fit(np.empty((12, 0)))
        with pytest.raises(InputError, match="1 sample"):
            model.fit(x[:1])
        with pytest.raises(InputError, match="n_features = 1"):
            model.fit(x[:, :1])
        with pytest.raises(InputError, match="Complex data not supported"):
            model.fit(x + 1j)
        with pytest.raises(InputError, match="Reshape your data"):
            model.fit(x[:, 0])
        with pytest.raises(TypeError, match="Sparse") as err:
            model.fit(sparse.csr_matrix(x))
        assert isinstance(err.value, InputError)
        with pytest.raises(SklearnNotFittedError) as err:
            model.transform(x)
        assert isinstance(err.value, InputError)
        with pytest.raises(InvalidParameterError, match="max_iter") as err:
            model.set_params(max_iter=0).fit(x)
        assert isinstance(err.value, InputError) and err.value.obj == "max_iter"


def test_one_check_of_the_number_of_synergies():
    assert check_n_synergies(3) == 3 and check_n_synergies(np.int64(3)) == 3
    assert check_n_synergies("auto") == "auto"
    assert check_n_synergies(4, n_muscles=4) == 4
    for bad, what in [
        (0, "at least 1"),
        (2.5, "positive integer or 'auto'"),
        (True, "positive integer"),
        ("many", "positive integer or 'auto'"),
    ]:
        with pytest.raises(InputError, match=what):
            check_n_synergies(bad)
    with pytest.raises(InputError, match="only 4 muscles"):
        check_n_synergies(5, n_muscles=4)
    with pytest.raises(InputError, match="must be a positive integer, got 'auto'"):
        check_n_synergies("auto", auto=False)
    # the estimators use it
    x = np.abs(np.random.default_rng(0).standard_normal((50, 4)))
    for model in (NMF(0), RLVM(0, l1=0.0)):
        with pytest.raises(InputError, match="n_synergies.*at least 1"):
            model.fit(x)


def test_one_default_model_order_rule():
    assert DEFAULT_SELECTION == "linear_fit"
    defaults = {
        NMF().selection,
        RLVM().selection,
        inspect.signature(select_n_synergies).parameters["method"].default,
        AnalysisOptions().selection,
    }
    assert defaults == {DEFAULT_SELECTION}
