"""
=================================================
DPA and RAB under a four-pixel backdoor
=================================================

A backdoor attacker poisons training digits with a small trigger (the four-pixel
pattern of the RAB paper, near the bottom-right corner). At test time the same trigger
is added to digits of the other classes; the attack succeeds when they are then
classified as the target, 0.

Two certificates count such an attack differently.
:class:`~sklearn_certify.DPAClassifier` counts poisoned *rows*: its certificate covers
up to ``r`` inserted or deleted rows, whatever they contain, but ``r`` is at most
``n_partitions // 2``. :class:`~sklearn_certify.RABClassifier` counts the *l2 norm* of
the change of the training features (here together with the trigger on the test
digit): any number of rows, as long as the total change is small. We grow the number of
poisons and watch the certified accuracy each method claims against that many, the
accuracy of the poisoned model on clean digits and the backdoor's success.
"""

# %%
import matplotlib.pyplot as plt
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from sklearn_certify import DPAClassifier, RABClassifier
from sklearn_certify.attacks import BackdoorAttack, evaluate_under_attack
from sklearn_certify.datasets import load_digits
from sklearn_certify.plotting import plot_attack_vs_certificate

X, y = load_digits(split="train")
X_test, y_test = load_digits(split="test")
attack = BackdoorAttack("four_pixel", target_label=0, strength=2.0, random_state=0)

digit = X_test[y_test == 7][:1]
fig, axes = plt.subplots(1, 2, figsize=(4, 2.2), layout="constrained")
images = {"clean": digit, "triggered": attack.test_inputs(digit)}
for ax, (name, image) in zip(axes, images.items(), strict=True):
    ax.imshow(image.reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
    ax.set_title(name)
    ax.set_axis_off()

COLUMNS = [
    "budget",
    "cost",
    "clean_accuracy",
    "attack_success",
    "certified_accuracy",
    "certified_changed",
    "n_tolerated",
]

# %%
# Inserted, relabelled poisons against DPA
# ----------------------------------------
# The BadNets attack: triggered digits of other classes, labelled 0, inserted into the
# training set. One poisoned training set per budget (the first ``budget`` poisons of
# one fixed random order), refitted with the same seed. Two numbers of partitions: more
# partitions certify larger radii but train each tree on fewer rows.
budgets = [0, 5, 10, 20, 50, 100, 200, 400]
tables = {}
for k in (10, 40):
    clf = DPAClassifier(DecisionTreeClassifier(random_state=0), n_partitions=k, random_state=0)
    tables[f"DPA k={k}"] = evaluate_under_attack(clf, attack, X, y, X_test, y_test, budgets)
    print(f"DPA k={k}")
    print(pd.DataFrame(tables[f"DPA k={k}"])[COLUMNS].to_string(index=False))

# %%
# No certified prediction moved (``certified_changed`` is 0 wherever something is
# certified). The certificate stops at ``k // 2`` poisons, while this backdoor needs far
# more to succeed: between the two, DPA guarantees nothing, and the attack achieves little.
# From about 100 poisons (7 % of the training rows) for ``k = 10``, and 200 for
# ``k = 40``, the trigger wins, at no cost in clean accuracy: the trees then see enough
# triggered zeros to learn the trigger.
fig, ax = plt.subplots(figsize=(9, 4.2), layout="constrained")
plot_attack_vs_certificate(
    tables, ax=ax, title="four-pixel backdoor (target 0) vs DPA, trees", legend_loc="outside"
)
ax.set_xscale("symlog", linthresh=10)
ax.set_xlim(0, 500)
plt.show()

# %%
# Poisons that keep their labels: DPA against RAB
# -----------------------------------------------
# RAB certifies changes of the training *features* only, so the poisons must keep their
# labels and replace the rows they come from: the clean-label variant, which triggers
# training zeros (there are 133). We poison 0, 2 %, 5 % and 10 % of the training rows.
# A replaced row costs DPA two samples (a deletion and an insertion). For RAB (50
# logistic regressions on noisy copies, ``sigma = 0.5``, ``alpha = 0.01``) the cost at a
# test digit is ``sqrt(||Delta_train||^2 + ||trigger||^2)``: its members also add noise
# to the test input, so the radius covers the trigger there too. A probabilistic
# certificate may see a few certified predictions change; ``n_tolerated`` is how many
# the harness accepts at the level ``alpha`` before it reports a violation.
rab = RABClassifier(
    LogisticRegression(max_iter=200), n_estimators=50, sigma=0.5, alpha=0.01, random_state=0
)
dpa = DPAClassifier(DecisionTreeClassifier(random_state=0), n_partitions=40, random_state=0)
budgets = [0, 27, 67, 133]
fig, axes = plt.subplots(2, 1, figsize=(9, 8), layout="constrained")
success = {}
for ax, strength in zip(axes, (2.0, 0.05), strict=True):
    clean_label = BackdoorAttack(
        "four_pixel",
        target_label=0,
        variant="clean_label",
        mode="modify",
        strength=strength,
        random_state=0,
    )
    tables = {}
    for name, clf in (("DPA k=40", dpa), ("RAB sigma=0.5", rab)):
        tables[name] = evaluate_under_attack(clf, clean_label, X, y, X_test, y_test, budgets)
        print(f"trigger norm {strength}, {name}")
        print(pd.DataFrame(tables[name])[COLUMNS].round(3).to_string(index=False))
        success[strength, name] = tables[name][-1]["attack_success"]
    plot_attack_vs_certificate(
        tables,
        ax=ax,
        title=f"clean-label backdoor, trigger norm {strength}",
        legend_loc="outside",
    )
plt.show()
print(f"attack success with all {budgets[-1]} training zeros triggered:")
for (strength, name), value in success.items():
    print(f"  trigger norm {strength}, {name}: {value:.3f}")

# %%
# The two certificates protect against different attacks, and hold against both. The
# visible trigger (norm 2) already exceeds every radius RAB certifies here, on the test
# digit alone, so RAB certifies nothing against it, while DPA certifies up to ``k // 2``
# samples (``k // 4`` replaced rows), whatever the trigger. A faint trigger (norm 0.05)
# on 27 zeros or more is beyond DPA's count, but its
# total l2 norm (0.58 at all 133 zeros) is within the radius of a few test digits, which
# RAB keeps certifying. The attacks themselves only work once every training zero carries
# the trigger, and mostly against the trees: the pixels near the corner are exactly 0 in
# clean digits, so even the faint trigger is a perfect split for the trees, whereas
# RAB's members see it under noise of standard deviation 0.5 and learn it far less (the
# success rates printed last).
