"""
===========================================================================
Clean-label poisoning against the denoising defence, in small (digits)
===========================================================================

Hong, Carlini & Kurakin (2024) defend against clean-label poisoning by training on a
*denoised* training set: every image gets Gaussian noise of standard deviation ``sigma``
and is then cleaned by a diffusion model trained on other, trusted data. Their Tables 1
and 2 measure, over many targets, how often an attack makes the poisoned model classify
its target test image as the attacker's class (the *attack success*), and the model's
clean accuracy, without the defence (``sigma = 0``) and with it, for attacks bounded in
l_inf and in l2.

This example repeats that measurement at the scale of sklearn's 8x8 digits:

* the attack is feature collision (Shafahi et al., 2018, "Poison Frogs", the first row
  of Table 1): :class:`~sklearn_certify.attacks.FeatureCollisionAttack` moves training
  images of a *base* class, labels kept, until their features collide with the target's;
* the victim learns by transfer: a frozen feature extractor, pretrained on trusted
  digits, and a linear head retrained on the (possibly poisoned) training set;
* the defence is :class:`~sklearn_certify.DenoisedSmoothingClassifier` with the bundled
  digits DDPM; its members are that same victim, each trained on its own denoised noisy
  copy. The same ensemble without a denoiser (plain noise) separates what the noise does
  from what the denoiser does.
"""

# %%
# Data, the frozen feature extractor and the victim
# -------------------------------------------------
# :func:`~sklearn_certify.datasets.load_digits_for_denoising` splits the digits into the
# rows the bundled denoiser was trained on (trusted) and, apart from them, a training and a
# test set. The feature extractor is the hidden layer of a small network pretrained on the
# trusted rows and then frozen; the attacker knows it (the white-box transfer setting).
import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.base import clone
from sklearn.linear_model import RidgeClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from sklearn_certify import DenoisedSmoothingClassifier
from sklearn_certify.attacks import FeatureCollisionAttack
from sklearn_certify.bounds import clopper_pearson_lower, cohen_radius
from sklearn_certify.datasets import load_digits_for_denoising
from sklearn_certify.denoisers import load_bundled

torch.set_num_threads(1)  # a tiny network and a tiny UNet: one thread is fastest on a CPU
X, y = load_digits_for_denoising(split="train")
X_test, y_test = load_digits_for_denoising(split="test")
X_trusted, y_trusted = load_digits_for_denoising(split="denoiser")
print(f"{len(X)} training, {len(X_test)} test and {len(X_trusted)} trusted digits")

torch.manual_seed(0)
hidden, output = torch.nn.Linear(64, 32), torch.nn.Linear(32, 10)
optimizer = torch.optim.Adam([*hidden.parameters(), *output.parameters()], lr=0.01)
for _ in range(300):
    optimizer.zero_grad()
    logits = output(torch.relu(hidden(torch.as_tensor(X_trusted))))
    torch.nn.functional.cross_entropy(logits, torch.as_tensor(y_trusted)).backward()
    optimizer.step()
hidden.requires_grad_(False)


def features(x):
    """The frozen hidden layer: what the attack collides in (torch, differentiable)."""
    return torch.relu(hidden(x))


def head_input(rows):
    """The same features as a numpy array, for the linear head."""
    with torch.no_grad():
        return features(torch.as_tensor(np.asarray(rows, dtype=np.float32))).numpy()


victim = make_pipeline(FunctionTransformer(head_input), RidgeClassifier())


def show(rows, digits=3):
    """Print a list of dicts (one per row, same keys) as an aligned table."""
    cells = [
        [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row.values()]
        for row in rows
    ]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(rows[0])]
    for line in [list(rows[0]), *cells]:
        print("  ".join(v.rjust(w) for v, w in zip(line, widths, strict=True)))


# %%
# The defences
# ------------
# Each member of :class:`~sklearn_certify.DenoisedSmoothingClassifier` is a clone of the
# victim trained on ``denoise(X + noise)``; the ensemble predicts by majority vote. The
# paper's Table 2 votes over four models; five members here.
#
# Refitting on many poisoned sets would denoise the same rows again and again: a poisoned
# set differs from the clean one in 40 rows only, and a member's noise on a row depends on
# the member and the row's position, not on the other rows. The bundled denoiser treats
# every row on its own, so a small memo that denoises only the rows it has not seen gives
# the same members and skips the repeated work. "The same" up to float32 rounding: the
# UNet's arithmetic can differ in the last bit with the size of the batch a row is in, as
# the check below shows on rows denoised in a batch of 10 and in one of 50.


class MemoDenoiser:
    """The bundled denoiser, remembering each noisy row it has denoised."""

    def __init__(self, denoiser):
        self.denoiser = denoiser
        self.data_range = denoiser.data_range  # fit refuses data outside it
        self.training_digests = denoiser.training_digests  # and rows the denoiser saw
        self.memo = {}

    def denoise(self, X_noisy, sigma):
        rows = np.asarray(X_noisy.cpu() if torch.is_tensor(X_noisy) else X_noisy)
        keys = [(sigma, row.tobytes()) for row in rows]
        new = [i for i, key in enumerate(keys) if key not in self.memo]
        if new:
            for i, row in zip(new, self.denoiser.denoise(rows[new], sigma), strict=True):
                self.memo[keys[i]] = row
        return np.stack([self.memo[key] for key in keys])


bundled = load_bundled("digits")
memo = MemoDenoiser(bundled)
noisy = X[:50] + np.random.default_rng(0).normal(0, 0.25, X[:50].shape).astype(np.float32)
memo.denoise(noisy[:10], 0.25)
gap = np.abs(memo.denoise(noisy, 0.25) - bundled.denoise(noisy, 0.25)).max()
print(f"memo vs one batch: largest difference {gap:.1e} (pixels in [0, 1])")
assert gap < 1e-6

N_MEMBERS = 5


def denoised_smoothing(denoiser, sigma):
    def make():
        return DenoisedSmoothingClassifier(
            clone(victim), denoiser, n_estimators=N_MEMBERS, sigma=sigma, random_state=0
        )

    return make


defences = {
    "none": lambda: clone(victim),
    "noise 0.25": denoised_smoothing(None, 0.25),
    "DDPM 0.1": denoised_smoothing(memo, 0.1),
    "DDPM 0.25": denoised_smoothing(memo, 0.25),
    "DDPM 0.5": denoised_smoothing(memo, 0.5),
}

# %%
# The attacks
# -----------
# 20 target test digits drawn at random. Against each target the attack changes 40
# training images (5% of the training set, half of the base class: the class of the
# training row nearest the target among those labelled differently from its nearest row)
# within one of two budgets per image: 0.2 in l_inf (every pixel moved by at most a fifth
# of its range, like the paper's 16/255 on CIFAR-10 but larger), or the "comparable" l2
# budget of the paper's Appendix B, ``0.2 * sqrt(64) = 1.6``, which can concentrate the
# change on fewer pixels. The attack never sees the defence: the same poisons are used
# against every defence, as in the paper.
N_TARGETS, BUDGET = 20, 40
targets = np.random.default_rng(0).choice(len(X_test), N_TARGETS, replace=False)
attacks = {
    "l_inf 0.2": FeatureCollisionAttack(features, eps_linf=0.2, n_steps=50),
    "l2 1.6": FeatureCollisionAttack(features, eps_linf=None, eps_l2=1.6, n_steps=50),
}
poisonings = {
    name: [attack.poison(X, y, BUDGET, target=X_test[i]) for i in targets]
    for name, attack in attacks.items()
}


def distance_to_target(results, rows_of):
    """Mean l2 distance from the poisoned rows (or their clean bases) to their target."""
    return np.mean(
        [
            np.linalg.norm(rows_of(res) - X_test[i], axis=1).mean()
            for res, i in zip(results, targets, strict=True)
        ]
    )


for name, results in poisonings.items():
    cost = np.mean([res.cost("l2") for res in results])
    before = distance_to_target(results, lambda res: X[res.changed])
    after = distance_to_target(results, lambda res: res.X[res.changed])
    print(
        f"{name}: whole training change {cost:.2f} in l2 (mean over targets); a poisoned "
        f"row's l2 distance to its target {before:.2f} before, {after:.2f} after"
    )

# %%
# Attack success and clean accuracy
# ---------------------------------
# An attack succeeds on a target when the model trained on the poisoned set classifies it
# as the base class while the same defence trained on the clean set did not. Accuracy is
# measured on all 270 test digits, for the model trained on the clean set and averaged
# over the models trained on the poisoned sets (what the paper reports).


def measure(make):
    clean_model = make().fit(X, y)
    before = clean_model.predict(X_test[targets])
    row = {"clean accuracy": clean_model.score(X_test, y_test)}
    for name, results in poisonings.items():
        success, accuracy = [], []
        for j, res in enumerate(results):
            model = make().fit(np.array(res.X), np.array(res.y))
            base = res.info["base_label"]
            after = model.predict(X_test[targets[j] : targets[j] + 1])[0]
            success.append(before[j] != base and after == base)
            accuracy.append(model.score(X_test, y_test))
        row[f"success {name}"] = np.mean(success)
        row[f"accuracy {name}"] = np.mean(accuracy)
    return row


table = [{"defence": name, **measure(make)} for name, make in defences.items()]
show(table)

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
positions = np.arange(len(table))
column = {key: [row[key] for row in table] for key in table[0]}
for k, name in enumerate(attacks):
    axes[0].bar(positions + (k - 0.5) * 0.38, column[f"success {name}"], width=0.38, label=name)
    axes[1].bar(positions + (k - 0.5) * 0.38, column[f"accuracy {name}"], width=0.38, label=name)
axes[0].set_ylabel(f"attack success ({N_TARGETS} targets)")
axes[1].set_ylabel("clean accuracy of the poisoned models")
axes[0].set_ylim(0, 1)
axes[1].set_ylim(0.8, 1.0)
for ax in axes:
    ax.set_xticks(positions, column["defence"])
    ax.set_xlabel("defence (sigma)")
    ax.legend(title="budget per image", fontsize="small", loc="upper right")
plt.show()

# %%
# In this run (the printed table) the undefended head put 5 of the 20 targets (0.25) in the
# base class under the l_inf poisons and 12 (0.60) under the l2 poisons. Training on
# denoised copies stopped most of the l_inf attack: 1, 0 and 2 of 20 at ``sigma`` 0.1, 0.25
# and 0.5, where plain noise at 0.25 without the denoiser left 3 of 20. Against the l2
# attack no defence helped much: 10 to 12 of 20 targets moved whatever the ``sigma``. The
# defence cost no accuracy here: the denoised ensembles scored 0.930 on the clean test
# digits against 0.926 undefended, and the poisoned models 0.918 to 0.928.
#
# Twenty targets are few: each one is 5 points of success rate, so differences of one or
# two targets (0.1 against 0.25 against 0.5, say) are noise. ``benchmarks/RESULTS.md``
# (section bench_seed_experiments) repeats the measurement with 50 targets, two budgets
# per norm and ``sigma`` up to 1.0. It is the better estimate, and it differs from this
# run in places: against the l_inf poisons, for one, the denoised ensembles' lead over
# plain noise is smaller there.
#
# Why the l2 attack survives
# --------------------------
# The first poison of each attack against the first target: the clean base image, the
# poison, and the poison after noise at ``sigma = 0.25`` and the denoiser, next to the
# target.
fig, axes = plt.subplots(2, 4, figsize=(8, 4.6), layout="constrained")
for ax_row, (name, results) in zip(axes, poisonings.items(), strict=True):
    res = results[0]
    row = res.changed[0]
    noise = np.random.default_rng(1).normal(0, 0.25, 64).astype(np.float32)
    images = {
        f"target (digit {y_test[targets[0]]})": X_test[targets[0]],
        f"base row (digit {y[row]})": X[row],
        f"poison, {name}": res.X[row],
        "noised + denoised": bundled.denoise((res.X[row] + noise)[None], 0.25)[0],
    }
    for ax, (title, image) in zip(ax_row, images.items(), strict=True):
        ax.imshow(np.asarray(image).reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
plt.show()

# %%
# On 8x8 images the l2 budget of 1.6 is large: the printed distances show a base row
# 2.60 from its target on average in l2, and the l2 poisons 1.48 from it (the l_inf ones
# 2.13). In the figure the l_inf poison, noised and denoised, still reads as a 6; the l2
# poison (labelled 6) already looks much like a 0, and the denoiser returns a clean-looking
# 0: a denoiser trained to return plausible digits keeps a perturbation that makes a
# plausible digit. Removing small, noise-like perturbations is what the defence does; a
# budget large enough to change what the digit looks like is outside it. The paper's
# Table 1 reports its l2 attacks defeated on CIFAR-10; at this scale and with this budget
# they were not.
#
# What this is not: a certificate. Five members certify nothing (``n_select`` is 1, and
# 4 agreeing votes out of 4 bound the top class's probability at ``alpha = 0.001`` by the
# value printed below, under one half), and even a thousand members at ``sigma = 0.25``
# certify at most the radius printed below, far under the whole training change of these
# attacks (printed above: 7.9 and 10.1). Like the paper's Tables 1-2, the table measures what
# these particular attacks achieve.
print(f"p_lower of 4 votes out of 4: {clopper_pearson_lower(4, 4, 0.001):.3f}")
largest = cohen_radius(clopper_pearson_lower(900, 900, 0.001), 0.25)
print(f"largest l2 radius, 1,000 members (900 estimating), sigma 0.25: {largest:.2f}")
