"""
==========================================================
Rows and features together: the mixed frontier on digits
==========================================================

A backdoor usually does two things at once: it inserts a few rows with any features and
labels, and it nudges many existing rows slightly (a faint trigger, clean-label poisons).
:class:`~sklearn_certify.DPAClassifier` counts rows, so every nudged row costs it one (two
under its content hash, which moves a nudged row to another partition); RAB
(:class:`~sklearn_certify.RABClassifier`) bounds the l2 norm of the nudges, but one inserted
row voids it.

:class:`~sklearn_certify.PartitionedRABClassifier` does both: it partitions the
training rows by a trusted row key (so a nudged row stays in its partition), trains RAB
members inside each partition, certifies each partition's vote with an l2 radius at level
``alpha / k`` and certifies the plurality with a *frontier*: for ``r`` inserted or deleted
rows, the l2 budget ``eps*(r)`` of feature perturbations that may come on top
(:func:`~sklearn_certify.bounds.mixed_radius_frontier`).

Here the three are compared on the bundled digits at equal training cost: ``k x N`` members
on ``n / k`` rows each for the mixed classifier, ``N`` members on all ``n`` rows for RAB, and
Finite Aggregation (DPA with ``spread=N``: ``k x N`` members on about ``n / k`` rows each) for
DPA; plain DPA with ``k`` partitions (``N`` times cheaper) is shown too.
"""

# %%
# Four certified classifiers, one base estimator
# ----------------------------------------------
import time

import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import LogisticRegression

from sklearn_certify import DPAClassifier, RABClassifier
from sklearn_certify.datasets import load_digits
from sklearn_certify.partition import PartitionedRABClassifier

X, y = load_digits(split="train")  # 1,347 rows, pixels in [0, 1]
X_test, y_test = load_digits(split="test")
base = LogisticRegression(max_iter=200)
k, N, sigma, alpha = 10, 40, 0.5, 0.01
ROWS = (0, 1, 2, 4)

# The training order is the trusted key here (row_key=None): rows keep their place when
# their features are nudged, and inserted rows come after them. With an id column,
# pass fit(X, y, row_key=ids) instead.
models = {
    "DPA x RAB (mixed)": PartitionedRABClassifier(
        base, n_partitions=k, n_estimators=N, sigma=sigma, alpha=alpha, rows=ROWS, random_state=0
    ),
    "RAB": RABClassifier(
        base, n_estimators=N, sigma=sigma, alpha=alpha, test_noise=False, random_state=0
    ),
    "FA (DPA, spread N)": DPAClassifier(base, n_partitions=k, spread=N, random_state=0),
    "DPA": DPAClassifier(base, n_partitions=k, random_state=0),
}
for name, model in models.items():
    start = time.perf_counter()
    model.fit(X, y)
    print(
        f"{name}: {len(model.estimators_)} members in {time.perf_counter() - start:.1f} s, "
        f"clean accuracy {model.score(X_test, y_test):.3f}"
    )

# %%
# Certified accuracy at each (rows, l2 budget)
# --------------------------------------------
# A test digit counts where the prediction is correct and certified against every attack
# with ``r`` inserted or deleted rows and training-feature perturbations of total l2 norm
# below ``eps``. RAB certifies ``r = 0`` only; DPA and FA certify ``eps = 0`` only: a
# perturbation of total norm ``eps`` may touch arbitrarily many rows, each moved to another
# partition by the content hash.
eps_grid = np.linspace(0.0, 0.8, 81)
front = models["DPA x RAB (mixed)"].frontier(X_test)
correct = front.prediction == y_test


def mixed_accuracy(r):
    return np.array([np.mean(correct & front.certified(r, e)) for e in eps_grid])


def rab_accuracy(r):
    cert = models["RAB"].certify(X_test)
    ok = (cert.prediction == y_test) & ~cert.abstain
    if r > 0:
        return np.zeros_like(eps_grid)
    return np.array([np.mean(ok & (cert.radius > e)) for e in eps_grid])


def dpa_accuracy(name, r):
    cert = models[name].certify(X_test)
    at_zero = np.mean((cert.prediction == y_test) & ~cert.abstain & (cert.radius >= r))
    return np.where(eps_grid == 0, at_zero, 0.0)


fig, axes = plt.subplots(1, len(ROWS), figsize=(12, 3.4), sharey=True, layout="constrained")
for ax, r in zip(axes, ROWS, strict=True):
    ax.step(eps_grid, mixed_accuracy(r), where="post", label="DPA x RAB (mixed)", lw=2)
    ax.step(eps_grid, rab_accuracy(r), where="post", label="RAB", ls="--")
    for name, marker in (("FA (DPA, spread N)", "s"), ("DPA", "o")):
        ax.plot([0], dpa_accuracy(name, r)[:1], marker, label=name, ms=7, mfc="none")
    ax.set_title(f"{r} inserted or deleted row{'s' if r != 1 else ''}")
    ax.set_xlabel("l2 budget of the feature perturbation")
axes[0].set_ylabel("certified accuracy")
axes[0].set_ylim(0, 1)
axes[-1].legend(loc="upper right", fontsize=8)
plt.show()

# %%
# The whole frontier
# ------------------
# The certified region of the mixed classifier is a staircase in the (rows, l2) plane:
# ``eps*(r)`` never grows with ``r``. Each cell is the fraction of test digits certified
# correct there.
table = np.array([mixed_accuracy(r) for r in ROWS])
fig, ax = plt.subplots(figsize=(7, 2.8), layout="constrained")
image = ax.imshow(
    table,
    aspect="auto",
    origin="lower",
    extent=(eps_grid[0], eps_grid[-1], -0.5, len(ROWS) - 0.5),
    vmin=0,
    vmax=1,
    cmap="viridis",
)
ax.set_yticks(range(len(ROWS)), [str(r) for r in ROWS])
ax.set_xlabel("l2 budget of the feature perturbation")
ax.set_ylabel("inserted or deleted rows")
fig.colorbar(image, ax=ax, label="certified accuracy")
plt.show()

for r in ROWS:
    cells = "  ".join(
        f"eps {e:.2f}: {np.mean(correct & front.certified(r, e)):.3f}"
        for e in (0.0, 0.1, 0.25, 0.5)
    )
    print(f"mixed, {r} rows:  {cells}")

# %%
# Under attack
# ------------
# The frontier is held to a real mixed poisoning by
# :func:`~sklearn_certify.attacks.evaluate_under_attack`. The
# :class:`~sklearn_certify.attacks.MixedAttack` below spends a budget ``(rows, l2)``: a
# four-pixel trigger of l2 norm 0.05 goes on as many training zeros as the norm allows (a
# clean-label backdoor: features only, labels kept), then ``rows`` digits of other classes
# carrying the full trigger (norm 3) are inserted labelled 0. At test time the full trigger
# is added to the digits of the other classes. The harness refits the classifier on each
# poisoned set with the same seed (the poisoned rows keep their keys, inserted rows get
# new ones), measures the poisoning as ``(rows, l2)``, and compares the predictions
# certified at that cost with the refit's. The last budget is far outside every frontier
# (150 rows; the trigger runs out of zeros to stamp before the norm of 1 is spent).
import pandas as pd

from sklearn_certify.attacks import BackdoorAttack, MixedAttack, evaluate_under_attack

faint = BackdoorAttack(
    target_label=0, variant="clean_label", mode="modify", strength=0.05, random_state=0
)
strong = BackdoorAttack(target_label=0, mode="insert", strength=3.0, random_state=1)
results = evaluate_under_attack(
    models["DPA x RAB (mixed)"],
    MixedAttack(strong, faint),
    X,
    y,
    X_test,
    y_test,
    budgets=[(0, 0.0), (1, 0.25), (2, 0.5), (150, 1.0)],
)
columns = ["budget", "cost", "attack_success", "n_certified", "n_certified_changed"]
columns += ["n_tolerated", "uncertified_changed"]
print(pd.DataFrame(results)[columns].to_string(index=False))

# %%
# No prediction certified at a poisoning's cost changed, at any budget. The tolerance
# (``n_tolerated``) is what a sound certificate could show: each partition's bounds hold
# with probability ``1 - alpha / k``, and a partition the poisoning did not buy may still
# see its finite vote of ``N`` members miss its smoothed class (the user guide's mixed
# page derives it). At the budgets inside the frontier the backdoor turns at most one of the
# 405 triggered digits into a 0 (an uncertified one); at 150 inserted rows it turns 0.99 of
# them, and none of those was certified.

# %%
# What it costs and what it buys
# ------------------------------
# * Only the mixed classifier certifies anything once an attack both inserts rows *and*
#   perturbs features (every panel but the first, right of ``eps = 0``).
# * Against features alone (``r = 0``) and small budgets RAB certifies more: each mixed
#   partition has ``n / k`` rows, and its vote bounds are taken at ``alpha / k`` so that all
#   ``k`` hold together. But RAB's radius stops at what ``N`` members can show
#   (``sigma Phi^-1(p_lower)`` with ``p_lower`` at most ``alpha ** (1 / n_estimate)``),
#   while the mixed frontier goes on: changing the plurality takes several partitions, each
#   at the cost of its own radius, and their squares add up.
# * Against rows alone (``eps = 0``) DPA and FA certify at least as much: a partition whose
#   smoothed vote is not certified counts as the attacker's for free (its vote is unknown),
#   whereas DPA knows its members' votes exactly.
# * The key must be trusted. A content hash (DPA's) would send every nudged row to another
#   partition: a faint trigger on many rows would change many votes at once.
