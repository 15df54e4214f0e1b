"""Certifying estimators that sit at the end of a scikit-learn Pipeline.

A step before the certified estimator that was fit on the (possibly poisoned)
training set moves every row when one training sample changes, so partition
certificates no longer mean what they say (the "trusted preprocessing" rule of
the user guide's "Rules that keep a certificate honest").
Steps are safe when they are stateless (their ``requires_fit`` tag is False,
e.g. ``FunctionTransformer``) or fit on trusted data and wrapped in
:class:`sklearn.frozen.FrozenEstimator`.
"""

from __future__ import annotations

import warnings

from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils import get_tags

from sklearn_certify._certificate import Certificate

__all__ = ["UnsoundPipelineWarning", "certify", "unsound_pipeline_steps"]


class UnsoundPipelineWarning(UserWarning):
    """A fitted, non-frozen step precedes a certified estimator in a Pipeline."""


def unsound_pipeline_steps(estimator) -> list[str]:
    """Names of Pipeline steps that were fit on the training data before the final step.

    Parameters
    ----------
    estimator : estimator
        Any estimator; only :class:`~sklearn.pipeline.Pipeline` objects
        (nested ones too) can have unsound steps.

    Returns
    -------
    list of str
        Step names (nested as ``"outer__inner"``) that are neither stateless
        nor wrapped in ``FrozenEstimator``; empty when the shape is sound.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import FunctionTransformer, StandardScaler
    >>> from sklearn.linear_model import LogisticRegression
    >>> unsound_pipeline_steps(make_pipeline(StandardScaler(), LogisticRegression()))
    ['standardscaler']
    >>> unsound_pipeline_steps(make_pipeline(FunctionTransformer(), LogisticRegression()))
    []
    """
    if not isinstance(estimator, Pipeline):
        return []
    unsound = []
    for name, step in estimator.steps[:-1]:
        if step is None or step == "passthrough" or isinstance(step, FrozenEstimator):
            continue
        if isinstance(step, Pipeline):
            inner = [f"{name}__{n}" for n in unsound_pipeline_steps(step)]
            last_name, last = step.steps[-1]
            if not (
                last is None
                or last == "passthrough"
                or isinstance(last, FrozenEstimator)
                or not get_tags(last).requires_fit
            ):
                inner.append(f"{name}__{last_name}")
            unsound.extend(inner)
        elif get_tags(step).requires_fit:
            unsound.append(name)
    return unsound


def certify(estimator, X) -> Certificate:
    """Call ``estimator.certify(X)``, passing X through a Pipeline's earlier steps.

    Warns with :class:`UnsoundPipelineWarning` when a Pipeline step before the
    certified estimator was fit on the training set and is not frozen: the
    certificate then does not cover poisoning of that step's fit.

    Parameters
    ----------
    estimator : fitted estimator with a ``certify`` method, or a Pipeline ending in one
        The certified model.
    X : array-like
        Samples to certify.

    Returns
    -------
    Certificate
        The final step's certificate for ``X``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_certify import Certificate, certify
    >>> class Constant:
    ...     def certify(self, X):
    ...         n = len(X)
    ...         return Certificate(np.zeros(n), np.ones(n, int), np.zeros(n, bool), "samples")
    >>> certify(Constant(), np.ones((2, 3))).radius.tolist()
    [1, 1]
    """
    if isinstance(estimator, Pipeline):
        unsound = unsound_pipeline_steps(estimator)
        if unsound:
            warnings.warn(
                f"Pipeline steps {unsound} were fit on the training data before the certified "
                "estimator: poisoning can move every row through them, so the certificate does "
                "not cover it. Put data-dependent preprocessing inside the base estimator "
                "(each member fits its own), make it stateless, or fit it on trusted data and "
                "wrap it in sklearn.frozen.FrozenEstimator.",
                UnsoundPipelineWarning,
                stacklevel=2,
            )
        final = estimator.steps[-1][1]
        if len(estimator.steps) > 1:
            X = estimator[:-1].transform(X)
        return certify(final, X)
    if not hasattr(estimator, "certify"):
        raise TypeError(
            f"{type(estimator).__name__} has no certify method; use a certified estimator such "
            "as DPAClassifier (or a Pipeline ending in one)."
        )
    return estimator.certify(X)
