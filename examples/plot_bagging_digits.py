"""
==========================================================
Bagging certified against poisoning, beside DPA, on digits
==========================================================

:class:`~sklearn_certify.CertifiedBaggingClassifier` trains every member on ``s`` rows
drawn *with replacement* from the training set. A poisoned row is drawn by few members, so
the vote of many members bounds how much ``r`` changed rows can move the bagged prediction
(Jia, Cao & Gong, 2021). The certificate counts inserted, deleted or modified rows, each
once, and holds with probability ``1 - alpha`` over the members' draws.

Here it stands beside :class:`~sklearn_certify.DPAClassifier` with the same small MLP:
DPA with ``k = 50`` partitions, bagging with ``N = 50`` members of ``s = n // 50`` rows
(the same training cost) and with ``N = 500`` (ten times the cost).
"""

# %%
# Train the three ensembles
# -------------------------
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np

from sklearn_certify import CertifiedBaggingClassifier, DPAClassifier
from sklearn_certify.bounds import bagging_radius
from sklearn_certify.datasets import load_digits
from sklearn_certify.metrics import certified_accuracy
from sklearn_certify.nets import make_digits_mlp
from sklearn_certify.plotting import plot_certified_accuracy

X, y = load_digits(split="train")
X_test, y_test = load_digits(split="test")
k, n = 50, len(X)
net = make_digits_mlp(max_epochs=30, lr=0.05, batch_size=16)
ensembles = {
    f"DPA, k={k}": DPAClassifier(net, n_partitions=k, random_state=0),
    f"bagging, N={k}, s={n // k}": CertifiedBaggingClassifier(
        net, n_estimators=k, sample_size=n // k, alpha=0.001, random_state=0
    ),
    f"bagging, N={10 * k}, s={n // k}": CertifiedBaggingClassifier(
        net, n_estimators=10 * k, sample_size=n // k, alpha=0.001, random_state=0
    ),
}
certificates = {}
for name, clf in ensembles.items():
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # DPA's small partitions
        clf.fit(X, y)
    certificates[name] = clf.certify(X_test)
    accuracy = np.mean(clf.predict(X_test) == y_test)
    print(f"{name}: fit {time.perf_counter() - start:.1f} s, accuracy {accuracy:.3f}")

# %%
# One axis for both: poisoned rows
# --------------------------------
# DPA's radius counts inserted plus deleted rows (``"samples"``), so modifying a row costs
# two; bagging's counts each inserted, deleted or modified row once (``"rows"``). Against
# ``r`` poisoned rows in the worst mix, DPA needs a radius of ``2 r`` and bagging ``r``.
radii = np.arange(0, 31)
curves = {}
for name, cert in certificates.items():
    per_row = 2 if cert.unit == "samples" else 1
    accuracy = [certified_accuracy(y_test, cert, per_row * r) for r in radii]
    curves[f"{name} ({cert.unit})"] = (radii, np.array(accuracy))
    cells = ", ".join(f"r={r}: {accuracy[r]:.2f}" for r in (0, 5, 10, 20))
    print(f"{name:22s} {cells}")

fig, ax = plt.subplots(figsize=(7, 4))
plot_certified_accuracy(
    curves, ax=ax, xlabel="poisoned training rows (inserted, deleted or modified)",
    legend_loc="outside",
)
ax.set_title("Certified accuracy on 450 test digits")
plt.show()

# %%
# With as many members as DPA has partitions, bagging's vote bounds are loose: 50 votes
# cannot bound a class's probability tightly at ``alpha = 0.001``, so most digits are not
# certified at all. Ten times the members tighten them, and because a modified row costs
# bagging one and DPA two, bagging then certifies more against modifications.
#
# What the vote bounds buy
# ------------------------
# The radius depends on the gap ``p_lower - p_upper`` and on ``n / s`` only: it is the
# largest ``r`` with ``(1 - r/n)^s > 1 - (p_lower - p_upper) / 2``.
gap = np.linspace(0.0, 1.0, 201)
fig, ax = plt.subplots(figsize=(7, 3.5))
for s in (13, 26, 53):
    ax.step(gap, bagging_radius(gap, np.zeros_like(gap), n, s), where="post", label=f"s={s}")
ax.set_xlabel("p_lower - p_upper")
ax.set_ylabel("certified rows")
ax.legend(title=f"n = {n}")
plt.show()
