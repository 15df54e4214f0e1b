"""
==============================================================
Test-time randomized smoothing on digits: certified l2 radii
==============================================================

:class:`~sklearn_certify.RandomizedSmoothingClassifier` (Cohen, Rosenfeld &
Kolter, 2019) classifies a test image by the majority vote of a network on
many Gaussian-noised copies of it, and certifies that no perturbation of the
*test image* of l2 norm below a radius can change that vote. The training
data are trusted here: the radius (unit ``"input_l2"``) is about evasion at
test time, not poisoning.

One small network is trained per noise level ``sigma``, on inputs with fresh
Gaussian noise in every batch
(:class:`~sklearn_certify.smoothing.GaussianAugmentation`). Larger ``sigma``
certifies larger radii and costs clean accuracy.
"""

# %%
# Train one smoothed classifier per noise level
# ---------------------------------------------
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from skorch import NeuralNetClassifier

from sklearn_certify import RandomizedSmoothingClassifier
from sklearn_certify.bounds import cohen_predict
from sklearn_certify.datasets import load_digits
from sklearn_certify.metrics import certified_accuracy, certified_accuracy_curve
from sklearn_certify.plotting import plot_certified_accuracy

X, y = load_digits(split="train")  # pixels in [0, 1]: sigma and radii are in pixel units
X_test, y_test = load_digits(split="test")


class MLP(torch.nn.Module):
    def __init__(self, hidden=128):
        super().__init__()
        self.layers = torch.nn.Sequential(
            torch.nn.Linear(64, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, 10),
        )

    def forward(self, x):
        return self.layers(x)


net = NeuralNetClassifier(
    MLP,
    criterion=torch.nn.CrossEntropyLoss,  # the module returns logits
    optimizer=torch.optim.SGD,
    optimizer__momentum=0.9,
    lr=0.05,
    max_epochs=40,
    batch_size=64,
    iterator_train__shuffle=True,
    train_split=None,
    verbose=0,
)

sigmas = (0.12, 0.25, 0.5)
certificates = {}
threads = torch.get_num_threads()
torch.set_num_threads(1)  # the network is tiny: one thread is the fastest here
for sigma in sigmas:
    clf = RandomizedSmoothingClassifier(
        net, sigma=sigma, n_select=100, n_samples=1000, alpha=0.001, random_state=0
    )
    start = time.perf_counter()
    clf.fit(X, y)
    fitted = time.perf_counter()
    certificates[sigma] = cert = clf.certify(X_test)
    done = time.perf_counter()
    print(
        f"sigma={sigma}: fit {fitted - start:.1f} s, certify {len(X_test)} images "
        f"x {clf.n_select + clf.n_samples} draws {done - fitted:.1f} s"
    )
torch.set_num_threads(threads)

# %%
# Certified accuracy
# ------------------
# A test image counts at radius ``r`` when the certified class is its label,
# the method did not abstain, and the certified radius is at least ``r``.
# With 1,000 estimation draws and ``alpha=0.001`` no radius can exceed
# ``sigma * Phi^-1(0.001 ** (1 / 1000))``, about ``2.46 sigma``.
radii = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
print("sigma " + " ".join(f"r={r:<5}" for r in radii) + " abstained")
for sigma, cert in certificates.items():
    row = " ".join(f"{certified_accuracy(y_test, cert, r):7.3f}" for r in radii)
    print(f"{sigma:<5} {row} {cert.abstain.mean():9.3f}")

ax = plot_certified_accuracy(
    {f"sigma={s}": certified_accuracy_curve(y_test, c) for s, c in certificates.items()},
    xlabel="l2 radius of the test-image perturbation (pixels in [0, 1])",
)
plt.show()

# %%
# PREDICT: a label with a test
# ----------------------------
# ``predict`` always returns the most frequent class among the noisy copies.
# Cohen et al.'s PREDICT abstains unless a binomial test says the top class
# beats the runner-up at level ``alpha``;
# :func:`~sklearn_certify.bounds.cohen_predict` applies that test to the
# certificate's votes (the same draws ``predict`` counts).
for sigma, cert in certificates.items():
    _, abstain = cohen_predict(cert.votes, alpha=0.001)
    top = cert.votes.argmax(axis=1)
    print(
        f"sigma={sigma}: top-class accuracy {np.mean(top == y_test):.3f}, "
        f"PREDICT abstains on {abstain.mean():.1%} of the images"
    )

# %%
# What the network sees
# ---------------------
# One test digit with the noise of each ``sigma``. The largest certified
# radii are a few pixels' worth of change in l2: a perturbation of norm 1
# can change one pixel from black to white, or every pixel by 1/8.
rng = np.random.default_rng(0)
fig, axes = plt.subplots(1, 4, figsize=(8, 2.4), layout="constrained")
axes[0].imshow(X_test[0].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
axes[0].set_title(f"clean ({y_test[0]})")
for ax, sigma in zip(axes[1:], sigmas, strict=True):
    noisy = X_test[0] + sigma * rng.standard_normal(64)
    ax.imshow(noisy.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    cert = certificates[sigma]
    ax.set_title(f"sigma={sigma}\nradius {cert.radius[0]:.2f}")
for ax in axes:
    ax.set_axis_off()
plt.show()
