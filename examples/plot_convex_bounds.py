"""
Convex poisoning bounds: what they promise, where they break
============================================================

The sphere/slab analysis of Steinhardt, Koh & Liang (2017) bounds how much an
attacker who *adds* a fraction ``epsilon`` of poison points can raise the
*training* loss of a norm-constrained linear SVM, when the defender first drops
points far from their class centroid (a sphere) or far along the centroid
difference (a slab), with the centroids taken from the clean data (the
*oracle* defence). It does not bound the test loss; the last sections show
when the two are close and when they are not.

We put two data sets side by side:

* **digits 1 vs 7** (real, bundled with scikit-learn): well separated classes,
  the MNIST-1-7 stand-in of the paper;
* **overlapping centroids** (generated): the class centroids differ mostly in a
  few high-variance "common word" features, while the label lives in many
  weak features, as in the IMDB reviews the paper found vulnerable.

For each we compute the oracle bound U*, the candidate attack it produces, and
the data-dependent *estimate* for a defender who does not know the clean
centroids, then spell out what each assumption buys.
"""

# %%
# Data
# ----
import matplotlib.pyplot as plt
import numpy as np

from sklearn_certify.convex import (
    SphereSlabDefense,
    bound_curve,
    data_dependent_estimate,
    evaluate_attack,
)
from sklearn_certify.datasets import load_digits_1v7
from sklearn_certify.plotting import plot_bound_curve


def overlapping_centroids(n, seed):
    """10 high-variance 'common' features carry most of the centroid shift;
    40 weak 'sentiment' features carry the label."""
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.5, 1, -1)
    common = rng.normal(0.5 * y[:, None], 3.0, size=(n, 10))
    weak = rng.normal(0.2 * y[:, None], 1.0, size=(n, 40))
    return np.hstack([common, weak]), y


X_dig, y_dig = load_digits_1v7(split="train")
Xt_dig, yt_dig = load_digits_1v7(split="test")
X_gen, y_gen = overlapping_centroids(400, seed=0)
Xt_gen, yt_gen = overlapping_centroids(2000, seed=1)
datasets = {
    "digits 1 vs 7": (X_dig, y_dig, Xt_dig, yt_dig, 0.8),
    "overlapping centroids": (X_gen, y_gen, Xt_gen, yt_gen, 1.0),
}
for name, (X, y, _, _, _) in datasets.items():
    d = SphereSlabDefense().fit(X, y)
    gap = np.linalg.norm(d.centroids_[1] - d.centroids_[0])
    print(f"{name:>22}: n={X.shape[0]}, d={X.shape[1]}, centroid distance {gap:.2f}, "
          f"sphere radii {np.round(d.radii_, 2)}")

# %%
# The oracle bound and the candidate attack
# -----------------------------------------
# :func:`~sklearn_certify.convex.bound_curve` runs Algorithm 1 for each
# epsilon, then trains the defender's model (the exact constrained SVM,
# ``||w||^2 + b^2 <= rho_sq``) on clean data plus the candidate attack.
# The dashed line U* is the certificate; the blue line is what the attack
# achieves on the same quantity (the training loss, normalised by the clean
# size). Where they meet, the bound is tight. The green line, the attacked
# model's test loss, is *not* bounded by U*: on digits it lies above U* for
# small epsilon.
epsilons = [0.0, 0.01, 0.03, 0.05, 0.1, 0.2]
curves = {}
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for ax, (name, (X, y, Xt, yt, rho_sq)) in zip(axes, datasets.items(), strict=True):
    curves[name] = bound_curve(X, y, epsilons, rho_sq=rho_sq, X_test=Xt, y_test=yt,
                               max_iter=1000)
    plot_bound_curve(curves[name], ax=ax, title=name)
fig.tight_layout()

for name, curve in curves.items():
    print(f"{name}: U* {np.round(curve.upper_bounds, 3)}")
    print(f"{'':>{len(name)}}  attack test error {np.round(curve.attack_test_error, 3)}")

# %%
# On digits U* grows only linearly with epsilon and the attacked model's test
# error stays at zero: no attack that respects the defence can do much. On the
# overlapping data U* jumps as soon as a few points are added, and the
# candidate attack turns that into a real increase in test error (from about
# 10% to about 17% with 5% poison). The slab along the centroid difference
# does not constrain the weak label-carrying directions, and the spheres are
# wide, so poison can sit far on the wrong side of the boundary. Beyond 5%
# the candidate attack falls below U*: either the bound is loose there or this
# attack is not the strongest one -- the certificate cannot tell which.
#
# What the candidate attack looks like on digits: every poison point is the
# worst point of the sphere/slab for some iterate, i.e. it sits on the boundary
# of the feasible set.
res = curves["digits 1 vs 7"].results[epsilons.index(0.05)]
fig, axes = plt.subplots(1, 6, figsize=(9, 1.8))
for ax, x, label in zip(axes, res.poison_X[-6:], res.poison_y[-6:], strict=True):
    ax.imshow(x.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(f"label {'7' if label == 1 else '1'}", fontsize=9)
    ax.axis("off")
fig.suptitle("candidate poison points (epsilon = 0.05)", fontsize=10)
print("pixel range of the poison:", res.poison_X.min().round(2), res.poison_X.max().round(2))

# %%
# The closed-form worst point ignores that pixels live in [0, 1]; pass
# ``oracle=CvxpyOracle(box=(0, 1))`` to :func:`~sklearn_certify.convex.upper_bound`
# to add that constraint (a smaller feasible set, so a lower bound).
#
# When the centroids are not known: the data-dependent estimate
# -------------------------------------------------------------
# A real defender computes the centroids on the poisoned data, which the
# attacker can drag. :func:`~sklearn_certify.convex.data_dependent_estimate`
# reproduces the released code's heuristic (four poison locations, an SDP over
# their Gram matrix, random mass splits). It is an **estimate, not a
# certificate**: the true worst case may be higher still.
eps = 0.05
rows = []
for name, (X, y, Xt, yt, rho_sq) in datasets.items():
    oracle_u = curves[name].upper_bounds[epsilons.index(eps)]
    est = data_dependent_estimate(X, y, eps, rho_sq=rho_sq, lr=0.1, max_iter=30, n_splits=3,
                                  n_check_splits=20, random_state=0)
    ev = evaluate_attack(X, y, est.poison_X, est.poison_y, Xt, yt, rho_sq=rho_sq)
    rows.append((name, oracle_u, est.estimate, ev.total_train_loss, ev.test_error))
    print(f"{name:>22}: oracle U* {oracle_u:.3f} | data-dependent estimate {est.estimate:.3f}"
          f" (certificate: {est.is_certificate}) | its attack: train loss "
          f"{ev.total_train_loss:.3f}, test error {ev.test_error:.3f}")

fig, ax = plt.subplots(figsize=(6, 3.2))
pos = np.arange(len(rows))
ax.bar(pos - 0.2, [r[1] for r in rows], width=0.4, label="oracle U* (certified)")
ax.bar(pos + 0.2, [r[2] for r in rows], width=0.4, hatch="//",
       label="data-dependent (estimate only)")
ax.set_xticks(pos, [r[0] for r in rows])
ax.set_ylabel(f"hinge loss bound at epsilon = {eps}")
ax.legend(fontsize="small")
fig.tight_layout()

# %%
# Concentration: train loss is not test loss
# -------------------------------------------
# U* bounds the *training* loss of the poisoned fit. Reading it as a bound on
# the test loss needs train and test losses to be close, which takes a large
# training set; digits has 270 training points. Even without poison the two
# differ (at ``epsilon = 0``, U* is essentially the clean fit's train loss):
for name, curve in curves.items():
    ev0 = curve.evaluations[0]
    print(f"{name:>22}: clean fit train loss {ev0.clean_train_loss:.3f}, "
          f"test loss {ev0.test_loss:.3f}")

# %%
# What each assumption buys
# -------------------------
# * **Convex loss, linear model** -- lets the max over poison sets and the min
#   over models be swapped (weak duality), and makes the worst single point an
#   exactly solvable convex problem. Without it there is no U*.
# * **Known (clean) centroids** -- makes the feasible set fixed, so the bound is
#   a certificate. A defender who estimates the centroids from poisoned data is
#   only covered by the heuristic estimate above, which is higher and not
#   guaranteed.
# * **A large training set, and a defence that removes no (or few) clean
#   points** -- turn the bound on the poisoned *training* loss into an
#   approximate bound on the test loss. They are assumptions about the data,
#   not checked by the code, and on digits (above) the first one fails.
#
# The certificate itself is always this: for every poison set of
# ``round(epsilon * n)`` points inside the oracle sphere and slab, the
# constrained SVM's training loss on clean plus poison data is at most U*.
plt.show()
