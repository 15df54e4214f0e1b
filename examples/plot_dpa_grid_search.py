"""
==================================================================
Choosing the number of partitions: robustness against accuracy
==================================================================

More partitions allow larger certificates (a radius is at most ``k // 2``)
but each member sees less data, so members and the clean accuracy get
weaker. This is the trade-off of the DPA paper's experiments. A
:class:`~sklearn.model_selection.GridSearchCV` with
:func:`~sklearn_certify.metrics.make_certified_scorer` picks ``k`` for the
attack size you care about.
"""

# %%
# Certified accuracy for several k
# --------------------------------
import warnings

import matplotlib.pyplot as plt
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_certify import DPAClassifier, UnsoundPipelineWarning
from sklearn_certify.datasets import load_digits
from sklearn_certify.metrics import certified_accuracy_curve, make_certified_scorer
from sklearn_certify.plotting import plot_certified_accuracy

X, y = load_digits(split="train")
X_test, y_test = load_digits(split="test")

# The scaler sits *inside* the base estimator: every member fits its own.
base = make_pipeline(StandardScaler(), RidgeClassifier())
curves = {}
for k in (5, 15, 30, 60, 90):
    clf = DPAClassifier(base, n_partitions=k, random_state=0).fit(X, y)
    cert = clf.certify(X_test)
    curves[f"k={k}"] = certified_accuracy_curve(y_test, cert)
    print(
        f"k={k:>3}: clean accuracy {curves[f'k={k}'][1][0]:.3f}, largest radius {cert.radius.max()}"
    )
plot_certified_accuracy(curves, xlabel="poisoned training samples")
plt.show()

# %%
# Grid search for a target attack size
# ------------------------------------
# Score each ``k`` by certified accuracy at radius 8. ``k = 5`` and ``k = 15``
# cannot reach it at all (a radius is at most ``k // 2``). On this grid the
# score still grows up to ``k = 90``, so the search picks the largest ``k``,
# although clean accuracy has started to fall there; members trained on still
# fewer rows would eventually be too weak to agree.
search = GridSearchCV(
    DPAClassifier(base, random_state=0),
    {"n_partitions": [5, 15, 30, 60, 90]},
    scoring=make_certified_scorer(radius=8),
    cv=3,
)
search.fit(X, y)
for k, score in zip(
    search.cv_results_["param_n_partitions"], search.cv_results_["mean_test_score"], strict=True
):
    print(f"k={k:>3}: certified accuracy at radius 8 = {score:.3f}")
print("best:", search.best_params_)

# %%
# Preprocessing goes inside the base estimator
# --------------------------------------------
# A scaler *before* the DPA classifier is fit on all (possibly poisoned) rows:
# one extreme poisoned row shifts the scaler, which moves every row to a new
# hash partition, so the certificate means nothing. The certified scorer and
# :func:`sklearn_certify.certify` warn about that shape.
unsound = make_pipeline(
    StandardScaler(),
    DPAClassifier(RidgeClassifier(), n_partitions=15, random_state=0),
)
unsound.fit(X, y)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    make_certified_scorer(radius=1)(unsound, X_test, y_test)
print([w.category.__name__ for w in caught if issubclass(w.category, UnsoundPipelineWarning)])
