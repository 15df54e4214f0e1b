"""
=====================================================
DPA, Finite Aggregation and run-off election compared
=====================================================

Three ways to aggregate partition-trained members, on the same digits and
the same base estimator:

* **DPA** (``spread=1``): ``k`` disjoint partitions, plurality vote.
* **Finite Aggregation** (``spread=d``): rows are hashed into ``k * d``
  buckets and each of the ``k * d`` members trains on ``d`` buckets, so each
  row trains ``d`` members. A poison still touches one bucket; the
  certificate (:func:`~sklearn_certify.bounds.fa_radius`) is often larger.
* **Run-off election** (``election="runoff"``): the two classes with most
  votes go to a second round decided by every member's scores
  (:func:`~sklearn_certify.bounds.runoff_radius`).
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import RidgeClassifier

from sklearn_certify import DPAClassifier
from sklearn_certify.datasets import load_digits
from sklearn_certify.metrics import certified_accuracy_curve, median_certified_radius
from sklearn_certify.plotting import plot_certified_accuracy

X, y = load_digits(split="train")
X_test, y_test = load_digits(split="test")
base = RidgeClassifier()
k = 30
settings = {
    "DPA": dict(),
    "FA, d=4": dict(spread=4),
    "DPA + run-off": dict(election="runoff"),
    "FA, d=4 + run-off": dict(spread=4, election="runoff"),
}
curves = {}
for name, params in settings.items():
    clf = DPAClassifier(base, n_partitions=k, random_state=0, **params).fit(X, y)
    cert = clf.certify(X_test)
    curves[name] = certified_accuracy_curve(y_test, cert, radii=np.arange(k // 2 + 1))
    print(
        f"{name:<18} members {len(clf.estimators_):>3}  clean accuracy "
        f"{np.mean(cert.prediction == y_test):.3f}  median radius "
        f"{median_certified_radius(y_test, cert):.0f}"
    )

# %%
# Certified accuracy curves
# -------------------------
plot_certified_accuracy(curves, xlabel="poisoned training samples", title=f"k={k}")
plt.show()
