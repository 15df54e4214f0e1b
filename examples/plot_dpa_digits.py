"""
==========================================================
Deep Partition Aggregation on digits with a small CNN
==========================================================

:class:`~sklearn_certify.DPAClassifier` splits the training set into ``k``
partitions by a hash of each image, trains one small convolutional network
(a skorch ``NeuralNetClassifier``) per partition and predicts the plurality
vote. One poisoned training image (inserted or removed) lands in one
partition and can change one vote, so every prediction comes with the number
of poisoned training images it provably survives.

The ``k`` networks are trained together by the vectorized ensemble engine
(``torch.func``), which costs about as much as training one network on all
the data.
"""

# %%
# Train the ensemble
# ------------------
import time

import matplotlib.pyplot as plt
import numpy as np

from sklearn_certify import DPAClassifier
from sklearn_certify.datasets import load_digits
from sklearn_certify.metrics import certified_accuracy_curve, median_certified_radius
from sklearn_certify.nets import make_digits_net
from sklearn_certify.plotting import plot_certified_accuracy

X, y = load_digits(shape="image", split="train")
X_test, y_test = load_digits(shape="image", split="test")
print(X.shape, X.dtype)

net = make_digits_net(max_epochs=30)  # DigitsCNN: two conv blocks and a linear head
clf = DPAClassifier(net, n_partitions=30, engine="vectorized", random_state=0)
start = time.perf_counter()
clf.fit(X, y)
print(f"trained {len(clf.trained_members_)} CNNs in {time.perf_counter() - start:.1f} s")
print("training rows per member:", clf.member_sizes_.min(), "to", clf.member_sizes_.max())
# The members stay stacked (``clf.trained_members_``) and are scored together; each one is an
# ordinary fitted skorch net when you ask for it:
print(type(clf.estimators_[0]).__name__, clf.estimators_[0].module_.__class__.__name__)

# %%
# Certify the test split
# ----------------------
# ``certify`` returns a :class:`~sklearn_certify.Certificate`: the prediction,
# the radius (inserted plus removed training images it survives) and the
# votes behind it.
cert = clf.certify(X_test)
members = clf.predict_members(X_test)
print(f"clean accuracy      {np.mean(cert.prediction == y_test):.3f}")
print(f"mean member accuracy {np.mean(members == y_test[:, None]):.3f}")
print(f"median certified radius {median_certified_radius(y_test, cert):.0f} images")
for i in range(3):
    print(
        f"test image {i}: label {y_test[i]}, prediction {cert.prediction[i]}, "
        f"votes {cert.votes[i].tolist()}, survives {cert.radius[i]} poisoned images"
    )

# %%
# Certified accuracy against attack size
# --------------------------------------
# The fraction of test images that are classified correctly *and* certified
# for at least ``r`` poisoned training images. It cannot exceed zero beyond
# ``k // 2 = 15``.
radii, accuracy = certified_accuracy_curve(y_test, cert)
ax = plot_certified_accuracy(
    {"DPA, k=30, CNN": (radii, accuracy)}, xlabel="poisoned training images"
)
plt.show()

# %%
# Where the votes go
# ------------------
# A prediction is certified for ``r`` when the winning class leads every
# other class by more than ``2 r`` votes (ties go to the smaller class index).
fig, axes = plt.subplots(1, 3, figsize=(9, 2.6))
for ax, i in zip(axes, np.argsort(cert.radius)[[0, len(cert) // 2, -1]], strict=True):
    ax.bar(clf.classes_, cert.votes[i])
    ax.set_title(f"radius {cert.radius[i]}")
    ax.set_xticks(clf.classes_)
    ax.set_xlabel("class")
axes[0].set_ylabel("votes")
fig.tight_layout()
plt.show()
