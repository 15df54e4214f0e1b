"""
=================================================
Partition insertion: the DPA radius is tight
=================================================

DPA certifies that a prediction survives any ``r`` inserted or deleted
training rows, where ``r`` comes from the members' vote margin. The proof
assumes the worst: every poisoned row turns one member's vote from the
predicted class to the runner-up. Is that worst case reachable, or is the
certificate loose?

With a 1-nearest-neighbour base it is reachable. The partition of a row is a
public function of its content, so an attacker can take the test point, move
one pixel by less than 0.001 until the copy hashes into a partition of their
choice, and label it as the runner-up class. The copy is that member's
nearest neighbour of the test point, so the member now votes for the
runner-up. :class:`~sklearn_certify.attacks.PartitionInsertionAttack` does
this for the partitions voting for the prediction, one copy each.
"""

# %%
import matplotlib.pyplot as plt
import pandas as pd
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import KNeighborsClassifier

from sklearn_certify import DPAClassifier
from sklearn_certify.attacks import PartitionInsertionAttack, evaluate_under_attack
from sklearn_certify.datasets import load_digits
from sklearn_certify.plotting import plot_attack_vs_certificate

X, y = load_digits(split="train")
X_test, y_test = load_digits(split="test")
# Test digits with no near-duplicate among the training rows: a copy moved by < 0.001 is
# then always closer to them than any clean training row.
far = pairwise_distances(X_test, X).min(axis=1) > 0.2
X_test, y_test = X_test[far][:10], y_test[far][:10]

clf = DPAClassifier(KNeighborsClassifier(1), n_partitions=15, random_state=0)
cert = clf.fit(X, y).certify(X_test)
print("certified radii of the 10 test digits:", cert.radius.tolist())

# %%
# One test digit, attacked with r and with r + 1 copies
# -----------------------------------------------------
# ``poison`` returns the poisoned training set and exactly what changed; refitting with
# the same ``random_state`` gives the classifier the attacker produces.
attack = PartitionInsertionAttack(random_state=0)
x, r = X_test[0], int(cert.radius[0])
for budget in (r, r + 1):
    poisoned = attack.poison(X, y, budget, model=clf, target=x)
    refit = DPAClassifier(KNeighborsClassifier(1), n_partitions=15, random_state=0)
    refit.fit(poisoned.X, poisoned.y)
    print(
        f"{budget} copies labelled {poisoned.info['target_label']} "
        f"({poisoned.describe()}): prediction {cert.prediction[0]} -> "
        f"{refit.predict(x[None])[0]}"
    )

# %%
# Every budget, every test digit
# ------------------------------
# :func:`~sklearn_certify.attacks.evaluate_under_attack` repeats this for each test
# digit (the attack is crafted against one point at a time) and each budget.
# ``certified_changed`` must be 0: no prediction certified at a budget moves.
# ``uncertified_changed`` is 1 at every budget: every prediction the certificate does
# not protect is overturned by exactly that many copies, so the radius cannot be raised.
budgets = list(range(int(cert.radius.max()) + 2))
rows = evaluate_under_attack(clf, attack, X, y, X_test, y_test, budgets)
table = pd.DataFrame(rows)
columns = ["budget", "n_certified", "attack_success", "certified_changed", "uncertified_changed"]
print(table[columns].to_string(index=False))

# %%
# The attack succeeds exactly where the certificate stops: the fraction of test digits
# flipped at a budget is one minus the fraction certified at it.
ax = plot_attack_vs_certificate(rows, title="partition insertion vs DPA, 1-NN, k=15")
certified = table["n_certified"] / table["n_points"]
ax.plot(table["budget"], 1 - certified, "k:", label="1 - fraction certified")
ax.legend(fontsize="small")
plt.show()
